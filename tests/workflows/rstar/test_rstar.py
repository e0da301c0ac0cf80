"""The rStar-Math self-evolution workflow: config checks (fast) and the tiny end-to-end run on CPU (slow)."""

import json
import os

import pytest

from mmredstar.cli import main
from mmredstar.search.mcts import read_trees
from mmredstar.workflows.rstar import RStarError, load_config
from tests.search.test_mcts import check_q


def test_config_errors_name_file_line_and_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("rounds: 2\nmcts:\n  kk: 3\n")
    with pytest.raises(RStarError, match=r"bad.yaml:3.*mcts.kk.*mcts.k"):
        load_config(str(p))
    p.write_text("rounds: 0\n")
    with pytest.raises(RStarError, match=r"bad.yaml:1: key 'rounds'"):
        load_config(str(p))
    p.write_text("policy:\n  start: yesterday\n")
    with pytest.raises(RStarError, match=r"bad.yaml:2: key 'policy.start'"):
        load_config(str(p))
    p.write_text("init:\n  problems: 0\nppm:\n  start: init_long\n")
    with pytest.raises(RStarError, match=r"bad.yaml:4: key 'ppm.start'=init_long needs round-0 training"):
        load_config(str(p))
    p.write_text("policy:\n  start: init_long\n")            # the PPM's own backbone, not the policy's
    with pytest.raises(RStarError, match=r"bad.yaml:2: key 'policy.start'"):
        load_config(str(p))
    for name in ("tiny", "qwen2_5_math_7b"):
        cfg = load_config(f"configs/rstar/{name}.yaml")
        assert cfg.rounds >= 2 and cfg.eval.samples >= 4


def check_sums(tree):
    """Round r > 1 (PPM priors): visits and value sums still add up over children."""
    nodes = {n["id"]: n for n in tree["nodes"]}
    for n in nodes.values():
        if n["children"] and not n["terminal"]:
            assert n["visits"] == sum(nodes[c]["visits"] for c in n["children"])
            assert abs(n["value_sum"] - sum(nodes[c]["value_sum"] for c in n["children"])) < 1e-9


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("rstar") / "run")
    assert main(["rstar", "run", "configs/rstar/tiny.yaml", "--out", out]) == 0
    return out, json.load(open(os.path.join(out, "report.json")))


@pytest.mark.slow
def test_tiny_self_evolution_end_to_end(tiny_run):
    out, rep = tiny_run
    # the same held-out problems, the same sample budget
    n = rep["samples"]
    assert rep["greedy"]["n_items"] == rep["majority"]["n_items"] == rep["ppm_search"]["n_items"] == rep["held_out_problems"]
    assert rep["majority"]["n"] == rep["ppm_search"]["n"] == n and rep["greedy"]["n"] == 1
    for k in ("greedy", "majority", "ppm_search"):
        assert 0 <= rep[k]["accuracy"] <= 1 and rep[k]["se"] >= 0
    assert 0 <= rep["pairwise_accuracy"] <= 1
    # trees built, Q values consistent with terminal outcomes, PPM priors from round 2
    for r in (1, 2):
        trees = read_trees(os.path.join(out, f"r{r}", "mcts", "trees.jsonl"))
        assert len(trees) == rep["rounds"][r - 1]["problems"] and any(t["solved"] for t in trees)
        for t in trees:
            check_q(t) if r == 1 else check_sums(t)
            assert all(n["status"] == "ok" for n in t["nodes"])
        priors = [n["prior"] for t in trees for n in t["nodes"][1:]]
        assert (r == 1) == all(p is None for p in priors)
    # self-evolution: the set of unsolved problems shrinks
    assert rep["rounds"][1]["unsolved_after"] < rep["rounds"][0]["unsolved_after"]
    # a rerun finds every stage finished and leaves the report as it was
    assert main(["rstar", "run", "configs/rstar/tiny.yaml", "--out", out]) == 0
    assert json.load(open(os.path.join(out, "report.json"))) == rep


@pytest.mark.slow
def test_tiny_ppm_ranks_and_search_beats_greedy(tiny_run):
    """Measured on the 2-core box (configs/rstar/tiny.yaml: the value head alone, ``ppm.pool: step_mean``,
    ``eval.include_greedy``): seed 0 held-out pairwise 0.50 before PPM training, 0.75 after (117 pairs),
    ppm_search 0.500 vs greedy 0.167 (60 problems). Seeds 1 and 2 learn less and search gains little or nothing
    (README, "Measured"); this test holds the shipped seed to what it showed."""
    _, rep = tiny_run
    ppm = rep["ppm"]
    # the PPM learns from the pairs to rank correct-path steps above wrong-path ones on held-out problems
    assert rep["pairwise_accuracy"] >= 0.65, ppm
    assert rep["pairwise_accuracy"] - ppm["pairwise_accuracy_before_training"] >= 0.1, ppm
    # PPM-guided search beats greedy decoding and majority voting at the same number of samples
    assert rep["ppm_search"]["accuracy"] > rep["greedy"]["accuracy"], rep
    assert rep["ppm_search"]["accuracy"] > rep["majority"]["accuracy"], rep


def test_stages_resume_through_the_one_marker(tmp_path):
    """Stages use mmredstar.stages.Marker: a rerun skips finished stages; a changed setting, a changed
    output or a redone upstream stage redoes the stage and every one after it."""
    from mmredstar.stages import Marker
    from mmredstar.workflows.rstar.stages import Stages

    cfg = load_config({"out": str(tmp_path)})
    calls = []

    def run(settings, a_text="a"):
        S = Stages(cfg)

        def fa():
            calls.append("a")
            (tmp_path / "a" / "a.txt").write_text(a_text)
            return {"n": 1}

        def fb():
            calls.append("b")
            (tmp_path / "b" / "b.txt").write_text("b")

        sa = S.stage("a", {"x": settings}, fa, {"a": tmp_path / "a" / "a.txt"})
        S.stage("b", {}, fb, {"b": tmp_path / "b" / "b.txt"})
        return sa

    assert run(1)["n"] == 1 and calls == ["a", "b"]
    st = Marker(tmp_path / "a" / "stage.json").read()
    assert st["stage"] == "a" and st["output_sha256"]
    assert run(1)["n"] == 1 and calls == ["a", "b"]            # all finished: nothing reruns
    run(2)                                                     # a's settings changed: a and b redo
    assert calls == ["a", "b", "a", "b"]
    (tmp_path / "b" / "b.txt").write_text("edited")            # b's output changed: only b redoes
    run(2)
    assert calls == ["a", "b", "a", "b", "b"]
    (tmp_path / "a" / "a.txt").write_text("edited")            # a's output changed: a redoes, and b
    run(2, a_text="other")                                     # (its input, a's marker, changed)
    assert calls == ["a", "b", "a", "b", "b", "a", "b"]


def test_held_out_problems_stay_held_out_in_every_round():
    from mmredstar.workflows.rstar.stages import _held_out_split

    ids = [f"p{i}" for i in range(200)]
    a = _held_out_split(ids[:120], 0.3, seed=0)
    b = _held_out_split(ids[60:], 0.3, seed=0)          # a later round: some problems again, some fresh
    assert a & set(ids[60:120]) == b & set(ids[60:120])  # the problems in both rounds are on the same side
    assert 20 <= len(a) <= 52 and _held_out_split(ids, 0.0, 0) == set()
    assert _held_out_split(ids, 0.3, seed=1) != _held_out_split(ids, 0.3, seed=0)
