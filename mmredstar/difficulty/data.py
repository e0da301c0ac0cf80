"""Labelled problems for the difficulty scorer: read inputs, map labels onto 1-10, split off the held-out set.

    from mmredstar.difficulty.data import labelled_items, split_items
    items = labelled_items(cfg.inputs)            # [Item(text, label, source, id)], unlabelled ones counted
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmredstar.data.inputs import input_name, iter_input
from mmredstar.data.subset import unit_hash
from mmredstar.levels import map_difficulty, scale10
from mmredstar.schema import Sample

from .config import LabelledInput

SAMPLE_FIELDS = {"difficulty", "source", "split", "answer", "answer_type", "id"}


@dataclass
class Item:
    """One labelled problem: the text the scorer reads, its 1-10 label, where it came from."""

    text: str
    label: float
    source: str
    id: str


def raw_label(s: Sample, path: str | None) -> Any:
    """The raw label at ``path``: ``None`` -> ``Sample.difficulty``; a sample field; else a dotted path in ``meta``.

    >>> s = Sample.text("q", "1", difficulty=4.0, meta={"level": "Level 2", "raw": {"d": 7}})
    >>> raw_label(s, None), raw_label(s, "level"), raw_label(s, "meta.raw.d"), raw_label(s, "missing")
    (4.0, 'Level 2', 7, None)
    """
    if path is None:
        return s.difficulty
    parts = path.split(".")
    if parts[0] in SAMPLE_FIELDS and len(parts) == 1:
        return getattr(s, parts[0])
    if parts[0] == "meta":
        parts = parts[1:]
    v: Any = s.meta
    for p in parts:
        v = v.get(p) if isinstance(v, dict) else None
    return v


def label_of(s: Sample, spec: LabelledInput) -> float | None:
    """The 1-10 label of a sample under an input's ``label`` / ``map`` (``None`` when it has none).

    >>> label_of(Sample.text("q", "1", meta={"level": "Level 3"}), LabelledInput(label="level", map="math_level"))
    5.0
    """
    v = raw_label(s, spec.label)
    if v is None:
        return None
    if spec.map is not None:
        return map_difficulty(v, spec.map)
    return scale10(v) if not isinstance(v, bool) else None


def render(s: Sample, template: str) -> str:
    """The scorer's input text: the template with ``{question}`` filled in.

    >>> render(Sample.text("Compute 1 + 2.", "3"), "Problem: {question}")
    'Problem: Compute 1 + 2.'
    """
    return template.replace("{question}", s.question)


def labelled_items(specs: list[LabelledInput], template: str = "{question}", counts: dict | None = None) -> list[Item]:
    """Every labelled problem of ``specs``; problems without a usable label are counted in
    ``counts[name]["unlabelled"]`` and left out."""
    out = []
    for spec in specs:
        name = input_name(spec)
        c = (counts if counts is not None else {}).setdefault(name, {"read": 0, "labelled": 0, "unlabelled": 0})
        for s in iter_input(spec):
            c["read"] += 1
            lab = label_of(s, spec)
            if lab is None:
                c["unlabelled"] += 1
                continue
            c["labelled"] += 1
            out.append(Item(render(s, template), float(lab), name, s.id))
    return out


def split_items(items: list[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """(train, held out): an item is held out when its seeded hash of the id falls under ``fraction``
    (independent of order; the same problem is always on the same side)."""
    train, held = [], []
    for it in items:
        (held if unit_hash(seed, it.id) < fraction else train).append(it)
    return train, held
