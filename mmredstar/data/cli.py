"""``mmredstar data ...``: convert, validate and summarise sample files."""

from __future__ import annotations

import json
import sys
from collections import Counter

import click


@click.group()
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
    from ..io import validate_file

    total, problems = 0, []
    for f in files:
        n, ps = validate_file(f, image_root=image_root, check_images=not no_images, max_problems=max_problems)
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
    from ..io import read_samples

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
