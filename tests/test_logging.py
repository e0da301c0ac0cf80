"""Messages go through ``logging.getLogger("mmredstar.…")``: a Python caller silences or redirects them with
logging (the package only has a NullHandler); the CLI shows them as before (bare text on stderr), with
``--quiet`` / ``--verbose`` on the root command."""

from __future__ import annotations

import logging
from pathlib import Path

from click.testing import CliRunner

from mmredstar.cli import cli
from mmredstar.curate import run

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "curate" / "geoqa_fixture.yaml")


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _attach(level=logging.INFO):
    logger = logging.getLogger("mmredstar")
    h = Collect()
    old = logger.level
    logger.addHandler(h)
    logger.setLevel(level)
    return logger, h, old


def test_library_messages_reach_logging_not_stderr(tmp_path, capfd):
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("mmredstar").handlers)
    out = tmp_path / "run"
    logger, h, old = _attach()
    try:
        run(CONFIG, [f"out={out}"], progress=False)
        run(CONFIG, [f"out={out}"], progress=False)           # the rerun says it has nothing to do
    finally:
        logger.removeHandler(h)
        logger.setLevel(old)
    assert any(m.startswith("decontamination: 1 benchmark questions") for m in h.messages), h.messages
    assert any("already complete for this config" in m for m in h.messages), h.messages
    err = capfd.readouterr().err
    assert "decontamination:" not in err and "already complete" not in err   # printed by nobody


def test_library_messages_silenced_by_level(tmp_path, capfd):
    logger, h, old = _attach(logging.WARNING)
    try:
        run(CONFIG, [f"out={tmp_path / 'run'}"], progress=False)
    finally:
        logger.removeHandler(h)
        logger.setLevel(old)
    assert h.messages == []
    assert "decontamination:" not in capfd.readouterr().err


def test_cli_output_unchanged_and_quiet(tmp_path):
    out = tmp_path / "run"
    before = list(logging.getLogger("mmredstar").handlers)
    r = CliRunner().invoke(cli, ["curate", CONFIG, "--set", f"out={out}", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{out}: 5 prompts in, 2 decontaminated, 3 to the teacher, 24 responses")
    assert f"report: {out}/report.md" in r.stdout
    assert r.stderr == "decontamination: 1 benchmark questions, 16 13-grams indexed\n"   # bare text, as print did
    assert logging.getLogger("mmredstar").handlers == before                              # the CLI's handler is gone

    q = CliRunner().invoke(cli, ["--quiet", "curate", CONFIG, "--set", f"out={out}", "--no-progress"])
    assert q.exit_code == 0, q.output
    assert q.stderr == "" and "already complete" in q.stdout                              # results stay on stdout
    v = CliRunner().invoke(cli, ["-v", "curate", CONFIG, "--set", f"out={out}", "--no-progress"])
    assert f"{out}: already complete for this config" in v.stderr

    bad = CliRunner().invoke(cli, ["-q", "-v", "curate", CONFIG])
    assert bad.exit_code == 2 and "--quiet and --verbose" in bad.stderr


def test_cli_warnings_survive_quiet(tmp_path):
    from mmredstar.synth import write_polygons

    polygons = write_polygons(tmp_path / "polygons", {"test": 12}, seed=1)["test"]
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"id": "ghost", "response": "Answer: A"}\n')
    r = CliRunner().invoke(cli, ["-q", "eval", "score", "--bench", "geoqa", "--data", str(polygons),
                                 "--responses", str(preds)])
    assert r.exit_code == 0, r.output
    assert "pass@1 0.00% over 12 items" in r.stdout
    assert r.stderr == "  1 line(s) with ids the benchmark does not have: ['ghost']\n"
