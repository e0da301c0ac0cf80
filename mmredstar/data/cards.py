"""Data cards: how one public dataset maps onto ``Sample`` records, as data.

A card is ``data_cards/<name>.md``: YAML front matter (the mapping, plus facts for people: hub ids,
license, splits, formats) and a markdown body. The same thing can be built in Python::

    from mmredstar.data import Card, convert
    card = Card(name="my_geo", answer_type="choice",
                columns={"question": "problem", "answer": "final", "choices": "options"}, images="img")
    convert(card, "my_geo.jsonl", "out/my_geo.samples.jsonl")

Front-matter keys the converter reads (each documented on the ``Card`` field of the same name):
``name``, ``answer_type``, ``columns``, ``images``, ``image_dir``, ``meta``, ``answer_from``,
``answer_format``, ``difficulty``, ``adapter``, ``split``, ``subsets``, ``files``, ``options``.
Keys for people, required in shipped cards: ``hub``, ``license``, ``splits``, ``formats``,
``verifier``, ``ids``. Check every card: ``.venv/bin/python -m pytest -q tests/data/test_cards.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmredstar.registry import lookup

from ..assets import AssetError, front_matter, list_assets, resolve
from ..levels import DIFFICULTY_MAPS
from ..schema import ANSWER_TYPES
from .adapters import ADAPTERS
from .where import parse_where

CARD_FIELDS = ("question", "answer", "solution", "choices", "images", "id", "split", "system", "response")
"""Sample fields a column map may fill (``response``: a column whose text becomes the SFT target)."""

REQUIRED_KEYS = ("name", "hub", "license", "splits", "formats", "answer_type", "verifier", "columns", "ids")
"""Front-matter keys every shipped card must have (checked by tests/data/test_cards.py)."""

ANSWER_FROM = ("boxed", "the_answer_is")
ANSWER_FORMATS = ("auto", "letter", "index", "index1", "text")


@dataclass
class Card:
    """One dataset's mapping onto samples.

    name: the card name; becomes ``Sample.source``.
    answer_type: default answer type of the samples (``math``, ``numeric``, ``choice``, ``code``, ``text``);
        an adapter may set it per row (MathVista: multi_choice -> choice, free_form -> numeric/math).
    columns: card field -> source column (or a list of candidates: the first present, non-null one
        wins; ``"{a}/{b}"`` builds a value from several columns; ``"a.b"`` reaches into nested objects).
        Fields: question, answer, solution, choices, images, id, split, system, response.
    images: shortcut for ``columns["images"]``: the column holding image path(s) or image bytes.
    image_dir: directory relative image paths are resolved against, relative to the dataset root
        (the ``--src`` directory, or the source file's directory); default: the row file's directory.
    meta: source columns copied into ``Sample.meta``: a list (same names) or ``{meta_key: column}``
        (a list of candidate columns as the value: the first present one).
    answer_from: when there is no answer column, extract it from the ``solution`` column:
        ``boxed`` (the last ``\\boxed{}``) or ``the_answer_is`` (MetaMathQA's "The answer is: X").
    answer_format: how a choice answer is written: ``letter``, ``index`` (0-based), ``index1``,
        ``text`` (the choice's text) or ``auto``.
    difficulty: ``{column: level, map: math_level}``: the raw label goes to ``meta[column]``, the mapped
        1-10 value to ``Sample.difficulty`` (maps: ``mmredstar.levels.DIFFICULTY_MAPS`` or an
        inline ``{label: number}`` dict).
    adapter: a row hook for what a column map cannot say: a name in ``mmredstar.data.adapters.ADAPTERS``,
        a dotted path ``"pkg.module:function"``, or (Python) a function ``hook(row, ctx) -> row``.
    post: (Python or dotted path) ``post(sample, row) -> sample`` run on each built sample.
    split: the split to record when neither ``--split`` nor the file name says it.
    subsets: named filters, ``{hard: ["level=5"]}``; select with ``--subset hard``.
    files: glob selecting files when ``--src`` is a directory (Geometry3K: ``**/data.json``).
    options: adapter options (CLI ``--option key=value`` overrides).
    info: the remaining front matter (hub, license, splits, formats, verifier, ids, ...), for people.
    """

    name: str
    answer_type: str = "math"
    columns: dict[str, Any] = field(default_factory=dict)
    images: Any = None
    image_dir: str | None = None
    meta: Any = field(default_factory=list)
    answer_from: str | None = None
    answer_format: str = "auto"
    difficulty: dict | None = None
    adapter: Any = None
    post: Any = None
    split: str | None = None
    subsets: dict[str, list[str]] = field(default_factory=dict)
    files: str | None = None
    options: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    path: str | None = None
    body: str = ""

    def __post_init__(self):
        if self.images is not None and "images" not in self.columns:
            self.columns = {**self.columns, "images": self.images}
        problems = self.check()
        if problems:
            where = self.path or f"card {self.name!r}"
            raise ValueError(f"{where}: " + "; ".join(problems))

    # ------------------------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Problems with the mapping (empty when it is usable)."""
        P = []
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.name or ""):
            P.append(f"key 'name': {self.name!r} is not a simple name (letters, digits, _ . -)")
        if self.answer_type not in ANSWER_TYPES:
            P.append(f"key 'answer_type': unknown {self.answer_type!r}; use one of {list(ANSWER_TYPES)}")
        if not isinstance(self.columns, dict):
            P.append("key 'columns': expected a mapping {field: column}")
        else:
            for k, v in self.columns.items():
                if k not in CARD_FIELDS:
                    P.append(f"key 'columns.{k}': unknown field; use one of {list(CARD_FIELDS)}")
                if not (isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))):
                    P.append(f"key 'columns.{k}': expected a column name or a list of names, got {v!r}")
        if not isinstance(self.meta, (list, dict)):
            P.append("key 'meta': expected a list of columns or a {meta_key: column} mapping")
        if self.answer_from is not None and self.answer_from not in ANSWER_FROM:
            P.append(f"key 'answer_from': unknown {self.answer_from!r}; use one of {list(ANSWER_FROM)}")
        if self.answer_from is not None and "solution" not in self.columns:
            P.append("key 'answer_from': needs a 'solution' column in 'columns'")
        if self.answer_format not in ANSWER_FORMATS:
            P.append(f"key 'answer_format': unknown {self.answer_format!r}; use one of {list(ANSWER_FORMATS)}")
        if self.difficulty is not None:
            d = self.difficulty
            if not isinstance(d, dict) or "column" not in d or "map" not in d:
                P.append("key 'difficulty': expected {column: <source column>, map: <map name or {label: number}>}")
            elif isinstance(d["map"], str) and d["map"] not in DIFFICULTY_MAPS:
                P.append(f"key 'difficulty.map': unknown map {d['map']!r}; use one of {list(DIFFICULTY_MAPS)}")
        if not isinstance(self.subsets, dict):
            P.append("key 'subsets': expected {name: [filter, ...]}")
        else:
            for k, exprs in self.subsets.items():
                for e in ([exprs] if isinstance(exprs, str) else exprs or []):
                    try:
                        parse_where(e)
                    except ValueError as err:
                        P.append(f"key 'subsets.{k}': {err}")
        if self.adapter is not None:
            try:
                resolve_hook(self.adapter)
            except ValueError as e:
                P.append(f"key 'adapter': {e}")
        if self.post is not None:
            try:
                resolve_hook(self.post)
            except ValueError as e:
                P.append(f"key 'post': {e}")
        if not isinstance(self.options, dict):
            P.append("key 'options': expected a mapping")
        return P

    def subset_filters(self, name: str) -> list[str]:
        if name not in self.subsets:
            raise ValueError(f"card {self.name!r} has no subset {name!r}; it has {sorted(self.subsets) or 'none'}")
        v = self.subsets[name]
        return [v] if isinstance(v, str) else list(v)

    @classmethod
    def from_dict(cls, d: dict, *, path: str | None = None, body: str = "") -> Card:
        """Build from front matter; keys that are not ``Card`` fields go to ``info``."""
        names = {f for f in cls.__dataclass_fields__ if f not in ("info", "path", "body")}
        kw = {k: v for k, v in d.items() if k in names}
        info = {k: v for k, v in d.items() if k not in names}
        if "name" not in kw:
            raise ValueError(f"{path or 'card'}: key 'name' is missing")
        for k in ("columns", "subsets", "options"):
            if kw.get(k) is None:
                kw.pop(k, None)
        if kw.get("meta") is None:
            kw.pop("meta", None)
        return cls(**kw, info=info, path=path, body=body)


def resolve_hook(spec: Any) -> Callable | None:
    """A hook from a function, a name in ``ADAPTERS`` or ``"pkg.module:function"``."""
    if spec is None or callable(spec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"expected a function, an adapter name or 'module:function', got {spec!r}")

    fn = lookup(spec, ADAPTERS, "adapter")
    if not callable(fn):
        raise ValueError(f"hook {spec!r} is not callable")
    return fn


def load_card(card: str | os.PathLike | dict | Card) -> Card:
    """A ``Card`` from a bare name (``geoqa``), a card file (``.md`` with front matter, or ``.yaml``),
    a dict, or a ``Card`` (returned as is). Errors name the file and key and say what to do."""
    if isinstance(card, Card):
        return card
    if isinstance(card, dict):
        return Card.from_dict(card)
    p = Path(card)
    if p.suffix in (".yaml", ".yml") and p.exists():
        from ..assets import load_yaml

        return Card.from_dict(load_yaml(p), path=str(p))
    try:
        path = resolve("data_cards", str(card))
    except AssetError as e:
        raise ValueError(str(e)) from None
    meta, body = front_matter(path)
    try:
        return Card.from_dict(meta, path=str(path), body=body)
    except TypeError as e:
        raise ValueError(f"{path}: bad card front matter: {e}") from None


def list_cards() -> list[str]:
    """Names of the shipped data cards."""
    return list_assets("data_cards")


def check_card_file(path: str | os.PathLike) -> list[str]:
    """Every problem with a shipped card file: front matter parses, required keys present, mapping usable."""
    path = Path(path)
    try:
        meta, body = front_matter(path)
    except ValueError as e:
        return [str(e)]
    text = path.read_text(encoding="utf-8")
    P = [f"{path}: missing required key '{k}' in the front matter" for k in REQUIRED_KEYS if k not in meta]
    if meta.get("name") != path.stem:
        P.append(f"{path}:{_key_line(text, 'name')}: name {meta.get('name')!r} differs from the file name {path.stem!r}")
    if not body.strip():
        P.append(f"{path}: the card has no prose for people after the front matter")
    if "hub" in meta and not (meta["hub"] is None or isinstance(meta["hub"], (str, list))):
        P.append(f"{path}:{_key_line(text, 'hub')}: 'hub' must be a hub id, a list of ids, or null")
    try:
        c = Card.from_dict(meta, path=str(path), body=body)
    except (ValueError, TypeError) as e:
        P.append(str(e))
        return P
    ver = c.info.get("verifier")
    for v in ver if isinstance(ver, list) else [ver]:
        if v not in ANSWER_TYPES:
            P.append(f"{path}:{_key_line(text, 'verifier')}: unknown verifier {v!r}; use one of {list(ANSWER_TYPES)} "
                     "(a list when it differs per row)")
    return P


def _key_line(text: str, key: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if re.match(rf"^{re.escape(key)}\s*:", line):
            return i
    return 1
