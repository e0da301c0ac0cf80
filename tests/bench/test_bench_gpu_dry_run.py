"""The GPU suite's code paths on the CPU with tiny models (``python -m bench.gpu --dry-run``): measurements in
their own processes, results stored as they finish, a rerun resumes without redoing them, a time budget
stops cleanly with the rest pending. The full dry run (every part) is a slow test.

    .venv/bin/python -m pytest -q tests/bench/test_bench_gpu_dry_run.py            # + -m slow for the full run
"""

import json
import os
import subprocess
import sys

import pytest

from bench.gpu import Settings, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_dry_run_dpo_part_stores_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("MMREDSTAR_BENCH_GPU_PARTS", str(tmp_path / "parts.json"))
    monkeypatch.setenv("MMREDSTAR_BENCH_WORK", str(tmp_path / "work"))
    s = Settings(dry_run=True, models=["qwen2_5_0_5b"], parts=["dpo"])
    res = run(settings=s)
    row = res["figures"]["dpo"]["qwen2_5_0_5b"]
    assert row["status"] == "ok" and row["tokens_per_s"] > 0 and row["pairs_per_s"] > 0, row
    assert res["figures"]["measurements_run_now"] == 1
    stored = json.loads((tmp_path / "parts.json").read_text())
    assert list(stored) == ["dpo/qwen2_5_0_5b/128"] and stored["dpo/qwen2_5_0_5b/128"]["status"] == "ok"
    again = run(settings=Settings(dry_run=True, models=["qwen2_5_0_5b"], parts=["dpo"]))
    assert again["figures"]["measurements_run_now"] == 0  # resumed from the stored record
    assert again["figures"]["dpo"]["qwen2_5_0_5b"]["tokens_per_s"] == row["tokens_per_s"]


def test_budget_stops_with_the_rest_pending(tmp_path, monkeypatch):
    monkeypatch.setenv("MMREDSTAR_BENCH_GPU_PARTS", str(tmp_path / "parts.json"))
    monkeypatch.setenv("MMREDSTAR_BENCH_WORK", str(tmp_path / "work"))
    res = run(settings=Settings(dry_run=True, models=["qwen2_5_0_5b"], parts=["throughput"], budget_s=0))
    assert res["figures"]["measurements_run_now"] == 0 and res["figures"]["pending"]
    assert any("rerun the same command" in n for n in res["notes"])


@pytest.mark.slow
def test_full_dry_run_covers_every_part(tmp_path):
    env = {**os.environ, "MMREDSTAR_BENCH_WORK": str(tmp_path / "work")}
    p = subprocess.run([sys.executable, "-m", "bench.gpu", "--dry-run", "--out", str(tmp_path)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    (path,) = [x for x in tmp_path.glob("gpu-dryrun-*.json") if not x.name.endswith("parts.json")]
    f = json.loads(path.read_text())["figures"]
    text = f["throughput"]["qwen2_5_0_5b"]["rungs"]
    assert all(text[r]["status"] == "ok" for r in ("trl", "unpacked", "packed", "varlen", "offload", "ulysses")), text
    assert text["ulysses"]["memory_options"]["fused_linear_ce"]  # 2 processes on gloo, sequence parallel 2
    assert text["offload"]["memory_options"]["offload_activations"] and "speedup_vs_trl" in text["packed"]
    vlm = f["throughput"]["internvl2_1b"]["rungs"]
    assert vlm["offload"]["status"] == "ok" and vlm["trl"]["status"] == "n/a"
    assert f["longest_sequence"]["qwen2_5_0_5b"]["offload"]["longest"] >= 128
    assert f["dpo"]["qwen2_5_0_5b"]["status"] == "ok"
