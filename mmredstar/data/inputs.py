"""Where samples come from: the one input reader of the package.

An :class:`InputSpec` names sample files (``path``: files, directories or globs in our schema) or a data card
over a public release's raw files (``card`` + ``src``); :func:`iter_inputs` streams the samples of a list of
them. Curation inputs and decontamination benchmarks, evaluation data, training data, study pools and the
difficulty scorer's labelled inputs are all read here.

    from mmredstar.data.inputs import InputSpec, iter_inputs
    for s in iter_inputs([InputSpec(card="math500", src="test.jsonl", limit=10)]):
        ...
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..io import expand_paths, read_samples
from ..schema import Sample
from .convert import iter_card


@dataclass
class InputSpec:
    """Where samples come from: sample files (``path``) or a data card and its raw source (``card`` + ``src``)."""

    path: str | list[str] | None = None
    """Sample files (JSONL / .jsonl.gz / Parquet), directories or globs, in our schema."""
    card: str | None = None
    """A data card name (``geoqa``, ``math``, ...) or card file; used with ``src``."""
    src: str | None = None
    """The raw dataset file or folder the card converts (the public release's own format)."""
    split: str | None = None
    """Split recorded on card samples (default: the card's or guessed from the file name)."""
    subset: str | None = None
    """A subset the card defines (e.g. ``geometry`` for MathVista)."""
    where: list[str] = field(default_factory=list)
    """Row filters for card inputs (``mmredstar.data.where`` syntax, e.g. ``"meta.level == 'Level 5'"``)."""
    options: dict = field(default_factory=dict)
    """Adapter options for card inputs (override the card's ``options``)."""
    image_dir: str | None = None
    """Directory relative image paths of card inputs are resolved against."""
    limit: int | None = None
    """Read at most this many samples from this input."""
    name: str | None = None
    """The name reports use for this input (decontamination benchmarks, the scorer's agreement table;
    default: the builtin, card or file name)."""


def iter_input(spec: InputSpec) -> Iterator[Sample]:
    """Samples of one input: sample files, or a data card over its raw source (streaming)."""
    if spec.path is not None:
        it: Iterable[Sample] = read_samples(spec.path)
        if spec.limit is not None:
            it = itertools.islice(it, spec.limit)
        yield from it
    else:
        yield from iter_card(spec.card, spec.src, split=spec.split, where=spec.where, subset=spec.subset,
                             limit=spec.limit, image_dir=spec.image_dir, options=spec.options or None)


def iter_inputs(specs: list[InputSpec]) -> Iterator[Sample]:
    for spec in specs:
        yield from iter_input(spec)


def input_files(spec: InputSpec) -> list[str]:
    """The files (or folders) an input reads, for the resume markers (``mmredstar.stages``): the expanded
    ``path``, or the card's ``src``; a generated input reads none."""
    if spec.path is not None:
        return expand_paths(spec.path)
    return [spec.src] if spec.src else []


def input_name(spec: InputSpec) -> str:
    """The name an input is reported under: its ``name``, the card, or the file name without suffix."""
    if spec.name:
        return spec.name
    if isinstance(spec.card, dict):
        return str(spec.card.get("name", "card"))
    if spec.card:
        return str(spec.card)
    p = spec.path if isinstance(spec.path, str) else (spec.path or ["?"])[0]
    base = os.path.basename(str(p))
    for suf in (".jsonl.gz", ".jsonl", ".json", ".parquet"):
        if base.endswith(suf):
            return base[: -len(suf)]
    return base
