"""``mmredstar curate CONFIG.yaml``: run (or resume) a curation config.

    mmredstar curate configs/curate/geoqa_fixture.yaml
    mmredstar curate configs/curate/geoqa_fixture.yaml --out runs/geoqa --workers 4 --set sampling.temperature=0.6
    mmredstar curate configs/curate/numina_qwq.yaml --check       # validate the config, run nothing
    mmredstar curate --keys                                         # every config key with its documentation

Resuming is the default: finished work units in ``OUT/units/`` are reused and never re-queried.
``--fresh`` deletes them (and the outputs) first.

    mmredstar curate CONFIG --shard 0/4 ... --shard 3/4     # one shard per job/node (OUT/shards/shard-i-of-N)
    mmredstar curate merge CONFIG                           # join them: the files one run would write
"""

from __future__ import annotations

import sys

import click

from ..clibase import Command
from .config import field_docs, load_config
from .pipeline import Pipeline
from .shard import MergeDispatch


class CurateCommand(MergeDispatch, Command):
    """``mmredstar curate``; ``mmredstar curate merge ...`` runs ``curate.shard.merge_cmd``."""


@click.command(name="curate", cls=CurateCommand)
@click.argument("config", required=False)
@click.option("--resume/--fresh", default=True, show_default=True,
              help="Reuse finished work units (default) or delete them and the outputs and start over.")
@click.option("--out", default=None, help="Output directory (overrides 'out').")
@click.option("--workers", type=int, default=None, help="Work units whose teacher calls run at once (overrides 'workers').")
@click.option("--limit", type=int, default=None, help="Stop after this many input prompts (overrides 'limit').")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any config key, e.g. --set select.dpo.pairing=all (repeatable).")
@click.option("--progress/--no-progress", default=None, help="Show the progress bar (default: the config's 'progress').")
@click.option("--check", is_flag=True, help="Load and check the config (teacher and difficulty options too), run nothing.")
@click.option("--keys", is_flag=True, help="List every config key with its type and documentation.")
@click.option("--shard", default=None, metavar="i/N",
              help="Run shard i of N (0-based) into OUT/shards/shard-i-of-N; then `mmredstar curate merge CONFIG`.")
def curate(config, resume, out, workers, limit, sets, progress, check, keys, shard):
    """Sample a teacher, filter, verify, and write SFT / DPO / RL sets from CONFIG (a YAML file or a name under configs/).

    `mmredstar curate merge CONFIG` joins the shards of a --shard i/N split into OUT."""
    if keys:
        from mmredstar.registry import lookup

        from ..difficulty.sources import DIFFICULTY_SOURCES
        from ..generate import TEACHERS, teacher_class

        for key, tp, doc in field_docs():
            click.echo(f"{key} ({tp})\n    {doc}")
        for kind in TEACHERS:
            click.echo(f"\n# teacher: {{kind: {kind}, ...}}")
            for key, tp, doc in field_docs(teacher_class(kind).Config, "teacher."):
                click.echo(f"{key} ({tp})\n    {doc}")
        for name in DIFFICULTY_SOURCES:
            cls = lookup(name, DIFFICULTY_SOURCES, "difficulty source")   # the class, without building it
            if getattr(cls, "Config", None) is not None:
                click.echo(f"\n# difficulty: {{source: {name}, params: {{...}}}}")
                for key, tp, doc in field_docs(cls.Config, "difficulty.params."):
                    click.echo(f"{key} ({tp})\n    {doc}")
        return
    if not config:
        raise click.UsageError("give a CONFIG (e.g. configs/curate/geoqa_fixture.yaml), or --keys")
    overrides = list(sets)
    if out is not None:
        overrides.append(f"out={out}")
    if workers is not None:
        overrides.append(f"workers={workers}")
    if limit is not None:
        overrides.append(f"limit={limit}")
    cfg = load_config(config, overrides)
    if check:
        click.echo(f"{config}: OK (teacher {cfg.teacher.get('kind')}, difficulty {cfg.difficulty.source}, out {cfg.out})")
        return

    if shard is not None:
        from .shard import parse_shard, run_shard

        result = run_shard(cfg, *parse_shard(shard), fresh=not resume, progress=progress)
    else:
        result = Pipeline(cfg, progress=progress).run(fresh=not resume)
    c = result.report["counts"]
    click.echo(f"{result.out}: {c['input']} prompts in, {c['decontaminated']} decontaminated, {c['prompts']} to the teacher, "
               f"{c['responses']} responses ({c['verified_correct']} verified) -> {c['sft']} SFT, {c['dpo_pairs']} DPO pairs, "
               f"{c['rl_prompts']} RL prompts, {c['rejected']} rejected")
    u = result.run.get("units")
    if result.run.get("status") == "up to date":
        click.echo("(already complete: nothing to do)")
    elif isinstance(u, dict):
        click.echo(f"work units: {u['units']} ({u['teacher_queried']} queried, {u['teacher_cached']} reused from an "
                   f"earlier run) in {result.run.get('seconds', 0):.1f}s")
    click.echo(f"report: {result.out}/report.md")


if __name__ == "__main__":
    sys.exit(curate())
