"""Packing efficiency on hand-checked cases, and our packing (first-fit decreasing on a segment tree) equal
to the plain linear-scan first-fit decreasing it replaced, on random cases.

    .venv/bin/python -m pytest -q tests/bench/test_bench_packing.py
"""

import random

from bench.cpu import fill_efficiency, packing_bench, padded_efficiency
from mmredstar.training.packing import pack


def _ffd_scan(lengths, max_length):
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins, room = [], []
    for i in order:
        for b, r in enumerate(room):
            if lengths[i] <= r:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(max_length - lengths[i])
    return bins


def test_hand_checked_case():
    # first-fit decreasing by hand: 9, 8, 7, 6, 6 and 5 open rows; the second 5 joins the first 5, then
    # 4, 3, 2, 1 join the 6, 7, 8, 9; the second 6 stays alone: rows 10,10,10,10,6,10 = 56 of 60 tokens
    lengths = [9, 8, 7, 6, 5, 5, 4, 3, 2, 1, 6]
    bins = pack(lengths, 10)
    assert bins == [[0, 9], [1, 8], [2, 7], [3, 6], [10], [4, 5]]
    rows = [sum(lengths[i] for i in b) for b in bins]
    assert fill_efficiency(rows, 10) == 56 / 60
    # micro-batches of 4 rows padded to their longest: 4 x 10 + 2 x 10 computed for 56 real tokens
    assert padded_efficiency(rows, 4) == 56 / 60
    assert padded_efficiency([6, 5, 4], 2) == 15 / 16


def test_segment_tree_packing_equals_linear_scan():
    rng = random.Random(0)
    for trial in range(200):
        m = rng.choice([1, 3, 10, 128, 4096])
        lengths = [rng.randint(0 if trial % 5 == 0 else 1, m) for _ in range(rng.randint(0, 200))]
        assert pack(lengths, m) == _ffd_scan(lengths, m)


def test_packing_bench_compares_with_trl_on_the_same_lengths():
    rng = random.Random(1)
    lengths = [rng.randint(50, 3000) for _ in range(400)]
    fig, table = packing_bench(lengths, [4096])
    res = fig["4096"]
    assert res["tokens"] == sum(lengths) and len(table) == 1
    assert res["ours"]["efficiency"] >= res["trl_bfd"]["efficiency"] - 1e-9  # FFD over all rows vs TRL's BFD
    assert res["ours"]["efficiency"] > 0.97
    assert res["trl_wrapped"]["efficiency"] > 0.99  # wrapped fills rows by cutting samples
