"""Math verifier: extraction from long chain-of-thought, normalisation, equivalence, options, limits.

    .venv/bin/python -m pytest -q tests/verify/test_math.py
"""

import threading
import time

import pytest

from mmredstar.schema import Sample
from mmredstar.verify import canonical_key, latex, verify_response
from mmredstar.verify.exec.timeout import LimitExceeded, call_with_limit, time_limit
from mmredstar.verify.exec.worker import Worker
from mmredstar.verify.latex import compare, normalize
from mmredstar.verify.math import answers_equal, extract_answer, gold_answer, math_equal


@pytest.mark.parametrize("text,want", [
    ("so $x = \\boxed{\\frac{1}{\\sqrt{2}}}$ and we are done", "\\frac{1}{\\sqrt{2}}"),
    ("first \\boxed{3}, then corrected: \\boxed{4}", "4"),
    ("The roots are \\boxed{1} and \\boxed{-2}.", "1, -2"),                  # boxes joined into one list
    ("We try \\boxed{1}. Much later, after more work, we get \\boxed{2}", "2"),
    ("\\boxed{255} ... more steps. Final Answer: The final answer is $10,455$. I hope it is correct.", "10,455"),
    ("Final Answer: The volume of $V$ is 120. I hope it is correct.", "120"),
    ("所以答案是 $42$。", "42"),
    ("<think>I guess \\boxed{7}</think>The final answer is \\boxed{8}.", "8"),
    ("Thus the probability is 2/3. <|im_start|>user\nnext question: 5", "2/3"),
    ("We find that $x \\lt 3$.", "x \\lt 3"),
    ("Answer $ \n 9 \n $", None),                                            # malformed inline math
    ("x^2 + 2*x + 1", "x^2 + 2*x + 1"),                                      # a bare answer, whole
    ("I do not know the answer.", None),
])
def test_extract_answer(text, want):
    assert extract_answer(text) == want


def test_think_options_and_last_number():
    assert extract_answer("<think>so it is 5 hmm") is None                  # unfinished thinking: no answer
    assert extract_answer("<think>the answer is 5</think>", think="any") == "5"
    long = "We compute 12 apples.\n\nSome discussion follows without a number."
    assert extract_answer(long) is None
    assert extract_answer(long, last_number="anywhere") == "12"
    assert extract_answer("Therefore the total is 12 apples.", last_number="off") is None


@pytest.mark.parametrize("raw,want", [
    ("\\dfrac{3}{4}", "\\frac{3}{4}"), ("\\left(1,2\\right)", "(1,2)"), ("12{,}000", "12000"),
    ("45^\\circ", "45"), ("10\\%", "10%"), ("5\\text{ cm}", "5"), ("\\$1,000.99", "1000.99"),
    ("\\sqrt3", "\\sqrt{3}"), ("2√3", "2\\sqrt{3}"), ("x \\geq 2", "x>=2"), ("1 000", "1000"),
])
def test_normalize(raw, want):
    assert normalize(raw) == want


@pytest.mark.parametrize("gold,pred,want", [
    ("\\frac{1}{2}", "0.5", True), ("1/2", "\\frac12", True), ("7425000", "7,425,000", True),
    ("918\\frac{1}{2}", "918.5", True), ("10000", "10001", False),           # integers are exact
    ("1.0001", "1", True), ("5", "5.001", False),                              # rel_tol 1e-4 for decimals
    ("\\frac{1}{3}", "0.33", False), ("\\frac{1}{3}", "0.3", False),          # strict: exact references exact
    ("x^2+2x+1", "(x+1)^2", True), ("x+1", "x+2n+1", False), ("\\sec^2 y", "\\tan^2 y + 1", True),
    ("[0,1)", "[0,1)", True), ("[0,1)", "(0,1)", False), ("(1,3)", "(3,1)", False),
    ("\\{1,2\\}", "\\{2,1\\}", True), ("1, -2", "-2, 1", True), ("(3,2)", "(p,q)=(3,2)", True),
    ("x \\geq 5", "5 \\leq x", True), ("x < 1", "-x > -1", True), ("x < 1", "x > -1", False),
    ("2x+4y-3=0", "y=-\\frac{1}{2}x+\\frac{3}{4}", True), ("a+3z=0", "0", False), ("k=1", "1", True),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", True),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}", False),
    ("\\pm 2021", "\\{-2021, 2021\\}", True), ("\\pm 2021", "2021", False),
    ("\\text{odd}", "odd", True), ("\\text{Evelyn}", "Evelyn", True), ("odd", "oddd", False),
    ("(-\\infty, -3] \\cup [2, \\infty)", "(-\\infty,-3]\\cup[2,\\infty)", True),
    ("28\\%", "28", True), ("28\\%", "0.28", True),
])
def test_equivalence(gold, pred, want):
    assert answers_equal(gold, pred)[0] is want


def test_decimal_comma_is_read_both_ways():
    assert answers_equal("1000.99", "1000,99")[0] is True
    assert answers_equal("69, 84", "69,84")[0] is True                 # ... or a list of two
    assert answers_equal("69.84", "69,84")[0] is True
    assert answers_equal("7425000", "7,425,000")[0] is True            # thousands, not a decimal comma


def test_references_are_never_cut_down():
    assert gold_answer("52_8") == "52_8"
    assert gold_answer("\\lceil n / 2\\rceil+1") == "\\lceil n / 2\\rceil+1"
    assert gold_answer("t(0,4]") == "t(0,4]"
    s = Sample.text("?", "\\lfloor\\sqrt{n-1}\\rfloor")
    assert verify_response(s, "so $\\boxed{\\lfloor\\sqrt{n-1}\\rfloor}$").verdict == "correct"
    assert verify_response(s, "so $\\boxed{\\lfloor\\sqrt{n}\\rfloor}$").verdict == "wrong"


def test_commands_stay_apart_from_letters():
    assert answers_equal("\\sin(x)", "\\sin x")[0] is True
    assert answers_equal("2\\pi k", "2k\\pi")[0] is True
    assert answers_equal("\\sin x", "\\sin y")[0] is False


def test_reference_answers_written_as_prose():
    assert answers_equal(gold_answer("15 and $22.5 \\mathrm{~min}$"), "15, 22.5")[0] is True
    assert gold_answer("$\\frac{1}{2}$ cups") == "\\frac{1}{2}"
    assert gold_answer("So the answer is \\boxed{7}.") == "7"


def test_random_latex_never_breaks_the_verifier():
    import random

    toks = ["\\frac", "{", "}", "\\sqrt", "[", "]", "(", ")", "x", "1", "0.5", "^", "_", "+", "-", "=", "<",
            "\\le", ",", ";", ":", "\\boxed{", "$", "\\pi", "\\infty", "\\cup", "\\{", "\\}", "|", "!", "%",
            "\\text{", "and", " ", "\\begin{pmatrix}", "&", "\\\\", "\\end{pmatrix}", "\\pm", "e", "i",
            "\\log_", "999999999", "\\approx", "\\in", "°", "√", "The answer is ", ". ", "\n", "</think>",
            "\\binom", "\\cdot"]
    rng = random.Random(0)
    golds = ["\\frac{1}{2}", "x^2+1", "(1,2)", "[0,1)", "x=3", "10\\%", "2\\sqrt{3}", "5"]
    for _ in range(400):
        text = "".join(rng.choice(toks) for _ in range(rng.randint(1, 30)))
        t0 = time.monotonic()
        v = verify_response(Sample.text("?", rng.choice(golds)), text, timeout=2)
        assert v.verdict in ("correct", "wrong", "no_answer"), (text, v.reason)
        assert time.monotonic() - t0 < 5
        if v.verdict == "correct":              # garbage is never read as the reference value
            assert latex.normalize(v.extracted).strip("+") in {latex.normalize(g) for g in golds} | {"0.5", "10"}


def test_options_change_verdicts():
    assert answers_equal("10, 4, -2", "4, 10, -2")[0] is True
    assert answers_equal("10, 4, -2", "4, 10, -2", tuple_order="strict")[0] is False
    assert answers_equal("10\\%", "10")[0] is True
    assert answers_equal("10\\%", "10", percent="strict")[0] is False
    assert answers_equal("10\\%", "0.1", percent="strict")[0] is True
    assert answers_equal("1.0001", "1", rel_tol=1e-9)[0] is False
    assert answers_equal("\\frac{1}{3}", "0.33", rounding=False)[0] is False
    assert answers_equal("\\frac{1}{3}", "0.33", math_mode="lenient")[0] is True     # rounding needs >= 2 places
    assert answers_equal("\\frac{1}{3}", "0.3", math_mode="lenient")[0] is False
    assert compare("f(x)", "f(y)") is False
    assert compare("f(x)", "f(y)", strict_symbols=False) is not False


def test_sympy_fallback_is_used_and_time_limited():
    ok, how = answers_equal("F_n = \\sum_{k=0}^{n-1} F_k F_{n-k-1}", "F_n = \\sum_{k=0}^{n-1} F_{n-k-1} F_k")
    assert ok and how == "sympy"
    ok, how = answers_equal("F_n = \\sum_{k=0}^{n-1} F_k", "F_n = \\sum_{k=0}^{n-2} F_k", sympy=False)
    assert not ok and "without sympy" in how


def test_verify_response_math_verdicts_and_rewards():
    s = Sample.text("What is 6*7?", "42")
    good = verify_response(s, "<think>6*7 = 42</think>\nThe answer is $\\boxed{42}$.")
    assert (good.verdict, good.reward, good.extracted) == ("correct", 1.0, "42")
    bad = verify_response(s, "So the answer is \\boxed{41}.")
    assert (bad.verdict, bad.reward) == ("wrong", 0.0) and "41" in bad.extracted
    none = verify_response(s, "I am not sure at all.")
    assert (none.verdict, none.reward) == ("no_answer", -1.0) and none.reason
    trunc = verify_response(s, "<think>let me think about", finish_reason="length")
    assert trunc.verdict == "no_answer" and "truncated" in trunc.reason
    assert verify_response(Sample.text("?", "C"), "C. x = 42").verdict == "correct"   # a letter reference


def test_sympy_hang_is_cut_by_the_hard_limit():
    t0 = __import__("time").monotonic()
    v = verify_response(Sample.text("?", "5"), "\\boxed{(10^{7})!}", timeout=1)   # sympy computes it in C
    assert v.verdict == "wrong" and "timed out" in v.reason
    assert __import__("time").monotonic() - t0 < 30


def test_never_raises_on_hostile_text():
    s = Sample.text("?", "\\frac{1}{2}")
    for t in ["\\boxed{" * 500, "$" * 1000, "\\frac{" * 200 + "1", "\\boxed{10^{10^{10^{10}}}}", "\x00\\boxed{}",
              "\\boxed{\\begin{pmatrix}1&2\\\\3\\end{pmatrix}}", "((((((((((((", "\\boxed{x=}"]:
        v = verify_response(s, t, timeout=2)
        assert v.verdict in ("wrong", "no_answer", "error") and v.reward in (0.0, -1.0)


def test_math_equal_and_canonical_key():
    assert math_equal("14916", "Therefore $\\boxed{14{,}916}$ is our answer.")
    s = Sample.text("?", "x")
    assert canonical_key(s, "\\frac{1}{2}") == canonical_key(s, "0.5") == canonical_key(s, "1/2")
    assert canonical_key(s, "x^2+2x+1") == canonical_key(s, "(x+1)^2")
    assert canonical_key(s, "3") != canonical_key(s, "4")
    assert canonical_key(s, "\\{1,2\\}") == canonical_key(s, "\\{2, 1\\}")


def _spin(n):
    x = 0
    while True:
        x += n




def test_time_limit_main_thread():
    with pytest.raises(LimitExceeded):
        with time_limit(0.3):
            _spin(1)
    assert call_with_limit(sum, [1, 2], seconds=1) == 3


def test_hard_limit_from_a_thread_kills_a_stuck_helper():
    out = {}

    def job():
        try:
            call_with_limit(time.sleep, 30, seconds=0.5)
        except LimitExceeded as e:
            out["err"] = str(e)
        out["after"] = call_with_limit(sum, [2, 3], seconds=5)   # a fresh helper works

    t = threading.Thread(target=job)
    t.start()
    t.join(30)
    assert not t.is_alive()
    assert "exceeded" in out["err"] and out["after"] == 5


def test_worker_is_killed_when_the_soft_limit_cannot_act():
    w = Worker()
    with pytest.raises(TimeoutError):
        w.call("time:sleep", (30,), timeout=0.5)       # no soft limit inside: the kill path
    assert not w.alive
