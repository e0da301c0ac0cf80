"""Training data: resolve what a recipe names into files, read the records, write the data manifest.

A recipe's ``data.train`` entries are, in order of lookup: ``builtin:NAME`` (a generated fixture set,
see ``fixtures.py``); a named set from ``train/_sets.yaml`` (relative paths resolved against
``data.root``, default ``$MMREDSTAR_DATA`` or ``./data``); a file, directory or glob. The manifest
(``data_manifest.json`` beside the weights) lists each file with its sha256, size and record count.

    from mmredstar.training.data import resolve_data, load_records, write_manifest
    files = resolve_data(["builtin:sft_text"], root=None, work_dir="runs/x/data")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mmredstar.assets import asset_dir, load_yaml
from mmredstar.io import expand_paths, iter_raw_records, write_json
from mmredstar.schema import DataError, Pair, Problem, Sample, record_from_dict
from mmredstar.stages import sha256_file

SETS_FILE = "_sets.yaml"
SET_KEYS = {"kind", "path", "builtin", "records", "description", "source", "make"}
KINDS = ("sft", "dpo", "rl")


@dataclass
class DataFile:
    """One resolved data file and the name the recipe used for it."""

    path: str
    spec: str
    set_name: str | None = None


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
        if spec.get("kind") not in KINDS:
            raise ValueError(f"{p}: set '{name}': 'kind' must be one of {list(KINDS)}")
        if bool(spec.get("path")) == bool(spec.get("builtin")):
            raise ValueError(f"{p}: set '{name}': give exactly one of 'path' (files) or 'builtin' (generated)")
    return sets


def data_root(root: str | None) -> str:
    return root or os.environ.get("MMREDSTAR_DATA") or "data"


def describe_spec(spec: str) -> tuple[str, str | None]:
    """How a data entry will be looked up: ("builtin" | "set" | "path", set name).

    Raises ValueError for an unknown ``builtin:`` name. Used by recipe validation (no files touched)."""
    from ..synth.builtins import BUILTIN_SETS

    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN_SETS:
            raise ValueError(f"unknown built-in set {name!r}; known: {list(BUILTIN_SETS)}")
        return "builtin", name
    if spec in named_sets():
        return "set", spec
    return "path", None


def resolve_data(specs: list[str], *, root: str | None, work_dir: str) -> list[DataFile]:
    """Files for the recipe's data entries (built-in sets are written under ``work_dir``)."""
    from ..synth.builtins import write_builtin

    sets = named_sets()
    out: list[DataFile] = []
    for spec in specs:
        kind, name = describe_spec(spec)
        if kind == "builtin":
            out.append(DataFile(write_builtin(name, work_dir), spec, name))
            continue
        if kind == "set":
            s = sets[spec]
            if s.get("builtin"):
                out.append(DataFile(write_builtin(s["builtin"], work_dir), spec, spec))
                continue
            p = s["path"]
            full = p if os.path.isabs(p) else os.path.join(data_root(root), p)
            try:
                files = expand_paths(full)
            except DataError:
                raise DataError(Problem(full, None, "data", f"named set '{spec}' is not on disk",
                                        f"create it ({s.get('make') or 'mmredstar curate ...'}) or set data.root / "
                                        "$MMREDSTAR_DATA to the folder holding it")) from None
            out.extend(DataFile(f, spec, spec) for f in files)
            continue
        try:
            files = expand_paths(spec)
        except DataError as e:
            known = ", ".join(sorted(sets)[:20])
            raise DataError(Problem(spec, None, "data", str(e.problems[0].message),
                                    f"give a sample file, directory or glob, 'builtin:NAME', or a named set ({known})")) from None
        out.extend(DataFile(f, spec, None) for f in files)
    return out


def load_records(files: list[DataFile], *, kind: str, image_root: str | None = None,
                 limit: int | None = None) -> list[tuple[Sample, str, int]]:
    """(record, file, line) for every record, checked for the method's ``kind``; errors name file and line.

    ``sft``: samples with exactly one response; ``dpo``: pairs; ``rl``: samples (responses ignored)."""
    out = []
    for df in files:
        for path, line, d, prob in iter_raw_records(df.path):
            if prob is not None:
                raise DataError(prob)
            root = image_root or os.path.dirname(os.path.abspath(path))
            rec = record_from_dict(d, file=path, line=line, root=root)
            if kind == "sft":
                if isinstance(rec, Pair):
                    raise DataError(Problem(path, line, "chosen", "an SFT file holds samples, this is a DPO pair",
                                            "use method: dpo for pair files, or the SFT output of curation"))
                if len(rec.responses) != 1:
                    raise DataError(Problem(path, line, "responses",
                                            f"an SFT sample needs exactly one response (the target), has "
                                            f"{len(rec.responses)}",
                                            "select one response per sample (mmredstar curate select) or split them"))
            elif kind == "dpo":
                if not isinstance(rec, Pair):
                    raise DataError(Problem(path, line, "chosen", "a DPO file holds pairs (chosen + rejected)",
                                            "build pairs with mmredstar curate (dpo output)"))
            out.append((rec, path, line))
            if limit is not None and len(out) >= limit:
                return out
    if not out:
        raise DataError(Problem(",".join(f.path for f in files), None, "data", "no records found"))
    return out


def manifest(files: list[DataFile], used: dict[str, int], role: str = "train") -> list[dict]:
    """One entry per file: path, the recipe's name for it, sha256, bytes, records read from it."""
    out = []
    for df in files:
        out.append({"role": role, "spec": df.spec, "set": df.set_name, "path": os.path.abspath(df.path),
                    "sha256": sha256_file(df.path), "bytes": os.path.getsize(df.path),
                    "records": used.get(df.path, 0)})
    return out


def write_manifest(path: str | os.PathLike, entries: list[dict]) -> None:
    write_json(path, {"files": entries, "total_records": sum(e["records"] for e in entries)})


def records_per_file(records: list[tuple[Sample, str, int]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, path, _ in records:
        counts[path] = counts.get(path, 0) + 1
    return counts


def shipped_sets_path() -> Path | None:
    try:
        p = asset_dir("train") / SETS_FILE
    except FileNotFoundError:
        return None
    return p if p.exists() else None
