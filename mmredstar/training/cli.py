"""``mmredstar train RECIPE [key=value ...]``: train from a recipe (SFT, DPO, GRPO, REINFORCE++).

    mmredstar train tiny/sft                                   # a tiny CPU run on built-in data
    mmredstar train tiny/sft train.max_steps=5 output_dir=runs/x
    mmredstar train qwen2_5/7B_sft_4k --check                  # validate only (no model loaded)
    torchrun --nproc_per_node 2 -m mmredstar.training tiny/sft train.deepspeed=zero2
    mmredstar train tiny/sft --resume                          # continue from the last checkpoint
    mmredstar train tiny/sft --overwrite                       # train again into a finished output dir
"""

from __future__ import annotations

import sys

import click

from ..clibase import Command
from .config import dump_recipe, load_recipe


@click.command("train", cls=Command, context_settings={"ignore_unknown_options": False})
@click.argument("recipe", required=False)
@click.argument("overrides", nargs=-1)
@click.option("--resume", is_flag=True, help="Resume from the last checkpoint in the output dir (= train.resume=true).")
@click.option("--overwrite", is_flag=True,
              help="Start afresh in an output dir that holds a finished run or checkpoints (= train.overwrite=true).")
@click.option("--check", "check_only", is_flag=True, help="Validate the recipe (keys, preset, data) and exit.")
@click.option("--list", "list_only", is_flag=True, help="List the shipped recipes and named data sets.")
@click.option("--print", "print_only", is_flag=True, help="Print the resolved recipe and exit.")
def train(recipe, overrides, resume, overwrite, check_only, list_only, print_only):
    """Train from RECIPE (a name under train/ such as tiny/sft, or a path) with KEY=VALUE overrides.

    Overrides are dotted recipe keys: train.lr=1e-5 data.max_length=2048 model=tiny_vlm.
    Launch several processes with torchrun / accelerate launch / deepspeed and `-m mmredstar.training`.
    """
    if list_only:
        from mmredstar.assets import list_assets

        from .data import named_sets

        click.echo("recipes:")
        for n in list_assets("train"):
            click.echo(f"  {n}")
        click.echo("named data sets (train/_sets.yaml):")
        for n, s in named_sets().items():
            click.echo(f"  {n:28s} {s['kind']:4s} {s.get('description', '')}")
        return
    if not recipe:
        raise click.UsageError("give a RECIPE (e.g. tiny/sft); --list shows them")
    ov = list(overrides) + (["train.resume=true"] if resume else []) + (["train.overwrite=true"] if overwrite else [])
    if check_only:
        from . import check_recipe

        rec = check_recipe(recipe, ov)
        click.echo(f"ok: {rec.name} ({rec.method}, model {rec.model.name}, data {rec.data.train})")
        return

    rec = load_recipe(recipe, ov)
    if print_only:
        click.echo(dump_recipe(rec))
        return
    from . import run

    out = run(rec)
    click.echo(out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # the deepspeed launcher appends --local_rank=N; the rank is also in $LOCAL_RANK, which is what we read
    argv = [a for a in argv if not a.startswith(("--local_rank", "--local-rank"))]
    try:
        train.main(args=argv, prog_name="python -m mmredstar.training", standalone_mode=True)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
