"""``mmredstar models list | info [--build]``.

    .venv/bin/python -m pytest -q tests/modeling/test_cli.py
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from mmredstar.cli import cli


def test_list_and_info():
    r = CliRunner().invoke(cli, ["models", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["internvl2_8b"]["family"] == "vlm" and rows["qwen2_5_math_7b_instruct_16k"]["context"] == 16384
    r = CliRunner().invoke(cli, ["models", "info", "internvl2_8b", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["valid"] and d["tokens_per_tile"] == 256 and d["tiles"] == "1-12"
    assert 8.0e9 < d["parameters"]["total"] < 8.2e9 and d["parameters"]["vision"] > 3e8


def test_info_build_runs_a_forward_pass():
    r = CliRunner().invoke(cli, ["models", "info", "tiny_vlm", "--build", "--json"])
    assert r.exit_code == 0, r.output
    b = json.loads(r.output)["build"]
    assert b["tiles"] >= 1 and b["logits_shape"][0] == 1 and b["loss"] > 0
    r = CliRunner().invoke(cli, ["models", "info", "qwen2_5_7b_instruct", "--build"])
    assert r.exit_code != 0 and "random-init presets only" in r.output
    r = CliRunner().invoke(cli, ["models", "info", "no_such_model"])
    assert r.exit_code != 0 and r.output.startswith("error: ") and "Available" in r.output
