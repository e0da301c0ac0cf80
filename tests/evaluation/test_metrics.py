"""Metrics against hand-computed cases: unbiased pass@k, maj@k, pass@1 with standard errors, aggregation.

    .venv/bin/python -m pytest -q tests/evaluation/test_metrics.py
"""

from __future__ import annotations

import math
from itertools import combinations

import pytest

from mmredstar.evaluation.metrics import (
    aggregate,
    length_stats,
    maj_at_k,
    majority,
    mean_se,
    pass_at_k,
    wilson,
)


def brute_pass_at_k(results: list[bool], k: int) -> float:
    """pass@k by definition: the share of k-subsets of the n samples holding at least one correct one."""
    subsets = list(combinations(range(len(results)), k))
    return sum(any(results[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("results,k", [
    ([True, False, False, False], 1), ([True, False, False, False], 2), ([True, False, False, False], 4),
    ([True, True, False, False, False], 3), ([False] * 6, 2), ([True] * 3, 3),
    ([False, True, False, True, False, False, True, False], 4),
])
def test_pass_at_k_matches_the_definition(results, k):
    assert pass_at_k(len(results), sum(results), k) == pytest.approx(brute_pass_at_k(results, k))


def test_pass_at_k_hand_values():
    # n=10, c=3, k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)
    assert pass_at_k(4, 1, 1) == 0.25            # pass@1 is the mean
    assert pass_at_k(4, 3, 2) == 1.0             # fewer than k wrong ones: always solved
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_majority_and_maj_at_k():
    assert majority(["7", "3", "3", "7", "3"]) == "3"
    assert majority(["7", "3", "3", "7"]) == "7"                        # tie: the earliest wins
    assert majority([None, None]) is None
    keys, ok = ["1/2", "1/2", "0.3", None], [True, True, False, False]
    assert maj_at_k(keys, ok, 4) and maj_at_k(keys, ok, 1)
    assert not maj_at_k(["0.3", "1/2", "0.3"], [False, True, False], 3)
    assert not maj_at_k([None, None], [False, False], 2)                 # nobody answered
    assert maj_at_k([None, "5"], [False, True], 2)                       # no-answers do not vote
    with pytest.raises(ValueError):
        maj_at_k(["1"], [True], 2)


def test_standard_error_and_interval():
    m, se = mean_se([1] * 60 + [0] * 40)
    assert m == 0.6 and se == pytest.approx(math.sqrt(0.6 * 0.4 / 100))
    lo, hi = wilson(0.6, 100)
    assert lo < 0.6 < hi and hi - lo == pytest.approx(0.19, abs=0.01)
    assert wilson(1.0, 300)[1] == pytest.approx(1.0) and wilson(1.0, 300)[0] > 0.98


def test_aggregate_hand_computed():
    def item(verdicts, keys):
        return {"responses": [{"verdict": v, "key": k, "completion_tokens": 10 * (i + 1), "chars": 40,
                               "finish_reason": "stop"} for i, (v, k) in enumerate(zip(verdicts, keys, strict=True))]}

    items = [
        item(["correct", "wrong", "correct", "wrong"], ["a", "b", "a", "b"]),      # 2/4; maj tie a-b -> a (correct)
        item(["wrong", "wrong", "correct", "no_answer"], ["x", "x", "y", None]),   # 1/4; maj x (wrong)
        item(["wrong"] * 4, ["z"] * 4),                                             # 0/4
    ]
    r = aggregate(items, ["pass@1", "pass@2", "maj@4", "pass@4", "maj@8"])
    assert r["n_items"] == 3 and r["n_samples"] == 4
    assert r["pass@1"] == pytest.approx((0.5 + 0.25 + 0) / 3)
    assert r["pass@2"] == pytest.approx((brute_pass_at_k([1, 0, 1, 0], 2) + brute_pass_at_k([0, 0, 1, 0], 2)) / 3)
    assert r["pass@4"] == pytest.approx(2 / 3)
    assert r["maj@4"] == pytest.approx(1 / 3)
    assert "maj@8" not in r and any("maj@8 skipped" in n for n in r["notes"])
    assert r["verdicts"] == {"correct": 0.25, "no_answer": round(1 / 12, 4), "wrong": round(8 / 12, 4)}
    assert r["tokens"] == {"mean": 25.0, "median": 25.0, "p90": 40, "max": 40}
    assert r["chars"]["mean"] == 40


def test_aggregate_single_sample_uses_wilson_and_missing_items_score_zero():
    items = [{"responses": [{"verdict": "correct", "key": "1"}]}] * 3 + [{"responses": []}]
    r = aggregate(items, ["pass@1"])
    assert r["pass@1"] == 0.75 and r["missing"] == 1
    assert r["ci95"] == pytest.approx(list(wilson(0.75, 4)))


def test_length_stats_empty():
    assert length_stats([None, None]) == {"mean": None, "median": None, "p90": None, "max": None}
