"""Difficulty labels of public datasets mapped onto the 1-10 scale of ``Sample.difficulty``.

The raw label always stays in ``Sample.meta`` (``meta.level`` for MATH, ``meta.difficulty_label``
for TACO); the mapped number goes to ``Sample.difficulty``. The maps are stated once, here, and
quoted in the data cards (a card names a map: ``difficulty: {column: level, map: math_level}``).

- ``math_level`` (MATH, MATH-500): Level L (1-5) -> 2L-1, i.e. 1, 3, 5, 7, 9. MATH-hard (Level 5)
  lands at 9, inside the paper's "hard" band (7-9); "Level ?" maps to none.
- ``taco``: EASY 2, MEDIUM 4, MEDIUM_HARD 6, HARD 8, VERY_HARD 10; UNKNOWN_DIFFICULTY maps to none.
- ``scale10``: a number already on 1-10 (Omni-MATH's ``difficulty``, our own scorer), clipped.

Run the doctests: ``.venv/bin/python -m pytest -q --doctest-modules mmredstar/data/levels.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


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
