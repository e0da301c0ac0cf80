"""Math answer verification: extract the final answer from a long chain of thought, compare it.

Extraction (``extract_answer``) lives in ``mmredstar.verify.extract`` (shared with the choice and text
verifiers and the data cards); it is re-exported here.

Modes (option ``math_mode``, ``mmredstar verify --mode``; a sample's ``meta.math_mode`` wins):

- ``strict`` (default): an exact reference (no decimal point: ``100``, ``1/3``, ``\\sqrt2``, ``\\pi/2``)
  needs an exactly equal answer (``0.5`` for ``1/2`` is exact; ``99.99`` for ``100``, ``0.33`` for ``1/3``,
  ``1.41`` for ``\\sqrt2`` are wrong). Decimals are compared with a **relative tolerance of 1e-4**
  (``rel_tol``) when the reference itself is a decimal. When the problem asks for an approximation
  ("to the nearest hundredth", "to 3 decimal places", "to 2 significant figures", "保留两位小数",
  "approximately"), the stated precision applies (half a unit in the last asked place).
- ``lenient``: the reading before strict existed: a decimal with >= 2 places equals an exact value it
  rounds (``0.33`` ~ ``1/3``), and integers compare within ``rel_tol`` (``99.99`` ~ ``100``).
- ``math_verify``: defers wholly to math-verify (``parse`` of the raw reference and response, then
  ``verify``; a bare reference that yields nothing is parsed again inside ``$...$``), for numbers
  comparable with lighteval / open-r1; option or ``meta`` ``math_verify``:
  ``{match_types: [latex, expr], precision: 6, strict: true, allow_set_relation_comp: false,
  boxed_match_priority: 55}`` (math-verify's defaults).

``tolerance`` (option for a benchmark, or ``meta.tolerance`` per sample; the sample's wins): numbers within
it are equal, whatever the mode: a number (absolute), ``"5%"`` (relative), or ``{abs: x, rel: y}``.
An empty ``\\boxed{}`` or an answer marker with nothing after it is ``no_answer`` (-1) in every mode.

Comparison (strict and lenient): the fast path in ``mmredstar.verify.latex`` (normalise, parse, compare
numbers, lists, intervals, relations, matrices, evaluated expressions); only answers it cannot decide go
to sympy through math-verify, with a hard time limit (``timeout``, seconds) that works in threads and
processes. Options (keyword arguments, also ``mmredstar verify --opt key=value``):

- ``think``: "after" (default: text after the last ``</think>``; an unclosed ``<think>`` has no
  answer) or "any" (search the whole text).
- ``last_number``: "sentence" (default), "anywhere" or "off".
- ``rel_tol`` (1e-4), ``percent`` ("either"), ``tuple_order`` ("any"), ``strict_symbols`` (True),
  ``rounding`` / ``exact_ref`` (set by the mode): see ``mmredstar.verify.latex.DEFAULTS``.
- ``sympy``: use the sympy fallback (default True); ``timeout``: seconds per fallback comparison (5).

    python -c "from mmredstar.verify.math import math_equal; print(math_equal('\\\\frac12', 'The answer is 0.5.'))"

>>> math_equal("\\\\frac{1}{2}", "Thus $x = 0.5$.")
True
>>> math_equal("\\\\sqrt{2}", "so x = 1.41."), math_equal("\\\\sqrt{2}", "so x = 1.41.", math_mode="lenient")
(False, True)
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

MATH_DEFAULTS = {"think": "after", "last_number": "sentence", "sympy": True, "timeout": 5.0, "math_mode": "strict"}

MATH_MODES = {
    "strict": {"rounding": False, "exact_ref": True},
    "lenient": {"rounding": True, "exact_ref": False},
    "math_verify": {},
}
"""``math_mode`` -> the comparison options it sets (``math_verify`` bypasses our comparison)."""

MV_DEFAULTS = {"match_types": ["latex", "expr"], "precision": 6, "strict": True, "allow_set_relation_comp": False,
               "boxed_match_priority": None}
"""math-verify settings of the ``math_verify`` mode (None: math-verify's own default)."""

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "一": 1, "两": 2, "二": 2, "三": 3, "四": 4,
          "五": 5, "六": 6, "deux": 2, "trois": 3, "quatre": 4, "zwei": 2, "drei": 3, "vier": 4, "dos": 2, "tres": 3,
          "cuatro": 4}
_NEAREST = {"whole number": 0, "integer": 0, "unit": 0, "tenth": 1, "hundredth": 2, "thousandth": 3,
            "ten-thousandth": 4, "十分位": 1, "百分位": 2, "千分位": 3, "个位": 0, "整数": 0}
_N = r"(\d+|one|two|three|four|five|six|一|两|二|三|四|五|六|deux|trois|quatre|zwei|drei|vier|dos|tres|cuatro)"
_PLACES = re.compile(
    rf"{_N}\s*(?:-\s*)?decimal\s+(?:places?|digits?)|{_N}\s+digits?\s+after\s+the\s+decimal|"
    rf"保留{_N}位小数|小数点后{_N}位|{_N}\s+décimales?|{_N}\s+(?:Nachkommastellen|Dezimalstellen)|"
    rf"{_N}\s+(?:cifras|lugares)\s+decimales", re.I)
_SIG = re.compile(rf"{_N}\s+significant\s+(?:figures|digits)|{_N}位有效数字", re.I)
_NEAREST_RE = re.compile(r"nearest\s+(whole\s+number|integer|unit|ten-thousandth|tenth|hundredth|thousandth)|"
                         r"精确到(十分位|百分位|千分位|个位|整数)|精确到\s*(0\.0*1|1)(?![\d.])", re.I)
_APPROX = re.compile(r"\b(?:approximately|approximate|approximation|estimate|as\s+a\s+decimal|in\s+decimal\s+form|"
                     r"decimal\s+(?:number|value|answer))\b|约为|近似|取近似值|environ\b|ungefähr|aproximadamente", re.I)


def _count(tok: str) -> int:
    return int(tok) if tok.isdigit() else _WORDS[tok.lower()]


def asked_precision(question: str | None) -> tuple[float, float] | str | None:
    """The precision a problem asks its answer in: an (abs, rel) tolerance, ``"rounding"`` (an
    approximation without a stated precision), or None (an exact answer is asked).

    >>> asked_precision("Round your answer to the nearest hundredth.")
    (0.005, 0.0)
    >>> asked_precision("Give the answer to 3 significant figures."), asked_precision("结果保留两位小数。")
    ((0.0, 0.005), (0.005, 0.0))
    >>> asked_precision("Express your answer as a decimal."), asked_precision("Find x.")
    ('rounding', None)
    """
    if not question:
        return None
    m = _PLACES.search(question)
    if m:
        return (0.5 * 10 ** -_count(next(g for g in m.groups() if g)), 0.0)
    m = _NEAREST_RE.search(question)
    if m:
        if m.group(3):
            tok = m.group(3)
            places = 0 if tok == "1" else len(tok) - 2
        else:
            places = _NEAREST[re.sub(r"\s+", " ", (m.group(1) or m.group(2)).lower())]
        return (0.5 * 10 ** -places, 0.0)
    m = _SIG.search(question)
    if m:
        return (0.0, 0.5 * 10 ** (1 - _count(next(g for g in m.groups() if g))))
    if _APPROX.search(question):
        return "rounding"
    return None


def parse_tolerance(value, where: str = "tolerance") -> tuple[float, float] | None:
    """``tolerance`` as (abs, rel): a number (absolute), ``"5%"`` (relative) or ``{abs: x, rel: y}``.

    >>> parse_tolerance(0.01), parse_tolerance("5%"), parse_tolerance({"rel": 1e-3}), parse_tolerance(None)
    ((0.01, 0.0), (0.0, 0.05), (0.0, 0.001), None)
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, dict):
            bad = set(value) - {"abs", "rel"}
            if bad:
                raise ValueError(f"unknown key(s) {sorted(bad)} (expected abs, rel)")
            t = (float(value.get("abs") or 0.0), float(value.get("rel") or 0.0))
        elif isinstance(value, str) and value.strip().endswith("%"):
            t = (0.0, float(value.strip()[:-1]) / 100)
        elif isinstance(value, bool):
            raise ValueError("a boolean is not a tolerance")
        else:
            t = (float(value), 0.0)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {value!r} is not a tolerance ({e}); expected a number (absolute), "
                         "'5%' (relative) or {abs: x, rel: y}") from None
    if t[0] < 0 or t[1] < 0:
        raise ValueError(f"{where}: {value!r}: a tolerance cannot be negative")
    return t


def question_of(sample: Sample) -> str:
    """The text of the sample's last user turn (where a problem states the precision it asks for)."""
    for m in reversed(sample.prompt):
        if m.role == "user":
            return m.text
    return ""


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
    mode = options.get("math_mode", MATH_DEFAULTS["math_mode"])
    o = {**MATH_DEFAULTS, **latex.DEFAULTS, **MATH_MODES.get(mode, {}), **options}
    if o.get("tolerance") is not None and not isinstance(o["tolerance"], tuple):
        o["tolerance"] = parse_tolerance(o["tolerance"])
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


def math_options(sample: Sample, options: dict) -> dict:
    """The options a math verification runs with: defaults, the mode's settings, the tolerance that
    applies (``meta.tolerance``, else the precision the problem asks for (strict), else ``tolerance``).
    Raises ValueError for an unknown mode or a bad tolerance."""
    o = {**MATH_DEFAULTS, **options}
    mode = sample.meta.get("math_mode") or o["math_mode"]
    if mode not in MATH_MODES:
        raise ValueError(f"math_mode {mode!r} is not one of {', '.join(MATH_MODES)}")
    o["math_mode"] = mode
    o.update(MATH_MODES[mode])
    tol = parse_tolerance(sample.meta.get("tolerance"), "meta.tolerance")
    if tol is None and mode == "strict":
        asked = asked_precision(question_of(sample))
        if asked == "rounding":
            o.update(rounding=True, exact_ref=False)
        elif asked is not None:
            tol = asked
    if tol is None:
        tol = parse_tolerance(o.get("tolerance"), "option tolerance")
    o["tolerance"] = tol
    return o


def _mv_verify(gold: str, text: str, cfg: dict) -> tuple[str, str | None, bool]:
    """math-verify's own parse + verify of the raw reference and response: (status, extracted, equal)
    with status ``ok``, ``no_gold`` or ``no_pred``. Module-level (runs in the hard-limit helper)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    c = {**MV_DEFAULTS, **(cfg or {})}
    targets = []
    for t in c["match_types"]:
        if t == "latex":
            targets.append(LatexExtractionConfig() if c["boxed_match_priority"] is None
                           else LatexExtractionConfig(boxed_match_priority=int(c["boxed_match_priority"])))
        elif t == "expr":
            targets.append(ExprExtractionConfig())
        else:
            raise ValueError(f"math_verify.match_types: {t!r} is not latex or expr")
    g = parse(gold, targets, parsing_timeout=None)
    if not g and not re.search(r"\$|\\\(|\\\[|\\boxed", gold):
        g = parse(f"${gold}$", targets, parsing_timeout=None)      # a bare reference ("\frac{1}{3}") read as math
    if not g:
        return "no_gold", None, False
    p = parse(text, targets, parsing_timeout=None)
    if not p:
        return "no_pred", None, False
    ok = verify(g, p, float_rounding=int(c["precision"]), strict=bool(c["strict"]),
                allow_set_relation_comp=bool(c["allow_set_relation_comp"]), timeout_seconds=None)
    return "ok", str(p[-1]), bool(ok)


def _verify_math_verify(sample: Sample, text: str, o: dict) -> Verdict:
    cfg = {**(o.get("math_verify") or {}), **(sample.meta.get("math_verify") or {})}
    if "default" in cfg:
        cfg = {k: v for k, v in cfg.items() if k != "default"}
    try:
        status, pred, ok = call_with_limit(_mv_verify, str(sample.answer), text, cfg, seconds=float(o["timeout"]) * 2)
    except LimitExceeded:
        return Verdict("wrong", 0.0, None, f"math_verify mode: math-verify timed out after {float(o['timeout']) * 2:g}s")
    if status == "no_gold":
        return Verdict("error", -1.0, None, f"math_verify mode: math-verify cannot parse the reference {str(sample.answer)[:80]!r}")
    if status == "no_pred":
        return Verdict("no_answer", -1.0, None, "math_verify mode: math-verify extracted no answer")
    if ok:
        return Verdict("correct", 1.0, pred, "equivalent (math-verify)")
    return Verdict("wrong", 0.0, pred, "not equivalent (math-verify)")


def verify_math(sample: Sample, text: str, finish_reason: str | None = None, **options) -> Verdict:
    """Verify a response to a math sample: correct (1), wrong (0), or no_answer (-1); see the module
    docstring for the modes (``math_mode``) and ``tolerance``."""
    if sample.answer is None or not str(sample.answer).strip():
        return Verdict("error", -1.0, None, "sample has no reference answer")
    try:
        o = math_options(sample, options)
    except ValueError as e:
        return Verdict("error", -1.0, None, str(e))
    if o["math_mode"] == "math_verify":
        return _verify_math_verify(sample, text, o)
    pred = extract_answer(text, think=o["think"], last_number=o["last_number"])
    if pred is None:
        why = "no final answer found (no \\boxed{}, 'final answer' phrase or closing statement; or an empty one)"
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
    """A numeric answer: like math (same mode and tolerance), without the sympy fallback."""
    return verify_math(sample, text, finish_reason, **{"sympy": False, **options})


def math_key(extracted: str, **options) -> str:
    """Canonical key of an extracted math answer (equal values share it)."""
    return latex.canonical(extracted, **options)
