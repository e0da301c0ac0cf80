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


# issue 14, section 2: a chain of thought names many letters; the statement it commits to counts
@pytest.mark.parametrize("text,want", [
    ("So it must be (C); (A) and (B) fail the angle condition", "C"),
    ("B. Not A, because the sides differ", "B"),                       # the leading letter of a short reply
    ("答案选 D，而不是 B", "D"),
    ("la bonne réponse est A (pas C)", "A"),
    ("It can't be A or B, so the answer is D.", "D"),
    ("Let me check A. Then B. Hmm, option C fails. I choose D.", "D"),
    ("First I thought the answer is A. But wait, recheck: the answer is C.", "C"),   # the last statement wins
    ("The answer is \\boxed{B}, not A.", "B"),
    ("answer: B. Because A is wrong.", "B"),
    ("<think>A? B? C?</think>\n**Answer: C**", "C"),
])
def test_the_committed_letter_is_read(text, want):
    assert extract_choice(text, CH) == want


@pytest.mark.parametrize("text,want", [
    ("故选 B。", "B"), ("所以选C", "C"), ("因此答案为 (A)", "A"), ("正确选项是 D", "D"),
    ("Die Antwort ist B, nicht A.", "B"), ("La respuesta correcta es (C).", "C"), ("A resposta é D.", "D"),
    ("La risposta è A.", "A"), ("Ответ: B", "B"), ("答えは C です。", "C"), ("정답은 D입니다.", "D"),
    ("Je choisis B.", "B"),
])
def test_choice_statements_in_other_languages(text, want):
    assert extract_choice("Les angles: A=30, B=40. " + text, CH) == want


@pytest.mark.parametrize("text", [
    "The answer is A or C.", "The correct option is B or D, I think.", "The answer is A/C.", "答案是 A 或 C",
    "I'm torn between A and B.", "Either A or B could work.", "Hmm. Let me think about the figure again.",
])
def test_no_answer_only_when_the_response_never_commits(text):
    assert extract_choice(text, CH) is None
    v = verify_response(Sample.text("Find the angle.", "B", "choice", choices=CH), text)
    assert (v.verdict, v.reward) == ("no_answer", -1.0)


def test_a_geometry_point_named_like_a_letter_is_not_a_choice():
    text = "so the point A is the center, and the angle at B is 40°. Thus the answer is 40°."
    assert extract_choice(text, CH) == "B"                               # the value 40° maps to choice B
