"""Small pure text helpers used by the adapters: reference answers, choices, ids.

A reference's ``\\boxed{}`` is read by the verifiers' own ``mmredstar.verify.extract.last_boxed`` (one
reading for references and responses), not here.

Each function is pure and has doctests; run them with
``.venv/bin/python -m pytest -q --doctest-modules mmredstar/data/text.py``.
"""

from __future__ import annotations

import re
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def the_answer_is(text: str | None) -> str | None:
    """The answer after the last "The answer is:" (MetaMathQA's convention).

    >>> the_answer_is("... so 2+2=4.\\nThe answer is: 4")
    '4'
    >>> the_answer_is("The answer is: \\\\frac{3}{5}  ")
    '\\\\frac{3}{5}'
    >>> the_answer_is("no marker") is None
    True
    """
    if not text:
        return None
    ms = list(re.finditer(r"The answer is:?\s*(.+?)\s*$", text, flags=re.IGNORECASE | re.MULTILINE))
    if not ms:
        return None
    ans = ms[-1].group(1).strip()
    return ans.rstrip(".").strip() or None


def strip_math_delims(s: str) -> str:
    r"""Remove the ``$...$`` (or ``\(...\)``) wrapping an answer, keeping what is inside.

    Only strips when the whole string is made of dollar spans (optionally comma-separated):

    >>> strip_math_delims("$10-4 n$")
    '10-4 n'
    >>> strip_math_delims("$69$,$84$")
    '69,84'
    >>> strip_math_delims("all real numbers")
    'all real numbers'
    >>> strip_math_delims("costs $5 and $6 each")
    'costs $5 and $6 each'
    >>> strip_math_delims(r"\(x^2\)")
    'x^2'
    >>> strip_math_delims("$$\n\\frac{1}{10}\n$$")
    '\\frac{1}{10}'
    """
    t = s.strip()
    if t.startswith("$$") and t.endswith("$$") and len(t) > 4 and "$" not in t[2:-2]:
        return t[2:-2].strip()
    if re.fullmatch(r"\$[^$]+\$(\s*,\s*\$[^$]+\$)*", t):
        return t.replace("$", "").strip()
    if t.startswith(r"\(") and t.endswith(r"\)") and t.count(r"\(") == 1:
        return t[2:-2].strip()
    return t


def scalar_to_str(v: Any) -> str | None:
    """A reference answer as a string: integral floats lose their ``.0``.

    >>> scalar_to_str(27.0), scalar_to_str(1.5), scalar_to_str(204), scalar_to_str(" 025 "), scalar_to_str(None)
    ('27', '1.5', '204', '025', None)
    """
    if v is None:
        return None
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalar
        try:
            return scalar_to_str(v.item())
        except Exception:
            pass
    return str(v).strip()


def render_choices(question: str, choices: list[str]) -> str:
    """The standard rendering of a choice question: the stem, then one ``X: text`` line per choice.

    >>> print(render_choices("Find the angle.", ["30°", "40°"]))
    Find the angle.
    Choices:
    A: 30°
    B: 40°
    """
    lines = [f"{LETTERS[i]}: {c}" for i, c in enumerate(choices)]
    return question.rstrip() + "\nChoices:\n" + "\n".join(lines)


_CHOICE_LINE = re.compile(r"^\s*\(?([A-Z])\)?\s*[:.：、)]\s*(.*?)\s*$")


def split_choices(text: str) -> tuple[str, list[str] | None]:
    """Split "stem ... Choices: A: x B: y" (as in the LLM-era GeoQA files) into (stem, choices).

    Choices may sit one per line or on one line; letters must run A, B, C... in order.

    >>> split_choices("Find x.\\nChoices:\\nA:40°\\nB:60°\\nC:120°\\nD:140°")
    ('Find x.', ['40°', '60°', '120°', '140°'])
    >>> split_choices("Find x. Choices: A. 1 B. 2")
    ('Find x.', ['1', '2'])
    >>> split_choices("Find x.")
    ('Find x.', None)
    """
    found = list(re.finditer(r"(?:^|\s)(?:Choices|Options)\s*[:：]", text, flags=re.IGNORECASE))
    if not found:
        return text.strip(), None
    m = found[-1]
    stem, tail = text[:m.start()].strip(), text[m.end():]
    lines = [ln for ln in tail.splitlines() if ln.strip()]
    choices: list[str] = []
    if len(lines) >= 2:
        for ln in lines:
            mm = _CHOICE_LINE.match(ln)
            if not mm or mm.group(1) != LETTERS[len(choices)]:
                return text.strip(), None
            choices.append(mm.group(2))
    else:  # all on one line: "A. 1 B. 2 C. 3"
        parts = re.split(r"(?:^|\s)\(?([A-Z])\)?\s*[:.：]\s*", tail.strip())
        if len(parts) < 5 or parts[0].strip():
            return text.strip(), None
        for k in range(1, len(parts), 2):
            if parts[k] != LETTERS[len(choices)]:
                return text.strip(), None
            choices.append(parts[k + 1].strip())
    if len(choices) < 2:
        return text.strip(), None
    return stem, choices


def strip_instruction(text: str) -> str:
    """Drop an instruction written before "Question:" (G-LLaVA's test prompts), keeping the problem.

    >>> strip_instruction("First reason, then answer in the format Answer: xxx.\\nQuestion:Find x.")
    'Find x.'
    >>> strip_instruction("Find x.")
    'Find x.'
    """
    m = re.search(r"(?:^|\n)\s*Question\s*:\s*", text)
    return text[m.end():].strip() if m else text.strip()


def choice_letter(answer: Any, choices: list[str], mode: str = "auto") -> str | None:
    """The letter of the correct choice, from a letter, a 0-based index or the choice's text.

    ``mode``: ``letter``, ``index`` (0-based), ``index1`` (1-based), ``text`` or ``auto`` (an
    integer is an index, a single in-range letter is a letter, else the text of a choice).

    >>> choice_letter(2, ["a", "b", "c"]), choice_letter("b", ["x", "y"]), choice_letter("(C)", list("xyz"))
    ('C', 'B', 'C')
    >>> choice_letter("40°", ["30°", "40°"]), choice_letter("E", ["1", "2"]), choice_letter(1, ["a", "b"], "index1")
    ('B', None, 'A')
    >>> choice_letter("B", ["A", "B", "C"], "text")
    'B'
    """
    n = len(choices)
    if isinstance(answer, bool) or answer is None:
        return None
    if hasattr(answer, "item") and not isinstance(answer, (str, bytes)):
        answer = answer.item()
    if mode in ("index", "index1", "auto") and isinstance(answer, int):
        i = answer - (1 if mode == "index1" else 0)
        return LETTERS[i] if 0 <= i < n else None
    if not isinstance(answer, str):
        answer = scalar_to_str(answer) or ""
    s = answer.strip()
    if mode in ("index", "index1") and s.isdigit():
        return choice_letter(int(s), choices, mode)
    if mode in ("letter", "auto"):
        mm = re.fullmatch(r"\(?([A-Za-z])\)?[.:]?", s)
        if mm and LETTERS.index(mm.group(1).upper()) < n:
            return mm.group(1).upper()
        if mode == "letter":
            return None
    if s in choices:
        return LETTERS[choices.index(s)]
    stripped = [c.strip() for c in choices]
    if s in stripped:
        return LETTERS[stripped.index(s)]
    return None


def natural_key(s: str) -> list:
    """Sort key that orders embedded numbers numerically ("2" before "10").

    >>> sorted(["10/data.json", "2/data.json", "1/data.json"], key=natural_key)
    ['1/data.json', '2/data.json', '10/data.json']
    """
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def format_template(template: str, row: dict) -> str | None:
    """Fill ``{column}`` placeholders from a row (for ids made of several columns); None if any is absent.

    >>> format_template("{data_source}/{question_number}", {"data_source": "alg", "question_number": "1.2"})
    'alg/1.2'
    >>> format_template("{a}-{b}", {"a": 1}) is None
    True
    """
    names = re.findall(r"{([^{}]+)}", template)
    vals = {}
    for n in names:
        v = get_path(row, n)
        if v is None:
            return None
        vals[n] = scalar_to_str(v)
    out = template
    for n, v in vals.items():
        out = out.replace("{" + n + "}", v or "")
    return out


_MISSING = object()


def get_path(row: Any, path: str, default: Any = None) -> Any:
    """``row["a"]["b"]`` for ``"a.b"``; a key containing dots is tried whole first.

    >>> get_path({"metadata": {"task": "t"}}, "metadata.task"), get_path({"a.b": 1}, "a.b"), get_path({}, "x")
    ('t', 1, None)
    """
    if isinstance(row, dict) and path in row:
        return row[path]
    cur = row
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return default
    return cur
