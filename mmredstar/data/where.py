"""Row filters for conversion and evaluation: ``task="geometry problem solving"``, ``level=5``, ``difficulty>=7``.

An expression is ``FIELD OP VALUE``. ``FIELD`` is a sample attribute (``split``, ``answer_type``,
``difficulty``, ``source``, ``id``, ``answer``) or a key of ``meta`` (dotted for nested keys).
``OP`` is ``=``, ``!=``, ``~`` (substring, or membership for lists), ``>=``, ``<=``, ``>``, ``<``.
``VALUE`` is a quoted string or a number. When the field holds a list (MathVista ``skills``),
``=`` means "contains". Several expressions are ANDed. Data cards name useful ones as ``subsets``
(``mathvista``: ``geometry``; ``math``: ``hard``), and evaluation specs can pass the same strings.

    from mmredstar.data.where import parse_where, matches
    preds = [parse_where('task="geometry problem solving"')]
    keep = matches(sample, preds)

Doctests: ``.venv/bin/python -m pytest -q --doctest-modules mmredstar/data/where.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_EXPR = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(!=|>=|<=|=|~|>|<)\s*(.+?)\s*$")
SAMPLE_FIELDS = ("split", "answer_type", "difficulty", "source", "id", "answer")


@dataclass(frozen=True)
class Predicate:
    field: str
    op: str
    value: Any
    text: str

    def __call__(self, sample) -> bool:
        return _test(field_value(sample, self.field), self.op, self.value)

    def __str__(self) -> str:
        return self.text


def parse_where(expr: str) -> Predicate:
    """Parse one filter expression.

    >>> p = parse_where('task="geometry problem solving"'); (p.field, p.op, p.value)
    ('task', '=', 'geometry problem solving')
    >>> parse_where("level>=4").value
    4
    >>> parse_where("oops")
    Traceback (most recent call last):
    ...
    ValueError: bad filter 'oops': write FIELD OP VALUE, e.g. task="geometry problem solving" or level>=4 (OP is one of = != ~ >= <= > <)
    """
    m = _EXPR.match(expr)
    if not m:
        raise ValueError(f"bad filter {expr!r}: write FIELD OP VALUE, e.g. task=\"geometry problem solving\" "
                         "or level>=4 (OP is one of = != ~ >= <= > <)")
    field, op, raw = m.groups()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        value: Any = raw[1:-1]
    else:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            if not re.fullmatch(r"[\w.\- ]+", raw):
                raise ValueError(f"bad filter {expr!r}: the value {raw!r} is neither a number nor a word; "
                                 "quote text values, e.g. task=\"geometry problem solving\"") from None
            value = raw  # bare word
    return Predicate(field, op, value, expr.strip())


def field_value(sample, field: str) -> Any:
    """The value a filter looks at: a sample attribute or a ``meta`` entry (dotted path)."""
    if field in SAMPLE_FIELDS:
        return getattr(sample, field)
    cur: Any = sample.meta
    if isinstance(cur, dict) and field in cur:
        return cur[field]
    for part in field.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return None
    return cur


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(?:Level\s*)?(-?\d+(?:\.\d+)?)\s*", v)
        return float(m.group(1)) if m else None
    return None


def _eq(a: Any, b: Any) -> bool:
    if a == b:
        return True
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return na == nb
    return isinstance(a, str) and isinstance(b, str) and a.strip().lower() == b.strip().lower()


def _test(v: Any, op: str, want: Any) -> bool:
    """
    >>> _test(["geometry reasoning", "algebraic reasoning"], "=", "geometry reasoning")
    True
    >>> _test("Level 5", "=", 5), _test(9.0, ">=", 7), _test(None, "!=", "x"), _test("abc", "~", "b")
    (True, True, True, True)
    """
    if op == "!=":
        return not _test(v, "=", want)
    if isinstance(v, (list, tuple)):
        if op in ("=", "~"):
            return any(_eq(x, want) or (op == "~" and isinstance(x, str) and str(want).lower() in x.lower())
                       for x in v)
        return any(_test(x, op, want) for x in v)
    if v is None:
        return False
    if op == "=":
        return _eq(v, want)
    if op == "~":
        return str(want).lower() in str(v).lower()
    a, b = _num(v), _num(want)
    if a is None or b is None:
        return False
    return {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]


def matches(sample, predicates) -> bool:
    """True when the sample passes every predicate (strings are parsed)."""
    for p in predicates:
        if isinstance(p, str):
            p = parse_where(p)
        if not p(sample):
            return False
    return True
