"""Read the raw rows of a public dataset as it is published: JSONL(.gz), JSON, Parquet, pickle, directories,
``datasets`` ``save_to_disk`` directories and ``hf:ID[:config][@split]`` (``datasets.load_dataset``).

Every row comes with where it came from (file, line or row number, key), so an adapter error can
name it. Nothing is held in memory that need not be: JSONL and Parquet stream; a JSON file is read
as text and decoded one record at a time (line numbers included, e.g. MathVista's
``testmini.json`` dict of pid -> record); a pickle (the original GeoQA ``.pk``) is loaded whole with
a restricted unpickler that accepts only plain containers and numpy arrays.

    from mmredstar.data.sources import iter_source
    for row in iter_source("../shared/benchmarks/mathvista/testmini.json"):
        print(row.where(), row.key, sorted(row.data)[:3])
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io import iter_jsonl, surrogate_field
from ..schema import Problem
from .text import natural_key

log = logging.getLogger(__name__)

SOURCE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet", ".pk", ".pkl", ".pickle")


@dataclass
class RawRow:
    """One raw record and its location.

    ``file`` is the path shown to people (relative to the source root); ``path`` the real path;
    ``line`` the 1-based line (JSONL, JSON) or ``None``; ``index`` the 0-based position of the row
    in its file; ``key`` the record's key in a dict-of-records JSON; ``root`` the dataset root
    (image paths are relative to it); ``row_dir`` the directory of the file holding the row."""

    file: str
    path: str
    line: int | None
    index: int
    key: str | None
    data: Any
    root: str
    row_dir: str
    problem: Problem | None = None
    single: bool = False  # the file holds this one record (its path then serves as the record's id)

    @property
    def number(self) -> int:
        """The line number when known, else the 1-based row number."""
        return self.line if self.line is not None else self.index + 1

    @property
    def unit(self) -> str:
        return "line" if self.line is not None else "row"

    def where(self) -> str:
        s = f"{self.file}:{self.number}" if self.line is not None else f"{self.file} row {self.index + 1}"
        return s + (f" (key {self.key!r})" if self.key is not None else "")


HF_PREFIX = "hf:"


def parse_hf(src: str) -> tuple[str, str | None, str | None]:
    """``hf:ID[:config][@split]`` -> (id, config, split). The id may be a local dataset directory."""
    rest = src[len(HF_PREFIX):]
    split = None
    if "@" in rest:
        rest, split = rest.rsplit("@", 1)
    ds_id, config = rest, None
    head, sep, tail = rest.rpartition(":")
    if sep and head and "/" not in tail and not os.path.exists(rest):
        ds_id, config = head, tail
    if not ds_id:
        raise ValueError(f"{src}: write hf:ID[:config][@split], e.g. hf:AI-MO/aimo-validation-aime@train")
    return ds_id, config or None, split or None


def is_saved_dataset(path: str | os.PathLike) -> bool:
    """A directory written by ``datasets``' ``save_to_disk`` (a Dataset or a DatasetDict)."""
    p = os.fspath(path)
    return os.path.isdir(p) and (os.path.exists(os.path.join(p, "dataset_dict.json"))
                                 or (os.path.exists(os.path.join(p, "state.json"))
                                     and os.path.exists(os.path.join(p, "dataset_info.json"))))


def llamafactory_info(directory: str) -> dict | None:
    """LLaMA-Factory's ``dataset_info.json`` in ``directory`` (name -> {file_name, formatting, columns,
    tags, ranking, ...}), or None when there is none (or it is a ``datasets`` info file)."""
    p = os.path.join(directory, "dataset_info.json")
    if not os.path.isfile(p) or is_saved_dataset(directory):
        return None
    try:
        with open(p, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: not a readable dataset_info.json ({e})") from None
    if not (isinstance(info, dict) and info and all(isinstance(v, dict) for v in info.values())
            and any(k in v for v in info.values() for k in ("file_name", "hf_hub_url", "ms_hub_url", "script_url"))):
        return None
    return info


def llamafactory_entry(path: str, root: str | None = None) -> dict | None:
    """The ``dataset_info.json`` entry (with its ``name``) whose ``file_name`` is ``path``: looked up beside
    the file, then in ``root``."""
    path = os.path.abspath(path)
    for d in dict.fromkeys([os.path.dirname(path)] + ([os.path.abspath(root)] if root else [])):
        info = llamafactory_info(d)
        for name, e in (info or {}).items():
            fn = e.get("file_name")
            if not fn:
                continue
            full = os.path.abspath(os.path.join(d, fn))
            if path == full or path.startswith(full.rstrip(os.sep) + os.sep):
                return {"name": name, **e}
    return None


def list_source_files(src: str | os.PathLike, pattern: str | None = None) -> tuple[str, list[str]]:
    """(root, files) for a file, a directory (recursively, natural order) or a glob pattern.

    ``pattern`` (e.g. ``**/data.json`` for Geometry3K's per-problem folders) selects files in a directory.
    A ``save_to_disk`` directory and an ``hf:ID[:config][@split]`` source are one "file" each; a
    LLaMA-Factory data directory (``dataset_info.json``) yields the files its entries name."""
    src = os.fspath(src)
    if src.startswith(HF_PREFIX):
        ds_id = parse_hf(src)[0]
        return (os.path.abspath(ds_id) if os.path.isdir(ds_id) else os.getcwd()), [src]
    if is_saved_dataset(src):
        return os.path.abspath(src), [os.path.abspath(src)]
    if os.path.isdir(src) and not pattern and llamafactory_info(src) is not None:
        root = os.path.abspath(src)
        files = []
        for name, e in llamafactory_info(src).items():
            fn = e.get("file_name")
            full = os.path.join(root, fn) if fn else None
            if full and os.path.isdir(full):
                files += list_source_files(full)[1]
            elif full and os.path.exists(full):
                files.append(full)
            elif full:
                log.warning("%s/dataset_info.json: entry %r names %s, which is not there; not read", src, name, fn)
            else:
                hub = e.get("hf_hub_url") or e.get("ms_hub_url") or e.get("script_url")
                log.warning("%s/dataset_info.json: entry %r is not a local file (%s); not read%s", src, name, hub,
                            f" (convert it with --src hf:{e['hf_hub_url']})" if e.get("hf_hub_url") else "")
        if not files:
            raise ValueError(f"{src}/dataset_info.json: none of its entries names a local file (file_name); "
                             "hub entries (hf_hub_url) are read with --src hf:ID")
        return root, files
    if os.path.isdir(src):
        root = os.path.abspath(src)
        if pattern:
            files = [str(p) for p in Path(root).glob(pattern) if p.is_file()]
        else:
            files = []
            for dp, dns, fns in os.walk(root):
                dns[:] = [d for d in dns if not d.startswith(".") and not d.endswith(".convert")]
                files += [os.path.join(dp, f) for f in fns if f.endswith(SOURCE_SUFFIXES) and not f.startswith(".")]
        files.sort(key=lambda p: natural_key(os.path.relpath(p, root)))
        if not files:
            what = f"files matching {pattern!r}" if pattern else f"files ending in {', '.join(SOURCE_SUFFIXES)}"
            raise ValueError(f"{src}: directory holds no {what}; point --src at the dataset's data files")
        return root, files
    if any(ch in src for ch in "*?["):
        import glob

        files = sorted(glob.glob(src, recursive=True), key=natural_key)
        if not files:
            raise ValueError(f"{src}: no files match this pattern")
        root = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])
        return root, files
    if not os.path.exists(src):
        raise ValueError(f"{src}: file not found; check --src")
    return os.path.dirname(os.path.abspath(src)), [src]


def iter_source(src: str | os.PathLike, *, pattern: str | None = None, trust_pickle: bool = False) -> Iterator[RawRow]:
    """Every raw row of every file named by ``src``; unreadable rows come with a ``problem``."""
    root, files = list_source_files(src, pattern)
    for path in files:
        yield from iter_file(path, root=root, trust_pickle=trust_pickle)


def _hf_rows(ds, shown: str, path: str, root: str) -> Iterator[RawRow]:
    """Rows of a ``datasets`` Dataset / DatasetDict, images as {bytes, path} (never decoded to PIL)."""
    import datasets

    if isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        for name in ds:
            yield from _hf_rows(ds[name], f"{shown}[{name}]", path, root)
        return

    i = 0  # the split name is in ``shown`` (``dir[test]``, ``hf:ID@test``): the converter reads it from there
    for batch in ds.with_format("arrow").iter(batch_size=256):  # arrow rows: images stay {bytes, path}
        for r in batch.to_pylist():
            yield RawRow(shown, path, None, i, None, r, root, root)
            i += 1


def iter_file(path: str, *, root: str | None = None, trust_pickle: bool = False) -> Iterator[RawRow]:
    path = os.fspath(path)
    if path.startswith(HF_PREFIX):
        import datasets

        ds_id, config, split = parse_hf(path)
        log.info("reading %s through datasets.load_dataset(%r, %r, split=%r)", path, ds_id, config, split)
        try:
            ds = datasets.load_dataset(ds_id, config, split=split)
        except Exception as e:  # noqa: BLE001 - the hub / builder errors are many; name the source
            raise ValueError(f"{path}: datasets.load_dataset({ds_id!r}, {config!r}, split={split!r}) failed: "
                             f"{type(e).__name__}: {e}") from None
        yield from _hf_rows(ds, path, path, root or os.getcwd())
        return
    if is_saved_dataset(path):
        import datasets

        try:
            ds = datasets.load_from_disk(path)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{path}: datasets.load_from_disk failed: {type(e).__name__}: {e}") from None
        yield from _hf_rows(ds, os.path.basename(os.path.abspath(path)), path, os.path.abspath(path))
        return
    root = root or os.path.dirname(os.path.abspath(path))
    shown = os.path.relpath(os.path.abspath(path), root)
    row_dir = os.path.dirname(os.path.abspath(path))

    def mk(index, data, line=None, key=None, problem=None, single=False):
        return RawRow(shown, path, line, index, key, data, root, row_dir, problem, single)

    if path.endswith((".jsonl", ".jsonl.gz")):
        for i, (line, obj, prob) in enumerate(iter_jsonl(path)):
            if prob is not None:
                prob.file = shown
            yield mk(i, obj, line=line, problem=prob)
    elif path.endswith(".json"):
        for i, (line, key, obj, prob) in enumerate(_iter_json(path, shown)):
            single = key is None and line == 0
            bad = surrogate_field(obj) if prob is None else None
            if bad:
                prob = Problem(shown, 1 if single else line, bad, "a lone UTF-16 surrogate escape (a cut emoji)",
                               "write the whole character or remove the escape")
                obj = None
            yield mk(i, obj, line=1 if single else line, key=key, problem=prob, single=single)
    elif path.endswith(".parquet"):
        import pyarrow.parquet as pq

        i = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
            for r in batch.to_pylist():
                yield mk(i, r)
                i += 1
    elif path.endswith((".pk", ".pkl", ".pickle")):
        data = load_pickle(path, trust=trust_pickle)
        if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
            for i, (k, v) in enumerate(data.items()):
                yield mk(i, v, key=str(k))
        elif isinstance(data, (list, tuple)):
            for i, v in enumerate(data):
                yield mk(i, v)
        else:
            yield mk(0, data, single=True)
    else:
        raise ValueError(f"{path}: unsupported file type; use one of {', '.join(SOURCE_SUFFIXES)}")


# ----------------------------------------------------------------------------------------- JSON
def _iter_json(path: str, shown: str) -> Iterator[tuple[int | None, str | None, Any, Problem | None]]:
    """(line, key, record, problem) for a JSON list of records, a dict of key -> record, or one record."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        yield (raw.count(b"\n", 0, e.start) + 1, None, None,
               Problem(shown, raw.count(b"\n", 0, e.start) + 1, "-", f"not UTF-8 text: byte {raw[e.start:e.start + 1]!r}",
                       "re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8"))
        return
    dec = json.JSONDecoder()
    n = len(text)
    pos, line = 0, 1

    def line_at(i: int) -> int:
        nonlocal pos, line
        line += text.count("\n", pos, i)
        pos = i
        return line

    def ws(i: int) -> int:
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    def bad(i: int, msg: str):
        return (line_at(min(i, n)), None, None,
                Problem(shown, line_at(min(i, n)), "-", f"malformed JSON: {msg}", "fix the file; other records were read"))

    i = ws(0)
    if i >= n:
        yield bad(i, "empty file")
        return
    try:
        if text[i] == "[":
            i = ws(i + 1)
            if i < n and text[i] == "]":
                return
            while True:
                start = i
                val, i = dec.raw_decode(text, i)
                yield line_at(start), None, val, None
                i = ws(i)
                if i < n and text[i] == ",":
                    i = ws(i + 1)
                elif i < n and text[i] == "]":
                    return
                else:
                    yield bad(i, "expected ',' or ']'")
                    return
        elif text[i] == "{":
            j = ws(i + 1)
            if j < n and text[j] == "}":
                return

            def members():
                k = j
                while True:
                    key, k = dec.raw_decode(text, k)
                    k = ws(k)
                    if k >= n or text[k] != ":":
                        raise json.JSONDecodeError("expected ':'", text, k)
                    k = ws(k + 1)
                    at = k
                    val, k = dec.raw_decode(text, k)
                    yield at, key, val
                    k = ws(k)
                    if k < n and text[k] == ",":
                        k = ws(k + 1)
                    elif k < n and text[k] == "}":
                        return
                    else:
                        raise json.JSONDecodeError("expected ',' or '}'", text, k)

            # A dict of records (MathVista: pid -> record) when every value is an object, else one record.
            container = True
            try:
                for _, _, v in members():
                    if not isinstance(v, dict):
                        container = False
                        break
            except json.JSONDecodeError:
                pass  # read the records before the error; the error is reported below
            if not container:
                yield 0, None, json.loads(text), None  # line 0 marks "the whole file is one record"
                return
            for at, key, val in members():
                yield line_at(at), str(key), val, None
        else:
            yield line_at(i), None, json.loads(text), None
    except json.JSONDecodeError as e:
        yield bad(e.pos, f"{e.msg}")


# ----------------------------------------------------------------------------------------- pickle
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"), ("collections", "OrderedDict"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "slice"), ("builtins", "range"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    """Only the globals a data pickle needs (numpy arrays, plain containers); anything else is refused."""

    def __init__(self, f, path: str):
        super().__init__(f)
        self._path = path

    def find_class(self, module, name):
        if (module, name) in _SAFE_GLOBALS or (module.startswith("numpy") and name in ("dtype", "ndarray")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"{self._path}: refusing to load {module}.{name} from a pickle (it could run code); GeoQA .pk files "
            "hold only lists, dicts and numpy arrays. If you trust this file, pass --option trust_pickle=true")


def load_pickle(path: str, *, trust: bool = False) -> Any:
    """Load a pickle; unless ``trust``, only plain containers and numpy arrays are allowed."""
    with open(path, "rb") as f:
        if trust:
            return pickle.load(f)
        try:
            return _SafeUnpickler(f, path).load()
        except pickle.UnpicklingError as e:
            raise ValueError(str(e)) from None
        except Exception as e:
            raise ValueError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from None
