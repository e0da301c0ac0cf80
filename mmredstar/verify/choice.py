"""Multiple-choice verification: read the chosen letter, or map a stated value to its letter.

Recognised forms (the last statement wins): ``\\boxed{C}``, ``\\boxed{\\text{(C)}}``, "Answer: C",
"the answer is (C)", "the answer is C: 40°", "option C", "答案是C", a final line or sentence that is
just "C." / "(C)", and a leading "C. ..." in a short answer. Without a letter, a stated value (the
last ``\\boxed{}``, "the answer is 540°", the closing math) is mapped to the one choice whose text or
value equals it (GeoQA, Geometry3K and MathVista write choices as values: "40°", "2√3", "\\frac{1}{2}").
A response that names no choice is never mapped to one. Ambiguity rule: when the final statement
names several different letters ("A or C"), or a value matches several choices, there is no answer
(``no_answer``, reward -1).

    python -c "from mmredstar.verify.choice import extract_choice; print(extract_choice('so it is 40°', ['30°', '40°']))"

>>> extract_choice("Therefore the answer is (C).", ["1", "2", "3", "4"])
'C'
>>> extract_choice("The answer is C: 40°", ["10°", "20°", "40°", "50°"])
'C'
>>> extract_choice("So the angle is $\\\\boxed{40^\\\\circ}$.", ["10°", "20°", "40°", "50°"])
'C'
>>> extract_choice("I am not sure.", ["10°", "20°", "40°", "50°"]) is None
True
>>> extract_choice("The answer is A or C.", ["1", "2", "3", "4"]) is None
True
"""

from __future__ import annotations

import re

from ..schema import Sample, Verdict
from . import latex
from .math import (
    _cut_end,
    answers_equal,
    extract_answer,
    find_boxes,
    latex_unescape,
    math_spans,
    strip_think,
)

_LETTER_PHRASE = re.compile(
    r"(?:answer\s+is|answer\s*[:：]|correct\s+(?:option|choice|answer)\s+(?:is\s*)?[:：]?|option\s+is|choice\s+is|"
    r"\bchoose|\bselect|\bpick|答案(?:是|为|：|:)|选项?|选择)\s*[:：]?", re.I)
_OPTION_WORD = re.compile(r"\b(?:option|choice)\s*\(?([A-Z])\)?(?![A-Za-z])")


def _letters(choices) -> list[str]:
    n = len(choices) if choices else 10
    return [chr(ord("A") + i) for i in range(n)]


def _letter_at_start(seg: str, letters: list[str]) -> str | None:
    """The letter a statement starts with: "C", "(C)", "C.", "C: 40°", "**C**", "option C"."""
    s = re.sub(r"\\text(?:bf)?\{([^{}]*)\}", r"\1", seg)
    s = s.strip().lstrip("*$ \"'“:：").strip()
    s = re.sub(r"^(?:option|choice|选项)\s*", "", s, flags=re.I)
    m = re.match(r"^\(?([A-Z])\)?(?=$|[\s.:,;)*$\"'”:：、]|[\u4e00-\u9fff])", s)
    if m and m.group(1) in letters:
        return m.group(1)
    return None


def _letters_in(seg: str, letters: list[str]) -> set[str]:
    """Letters named in a short final statement: "(C)", standalone capitals, "option C"."""
    s = re.sub(r"\\text(?:bf)?\{([^{}]*)\}", r"\1", seg)
    found = {m.group(1) for m in re.finditer(r"\(([A-Z])\)", s)}
    found |= {m.group(1) for m in re.finditer(r"(?<![A-Za-z\\])([A-Z])(?![A-Za-z(])", s)}
    return {x for x in found if x in letters}


def _clean_choice(c: str) -> str:
    c = c.strip()
    return re.sub(r"^\(?[A-Z]\)?\s*[.:：)]\s*", "", c) if re.match(r"^\(?[A-Z]\)?\s*[.:：)]", c) else c


def value_to_letter(value: str, choices: list[str], **options) -> str | None:
    """The letter of the one choice whose text or value equals ``value`` (None if none or several).

    >>> value_to_letter("540", ["360°", "540°", "720°"])
    'B'
    """
    if not choices or value is None:
        return None
    letters = _letters(choices)
    o = {"sympy": False, **options}
    hits = []
    v_norm = latex.normalize(value).lower()
    for letter, c in zip(letters, choices, strict=False):
        text = _clean_choice(c)
        if latex.normalize(text).lower() == v_norm:
            hits.append(letter)
            continue
        try:
            ok, _ = answers_equal(text, value, **o)
        except Exception:  # noqa: BLE001 - a choice text we cannot compare does not match
            ok = False
        if ok:
            hits.append(letter)
    return hits[0] if len(set(hits)) == 1 else None


def extract_choice(text: str | None, choices: list[str] | None, *, think: str = "after", **options) -> str | None:
    """The letter a response chooses (see the module docstring), or None."""
    if not text:
        return None
    letters = _letters(choices)
    body = latex_unescape(_cut_end(strip_think(text, think)))
    if not body.strip():
        return None
    cands: list[tuple[int, str | None]] = []     # (position, letter or None when ambiguous)
    boxes = find_boxes(body)
    if boxes:
        s, e, content = boxes[-1]
        letter = _letter_at_start(content, letters)
        if letter and len(_letters_in(content, letters)) <= 1 or letter and re.match(r"^\W*[A-Z]\W*$", content):
            cands.append((s, letter))
        elif choices:
            cands.append((s, value_to_letter(content, choices, **options) or "?"))
    for m in _LETTER_PHRASE.finditer(body):
        rest = body[m.end():]
        stop = re.search(r"(?<=[^A-Z(])[.!?。](?=\s|$)|\n", rest)
        seg = rest[:stop.start()] if stop else rest
        if not seg.strip():
            continue
        letter = _letter_at_start(seg, letters)
        if letter:
            named = _letters_in(seg[:40], letters)
            cands.append((m.start(), letter if len(named) <= 1 else None))
        elif choices:
            val = extract_answer(seg, gold=True)
            hit = value_to_letter(val, choices, **options) if val else None
            if hit:
                cands.append((m.start(), hit))
    for m in _OPTION_WORD.finditer(body):
        if m.group(1) in letters:
            cands.append((m.start(), m.group(1)))
    # a closing line/sentence that is just a letter: "C." / "(C)" / "**C**"
    tail = body.rstrip()
    last_line = tail.rsplit("\n", 1)[-1]
    lm = re.search(r"(?:^|[.:]\s+)\**\(?([A-Z])\)?\**\.?$", last_line)
    if lm and lm.group(1) in letters:
        cands.append((len(tail) - len(last_line) + lm.start(1), lm.group(1)))
    so = re.search(r"\b(?:so|thus|hence|therefore|answer)\W{0,3}\(?([A-Z])\)?\**\.?\s*$", tail, re.I)
    if so and so.group(1) in letters:
        cands.append((len(tail) - len(so.group(0)) + so.start(1), so.group(1)))
    short = tail if len(tail) < 60 else ""
    m = re.match(r"^\W{0,3}\(?([A-Z])\)?(?=$|[.:)：、]|\s*$)", short)
    if m and m.group(1) in letters:                  # a short answer that starts with the letter: "C. x = 42"
        cands.append((0, m.group(1)))
    real = [c for c in cands if c[1] != "?"]
    if real:
        pos, letter = max(real, key=lambda c: c[0])
        return letter
    if choices:
        val = extract_answer(body, think="any")
        if val is not None and not math_spans(val):
            return value_to_letter(val, choices, **options)
    return None


def verify_choice(sample: Sample, text: str, finish_reason: str | None = None, **options) -> Verdict:
    """Verify a response to a multiple-choice sample (the reference answer is a letter)."""
    if not sample.choices:
        return Verdict("error", -1.0, None, "choice sample without choices")
    gold = str(sample.answer or "").strip().upper()
    letters = _letters(sample.choices)
    if gold not in letters:
        mapped = value_to_letter(str(sample.answer), sample.choices)
        if mapped is None:
            return Verdict("error", -1.0, None, f"reference {sample.answer!r} is not a choice letter or text")
        gold = mapped
    letter = extract_choice(text, sample.choices, think=options.get("think", "after"))
    if letter is None:
        return Verdict("no_answer", -1.0, None, "no choice named (or several different ones)")
    if letter == gold:
        return Verdict("correct", 1.0, letter, "chosen letter matches")
    return Verdict("wrong", 0.0, letter, f"chose {letter}, reference {gold}")
