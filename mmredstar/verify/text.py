"""Short-text answers: exact match after normalisation (case, spacing, punctuation, ``\\text{}``).

The answer is read like a math answer (``\\boxed{}``, "the answer is ...", else the final line).

    python -c "from mmredstar.verify.text import normalize_text; print(normalize_text('  The Eiffel-Tower. '))"

>>> normalize_text("\\\\text{ Paris }.")
'paris'
>>> normalize_text("The  answer")
'answer'
"""

from __future__ import annotations

import re
import unicodedata

from ..schema import Sample, Verdict
from .extract import extract_text_answer


def normalize_text(s: str) -> str:
    """Lower case, no ``\\text{}``/``$``, no articles or punctuation, single spaces."""
    s = unicodedata.normalize("NFKC", s)
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", s).replace("$", "")
    s = s.lower()
    s = re.sub(r"[^\w\s]", " ", s)
    s = re.sub(r"\b(?:a|an|the)\b", " ", s)
    return re.sub(r"\s+", " ", s).strip()


def verify_text(sample: Sample, text: str, finish_reason: str | None = None, **options) -> Verdict:
    """Verify a short-text answer by normalised exact match."""
    if sample.answer is None:
        return Verdict("error", -1.0, None, "sample has no reference answer")
    ans = extract_text_answer(text, options.get("think", "after"))
    if ans is None:
        return Verdict("no_answer", -1.0, None, "no answer found")
    if normalize_text(ans) == normalize_text(str(sample.answer)) and normalize_text(ans):
        return Verdict("correct", 1.0, ans, "matches the reference after normalisation")
    return Verdict("wrong", 0.0, ans, f"differs from the reference {str(sample.answer)[:80]!r}")
