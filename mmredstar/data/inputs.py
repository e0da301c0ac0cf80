"""Where samples come from: the one input reader of the package.

An :class:`InputSpec` names

* sample files (``path``: files, directories or globs in our schema),
* a data card over a public release's raw files (``card`` + ``src``),
* a generated set (``builtin``: the training fixtures ``sft_text``, ``sft_vlm``, ``dpo_text``, ... of
  ``mmredstar.synth.builtins``, or ``arithmetic``: problems labelled by level), or
* a named set of ``train/_sets.yaml`` (``set``; its relative paths resolve against the data root,
  ``$MMREDSTAR_DATA`` or ``./data``),

with ``where`` filters, a card's ``subset``, and ``limit`` applying to every kind. A plain string is an
input too: ``"builtin:NAME"``, a named set's name, or a path (:func:`as_input`). :func:`iter_input` /
:func:`iter_inputs` stream the records; :func:`input_files` gives the files a consumer that needs files
(training manifests, subsets) reads, writing generated or filtered inputs under a work directory first.
Curation inputs and decontamination benchmarks, evaluation data, training ``data.train`` / ``data.eval``,
study pools and the difficulty scorer's labelled inputs are all read here.

    from mmredstar.data.inputs import InputSpec, iter_inputs
    for s in iter_inputs([InputSpec(card="math500", src="test.jsonl", limit=10), "builtin:sft_text"]):
        ...
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..assets import asset_dir, load_yaml
from ..config import ConfigError
from ..io import expand_paths, read_samples, write_samples
from ..schema import DataError, Pair, Problem, Sample
from ..stages import fingerprint
from ..synth.arithmetic import arithmetic_problems
from ..synth.builtins import BUILTIN_SETS, write_builtin
from .cards import load_card
from .convert import iter_card
from .where import matches, parse_where

GENERATED = ("arithmetic",)
"""Generated inputs besides the training fixtures (``BUILTIN_SETS``): ``arithmetic`` (``options: {n, seed, levels}``)."""
SETS_FILE = "_sets.yaml"
SET_KEYS = {"kind", "path", "builtin", "records", "description", "source", "make"}
SET_KINDS = ("sft", "dpo", "rl")


@dataclass
class InputSpec:
    """Where samples come from: sample files (``path``), a data card and its raw source (``card`` + ``src``),
    a generated set (``builtin``) or a named set (``set``)."""

    path: str | list[str] | None = None
    """Sample files (JSONL / .jsonl.gz / Parquet), directories or globs, in our schema. ``builtin:NAME`` and
    the name of a set in ``train/_sets.yaml`` are accepted here too."""
    card: str | dict | None = None
    """A data card name (``geoqa``, ``math``, ...), a card file, or an inline card mapping; used with ``src``
    (with ``path``: only its ``subsets`` are used, for ``subset``)."""
    src: str | None = None
    """The raw dataset file or folder the card converts (the public release's own format)."""
    builtin: str | None = None
    """A generated set: a training fixture (``sft_text``, ``sft_vlm``, ``dpo_text``, ``dpo_vlm``, ``rl_text``,
    ``rl_vlm``) or ``arithmetic`` (``mmredstar.synth.arithmetic``: level = number of operations;
    ``options: {n: 1000, seed: 0}``)."""
    set: str | None = None
    """A named set of ``train/_sets.yaml`` (e.g. ``redstar_math_4k``)."""
    split: str | None = None
    """Split recorded on card samples (default: the card's or guessed from the file name)."""
    subset: str | None = None
    """A subset the card defines (e.g. ``geometry`` for MathVista); needs ``card``."""
    where: list[str] = field(default_factory=list)
    """Row filters (``mmredstar.data.where`` syntax, e.g. ``"meta.level == 'Level 5'"``), for every kind of input."""
    options: dict = field(default_factory=dict)
    """Adapter options for card inputs (override the card's ``options``); generator options for ``builtin``."""
    image_dir: str | None = None
    """Directory relative image paths of card inputs are resolved against."""
    limit: int | None = None
    """Read at most this many samples from this input (after ``where``)."""
    name: str | None = None
    """The name reports use for this input (decontamination benchmarks, the scorer's agreement table;
    default: the builtin, set, card or file name)."""


# ----------------------------------------------------------------------------------------- named sets
def named_sets() -> dict[str, dict]:
    """Every named data set (``train/_sets.yaml``): name -> {kind, path | builtin, records, description, source}."""
    try:
        p = asset_dir("train") / SETS_FILE
    except FileNotFoundError:
        return {}
    if not p.exists():
        return {}
    sets = load_yaml(p)
    for name, spec in sets.items():
        if not isinstance(spec, dict):
            raise ValueError(f"{p}: set '{name}': expected a mapping with kind/path, got {spec!r}")
        unknown = set(spec) - SET_KEYS
        if unknown:
            raise ValueError(f"{p}: set '{name}': unknown keys {sorted(unknown)}; allowed: {sorted(SET_KEYS)}")
        if spec.get("kind") not in SET_KINDS:
            raise ValueError(f"{p}: set '{name}': 'kind' must be one of {list(SET_KINDS)}")
        if bool(spec.get("path")) == bool(spec.get("builtin")):
            raise ValueError(f"{p}: set '{name}': give exactly one of 'path' (files) or 'builtin' (generated)")
    return sets


def data_root(root: str | None = None) -> str:
    """Where named sets' relative paths resolve: ``root``, else ``$MMREDSTAR_DATA``, else ``./data``."""
    return root or os.environ.get("MMREDSTAR_DATA") or "data"


# ----------------------------------------------------------------------------------------- specs
def as_input(value: InputSpec | str | os.PathLike | dict) -> InputSpec:
    """An :class:`InputSpec` from a spec, a mapping of its keys, or a string (``builtin:NAME``, a named set,
    a path), with ``path: builtin:NAME`` / ``path: SET`` turned into ``builtin`` / ``set``.

    >>> as_input("builtin:sft_text").builtin, as_input("data/x.jsonl").path, as_input({"card": "math", "src": "m"}).card
    ('sft_text', 'data/x.jsonl', 'math')
    """
    if isinstance(value, InputSpec):
        spec = value
    elif isinstance(value, dict):
        unknown = set(value) - {f.name for f in dataclasses.fields(InputSpec)}
        if unknown:
            raise ValueError(f"input {value!r}: unknown keys {sorted(unknown)}; allowed: "
                             f"{[f.name for f in dataclasses.fields(InputSpec)]}")
        spec = InputSpec(**value)
    else:
        spec = InputSpec(path=os.fspath(value))
    if isinstance(spec.path, str):
        if spec.path.startswith("builtin:"):
            return dataclasses.replace(spec, path=None, builtin=spec.path.split(":", 1)[1])
        if not os.path.exists(spec.path) and spec.path in named_sets():
            return dataclasses.replace(spec, path=None, set=spec.path)
    return spec


def kind_of(spec: InputSpec) -> str:
    """``path``, ``card``, ``builtin`` or ``set``: which kind of input ``spec`` is."""
    if spec.builtin is not None:
        return "builtin"
    if spec.set is not None:
        return "set"
    if spec.path is not None:
        return "path"
    return "card"


def check_input(spec: InputSpec, key: str = "input", where=lambda key: "<config>") -> None:
    """Raise ``ConfigError`` (naming file, line and key) unless ``spec`` names exactly one source."""
    spec = as_input(spec)
    if spec.card is not None and spec.src is None and spec.path is None:
        raise ConfigError(f"{where(key)}: key '{key}.src': a card input needs 'src' (the raw dataset files)")
    given = [k for k in ("path", "src", "builtin", "set") if getattr(spec, k) is not None]
    if spec.path is not None and spec.card is not None and spec.subset is None:
        given.append("card")   # a card beside sample files only supplies its subsets' filters
    if len(given) != 1:
        raise ConfigError(f"{where(key)}: key '{key}': give either 'path' (sample files), 'card' + 'src', 'builtin' "
                          f"(a generated set) or 'set' (a named set): exactly one of them (got {given or 'none'})")
    if spec.src is not None and spec.card is None:
        raise ConfigError(f"{where(key)}: key '{key}.card': 'src' is converted through a data card; add 'card'")
    if spec.card is None and spec.subset is not None:
        raise ConfigError(f"{where(key)}: key '{key}.subset': subsets are defined by a data card; add 'card'")
    if spec.builtin is not None and spec.builtin not in BUILTIN_SETS + GENERATED:
        raise ConfigError(f"{where(key)}: key '{key}.builtin': unknown {spec.builtin!r}; built-in sets: "
                          f"{list(BUILTIN_SETS + GENERATED)}")
    if spec.set is not None and spec.set not in named_sets():
        raise ConfigError(f"{where(key)}: key '{key}.set': unknown named set {spec.set!r}; known: "
                          f"{sorted(named_sets())[:30]}")
    for i, w in enumerate(spec.where):
        try:
            parse_where(w)
        except ValueError as e:
            raise ConfigError(f"{where(key)}: key '{key}.where[{i}]': {e}") from None


def _set_files(spec: InputSpec, root: str | None, work_dir: str) -> list[str]:
    s = named_sets()[spec.set]
    if s.get("builtin"):
        return [write_builtin(s["builtin"], work_dir)]
    p = s["path"]
    full = p if os.path.isabs(p) else os.path.join(data_root(root), p)
    try:
        return expand_paths(full)
    except DataError:
        raise DataError(Problem(full, None, "data", f"named set '{spec.set}' is not on disk",
                                f"create it ({s.get('make') or 'mmredstar curate ...'}) or set data.root / "
                                "$MMREDSTAR_DATA to the folder holding it")) from None


def _path_files(spec: InputSpec) -> list[str]:
    try:
        return expand_paths(spec.path)
    except DataError as e:
        known = ", ".join(sorted(named_sets())[:20])
        raise DataError(Problem(str(spec.path), None, "data", str(e.problems[0].message),
                                f"give a sample file, directory or glob, 'builtin:NAME', or a named set ({known})")) from None


def _filters(spec: InputSpec) -> list:
    preds = [parse_where(w) for w in spec.where]
    if spec.subset is not None and spec.card is not None:
        preds += [parse_where(w) for w in load_card(spec.card).subset_filters(spec.subset)]
    return preds


def _raw(spec: InputSpec, root: str | None, work_dir: str | None, report) -> Iterator[Sample | Pair]:
    """The records of one input before ``where`` / ``subset`` / ``limit`` (cards apply them themselves)."""
    k = kind_of(spec)
    if k == "builtin" and spec.builtin in GENERATED:
        opts = dict(spec.options)
        yield from arithmetic_problems(int(opts.pop("n", 1000)), int(opts.pop("seed", 0)), **opts)
    elif k in ("builtin", "set"):
        wd = work_dir or tempfile.mkdtemp(prefix="mmredstar-inputs-")
        files = [write_builtin(spec.builtin, wd)] if k == "builtin" else _set_files(spec, root, wd)
        yield from read_samples(files)
    elif k == "path":
        yield from read_samples(_path_files(spec))
    else:
        yield from iter_card(spec.card, spec.src, split=spec.split, where=spec.where, subset=spec.subset,
                             limit=spec.limit, image_dir=spec.image_dir, options=spec.options or None, report=report)


def iter_input(spec: InputSpec | str | dict, *, root: str | None = None, work_dir: str | None = None,
               report=None) -> Iterator[Sample | Pair]:
    """Records of one input (streaming): samples (or DPO pairs, for pair files and sets), ``where`` /
    ``subset`` filters and ``limit`` applied. ``root``: the data root of named sets; ``work_dir``: where
    generated fixture sets are written (default: a temporary folder); ``report``: a ``ConvertReport`` that
    card inputs count their skipped rows in."""
    spec = as_input(spec)
    it: Iterable = _raw(spec, root, work_dir, report)
    if kind_of(spec) != "card":
        preds = _filters(spec)
        if preds:
            it = (s for s in it if isinstance(s, Sample) and matches(s, preds))
        if spec.limit is not None:
            it = itertools.islice(it, spec.limit)
    yield from it


def iter_inputs(specs: Iterable[InputSpec | str | dict], **kw) -> Iterator[Sample | Pair]:
    for spec in specs:
        yield from iter_input(spec, **kw)


def input_files(spec: InputSpec | str | dict, *, root: str | None = None, work_dir: str | None = None) -> list[str]:
    """The files (or folders) an input reads.

    Without ``work_dir`` (for the resume markers of ``mmredstar.stages``): the expanded ``path``, the card's
    ``src``, a named set's files; a generated input reads none. With ``work_dir`` (consumers that need sample
    files: training, subsets): generated sets are written there, and an input that is not a plain file list
    (a card, ``where``, ``subset`` or ``limit``) is read once into ``work_dir/inputs/<name>-<hash>.jsonl``."""
    spec = as_input(spec)
    k = kind_of(spec)
    plain = not spec.where and spec.subset is None and spec.limit is None
    if work_dir is None:
        if k == "path":
            return _path_files(spec)
        if k == "set":
            s = named_sets()[spec.set]
            return [] if s.get("builtin") else _set_files(spec, root, "")
        return [spec.src] if k == "card" and spec.src else []
    if plain and k == "path":
        return _path_files(spec)
    if plain and k == "set":
        return _set_files(spec, root, work_dir)
    if plain and k == "builtin" and spec.builtin in BUILTIN_SETS:
        return [write_builtin(spec.builtin, work_dir)]
    key = fingerprint({"spec": dataclasses.asdict(spec), "files": input_files(spec, root=root)}, 12)
    out = os.path.join(work_dir, "inputs", f"{input_name(spec)}-{key}.jsonl")
    if not os.path.exists(out):
        n = write_samples(out, iter_input(spec, root=root, work_dir=work_dir))
        if n == 0:
            os.unlink(out)
            raise DataError(Problem(input_name(spec), None, "data", "this input holds no records"
                                    + (f" matching {spec.where}" if spec.where else "")))
    return [out]


def input_name(spec: InputSpec | str | dict) -> str:
    """The name an input is reported under: its ``name``, the builtin or set, the card, or the file name."""
    spec = as_input(spec)
    if spec.name:
        return spec.name
    if spec.builtin:
        return spec.builtin
    if spec.set:
        return spec.set
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
