"""Multiple-choice verification: read the letter the response chose, or map a stated value to its letter.

What counts (``mmredstar.verify.extract.extract_choice``): every explicit answer statement names the
letter it starts with: ``\\boxed{C}``, "Answer: (C)", "the answer is C: 40°", "option C is correct", "I
choose C", "so it must be (C)", a closing line "C.", and the same in other languages ("答案选 D", "故选 C",
"所以答案是B", "la bonne réponse est A", "die Antwort ist B", "la respuesta es C", "Ответ: B", "答えは C");
letters named after it do not count ("D, not B"; "(C); (A) and (B) fail the angle condition"). The **last**
statement wins, so a chain of thought that names many letters on its way is read at its conclusion.
Without a statement, the leading letter of a short reply counts ("B. Not A, because the sides differ").
Without a letter, a stated value (the last ``\\boxed{}``, "the answer is 540°", the closing math) is mapped
to the one choice whose text or value equals it (GeoQA, Geometry3K and MathVista write choices as values:
"40°", "2√3", "\\frac{1}{2}"). ``no_answer`` (reward -1) only for a response that never commits: no letter
and no matching value, or a last statement that hedges ("A or C", "A/C", "A 或 C").

Where this deliberately differs from the usual scripts:

- lighteval (``IndicesExtractionConfig``): ranks patterns ("final answer is X", "answer: X", "answer ... X"
  within 50 characters, a letter at the start of the text or of a line) and takes the best-ranked one;
  we take the last statement of any kind, since a long chain of thought revises itself ("the answer is A.
  Wait ... the answer is C" is C here). lighteval does not look inside ``\\boxed{}`` for letters nor map
  values to choices; we do both. Its letter must be followed by punctuation or a space; so must ours.
- MathVista (``calculate_score.py``): after its (GPT) extraction it takes the first "(X)" or a bare
  letter, else the choice nearest by edit distance, so every response gets some choice; we never invent
  one (a response that names no choice and no choice's value is ``no_answer``).
- GeoQA / Geometry3K: their releases carry no extraction script we could read; the rules above apply,
  with values mapped to choices by the math comparison.

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
