"""Score sample files with a trained difficulty scorer: batched, streaming, resumable.

    mmredstar difficulty score --model runs/difficulty/tiny data/problems.jsonl --out data/problems.scored.jsonl

Python::

    from mmredstar.difficulty.score import score_file
    summary = score_file("runs/difficulty/tiny", ["in.jsonl"], "out.jsonl", chunk_size=1024)

Each sample gets ``difficulty`` = the scorer's prediction on the 1-10 scale, ``meta.difficulty_source =
"trained"``, ``meta.difficulty_model`` (the scorer directory as given) and the head's extras
(``meta.difficulty_expected`` / ``difficulty_confidence`` for classification); a label the sample had is
kept in ``meta.difficulty_label`` (as curation does). Input records are read in chunks of ``chunk_size``;
each scored chunk is written atomically to ``OUT.parts/chunk-NNNNNN.jsonl`` before the next one starts,
so a kill loses at most the chunk in flight and a rerun skips every finished chunk. When all chunks are
done they are joined into ``OUT`` (atomically), ``OUT.score.json`` records the summary (scorer, inputs,
counts per band, seconds) and the parts are removed; a rerun then does nothing. A rerun with another
scorer or other inputs stops with a clear error unless ``overwrite``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections import Counter
from itertools import islice
from pathlib import Path

from ..io import atomic_write, count_records, expand_paths, read_jsonl, read_samples, write_jsonl
from ..levels import band
from ..stages import Marker, file_hashes, fingerprint
from .model import SCORER_FILE, load_scorer

SCORE_VERSION = 1


def scorer_stamp(model: str | os.PathLike) -> dict:
    """What identifies a scorer directory (from its ``scorer.json``, without loading the weights)."""
    p = Path(model) / SCORER_FILE
    if not p.exists():
        raise ValueError(f"{model}: not a difficulty scorer (no {SCORER_FILE}); train one with "
                         "`mmredstar difficulty train CONFIG.yaml` and pass its output directory")
    info = json.loads(p.read_text(encoding="utf-8"))
    return {"weights": info.get("weights_sha256"), "config": info.get("config_sha256"), "head": info.get("head")}


def apply_score(sample, difficulty: float, meta: dict, model_name: str):
    """The sample with the trained difficulty written in (the old label kept in ``meta.difficulty_label``)."""
    m = dict(sample.meta)
    if sample.difficulty is not None and "difficulty_label" not in m:
        m["difficulty_label"] = sample.difficulty
    m.update(meta)
    m["difficulty_source"] = "trained"
    m["difficulty_model"] = model_name
    return dataclasses.replace(sample, difficulty=difficulty, meta=m)


def score_file(model: str, inputs, out: str | os.PathLike, *, batch_size: int = 32, chunk_size: int = 1024,
               overwrite: bool = False, progress: bool = True, scorer=None, num_threads: int | None = None) -> dict:
    """Score every sample of ``inputs`` (files, directories, globs) into ``out``; returns the summary.
    The scorer is loaded only when some chunk still needs scoring."""
    from tqdm.auto import tqdm

    paths = expand_paths(inputs)
    out = Path(out)
    summary_path = Path(str(out) + ".score.json")
    parts = Path(str(out) + ".parts")
    fp = fingerprint({"version": SCORE_VERSION, "scorer": scorer.stamp() if scorer is not None else scorer_stamp(model)})
    inputs = file_hashes(paths)
    done = Marker(summary_path)   # the summary is the marker of the finished file
    if out.exists() and summary_path.exists() and not overwrite:
        old = done.check(fp, inputs)
        if old is not None:
            return {**old, "up_to_date": True}
        raise RuntimeError(f"{out} was scored with another scorer or other inputs ({summary_path}); pass --overwrite "
                           "to redo it, or choose another --out")
    state = Marker(parts / "state.json")   # which scorer and inputs the finished chunks belong to
    if parts.exists() and state.check(fp, inputs) is None:
        if not overwrite:
            raise RuntimeError(f"{parts} holds chunks scored with another scorer or other inputs; pass "
                               "--overwrite to discard them, or choose another --out")
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    state.mark(fp, inputs)
    out_dir = os.path.dirname(os.path.abspath(out))
    total = count_records(paths)
    bands: Counter = Counter()
    done_before = scored_now = 0
    t0 = time.time()
    it = read_samples(paths)
    chunk_files = []
    with tqdm(total=total, desc="difficulty score", unit="sample", disable=not progress) as bar:
        idx = 0
        while True:
            chunk = list(islice(it, chunk_size))
            if not chunk:
                break
            cf = parts / f"chunk-{idx:06d}.jsonl"
            chunk_files.append(cf)
            idx += 1
            if cf.exists():
                rows = list(read_jsonl(cf))
                if [r["id"] for r in rows] == [s.id for s in chunk]:
                    for r in rows:
                        bands[str(band(r["difficulty"]))] += 1
                    done_before += len(rows)
                    bar.update(len(chunk))
                    continue
            if scorer is None:
                if num_threads:
                    import torch

                    torch.set_num_threads(num_threads)
                scorer = load_scorer(model)
            res = scorer.score_samples(chunk, batch_size=batch_size)
            write_jsonl(cf, (apply_score(s, d, meta, model).to_dict(out_dir=out_dir)
                             for s, (d, meta) in zip(chunk, res, strict=True)))
            for d, _ in res:
                bands[str(band(d))] += 1
            scored_now += len(chunk)
            bar.update(len(chunk))
    with atomic_write(out) as f:
        for cf in chunk_files:
            with open(cf, encoding="utf-8") as g:
                shutil.copyfileobj(g, f)
    seconds = time.time() - t0
    summary = done.mark(fp, inputs, {"out": out}, out=str(out), records=done_before + scored_now, scored_now=scored_now,
                        resumed=done_before, bands={k: bands[k] for k in sorted(bands, key=int)},
                        seconds=round(seconds, 2), model=model)
    shutil.rmtree(parts, ignore_errors=True)
    return summary
