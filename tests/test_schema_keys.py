"""validate_record takes its key sets and field types from the Sample / Response / ImageRef / CodeTests dataclasses."""

from __future__ import annotations

import dataclasses

from mmredstar import schema
from mmredstar.schema import CodeTests, Pair, Response, Sample, validate_record


def test_key_sets_are_the_dataclass_fields():
    assert schema._SAMPLE_KEYS == {f.name for f in dataclasses.fields(Pair)}
    assert {f.name for f in dataclasses.fields(Sample)} < schema._SAMPLE_KEYS
    assert schema._RESPONSE_KEYS == {f.name for f in dataclasses.fields(Response)}
    assert schema._IMAGE_KEYS == {"path", "bytes"} and "root" not in schema._IMAGE_KEYS   # root is not serialised
    assert schema._TESTS_KEYS == {f.name for f in dataclasses.fields(CodeTests)}


def test_every_field_of_a_full_record_validates_and_types_come_from_annotations():
    s = Sample.text("2+2?", "4", difficulty=3.0, meta={"k": 1}, source="t", split="train",
                    responses=[Response("4", finish_reason="stop", prompt_tokens=3, completion_tokens=1,
                                        gen={"temperature": 0.7}, verdict="correct", reward=1.0, extracted="4",
                                        reason="ok", meta={"m": 1})])
    d = s.to_dict()
    assert validate_record(d) == []
    bad = dict(d, provenance=[1], split=3)
    bad["responses"] = [dict(d["responses"][0], completion_tokens="1", gen=[])]
    fields = {p.field for p in validate_record(bad)}
    assert {"provenance", "split", "responses[0].completion_tokens", "responses[0].gen"} <= fields
    (p,) = validate_record(dict(d, extra_field=1))
    assert p.field == "extra_field" and "'provenance'" in p.hint
    assert validate_record({**d, "images": [{"path": "a.png", "root": "x"}]})[0].message == "unknown keys ['root']"
