"""verify_many: order, the worker pool's hard limit per item, crashed workers, lazy input.

    .venv/bin/python -m pytest -q tests/verify/test_pool.py
"""

import time

from mmredstar.schema import CodeTests, Sample
from mmredstar.verify import verify_many


def _samples():
    out = []
    for i in range(12):
        s = Sample.text(f"{i}+0?", str(i))
        out.append((s, f"\\boxed{{{i if i % 3 else i + 1}}}", None))
    return out


def test_order_is_preserved_inline_and_in_a_pool():
    triples = _samples()
    inline = [v.verdict for v in verify_many(triples)]
    pooled = [v.verdict for v in verify_many(triples, workers=3)]
    assert inline == pooled == ["wrong" if i % 3 == 0 else "correct" for i in range(12)]


def test_hard_limit_kills_a_stuck_item_and_the_pool_goes_on(contained):
    stuck = Sample.text("spin", None, "code", tests=CodeTests(["1"], ["1"]))    # its own limits: 60 s
    ok = Sample.text("?", "2")
    t0 = time.monotonic()
    out = list(verify_many([(ok, "\\boxed{2}", None), (stuck, "```python\nwhile True: pass\n```", None),
                            (ok, "\\boxed{2}", None)], workers=2, hard_timeout=3, per_test=60, total=60))
    assert [v.verdict for v in out] == ["correct", "error", "correct"]
    assert "hard limit of 3s" in out[1].reason
    assert time.monotonic() - t0 < 30
    contained()                              # the killed worker's sandbox died with it


def test_a_dying_worker_costs_one_item():
    die = Sample.text("?", "1", meta={"verifier": "os:_exit"})
    ok = Sample.text("?", "2")
    out = list(verify_many([(ok, "\\boxed{2}", None), (die, "x", None), (ok, "\\boxed{2}", None)], workers=2))
    assert out[0].verdict == "correct" and out[2].verdict == "correct"
    assert out[1].verdict == "error"


def test_input_is_consumed_lazily():
    pulled = []

    def gen():
        for i in range(1000):
            pulled.append(i)
            yield Sample.text("?", "1"), "\\boxed{1}", None

    it = verify_many(gen(), workers=2)
    first = [next(it) for _ in range(3)]
    assert all(v.correct for v in first) and len(pulled) < 100
    it.close()
