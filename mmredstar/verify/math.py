"""Math answer verification: extract the final answer from a long chain of thought, compare it.

Extraction (``extract_answer``) reads the text after ``</think>`` (option ``think``), cuts at chat
end markers, and takes whichever comes last of: the last ``\\boxed{}`` / ``\\fbox{}`` group (boxes
joined by "and" / commas count as one list answer), and a "final answer is" / "the answer is" /
"答案是" phrase. Without either, it reads the final sentence: its last math span, else its last number
(``last_number="sentence"``, the default; ``"anywhere"`` takes the last number of the whole text,
``"off"`` nothing). A short bare answer (``"x^2+1"``, ``"10%"``) is taken whole.

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

>>> extract_answer("so the area is $\\\\boxed{\\\\frac{3}{4}}$.")
'\\\\frac{3}{4}'
>>> extract_answer("<think>maybe 3</think> The final answer is 4.")
'4'
>>> extract_answer("Therefore, there are 12 distinct sequences. I hope it is correct.")
'12'
>>> math_equal("\\\\frac{1}{2}", "Thus $x = 0.5$.")
True
"""

from __future__ import annotations

import functools
import logging
import re

from ..schema import Sample, Verdict
from . import latex
from .timeout import LimitExceeded, call_with_limit

MAX_ANSWER_CHARS = 2000
MATH_DEFAULTS = {"think": "after", "last_number": "sentence", "sympy": True, "timeout": 5.0}

END_MARKERS = re.compile(r"<\|im_start\|>|<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|<\|end\|>|</s>|<｜end▁of▁sentence｜>")
_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_PHRASE = re.compile(
    r"(?:final\s+answer(?:\s+is)?|the\s+answer\s+is|answer\s*[:：]|答案(?:是|为|：|:)|最终答案(?:是|为)?)\s*[:：]?",
    re.I)
_BOILERPLATE = re.compile(r"\s*(?:I hope (?:it|this) is correct\.?|Thank you!?)\s*$", re.I)
_JOIN_WORDS = re.compile(r"\b(?:and|or)\b|[,;&]|和|或|以及")
_NUMBER = re.compile(r"(?<![A-Za-z\d.\\])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:[.,]\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?(?:\s*%)?")


# ----------------------------------------------------------------------------------------- helpers
def strip_think(text: str, think: str = "after") -> str:
    """The part of a response that holds the final answer.

    >>> strip_think("<think>a</think>b")
    'b'
    >>> strip_think("<think>unfinished")
    ''
    """
    if think == "any":
        return text.replace("<think>", "").replace("</think>", "\n")
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        return ""
    return text


def _cut_end(text: str) -> str:
    m = END_MARKERS.search(text)
    return text[:m.start()] if m else text


def find_boxes(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces; unclosed runs
    to the end; ``\\boxed 5`` form too).

    >>> [c for _, _, c in find_boxes("\\\\boxed{\\\\frac{1}{2}} and \\\\boxed 3")]
    ['\\\\frac{1}{2}', '3']
    """
    out: list[tuple[int, int, str]] = []
    for m in _BOX.finditer(text):
        if out and m.start() < out[-1][1]:          # nested inside the previous box: part of it
            continue
        j = m.end()
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            content, end = latex.unwrap_braced(text, j)
        else:
            mm = re.match(r"[^\s$]+", text[j:])
            if not mm:
                continue
            content, end = mm.group(0), j + mm.end()
        out.append((m.start(), end, content))
    return out


def math_spans(text: str) -> list[tuple[int, int, str, bool]]:
    """(start, end, content, well_formed) of ``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]`` spans.

    Inline spans that contain a line break are malformed (``well_formed`` False)."""
    spans = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nx = text[i + 1]
            if nx in "([":
                close = "\\)" if nx == "(" else "\\]"
                e = text.find(close, i + 2)
                if e < 0:
                    i += 2
                    continue
                content = text[i + 2:e]
                spans.append((i, e + 2, content, nx == "[" or "\n" not in content))
                i = e + 2
                continue
            i += 2
            continue
        if c == "$":
            if text.startswith("$$", i):
                e = text.find("$$", i + 2)
                if e < 0:
                    i += 2
                    continue
                spans.append((i, e + 2, text[i + 2:e], True))
                i = e + 2
                continue
            e = i + 1
            while e < n and (text[e] != "$" or text[e - 1] == "\\"):
                e += 1
            if e >= n:
                i += 1
                continue
            content = text[i + 1:e]
            spans.append((i, e + 1, content, "\n" not in content))
            i = e + 1
            continue
        i += 1
    return spans


def _joinable(sep: str) -> bool:
    """Text between two answers that makes them one list answer ("and", ",", "\\quad", nothing)."""
    s = re.sub(r"\\text\{([^{}]*)\}", r" \1 ", sep)
    s = re.sub(r"\\[a-zA-Z]+|\\[()\[\],;!: ]|\$", " ", s)
    if len(s) > 60 or re.search(r"[.!?。]\s+[A-Z]|\n\s*\n", s):
        return False
    if _JOIN_WORDS.search(s):
        other = [w for w in re.findall(r"[A-Za-z]{3,}", s) if w.lower() not in ("and", "for")]
        return len(other) <= 1
    return not re.search(r"[A-Za-z0-9\u4e00-\u9fff]", s)


def _group_last(items: list[tuple[int, int, str]], text: str) -> tuple[int, str] | None:
    """Join the trailing run of items separated by joinable text: (start, "a, b, c")."""
    if not items:
        return None
    k = len(items) - 1
    while k > 0 and _joinable(text[items[k - 1][1]:items[k][0]]):
        k -= 1
    group = [c.strip() for _, _, c in items[k:] if c.strip()]
    if not group:
        return None
    return items[k][0], ", ".join(group)


def _mask_spans(text: str, spans) -> str:
    chars = list(text)
    for s, e, _, _ in spans:
        for i in range(s, e):
            if chars[i] not in "\n":
                chars[i] = "_"
    return "".join(chars)


def _last_sentence_start(text: str, spans) -> int:
    masked = _mask_spans(text, spans).rstrip()
    masked = re.sub(r"[.!?。]+$", "", masked)
    best = 0
    for m in re.finditer(r"[.!?。](?=\s)|\n\s*\n|:\s*\n", masked):
        best = m.end()
    for s, e, _, _ in spans:                     # display math ends a sentence when prose follows it
        if text[s:s + 2] in ("$$", "\\[") and e < len(masked) and re.match(r"\s*[A-Z]", masked[e:]):
            best = max(best, e)
    return best


def _clean_number(s: str) -> str:
    s = s.replace(" ", "")
    if re.fullmatch(r"[-+]?\d+,\d{2}%?", s) or re.fullmatch(r"[-+]?0,\d+%?", s):
        return s.replace(",", ".")
    return s


def _from_sentence(text: str, last_number: str) -> str | None:
    """Last math span (or joined spans) of the final sentence, else its last number."""
    text = _BOILERPLATE.sub("", text.rstrip())
    spans = math_spans(text)
    start = _last_sentence_start(text, spans)
    good = [(s, e, c) for s, e, c, ok in spans if ok and s >= start and c.strip()]
    if good:
        g = _group_last(good, text)
        if g:
            return g[1]
    if last_number == "off":
        return None
    masked = _mask_spans(text, [sp for sp in spans if not sp[3]])
    scope = masked if last_number == "anywhere" else masked[start:]
    offset = 0 if last_number == "anywhere" else start
    nums = list(_NUMBER.finditer(scope))
    if not nums:
        return None
    return _clean_number(text[offset + nums[-1].start():offset + nums[-1].end()])


def _from_phrase(rest: str) -> str | None:
    """The answer stated after "final answer is": until the end of that sentence."""
    spans = math_spans(rest)
    masked = _mask_spans(rest, spans)
    m = re.search(r"[.!?。](?=\s|$)|\n", masked.lstrip(" :*\"'"))
    lead = len(masked) - len(masked.lstrip(" :*\"'"))
    seg = rest[:lead + m.start()] if m else rest
    seg = _BOILERPLATE.sub("", seg).strip().strip("*\"'“”").strip()
    if not seg:
        return None
    # "The volume of $V$ is 120" -> "120"
    low = _mask_spans(seg, math_spans(seg))
    k = max(low.rfind(" is "), low.rfind(" are "), low.rfind(" was "))
    if k >= 0:
        seg = seg[k:].split(" ", 2)[2].strip()
    spans = [sp for sp in math_spans(seg) if sp[3] and sp[2].strip()]
    if spans:
        g = _group_last([(s, e, c) for s, e, c, _ in spans], seg)
        if g:
            return g[1]
    if _looks_bare(seg, 1):
        return seg.rstrip(".")
    nums = list(_NUMBER.finditer(seg))
    if nums:
        return _clean_number(nums[-1].group(0))
    return None


def _looks_bare(t: str, max_words: int = 0) -> bool:
    """A short answer written without markup ("x^2 + 1", "10%", "\\text{odd}", "C. x = 42"): at most
    ``max_words`` plain words of three or more letters (a response "hmm" or "I refuse" is no answer)."""
    if len(t) > 120 or "\n\n" in t:
        return False
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox|textnormal|begin|end)\{[^{}]*\}", " ", t)
    s = re.sub(r"\\[a-zA-Z]+", " ", s)
    s = re.sub(r"\b(?:and|or|percent|percentage|pct)\b|(?<=[\d)\]}])(?:or|and)(?=[A-Za-z(\\])", " ", s)
    words = [w for w in re.findall(r"[A-Za-z]{3,}", s)]
    return len(words) <= max_words


def extract_answer(text: str | None, *, think: str = "after", last_number: str = "sentence",
                   gold: bool = False, **_ignored) -> str | None:
    """The final answer stated in a response (see the module docstring), or None.

    ``gold=True`` reads a reference answer: a bare reference is taken whole.
    """
    if not text:
        return None
    if not gold:
        text = strip_think(text, think)
    text = _cut_end(text)
    text = latex_unescape(text)
    if not text.strip():
        return None
    cands: list[tuple[int, str]] = []
    boxes = find_boxes(text)
    if boxes:
        g = _group_last(boxes, text)
        if g:
            cands.append(g)
    if True:
        for m in reversed(list(_PHRASE.finditer(text))):
            ans = _from_phrase(text[m.end():])
            if ans:
                cands.append((m.start(), ans))
                break
    bare = text.replace("$", " ") if gold else text
    if cands:
        ans = max(cands, key=lambda c: c[0])[1].strip()
    elif gold and _looks_bare(bare) and _parses(bare):       # "15 and $22.5 \mathrm{min}$": all of it
        ans = re.sub(r"\s+", " ", bare).strip()
    elif (gold or _looks_bare(text)) and not math_spans(text) and _parses(text):
        ans = text.strip()
    elif gold:            # a reference is taken whole rather than cut down to a number ('52_8' -> '8')
        spans = [sp for sp in math_spans(text) if sp[3]]
        ans = _from_sentence(text, "off") if spans else None
        if ans is None:
            ans = text.strip() if len(text) <= 300 else _from_sentence(text, last_number)
    else:
        ans = _from_sentence(text, last_number)
    if ans is not None and len(ans) > MAX_ANSWER_CHARS and not gold:
        return None                                  # not an answer: a runaway box or span
    return ans


def latex_unescape(text: str) -> str:
    r"""Undo doubled backslashes of JSON-escaped LaTeX (``\\boxed`` -> ``\boxed``) for known commands."""
    text = re.sub(r"\\n(?![a-zA-Z])", "\n", text)
    if "\\\\" not in text:
        return text
    return re.sub(r"(?<!\\)\\\\([a-zA-Z]+)",
                  lambda m: "\\" + m.group(1) if m.group(1) in latex.KNOWN_COMMANDS else m.group(0), text)


def _parses(t: str) -> bool:
    return _parsed(t, "any") is not None


# ----------------------------------------------------------------------------------------- compare
_CHOICE_GOLD = re.compile(r"^\(?([A-J])\)?$")
_CHOICE_PRED = re.compile(r"^\s*\(?([A-J])\)?(?:[.:)]|\s*$|\s+(?=\S))")


@functools.lru_cache(maxsize=4096)
def _parsed(ans: str, tuple_order: str):
    try:
        return latex.parse_answer(latex.normalize(ans), tuple_order=tuple_order)
    except Exception:  # noqa: BLE001 - unparseable by the fast path: sympy decides
        return None


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
    g = _parsed(gold, o["tuple_order"])
    p = _parsed(pred, o["tuple_order"])
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
    _parsed.cache_clear()
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
        from .choice import extract_choice

        letter = extract_choice(text, None, think=o["think"])
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
