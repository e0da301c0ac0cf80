"""``mmredstar difficulty ...``: train a difficulty scorer; score sample files with it.

    mmredstar difficulty train configs/difficulty/tiny.yaml [--set train.max_steps=100] [--out DIR] [--fresh]
    mmredstar difficulty score --model runs/difficulty/tiny IN.jsonl [IN2.jsonl ...] --out OUT.jsonl
    mmredstar difficulty fixture data/arith.jsonl --n 1000        # the labelled arithmetic fixture
"""

from __future__ import annotations

import click

from ..clibase import Group
from ..synth.arithmetic import write_problems
from .score import score_file
from .train import train


@click.group(cls=Group)
def difficulty():
    """Train a difficulty scorer (1-10) on labelled problems; score samples with it."""


@difficulty.command("train")
@click.argument("config")
@click.option("--out", default=None, help="Output directory (overrides the config's 'out').")
@click.option("--set", "sets", multiple=True, help="Override a config key, e.g. --set train.max_steps=100.")
@click.option("--fresh", is_flag=True, help="Retrain even if OUT holds a scorer from the same config.")
def train_cmd(config, out, sets, fresh):
    """Fine-tune a scorer from CONFIG (a YAML file or a name under configs/, e.g. difficulty/tiny).

    Prints and writes (OUT/eval.json) the agreement with held-out labels: exact band, within one and two
    bands, MAE and Spearman rank correlation, beside the constant predictor."""
    from .train import summary

    overrides = list(sets) + ([f"out={out}"] if out else [])
    report = train(config, overrides, fresh=fresh)
    if report:
        click.echo(summary(report))
        click.echo(f"scorer: {report['scorer']} (eval.json, predictions.jsonl, confusion.png beside it)")


@difficulty.command("score")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--model", required=True, help="The scorer directory (written by `mmredstar difficulty train`).")
@click.option("--out", required=True, help="Output sample file (.jsonl).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Problems per forward pass.")
@click.option("--chunk-size", type=int, default=1024, show_default=True,
              help="Samples per resumable chunk (written atomically before the next starts).")
@click.option("--overwrite", is_flag=True, help="Discard earlier results made with another scorer or inputs.")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def score_cmd(inputs, model, out, batch_size, chunk_size, overwrite, threads, quiet):
    """Write each sample of INPUTS with its predicted difficulty (1-10) into OUT; resumable."""
    s = score_file(model, list(inputs), out, batch_size=batch_size, chunk_size=chunk_size, overwrite=overwrite,
                   progress=not quiet, num_threads=threads)
    if s.get("up_to_date"):
        click.echo(f"up to date: {out} (same scorer and inputs; --overwrite redoes it)")
    else:
        click.echo(f"scored {s['scored_now']} sample(s)" + (f", {s['resumed']} from earlier chunks" if s["resumed"] else "")
                   + f" in {s['seconds']:.1f} s -> {out}")
    click.echo("bands: " + ", ".join(f"{k}: {v}" for k, v in s["bands"].items()))


@difficulty.command("fixture")
@click.argument("out")
@click.option("--n", type=int, default=1000, show_default=True, help="Problems (levels 1-5 in turn).")
@click.option("--seed", type=int, default=0, show_default=True)
def fixture_cmd(out, n, seed):
    """Write the labelled arithmetic fixture (level = number of operations; difficulty 2L-1) to OUT."""
    write_problems(out, n, seed)
    click.echo(f"wrote {n} problems to {out}")
