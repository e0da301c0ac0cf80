"""Smoke run of the CPU suite (``python -m bench cpu --quick``, a few minutes): it completes, writes its result
file, and its exact checks hold (packed == unpacked loss, our loss == TRL's on the same batch, packing
efficiency >= 0.97 and not below TRL's). Speed ratios are recorded, never asserted (benchmarks, not tests).

    .venv/bin/python -m pytest -q -m slow tests/bench/test_bench_cpu_quick.py
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_cpu_suite_quick(tmp_path):
    env = {**os.environ, "MMREDSTAR_BENCH_WORK": str(tmp_path / "work")}
    p = subprocess.run([sys.executable, "-m", "bench", "cpu", "--quick", "--out", str(tmp_path)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stderr[-3000:]
    (path,) = tmp_path.glob("cpu-quick-*.json")
    rec = json.loads(path.read_text())
    f = rec["figures"]
    assert f["loss_checks"]["ours_minus_trl"] < 1e-4 and f["loss_checks"]["packed_minus_unpacked"] < 1e-5
    for res in f["packing"].values():
        assert res["ours"]["efficiency"] >= 0.97 and res["ours_minus_trl_bfd"] >= 0
    assert f["sft_speed"]["ours_tokens_per_s"] > 0 and f["sft_speed"]["trl_tokens_per_s"] > 0
    assert f["memory"]["max_loss_difference"] < 1e-3
    assert "load_average_start" in f and rec["environment"]["versions"]["trl"]
