"""``mmredstar curate --shard i/N`` + ``mmredstar curate merge``: the shards joined are byte for byte the
files one run writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mmredstar.cli import cli
from mmredstar.curate import run
from mmredstar.curate.shard import find_shards, parse_shard
from mmredstar.io import read_jsonl

SAME = ("sft.jsonl", "dpo.jsonl", "rl.jsonl", "rejected.jsonl", "decontaminated.jsonl", "report.json", "report.md",
        "funnel.png", "pass_rate_by_difficulty.png", "lengths.png")


WORDS = ("amber basil cedar delta ember fjord grove harbor island jasper kelp lagoon meadow north orchid "
         "pepper quartz river saffron timber umber valley willow xenon yarrow zephyr").split()


def _inputs(tmp_path: Path, n: int, seed: int) -> tuple[Path, Path]:
    """``n`` arithmetic problems, each behind its own 12-word preamble, and a benchmark file holding
    three of them (so decontamination removes three)."""
    import random

    from mmredstar.io import write_samples
    from mmredstar.schema import Sample
    from mmredstar.synth.arithmetic import arithmetic_problems

    rng = random.Random(seed)
    out = []
    for s in arithmetic_problems(n, seed=seed):
        pre = " ".join(rng.choice(WORDS) for _ in range(12))
        out.append(Sample.text(f"{pre}. {s.question}", s.answer, "math", source="shardtest",
                               difficulty=s.difficulty, meta=s.meta))
    write_samples(tmp_path / "in.jsonl", out)
    write_samples(tmp_path / "bench.jsonl", out[4:7])
    return tmp_path / "in.jsonl", tmp_path / "bench.jsonl"


def _config(tmp_path: Path, n: int, out: Path, seed: int = 2) -> Path:
    src, bench = _inputs(tmp_path, n, seed)
    cfg = {"out": str(out), "inputs": [{"path": str(src)}],
           "decontaminate": {"ngram": 8, "benchmarks": [{"path": str(bench), "name": "held_out"}]},
           "teacher": {"kind": "scripted", "error_rate": 0.35, "no_answer_rate": 0.1},
           "difficulty": {"source": "labels"}, "schedule": {"1-4": 2, "5-10": 4}, "default_n": 3, "unit_size": 2,
           "filters": ["answer_format"], "select": {"dpo": {"max_pairs_per_prompt": 2}}, "progress": False}
    p = tmp_path / f"{out.name}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_shards_merged_equal_one_run_byte_for_byte(tmp_path):
    one = run(_config(tmp_path, 27, tmp_path / "one"), progress=False)
    c = one.report["counts"]
    assert c["decontaminated"] == 3 and c["prompts"] == 24 and c["dpo_pairs"] > 0 and c["rl_prompts"] > 0
    cfg = _config(tmp_path, 27, tmp_path / "split")
    r = CliRunner().invoke(cli, ["curate", str(cfg), "--shard", "1/3"])        # one through the CLI
    assert r.exit_code == 0, r.output
    from mmredstar.curate.config import load_config
    from mmredstar.curate.shard import run_shard

    for i in (0, 2):
        run_shard(load_config(cfg), i, 3, progress=False)
    n, dirs = find_shards(tmp_path / "split")
    assert n == 3 and [d.name for d in dirs] == ["shard-0-of-3", "shard-1-of-3", "shard-2-of-3"]
    units = [json.loads((d / "shard.json").read_text())["units"] for d in dirs]
    assert units == [4, 4, 4]                                               # 12 units of 2 prompts
    r = CliRunner().invoke(cli, ["curate", "merge", str(cfg)])
    assert r.exit_code == 0, r.output
    for f in SAME:
        assert (tmp_path / "split" / f).read_bytes() == (tmp_path / "one" / f).read_bytes(), f
    log = list(read_jsonl(tmp_path / "split" / "runs.jsonl"))[-1]
    assert log["units"]["teacher_queried"] == 0 and log["units"]["teacher_cached"] == 12   # nothing generated


def test_merge_names_missing_and_unfinished_shards(tmp_path):
    cfg = _config(tmp_path, 8, tmp_path / "s", seed=1)
    r = CliRunner().invoke(cli, ["curate", "merge", str(cfg)])
    assert r.exit_code != 0 and "no shard directories" in r.output
    assert CliRunner().invoke(cli, ["curate", str(cfg), "--shard", "0/2"]).exit_code == 0
    r = CliRunner().invoke(cli, ["curate", "merge", str(cfg)])
    assert r.exit_code != 0 and "--shard 1/2" in r.output                   # says which shard to run
    assert CliRunner().invoke(cli, ["curate", str(cfg), "--shard", "1/2"]).exit_code == 0
    victim = next((tmp_path / "s" / "shards" / "shard-1-of-2" / "units" / "teacher").glob("*.jsonl"))
    victim.unlink()                                                         # a unit lost
    r = CliRunner().invoke(cli, ["curate", "merge", str(cfg)])
    assert r.exit_code != 0 and "in none of the 2 shards" in r.output
    r = CliRunner().invoke(cli, ["curate", str(cfg), "--shard", "2/2"])
    assert r.exit_code != 0 and "0 <= i < N" in r.output
    with pytest.raises(ValueError, match="expected i/N"):
        parse_shard("1-of-2")
