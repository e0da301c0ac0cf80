"""``mmredstar eval``: run benchmarks, score outside outputs, rebuild reports, list specs.

    mmredstar eval list
    mmredstar eval show geoqa
    mmredstar eval run --model tiny_vlm --bench geoqa --data data/geoqa_test.jsonl --limit 20 --out runs/eval
    mmredstar eval run --model base=tiny_text,sft=runs/sft --bench aime24,math500 --n 4 --out runs/eval
    mmredstar eval run --model Qwen/QwQ-32B --backend openai --backend-opt base_url=http://localhost:8000/v1 --bench aime24
    mmredstar eval score --bench aime24 --responses outputs.jsonl --out runs/scored
    mmredstar eval report runs/eval
"""

from __future__ import annotations

import json
import logging

import click

from ..clibase import Group
from .report import collect_results, render_markdown, write_report
from .runner import evaluate
from .score import score_responses
from .spec import describe, list_specs, load_spec

log = logging.getLogger(__name__)


def _opts(pairs: tuple[str, ...]) -> dict:
    import yaml

    out = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"{p!r}: expected KEY=VALUE", param_hint="--backend-opt/--set")
        k, v = p.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v.strip() else None
    return out


@click.group("eval", cls=Group)
def eval_group():
    """Run and score benchmarks (eval/*.yaml); write the paper-style report."""


@eval_group.command("list")
def list_cmd():
    """Every benchmark spec, its data card and whether its default data is present."""
    for name in list_specs():
        try:
            d = describe(load_spec(name))
        except Exception as e:  # noqa: BLE001 - list the others
            click.echo(f"{name:15s} ERROR {e}")
            continue
        mark = "ok" if d["data_present"] else "--data"
        click.echo(f"{name:15s} card={d['card']:13s} n={d['n']:<3d} [{mark:6s}] {d['description']}")


@eval_group.command("show")
@click.argument("bench")
def show_cmd(bench):
    """The resolved spec of one benchmark."""
    spec = load_spec(bench)
    click.echo(json.dumps({"name": spec.name, "path": spec.path, **spec.to_dict(),
                           "data_path": spec.data_path()}, indent=2, ensure_ascii=False))


@eval_group.command("run")
@click.option("--model", "models", required=True,
              help="Preset, model directory or served name; several comma-separated, optionally LABEL=MODEL.")
@click.option("--bench", "benches", required=True, help="Benchmark spec name(s) under eval/ (comma-separated) or paths.")
@click.option("--backend", default="transformers", show_default=True,
              help="transformers | openai | vllm (the curation teachers; also scripted/replay).")
@click.option("--backend-opt", "backend_opts", multiple=True,
              help="Backend option KEY=VALUE (e.g. base_url=http://localhost:8000/v1, batch_size=32, threads=2).")
@click.option("--n", type=int, default=None, help="Samples per prompt (overrides the spec).")
@click.option("--limit", type=int, default=None, help="Only the first N items of each benchmark.")
@click.option("--data", default=None, help="Source file for the (single) benchmark: raw release or a sample file.")
@click.option("--set", "sets", multiple=True, help="Override a spec key, e.g. --set max_new_tokens=512.")
@click.option("--blank-images", is_flag=True, help="Replace every image by a white one (the image ablation).")
@click.option("--batch-size", type=int, default=None, help="Sequences generated together (transformers backend).")
@click.option("--out", default="runs/eval", show_default=True, help="Output directory.")
@click.option("--overwrite", is_flag=True, help="Discard earlier results made with other settings.")
@click.option("--title", default=None, help="Report title.")
@click.option("--report-to", default=None,
              help="Trackers that get the metrics, as train.report_to: tensorboard (OUT/runs/), wandb; comma-separated.")
def run_cmd(models, benches, backend, backend_opts, n, limit, data, sets, blank_images, batch_size, out, overwrite,
            title, report_to):
    """Generate, verify and score; per-sample JSONL (resumable) and OUT/report.{json,md,png}."""
    bopts = _opts(backend_opts)
    if batch_size is not None:
        bopts["batch_size"] = batch_size
    rep = evaluate(models, benches, out=out, backend=backend, backend_options=bopts, data=data, n=n,
                   limit=limit, spec_overrides=_opts(sets) or None, blank=blank_images, overwrite=overwrite,
                   title=title, report_to=report_to)
    click.echo(render_markdown(rep))
    click.echo(f"wrote {out}/report.json, report.md, report.png and per-sample files under {out}/<model>/<bench>/")


@eval_group.command("score")
@click.option("--bench", required=True, help="Benchmark spec name or path.")
@click.option("--responses", required=True, type=click.Path(exists=True, dir_okay=False),
              help="JSONL of {id, response} or {id, responses: [...]}.")
@click.option("--data", default=None, help="The benchmark's source file (default: the spec's data path).")
@click.option("--out", default=None, help="Write per-sample results and report.{json,md} here.")
@click.option("--label", default=None, help="Row label (default: the responses file's stem).")
def score_cmd(bench, responses, data, out, label):
    """Score responses made elsewhere against the benchmark's answers (ids: sample id or the dataset's id)."""
    r = score_responses(bench, responses, data=data, out=out, label=label)
    p = r.get("pass@1")
    click.echo(f"{r['bench']}: pass@1 {100 * (p or 0):.2f}% over {r['n_items']} items "
               f"({r.get('missing', 0)} without a response; answered-only "
               f"{100 * (r.get('pass@1_answered') or 0):.2f}%)")
    for m in r.get("metrics") or []:
        if m != "pass@1" and m in r:
            click.echo(f"  {m}: {100 * r[m]:.2f}%")
    if r["n_unknown"]:
        log.warning(f"  {r['n_unknown']} line(s) with ids the benchmark does not have: {r['unknown_ids'][:10]}")
    for p in r["problems"][:20]:
        log.warning(f"  problem: {p}")
    if out:
        click.echo(f"wrote {out}/report.json, report.md")


@eval_group.command("report")
@click.argument("out")
@click.option("--title", default=None)
def report_cmd(out, title):
    """Rebuild OUT/report.{json,md,png} from every OUT/<model>/<bench>/result.json."""
    res = collect_results(out)
    if not res:
        raise click.ClickException(f"no results under {out} (expected {out}/<model>/<bench>/result.json)")
    click.echo(render_markdown(write_report(out, res, title=title)))
