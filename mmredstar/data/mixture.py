"""Mixtures: draw a training set from several curated sets by exact counts or by weights, seeded.

In a training recipe (``mmredstar train RECIPE``; the draw is written to ``OUTPUT_DIR/data/mixture.jsonl``
and described in ``OUTPUT_DIR/mixture_manifest.json`` beside the checkpoint)::

    data:
      mixture:                                  # the paper's math + code mix
        - {path: redstar_math_4k, count: 4000}  # a named set, a file, a directory or a glob
        - {path: data/code_sft.jsonl, count: 16000}
      mixture_seed: 0

    data:
      mixture: [{path: math.jsonl, weight: 0.8}, {path: code.jsonl, weight: 0.2}]
      mixture_total: 20000                      # weights share what exact counts leave of the total

Python::

    from mmredstar.data.mixture import draw_mixture
    man = draw_mixture([{"path": "math.jsonl", "count": 4000}, {"path": "code.jsonl", "weight": 1}],
                       "runs/x/mixture.jsonl", total=20000, seed=0)

Which records: within each source, the ``count`` records with the smallest
``mmredstar.data.subset.order_key(seed, id)``, the same order as ``mmredstar data subset``: with one seed,
4000 drawn from a set are exactly that set's ``4k`` subset, and a larger draw contains a smaller one.
Counts: ``count: N`` (or ``all``) is exact; the sources with a ``weight`` share ``total`` minus the exact
counts in proportion to their weights (largest remainders, ties to the earlier source). Asking for more
than a source holds is an error naming the source. Records are written source after source, each in
input order (trainers shuffle). The manifest records, per source: the files (path, sha256, records),
what was asked, how many were available and drawn, and ``ids_sha256`` of the drawn ids (file order).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..io import SampleWriter, expand_paths, write_json
from ..schema import record_from_dict
from ..stages import Marker, fingerprint, sha256_file
from .subset import IdsHasher, Smallest, iter_light, order_key

MIXTURE_VERSION = 1


@dataclass
class MixtureSource:
    """One source of a mixture."""

    path: str
    """A sample file, directory, glob, or (in recipes) a named set / ``builtin:NAME``."""
    count: int | str | None = None
    """Exactly this many records (or ``all``)."""
    weight: float | None = None
    """A share of ``total`` (what exact counts leave), in proportion to the other sources' weights."""
    name: str | None = None
    """Name in the manifest (default: ``path``)."""


def parse_mixture(entries, where: str = "data.mixture") -> list[MixtureSource]:
    """Check mixture entries (dicts or ``MixtureSource``); errors name the entry and say what to write.

    >>> [s.count for s in parse_mixture([{"path": "a.jsonl", "count": 4000}, {"path": "b.jsonl", "count": "all"}])]
    [4000, 'all']
    """
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{where}: expected a list of sources, e.g. [{{path: math.jsonl, count: 4000}}, "
                         "{path: code.jsonl, weight: 0.2}]")
    out = []
    allowed = {"path", "count", "weight", "name"}
    for i, e in enumerate(entries):
        key = f"{where}[{i}]"
        if isinstance(e, MixtureSource):
            e = dict(path=e.path, count=e.count, weight=e.weight, name=e.name)
        if not isinstance(e, dict):
            raise ValueError(f"{key}: expected a mapping like {{path: FILE, count: N}}, got {e!r}")
        unknown = set(e) - allowed
        if unknown:
            raise ValueError(f"{key}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        if not isinstance(e.get("path"), str) or not e["path"]:
            raise ValueError(f"{key}: 'path' is required (a sample file, directory, glob or named set)")
        count, weight = e.get("count"), e.get("weight")
        if (count is None) == (weight is None):
            raise ValueError(f"{key}: give exactly one of 'count' (records, or 'all') and 'weight'")
        if count is not None:
            if isinstance(count, str) and count.strip().lower() == "all":
                count = "all"
            else:
                from .subset import parse_size

                try:
                    count = parse_size(count)
                except ValueError as err:
                    raise ValueError(f"{key}.count: {err}") from None
        if weight is not None:
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
                raise ValueError(f"{key}.weight: expected a positive number, got {weight!r}")
            weight = float(weight)
        out.append(MixtureSource(e["path"], count, weight, e.get("name")))
    names = [s.name or s.path for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: two sources share a name/path {names}; give them distinct 'name's")
    return out


def plan_counts(sources: list[MixtureSource], available: list[int], total: int | None) -> list[int]:
    """Records to draw from each source. Exact counts as given (``all`` = available); weighted sources share
    ``total`` minus the exact counts by largest remainders (ties to the earlier source).

    >>> S = MixtureSource
    >>> plan_counts([S("a", weight=0.8), S("b", weight=0.2)], [100, 100], 10)
    [8, 2]
    >>> plan_counts([S("a", count=3), S("b", weight=1), S("c", weight=1)], [5, 9, 9], 8)
    [3, 3, 2]
    >>> plan_counts([S("a", count="all"), S("b", count=2)], [5, 9], None)
    [5, 2]
    """
    counts: list[int | None] = []
    for s, n in zip(sources, available, strict=True):
        counts.append(n if s.count == "all" else s.count if s.count is not None else None)
    weighted = [i for i, s in enumerate(sources) if s.weight is not None]
    if weighted:
        if total is None:
            raise ValueError("weighted mixture sources need a total (data.mixture_total / total=N)")
        rest = total - sum(c for c in counts if c is not None)
        if rest < 0:
            raise ValueError(f"the exact counts add up to more than the total {total}")
        wsum = sum(sources[i].weight for i in weighted)
        shares = [rest * sources[i].weight / wsum for i in weighted]
        base = [int(x) for x in shares]
        left = rest - sum(base)
        order = sorted(range(len(weighted)), key=lambda j: (-(shares[j] - base[j]), j))
        for j in order[:left]:
            base[j] += 1
        for j, i in enumerate(weighted):
            counts[i] = base[j]
    elif total is not None and sum(counts) != total:
        raise ValueError(f"the exact counts add up to {sum(counts)}, not the total {total}; drop the total or fix a count")
    return [int(c) for c in counts]


def draw_mixture(entries, out: str | os.PathLike, *, total: int | None = None, seed: int = 0,
                 resolve: Callable[[str], list[str]] | None = None, manifest_path: str | os.PathLike | None = None,
                 progress: bool = False) -> dict:
    """Draw the mixture into ``out`` (JSONL, atomic) and return its manifest (also written to
    ``manifest_path`` when given). ``resolve`` turns a source's ``path`` into files (default: files,
    directories, globs; training passes its resolver for named sets). An up-to-date ``out`` (same
    manifest fingerprint beside it) is not rewritten."""

    from tqdm.auto import tqdm

    sources = parse_mixture(entries)
    resolve = resolve or (lambda p: expand_paths(p))
    files = [list(resolve(s.path)) for s in sources]

    # pass 1: each source's size and its smallest keys
    caps = []
    for s in sources:
        if s.count == "all":
            caps.append(None)
        elif s.count is not None:
            caps.append(s.count)
        else:
            caps.append(total)
    heaps, per_file = [], []
    for s, fs, cap in zip(sources, files, caps, strict=True):
        h = Smallest(cap if cap is not None else None)
        counts: dict[str, int] = {}
        for path, _, _, lt in tqdm(iter_light(fs), desc=f"mixture: scan {s.name or s.path}", disable=not progress,
                                   mininterval=1.0):
            counts[path] = counts.get(path, 0) + 1
            h.add((order_key(seed, lt.id), lt.pos))
        heaps.append(h)
        per_file.append(counts)
    available = [h.n for h in heaps]
    want = plan_counts(sources, available, total)
    for s, n, a in zip(sources, want, available, strict=True):
        if n > a:
            raise ValueError(f"mixture source {s.name or s.path!r}: asked for {n} records, it holds {a}; "
                             "lower its count/weight or the total")
    thresholds = [h.threshold(n) if n < h.n else None for h, n in zip(heaps, want, strict=True)]

    src_entries = []
    for s, fs, pf in zip(sources, files, per_file, strict=True):
        src_entries.append({"name": s.name or s.path, "spec": s.path,
                            "files": [{"path": f, "sha256": sha256_file(f), "records": pf.get(f, 0)} for f in fs],
                            "requested": {"count": s.count} if s.count is not None else {"weight": s.weight}})
    fp = fingerprint({"v": MIXTURE_VERSION, "seed": seed, "total": total, "want": want,
                      "files": [[f["sha256"] for f in e["files"]] for e in src_entries]})
    inputs = {f["path"]: f["sha256"] for e in src_entries for f in e["files"]}
    out = os.fspath(out)
    marker = Marker(out + ".manifest.json")   # the manifest is the marker: same draw, same output -> nothing to do
    old = marker.check(fp, inputs)
    if old is not None:
        if manifest_path is not None:
            write_json(manifest_path, old)
        return old

    # pass 2: write the drawn records, source after source
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with SampleWriter(out) as w:
        for e, fs, th, n, a in zip(src_entries, files, thresholds, want, available, strict=True):
            ids = IdsHasher()
            drawn = 0
            if n > 0:
                for path, line, d, lt in iter_light(fs):
                    if th is not None and (order_key(seed, lt.id), lt.pos) > th:
                        continue
                    w.write(record_from_dict(d, file=path, line=line, root=os.path.dirname(os.path.abspath(path))))
                    ids.update(lt.id)
                    drawn += 1
            e.update({"available": a, "drawn": drawn, "ids_sha256": ids.hexdigest() if drawn else None})
    man = marker.mark(fp, inputs, outputs={"mixture": out}, path=os.path.basename(out), sha256=sha256_file(out),
                      records=sum(e["drawn"] for e in src_entries), seed=seed, total=total,
                      order="per source: sha256('<seed>:<id>')[:8] ascending (= data subset)", sources=src_entries,
                      version=MIXTURE_VERSION)
    if manifest_path is not None:
        write_json(manifest_path, man)
    return man
