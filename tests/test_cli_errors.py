"""The CLI's one error handler (mmredstar/clibase.py): user errors print ``error: ...`` and exit 1, every command."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from mmredstar.cli import cli
from mmredstar.clibase import Group


def test_user_error_is_one_line_with_exit_1():
    r = CliRunner().invoke(cli, ["train", "no/such_recipe"])
    assert r.exit_code == 1
    assert r.output.startswith("error: unknown train asset 'no/such_recipe'") and "Traceback" not in r.output


def test_errors_below_a_nested_group_are_handled(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("out: x\nseed: 0\ngenerat: {}\n")
    r = CliRunner().invoke(cli, ["geoqa", "prepare", str(bad)])
    assert r.exit_code == 1 and r.output.startswith("error: ") and "bad.yaml:3: unknown key 'generat'" in r.output


def test_debug_lets_the_traceback_through():
    from mmredstar.assets import AssetError

    r = CliRunner().invoke(cli, ["--debug", "train", "no/such_recipe"])
    assert r.exit_code == 1 and isinstance(r.exception, AssetError)
    r = CliRunner(env={"MMREDSTAR_DEBUG": "1"}).invoke(cli, ["train", "no/such_recipe"])
    assert isinstance(r.exception, AssetError)


def test_programming_errors_keep_their_traceback_and_click_flow_is_untouched():
    @click.group(cls=Group)
    def g():
        pass

    @g.command()
    def boom():
        raise KeyError("a bug")

    @g.command()
    def stop():
        raise click.exceptions.Exit(3)          # a RuntimeError subclass: must not become "error: ..."

    r = CliRunner().invoke(g, ["boom"])
    assert isinstance(r.exception, KeyError)
    assert CliRunner().invoke(g, ["stop"]).exit_code == 3


def test_real_process_prints_error_on_stderr(tmp_path):
    r = subprocess.run([sys.executable, "-c", "from mmredstar.cli import main; import sys; sys.exit(main())",
                        "data", "cards", "no_such_card"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "no_such_card" in r.stderr
    assert "Traceback" not in r.stderr
