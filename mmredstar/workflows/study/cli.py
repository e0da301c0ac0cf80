"""``mmredstar study run | plan | report``."""

from __future__ import annotations

import click

from ...clibase import Group
from .config import load_config
from .stages import plan_text, render_markdown, report_only, run


# ----------------------------------------------------------------------------------------- CLI
@click.group(cls=Group)
def study():
    """Data-composition studies: the paper's data-scale and difficulty grids, trained and evaluated."""


def _overrides(sets, out):
    return list(sets) + ([f"out={out}"] if out else [])


@study.command("run")
@click.argument("config")
@click.option("--out", default=None, help="Output directory (overrides the config's 'out').")
@click.option("--set", "sets", multiple=True, help="Override a config key, e.g. --set eval.limit=20.")
@click.option("--only", multiple=True, help="Run only these grids or cells (scale, difficulty, scale-4k, L7-9...).")
@click.option("--train-only", is_flag=True, help="Build the pool and subsets and train; no evaluation.")
def run_cmd(config, out, sets, only, train_only):
    """Build the subsets, train every cell, evaluate each, and write the table (finished work is skipped)."""
    rep = run(config, _overrides(sets, out), only=tuple(only) or None, train_only=train_only)
    if not train_only:
        click.echo(render_markdown(rep))


@study.command("plan")
@click.argument("config")
@click.option("--out", default=None, help="Output directory (overrides the config's 'out').")
@click.option("--set", "sets", multiple=True, help="Override a config key.")
def plan_cmd(config, out, sets):
    """Print the expanded cells and the exact commands to run each stage on a cluster."""
    cfg = load_config(config, _overrides(sets, out))
    click.echo(plan_text(cfg, config))


@study.command("report")
@click.argument("config")
@click.option("--out", default=None, help="Output directory (overrides the config's 'out').")
@click.option("--set", "sets", multiple=True, help="Override a config key.")
def report_cmd(config, out, sets):
    """Rebuild study.{json,md,png} from the evaluation results under OUT/eval."""
    rep = report_only(config, _overrides(sets, out))
    click.echo(render_markdown(rep))
