"""The ``mmredstar`` command line.

Each sub-command lives in its own module and is imported only when it runs, so ``mmredstar --help``
is instant and a data command never imports torch. The table below is the whole command list.
"""

from __future__ import annotations

import importlib
import sys

import click

from .clibase import DEBUG_KEY, Group, set_verbosity

# name -> ("module:attribute", one-line help). Literal on purpose: this is the command index.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("mmredstar.workflows.demo:demo", "The end-to-end demo: prepare, curate, verify, SFT, DPO, eval on built-in data."),
    "data": ("mmredstar.data.cli:data", "Convert public datasets, validate and summarise sample files."),
    "verify": ("mmredstar.verify.cli:verify", "Score responses (math, choice, code) with the rule reward."),
    "curate": ("mmredstar.curate.cli:curate", "Sample a teacher, filter, verify, and write SFT / DPO / RL sets."),
    "models": ("mmredstar.modeling.cli:models", "List and inspect model presets."),
    "train": ("mmredstar.training.cli:train", "Train from a recipe: SFT, DPO, GRPO / REINFORCE++."),
    "eval": ("mmredstar.evaluation.cli:eval_group", "Run and score benchmarks; write the paper-style report."),
    "geoqa": ("mmredstar.workflows.geoqa.cli:geoqa", "The GeoQA pipeline: prepare | curate | sft | dpo | eval | run."),
    "difficulty": ("mmredstar.difficulty.cli:difficulty", "Train a difficulty scorer and score samples."),
    "study": ("mmredstar.workflows.study.cli:study", "Run the paper's data-scale and difficulty studies as a grid."),
    "mcts": ("mmredstar.search.mcts:mcts_cmd", "rStar-Math tree search over code-augmented steps: save per-problem trees."),
    "rstar": ("mmredstar.workflows.rstar.cli:rstar", "rStar-Math self-evolution: MCTS, PPM, policy rounds, report."),
    "bench": ("mmredstar.bench_cli:bench", "Run a benchmark suite (speed, memory) and record the figures."),
}


class LazyGroup(Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        mod_name, attr = target.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name and (e.name == mod_name or mod_name.startswith(e.name + ".")):
                raise click.ClickException(f"'{name}' is not available in this installation ({e})") from None
            raise
        return getattr(mod, attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mmredstar")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error (also: MMREDSTAR_DEBUG=1).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr (no progress messages).")
@click.option("-v", "--verbose", count=True, help="Debug messages too.")
@click.pass_context
def cli(ctx, debug, quiet, verbose):
    """mmredstar: build slow-thinking reasoning models (text and vision-language) the RedStar way.

    Data cards, model presets, recipes and benchmark specs are named by their bare names
    (e.g. ``geoqa``, ``tiny_vlm``, ``tiny/sft``, ``math500``) or given as paths.
    """
    ctx.meta[DEBUG_KEY] = debug
    set_verbosity(ctx, quiet, verbose)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="mmredstar", standalone_mode=True)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
