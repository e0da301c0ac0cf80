"""Math modes (strict default, lenient, math_verify), tolerances, empty answers, answer statements in
other languages (issue 14, section 1).

    .venv/bin/python -m pytest -q tests/verify/test_modes.py
"""

import pytest

from mmredstar.schema import Sample
from mmredstar.verify import verification_mode, verify_response
from mmredstar.verify.math import asked_precision, parse_tolerance


def _v(gold, text, question="Solve it.", meta=None, **options):
    s = Sample.text(question, gold, "math")
    s.meta.update(meta or {})
    return verify_response(s, text, **options)


# every leniency the issue names: an approximation of an exact reference, a non-integer for an integer
LENIENCIES = [("\\sqrt2", "1.41"), ("\\pi/2", "1.57"), ("1/3", "0.33"), ("100", "99.99"), ("12", "12.0001"),
              ("\\frac{1}{3}", "0.3333"), ("\\sqrt{3}", "1.7321")]


@pytest.mark.parametrize("gold,pred", LENIENCIES)
def test_strict_rejects_approximations_lenient_keeps_them(gold, pred):
    assert _v(gold, f"So the answer is ${pred}$.").verdict == "wrong"                 # strict is the default
    assert _v(gold, f"So the answer is ${pred}$.", math_mode="strict").verdict == "wrong"
    assert _v(gold, f"So the answer is ${pred}$.", math_mode="lenient").verdict == "correct"


@pytest.mark.parametrize("gold,pred", [("1/2", "0.5"), ("100", "100.0"), ("\\frac{3}{4}", "0.75"), ("2.5", "5/2"),
                                       ("0.3333", "0.33331"), ("1.0001", "1"), ("3.14", "3.1400"), ("2\\sqrt2", "\\sqrt8")])
def test_strict_keeps_exact_equalities_and_decimal_tolerance(gold, pred):
    assert _v(gold, f"The answer is ${pred}$.").verdict == "correct"


def test_strict_decimal_tolerance_is_relative_1e_4():
    assert _v("2.5", "The answer is 2.50024.").verdict == "correct"        # 0.96e-4 relative
    assert _v("2.5", "The answer is 2.5003.").verdict == "wrong"           # 1.2e-4 relative


@pytest.mark.parametrize("question,good,bad", [
    ("Round your answer to the nearest hundredth.", "1.41", "1.4"),
    ("Give x to 3 decimal places.", "1.414", "1.41"),
    ("Express the answer as a decimal.", "1.41", "1.4"),
    ("Give the answer to 2 significant figures.", "1.4", "1.5"),
    ("结果保留两位小数。", "1.41", "1.42"),
])
def test_a_requested_approximation_is_judged_at_the_stated_precision(question, good, bad):
    assert _v("\\sqrt{2}", f"So $x = {good}$.", question).verdict == "correct"
    assert _v("\\sqrt{2}", f"So $x = {bad}$.", question).verdict == "wrong"
    assert _v("\\sqrt{2}", f"So $x = {good}$.").verdict == "wrong"        # not asked: exact reference, exact answer


def test_asked_precision_reads_the_usual_phrasings():
    assert asked_precision("to the nearest whole number") == (0.5, 0.0)
    assert asked_precision("accurate to 0.01") is None
    assert asked_precision("精确到0.01") == (0.005, 0.0)
    assert asked_precision("arrondir à deux décimales") == (0.005, 0.0)
    assert asked_precision("auf zwei Nachkommastellen runden") == (0.005, 0.0)


def test_tolerance_per_sample_and_per_benchmark():
    text = "The speed is $v = 3.1$ m/s, so the answer is $3.1$."
    assert _v("3", text).verdict == "wrong"
    assert _v("3", text, meta={"tolerance": 0.1}).verdict == "correct"                 # absolute
    assert _v("3", text, meta={"tolerance": "5%"}).verdict == "correct"                # relative
    assert _v("3", text, meta={"tolerance": {"rel": 0.01}}).verdict == "wrong"
    assert _v("3", text, tolerance={"abs": 0.2}).verdict == "correct"                  # a benchmark's option
    assert _v("3", text, tolerance=0.5, meta={"tolerance": 0.01}).verdict == "wrong"   # the sample's wins
    assert _v("3", text, tolerance=0.5, math_mode="lenient").verdict == "correct"      # in every mode
    bad = _v("3", text, meta={"tolerance": "about right"})
    assert bad.verdict == "error" and "meta.tolerance" in bad.reason
    assert parse_tolerance({"abs": 1, "rel": 0.1}) == (1.0, 0.1)
    with pytest.raises(ValueError, match="negative"):
        parse_tolerance(-1)


@pytest.mark.parametrize("text", ["So the answer is $\\boxed{}$.", "Thus \\boxed{ }", "The final answer is",
                                  "Reasoning: 3 + 4 = 7. The final answer is:", "答案是", "x = 5, therefore \\boxed{}"])
def test_an_empty_answer_is_no_answer(text):
    v = _v("7", text)
    assert v.verdict == "no_answer" and v.reward == -1.0


def test_an_empty_box_before_a_stated_answer_does_not_hide_it():
    assert _v("7", "I write \\boxed{} first. The final answer is 7.").verdict == "correct"
    assert _v("7", "Final answer:\n7").verdict == "correct"


@pytest.mark.parametrize("text", [
    "计算得 x=7，答案是 $7$。", "所以 $x = 7$。", "故答案为 7。", "La réponse est 7.", "La bonne réponse est $7$.",
    "Die Antwort ist 7.", "Die richtige Antwort lautet $7$.", "La respuesta es 7.", "A resposta é 7.",
    "La risposta è 7.", "Ответ: 7.", "Правильный ответ — 7.", "答えは 7 です。", "정답은 7입니다.",
])
def test_answer_statements_in_other_languages(text):
    v = _v("7", "Many steps with 3 and 5 and 12. " + text)
    assert v.verdict == "correct", (text, v)


def test_the_mode_is_named_and_recorded():
    assert verification_mode({})["math_mode"] == "strict"
    assert _v("1/3", "0.33", meta={"math_mode": "lenient"}).verdict == "correct"       # per sample
    bad = _v("1/3", "0.33", math_mode="loose")
    assert bad.verdict == "error" and "strict, lenient, math_verify" in bad.reason


def test_math_verify_mode_defers_to_math_verify():
    assert _v("$\\frac{1}{3}$", "The answer is $\\boxed{0.333333}$", math_mode="math_verify").verdict == "correct"
    assert _v("\\frac{1}{3}", "The answer is $\\boxed{0.33}$", math_mode="math_verify").verdict == "wrong"
    two = _v("\\frac{1}{3}", "The answer is $\\boxed{0.33}$", math_mode="math_verify", math_verify={"precision": 2})
    assert two.verdict == "correct"
    assert _v("7", "no number here at all", math_mode="math_verify").verdict == "no_answer"
