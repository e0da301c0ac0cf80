"""``mmredstar demo``: a shrunken run of the demo's own config through the demo command (default run), and
the full demo with its margins (``slow``; CI also runs ``mmredstar demo --out runs/ci-demo``).

    .venv/bin/python -m pytest -q tests/geoqa/test_demo.py
    .venv/bin/python -m pytest -q -m slow tests/geoqa/test_demo.py      # the full demo, ~6-10 minutes
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mmredstar.workflows.demo import demo
from mmredstar.workflows.geoqa import load_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHRINK = ["prepare.generate.splits.train=32", "prepare.generate.splits.test=6", "progress=false",
          "curate.progress=false", "curate.report.plots=false", "curate.unit_size=16",
          "sft.overrides.train.max_steps=1", "sft.overrides.train.batch_size=8", "sft.overrides.train.micro_batch_size=8",
          "sft.overrides.train.progress=false", "dpo.overrides.train.max_steps=1", "dpo.overrides.train.batch_size=4",
          "dpo.overrides.train.micro_batch_size=4", "dpo.overrides.train.progress=false", "eval.overrides.max_new_tokens=4"]


def test_demo_config_is_an_ordinary_geoqa_config():
    cfg = load_config("configs/geoqa/demo.yaml")
    assert cfg.model == "tiny_vlm" and cfg.prepare.generate.kind == "polygons"
    assert cfg.prepare.generate.splits["test"] == 300
    assert cfg.curate["teacher"]["kind"] == "scripted"
    assert cfg.eval.checkpoints == ["base", "sft", "dpo"] and cfg.eval.blank_images == ["dpo"]


def test_demo_command_smoke(tmp_path):
    out = tmp_path / "demo"
    args = ["--out", str(out)] + [x for s in SHRINK for x in ("--set", s)]
    r = CliRunner().invoke(demo, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "| untrained |" in r.output and "| after DPO (blank images) |" in r.output
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["accuracy"]) == {"base", "sft", "dpo", "dpo-blank"} and rep["items"] == 6
    for a in rep["accuracy"].values():
        assert a["n"] == 6 and set(a) >= {"accuracy", "se", "ci95"}
    assert set(rep["margins"]) == {"trained_minus_untrained", "trained_minus_blank_images"}
    assert rep["stages"]["sft"]["metrics"]["steps"] == 1
    r2 = CliRunner().invoke(demo, args, catch_exceptions=False)          # a rerun skips every stage
    assert r2.exit_code == 0 and r2.output.count("(done before)") == 5


@pytest.mark.slow
def test_full_demo_learns_and_uses_the_picture(tmp_path):
    out = tmp_path / "demo"
    p = subprocess.run([sys.executable, "-m", "mmredstar.cli", "demo", "--out", str(out)], cwd=REPO,
                       capture_output=True, text=True, timeout=3600)
    assert p.returncode == 0, p.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text())
    acc = rep["accuracy"]
    assert rep["items"] == 300 and all(a["n"] == 300 for a in acc.values())
    # measured on the 2-core box: untrained 0.0%, SFT 61.7%, DPO 61.3%, DPO with blank images 25.0%
    assert acc["base"]["accuracy"] <= 0.05                              # untrained: no parseable answers
    assert acc["dpo"]["accuracy"] >= 0.5
    for name in ("trained_minus_untrained", "trained_minus_blank_images"):
        m = rep["margins"][name]
        assert m["difference"] >= 0.25 and m["z"] >= 6, (name, m)       # well beyond noise
    assert acc["dpo"]["accuracy"] >= acc["sft"]["accuracy"] - 0.05        # DPO does not hurt
    print(p.stdout)
