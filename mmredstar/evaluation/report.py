"""The evaluation report in the paper's layout: benchmarks as columns plus AVG, models / checkpoints as rows.

    mmredstar eval report runs/eval          # rebuild report.{json,md,png} from every result under runs/eval

``report.json``::

    {"benchmarks": ["aime24", "math500"], "models": ["base", "sft"],
     "table": {"sft": {"aime24": 13.3, "math500": 71.2, "AVG": 42.25}, ...},     # pass@1 in percent
     "results": [{"label": "sft", "bench": "aime24", "pass@1": 0.133, "se": ..., "ci95": [..], "maj@8": ...,
                  "tokens": {"mean": ..., ...}, "chars": {...}, "n_items": 30, "n_samples": 8, ...}, ...]}

``report.md`` holds the main table (pass@1, %), a table per extra metric (maj@k, pass@k), and the details
(items, samples, standard error and 95% interval, no-answer share, response lengths in tokens and
characters). ``report.png`` plots pass@1 per benchmark and model with standard-error bars.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..io import atomic_write, write_json


def _pct(x) -> float | None:
    return None if x is None else round(100.0 * x, 2)


def build_table(results: list[dict], metric: str = "pass@1") -> tuple[list[str], list[str], dict]:
    """(benchmarks, models, {model: {bench: percent, "AVG": mean over the row's benchmarks}}) in first-seen order.

    >>> b, m, t = build_table([{"label": "a", "bench": "x", "pass@1": 0.5}, {"label": "a", "bench": "y", "pass@1": 0.25}])
    >>> t["a"]
    {'x': 50.0, 'y': 25.0, 'AVG': 37.5}
    """
    benches: list[str] = []
    models: list[str] = []
    table: dict[str, dict] = {}
    for r in results:
        if r["bench"] not in benches:
            benches.append(r["bench"])
        if r["label"] not in models:
            models.append(r["label"])
        table.setdefault(r["label"], {})[r["bench"]] = _pct(r.get(metric))
    for m in models:
        row = table[m]
        vals = [row.get(b) for b in benches]
        row_out = {b: row.get(b) for b in benches}
        row_out["AVG"] = round(sum(vals) / len(vals), 2) if vals and all(v is not None for v in vals) else None
        table[m] = row_out
    return benches, models, table


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def markdown_table(benches: list[str], models: list[str], table: dict, *, first: str = "Model") -> str:
    """A markdown table, one row per model, one column per benchmark, then AVG."""
    cols = benches + ["AVG"]
    lines = ["| " + " | ".join([first] + cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for m in models:
        lines.append("| " + " | ".join([m] + [_fmt(table[m].get(c)) for c in cols]) + " |")
    return "\n".join(lines)


def _extra_metrics(results: list[dict]) -> list[str]:
    seen: list[str] = []
    for r in results:
        for m in r.get("metrics") or []:
            if m != "pass@1" and m not in seen and any(m in x for x in results):
                seen.append(m)
    return seen


def render_markdown(report: dict) -> str:
    """``report.md`` text."""
    res = report["results"]
    out = [f"# {report.get('title') or 'Evaluation'}", "",
           "pass@1 (%, mean over the samples of each item); AVG is the mean over the benchmarks."
           + (f" Math answers judged in mode {', '.join(report['math_modes'])}." if report.get("math_modes") else ""), "",
           markdown_table(report["benchmarks"], report["models"], report["table"]), ""]
    for m in _extra_metrics(res):
        b, mo, t = build_table(res, m)
        out += [f"## {m} (%)", "", markdown_table(b, mo, t), ""]
    out += ["## Details", "",
            "| Model | Benchmark | items | samples | pass@1 ± SE | 95% CI | no answer | tokens mean / median / max | chars mean |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in res:
        p, se, ci = r.get("pass@1"), r.get("se"), r.get("ci95") or [None, None]
        tok, ch = r.get("tokens") or {}, r.get("chars") or {}
        na = (r.get("verdicts") or {}).get("no_answer", 0.0)
        pcell = "-" if p is None else f"{100 * p:.1f} ± {100 * (se or 0):.1f}"
        cicell = "-" if ci[0] is None else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
        tcell = " / ".join("-" if tok.get(k) is None else f"{tok[k]:g}" for k in ("mean", "median", "max"))
        out.append(f"| {r['label']} | {r['bench']} | {r.get('n_items')} | {r.get('n_samples')} | {pcell} | {cicell} | "
                   f"{100 * na:.1f}% | {tcell} | {_fmt(ch.get('mean'))} |")
    notes = [f"- {r['label']} / {r['bench']}: {n}" for r in res for n in r.get("notes") or []]
    if notes:
        out += ["", "Notes:", *notes]
    if report.get("seconds") is not None:
        out += ["", f"Wall time: {report['seconds']:.1f} s."]
    return "\n".join(out) + "\n"


def plot(report: dict, path: str | os.PathLike) -> str | None:
    """Grouped bars of pass@1 per benchmark and model, with standard-error bars (PNG)."""
    res = report["results"]
    if not res:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches, models = report["benchmarks"], report["models"]
    by = {(r["label"], r["bench"]): r for r in res}
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(benches) * max(1, len(models)) * 0.6 + 2), 3.6))
    for i, m in enumerate(models):
        xs, ys, es = [], [], []
        for j, b in enumerate(benches):
            r = by.get((m, b))
            if r is None or r.get("pass@1") is None:
                continue
            xs.append(j + (i - (len(models) - 1) / 2) * width)
            ys.append(100 * r["pass@1"])
            es.append(100 * (r.get("se") or 0))
        ax.bar(xs, ys, width, yerr=es, capsize=3, label=m)
    ax.set_xticks(range(len(benches)))
    ax.set_xticklabels(benches)
    ax.set_ylabel("pass@1 (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title(report.get("title") or "Evaluation")
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return str(path)


def write_report(out: str | os.PathLike, results: list[dict], *, title: str | None = None,
                 seconds: float | None = None, plots: bool = True) -> dict:
    """Write ``OUT/report.json``, ``OUT/report.md`` (and ``report.png``); returns the report dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    benches, models, table = build_table(results)
    modes = sorted({r["verification"]["math_mode"] for r in results if isinstance(r.get("verification"), dict)})
    report = {"title": title or "Evaluation", "benchmarks": benches, "models": models, "table": table,
              "results": results, "seconds": None if seconds is None else round(seconds, 2),
              "math_modes": modes}
    write_json(out / "report.json", report)
    with atomic_write(out / "report.md") as f:
        f.write(render_markdown(report))
    if plots:
        plot(report, out / "report.png")
    return report


def collect_results(out: str | os.PathLike) -> list[dict]:
    """Every ``<label>/<bench>/result.json`` under ``out`` (sorted by label, then benchmark)."""
    res = []
    for p in sorted(Path(out).glob("*/*/result.json")):
        with open(p, encoding="utf-8") as f:
            res.append(json.load(f))
    return res
