"""Each shared benchmark scored with its own reference answers as the responses gives (close to) 100%.

    .venv/bin/python -m pytest -q tests/evaluation/test_shared_references.py

The responses go through ``mmredstar eval score`` (a JSONL keyed by the dataset's own ids): math items answer
"The final answer is $\\boxed{ANSWER}$.", choice items "Answer: <the correct choice's text>" (so the choice
verifier maps the stated value to its letter). AIME's AoPS solutions are also scored as they are.

Every miss is listed in ``known_misses.json`` with its reason, and the set is asserted exactly: a regression
(a new miss) and an improvement (a listed item now passing) both fail with the ids to look at.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmredstar.evaluation.score import score_responses
from mmredstar.evaluation.spec import load_bench_samples, load_spec

KNOWN = json.loads((Path(__file__).parent / "known_misses.json").read_text())
BENCHES = ["aime24", "amc23", "math500", "olympiadbench", "college_math", "mathvista_gps", "mathvista_geo"]


def _reference(s) -> str:
    if s.answer_type == "choice":
        return f"Answer: {s.meta.get('answer_text') or s.choices[ord(s.answer) - 65]}"
    return f"The final answer is $\\boxed{{{s.answer}}}$."


def _check(shared, tmp_path, bench, mode="answers"):
    spec = load_spec(bench)
    if not Path(spec.data_path()).exists():
        pytest.skip(f"{spec.data_path()} not present")
    samples = load_bench_samples(spec)
    rows = []
    for s in samples:
        if mode == "answers":
            text = _reference(s)
        else:
            sol = s.meta["solution"]
            text = "\n".join(sol) if isinstance(sol, list) else sol
        rows.append({"id": s.meta["orig_id"], "response": text})
    f = tmp_path / "refs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = score_responses(bench, f, out=tmp_path / "out")
    assert res["n_items"] == spec.expected and res["n_unknown"] == 0 and res["n_problems"] == 0
    items = [json.loads(x) for x in (tmp_path / "out" / "refs" / bench / "samples.jsonl").read_text().splitlines()]
    missed = {i["orig_id"]: i["responses"][0]["verdict"] for i in items if i["correct"] == 0}
    known = KNOWN[mode].get(bench, {})
    new, fixed = sorted(set(missed) - set(known)), sorted(set(known) - set(missed))
    assert not new, f"{bench}: new misses {new[:20]} (verdicts {[missed[i] for i in new[:20]]})"
    assert not fixed, f"{bench}: now scored correct, remove from known_misses.json: {fixed[:20]}"
    for reason in known.values():
        assert reason in KNOWN["_reasons"]
    assert res["pass@1"] == pytest.approx(1 - len(known) / spec.expected)
    return res


@pytest.mark.parametrize("bench", BENCHES)
def test_reference_answers_score_100_except_known_misses(shared, tmp_path, bench):
    res = _check(shared, tmp_path, bench)
    assert res["pass@1"] >= 0.99


def test_aime_solutions_as_responses(shared, tmp_path):
    _check(shared, tmp_path, "aime24", mode="solutions")
