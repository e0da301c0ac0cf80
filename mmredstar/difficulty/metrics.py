"""Agreement between predicted and labelled difficulty on the 1-10 scale, and the constant baseline.

Everything is compared on integer bands (``mmredstar.levels.band``: rounded half up), so a
MATH level (2L-1: 1, 3, 5, 7, 9) is two bands wide: ``within_2`` is "within one MATH level".

    from mmredstar.difficulty.metrics import agreement, constant_baseline
    agreement([3, 5, 9], [3, 7, 9])        # {'n': 3, 'exact': 0.667, 'within_1': 0.667, ...}

Run the doctests: ``.venv/bin/python -m pytest -q --doctest-modules mmredstar/difficulty/metrics.py``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from ..levels import band


def ranks(xs: Sequence[float]) -> list[float]:
    """Ranks 1..n with ties given their average rank.

    >>> ranks([10, 20, 20, 5])
    [2.0, 3.5, 3.5, 1.0]
    """
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            r[order[k]] = avg
        i = j + 1
    return r


def pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Pearson correlation; ``None`` when either side is constant (undefined).

    >>> pearson([1, 2, 3], [2, 4, 7]) > 0.98, pearson([1, 1, 1], [1, 2, 3])
    (True, None)
    """
    n = len(a)
    if n < 2:
        return None
    ma, mb = sum(a) / n, sum(b) / n
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    if va == 0 or vb == 0:
        return None
    return sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / math.sqrt(va * vb)


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman rank correlation (Pearson on average ranks); ``None`` when a side is constant.

    >>> spearman([1, 2, 3, 4], [1, 3, 2, 4]), spearman([1, 2, 3], [3, 2, 1]), spearman([5, 5], [1, 2])
    (0.8, -1.0, None)
    """
    r = pearson(ranks(a), ranks(b))
    return None if r is None else round(r, 6)


def agreement(pred: Sequence[float], gold: Sequence[float]) -> dict:
    """``n``, ``exact`` (same band), ``within_1`` / ``within_2`` (bands at most 1 / 2 apart), ``mae``
    (mean absolute error of the difficulties), ``spearman`` (of the difficulties; ``None`` if one side is
    constant), ``histogram`` of predicted bands.

    >>> m = agreement([3, 5, 9, 1], [3, 7, 9, 2])
    >>> m["exact"], m["within_1"], m["within_2"], m["mae"], m["spearman"]
    (0.5, 0.75, 1.0, 0.75, 1.0)
    """
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predictions for {len(gold)} labels")
    n = len(gold)
    if n == 0:
        return {"n": 0, "exact": None, "within_1": None, "within_2": None, "mae": None, "spearman": None,
                "histogram": {}}
    diffs = [abs(band(p, clip=True) - band(g, clip=True)) for p, g in zip(pred, gold, strict=True)]
    return {
        "n": n,
        "exact": round(sum(d == 0 for d in diffs) / n, 6),
        "within_1": round(sum(d <= 1 for d in diffs) / n, 6),
        "within_2": round(sum(d <= 2 for d in diffs) / n, 6),
        "mae": round(sum(abs(float(p) - float(g)) for p, g in zip(pred, gold, strict=True)) / n, 6),
        "spearman": spearman([float(p) for p in pred], [float(g) for g in gold]),
        "histogram": {str(k): v for k, v in sorted(Counter(band(p, clip=True) for p in pred).items())},
    }


def constant_value(train_labels: Sequence[float], head: str = "classification") -> float:
    """The best constant guess from the training labels: the most common band (classification; ties go to
    the lower band) or the mean label (regression).

    >>> constant_value([1, 3, 3, 9]), constant_value([1, 3, 3, 9], "regression")
    (3.0, 4.0)
    """
    if not train_labels:
        raise ValueError("no training labels")
    if head == "regression":
        return sum(float(x) for x in train_labels) / len(train_labels)
    c = Counter(band(x, clip=True) for x in train_labels)
    top = max(c.values())
    return float(min(b for b, k in c.items() if k == top))


def constant_baseline(train_labels: Sequence[float], gold: Sequence[float], head: str = "classification") -> dict:
    """``agreement`` of always predicting :func:`constant_value` (its ``spearman`` is ``None``: undefined)."""
    v = constant_value(train_labels, head)
    return {"value": v, **agreement([v] * len(gold), gold)}
