"""``mmredstar demo``: the end-to-end demo, prepare -> curate -> verify -> SFT -> DPO -> eval, on this machine's CPU.

    .venv/bin/mmredstar demo                      # writes runs/demo/ (about 6 minutes on a 2-core CPU)
    .venv/bin/mmredstar demo --out runs/ci-demo

It is exactly ``mmredstar geoqa run configs/geoqa/demo.yaml --out DIR`` (an ordinary GeoQA pipeline config:
generated polygon diagrams in GeoQA's LLM-era format, the scripted long-CoT teacher, the tiny InternVL-style
VLM), followed by the before/after table. ``DIR/report.json`` holds the accuracies of the untrained model,
after SFT, SFT continued (the control), SFT + DPO, SFT + GRPO and SFT + DPO with blank images, each with
the number of held-out items, the binomial standard error and a 95% Wilson interval, plus the margins.
A rerun skips finished stages; ``--fresh`` starts over.
"""

from __future__ import annotations

import logging
import shutil
import time

import click

from ..clibase import Command
from .geoqa import run_all, summary_table
from .geoqa.cli import _load

log = logging.getLogger(__name__)

DEMO_CONFIG = "geoqa/demo"
"""The demo's pipeline config, ``configs/geoqa/demo.yaml``."""


@click.command("demo", cls=Command)
@click.option("--out", default="runs/demo", show_default=True, help="Output directory.")
@click.option("--config", default=DEMO_CONFIG, show_default=True, help="The GeoQA pipeline config to run.")
@click.option("--set", "sets", multiple=True, help="Override a config key (e.g. --set eval.limit=100).")
@click.option("--fresh", is_flag=True, help="Delete DIR first and run every stage.")
def demo(out, config, sets, fresh):
    """The end-to-end demo (the README's main job): a GeoQA pipeline run with the tiny VLM and the scripted teacher."""
    if fresh:
        shutil.rmtree(out, ignore_errors=True)
    cfg = _load(config, out, sets)
    log.info(f"mmredstar demo: `mmredstar geoqa run {cfg.path} --out {out}` (prepare -> curate -> verify -> SFT "
             "-> DPO -> eval); a few minutes on a CPU.")
    t0 = time.time()
    rep = run_all(cfg)
    click.echo("")
    click.echo(summary_table(rep))
    stages = ", ".join(f"{k} {v['seconds']:.0f} s" + (" (done before)" if v.get("skipped_now") else "")
                       for k, v in rep["stages"].items() if v.get("seconds") is not None)
    click.echo(f"\nstages: {stages}; this run took {time.time() - t0:.0f} s")
    click.echo(f"wrote {out}/report.json (summary), {out}/eval/report.md (details), {out}/curate/report.md (curation)")
