"""``mmredstar data ...``: convert public datasets into samples; validate and summarise sample files.

    mmredstar data cards                                    # the shipped data cards
    mmredstar data convert --card aime24 --src ../shared/benchmarks/qwen2.5-math/aime24.jsonl --out data/aime24.jsonl
    mmredstar data validate data/aime24.jsonl
    mmredstar data stats data/aime24.jsonl
    mmredstar data subset runs/curate/x/sft.jsonl --out data/ladder --sizes 4000,8000,16000,32000,all
    mmredstar data export --src rl.jsonl --out rl.parquet --format verl   # or --format openrlhf
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter

import click

from ..clibase import Group
from ..io import read_samples, validate_file
from .cards import list_cards, load_card
from .convert import convert as run_convert
from .convert import sidecar_dir
from .export import export as run_export
from .subset import build_subsets

log = logging.getLogger(__name__)


@click.group(cls=Group)
def data():
    """Convert public datasets into samples; validate and summarise sample files."""


@data.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--image-root", default=None, help="Directory image paths are relative to (default: each file's directory).")
@click.option("--no-images", is_flag=True, help="Do not open image files (faster; paths are not checked).")
@click.option("--max-problems", type=int, default=None, help="Stop after this many problems.")
def validate(files, image_root, no_images, max_problems):
    """Check sample files (JSONL / Parquet) and report EVERY problem with file, line and field.

    Exits non-zero when there is any problem."""
    total, problems = 0, []
    for f in files:
        n, ps = validate_file(f, image_root=image_root, check_images=not no_images, max_problems=max_problems)
        if n == 0 and not ps:
            from ..schema import Problem

            ps = [Problem(f, None, "-", "holds no records (an empty file?)", "check that it was written completely")]
        total += n
        problems.extend(ps)
    for p in problems:
        click.echo(str(p), err=True)
    bad_lines = len({(p.file, p.line) for p in problems})
    if problems:
        click.echo(f"{len(problems)} problem(s) in {bad_lines} record(s) out of {total}", err=True)
        sys.exit(1)
    click.echo(f"ok: {total} record(s) valid")


def compute_stats(spec) -> dict:
    """Counts by answer_type / split / source, images, responses and verdicts, difficulty, lengths."""
    c = {k: Counter() for k in ("answer_type", "split", "source", "verdict", "difficulty", "finish_reason")}
    n = n_img_samples = n_images = n_resp = n_pairs = 0
    q_len = []
    r_len = []
    for s in read_samples(spec):
        n += 1
        c["answer_type"][s.answer_type] += 1
        c["split"][s.split or "-"] += 1
        c["source"][s.source] += 1
        if s.images:
            n_img_samples += 1
            n_images += len(s.images)
        if s.difficulty is not None:
            c["difficulty"][str(int(round(s.difficulty)))] += 1
        q_len.append(len(s.question))
        resps = list(s.responses)
        if getattr(s, "chosen", None) is not None:
            n_pairs += 1
            resps += [s.chosen, s.rejected]
        for r in resps:
            n_resp += 1
            c["verdict"][r.verdict or "-"] += 1
            c["finish_reason"][r.finish_reason or "-"] += 1
            r_len.append(len(r.text))

    def summary(xs):
        if not xs:
            return None
        xs = sorted(xs)
        return {"mean": sum(xs) / len(xs), "p50": xs[len(xs) // 2], "p90": xs[int(len(xs) * 0.9)], "max": xs[-1]}

    return {
        "records": n, "with_images": n_img_samples, "images": n_images, "responses": n_resp, "pairs": n_pairs,
        **{k: dict(sorted(v.items())) for k, v in c.items()},
        "question_chars": summary(q_len), "response_chars": summary(r_len),
    }


@data.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(files, as_json):
    """Summarise sample files: counts by answer type, split, source; images; responses; lengths."""
    st = compute_stats(list(files))
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=", ".join(files), show_header=True)
    t.add_column("what")
    t.add_column("value")
    for k, v in st.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}: {b:.0f}" if isinstance(b, float) else f"{a}: {b}" for a, b in v.items()) or "-"
        t.add_row(k, str(v) if v is not None else "-")
    Console().print(t)


def _parse_options(pairs) -> dict:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"{p!r}: write KEY=VALUE", param_hint="--option")
        k, _, v = p.partition("=")
        out[k.strip()] = v
    return out


@data.command()
@click.option("--card", "card_name", required=True, help="Data card: a name (see `mmredstar data cards`) or a card file (.md/.yaml).")
@click.option("--src", required=True, help="Source: a file (JSONL, JSON, Parquet, .pk), a directory or a glob; a "
                                          "datasets save_to_disk directory; hf:ID[:config][@split] (datasets.load_dataset).")
@click.option("--out", required=True, help="Output sample file (.jsonl, .jsonl.gz, .parquet), or a shard prefix with --shard-size.")
@click.option("--split", default=None, help="Split to record on every sample (default: the card's, else from the file name).")
@click.option("--where", "where", multiple=True, help='Keep rows passing a filter, e.g. --where \'task="geometry problem solving"\' --where level=5 (ANDed).')
@click.option("--subset", default=None, help="A named filter from the card (e.g. mathvista: geometry; math: hard).")
@click.option("--limit", type=int, default=None, help="Stop after this many samples.")
@click.option("--image-dir", default=None, help="Directory relative image paths in the source are resolved against.")
@click.option("--option", "opts", multiple=True, help="Adapter option KEY=VALUE (e.g. response=solution, language=zh, spj_file=PATH).")
@click.option("--shard-size", type=int, default=None, help="Write shards OUT-00000.jsonl ... of this many samples.")
@click.option("--dedupe", is_flag=True, help="Drop rows whose content repeats an earlier row's (default: keep, with ids <id>-2...).")
@click.option("--allow-skips", is_flag=True, help="Exit 0 even if some rows could not be converted (they are still listed).")
@click.option("--overwrite", is_flag=True, help="Redo the conversion even if OUT is up to date.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def convert(card_name, src, out, split, where, subset, limit, image_dir, opts, shard_size, dedupe, allow_skips,
            overwrite, quiet):
    """Convert a public dataset into sample records through its data card (streaming).

    Prints what was written, filtered and skipped. A row that cannot be converted is reported with
    its file, line (or row) and field, listed with its reason in OUT.convert/skipped.jsonl, and the
    command exits non-zero unless --allow-skips. A rerun with the same inputs does nothing."""
    report = run_convert(card_name, src, out, split=split, where=where, subset=subset, limit=limit,
                         image_dir=image_dir, options=_parse_options(opts), shard_size=shard_size,
                         dedupe=dedupe, overwrite=overwrite, progress=not quiet)
    if report.up_to_date:
        click.echo(f"up to date: {out} (same card, sources and options; --overwrite redoes it)")
    click.echo(report.summary())
    if report.skipped:
        log.warning(f"skipped rows with their reasons: {sidecar_dir(out)}/skipped.jsonl")
        if not allow_skips:
            log.error(f"{report.skipped} row(s) could not be converted; fix them or pass --allow-skips")
            sys.exit(1)


@data.command()
@click.argument("name", required=False)
def cards(name):
    """List the data cards, or show one card's mapping and notes."""
    if name is None:
        for n in list_cards():
            c = load_card(n)
            hub = c.info.get("hub")
            hub = ", ".join(hub) if isinstance(hub, list) else (hub or "-")
            click.echo(f"{n:15s} {c.answer_type:8s} {hub}")
        return
    c = load_card(name)
    click.echo(f"# {c.name}  ({c.path})")
    with open(c.path, encoding="utf-8") as f:
        click.echo(f.read())


@data.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", required=True, help="Output directory: <name>.jsonl + <name>.manifest.json per subset, subsets.json.")
@click.option("--sizes", default=None, help="Nested size ladder, e.g. 4000,8000,16000,32000,all (4k, 1.3k, 1m work too).")
@click.option("--bands", default=None, help="Difficulty bands, e.g. low=1-3,medium=4-6,high=7-9 (with --sizes: each band cut to each size).")
@click.option("--prompts", default=None, help="Choose N prompts (meta.prompt_id) ... (use with --pairs).")
@click.option("--pairs", default=None, help="... then up to M records among them, round-robin (a ladder like 1300,4000 works).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the record order (same seed, same ids).")
@click.option("--allow-short", is_flag=True, help="Keep a subset with fewer records than asked (flagged 'short' in its manifest).")
@click.option("--overwrite", is_flag=True, help="Rebuild even if DIR holds the same subsets.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def subset(inputs, out, sizes, bands, prompts, pairs, seed, allow_short, overwrite, quiet):
    """Build nested, seeded subsets of sample files: a size ladder, difficulty bands, or N prompts / M pairs.

    Streams the input (never holds it in memory). Each subset gets a manifest: source files with sha256 and
    record counts, seed, rule, counts per band / domain / source / answer type, and the ids' sha256."""
    mans = build_subsets(list(inputs), out, sizes=sizes, bands=bands, prompts=prompts, pairs=pairs, seed=seed,
                         allow_short=allow_short, overwrite=overwrite, progress=not quiet)
    for m in mans:
        bands_txt = ", ".join(f"{k}: {v}" for k, v in m["counts"]["band"].items())
        click.echo(f"{m['name']:>22s}: {m['records']:>8d} records, {m['prompts']:>7d} prompts"
                   + (" (short)" if m["short"] else "") + f"  [bands {bands_txt}]")
    click.echo(f"wrote {len(mans)} subset(s) with manifests to {out}/ (index: {out}/subsets.json)")


@data.command()
@click.option("--src", required=True, multiple=True, help="Sample set(s) (SFT, DPO or RL): sample files, directories or globs.")
@click.option("--out", required=True, help="Output file (.parquet for verl, .jsonl for openrlhf; .jsonl/.json, or .parquet for trl-*).")
@click.option("--format", "fmt", required=True, help="Export format: verl | openrlhf | trl-sft | trl-dpo | sharegpt | "
                                                     "llamafactory | swift (or pkg.module:writer).")
@click.option("--image-root", default=None, help="Directory image paths are relative to (default: each file's directory).")
@click.option("--images", "images", type=click.Choice(["path", "embed"]), default=None,
              help="Chat formats: images as paths relative to OUT's folder (default) or embedded (base64 / Parquet bytes).")
def export(src, out, fmt, image_root, images):
    """Export a sample set to another tool's format: RL engines (verl, OpenRLHF), TRL, ShareGPT, LLaMA-Factory, ms-swift."""
    n = run_export(list(src), out, fmt, image_root=image_root, images=images)
    click.echo(f"wrote {n} row(s) to {out} ({fmt})")
