"""Every shipped benchmark spec validates without a model: card exists, template renders, fields typed;
bad specs fail with file:line and the key; default data paths point at ../shared/benchmarks where it has them.

    .venv/bin/python -m pytest -q tests/evaluation/test_specs.py
"""

from __future__ import annotations

import pytest

from mmredstar.assets import REPO_ROOT
from mmredstar.data import load_card
from mmredstar.evaluation.metrics import parse_metric
from mmredstar.evaluation.spec import (
    BenchSpec,
    SpecError,
    describe,
    list_specs,
    load_bench_samples,
    load_spec,
    render_prompt,
)
from mmredstar.schema import ImageRef, Message, Sample

SHIPPED = ["math_hard", "math500", "olympiadbench", "college_math", "hs_league24", "aime24", "amc23", "geoqa",
           "mathvista_gps", "mathvista_geo", "geometry3k"]
SHARED_DEFAULTS = {"math500": "rstar-math/math500.json", "olympiadbench": "qwen2.5-math/olympiadbench.jsonl",
                   "college_math": "qwen2.5-math/college_math.jsonl", "aime24": "qwen2.5-math/aime24.jsonl",
                   "amc23": "qwen2.5-math/amc23.jsonl", "mathvista_gps": "mathvista/testmini.json",
                   "mathvista_geo": "mathvista/testmini.json"}


def test_every_benchmark_of_the_issue_is_shipped():
    assert sorted(list_specs()) == sorted(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_spec_validates(name):
    spec = load_spec(name)
    assert spec.name == name and spec.description and spec.paper
    card = load_card(spec.card)                          # the data card exists and is usable
    if spec.subset:
        assert card.subset_filters(spec.subset)
    assert spec.n >= 1 and spec.max_new_tokens >= 256 and spec.temperature >= 0
    for m in spec.metrics:
        kind, k = parse_metric(m)
        assert k <= spec.n, f"{name}: {m} needs n >= {k}"
    assert "pass@1" in spec.metrics
    assert spec.data is not None or spec.get_data, f"{name}: no default data and no instructions to get it"
    text = (REPO_ROOT / "eval" / f"{name}.yaml").read_text()
    assert text.startswith("# ") and ".venv/bin/mmredstar eval run" in text.splitlines()[1]


@pytest.mark.parametrize("name", SHIPPED)
def test_template_renders_for_each_answer_type(name):
    spec = load_spec(name)
    img = ImageRef(path="x.png")
    samples = [Sample.text("What is 1+{1}?", "2", "math"),
               Sample(prompt=[Message.make("user", 0, "Find x.\nChoices:\nA: 1\nB: 2")], images=[img], answer="B",
                      answer_type="choice", choices=["1", "2"]),
               Sample.text("How many?", "3", "numeric")]
    for s in samples:
        r = render_prompt(s, spec)
        assert s.question in r.question and r.id == s.id and r.meta["prompt_template"] == name
        assert r.question != s.question                   # every template adds an instruction
        assert [p.type for p in r.prompt[-1].content] == [p.type for p in s.prompt[-1].content]  # images in place
        if s.answer_type == "choice" and name in ("geoqa", "geometry3k", "mathvista_gps", "mathvista_geo"):
            assert "Answer: X" in r.question
        elif s.answer_type != "choice":
            assert "\\boxed{}" in r.question
    assert render_prompt(render_prompt(samples[0], spec), spec).question == render_prompt(samples[0], spec).question


@pytest.mark.parametrize("name,rel", sorted(SHARED_DEFAULTS.items()))
def test_default_data_points_at_the_shared_benchmarks(shared, name, rel):
    spec = load_spec(name)
    assert spec.data == f"../shared/benchmarks/{rel}"     # relative to the repository root
    src = shared / "benchmarks" / rel
    if not src.exists():
        pytest.skip(f"{src} not present")
    assert describe(spec)["data_present"]
    samples = load_bench_samples(spec)
    assert len(samples) == spec.expected
    assert all(s.answer for s in samples)


def test_missing_data_says_how_to_get_it(tmp_path):
    spec = load_spec("geometry3k")
    with pytest.raises(FileNotFoundError, match="pass --data PATH.*Inter-GPS"):
        load_bench_samples(spec)
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_bench_samples(spec, tmp_path / "nope")


def test_local_file_through_the_inline_card(tmp_path):
    f = tmp_path / "hs.jsonl"
    f.write_text('{"id": "p1", "problem": "1+1?", "answer": "2"}\n{"question": "2+2?", "answer": "4"}\n')
    ss = load_bench_samples(load_spec("hs_league24"), f)
    assert [s.meta["orig_id"] for s in ss] == ["p1", "1"] and [s.answer for s in ss] == ["2", "4"]
    assert ss[0].source == "hs_league24"


def test_sample_files_are_read_as_is(tmp_path):
    from mmredstar.io import write_samples

    f = tmp_path / "s.jsonl"
    write_samples(f, [Sample.text("1+1?", "2"), Sample.text("2+2?", "4")])
    ss = load_bench_samples(load_spec("aime24"), f, limit=1)
    assert len(ss) == 1 and ss[0].answer == "2"


def _write(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("body,match", [
    ("card: aime24\nmax_new_tokns: 10\n", r"bad.yaml:2: unknown key 'max_new_tokns'; did you mean 'max_new_tokens'"),
    ("card: aime24\nn: lots\n", r"bad.yaml:2: key 'n': expected an integer"),
    ("card: no_such_card\n", r"bad.yaml:1: key 'card': unknown data_cards asset 'no_such_card'"),
    ("card: aime24\nprompt: 'Solve it.'\n", r"bad.yaml:2: key 'prompt': every template must be a string containing \{question\}"),
    ("card: aime24\nmetrics: [pass@1, best@3]\n", r"bad.yaml:2: key 'metrics\[1\]': unknown metric 'best@3'"),
    ("card: mathvista\nsubset: geometri\n", r"bad.yaml:2: key 'subset': card 'mathvista' has no subset 'geometri'"),
    ("card: aime24\nprompt: {choise: '{question}'}\n", r"bad.yaml:2: key 'prompt.choise': not an answer type"),
    ("card: aime24\nn: 0\n", r"bad.yaml:2: key 'n': must be at least 1"),
])
def test_bad_specs_name_file_line_and_key(tmp_path, body, match):
    with pytest.raises(SpecError, match=match):
        load_spec(_write(tmp_path, body))


def test_spec_dataclass_defaults():
    s = BenchSpec(card="aime24", prompt={"default": "{question} D", "choice": "{question} C"})
    assert s.template_for("choice") == "{question} C" and s.template_for("math") == "{question} D"
