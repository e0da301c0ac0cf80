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
from . import extract, latex
from .extract import letters_for
from .math import answers_equal


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
    letters = letters_for(choices)
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
    return extract.extract_choice(text, choices, think=think, match=value_to_letter, **options)


def verify_choice(sample: Sample, text: str, finish_reason: str | None = None, **options) -> Verdict:
    """Verify a response to a multiple-choice sample (the reference answer is a letter)."""
    if not sample.choices:
        return Verdict("error", -1.0, None, "choice sample without choices")
    gold = str(sample.answer or "").strip().upper()
    letters = letters_for(sample.choices)
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
