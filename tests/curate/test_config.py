"""Curation configs: the shipped ones load, every key and type is checked, errors name file:line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmredstar.curate.config import ConfigError, field_docs, load_config

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs" / "curate").glob("*.yaml"))


def test_there_are_shipped_configs():
    assert {p.name for p in SHIPPED} >= {"geoqa_fixture.yaml", "numina_qwq.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_load_and_say_how_to_run(path):
    cfg = load_config(path)
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and any(f"mmredstar curate configs/curate/{path.name}" in line
                                          for line in path.read_text().splitlines()[:8])
    assert cfg.inputs and cfg.teacher["kind"]


def test_config_by_name_and_overrides():
    cfg = load_config("curate/geoqa_fixture", ["workers=3", "select.dpo.pairing=all", "sampling.temperature=1"])
    assert cfg.workers == 3 and cfg.select.dpo.pairing == "all" and cfg.sampling.temperature == 1.0
    assert cfg.inputs[0].card == "geoqa"


def _bad(tmp_path, text: str) -> str:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    return str(e.value)


def test_errors_name_file_line_and_key(tmp_path):
    head = "out: o\ninputs: [{path: x.jsonl}]\n"
    assert "c.yaml:3: key 'unit_size': expected an integer, got 'big'" in _bad(tmp_path, head + "unit_size: big\n")
    assert "c.yaml:3: unknown key 'worker'; did you mean 'workers'?" in _bad(tmp_path, head + "worker: 2\n")
    assert "c.yaml:4: key 'sampling.top_p': expected a number" in _bad(tmp_path, head + "sampling:\n  top_p: [1]\n")
    assert "key 'inputs'" in _bad(tmp_path, "out: o\n")
    assert "give either 'path'" in _bad(tmp_path, "inputs: [{card: geoqa, path: x}]\n")
    assert "needs 'src'" in _bad(tmp_path, "inputs: [{card: geoqa}]\n")
    assert "c.yaml:3: key 'schedule': bands 1-5 and 5-9 overlap" in _bad(tmp_path, head + "schedule: {'1-5': 2, '5-9': 4}\n")
    assert "did you mean 'openai'" in _bad(tmp_path, head + "teacher: {kind: opnai}\n")
    assert "unknown key 'temprature'" in _bad(tmp_path, head + "teacher: {kind: scripted, temprature: 1}\n")
    assert "unknown filter 'repetitoin'" in _bad(tmp_path, head + "filters: [repetitoin]\n")
    assert "did you mean 'longest_rejected'" in _bad(tmp_path, head + "select: {dpo: {pairing: longest_reject}}\n")
    assert "difficulty" in _bad(tmp_path, head + "difficulty: {source: scorer}\n")   # a scorer needs a teacher
    assert "expected [lo, hi]" in _bad(tmp_path, head + "difficulty: {range: [7]}\n")
    assert "c.yaml:3: invalid YAML" in _bad(tmp_path, "out: o\ninputs: [\n")


def test_every_key_is_documented():
    docs = field_docs()
    keys = {k for k, _, _ in docs}
    assert {"select.sft.shortest_k", "select.dpo.pairing", "decontaminate.ngram", "difficulty.range", "inputs[].card",
            "decontaminate.benchmarks[].src"} <= keys
    assert all(doc for _, _, doc in docs), [k for k, _, d in docs if not d]
