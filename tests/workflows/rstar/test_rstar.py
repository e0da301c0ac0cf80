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
    for name in ("tiny", "qwen2_5_math_7b"):
        cfg = load_config(f"configs/rstar/{name}.yaml")
        assert cfg.rounds >= 2 and cfg.eval.samples >= 4


@pytest.mark.slow
def test_tiny_self_evolution_end_to_end(tmp_path):
    out = str(tmp_path / "run")
    assert main(["rstar", "run", "configs/rstar/tiny.yaml", "--out", out]) == 0
    rep = json.load(open(os.path.join(out, "report.json")))
    # the same held-out problems, the same sample budget
    n = rep["samples"]
    assert rep["greedy"]["n_items"] == rep["majority"]["n_items"] == rep["ppm_search"]["n_items"] == rep["held_out_problems"]
    assert rep["majority"]["n"] == rep["ppm_search"]["n"] == n and rep["greedy"]["n"] == 1
    for k in ("greedy", "majority", "ppm_search"):
        assert 0 <= rep[k]["accuracy"] <= 1 and rep[k]["se"] >= 0
    # trees built, Q values consistent with terminal outcomes, PPM priors in round 2
    for r in (1, 2):
        trees = read_trees(os.path.join(out, f"r{r}", "mcts", "trees.jsonl"))
        assert len(trees) == rep["rounds"][r - 1]["problems"] and any(t["solved"] for t in trees)
        for t in trees:
            if r == 1:
                check_q(t)
            assert all(n["status"] == "ok" for n in t["nodes"])
        priors = [n["prior"] for t in trees for n in t["nodes"][1:]]
        assert (r == 1) == all(p is None for p in priors)
    # the PPM ranks correct-path steps above wrong-path steps on held-out problems' pairs
    assert rep["pairwise_accuracy"] >= 0.65, rep["ppm"]
    # PPM-guided search beats greedy decoding (and majority voting) at the same number of samples
    assert rep["ppm_search"]["accuracy"] > rep["greedy"]["accuracy"], rep
    # a rerun finds every stage finished
    assert main(["rstar", "run", "configs/rstar/tiny.yaml", "--out", out]) == 0
    assert json.load(open(os.path.join(out, "report.json"))) == {k: v for k, v in rep.items()}
