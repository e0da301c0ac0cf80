"""``mmredstar rstar run CONFIG --out DIR``: run or resume the self-evolution workflow; prints the report."""

from __future__ import annotations

import json

import click

from ...clibase import Group


@click.group("rstar", cls=Group)
def rstar():
    """rStar-Math: tree search, process preference model, self-evolution rounds."""


@rstar.command("run")
@click.argument("config")
@click.option("--out", default=None, help="Output directory (default: the config's 'out').")
@click.option("--set", "sets", multiple=True, help="Override a config key, e.g. --set rounds=3.")
def run_cmd(config, out, sets):
    """Run every stage not yet finished for this config; write OUT/report.json."""
    from .config import load_config
    from .stages import run_all

    cfg = load_config(config, list(sets), out=out)
    rep = run_all(cfg)
    keys = ("greedy", "majority", "ppm_search", "pairwise_accuracy", "rounds")
    click.echo(json.dumps({k: rep.get(k) for k in keys}, indent=1))
    click.echo(f"{cfg.out}/report.json")
