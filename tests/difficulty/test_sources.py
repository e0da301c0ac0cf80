"""Difficulty: robust score parsing, schedule and range, label / scorer / pass-rate sources, the registry."""

from __future__ import annotations

import json

import pytest
from openai_server import scripted_difficulty

from mmredstar.data import iter_card
from mmredstar.difficulty.sources import (
    DIFFICULTY_SOURCES,
    PassRateSource,
    build_source,
    parse_difficulty,
    register_difficulty_source,
)
from mmredstar.levels import in_range, parse_schedule, samples_for
from mmredstar.schema import Sample


@pytest.mark.parametrize("text,expected", [
    ("Difficulty: 7", 7.0), ("difficulty = 6.5", 6.5), ("I'd rate it 8/10.", 8.0), ("8 out of 10", 8.0),
    ("**4**", 4.0), ('{"difficulty": 3}', 3.0), ('```json\n{"score": "9"}\n```', 9.0), ("\\boxed{5}", 5.0),
    ("<think>first I thought 2/10 ...</think>\nDifficulty: 9", 9.0), ("10", 10.0), ("Level: 2", 2.0),
    ("The problem is hard.", None), ("Difficulty: 11", None), ("0/10", None), ("", None),
    ("Difficulty: 3. On reflection, Difficulty: 5", 5.0),
])
def test_parse_difficulty(text, expected):
    assert parse_difficulty(text) == expected


def test_schedule_and_range():
    bands = parse_schedule({"1-3": 2, "4-6": 4, "7-10": 8})
    assert [samples_for(d, bands, 1) for d in (1, 3.4, 3.5, 6, 7, 10, None, 0.2)] == [2, 2, 4, 4, 8, 8, 1, 1]
    for bad in ({"1-5": 2, "5-9": 4}, {"x": 1}, {"5-3": 1}, {"1-3": -1}, {}):
        with pytest.raises(ValueError):
            parse_schedule(bad)
    assert [in_range(d, [7, 9]) for d in (6.4, 6.5, 9.49, 9.5)] == [False, True, True, False]


def test_label_source_maps_meta_fields():
    a = Sample.text("q1", "1", difficulty=4.0)
    b = Sample.text("q2", "1", meta={"level": "Level 5"})
    c = Sample.text("q3", "1", meta={"raw": {"difficulty": "HARD"}})
    assert [d for d, _ in build_source("labels").score([a, b, c])] == [4.0, None, None]
    src = build_source("labels", {"field": "level", "map": "math_level"})
    assert [d for d, _ in src.score([a, b, c])] == [4.0, 9.0, None]
    assert build_source("labels", {"field": "raw.difficulty", "map": "taco"}).score([c])[0][0] == 8.0


def test_scorer_source_through_a_server(geoqa_dir, start_server):
    srv = start_server("--card", "geoqa", "--src", str(geoqa_dir))
    ss = list(iter_card("geoqa", str(geoqa_dir), image_dir=str(geoqa_dir.parent / "images")))
    src = build_source("scorer", {"teacher": {"kind": "openai", "base_url": srv.url, "model": "scripted-qwq"},
                                  "votes": 2})
    res = src.score(ss)
    for s, (d, meta) in zip(ss, res, strict=True):
        expected = scripted_difficulty(src.prompt(s).question)[0]
        assert d == expected and meta["difficulty_scores"] == [expected, expected]
    reqs = srv.requests()
    assert len(reqs) == len(ss) and all(r["images"] and r["images"][0]["ok"] for r in reqs)  # the diagram goes along
    assert src.stats() == {"scored": len(ss)}


def test_scorer_source_through_replay(tmp_path):
    ss = [Sample.text(f"Problem {i}: find x.", "1") for i in range(3)]
    rows = tmp_path / "scores.jsonl"
    with open(rows, "w") as f:
        f.write(json.dumps({"id": f"{ss[0].id}:difficulty", "question": "-", "responses": ["Difficulty: 8", "7/10"]}) + "\n")
        f.write(json.dumps({"id": f"{ss[1].id}:difficulty", "question": "-", "response": "no idea"}) + "\n")
    src = build_source("scorer", {"teacher": {"kind": "replay", "path": str(rows), "match": "id"}, "votes": 2})
    res = src.score(ss)
    assert res[0] == (7.5, {"difficulty_scores": [8.0, 7.0]})
    assert res[1] == (None, {"difficulty_scores": [None]}) and res[2] == (None, {"difficulty_scores": []})
    assert src.stats() == {"scored": 1, "unparsed": 2}


def test_pass_rate_source_with_a_scripted_student():
    easy = [Sample.text(f"What is {i} + 2?", str(i + 2), "math", difficulty=2.0) for i in range(5)]
    hard = [Sample.text(f"What is {i} * 9?", str(i * 9), "math", difficulty=9.0) for i in range(5)]
    student = {"kind": "scripted", "error_rate": {"1-3": 0.0, "8-10": 1.0}, "no_answer_rate": 0.0}
    src = build_source("pass_rate", {"teacher": student, "k": 4})
    res = src.score(easy + hard)
    assert [d for d, _ in res] == [1.0] * 5 + [10.0] * 5
    assert res[0][1] == {"student_pass_rate": 1.0, "student_k": 4}
    assert PassRateSource.difficulty(0.25) == 7.75


class ConstantSource:
    """A user's source (e.g. a trained difficulty model) plugged in by dotted path."""

    cached = False

    def __init__(self, value: float = 5.0):
        self.value = value

    def fingerprint(self):
        return {"constant": self.value}

    def score(self, samples):
        return [(self.value, {"scored_by": "constant"}) for _ in samples]

    def stats(self):
        return {}


def test_registry_and_dotted_path():
    src = build_source(f"{__name__}:ConstantSource", {"value": 6.0})
    assert src.score([Sample.text("q", "1")]) == [(6.0, {"scored_by": "constant"})]
    register_difficulty_source("const_for_test", f"{__name__}:ConstantSource")
    try:
        assert build_source("const_for_test").score([Sample.text("q", "1")])[0][0] == 5.0
    finally:
        DIFFICULTY_SOURCES.pop("const_for_test")
    with pytest.raises(ValueError, match="did you mean 'scorer'"):
        build_source("scorr")
    with pytest.raises(ValueError, match="unknown key 'params.vote'"):
        build_source("scorer", {"vote": 2})
