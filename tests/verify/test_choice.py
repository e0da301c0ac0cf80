"""Choice verifier: letter forms, value-to-letter mapping, ambiguity, never inventing a choice.

    .venv/bin/python -m pytest -q tests/verify/test_choice.py
"""

import pytest

from mmredstar.schema import Sample
from mmredstar.verify import verify_response
from mmredstar.verify.choice import extract_choice, value_to_letter

CH = ["30°", "40°", "50°", "60°"]


@pytest.mark.parametrize("text,want", [
    ("Answer: C", "C"),
    ("... so the correct option is (B).", "B"),
    ("We get option D here.", "D"),
    ("the answer is C: 50°", "C"),
    ("Thus $\\boxed{C}$", "C"),
    ("Thus $\\boxed{\\text{(A)}}$.", "A"),
    ("Long reasoning...\nC.", "C"),
    ("**Answer:** (B) 40°", "B"),
    ("所以答案是B", "B"),
    ("<think>maybe A</think>The answer is D.", "D"),
    ("the angle is 40°, therefore the answer is 40°.", "B"),          # a stated value maps to its letter
    ("so the measure is $\\boxed{50^\\circ}$", "C"),
    ("A triangle has angles summing to 180. I cannot decide.", None),   # the article "A" is no choice
    ("The answer is A or C.", None),                                     # ambiguous: no answer
    ("The answer is 45°.", None),                                        # a value that is no choice
    ("", None),
])
def test_extract_choice(text, want):
    assert extract_choice(text, CH) == want


def test_value_to_letter_conventions():
    assert value_to_letter("540", ["360°", "540°", "720°"]) == "B"                 # GeoQA degrees
    assert value_to_letter("2\\sqrt{3}", ["2√3", "3√2", "4"]) == "A"               # Geometry3K radicals
    assert value_to_letter("\\frac{1}{2}", ["(A) 0.5", "(B) 1", "(C) 2"]) == "A"   # MathVista "(A) text"
    assert value_to_letter("7", ["1", "2"]) is None
    assert value_to_letter("1", ["1", "1.0"]) is None                              # matches two: ambiguous


def test_verify_choice_verdicts():
    s = Sample.text("Find the angle.", "B", "choice", choices=CH)
    assert verify_response(s, "It is 40°, so B.").verdict == "correct"
    w = verify_response(s, "The answer is C.")
    assert (w.verdict, w.reward, w.extracted) == ("wrong", 0.0, "C")
    n = verify_response(s, "No idea.")
    assert (n.verdict, n.reward) == ("no_answer", -1.0)
    bad = Sample.text("?", "B", "choice", choices=None)
    assert verify_response(bad, "B").verdict == "error"
