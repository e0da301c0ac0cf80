"""The one "skip what is already done" mechanism: fingerprints, file hashes and a stage marker.

Every resumable step (curation units and runs, the GeoQA stages, study cells, subsets, mixtures, difficulty
scoring and scorer training, the evaluation runner) decides "done?" the same way:

* :func:`fingerprint` of what determines the result (a config dataclass, a dict of settings, the hashes of
  the files it points to) — stable JSON (sorted keys, dataclasses as dicts, paths as strings) and sha256;
* :func:`sha256_file` of its input and output files (the only file hasher in the package);
* a :class:`Marker` file written atomically when the step finishes, holding the fingerprint, the inputs'
  and outputs' sha256. :meth:`Marker.check` returns the marker when the fingerprint matches, every input
  still has the recorded hash and every output exists with its recorded hash; otherwise ``None``, and the
  step is redone.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> (d / "in.txt").write_text("x")
1
>>> m = Marker(d / "step.json")
>>> fp = fingerprint({"lr": 1e-5, "steps": 3})
>>> m.check(fp, inputs=[d / "in.txt"]) is None                 # never ran
True
>>> (d / "out.txt").write_text("y")
1
>>> _ = m.mark(fp, inputs=[d / "in.txt"], outputs={"out": d / "out.txt"}, counts={"n": 1})
>>> m.check(fp, inputs=[d / "in.txt"])["counts"]
{'n': 1}
>>> m.check(fingerprint({"lr": 2e-5, "steps": 3}), inputs=[d / "in.txt"]) is None   # config changed
True
>>> (d / "in.txt").write_text("z")                            # input changed
1
>>> m.check(fp, inputs=[d / "in.txt"]) is None
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .assets import AssetError, resolve
from .io import write_json

__all__ = ["fingerprint", "canonical_json", "sha256_file", "file_hashes", "asset_sha256", "Marker"]


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        to_dict = getattr(obj, "to_dict", None)
        return _plain(to_dict() if callable(to_dict) else dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((_plain(v) for v in obj), key=lambda v: json.dumps(v, sort_keys=True, default=str))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def canonical_json(obj: Any) -> str:
    """The stable JSON text a fingerprint hashes: sorted keys, dataclasses as dicts, sets sorted, paths as strings.

    >>> canonical_json({"b": 1, "a": (Path("x"), {2, 1})})
    '{"a": ["x", [1, 2]], "b": 1}'
    """
    return json.dumps(_plain(obj), sort_keys=True, default=str)


def fingerprint(obj: Any, length: int | None = None) -> str:
    """sha256 (hex) of :func:`canonical_json` of ``obj``; ``length`` keeps that many leading characters.

    >>> fingerprint({"a": 1, "b": [2]}) == fingerprint({"b": [2], "a": 1})
    True
    >>> len(fingerprint({"a": 1}, 16)), fingerprint({"a": 1}) == fingerprint({"a": 2})
    (16, False)
    """
    h = hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()
    return h[:length] if length else h


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes, streamed in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_hashes(paths: Iterable[str | os.PathLike] | Mapping[str, str]) -> dict[str, str | None]:
    """``{path: sha256}`` for each path (``None`` for a missing file; a directory hashes its file names and
    their hashes, recursively). A mapping is taken as hashes computed already and returned as they are."""
    if isinstance(paths, Mapping):
        return {os.fspath(k): v for k, v in paths.items()}
    out: dict[str, str | None] = {}
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            files = sorted(str(q.relative_to(p)) for q in Path(p).rglob("*") if q.is_file())
            out[p] = fingerprint([[f, sha256_file(os.path.join(p, f))] for f in files])
        elif os.path.isfile(p):
            out[p] = sha256_file(p)
        else:
            out[p] = None
    return out


def asset_sha256(kind: str, name: str | os.PathLike | None) -> str | None:
    """sha256 of the asset file ``name`` of ``kind`` (a recipe, model preset, data card, benchmark spec or
    config: a bare name or a path), so that editing the file a config points to redoes the step; ``None``
    when ``name`` is not such a file (a Hugging Face id, a checkpoint directory).

    >>> asset_sha256("train", "tiny/sft") == sha256_file(resolve("train", "tiny/sft"))
    True
    >>> asset_sha256("models", "Qwen/not-a-preset") is None
    True
    """
    if name is None:
        return None
    try:
        return sha256_file(resolve(kind, name))
    except AssetError:
        return None


class Marker:
    """The "finished" record of one step, a JSON file written atomically by :meth:`mark`.

    It holds ``fingerprint``, ``inputs`` (``{path: sha256}``), ``outputs`` (``{name: path}``) with their
    hashes in ``output_sha256``, ``finished_at`` and whatever the step adds (counts, metrics, timing).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def read(self) -> dict | None:
        """The marker's content, or ``None`` when it is missing or unreadable."""
        try:
            st = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return st if isinstance(st, dict) else None

    def check(self, fp: str, inputs: Iterable[str | os.PathLike] | Mapping[str, str] = (), *,
              hash_outputs: bool = True) -> dict | None:
        """The marker when the step is done for fingerprint ``fp`` and these ``inputs`` (same paths, same
        hashes; a ``{path: sha256}`` mapping when the caller hashed them already) and every recorded output
        exists (with its recorded hash unless ``hash_outputs`` is false); otherwise ``None``."""
        st = self.read()
        if st is None or st.get("fingerprint") != fp:
            return None
        want = file_hashes(inputs)
        if any(h is None for h in want.values()) or st.get("inputs", {}) != want:
            return None
        outputs = st.get("outputs", {})
        if not all(os.path.exists(p) for p in outputs.values()):
            return None
        if hash_outputs and file_hashes(outputs.values()) != st.get("output_sha256", {}):
            return None
        return st

    def mark(self, fp: str, inputs: Iterable[str | os.PathLike] | Mapping[str, str] = (),
             outputs: Mapping[str, str | os.PathLike] | None = None, **extra: Any) -> dict:
        """Record the step as finished (atomically: a crash leaves the old marker or none); returns the record."""
        outs = {k: os.fspath(v) for k, v in (outputs or {}).items()}
        st = {"fingerprint": fp, "inputs": file_hashes(inputs), "outputs": outs,
              "output_sha256": file_hashes(outs.values()), "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
              **extra}
        write_json(self.path, st)
        return st

    def clear(self) -> None:
        """Forget the step (the next check says not done)."""
        self.path.unlink(missing_ok=True)
