"""``mmredstar bench SUITE [--quick]``: the same as ``python -m bench SUITE`` from the repository root.

    mmredstar bench verify --quick

The suites live in the repository's ``bench/`` folder (not in the installed package): this command
finds it next to the ``mmredstar`` package of an editable install, or in the current directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .clibase import Command


def _bench_root() -> Path:
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (root / "bench" / "framework.py").is_file():
            return root
    raise click.ClickException("the bench/ folder was not found: run from a checkout of the repository "
                               "(pip install -e .) or from its root")


@click.command("bench", cls=Command)
@click.argument("suite", required=False)
@click.option("--quick", is_flag=True, help="A short run (smoke-test sized).")
@click.option("--list", "list_", is_flag=True, help="List the suites.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Results folder (default bench/results).")
def bench(suite, quick, list_, out):
    """Run a benchmark suite (speed, memory) and record the figures in bench/results/."""
    root = str(_bench_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    from bench.framework import main

    args = ([suite] if suite else []) + (["--quick"] if quick else []) + (["--list"] if list_ else []) + \
        (["--out", out] if out else [])
    code = main(args)
    if code:
        raise SystemExit(code)
