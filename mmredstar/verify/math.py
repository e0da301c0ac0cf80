"""Math answer verification: extract the final answer from a long chain of thought, compare it.

Extraction (``extract_answer``) lives in ``mmredstar.verify.extract`` (shared with the choice and text
verifiers and the data cards); it is re-exported here.

Comparison: the fast path in ``mmredstar.verify.latex`` (normalise, parse, compare numbers, lists,
intervals, relations, matrices, evaluated expressions); only answers it cannot decide go to sympy
through math-verify, with a hard time limit (``timeout``, seconds) that works in threads and
processes. Options (keyword arguments, also ``mmredstar verify --opt key=value``):

- ``think``: "after" (default: text after the last ``</think>``; an unclosed ``<think>`` has no
  answer) or "any" (search the whole text).
- ``last_number``: "sentence" (default), "anywhere" or "off".
- ``rel_tol`` (1e-4), ``rounding`` (True), ``percent`` ("either"), ``tuple_order`` ("any"),
  ``strict_symbols`` (True): see ``mmredstar.verify.latex.DEFAULTS``.
- ``sympy``: use the sympy fallback (default True); ``timeout``: seconds per fallback comparison (5).

    python -c "from mmredstar.verify.math import math_equal; print(math_equal('\\\\frac12', 'The answer is 0.5.'))"

>>> math_equal("\\\\frac{1}{2}", "Thus $x = 0.5$.")
True
"""

from __future__ import annotations

import functools
import logging
import re

from ..schema import Sample, Verdict
from . import extract, latex
from .exec.timeout import LimitExceeded, call_with_limit
from .extract import extract_answer, parsed

__all__ = ["extract_answer", "answers_equal", "math_equal", "verify_math", "verify_numeric", "math_key",
           "gold_answer", "sympy_equal", "malformed", "clear_caches", "MATH_DEFAULTS"]

MATH_DEFAULTS = {"think": "after", "last_number": "sentence", "sympy": True, "timeout": 5.0}


# ----------------------------------------------------------------------------------------- compare
_CHOICE_GOLD = re.compile(r"^\(?([A-J])\)?$")
_CHOICE_PRED = re.compile(r"^\s*\(?([A-J])\)?(?:[.:)]|\s*$|\s+(?=\S))")


_ATOM_CMDS = {"pi", "infty", "circ", "dots", "ldots", "cdots", "prime", "degree", "emptyset", "varnothing", "right",
              "end", "rfloor", "rceil", "rangle", "rvert", "rVert", "mathbb{R}"} | set(latex._GREEK)


def malformed(ans: str) -> str | None:
    """Why an extracted answer is not a well-formed expression (unbalanced brackets, a dangling
    operator or command), or None. Checked before the sympy fallback, whose lenient parser reads
    ``10x\\cdot`` or ``]^=10`` as 10.

    >>> malformed("10x\\cdot"), malformed("\\sqrt"), malformed("\\frac{1}{2}")
    ('ends with *', 'empty argument', None)
    """
    n = re.sub(r"\\[{}]|\\[|]", "", latex.normalize(ans))
    if n.count("{") != n.count("}"):
        return "unbalanced braces"
    if n.count("(") + n.count("[") != n.count(")") + n.count("]"):
        return "unbalanced brackets"
    m = re.search(r"(\\[a-zA-Z]+|[-+*/^_=<>,&!]|\\\\)\s*$", n)
    if m and not (m.group(1).startswith("\\") and m.group(1)[1:] in _ATOM_CMDS) and m.group(1) != "!":
        return f"ends with {m.group(1)}"
    if re.match(r"^\s*[\])}^_=*/&,<>]", n):
        return f"starts with {n.strip()[0]}"
    if re.search(r"\\(?:frac|sqrt|binom)(?:\[[^\]]*\])?\{\}|\\frac\{[^{}]*\}\{\}", n):
        return "empty argument"
    if "&" in n and "\\begin" not in n:
        return "& outside a matrix"
    return None


def sympy_equal(gold: str, pred: str, float_rounding: int = 6, strict: bool = True) -> bool | None:
    """math-verify's parse + verify on two extracted answers (no internal timeouts: call it through
    ``call_with_limit``). None when either side does not parse."""
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)   # it warns that we time-limit it ourselves

    def wrap(s):
        return s if re.search(r"\$|\\\(|\\\[|\\boxed", s) else f"${s}$"

    g = parse(wrap(gold), parsing_timeout=None)
    p = parse(wrap(pred), parsing_timeout=None)
    if not g or not p:
        return None
    return bool(verify(g, p, float_rounding=float_rounding, strict=strict, timeout_seconds=None))


def answers_equal(gold: str, pred: str, **options) -> tuple[bool, str]:
    """(equal, how) for two extracted answers: the fast path, then sympy for undecided cases."""
    o = {**MATH_DEFAULTS, **latex.DEFAULTS, **options}
    gm = _CHOICE_GOLD.match(latex.normalize(gold))
    if gm:
        pm = _CHOICE_PRED.match(latex.normalize(pred).replace("\\text", "")) or _CHOICE_PRED.match(pred)
        if pm:
            return pm.group(1) == gm.group(1), "choice letter"
    g = parsed(gold, o["tuple_order"])
    p = parsed(pred, o["tuple_order"])
    if g is not None and p is not None:
        try:
            r = latex.compare_nodes(g, p, {k: o[k] for k in latex.DEFAULTS})
        except Exception:  # noqa: BLE001 - the fast path abstains, sympy decides
            r = None
        if r is not None:
            return r, "fast"
    ng, np_ = latex.normalize(gold), latex.normalize(pred)
    if ng == np_:
        return True, "same text"
    if not o["sympy"]:
        return False, "undecided without sympy"
    bad = malformed(pred)
    if bad:
        return False, f"malformed answer ({bad})"     # sympy's lenient parser would read garbage as a value
    try:
        r = call_with_limit(sympy_equal, gold, pred, seconds=float(o["timeout"]),
                            strict=bool(o["strict_symbols"]))
    except LimitExceeded:
        return False, f"sympy comparison timed out after {o['timeout']}s"
    except Exception as e:  # noqa: BLE001 - a parser crash on model output is an answer we cannot confirm
        return False, f"sympy comparison failed: {type(e).__name__}: {e}"[:300]
    if r is None:
        return False, "unparseable for sympy"
    return r, "sympy"


def math_equal(gold: str, response: str, **options) -> bool:
    """Whether ``response`` states an answer equivalent to the reference ``gold``."""
    return verify_math(Sample.text("", gold), response, **options).verdict == "correct"


@functools.lru_cache(maxsize=4096)
def gold_answer(answer: str) -> str:
    """The reference answer string as compared (a reference may itself hold a worked solution)."""
    return extract_answer(answer, gold=True) or answer.strip()


def clear_caches() -> None:
    """Forget parsed answers (ours and math-verify's): for benchmarks that must start cold."""
    parsed.cache_clear()
    gold_answer.cache_clear()
    try:
        import math_verify.grader as g
        import math_verify.parser as p
    except ImportError:
        return
    for mod in (p, g):
        for v in vars(mod).values():
            if hasattr(v, "cache_clear"):
                v.cache_clear()


def verify_math(sample: Sample, text: str, finish_reason: str | None = None, **options) -> Verdict:
    """Verify a response to a math sample: correct (1), wrong (0), or no_answer (-1)."""
    if sample.answer is None or not str(sample.answer).strip():
        return Verdict("error", -1.0, None, "sample has no reference answer")
    o = {**MATH_DEFAULTS, **options}
    pred = extract_answer(text, think=o["think"], last_number=o["last_number"])
    if pred is None:
        why = "no final answer found (no \\boxed{}, 'final answer' phrase or closing statement)"
        if finish_reason == "length":
            why += "; the response was truncated"
        return Verdict("no_answer", -1.0, None, why)
    gold = gold_answer(str(sample.answer))
    if latex.normalize(pred) == latex.normalize(str(sample.answer)):
        return Verdict("correct", 1.0, pred, "equivalent (states the reference verbatim)")
    if _CHOICE_GOLD.match(gold.strip()):         # a letter as reference: read the chosen letter
        letter = extract.extract_choice(text, None, think=o["think"])
        if letter is not None:
            pred = letter
    ok, how = answers_equal(gold, pred, **o)
    if ok:
        return Verdict("correct", 1.0, pred, f"equivalent ({how})")
    return Verdict("wrong", 0.0, pred, f"not equivalent to the reference {gold[:80]!r} ({how})")


def verify_numeric(sample: Sample, text: str, finish_reason: str | None = None, **options) -> Verdict:
    """A numeric answer: like math, with numbers compared within ``rel_tol`` and no sympy."""
    return verify_math(sample, text, finish_reason, **{"sympy": False, **options})


def math_key(extracted: str, **options) -> str:
    """Canonical key of an extracted math answer (equal values share it)."""
    return latex.canonical(extracted, **options)
