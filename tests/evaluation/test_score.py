"""``mmredstar eval score``: outside outputs keyed by the dataset's own id or the sample id; unknown ids,
malformed lines, repeats and missing items are reported, never dropped silently.

    .venv/bin/python -m pytest -q tests/evaluation/test_score.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mmredstar.evaluation.score import id_index, score_responses
from mmredstar.evaluation.spec import load_bench_samples, load_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def test_score_geoqa_by_native_and_sample_ids(tmp_path, polygons):
    samples = load_bench_samples(load_spec("geoqa"), polygons)
    value = {s.id: s.choices[ord(s.answer) - 65] for s in samples}
    rows = [
        {"id": samples[0].meta["orig_id"], "response": f"So the sum is {value[samples[0].id]}.\nAnswer: {value[samples[0].id]}"},
        {"id": int(samples[1].meta["orig_id"]), "response": f"Answer: {samples[1].answer}"},    # numeric id, letter
        {"id": samples[2].id, "response": "Answer: 999°"},                                       # sample id, no choice
        {"id": samples[3].id, "responses": [f"Answer: {samples[3].answer}", "Answer: A", "I give up."]},
        {"id": "no-such-item", "response": "Answer: A"},
        "{not json",
        {"id": samples[0].meta["orig_id"], "response": "Answer: B"},                             # repeated id
        {"response": "Answer: A"},                                                               # no id
    ]
    out = tmp_path / "scored"
    r = score_responses("geoqa", _write(tmp_path / "preds.jsonl", rows), data=polygons, out=out)
    assert r["n_items"] == 12 and r["missing"] == 8
    assert r["n_unknown"] == 1 and r["unknown_ids"] == ["no-such-item"]
    assert r["n_problems"] == 3
    assert any(":6: field '-': malformed JSON" in p for p in r["problems"])
    assert any(":7: field 'id'" in p and "already has responses (line 1)" in p for p in r["problems"])
    assert any(":8: field 'id': missing" in p for p in r["problems"])
    # items 0, 1 correct; item 2 no answer; item 3 one of three correct; 8 missing count as 0
    assert r["pass@1"] == pytest.approx((1 + 1 + 0 + 1 / 3) / 12)
    assert r["pass@1_answered"] == pytest.approx((1 + 1 + 0 + 1 / 3) / 4)
    items = [json.loads(x) for x in (out / "preds" / "geoqa" / "samples.jsonl").read_text().splitlines()]
    assert len(items) == 12 and items[2]["responses"][0]["verdict"] == "no_answer"
    assert json.loads((out / "report.json").read_text())["models"] == ["preds"]


def test_score_math_local_file(tmp_path, math_file):
    rows = [{"id": "a", "response": "2+3 is \\boxed{5}."}, {"id": "b", "response": "The answer is 13."},
            {"id": "c", "response": "Half of one is $0.5$."}]
    r = score_responses("hs_league24", _write(tmp_path / "p.jsonl", rows), data=math_file)
    assert r["pass@1"] == pytest.approx(2 / 3) and r["n_unknown"] == 0 and "missing" not in r


def test_an_id_naming_two_items_is_an_error():
    from mmredstar.schema import Sample

    a = Sample.text("1?", "1", meta={"orig_id": "x"})
    b = Sample.text("2?", "2", meta={"orig_id": a.id})       # b's dataset id equals a's sample id
    with pytest.raises(ValueError, match="names two benchmark items"):
        id_index([a, b])
    assert id_index([a])["x"] is a and id_index([a])[a.id] is a


def test_score_cli(tmp_path, polygons):
    samples = load_bench_samples(load_spec("geoqa"), polygons)
    rows = [{"id": s.meta["orig_id"], "response": f"Answer: {s.answer}"} for s in samples[:6]] + [
        {"id": "ghost", "response": "Answer: A"}]
    preds = _write(tmp_path / "preds.jsonl", rows)
    p = subprocess.run([sys.executable, "-m", "mmredstar.cli", "eval", "score", "--bench", "geoqa", "--data",
                        str(polygons), "--responses", str(preds), "--out", str(tmp_path / "o")],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "pass@1 50.00% over 12 items (6 without a response; answered-only 100.00%)" in p.stdout
    assert "ids the benchmark does not have: ['ghost']" in p.stderr
    assert (tmp_path / "o" / "report.md").exists()
