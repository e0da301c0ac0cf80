"""The 1-10 difficulty scale of ``Sample.difficulty``: dataset level maps, bands and band schedules.

This is the vocabulary every stage shares (data cards map labels onto it, teachers and curation schedule by
band, subsets and studies select by band), so it sits on the bottom floor with the records; estimating a
difficulty (dataset labels, a rubric scorer, a student's pass rate, the trained scorer) is the
``mmredstar.difficulty`` package, which re-exports everything here.

Level maps. The raw label always stays in ``Sample.meta`` (``meta.level`` for MATH, ``meta.difficulty``
for TACO); the mapped number goes to ``Sample.difficulty``. The maps are stated once, here, and named by the
data cards (``difficulty: {column: level, map: math_level}``) and by the ``labels`` difficulty source:

- ``math_level`` (MATH, MATH-500): Level L (1-5) -> 2L-1, i.e. 1, 3, 5, 7, 9. MATH-hard (Level 5)
  lands at 9, inside the paper's "hard" band (7-9); "Level ?" maps to none.
- ``taco``: EASY 2, MEDIUM 4, MEDIUM_HARD 6, HARD 8, VERY_HARD 10; UNKNOWN_DIFFICULTY maps to none.
- ``scale10``: a number already on 1-10 (Omni-MATH's ``difficulty``, our own scorer), clipped.

Bands. A difficulty lies in band ``band(d)`` = d rounded half up (6.5 -> 7). Schedules and ranges are
inclusive bands: ``{"1-3": 2, "4-6": 4, "7-10": 8}`` (curation's samples per prompt, a scripted teacher's
error rate by band), ``range: [7, 9]`` (keep the hard prompts), named bands ``low=1-3,high=7-9`` (subsets).

    from mmredstar.levels import parse_schedule, samples_for
    samples_for(8.2, parse_schedule({"1-3": 2, "4-6": 4, "7-10": 8}), default=4)   # -> 8

Run the doctests: ``.venv/bin/python -m pytest -q --doctest-modules mmredstar/levels.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


# ----------------------------------------------------------------------------------------- level maps
def math_level(label: Any) -> float | None:
    """MATH ``level`` ("Level 3" or 3) -> 2L-1.

    >>> math_level("Level 5"), math_level(1), math_level("Level ?"), math_level(None)
    (9.0, 1.0, None, None)
    """
    if label is None or isinstance(label, bool):
        return None
    m = re.search(r"(\d+)", str(label))
    if not m:
        return None
    lv = int(m.group(1))
    return float(2 * lv - 1) if 1 <= lv <= 5 else None


TACO_LEVELS = {"EASY": 2.0, "MEDIUM": 4.0, "MEDIUM_HARD": 6.0, "HARD": 8.0, "VERY_HARD": 10.0}


def taco(label: Any) -> float | None:
    """TACO ``difficulty`` string -> 2, 4, 6, 8, 10.

    >>> taco("EASY"), taco("very_hard"), taco("UNKNOWN_DIFFICULTY")
    (2.0, 10.0, None)
    """
    if not isinstance(label, str):
        return None
    return TACO_LEVELS.get(label.strip().upper().replace(" ", "_"))


def scale10(label: Any) -> float | None:
    """A number already on the 1-10 scale (clipped).

    >>> scale10("6.5"), scale10(12), scale10("hard")
    (6.5, 10.0, None)
    """
    try:
        v = float(label)
    except (TypeError, ValueError):
        return None
    return min(10.0, max(1.0, v))


DIFFICULTY_MAPS: dict[str, Callable[[Any], float | None]] = {
    "math_level": math_level,
    "taco": taco,
    "scale10": scale10,
}


def map_difficulty(label: Any, how: str | dict | Callable | None) -> float | None:
    """Map a raw label with a named map, an explicit ``{label: number}`` dict or a function.

    >>> map_difficulty("Level 2", "math_level"), map_difficulty("b", {"a": 1, "b": 5}), map_difficulty(3, None)
    (3.0, 5.0, None)
    """
    if how is None or label is None:
        return None
    if callable(how):
        return how(label)
    if isinstance(how, dict):
        v = how.get(label, how.get(str(label)))
        return None if v is None else float(v)
    if how not in DIFFICULTY_MAPS:
        raise ValueError(f"unknown difficulty map {how!r}; use one of {list(DIFFICULTY_MAPS)} or a {{label: number}} mapping")
    return DIFFICULTY_MAPS[how](label)


# ----------------------------------------------------------------------------------------- bands
def band(d: float, *, clip: bool = False) -> int:
    """The integer band of a difficulty (rounded half up); ``clip`` keeps it within 1-10.

    >>> band(6.5), band(6.49), band(9.0), band(0.2, clip=True), band(12, clip=True)
    (7, 6, 9, 1, 10)
    """
    b = int(math.floor(float(d) + 0.5))
    return min(10, max(1, b)) if clip else b


def parse_schedule(spec: dict, value=int) -> list[tuple[int, int, Any]]:
    """``{"1-3": 2, "4-6": 4, "7-10": 8}`` -> ``[(1, 3, 2), (4, 6, 4), (7, 10, 8)]`` (inclusive bands).

    Keys are ``"lo-hi"`` or a single band; overlapping bands are an error.

    >>> parse_schedule({"7-10": 8, "1-3": 2, 5: 3})
    [(1, 3, 2), (5, 5, 3), (7, 10, 8)]
    """
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"expected a mapping of difficulty bands to values, e.g. {{'1-3': 2, '4-10': 4}}, got {spec!r}")
    out = []
    for k, v in spec.items():
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(k))
        if not m:
            raise ValueError(f"band {k!r}: expected 'lo-hi' (e.g. '7-10') or one number")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo > hi:
            raise ValueError(f"band {k!r}: lo > hi")
        try:
            val = value(v)
        except (TypeError, ValueError):
            raise ValueError(f"band {k!r}: value {v!r} is not a {value.__name__}") from None
        if value is int and val < 0:
            raise ValueError(f"band {k!r}: the number of samples must be >= 0")
        out.append((lo, hi, val))
    out.sort()
    for (a_lo, a_hi, _), (b_lo, b_hi, _) in zip(out, out[1:], strict=False):
        if b_lo <= a_hi:
            raise ValueError(f"bands {a_lo}-{a_hi} and {b_lo}-{b_hi} overlap")
    return out


def samples_for(difficulty: float | None, bands: list[tuple[int, int, Any]], default: Any):
    """A schedule's value for a difficulty (teacher samples for a prompt, a rate): its band's value, else ``default``.

    >>> b = parse_schedule({"1-3": 2, "4-6": 4, "7-10": 8})
    >>> samples_for(2.4, b, 1), samples_for(6.5, b, 1), samples_for(None, b, 1), samples_for(11, b, 1)
    (2, 8, 1, 1)
    """
    if difficulty is None:
        return default
    b = band(difficulty)
    for lo, hi, v in bands:
        if lo <= b <= hi:
            return v
    return default


def in_range(difficulty: float | None, rng: list[float] | None, keep_unknown: bool = False) -> bool:
    """Whether a difficulty's band lies in ``[lo, hi]`` (always true without a range).

    >>> in_range(7.4, [7, 9]), in_range(9.6, [7, 9]), in_range(None, [7, 9]), in_range(None, [7, 9], True)
    (True, False, False, True)
    """
    if rng is None:
        return True
    if difficulty is None:
        return keep_unknown
    return rng[0] <= band(difficulty) <= rng[1]


# ----------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Band:
    """A named, inclusive range of difficulty bands (difficulty rounded half up)."""

    name: str
    lo: int
    hi: int

    def contains(self, difficulty: float | None) -> bool:
        return difficulty is not None and self.lo <= band(difficulty) <= self.hi


def parse_bands(text: str | dict | list) -> list[Band]:
    """``"low=1-3,medium=4-6,high=7-9"`` (or ``{low: "1-3", ...}``) -> bands; names unique, ranges disjoint.

    >>> parse_bands("low=1-3,high=7-9")
    [Band(name='low', lo=1, hi=3), Band(name='high', lo=7, hi=9)]
    >>> parse_bands({"L3": 3, "L4-6": "4-6"})
    [Band(name='L3', lo=3, hi=3), Band(name='L4-6', lo=4, hi=6)]
    """
    if isinstance(text, str):
        pairs = []
        for part in [p for p in text.split(",") if p.strip()]:
            if "=" not in part:
                raise ValueError(f"band {part!r}: write NAME=LO-HI, e.g. low=1-3")
            k, v = part.split("=", 1)
            pairs.append((k.strip(), v.strip()))
    elif isinstance(text, dict):
        pairs = [(str(k), str(v)) for k, v in text.items()]
    else:
        pairs = [(b.name, f"{b.lo}-{b.hi}") if isinstance(b, Band) else tuple(b) for b in text]
    if not pairs:
        raise ValueError("no bands given; e.g. --bands low=1-3,medium=4-6,high=7-9")
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names) or any(not re.fullmatch(r"[A-Za-z0-9_.\-]+", n) for n in names):
        raise ValueError(f"band names must be unique words (letters, digits, _ . -), got {names}")
    out = []
    for name, rng in pairs:
        try:
            (lo, hi, _), = parse_schedule({rng: 0})
        except ValueError as e:
            raise ValueError(f"band {name}={rng}: {e}") from None
        if not (1 <= lo <= hi <= 10):
            raise ValueError(f"band {name}={rng}: bands lie within 1-10")
        out.append(Band(name, lo, hi))
    by_lo = sorted(out, key=lambda b: b.lo)
    for a, b in zip(by_lo, by_lo[1:], strict=False):
        if b.lo <= a.hi:
            raise ValueError(f"bands {a.name}={a.lo}-{a.hi} and {b.name}={b.lo}-{b.hi} overlap")
    return out
