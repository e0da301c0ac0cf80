"""The benchmark framework: suite registry, the result file, the CLI entry (not the figures).

    .venv/bin/python -m pytest -q tests/verify/test_bench.py
"""

import json
import sys
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import bench  # noqa: E402
from bench import framework  # noqa: E402


def tiny_suite(quick=False):
    return {"figures": {"x": 1.5, "quick": quick}, "table": [["x", "1.5", "units"]], "notes": ["a note"]}


def test_registry_is_a_literal_dict_of_import_paths():
    assert bench.SUITES["verify"] == "bench.verify:run"
    assert all(":" in v for v in bench.SUITES.values())


def test_run_suite_writes_the_record(tmp_path, monkeypatch):
    monkeypatch.setitem(bench.SUITES, "tiny", f"{__name__}:tiny_suite")
    monkeypatch.setenv("MMREDSTAR_BENCH_MACHINE", "testbox")
    rec, path = framework.run_suite("tiny", quick=True, out_dir=tmp_path)
    assert path == tmp_path / "tiny-quick-testbox.json"
    saved = json.loads(path.read_text())
    assert saved["figures"] == {"x": 1.5, "quick": True}
    env = saved["environment"]
    assert env["machine"] == "testbox" and env["cpu_count"] and "python" in env["versions"]
    assert "sympy" in env["versions"] and saved["command"] == "python -m bench tiny --quick" and saved["date"]
    assert "x" in framework.format_table(saved["table"])


def test_cli_lists_suites():
    from mmredstar.cli import cli

    res = CliRunner().invoke(cli, ["bench", "--list"])
    assert res.exit_code == 0 and "verify" in res.output
