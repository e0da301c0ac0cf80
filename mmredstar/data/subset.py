"""Nested, seeded subsets of curated sets: the paper's data-scale ladder, difficulty bands, prompts vs pairs.

    mmredstar data subset runs/curate/x/sft.jsonl --out data/ladder --sizes 4000,8000,16000,32000,all
    mmredstar data subset IN.jsonl --out data/bands --bands low=1-3,medium=4-6,high=7-9 [--sizes 4000]
    mmredstar data subset IN.jsonl --out data/hard --prompts 1300 --pairs 4000      # 1.3k prompts / 4k pairs

Python::

    from mmredstar.data.subset import build_subsets
    manifests = build_subsets(["sft.jsonl"], "data/ladder", sizes=[4000, 8000, None], seed=0)

How records are chosen: every record gets the key ``order_key(seed, id)`` (the first 8 bytes of
``sha256("<seed>:<id>")``; ties broken by position in the input). A size-k subset is the k records with the
smallest keys, so with one seed every smaller subset is contained in every larger one (nested), the choice
does not depend on file order or sharding, and the same seed gives the same ids. Band subsets hold the
records whose difficulty band (``Sample.difficulty`` rounded half up) lies in the band; with ``--sizes``
each band is cut to those sizes the same way. Prompts vs pairs: the N prompts (``meta.prompt_id``, else
the id) with the smallest ``order_key(seed, "prompt:" + prompt_id)``, then up to M of their records, taken
round-robin (every chosen prompt's first record by key, then every prompt's second, ...), so M >= N covers
every prompt.

Streaming: the input is read twice (three times for prompts/pairs) and never held in memory. What is
kept: a heap of (key, position) pairs as large as the largest finite size (``all`` needs none: it is every
record), for prompts/pairs the chosen prompts' record keys, and the distinct prompt ids of each subset (for
its prompt count). Records are written in input order.

Outputs in ``DIR``: ``<name>.jsonl`` and ``<name>.manifest.json`` per subset (names ``4k``, ``8k``, ``all``,
``low``, ``low_4k``, ``prompts1.3k_pairs4k``), and ``subsets.json`` (the request and every manifest). A
manifest holds: the source files (path, sha256, records), seed, the selection rule, record and prompt
counts, counts per band / domain (``meta.domain``, else derived from the answer type) / source /
answer type, ``ids_sha256`` (sha256 of the ids in file order, each followed by a newline; see
:func:`ids_hash`) and the output file's sha256. A rerun with the same inputs, rule and seed does nothing.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..io import SampleWriter, expand_paths, iter_raw_records, write_json
from ..levels import Band, band, parse_bands
from ..schema import DataError, Problem, record_from_dict
from ..stages import Marker, fingerprint, sha256_file

SUBSET_VERSION = 1
ORDER_RULE = "sha256('<seed>:<id>')[:8] ascending, ties by input position"


# ----------------------------------------------------------------------------------------- keys and hashes
def order_key(seed: int, key: str) -> int:
    """The record order of the subsets: the first 8 bytes of ``sha256("<seed>:<key>")`` as an integer.

    >>> order_key(0, "a") == order_key(0, "a"), order_key(0, "a") == order_key(1, "a")
    (True, False)
    """
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big")


def unit_hash(seed: int, key: str) -> float:
    """``order_key`` scaled to [0, 1) (seeded, order-independent splits).

    >>> 0.0 <= unit_hash(0, "x") < 1.0
    True
    """
    return order_key(seed, key) / 2.0 ** 64


class IdsHasher:
    """sha256 over ids in order, each followed by ``\\n`` (what manifests call ``ids_sha256``)."""

    def __init__(self):
        self._h = hashlib.sha256()

    def update(self, id_: str) -> None:
        self._h.update(id_.encode("utf-8") + b"\n")

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def ids_hash(ids: Iterable[str]) -> str:
    """``ids_sha256`` of a manifest: sha256 of the ids in file order, each followed by a newline.

    >>> ids_hash(["a", "b"]) == hashlib.sha256(b"a\\nb\\n").hexdigest()
    True
    """
    h = IdsHasher()
    for i in ids:
        h.update(i)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------- parsing
def parse_size(text: str | int | None) -> int | None:
    """``4000``, ``"4k"``, ``"1.3k"``, ``"1000k"``, ``"1m"`` -> records; ``"all"`` / ``None`` -> ``None`` (every record).

    >>> [parse_size(x) for x in ("4000", "4k", "1.3k", "1000k", "all", 32)]
    [4000, 4000, 1300, 1000000, None, 32]
    """
    if text is None:
        return None
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 1:
            raise ValueError(f"size {text}: must be at least 1")
        return text
    t = str(text).strip().lower()
    if t == "all":
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([km]?)", t)
    if not m:
        raise ValueError(f"size {text!r}: expected a number (4000, 4k, 1.3k, 1m) or 'all'")
    n = float(m.group(1)) * {"": 1, "k": 1000, "m": 1_000_000}[m.group(2)]
    if n < 1 or not float(n).is_integer():
        raise ValueError(f"size {text!r}: must be a whole number of records, at least 1")
    return int(n)


def parse_sizes(text: str | Iterable) -> list[int | None]:
    """A comma-separated ladder (or a list), sorted, ``all`` last.

    >>> parse_sizes("16k,4000,all,8k")
    [4000, 8000, 16000, None]
    """
    items = [x for x in text.split(",") if x.strip()] if isinstance(text, str) else list(text)
    sizes = [parse_size(x) for x in items]
    if not sizes:
        raise ValueError("no sizes given; e.g. --sizes 4000,8000,all")
    finite = sorted({s for s in sizes if s is not None})
    return finite + ([None] if None in sizes else [])


def size_label(n: int | None) -> str:
    """``4000`` -> ``4k``, ``1300`` -> ``1.3k``, ``1000000`` -> ``1000k``, ``None`` -> ``all``, ``500`` -> ``500``.

    >>> [size_label(x) for x in (4000, 1300, 1000000, None, 500, 16700)]
    ['4k', '1.3k', '1000k', 'all', '500', '16.7k']
    """
    if n is None:
        return "all"
    if n >= 1000 and n % 100 == 0:
        return f"{n / 1000:g}k"
    return str(n)


# ----------------------------------------------------------------------------------------- scanning
@dataclass
class Light:
    """What the selection needs of one record (pass 1): never the record itself."""

    pos: int
    id: str
    prompt_id: str
    difficulty: float | None


def _domain(d: dict) -> str:
    meta = d.get("meta") or {}
    dom = meta.get("domain") if isinstance(meta, dict) else None
    if isinstance(dom, str) and dom:
        return dom
    at = d.get("answer_type")
    return {"code": "code", "math": "math", "numeric": "math"}.get(at, str(at or "-"))


def iter_light(paths: list[str]) -> Iterator[tuple[str, int, dict, Light]]:
    """(file, line, raw dict, Light) for every record of ``paths``; bad lines raise ``DataError`` with file:line."""
    pos = 0
    for path, line, d, prob in iter_raw_records(paths):
        if prob is not None:
            raise DataError(prob)
        if not isinstance(d, dict):
            raise DataError(Problem(path, line, "-", f"expected a JSON object, got {type(d).__name__}"))
        rid = d.get("id")
        if not isinstance(rid, str) or not rid:
            rid = record_from_dict(d, file=path, line=line).id   # content id (validates the record too)
        diff = d.get("difficulty")
        if diff is not None and (isinstance(diff, bool) or not isinstance(diff, (int, float))):
            raise DataError(Problem(path, line, "difficulty", f"expected a number or null, got {diff!r}",
                                    "fix the record or re-score it (mmredstar difficulty score)"))
        meta = d.get("meta") if isinstance(d.get("meta"), dict) else {}
        pid = meta.get("prompt_id")
        yield path, line, d, Light(pos, rid, pid if isinstance(pid, str) and pid else rid,
                                   None if diff is None else float(diff))
        pos += 1


class Smallest:
    """The ``k`` smallest keys seen (a bounded max-heap); ``k=None`` keeps none (every key qualifies)."""

    def __init__(self, k: int | None):
        self.k = k
        self.n = 0
        self._h: list[tuple] = []

    def add(self, key: tuple) -> None:
        self.n += 1
        if self.k is None or self.k <= 0:
            return
        neg = tuple(-x for x in key)
        if len(self._h) < self.k:
            heapq.heappush(self._h, neg)
        elif neg > self._h[0]:
            heapq.heapreplace(self._h, neg)

    def threshold(self, size: int | None) -> tuple | None:
        """The largest key inside the ``size`` smallest (``None``: every key, i.e. ``all`` or ``size >= n``)."""
        if size is None or size >= self.n or size > len(self._h):
            return None
        keys = sorted(tuple(-x for x in k) for k in self._h)
        return keys[size - 1]


# ----------------------------------------------------------------------------------------- subsets
@dataclass
class SubsetSpec:
    """One output subset: a name, the rule that selects it, and how to test a record against it."""

    name: str
    rule: dict
    band: Band | None = None
    size: int | None = None
    threshold: tuple | None = None
    pairs_selected: set | None = None   # prompts/pairs: the chosen positions
    available: int = 0

    def selects(self, light: Light, key: tuple) -> bool:
        if self.pairs_selected is not None:
            return light.pos in self.pairs_selected
        if self.band is not None and not self.band.contains(light.difficulty):
            return False
        return self.threshold is None or key <= self.threshold


@dataclass
class _Acc:
    """Counts and hashes accumulated while writing one subset."""

    ids: IdsHasher = field(default_factory=IdsHasher)
    records: int = 0
    prompts: set = field(default_factory=set)
    band: Counter = field(default_factory=Counter)
    domain: Counter = field(default_factory=Counter)
    source: Counter = field(default_factory=Counter)
    answer_type: Counter = field(default_factory=Counter)

    def add(self, d: dict, light: Light) -> None:
        self.records += 1
        self.ids.update(light.id)
        self.prompts.add(light.prompt_id)
        self.band[str(band(light.difficulty)) if light.difficulty is not None else "unknown"] += 1
        self.domain[_domain(d)] += 1
        self.source[str(d.get("source", "custom"))] += 1
        self.answer_type[str(d.get("answer_type", "-"))] += 1


def _sort_counts(c: Counter) -> dict:
    def k(x):
        return (0, int(x)) if x.isdigit() else (1, x)
    return {x: c[x] for x in sorted(c, key=k)}


def source_entries(paths: list[str], per_file: Counter) -> list[dict]:
    """Manifest ``sources``: each input file with its sha256, size and record count."""
    return [{"path": p, "sha256": sha256_file(p), "bytes": os.path.getsize(p), "records": per_file.get(p, 0)}
            for p in paths]


def _request_fingerprint(sources: list[dict], rules: list[dict], seed: int) -> str:
    return fingerprint({"version": SUBSET_VERSION, "sources": [(s["sha256"], s["records"]) for s in sources],
                        "rules": rules, "seed": seed})


def _up_to_date(out: Path, fp: str) -> list[dict] | None:
    """The manifests of ``out/subsets.json`` (the marker) when it was made for ``fp`` and every subset file
    is still there with its sha256."""
    st = Marker(out / "subsets.json").check(fp)
    return None if st is None else st["subsets"]


def build_subsets(inputs: str | list[str], out: str | os.PathLike, *, sizes: list | str | None = None,
                  bands: list | str | dict | None = None, prompts: int | str | None = None,
                  pairs: list | str | int | None = None, seed: int = 0, allow_short: bool = False,
                  overwrite: bool = False, progress: bool = True) -> list[dict]:
    """Write nested subsets of ``inputs`` (files, directories, globs) under ``out``; returns their manifests.

    ``sizes``: a ladder (``[4000, 8000, None]`` / ``"4k,8k,all"``); ``bands``: difficulty bands
    (``"low=1-3,medium=4-6,high=7-9"``), each cut to ``sizes`` when both are given; ``prompts`` + ``pairs``:
    N prompts then up to M records among them (``pairs`` may be a ladder too). A finite size larger than
    what is available is an error unless ``allow_short`` (then the subset holds what there is and its
    manifest says ``short: true``). A rerun with the same inputs, rule and seed returns the existing
    manifests without writing (``overwrite`` redoes it)."""

    from tqdm.auto import tqdm

    paths = expand_paths(inputs)
    out = Path(out)
    size_list = parse_sizes(sizes) if sizes is not None else None
    band_list = parse_bands(bands) if bands is not None else None
    if (prompts is None) != (pairs is None):
        raise ValueError("prompts and pairs go together: --prompts N --pairs M (N prompts, up to M records among them)")
    if prompts is not None and (size_list or band_list):
        raise ValueError("--prompts/--pairs is its own selection; run it separately from --sizes/--bands")
    if prompts is None and size_list is None and band_list is None:
        raise ValueError("say what to build: --sizes 4000,8000,all, --bands low=1-3,..., or --prompts N --pairs M")
    n_prompts = parse_size(prompts) if prompts is not None else None
    pair_list = parse_sizes(pairs if isinstance(pairs, (str, list)) else [pairs]) if pairs is not None else None
    if prompts is not None and n_prompts is None:
        raise ValueError("--prompts takes a number of prompts (e.g. 1300), not 'all'")

    # the subsets asked for
    specs: list[SubsetSpec] = []
    if n_prompts is not None:
        for m in pair_list:
            specs.append(SubsetSpec(f"prompts{size_label(n_prompts)}_pairs{size_label(m)}",
                                    {"kind": "prompts_pairs", "prompts": n_prompts, "pairs": m}, size=m))
    elif band_list is not None:
        for b in band_list:
            for s in (size_list or [None]):
                name = b.name if size_list is None else f"{b.name}_{size_label(s)}"
                specs.append(SubsetSpec(name, {"kind": "band", "band": b.name, "lo": b.lo, "hi": b.hi, "size": s},
                                        band=b, size=s))
    else:
        for s in size_list:
            specs.append(SubsetSpec(size_label(s), {"kind": "size", "size": s}, size=s))

    def bar(desc):
        return tqdm(desc=desc, unit="rec", disable=not progress, mininterval=1.0)

    # pass 1: counts and the smallest keys per group (band or all)
    per_file: Counter = Counter()
    groups = [b.name for b in band_list] if band_list else ["*"]
    finite = [s for s in (size_list or []) if s is not None]
    heaps = {g: Smallest(max(finite) if finite else None) for g in groups}
    prompt_heap = Smallest(n_prompts) if n_prompts else None
    prompt_member: dict[str, tuple] = {}
    unknown = 0
    with bar("subset: scan") as pb:
        for path, _, _, lt in iter_light(paths):
            per_file[path] += 1
            pb.update()
            key = (order_key(seed, lt.id), lt.pos)
            if prompt_heap is not None:
                pk = (order_key(seed, "prompt:" + lt.prompt_id),)
                if lt.prompt_id not in prompt_member:
                    prompt_member[lt.prompt_id] = pk  # distinct prompts (bounded below after the pass)
                    prompt_heap.add(pk)
                    if len(prompt_member) > 4 * n_prompts + 1024:   # keep the membership map bounded
                        cut = prompt_heap.threshold(n_prompts)
                        prompt_member = {p: k for p, k in prompt_member.items() if cut is None or k <= cut}
                continue
            if band_list:
                if lt.difficulty is None:
                    unknown += 1
                for b in band_list:
                    if b.contains(lt.difficulty):
                        heaps[b.name].add(key)
            else:
                heaps["*"].add(key)
    total = sum(per_file.values())
    sources = source_entries(paths, per_file)
    fp = _request_fingerprint(sources, [s.rule for s in specs], seed)
    if not overwrite:
        done = _up_to_date(out, fp)
        if done is not None:
            return done

    # thresholds (and, for prompts/pairs, the chosen records: pass 2)
    for sp in specs:
        if sp.rule["kind"] == "prompts_pairs":
            continue
        h = heaps[sp.band.name if sp.band else "*"]
        sp.available = h.n
        if sp.size is not None and sp.size > h.n and not allow_short:
            where = f"band {sp.band.name} ({sp.band.lo}-{sp.band.hi})" if sp.band else "the input"
            raise ValueError(f"subset {sp.name}: {where} has only {h.n} records, fewer than {sp.size}; "
                             "ask for fewer, or pass --allow-short to keep what there is")
        sp.threshold = h.threshold(sp.size)
    if n_prompts is not None:
        cut = prompt_heap.threshold(n_prompts)
        chosen = {p for p, k in prompt_member.items() if cut is None or k <= cut}
        if len(chosen) < n_prompts and not allow_short:
            raise ValueError(f"--prompts {n_prompts}: the input has only {len(chosen)} distinct prompts; "
                             "ask for fewer, or pass --allow-short")
        per_prompt: dict[str, list] = {p: [] for p in chosen}
        with bar("subset: responses of the chosen prompts") as pb:
            for _, _, _, lt in iter_light(paths):
                pb.update()
                if lt.prompt_id in per_prompt:
                    per_prompt[lt.prompt_id].append((order_key(seed, lt.id), lt.pos))
        ranked = []
        for p, ks in per_prompt.items():
            for r, k in enumerate(sorted(ks)):
                ranked.append((r, k, p))
        ranked.sort()
        for sp in specs:
            m = sp.size
            sp.available = len(ranked)
            if m is not None and m > len(ranked) and not allow_short:
                raise ValueError(f"subset {sp.name}: the {len(chosen)} chosen prompts have only {len(ranked)} records, "
                                 f"fewer than {m}; ask for fewer, or pass --allow-short")
            sp.pairs_selected = {k[1] for _, k, _ in (ranked if m is None else ranked[:m])}
            sp.rule = {**sp.rule, "prompts_chosen": len(chosen)}

    # pass 2 (3): write every subset at once, in input order
    out.mkdir(parents=True, exist_ok=True)
    accs = {sp.name: _Acc() for sp in specs}
    writers = {sp.name: SampleWriter(out / f"{sp.name}.jsonl") for sp in specs}
    try:
        with bar("subset: write") as pb:
            for path, line, d, lt in iter_light(paths):
                pb.update()
                key = (order_key(seed, lt.id), lt.pos)
                hit = [sp for sp in specs if sp.selects(lt, key)]
                if not hit:
                    continue
                rec = record_from_dict(d, file=path, line=line, root=os.path.dirname(os.path.abspath(path)))
                for sp in hit:
                    writers[sp.name].write(rec)
                    accs[sp.name].add(d, lt)
    except BaseException as e:
        for w in writers.values():
            w.__exit__(type(e), e, e.__traceback__)
        raise
    for w in writers.values():
        w.close()

    manifests = []
    for sp in specs:
        a = accs[sp.name]
        fname = f"{sp.name}.jsonl"
        short = sp.size is not None and a.records < sp.size
        man = {
            "name": sp.name, "path": fname, "sha256": sha256_file(out / fname), "records": a.records,
            "prompts": len(a.prompts), "seed": seed, "rule": sp.rule, "order": ORDER_RULE, "short": short,
            "available": sp.available, "sources": sources, "input_records": total,
            "counts": {"band": _sort_counts(a.band), "domain": _sort_counts(a.domain),
                       "source": _sort_counts(a.source), "answer_type": _sort_counts(a.answer_type)},
            "ids_sha256": a.ids.hexdigest(), "version": SUBSET_VERSION,
        }
        if band_list:
            man["unknown_difficulty_in_input"] = unknown
        write_json(out / f"{sp.name}.manifest.json", man)
        manifests.append(man)
    Marker(out / "subsets.json").mark(fp, outputs={m["name"]: out / m["path"] for m in manifests}, seed=seed,
                                      input_files=paths, subsets=manifests)
    return manifests
