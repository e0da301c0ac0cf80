"""Training data: resolve what a recipe names into files, read the records, write the data manifest.

A recipe's ``data.train`` entries are inputs of ``mmredstar.data.inputs`` (the one input reader):
``builtin:NAME`` (a generated fixture set, ``mmredstar/synth/builtins.py``); a named set from
``train/_sets.yaml`` (relative paths resolved against ``data.root``, default ``$MMREDSTAR_DATA`` or
``./data``); a file, directory or glob; or a mapping (``{card: math, src: MATH/train, where: [...],
limit: 1000}``), read once into ``OUTPUT_DIR/data/inputs/``. The manifest
(``data_manifest.json`` beside the weights) lists each file with its sha256, size and record count.

    from mmredstar.training.data import resolve_data, load_records, write_manifest
    files = resolve_data(["builtin:sft_text"], root=None, work_dir="runs/x/data")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mmredstar.assets import asset_dir
from mmredstar.data.inputs import (
    GENERATED,
    SET_KINDS,
    SETS_FILE,
    as_input,
    data_root,  # noqa: F401  (re-exported)
    input_files,
    input_name,
    kind_of,
    named_sets,  # noqa: F401  (re-exported)
)
from mmredstar.io import iter_raw_records, write_json
from mmredstar.schema import DataError, Pair, Problem, Sample, record_from_dict
from mmredstar.stages import sha256_file
from mmredstar.synth.builtins import BUILTIN_SETS

KINDS = SET_KINDS


@dataclass
class DataFile:
    """One resolved data file and the name the recipe used for it."""

    path: str
    spec: str
    set_name: str | None = None


def describe_spec(spec: str | dict) -> tuple[str, str | None]:
    """How a data entry will be looked up: ("builtin" | "set" | "path" | "card", builtin or set name).

    Raises ValueError for an unknown ``builtin:`` name. Used by recipe validation (no files touched)."""
    s = as_input(spec)
    k = kind_of(s)
    if k == "builtin" and s.builtin not in BUILTIN_SETS + GENERATED:
        raise ValueError(f"unknown built-in set {s.builtin!r}; known: {list(BUILTIN_SETS + GENERATED)}")
    return k, s.builtin if k == "builtin" else s.set


def spec_label(spec: str | dict) -> str:
    """The recipe's name for a data entry (the string itself, or the input's name for a mapping)."""
    return spec if isinstance(spec, str) else input_name(spec)


def resolve_data(specs: list[str | dict], *, root: str | None, work_dir: str) -> list[DataFile]:
    """Files for the recipe's data entries: any input of ``mmredstar.data.inputs`` (a path, ``builtin:NAME``,
    a named set, or a mapping with ``card`` + ``src``, ``where``, ``subset``, ``limit``...). Generated sets and
    filtered or converted inputs are written under ``work_dir`` (and hashed into the manifest like any file)."""
    out: list[DataFile] = []
    for spec in specs:
        s = as_input(spec)
        kind, name = describe_spec(s)
        set_name = s.set if kind == "set" else (name if kind == "builtin" else None)
        out.extend(DataFile(f, spec_label(spec), set_name) for f in input_files(s, root=root, work_dir=work_dir))
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
                                            "keep one response per sample (curation's SFT output has one: select.sft.max_per_prompt) "
                                            "or split them into one sample per response"))
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
