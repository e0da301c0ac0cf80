"""Mixtures: exact counts and weights, seeded and reproducible, exact manifests, the training hook."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from mmredstar.data.mixture import MixtureSource, draw_mixture, parse_mixture, plan_counts
from mmredstar.data.subset import build_subsets, ids_hash, order_key
from mmredstar.io import read_jsonl, write_samples
from mmredstar.schema import Response
from mmredstar.stages import sha256_file
from mmredstar.synth.arithmetic import arithmetic_problems


def sft_file(path, n, seed, domain):
    ss = arithmetic_problems(n, seed)
    for s in ss:
        s.responses = [Response(text=s.meta["reference_cot"], finish_reason="stop", verdict="correct")]
        s.meta["domain"] = domain
        s.id = f"{domain}-{s.id}"
    write_samples(path, ss)
    return path


@pytest.fixture
def two_sets(tmp_path):
    return sft_file(tmp_path / "math.jsonl", 60, 0, "math"), sft_file(tmp_path / "code.jsonl", 90, 1, "code")


def test_plan_counts():
    S = MixtureSource
    assert plan_counts([S("a", count=4000), S("b", count=16000)], [5000, 20000], None) == [4000, 16000]
    assert plan_counts([S("a", weight=1), S("b", weight=1), S("c", weight=1)], [9, 9, 9], 10) == [4, 3, 3]
    assert plan_counts([S("a", count=2), S("b", weight=3), S("c", weight=1)], [9, 9, 9], 10) == [2, 6, 2]
    with pytest.raises(ValueError, match="need a total"):
        plan_counts([S("a", weight=1)], [9], None)
    with pytest.raises(ValueError, match="add up to 5, not the total 7"):
        plan_counts([S("a", count=5)], [9], 7)


def test_exact_counts_reproducible_and_manifest_exact(tmp_path, two_sets):
    math, code = two_sets
    entries = [{"path": str(math), "count": 20}, {"path": str(code), "count": 35, "name": "code"}]
    man = draw_mixture(entries, tmp_path / "m1.jsonl", seed=5)
    rows = list(read_jsonl(tmp_path / "m1.jsonl"))
    assert len(rows) == man["records"] == 55
    assert Counter(r["meta"]["domain"] for r in rows) == {"math": 20, "code": 35}
    # per source: the count records with the smallest sha256(seed:id), in file order; hashes recomputed
    for src, path, n in zip(man["sources"], (math, code), (20, 35), strict=True):
        all_ids = [d["id"] for d in read_jsonl(path)]
        want = set(sorted(all_ids, key=lambda i: order_key(5, i))[:n])
        got = [r["id"] for r in rows if r["id"] in set(all_ids)]
        assert set(got) == want and got == [i for i in all_ids if i in want]
        assert src["drawn"] == n and src["available"] == len(all_ids)
        assert src["ids_sha256"] == ids_hash(got)
        assert src["files"] == [{"path": str(path), "sha256": sha256_file(path), "records": len(all_ids)}]
    assert man["sha256"] == sha256_file(tmp_path / "m1.jsonl") and man["seed"] == 5
    assert json.loads((tmp_path / "m1.jsonl.manifest.json").read_text()) == man
    # same seed, same draw; another seed, another one
    again = draw_mixture(entries, tmp_path / "m2.jsonl", seed=5, manifest_path=tmp_path / "copy.json")
    assert [s["ids_sha256"] for s in again["sources"]] == [s["ids_sha256"] for s in man["sources"]]
    assert json.loads((tmp_path / "copy.json").read_text())["records"] == 55
    other = draw_mixture(entries, tmp_path / "m3.jsonl", seed=6)
    assert other["sources"][0]["ids_sha256"] != man["sources"][0]["ids_sha256"]
    # the draw from one source is that source's subset of the same size (one order for ladders and mixtures)
    sub = build_subsets(str(math), tmp_path / "sub", sizes=[20], seed=5, progress=False)[0]
    assert sub["ids_sha256"] == man["sources"][0]["ids_sha256"]


def test_weights_with_total_and_rerun(tmp_path, two_sets):
    math, code = two_sets
    entries = [{"path": str(math), "weight": 0.2}, {"path": str(code), "weight": 0.8}]
    man = draw_mixture(entries, tmp_path / "w.jsonl", total=50, seed=0)
    assert [s["drawn"] for s in man["sources"]] == [10, 40]
    assert [s["requested"] for s in man["sources"]] == [{"weight": 0.2}, {"weight": 0.8}]
    before = (tmp_path / "w.jsonl").stat().st_mtime_ns
    assert draw_mixture(entries, tmp_path / "w.jsonl", total=50, seed=0) == man
    assert (tmp_path / "w.jsonl").stat().st_mtime_ns == before          # up to date: not rewritten
    bigger = draw_mixture(entries, tmp_path / "w2.jsonl", total=100, seed=0)
    small_ids = {r["id"] for r in read_jsonl(tmp_path / "w.jsonl")}
    assert small_ids < {r["id"] for r in read_jsonl(tmp_path / "w2.jsonl")} and bigger["records"] == 100


def test_errors_name_the_source(tmp_path, two_sets):
    math, code = two_sets
    with pytest.raises(ValueError, match="asked for 100 records, it holds 60"):
        draw_mixture([{"path": str(math), "count": 100}], tmp_path / "x.jsonl")
    for bad, msg in (([{"path": "a", "count": 1, "weight": 1}], "exactly one of"),
                     ([{"path": "a", "cnt": 1}], "unknown key"), ([{"count": 3}], "'path' is required"),
                     ([{"path": "a", "weight": -1}], "positive number"), ([], "a list of sources"),
                     ([{"path": "a", "count": "ten"}], r"\[0\]\.count")):
        with pytest.raises(ValueError, match=msg):
            parse_mixture(bad)


def test_training_draws_the_mixture_and_saves_its_manifest(tmp_path, two_sets):
    """A recipe with data.mixture (a built-in set + a file, by weight): the checkpoint dir holds what was drawn."""
    from mmredstar.training import run
    from mmredstar.training.config import RecipeError, load_recipe

    math, _ = two_sets
    ov = {"data.train": [], "data.mixture": [{"path": "builtin:sft_text", "count": 8},
                                            {"path": str(math), "weight": 1.0}],
          "data.mixture_total": 24, "data.mixture_seed": 3, "data.max_length": 96, "train.max_steps": 2,
          "train.batch_size": 4, "train.micro_batch_size": 4, "train.num_threads": 1, "train.progress": False,
          "output_dir": str(tmp_path / "run")}
    out = run("tiny/sft", ov)
    man = json.loads((tmp_path / "run" / "mixture_manifest.json").read_text())
    assert [s["drawn"] for s in man["sources"]] == [8, 16] and man["seed"] == 3
    dm = json.loads((tmp_path / "run" / "data_manifest.json").read_text())
    assert dm["total_records"] == 24 and dm["files"][0]["spec"] == "mixture"
    assert dm["files"][0]["sha256"] == man["sha256"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_records"] == 24 and out == str(tmp_path / "run")
    with pytest.raises(RecipeError, match="data.mixture"):
        load_recipe("tiny/sft", {"data.mixture": [{"path": "x.jsonl"}]})
