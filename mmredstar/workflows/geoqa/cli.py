"""``mmredstar geoqa ...``: one command per stage, and ``run``."""

from __future__ import annotations

import click

from ...clibase import Group
from .config import STAGES, GeoQAConfig, load_config
from .stages import run_all, run_stage, summary_table


# ----------------------------------------------------------------------------------------- CLI
def _load(config: str, out: str | None, sets: tuple[str, ...]) -> GeoQAConfig:
    ov = list(sets)
    if out:
        ov.append(f"out={out}")
    return load_config(config, ov)


def _stage_command(stage: str):
    @click.command(stage, help=f"Run the '{stage}' stage of CONFIG (skipped when finished for this config).")
    @click.argument("config")
    @click.option("--out", default=None, help="Output directory (overrides the config's 'out').")
    @click.option("--set", "sets", multiple=True, help="Override a config key, e.g. --set sft.overrides.train.max_steps=20.")
    @click.option("--force", is_flag=True, help="Run even if finished.")
    def cmd(config, out, sets, force):
        cfg = _load(config, out, sets)
        st = run_stage(cfg, stage, force=force)
        if stage == "eval":
            click.echo(summary_table(st["summary"]))

    return cmd


@click.group("geoqa", cls=Group)
def geoqa():
    """The GeoQA pipeline: prepare | curate | sft | dpo | rl | sft_continued | eval | run CONFIG.yaml (one config)."""


for _s in STAGES:
    geoqa.add_command(_stage_command(_s))


@geoqa.command("run")
@click.argument("config")
@click.option("--out", default=None, help="Output directory (overrides the config's 'out').")
@click.option("--set", "sets", multiple=True, help="Override a config key, e.g. --set eval.limit=50.")
@click.option("--force", multiple=True, type=click.Choice(STAGES), help="Rerun this stage and every stage after it.")
@click.option("--until", type=click.Choice(STAGES), default=None, help="Stop after this stage.")
def run_cmd(config, out, sets, force, until):
    """Every stage in order, skipping finished ones; prints the before/after table."""
    cfg = _load(config, out, sets)
    rep = run_all(cfg, force=tuple(force), until=until)
    if "accuracy" not in rep:
        click.echo(f"stopped after '{until}'; wrote {cfg.out}/report.json")
        return
    click.echo(summary_table(rep))
    click.echo(f"\nwrote {cfg.out}/report.json (and eval/report.md); took {rep['seconds_now']:.0f} s")
