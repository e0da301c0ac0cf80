"""Evaluation metrics: pass@1 (mean over samples), unbiased pass@k, maj@k, standard errors, length statistics.

Pure functions over per-item results; ``aggregate`` turns the per-item records that ``mmredstar eval run``
writes (``samples.jsonl``) into one benchmark's numbers.

    .venv/bin/python -m pytest -q --doctest-modules mmredstar/evaluation/metrics.py

>>> pass_at_k(n=4, c=1, k=1)
0.25
>>> round(pass_at_k(n=4, c=1, k=2), 4)
0.5
>>> majority(["A", "B", "A", None])
'A'
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``c`` correct among ``n`` samples (Chen et al., 2021, Codex):
    ``1 - C(n-c, k) / C(n, k)`` (exact integer binomials, one division).

    >>> pass_at_k(5, 0, 1), pass_at_k(5, 5, 3), pass_at_k(5, 2, 1)
    (0.0, 1.0, 0.4)
    >>> round(pass_at_k(10, 3, 5), 6)   # 1 - C(7,5)/C(10,5) = 1 - 21/252
    0.916667
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority(keys: Sequence[str | None]) -> str | None:
    """The most common non-empty key; ties go to the key seen first. ``None`` when no key is given.

    >>> majority(["B", "A", "A", "B"]), majority([None, None]), majority([None, "C"])
    ('B', None, 'C')
    """
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None
    best = max(counts.values())
    for k in keys:
        if k is not None and counts[k] == best:
            return k
    return None


def maj_at_k(keys: Sequence[str | None], correct: Sequence[bool], k: int) -> bool:
    """Is the majority answer (over canonical ``keys``) of the first ``k`` samples correct?

    Responses without an answer do not vote; if none has one, the item is wrong.

    >>> maj_at_k(["12", "12", "7"], [True, True, False], 3)
    True
    >>> maj_at_k(["7", "12", "12", "7"], [False, True, True, False], 4)   # tie: the first seen wins
    False
    >>> maj_at_k([None, "3"], [False, True], 2)
    True
    """
    if k > len(keys):
        raise ValueError(f"maj@{k} needs at least {k} samples per item, got {len(keys)}")
    ks, cs = list(keys[:k]), list(correct[:k])
    win = majority(ks)
    if win is None:
        return False
    return any(c for key, c in zip(ks, cs, strict=True) if key == win)


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """(mean, standard error of the mean) of per-item scores; for 0/1 scores the SE is the binomial one,
    ``sqrt(p (1 - p) / N)``.

    >>> mean_se([1, 0, 1, 0])
    (0.5, 0.25)
    """
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(values) / n
    var = sum((v - m) ** 2 for v in values) / n
    return m, math.sqrt(var / n)


def paired_difference(a: dict[str, float], b: dict[str, float]) -> dict:
    """Accuracy of ``a`` minus that of ``b`` on the same items (``{item id: score in [0, 1]}``), in percentage
    points (``points``), with the paired standard error in points (``se``): the SE of the mean of the per-item
    differences, ``sd(a_i - b_i) / sqrt(N)``. Two models that agree on most items differ with a much smaller SE
    than two independent samples would (``sqrt(se_a^2 + se_b^2)``); only items both have are compared.

    >>> d = paired_difference({"x": 1, "y": 1, "z": 0, "w": 0}, {"x": 1, "y": 0, "z": 0, "w": 0})
    >>> d["points"], d["se"], d["n"], d["wins"], d["losses"]
    (25.0, 21.65, 4, 1, 0)
    """
    ids = sorted(set(a) & set(b))
    diffs = [float(a[i]) - float(b[i]) for i in ids]
    m, se = mean_se(diffs)
    return {"points": round(100 * m, 2), "se": round(100 * se, 2), "z": round(m / se, 2) if se > 0 else None,
            "n": len(ids), "wins": sum(d > 0 for d in diffs), "losses": sum(d < 0 for d in diffs)}


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95% by default) of a binomial proportion ``p`` over ``n`` trials.

    >>> [round(x, 4) for x in wilson(0.5, 100)]
    [0.4038, 0.5962]
    >>> wilson(0.0, 300)[0]
    0.0
    """
    if n == 0:
        return float("nan"), float("nan")
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def length_stats(values: Sequence[float]) -> dict:
    """mean / median / p90 / max of response lengths (tokens or characters).

    >>> length_stats([1, 2, 3, 10])
    {'mean': 4.0, 'median': 2.5, 'p90': 10, 'max': 10}
    """
    v = sorted(x for x in values if x is not None)
    if not v:
        return {"mean": None, "median": None, "p90": None, "max": None}
    p90 = v[min(len(v) - 1, math.ceil(0.9 * len(v)) - 1)]
    return {"mean": round(sum(v) / len(v), 2), "median": statistics.median(v), "p90": p90, "max": v[-1]}


def parse_metric(name: str) -> tuple[str, int]:
    """``"pass@8"`` -> ``("pass", 8)``; ``"maj@4"`` -> ``("maj", 4)``.

    >>> parse_metric("maj@16")
    ('maj', 16)
    """
    kind, _, k = name.partition("@")
    if kind not in ("pass", "maj") or not k.isdigit() or int(k) < 1:
        raise ValueError(f"unknown metric {name!r}; use pass@K or maj@K (K >= 1), e.g. pass@1, maj@8, pass@8")
    return kind, int(k)


def aggregate(items: Sequence[dict], metrics: Sequence[str]) -> dict:
    """One benchmark's numbers from per-item records (each with ``responses``: ``[{correct, key, ...}]``).

    Returns ``n_items``, ``n_samples`` (per item, the smallest), ``pass@1`` with ``se`` and ``ci95``, each
    requested ``pass@k`` / ``maj@k`` (skipped with a note when an item has fewer than k samples), the
    verdict shares, finish reasons, and response-length statistics (tokens and characters).

    >>> items = [{"responses": [{"verdict": "correct", "key": "1", "completion_tokens": 4, "chars": 10},
    ...                         {"verdict": "wrong", "key": "2", "completion_tokens": 6, "chars": 12}]},
    ...          {"responses": [{"verdict": "wrong", "key": "3", "completion_tokens": 2, "chars": 8},
    ...                         {"verdict": "no_answer", "key": None, "completion_tokens": 2, "chars": 8}]}]
    >>> r = aggregate(items, ["pass@1", "pass@2", "maj@2"])
    >>> r["pass@1"], r["pass@2"], r["maj@2"], r["n_items"], r["tokens"]["mean"]
    (0.25, 0.5, 0.5, 2, 3.5)
    """
    out: dict = {"n_items": len(items)}
    if not items:
        out.update({"n_samples": 0, "pass@1": None, "se": None, "ci95": None})
        return out
    per_item_n = [len(it["responses"]) for it in items]
    answered = [k for k in per_item_n if k]
    n_min = min(answered) if answered else 0
    out["n_samples"] = n_min
    if len(answered) < len(items):
        out["missing"] = len(items) - len(answered)  # items without any response score 0
    correct = [[r.get("verdict") == "correct" for r in it["responses"]] for it in items]
    scores = [sum(c) / len(c) if c else 0.0 for c in correct]
    p, se = mean_se(scores)
    out["pass@1"], out["se"] = p, se
    if max(per_item_n) <= 1:
        lo, hi = wilson(p, len(items))
    else:
        lo, hi = max(0.0, p - 1.96 * se), min(1.0, p + 1.96 * se)
    out["ci95"] = [lo, hi]
    notes = []
    for m in metrics:
        kind, k = parse_metric(m)
        if kind == "pass" and k == 1:
            continue
        if k > n_min:
            notes.append(f"{m} skipped: items have only {n_min} sample(s)")
            continue
        if kind == "pass":
            vals = [pass_at_k(len(c), sum(c), k) if c else 0.0 for c in correct]
        else:
            vals = [float(maj_at_k([r.get("key") for r in it["responses"]], c, k)) if c else 0.0
                    for it, c in zip(items, correct, strict=True)]
        out[m] = sum(vals) / len(vals)
    if notes:
        out["notes"] = notes
    flat = [r for it in items for r in it["responses"]]
    if not flat:
        return out
    verdicts = Counter(r.get("verdict") or "none" for r in flat)
    out["verdicts"] = {k: round(v / len(flat), 4) for k, v in sorted(verdicts.items())}
    out["finish_reasons"] = dict(sorted(Counter(str(r.get("finish_reason")) for r in flat).items()))
    out["tokens"] = length_stats([r.get("completion_tokens") for r in flat])
    out["chars"] = length_stats([r.get("chars") for r in flat])
    return out
