"""The demo's generated dataset: real GeoQA LLM-era format, deterministic, balanced, the figure carries the
answer, and the scripted teacher + choice verifier agree on it.

    .venv/bin/python -m pytest -q tests/geoqa/test_synth.py
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter

from mmredstar.data import iter_card, load_card
from mmredstar.generate import SamplingParams
from mmredstar.generate.scripted import ScriptedConfig, ScriptedTeacher
from mmredstar.synth.polygons import CHOICES, SIDES, angle_sum, write_polygons
from mmredstar.verify import verify_response


def test_files_in_the_llm_era_geoqa_layout(tmp_path):
    files = write_polygons(tmp_path, {"train": 20, "test": 8}, seed=0)
    rows = [json.loads(x) for x in open(files["test"])]
    assert [r["question_id"] for r in rows] == list(range(20, 28))       # ids unique over splits
    r = rows[0]
    assert set(r) == {"question_id", "image", "text", "answer", "sides", "reference_cot"}
    assert r["text"].startswith("\nFirst perform reasoning") and "\nQuestion:What is the sum" in r["text"]
    assert r["text"].endswith("Choices:\nA:180°\nB:360°\nC:540°\nD:720°")
    assert r["answer"] == "ABCD"[SIDES.index(r["sides"])]
    assert r["reference_cot"].endswith(f"Answer: {angle_sum(r['sides'])}°")
    assert os.path.exists(tmp_path / r["image"])


def test_deterministic_balanced_and_idempotent(tmp_path):
    a = write_polygons(tmp_path / "a", {"train": 40}, seed=7)["train"]
    b = write_polygons(tmp_path / "b", {"train": 40}, seed=7)["train"]
    write_polygons(tmp_path / "c", {"train": 40}, seed=8)["train"]
    assert (tmp_path / "a/images/train/5.png").read_bytes() == (tmp_path / "b/images/train/5.png").read_bytes()
    assert (tmp_path / "a/images/train/5.png").read_bytes() != (tmp_path / "c/images/train/5.png").read_bytes()
    rows = [json.loads(x) for x in open(a)]
    assert Counter(r["sides"] for r in rows) == {3: 10, 4: 10, 5: 10, 6: 10}
    m = os.path.getmtime(a)
    write_polygons(tmp_path / "a", {"train": 40}, seed=7)               # same arguments: nothing rewritten
    assert os.path.getmtime(a) == m
    assert open(a).read() == open(b).read()


def test_the_figure_carries_the_answer(tmp_path):
    """Every item has the same text; only the picture (a clearly visible filled shape) tells the side count."""
    import numpy as np
    from PIL import Image

    f = write_polygons(tmp_path, {"test": 16}, seed=2)["test"]
    rows = [json.loads(x) for x in open(f)]
    for r in rows:
        img = np.asarray(Image.open(tmp_path / r["image"]).convert("L"))
        fg = img < 200
        assert 0.08 < fg.mean() < 0.6                                    # a filled shape of fair size
        assert img.min() < 150                                           # good contrast on white
    assert len({r["text"] for r in rows}) == 1                           # the text never tells the answer


def test_geoqa_card_and_scripted_teacher_and_verifier_agree(tmp_path):
    f = write_polygons(tmp_path, {"test": 24}, seed=0)["test"]
    c = dataclasses.replace(load_card("geoqa"), meta={"reference_cot": "reference_cot"})
    samples = list(iter_card(c, f))
    assert len(samples) == 24 and all(s.choices == list(CHOICES) for s in samples)
    assert all(s.meta["reference_cot"] for s in samples) and samples[0].images[0].load().size == (64, 64)
    teacher = ScriptedTeacher(ScriptedConfig(error_rate=0.4, no_answer_rate=0.2, think=False))
    out = teacher.generate(samples, [4] * len(samples), SamplingParams(seed=0))
    seen = Counter()
    for s, rs in zip(samples, out, strict=True):
        for r in rs:
            intended = r.meta["scripted"]
            v = verify_response(s, r.text, r.finish_reason)
            assert v.verdict == intended, (r.text, v)
            seen[intended] += 1
    assert seen["correct"] and seen["wrong"] and seen["no_answer"]
