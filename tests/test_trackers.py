"""Curation and evaluation report their counters to the trackers of ``report_to`` (as training does): real
TensorBoard event files read back with tensorboard's own reader; W&B in offline mode where wandb is installed."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmredstar.cli import cli
from mmredstar.config import ConfigError
from mmredstar.curate import run
from mmredstar.trackers import check_report_to

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "curate" / "geoqa_fixture.yaml")
needs_tb = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                              reason="tensorboard is not installed: pip install tensorboard (the dev extra has it)")


@pytest.fixture
def polygons(tmp_path) -> Path:
    from mmredstar.synth import write_polygons

    return Path(write_polygons(tmp_path / "polygons", {"test": 12}, seed=1)["test"])


def _scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dirs = sorted({os.path.dirname(p) for p in glob.glob(str(out / "runs" / "*" / "events.out.tfevents.*"))})
    assert dirs, f"no event files under {out}/runs"
    got: dict[str, list[tuple[int, float]]] = {}
    for d in dirs:
        acc = EventAccumulator(d)
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            got.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return got


@needs_tb
def test_curate_counters_to_tensorboard(tmp_path, monkeypatch):
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    out = tmp_path / "cur"
    res = run(CONFIG, [f"out={out}", "report_to=[tensorboard]"], progress=False)
    got = _scalars(out)
    c = res.report["counts"]
    assert got["curate/counts/sft"] == [(0, c["sft"])] and c["sft"] == 12
    assert got["curate/counts/dpo_pairs"] == [(0, 6.0)] and got["curate/counts/input"] == [(0, 5.0)]
    assert got["curate/verdicts/correct"] == [(0, 13.0)]
    assert got["curate/units/teacher_queried"] == [(0, 2.0)]
    assert got["curate/pass_rate"][0][1] == pytest.approx(res.report["pass_rate"], abs=1e-6)
    # the tracker is how the run is watched, not what it makes: the same outputs, and a rerun is up to date
    report = json.loads((out / "report.json").read_text())
    assert "report_to" not in report["config"]
    assert run(CONFIG, [f"out={out}"], progress=False).run["status"] == "up to date"


def test_bad_report_to_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"report_to.*unknown tracker 'tensorbord'"):
        run(CONFIG, [f"out={tmp_path}", "report_to=[tensorbord]"], progress=False)
    assert check_report_to("none") == [] and check_report_to(None) == []
    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(ValueError, match="wandb is not installed here; pip install wandb"):
            check_report_to(["wandb"])


@needs_tb
def test_eval_metrics_to_tensorboard(tmp_path, polygons, monkeypatch):
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    out = tmp_path / "ev"
    r = CliRunner().invoke(cli, ["eval", "run", "--model", "scripted", "--backend", "scripted", "--bench", "geoqa",
                                 "--data", str(polygons), "--backend-opt", "error_rate=0.0",
                                 "--backend-opt", "no_answer_rate=0.0", "--set", "max_new_tokens=64",
                                 "--out", str(out), "--report-to", "tensorboard"])
    assert r.exit_code == 0, r.output
    got = _scalars(out)
    assert got["eval/scripted/geoqa/pass@1"] == [(0, 1.0)]
    assert got["eval/scripted/geoqa/n_items"] == [(0, 12.0)]
    bad = CliRunner().invoke(cli, ["eval", "run", "--model", "scripted", "--backend", "scripted", "--bench", "geoqa",
                                   "--data", str(polygons), "--out", str(tmp_path / "x"), "--report-to", "mlflowx"])
    assert bad.exit_code == 1 and "unknown tracker 'mlflowx'" in bad.stderr
    assert not (tmp_path / "x" / "scripted").exists()          # refused before anything ran


@pytest.mark.slow   # wandb-core starts a service process: ~30 s here
def test_curate_counters_to_wandb_offline(tmp_path, monkeypatch):
    if importlib.util.find_spec("wandb") is None:
        pytest.skip("wandb is not installed: pip install wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "cur"
    run(CONFIG, [f"out={out}", "report_to=[wandb]"], progress=False)
    runs = glob.glob(str(out / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert runs, f"no offline W&B run under {out}/wandb"
    # the run's transaction log (protobuf records: a history item's key, then its value as JSON)
    data = Path(runs[0]).read_bytes()
    assert re.search(rb"curate/counts/sft.{1,4}12", data, re.S) and b"curate/verdicts/correct" in data
