"""Every shipped data card parses, has the required front matter and a usable mapping (no network).

    .venv/bin/python -m pytest -q tests/data/test_cards.py
"""

from __future__ import annotations

import doctest

import pytest

from mmredstar import levels
from mmredstar.assets import resolve
from mmredstar.data import REQUIRED_KEYS, Card, check_card_file, list_cards, load_card, text, where

EXPECTED = {"geoqa", "geometry3k", "mathvista", "math", "math500", "aime24", "amc23", "olympiadbench",
            "college_math", "taco", "numina_cot", "metamath", "messages", "trl", "sharegpt", "llamafactory", "swift"}


def test_all_expected_cards_are_shipped():
    assert EXPECTED <= set(list_cards())


@pytest.mark.parametrize("name", sorted(EXPECTED | set(list_cards())))
def test_card_front_matter_is_complete(name):
    path = resolve("data_cards", name)
    assert check_card_file(path) == []
    card = load_card(name)
    assert card.name == name
    for k in REQUIRED_KEYS:
        assert k in card.info or hasattr(card, k), k
    assert card.body.strip(), "the card needs prose for people"
    # every card says where its ids come from and what the source looks like
    assert "orig_id" in card.info["ids"]
    assert card.info["formats"] and all("fields" in f for f in card.info["formats"])


def test_bad_card_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="answer_type"):
        Card(name="x", answer_type="essay")
    with pytest.raises(ValueError, match="columns.questoin"):
        Card(name="x", columns={"questoin": "problem"})
    with pytest.raises(ValueError, match="adapter"):
        Card(name="x", adapter="no_such_adapter")
    with pytest.raises(ValueError, match="difficulty.map"):
        Card(name="x", difficulty={"column": "level", "map": "nope"})
    with pytest.raises(ValueError, match="subsets.hard"):
        Card(name="x", subsets={"hard": ["level >> 5"]})
    bad = tmp_path / "mine.md"
    bad.write_text("---\nname: mine\nanswer_type: math\ncolumns: {question: q}\n---\nprose\n")
    problems = check_card_file(bad)
    assert any("'hub'" in p for p in problems) and any("'license'" in p for p in problems)
    broken = tmp_path / "broken.md"
    broken.write_text("---\nname: broken\ncolumns: [unclosed\n---\n")
    assert "invalid YAML" in check_card_file(broken)[0]


def test_user_card_from_yaml_file(tmp_path):
    p = tmp_path / "my_set.yaml"
    p.write_text("name: my_set\nanswer_type: numeric\ncolumns: {question: q, answer: a}\nmeta: [topic]\n")
    card = load_card(str(p))
    assert card.columns == {"question": "q", "answer": "a"} and card.meta == ["topic"]


def test_unknown_card_lists_available():
    with pytest.raises(ValueError, match="Available"):
        load_card("no_such_card")


@pytest.mark.parametrize("mod", [text, levels, where])
def test_doctests(mod):
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0


def test_readme_custom_dataset_example_runs(tmp_path, monkeypatch):
    """The README's Python example for a custom dataset runs as written (on tiny files made here)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Data: public datasets into samples"):]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_geo.jsonl").write_text(
        '{"uid": "q1", "problem": "Pick the largest.", "options": ["1", "3", "2"], "final": "B", "img": null,'
        ' "topic": "order", "grade": "easy"}\n')
    (tmp_path / "mine.jsonl").write_text(
        '{"stem": "Find x.", "context": "x + 1 = 3", "final": "2", "verified": true}\n'
        '{"stem": "Find y.", "context": "?", "final": "0", "verified": false}\n')
    ns: dict = {}
    with pytest.warns(UserWarning, match=r"1 row\(s\) of mine.jsonl could not be converted"):
        exec(compile(code, "README.md", "exec"), ns)  # the skipped row is announced, not dropped silently
    assert [s.question for s in ns["samples"]] == ["Find x.\nx + 1 = 3"]
    out = [line for line in (tmp_path / "data/my_geo.samples.jsonl").read_text().splitlines()]
    assert len(out) == 1 and '"answer": "B"' in out[0] and '"difficulty": 2.0' in out[0]
