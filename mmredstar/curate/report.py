"""The curation report: counts per stage, drop reasons, pass rate by difficulty, response lengths.

Accumulated one prompt at a time in bounded memory (counters and fixed log-spaced length histograms,
never a list of all responses), written as ``report.json`` (machine-readable), ``report.md`` (for
people) and PNG plots (``funnel.png``, ``pass_rate_by_difficulty.png``, ``lengths.png``).

The report depends only on the data, not on how the run went (cached units, retries, timing live in
``runs.jsonl``), so a resumed run writes the same report as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
from collections import Counter

from ..io import atomic_write, write_json
from ..levels import band
from ..schema import Sample
from ..verify import verification_mode
from .select import is_correct, is_filtered

FUNNEL = ["input", "decontaminated", "out_of_range", "prompts", "responses", "filtered", "verified_correct",
          "sft", "dpo_pairs", "rl_prompts", "rejected"]
CATEGORIES = ("correct", "wrong", "no_answer", "error", "filtered")
BINS_PER_OCTAVE = 4


class LengthHist:
    """Counts in log-spaced bins (4 per doubling) plus exact count/sum/min/max: bounded, order-free.

    >>> h = LengthHist()
    >>> for x in (10, 100, 1000): h.add(x)
    >>> d = h.to_dict(); d["count"], d["mean"], d["min"], d["max"]
    (3, 370.0, 10, 1000)
    """

    def __init__(self):
        self.bins: Counter = Counter()
        self.count = 0
        self.total = 0
        self.min: int | None = None
        self.max: int | None = None

    @staticmethod
    def bin_of(x: int) -> int:
        return int(math.floor(BINS_PER_OCTAVE * math.log2(x + 1)))

    @staticmethod
    def edge(b: int) -> float:
        return 2 ** (b / BINS_PER_OCTAVE) - 1

    def add(self, x: int) -> None:
        x = max(0, int(x))
        self.bins[self.bin_of(x)] += 1
        self.count += 1
        self.total += x
        self.min = x if self.min is None else min(self.min, x)
        self.max = x if self.max is None else max(self.max, x)

    def quantile(self, q: float) -> float | None:
        """Approximate quantile (the upper edge of the bin holding it, clipped to the max)."""
        if not self.count:
            return None
        target, acc = q * self.count, 0
        for b in sorted(self.bins):
            acc += self.bins[b]
            if acc >= target:
                return round(min(self.edge(b + 1), self.max), 1)
        return float(self.max)

    def to_dict(self) -> dict:
        if not self.count:
            return {"count": 0}
        return {"count": self.count, "mean": round(self.total / self.count, 1), "min": self.min, "max": self.max,
                "p50": self.quantile(0.5), "p90": self.quantile(0.9),
                "hist": [[round(self.edge(b), 1), round(self.edge(b + 1), 1), self.bins[b]] for b in sorted(self.bins)]}


def reason_key(reason: str | None) -> str:
    """The category of a drop reason: its stage and first word(s), without details.

    >>> reason_key("filter: repetition (a 12-gram repeats 9 times)"), reason_key("verify: wrong (extracted 3)")
    ('filter: repetition', 'verify: wrong')
    >>> reason_key("select: over max_per_prompt=2")
    'select: over max_per_prompt'
    """
    if not reason:
        return "unknown"
    stage, _, rest = reason.partition(":")
    rest = rest.strip()
    for sep in (" (", "=", ":", ";", ","):
        rest = rest.split(sep)[0]
    return f"{stage.strip()}: {rest.strip()}" if rest else stage.strip()


class Report:
    """Bounded-memory accumulator over judged prompts; ``to_dict``, ``write(out_dir)``."""

    def __init__(self):
        self.counts: Counter = Counter({k: 0 for k in FUNNEL})
        self.drop_reasons: Counter = Counter()
        self.decontamination: Counter = Counter()
        self.verdicts: Counter = Counter()
        self.finish_reasons: Counter = Counter()
        self.difficulty: Counter = Counter()
        self.samples_per_prompt: Counter = Counter()
        self.by_band: dict[str, Counter] = {}
        self.prompts_without_responses = 0
        self.input_problems: Counter = Counter()   # inputs left out before the teacher: duplicate_ids, bad_images
        self.input_examples: list[str] = []
        self.lengths = {c: {"chars": LengthHist(), "tokens": LengthHist()} for c in CATEGORIES}

    def add_input_problem(self, kind: str, message: str) -> None:
        """One input left out (``kind``: duplicate_ids | bad_images); the first 20 messages are kept."""
        self.input_problems[kind] += 1
        if len(self.input_examples) < 20:
            self.input_examples.append(message)

    def add_prompt(self, s: Sample, *, sft: int, pairs: int, rl: bool, rejected: list[tuple[int, object]]) -> None:
        """Count one judged prompt and what selection made of it."""
        c = self.counts
        c["prompts"] += 1
        c["responses"] += len(s.responses)
        c["sft"] += sft
        c["dpo_pairs"] += pairs
        c["rl_prompts"] += int(rl)
        c["rejected"] += len(rejected)
        b = "unknown" if s.difficulty is None else str(band(s.difficulty))
        self.difficulty[b] += 1
        self.samples_per_prompt[str(len(s.responses))] += 1
        if not s.responses:
            self.prompts_without_responses += 1
        row = self.by_band.setdefault(b, Counter())
        row["prompts"] += 1
        row["responses"] += len(s.responses)
        ok = 0
        for r in s.responses:
            self.finish_reasons[str(r.finish_reason)] += 1
            if is_filtered(r):
                cat = "filtered"
                c["filtered"] += 1
            else:
                cat = r.verdict if r.verdict in CATEGORIES else "error"
                self.verdicts[cat] += 1
            if is_correct(r):
                ok += 1
                c["verified_correct"] += 1
            self.lengths[cat]["chars"].add(len(r.text))
            if r.completion_tokens is not None:
                self.lengths[cat]["tokens"].add(r.completion_tokens)
        row["correct"] += ok
        row["prompts_with_correct"] += int(ok > 0)
        for _, r in rejected:
            self.drop_reasons[reason_key(r.reason)] += 1

    def to_dict(self) -> dict:
        bands = sorted(self.by_band, key=lambda b: (b == "unknown", int(b) if b != "unknown" else 0))
        pr = []
        for b in bands:
            r = self.by_band[b]
            pr.append({"band": b, "prompts": r["prompts"], "responses": r["responses"], "correct": r["correct"],
                       "pass_rate": round(r["correct"] / r["responses"], 4) if r["responses"] else None,
                       "prompts_with_correct": r["prompts_with_correct"]})
        total = self.counts["responses"]
        return {
            "counts": {k: self.counts[k] for k in FUNNEL},
            "pass_rate": round(self.counts["verified_correct"] / total, 4) if total else None,
            "prompts_without_responses": self.prompts_without_responses,
            "input_problems": {**dict(sorted(self.input_problems.items())), "examples": list(self.input_examples)},
            "drop_reasons": dict(self.drop_reasons.most_common()),
            "decontamination": dict(self.decontamination.most_common()),
            "verdicts": dict(sorted(self.verdicts.items())),
            "finish_reasons": dict(sorted(self.finish_reasons.items())),
            "difficulty": {b: self.difficulty[b] for b in bands},
            "samples_per_prompt": dict(sorted(self.samples_per_prompt.items(), key=lambda kv: int(kv[0]))),
            "pass_rate_by_difficulty": pr,
            "lengths": {cat: {k: h.to_dict() for k, h in d.items()} for cat, d in self.lengths.items()},
        }

    # -- writing ----------------------------------------------------------------------------------
    def write(self, out_dir: str, *, config: dict | None = None, plots: bool = True) -> dict:
        d = self.to_dict()
        if config is not None:
            d["config"] = config
        d["verification"] = verification_mode(config.get("verify") if isinstance(config, dict) else None)
        d["plots"] = write_plots(d, out_dir) if plots else []
        write_json(os.path.join(out_dir, "report.json"), d)
        with atomic_write(os.path.join(out_dir, "report.md")) as f:
            f.write(markdown(d))
        return d


def markdown(d: dict) -> str:
    """The report as markdown tables."""
    c = d["counts"]
    L = ["# Curation report", "",
         f"{c['input']} input prompts -> {c['prompts']} sent to the teacher -> {c['responses']} responses "
         f"({c['verified_correct']} verified, pass rate {d['pass_rate'] if d['pass_rate'] is not None else '-'}) -> "
         f"**{c['sft']} SFT**, **{c['dpo_pairs']} DPO pairs**, **{c['rl_prompts']} RL prompts**; "
         f"{c['rejected']} responses rejected."
         + (f" Math answers judged in mode {d['verification']['math_mode']}." if d.get("verification") else ""),
         "", "## Funnel", "", "| stage | count |", "|---|---:|"]
    L += [f"| {k} | {v} |" for k, v in c.items()]
    ip = {k: v for k, v in (d.get("input_problems") or {}).items() if k != "examples"}
    if ip:
        L += ["", "## Inputs left out", "", "| problem | inputs |", "|---|---:|"]
        L += [f"| {k} | {v} |" for k, v in ip.items()]
        L += [""] + [f"- {m}" for m in d["input_problems"].get("examples", [])]
    if d["decontamination"]:
        L += ["", "## Decontamination (prompts removed per benchmark)", "", "| benchmark | removed |", "|---|---:|"]
        L += [f"| {k} | {v} |" for k, v in d["decontamination"].items()]
    L += ["", "## Why responses were dropped", "", "| reason | responses |", "|---|---:|"]
    L += [f"| {k} | {v} |" for k, v in d["drop_reasons"].items()] or ["| (none) | 0 |"]
    L += ["", "## Pass rate by difficulty", "", "| difficulty | prompts | responses | verified | pass rate | prompts with a verified response |",
          "|---|---:|---:|---:|---:|---:|"]
    for r in d["pass_rate_by_difficulty"]:
        pr = "-" if r["pass_rate"] is None else f"{r['pass_rate']:.2f}"
        L.append(f"| {r['band']} | {r['prompts']} | {r['responses']} | {r['correct']} | {pr} | {r['prompts_with_correct']} |")
    L += ["", "## Response lengths", "", "| kind | responses | mean chars | p50 | p90 | max | mean tokens |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    for cat, h in d["lengths"].items():
        ch, tk = h["chars"], h["tokens"]
        if ch.get("count"):
            L.append(f"| {cat} | {ch['count']} | {ch['mean']} | {ch['p50']} | {ch['p90']} | {ch['max']} | "
                     f"{tk['mean'] if tk.get('count') else '-'} |")
    L += ["", "Finish reasons: " + ", ".join(f"{k}: {v}" for k, v in d["finish_reasons"].items()),
          "", "Samples per prompt: " + ", ".join(f"{k}: {v}" for k, v in d["samples_per_prompt"].items())]
    if d.get("prompts_without_responses"):
        L.append(f"\n{d['prompts_without_responses']} prompt(s) got no response (e.g. unmatched in a replay set).")
    for p in d.get("plots", []):
        L += ["", f"![{p}]({p})"]
    return "\n".join(L) + "\n"


def write_plots(d: dict, out_dir: str) -> list[str]:
    """Funnel, pass rate by difficulty and length histograms as PNG (matplotlib, Agg); returns file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    c = d["counts"]
    fig, ax = plt.subplots(figsize=(7, 4))
    keys = list(c)[::-1]
    ax.barh(keys, [c[k] for k in keys], color="#4477aa")
    for i, k in enumerate(keys):
        ax.text(c[k], i, f" {c[k]}", va="center", fontsize=8)
    ax.set_title("Curation funnel")
    ax.set_xlabel("count")
    fig.tight_layout()
    names.append(_save(fig, out_dir, "funnel.png"))

    rows = [r for r in d["pass_rate_by_difficulty"] if r["responses"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    if rows:
        xs = [r["band"] for r in rows]
        ax.bar(xs, [r["pass_rate"] for r in rows], color="#228833")
        for x, r in zip(xs, rows, strict=True):
            ax.text(x, r["pass_rate"], f"{r['prompts']}p", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("difficulty band (labels over bars: prompts)")
    ax.set_ylabel("teacher pass rate")
    ax.set_title("Pass rate by difficulty")
    fig.tight_layout()
    names.append(_save(fig, out_dir, "pass_rate_by_difficulty.png"))

    has_tokens = any(h["tokens"].get("count") for h in d["lengths"].values())
    fig, axes = plt.subplots(1, 2 if has_tokens else 1, figsize=(11 if has_tokens else 7, 4), squeeze=False)
    for ax, unit in zip(axes[0], ["chars", "tokens"] if has_tokens else ["chars"], strict=True):
        for cat, h in d["lengths"].items():
            hist = h[unit].get("hist")
            if not hist:
                continue
            xs = [lo for lo, _, _ in hist] + [hist[-1][1]]
            ys = [n for _, _, n in hist]
            ax.stairs(ys, [max(x, 0.5) for x in xs], label=f"{cat} ({h[unit]['count']})")
        ax.set_xscale("log")
        ax.set_xlabel(f"response length ({unit})")
        ax.set_ylabel("responses")
        ax.legend(fontsize=8)
    fig.suptitle("Response lengths by verdict")
    fig.tight_layout()
    names.append(_save(fig, out_dir, "lengths.png"))
    return names


def _save(fig, out_dir: str, name: str) -> str:
    import matplotlib.pyplot as plt

    with atomic_write(os.path.join(out_dir, name), "wb") as f:
        fig.savefig(f, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return name
