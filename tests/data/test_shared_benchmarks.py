"""Convert each real benchmark file in ../shared/benchmarks/ and check the counts (skips where absent).

    .venv/bin/python -m pytest -q tests/data/test_shared_benchmarks.py

AIME24 30, AMC23 40, OlympiadBench 675, College Math 2818, MATH-500 500, MathVista testmini 1000
(208 in the geometry-problem-solving subset, 239 with skill geometry reasoning); every sample has
its answer and is valid per ``validate_record``; ids are unique.
"""

from __future__ import annotations

import json

import pytest

from mmredstar.data import ConvertReport, convert, iter_card
from mmredstar.io import read_samples, validate_file
from mmredstar.schema import validate_record

CASES = [
    ("aime24", "qwen2.5-math/aime24.jsonl", {}, 30),
    ("amc23", "qwen2.5-math/amc23.jsonl", {}, 40),
    ("olympiadbench", "qwen2.5-math/olympiadbench.jsonl", {}, 675),
    ("college_math", "qwen2.5-math/college_math.jsonl", {}, 2818),
    ("math500", "rstar-math/math500.json", {}, 500),
    ("mathvista", "mathvista/testmini.json", {}, 1000),
    ("mathvista", "mathvista/testmini.json", {"subset": "geometry"}, 208),
    ("mathvista", "mathvista/testmini.json", {"where": ['task="geometry problem solving"']}, 208),
    ("mathvista", "mathvista/testmini.json", {"subset": "geometry_reasoning"}, 239),
]


@pytest.mark.parametrize("card,rel,kw,n", CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_shared_benchmark_counts(shared, card, rel, kw, n):
    src = shared / "benchmarks" / rel
    if not src.exists():
        pytest.skip(f"{src} not present")
    rep = ConvertReport(card=card, src=str(src))
    samples = list(iter_card(card, src, report=rep, **kw))
    assert rep.skipped == 0, rep.summary()
    assert len(samples) == n
    assert len({s.id for s in samples}) == n
    assert len({s.meta["orig_id"] for s in samples}) == n
    for s in samples:
        assert validate_record(s.to_dict()) == []
        assert s.answer is not None and s.answer.strip(), s.meta["orig_id"]
        assert s.source == card and s.provenance["card"] == card


def test_shared_answers_match_the_source(shared):
    b = shared / "benchmarks"
    if not b.is_dir():
        pytest.skip("no benchmarks")
    aime = {s.meta["orig_id"]: s for s in iter_card("aime24", b / "qwen2.5-math/aime24.jsonl")}
    assert aime["60"].answer == "204" and aime["67"].answer == "025"
    amc = list(iter_card("amc23", b / "qwen2.5-math/amc23.jsonl"))
    assert amc[0].answer == "27"  # 27.0 in the file
    mv = {s.meta["orig_id"]: s for s in iter_card("mathvista", b / "mathvista/testmini.json")}
    raw = json.loads((b / "mathvista/testmini.json").read_text())
    for pid, r in raw.items():
        s = mv[pid]
        if r["question_type"] == "multi_choice":
            assert s.answer_type == "choice" and s.choices[ord(s.answer) - 65] == r["answer"]
        else:
            assert s.answer == r["answer"] and s.answer_type in ("numeric", "math")
    counts = {t: sum(s.answer_type == t for s in mv.values()) for t in ("choice", "numeric", "math")}
    assert counts == {"choice": 540, "numeric": 458, "math": 2}
    ob = {s.meta["orig_id"]: s for s in iter_card("olympiadbench", b / "qwen2.5-math/olympiadbench.jsonl")}
    assert ob["1606"].answer == "2"
    m5 = list(iter_card("math500", b / "rstar-math/math500.json"))
    assert m5[0].answer == "\\left( 3, \\frac{\\pi}{2} \\right)" and m5[0].meta["orig_id"] == "0"


def test_shared_mathvista_cli_output_validates_without_images(shared, tmp_path):
    src = shared / "benchmarks" / "mathvista" / "testmini.json"
    if not src.exists():
        pytest.skip("no mathvista")
    out = tmp_path / "mv_geo.jsonl"
    rep = convert("mathvista", src, out, subset="geometry", progress=False)
    assert rep.written == 208 and rep.warnings["missing image"] == 208  # the shared file ships no images
    n, problems = validate_file(str(out), check_images=False)
    assert (n, problems) == (208, [])
    n, problems = validate_file(str(out), check_images=True)
    assert n == 208 and len(problems) == 208 and all(p.field == "images[0].path" for p in problems)
    assert len(list(read_samples(str(out)))) == 208
