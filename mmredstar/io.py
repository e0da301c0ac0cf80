"""Streaming readers and writers for sample records: JSONL (optionally .gz), Parquet, HF datasets.

Nothing here holds a whole dataset in memory: readers are generators over (sharded) files and
writers write as they go. Writes are atomic: a file appears under its final name only once it is
complete (written to ``.tmp``, flushed, fsynced, renamed), so a crash or a kill never leaves a
half-written shard behind.

    from mmredstar.io import read_samples, SampleWriter
    with SampleWriter("out/samples", shard_size=100_000) as w:     # out/samples-00000.jsonl, ...
        for s in read_samples("data/*.jsonl"):
            w.write(s)
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from .schema import DataError, Problem, Sample, record_from_dict, validate_record

RECORD_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")
_UMASK = os.umask(0)
os.umask(_UMASK)


# ----------------------------------------------------------------------------------------- paths
def expand_paths(spec: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Files named by a path, a directory (its record files, sorted) or a glob; lists are concatenated."""
    if not isinstance(spec, (str, os.PathLike)):
        out: list[str] = []
        for s in spec:
            out.extend(expand_paths(s))
        return out
    spec = os.fspath(spec)
    if os.path.isdir(spec) and (os.path.exists(os.path.join(spec, "dataset_dict.json"))
                                or os.path.exists(os.path.join(spec, "state.json"))
                                and os.path.exists(os.path.join(spec, "dataset_info.json"))):
        raise DataError(_dataset_dir_problem(spec))
    if os.path.isdir(spec):
        # a LLaMA-Factory index (dataset_info.json) is not a record file; the files beside it are read as they are
        files = sorted(p for p in glob.glob(os.path.join(spec, "*"))
                       if p.endswith(RECORD_SUFFIXES) and os.path.basename(p) != "dataset_info.json")
        if not files:
            raise DataError(Problem(spec, None, "-", "directory holds no .jsonl/.jsonl.gz/.parquet files"))
        return files
    if any(ch in spec for ch in "*?["):
        files = sorted(glob.glob(spec))
        if not files:
            raise DataError(Problem(spec, None, "-", "no files match this pattern"))
        return files
    if not os.path.exists(spec):
        raise DataError(Problem(spec, None, "-", "file not found", "check the path"))
    return [spec]


def _dataset_dir_problem(path: str) -> Problem:
    """A ``datasets`` ``save_to_disk`` directory is not a folder of sample files: the problem names the
    ``mmredstar data convert`` command for it (the card guessed from its columns)."""
    from .schema import convert_command, foreign_layout

    info_dir = path
    if os.path.exists(os.path.join(path, "dataset_dict.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
            with open(os.path.join(path, "dataset_dict.json"), encoding="utf-8") as f:
                info_dir = os.path.join(path, json.load(f)["splits"][0])
    card = None
    try:
        with open(os.path.join(info_dir, "dataset_info.json"), encoding="utf-8") as f:
            info = json.load(f)
        card = (foreign_layout({k: "" for k in (info.get("features") or {})}) or (None,))[0]
    except (OSError, ValueError, AttributeError):
        pass
    cmd = convert_command(card or "CARD", path)
    return Problem(path, None, "-", "a `datasets` save_to_disk directory, not a folder of sample files",
                   f"convert it first: {cmd}" + ("" if card else " (CARD: `mmredstar data cards` lists them)"))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Write a file so that it appears complete or not at all (temp file + fsync + rename)."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        binary = "b" in mode
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give them the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def dir_lock(out: str | os.PathLike, what: str, hint: str = "wait for it or choose another output directory"):
    """Hold an exclusive lock on ``OUT/.lock`` while one ``what`` run writes into ``OUT`` (a second run is refused
    with an error naming the directory; the OS releases the lock when the process ends, killed or not)."""
    import fcntl

    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, ".lock")
    f = open(path, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise RuntimeError(f"{out}: another {what} run is using this output directory; {hint}") from None
    try:
        yield path
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, default=str)
        f.write("\n")


# ----------------------------------------------------------------------------------------- raw JSONL
def surrogate_field(obj: Any, at: str = "") -> str | None:
    """The dotted field of the first string in ``obj`` holding a lone UTF-16 surrogate (``"\\ud83d"``), or None."""
    if isinstance(obj, str):
        return at or "-" if any("\ud800" <= c <= "\udfff" for c in obj) else None
    if isinstance(obj, dict):
        items = ((f"{at}.{k}" if at else str(k), v) for k, v in obj.items())
    elif isinstance(obj, list):
        items = ((f"{at}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for k, v in items:
        f = surrogate_field(v, k)
        if f:
            return f
    return None


def iter_jsonl(path: str, *, lone_surrogates: bool = False) -> Iterator[tuple[int, Any, Problem | None]]:
    """Yield (line number, parsed object or None, problem or None) for each non-blank line. A line that is not
    UTF-8, is not JSON, or holds a lone surrogate escape (which no UTF-8 writer can write back) is a problem of
    that line; the lines after it are still read. ``lone_surrogates=True`` keeps such strings as they are (for
    a reader that writes them back escaped, like ``verify``)."""
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield i, None, Problem(path, i, "-", f"not UTF-8 text: byte {raw[e.start:e.start + 1]!r} at column "
                                       f"{e.start + 1}", "re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8")
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield i, None, Problem(path, i, "-", f"malformed JSON: {e.msg} at column {e.colno}",
                                       "each line must be one complete JSON object")
                continue
            bad = surrogate_field(obj) if "\\u" in line and not lone_surrogates else None
            if bad:
                yield i, None, Problem(path, i, bad, "a lone UTF-16 surrogate escape (e.g. \"\\ud83d\" without its "
                                       "pair: a cut emoji)", "write the whole character or remove the escape")
                continue
            yield i, obj, None


def read_jsonl(path: str | os.PathLike) -> Iterator[Any]:
    """Plain JSON objects from a JSONL file; a malformed line raises with its file and line."""
    for _, obj, prob in iter_jsonl(os.fspath(path)):
        if prob:
            raise DataError(prob)
        yield obj


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> int:
    n = 0
    with atomic_write(path) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n


# ----------------------------------------------------------------------------------------- records
def iter_raw_records(spec) -> Iterator[tuple[str, int, Any, Problem | None]]:
    """(file, line or row number, dict, problem) over every record file named by ``spec``."""
    for path in expand_paths(spec):
        if path.endswith(".parquet"):
            for i, d in enumerate(_iter_parquet_dicts(path), 1):
                yield path, i, d, None
        elif path.endswith(".json"):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
            except json.JSONDecodeError as e:
                yield path, e.lineno, None, Problem(path, e.lineno, "-", f"malformed JSON: {e.msg}")
                continue
            except UnicodeDecodeError as e:
                yield path, None, None, Problem(path, None, "-", f"not UTF-8 text (byte offset {e.start})",
                                                "re-encode the file as UTF-8")
                continue
            rows = data if isinstance(data, list) else [data]
            for i, d in enumerate(rows, 1):
                bad = surrogate_field(d)
                yield (path, i, None, Problem(path, i, bad, "a lone UTF-16 surrogate escape (a cut emoji)",
                                              "write the whole character or remove the escape")) if bad \
                    else (path, i, d, None)
        else:
            for i, d, prob in iter_jsonl(path):
                yield path, i, d, prob


def read_samples(spec, *, image_root: str | None = None, on_error: str = "raise") -> Iterator[Sample]:
    """Stream ``Sample`` / ``Pair`` records from files, directories or globs.

    ``on_error``: ``"raise"`` (default) stops at the first bad record with a ``DataError`` naming the
    file, line and field; ``"skip"`` skips bad records (use ``validate_file`` to list them)."""
    for path, line, d, prob in iter_raw_records(spec):
        root = image_root or os.path.dirname(os.path.abspath(path))
        if prob is not None:
            if on_error == "raise":
                raise DataError(prob)
            continue
        try:
            yield record_from_dict(d, file=path, line=line, root=root)
        except DataError:
            if on_error == "raise":
                raise


def count_records(spec) -> int:
    n = 0
    for path in expand_paths(spec):
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            n += pq.ParquetFile(path).metadata.num_rows
        else:
            with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
                n += sum(1 for line in f if line.strip())
    return n


def validate_file(spec, *, image_root: str | None = None, check_images: bool = True,
                  max_problems: int | None = None) -> tuple[int, list[Problem]]:
    """(records checked, every problem found). Never stops at the first problem."""
    problems: list[Problem] = []
    n = 0
    seen_ids: dict[str, tuple[str, int]] = {}
    for path, line, d, prob in iter_raw_records(spec):
        n += 1
        if prob is not None:
            problems.append(prob)
        else:
            root = image_root or os.path.dirname(os.path.abspath(path))
            ps = validate_record(d, file=path, line=line, root=root, check_images=check_images)
            problems.extend(ps)
            rid = d.get("id") if isinstance(d, dict) else None
            if isinstance(rid, str) and rid:
                if rid in seen_ids:
                    f0, l0 = seen_ids[rid]
                    problems.append(Problem(path, line, "id", f"duplicate id {rid!r} (first at {f0}:{l0})",
                                            "ids must be unique; drop the duplicate or let the id be derived"))
                else:
                    seen_ids[rid] = (path, line)
        if max_problems is not None and len(problems) >= max_problems:
            break
    return n, problems


# ----------------------------------------------------------------------------------------- writers
class SampleWriter:
    """Write records to one JSONL file or to shards, atomically, streaming.

    ``SampleWriter("x.jsonl")`` writes one file (``.jsonl.gz`` compresses). With ``shard_size=N``,
    ``path`` is a prefix: shards ``<prefix>-00000.jsonl``, ``-00001``... each with at most N records,
    each appearing atomically once full (or on close). Image paths are rewritten relative to the
    output directory; ``embed_images=True`` stores image bytes instead."""

    def __init__(self, path: str | os.PathLike, *, shard_size: int | None = None, embed_images: bool = False):
        self.path = os.fspath(path)
        self.shard_size = shard_size
        self.embed_images = embed_images
        self.count = 0
        self.shards: list[str] = []
        self._shard_idx = 0
        self._in_shard = 0
        self._cm = None
        self._f = None
        if shard_size is None:
            self.out_dir = os.path.dirname(os.path.abspath(self.path))
        else:
            self.out_dir = os.path.dirname(os.path.abspath(self.path + "-00000.jsonl"))

    def _shard_path(self) -> str:
        if self.shard_size is None:
            return self.path
        return f"{self.path}-{self._shard_idx:05d}.jsonl"

    def _open(self):
        p = self._shard_path()
        if p.endswith(".gz"):
            self._cm = atomic_write(p, "wb")
            raw = self._cm.__enter__()
            self._gz = gzip.GzipFile(fileobj=raw, mode="wb")
            self._f = io.TextIOWrapper(self._gz, encoding="utf-8")
        else:
            self._cm = atomic_write(p, "w")
            self._gz = None
            self._f = self._cm.__enter__()

    def _close_current(self, exc=None):
        if self._cm is None:
            return
        if self._gz is not None:
            self._f.flush()
            self._f.detach()
            self._gz.close()
        if exc is None:
            self._cm.__exit__(None, None, None)
            self.shards.append(self._shard_path())
        else:
            self._cm.__exit__(type(exc), exc, exc.__traceback__)
        self._cm = self._f = None

    def write(self, rec: Sample | dict) -> None:
        if self._f is None:
            self._open()
        if isinstance(rec, Sample):
            d = rec.to_dict(out_dir=self.out_dir)
            if self.embed_images:
                for im_d, im in zip(d["images"], rec.images, strict=False):
                    if "bytes" not in im_d:
                        import base64

                        im_d["bytes"] = base64.b64encode(im.read_bytes()).decode("ascii")
                        im_d.pop("path", None)
        else:
            d = rec
        self._f.write(json.dumps(d, ensure_ascii=False) + "\n")
        self.count += 1
        self._in_shard += 1
        if self.shard_size is not None and self._in_shard >= self.shard_size:
            self._close_current()
            self._shard_idx += 1
            self._in_shard = 0

    def write_all(self, recs: Iterable[Sample | dict]) -> int:
        for r in recs:
            self.write(r)
        return self.count

    def close(self) -> None:
        if self._f is None and self.count == 0 and self.shard_size is None:
            self._open()  # an empty output file still appears
        self._close_current()

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            self.close()
        else:
            self._close_current(ev)
        return False


def write_samples(path: str | os.PathLike, samples: Iterable[Sample], **kw) -> int:
    """Write samples to ``.jsonl``/``.jsonl.gz``/``.parquet`` by the path's suffix; returns the count."""
    path = os.fspath(path)
    if path.endswith(".parquet"):
        return write_parquet(path, samples, **kw)
    with SampleWriter(path, **kw) as w:
        return w.write_all(samples)


# ----------------------------------------------------------------------------------------- parquet
def _arrow_schema():
    import pyarrow as pa

    part = pa.struct([("type", pa.string()), ("text", pa.string()), ("index", pa.int64())])
    msg = pa.struct([("role", pa.string()), ("content", pa.list_(part))])
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.schema([
        ("id", pa.string()), ("source", pa.string()), ("split", pa.string()),
        ("prompt", pa.list_(msg)), ("images", pa.list_(image)),
        ("answer", pa.string()), ("answer_type", pa.string()), ("choices", pa.list_(pa.string())),
        ("tests", pa.string()), ("difficulty", pa.float64()), ("meta", pa.string()),
        ("provenance", pa.string()), ("responses", pa.string()), ("chosen", pa.string()),
        ("rejected", pa.string()),
    ])


def _to_row(s: Sample, out_dir: str | None, embed_images: bool) -> dict:
    d = s.to_dict(out_dir=out_dir)
    imgs = []
    for im_d, im in zip(d["images"], s.images, strict=False):
        b = im.bytes if im.bytes is not None else (im.read_bytes() if embed_images else None)
        imgs.append({"bytes": b, "path": None if (embed_images and im.bytes is None) else im_d.get("path")})
    dumps = lambda v: None if v is None else json.dumps(v, ensure_ascii=False)  # noqa: E731
    return {
        "id": d["id"], "source": d["source"], "split": d["split"],
        "prompt": [{"role": m["role"], "content": [{"type": p["type"], "text": p.get("text"), "index": p.get("index")}
                                                    for p in m["content"]]} for m in d["prompt"]],
        "images": imgs, "answer": d["answer"], "answer_type": d["answer_type"], "choices": d["choices"],
        "tests": dumps(d["tests"]), "difficulty": d["difficulty"], "meta": dumps(d["meta"]),
        "provenance": dumps(d["provenance"]), "responses": dumps(d["responses"]),
        "chosen": dumps(d.get("chosen")), "rejected": dumps(d.get("rejected")),
    }


def _from_row(r: dict) -> dict:
    import base64

    loads = lambda v: None if v is None else json.loads(v)  # noqa: E731
    prompt = []
    for m in r["prompt"]:
        parts = []
        for p in m["content"]:
            parts.append({"type": "text", "text": p["text"]} if p["type"] == "text"
                         else {"type": "image", "index": p["index"]})
        prompt.append({"role": m["role"], "content": parts})
    images = []
    for im in r["images"] or []:
        x = {}
        if im.get("path") is not None:
            x["path"] = im["path"]
        if im.get("bytes") is not None:
            x["bytes"] = base64.b64encode(im["bytes"]).decode("ascii")
        images.append(x)
    d = {
        "id": r["id"], "source": r["source"], "split": r["split"], "prompt": prompt, "images": images,
        "answer": r["answer"], "answer_type": r["answer_type"], "choices": r["choices"],
        "tests": loads(r["tests"]), "difficulty": r["difficulty"], "meta": loads(r["meta"]) or {},
        "provenance": loads(r["provenance"]) or {}, "responses": loads(r["responses"]) or [],
    }
    if r.get("chosen") is not None or r.get("rejected") is not None:
        d["chosen"] = loads(r.get("chosen"))
        d["rejected"] = loads(r.get("rejected"))
    return d


def write_parquet(path: str | os.PathLike, samples: Iterable[Sample], *, batch_size: int = 1000,
                  embed_images: bool = False) -> int:
    """Stream samples into one Parquet file (row groups of ``batch_size``), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.fspath(path)
    schema = _arrow_schema()
    out_dir = os.path.dirname(os.path.abspath(path))
    n = 0
    with atomic_write(path, "wb") as f:
        writer = pq.ParquetWriter(f, schema)
        batch: list[dict] = []
        for s in samples:
            batch.append(_to_row(s, out_dir, embed_images))
            n += 1
            if len(batch) >= batch_size:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch or n == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        writer.close()
    return n


def _iter_parquet_dicts(path: str) -> Iterator[dict]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=1000):
        for r in batch.to_pylist():
            yield _from_row(r)


# ----------------------------------------------------------------------------------------- HF datasets
def hf_features():
    """The ``datasets.Features`` of the row form (images as ``datasets.Image`` {bytes, path})."""
    import datasets as hd

    part = {"type": hd.Value("string"), "text": hd.Value("string"), "index": hd.Value("int64")}
    msg = {"role": hd.Value("string"), "content": hd.List(part)}
    return hd.Features({
        "id": hd.Value("string"), "source": hd.Value("string"), "split": hd.Value("string"),
        "prompt": hd.List(msg), "images": hd.List(hd.Image(decode=False)),
        "answer": hd.Value("string"), "answer_type": hd.Value("string"), "choices": hd.List(hd.Value("string")),
        "tests": hd.Value("string"), "difficulty": hd.Value("float64"), "meta": hd.Value("string"),
        "provenance": hd.Value("string"), "responses": hd.Value("string"), "chosen": hd.Value("string"),
        "rejected": hd.Value("string"),
    })


def to_hf_dataset(samples: Iterable[Sample], *, embed_images: bool = True):
    """A ``datasets.Dataset`` of the samples (built by a generator: nothing held in memory twice).

    Images are embedded by default so the dataset is self-contained (``push_to_hub`` ready)."""
    import datasets as hd

    samples = iter(samples)

    def gen():
        for s in samples:
            yield _to_row(s, None, embed_images)

    return hd.Dataset.from_generator(gen, features=hf_features())


def from_hf_dataset(ds, *, image_root: str | None = None) -> Iterator[Sample]:
    """Samples back from a dataset made by ``to_hf_dataset`` (or loaded from our Parquet)."""
    for i, r in enumerate(ds, 1):
        yield record_from_dict(_from_row(r), file="<hf dataset>", line=i, root=image_root)
