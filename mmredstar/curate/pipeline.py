"""The curation pipeline: samples -> decontaminate -> difficulty -> range -> teacher -> filters -> verify -> select.

    mmredstar curate configs/curate/geoqa_fixture.yaml            # resumes by default
    mmredstar curate configs/curate/geoqa_fixture.yaml --fresh    # start over

Python::

    from mmredstar.curate import run
    result = run("configs/curate/geoqa_fixture.yaml", ["out=runs/geoqa"])
    print(result.report["counts"])

How it streams and resumes:

- Steps are generators over ``Sample`` records; inputs are read lazily and grouped into *work units*
  of ``unit_size`` prompts. Nothing holds all samples: at most ``2 * workers + 1`` units are in memory.
- Each unit's model work is cached under ``OUT/units/`` in files named by a content hash:
  ``difficulty/<key>.jsonl`` (model-based difficulty sources), ``teacher/<key>.jsonl`` (the prompts with
  their teacher responses: key = sample ids and their n, the teacher's fingerprint, the sampling
  parameters), ``judged/<key>.jsonl`` (filter and verifier results: key = teacher key, filters, verify
  options). Each file is written atomically (temp file, fsync, rename) when its unit is done, so a
  kill loses at most the units in flight, and a rerun finds every finished unit and queries nothing
  again. Changing the filters re-judges without re-querying the teacher.
- Selection happens per prompt as soon as its responses are judged; outputs are streamed into
  ``sft.jsonl``, ``dpo.jsonl``, ``rl.jsonl``, ``rejected.jsonl`` and ``decontaminated.jsonl``, which
  appear atomically at the end of the run. Because every unit is deterministic given its key, a resumed
  run writes the same files as an uninterrupted one. ``report.{json,md}`` and plots follow;
  ``runs.jsonl`` logs each run (units queried vs cached, teacher counters, timing); ``state.json``
  marks a finished run so an identical rerun returns at once.
- One run per output directory at a time (a lock file); stale temp files of a killed run are removed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..data.inputs import InputSpec, input_files, input_name, iter_input, iter_inputs
from ..difficulty.sources import build_source
from ..generate import Teacher, build_teacher
from ..io import (
    SampleWriter,
    count_records,
    dir_lock,
    expand_paths,
    iter_raw_records,
    read_jsonl,
    read_samples,
    write_jsonl,
)
from ..levels import in_range, parse_schedule, samples_for
from ..schema import DataError, Response, Sample, unreadable_image
from ..stages import Marker, asset_sha256, fingerprint
from ..trackers import flatten, report_scalars
from ..verify import verify_many
from ..verify.filters import run_filters
from .config import CurateConfig, load_config
from .decontaminate import NgramIndex, build_index, decontaminate
from .report import Report
from .select import dropped, pair_dpo, response_record, rl_prompt, select_sft

logger = logging.getLogger(__name__)

JUDGE_VERSION = 2   # 2: math judged in the strict mode by default (verify.math MATH_MODES)
OUTPUTS = ("sft.jsonl", "dpo.jsonl", "rl.jsonl", "rejected.jsonl", "decontaminated.jsonl", "report.json",
           "report.md", "funnel.png", "pass_rate_by_difficulty.png", "lengths.png", "state.json")


def key_of(obj) -> str:
    """A content hash of a JSON-able object (the name of a work unit's file).

    >>> key_of({"a": 1, "b": [2]}) == key_of({"b": [2], "a": 1})
    True
    """
    return fingerprint(obj, 24)


@dataclass
class Unit:
    """One work unit: a chunk of prompts on their way through the pipeline."""

    index: int
    samples: list[Sample]
    n_input: int = 0
    out_of_range: int = 0
    teacher_key: str = ""
    teacher_cached: bool = False


@dataclass
class CurateResult:
    """What ``run`` returns: the output directory, the report dict and this run's log line."""

    out: str
    report: dict
    run: dict
    files: dict[str, str] = field(default_factory=dict)


def _count_inputs(specs: list[InputSpec]) -> int | None:
    total = 0
    for spec in specs:
        if spec.path is None:
            return None
        n = count_records(spec.path)
        total += min(n, spec.limit) if spec.limit is not None else n
    return total


def chunked(it: Iterable[Sample], size: int) -> Iterator[list[Sample]]:
    """Lists of ``size`` items (the last may be shorter).

    >>> [len(c) for c in chunked(range(7), 3)]
    [3, 3, 1]
    """
    it = iter(it)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def ordered_map(fn: Callable, items: Iterable, workers: int) -> Iterator:
    """``map(fn, items)`` with up to ``workers`` calls at once, results in input order, a bounded window."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="curate") as ex:
        window: deque = deque()
        try:
            for x in items:
                window.append(ex.submit(fn, x))
                if len(window) >= 2 * workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for f in window:
                f.cancel()


# ----------------------------------------------------------------------------------------- judging
def judge_sample(s: Sample, filters, verify_opts: dict) -> None:
    """Run the rule filters, then the verifier, on each response of ``s`` (in place)."""
    judge_samples([s], filters, verify_opts)


def judge_samples(samples: list[Sample], filters, verify_opts: dict, workers: int = 0) -> None:
    """Rule filters, then the verifier, on every response (in place).

    A response a filter drops gets ``meta.stage = "filter"`` and ``reason = "filter: <name>: <why>"`` and is
    not verified; the others get ``verdict``, ``reward``, ``extracted``, ``reason`` from
    ``mmredstar.verify`` (``verify_many``: ``workers`` > 1 verifies in a process pool)."""
    todo = []
    for s in samples:
        for r in s.responses:
            if filters:
                keep, reason = run_filters(r, s, filters)
                if not keep:
                    r.verdict = r.reward = r.extracted = None
                    r.reason = f"filter: {reason}"
                    r.meta["stage"] = "filter"
                    continue
            r.meta.pop("stage", None)
            todo.append((s, r))
    verdicts = verify_many(((s, r.text, r.finish_reason) for s, r in todo), workers=workers, **verify_opts)
    for (_, r), v in zip(todo, verdicts, strict=True):
        v.apply(r)


def _judgment(r: Response) -> list:
    return [r.verdict, r.reward, r.extracted, r.reason, (r.meta or {}).get("stage") == "filter"]


def _apply_judgment(r: Response, j: list) -> None:
    r.verdict, r.reward, r.extracted, r.reason, filtered = j
    if filtered:
        r.meta["stage"] = "filter"
    else:
        r.meta.pop("stage", None)


# ----------------------------------------------------------------------------------------- the run
def _clean_temp(out: Path) -> int:
    n = 0
    for p in itertools.chain(out.glob(".*.tmp"), out.glob("units/*/.*.tmp")):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n


def _fresh(out: Path) -> None:
    shutil.rmtree(out / "units", ignore_errors=True)
    for name in OUTPUTS:
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()


class Pipeline:
    """One curation run over a config (see the module docstring); ``run()`` does it all."""

    def __init__(self, cfg: CurateConfig, *, teacher: Teacher | None = None, progress: bool | None = None,
                 log: Callable[[str], None] | None = None):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.params = cfg.sampling
        self.teacher = teacher or build_teacher(cfg.teacher)
        self.source = build_source(cfg.difficulty.source, cfg.difficulty.params)
        self.bands = parse_schedule(cfg.schedule)
        self.progress = cfg.progress if progress is None else progress
        self.log = log or logger.info
        self.stats = {"units": 0, "teacher_queried": 0, "teacher_cached": 0, "judged_cached": 0,
                      "difficulty_queried": 0, "difficulty_cached": 0}
        self._stats_lock = threading.Lock()
        self.teacher_fp = self.teacher.fingerprint()
        self.source_fp = self.source.fingerprint()
        self.judge_fp = {"filters": cfg.filters, "verify": cfg.verify, "version": JUDGE_VERSION}
        self.unit_filter: Callable[[int], bool] | None = None
        """Run only the work units whose index it accepts (``curate --shard``; see ``curate.shard``)."""

    def _bump(self, k: str) -> None:
        with self._stats_lock:
            self.stats[k] += 1

    def _unit_path(self, stage: str, key: str) -> Path:
        return self.out / "units" / stage / f"{key}.jsonl"

    # -- stage 1 (worker thread): difficulty, range, teacher --------------------------------------
    def _difficulty(self, samples: list[Sample]) -> None:
        d_cfg = self.cfg.difficulty
        if self.source.cached:
            path = self._unit_path("difficulty", key_of({"ids": [s.id for s in samples], "source": self.source_fp}))
            res = None
            if path.exists():
                rows = list(read_jsonl(path))
                if [r["id"] for r in rows] == [s.id for s in samples]:
                    res = [(r["difficulty"], r["meta"]) for r in rows]
                    self._bump("difficulty_cached")
            if res is None:
                res = self.source.score(samples)
                write_jsonl(path, ({"id": s.id, "difficulty": d, "meta": m} for s, (d, m) in zip(samples, res, strict=True)))
                self._bump("difficulty_queried")
        else:
            res = self.source.score(samples)
        for s, (d, m) in zip(samples, res, strict=True):
            if s.difficulty is not None and d != s.difficulty:
                s.meta.setdefault("difficulty_label", s.difficulty)
            s.meta.update(m)
            s.difficulty = d if d is not None else (d_cfg.default if d_cfg.default is not None else None)

    def stage_teacher(self, unit: Unit) -> Unit:
        self._difficulty(unit.samples)
        d_cfg = self.cfg.difficulty
        kept = [s for s in unit.samples if in_range(s.difficulty, d_cfg.range, d_cfg.keep_unknown)]
        unit.out_of_range = len(unit.samples) - len(kept)
        ns = [samples_for(s.difficulty, self.bands, self.cfg.default_n) for s in kept]
        key = key_of({"items": [[s.id, k] for s, k in zip(kept, ns, strict=True)], "teacher": self.teacher_fp,
                      "params": self.params.to_dict()})
        unit.teacher_key, unit.samples = key, kept
        path = self._unit_path("teacher", key)
        if path.exists():
            try:
                cached = list(read_samples(path))
            except DataError as e:
                self.log(f"warning: unreadable unit {path} ({e}); querying it again")
                cached = None
            if cached is not None and [c.id for c in cached] == [s.id for s in kept]:
                for s, c in zip(kept, cached, strict=True):
                    s.responses = c.responses
                unit.teacher_cached = True
                self._bump("teacher_cached")
                return unit
        todo = [i for i, k in enumerate(ns) if k > 0]
        outs = self.teacher.generate([kept[i] for i in todo], [ns[i] for i in todo], self.params) if todo else []
        if len(outs) != len(todo):
            raise RuntimeError(f"teacher {self.teacher.kind} returned {len(outs)} results for {len(todo)} prompts")
        for s in kept:
            s.responses = []
        for i, rs in zip(todo, outs, strict=True):
            kept[i].responses = list(rs)
        with SampleWriter(path) as w:
            for s in kept:
                w.write(s)
        self._bump("teacher_queried")
        return unit

    # -- stage 2 (main thread): filters + verify ----------------------------------------------------
    def stage_judge(self, unit: Unit) -> Unit:
        path = self._unit_path("judged", key_of({"teacher": unit.teacher_key, "judge": self.judge_fp}))
        if path.exists():
            rows = list(read_jsonl(path))
            if [r["id"] for r in rows] == [s.id for s in unit.samples] and all(
                    len(r["j"]) == len(s.responses) for r, s in zip(rows, unit.samples, strict=True)):
                for r, s in zip(rows, unit.samples, strict=True):
                    for resp, j in zip(s.responses, r["j"], strict=True):
                        _apply_judgment(resp, j)
                self._bump("judged_cached")
                return unit
        judge_samples(unit.samples, self.cfg.filters, self.cfg.verify, self.cfg.verify_workers)
        write_jsonl(path, ({"id": s.id, "j": [_judgment(r) for r in s.responses]} for s in unit.samples))
        return unit

    # -- the whole run --------------------------------------------------------------------------------
    def _benchmarks(self) -> NgramIndex | None:
        d = self.cfg.decontaminate
        if not d.benchmarks:
            return None
        ix = build_index(((input_name(b), iter_input(b)) for b in d.benchmarks), n=d.ngram, min_words=d.min_words)
        self.log(f"decontamination: {ix.questions} benchmark questions, {len(ix)} {d.ngram}-grams indexed"
                 + (f" ({ix.ignored_short} too short to use)" if ix.ignored_short else ""))
        return ix

    def run(self, *, fresh: bool = False) -> CurateResult:
        cfg, out = self.cfg, self.out
        out.mkdir(parents=True, exist_ok=True)
        with dir_lock(out, "curate", "wait for it or choose another 'out'"):
            if fresh:
                _fresh(out)
            _clean_temp(out)
            conf = _jsonable(cfg.to_dict())
            # the report's config says what determines the data, not how or where the run went
            for k in ("out", "workers", "progress", "verify_workers", "report_to"):
                conf.pop(k)
            conf["teacher"] = _jsonable(self.teacher_fp)
            conf["difficulty"]["params"] = _jsonable(self.source_fp)
            state_key = key_of({"config": conf, "teacher": self.teacher_fp, "source": self.source_fp,
                                "cards": [asset_sha256("data_cards", s.card) for s in cfg.inputs + cfg.decontaminate.benchmarks
                                          if isinstance(s.card, str)]})
            inputs = [p for s in cfg.inputs + cfg.decontaminate.benchmarks for p in input_files(s)]
            marker = Marker(out / "state.json")
            st = None if fresh else marker.check(state_key, inputs)
            if st is not None:
                self.log(f"{out}: already complete for this config and these inputs (use --fresh to redo)")
                report = json.loads((out / "report.json").read_text())
                self._report_to(report, {})
                return CurateResult(str(out), report, {"status": "up to date"}, dict(st["outputs"]))
            t0 = time.time()
            try:
                result = self._run(out, conf)
            except BaseException as e:
                self._log_run({"status": "failed", "error": f"{type(e).__name__}: {e}", "seconds": round(time.time() - t0, 2)})
                raise
            finally:
                self.teacher.close()
            result.run["seconds"] = round(time.time() - t0, 2)
            self._log_run(result.run)
            result.run["units"] = dict(self.stats)
            marker.mark(state_key, inputs, {f: out / f for f in sorted(result.files)})
            self._report_to(result.report, result.run)
            return result

    def _report_to(self, report: dict, run: dict) -> None:
        """The counters to the trackers of ``report_to`` (once the outputs are final)."""
        if not self.cfg.report_to:
            return
        keys = ("counts", "pass_rate", "prompts_without_responses", "verdicts", "drop_reasons", "finish_reasons",
                "decontamination")
        scalars = flatten({k: report[k] for k in keys if k in report}, "curate/")
        scalars.update(flatten({"units": run.get("units", {}), "seconds": run.get("seconds")}, "curate/"))
        report_scalars(self.cfg.report_to, self.out, scalars, run_name=f"curate {self.out.name}",
                       config=report.get("config"))

    def _log_run(self, d: dict) -> None:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **d, "units": dict(self.stats),
                "teacher": self.teacher.stats(), "difficulty_source": self.source.stats()}
        with open(self.out / "runs.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")

    def _run(self, out: Path, conf: dict) -> CurateResult:
        cfg = self.cfg
        rep = Report()
        index = self._benchmarks()
        sel = cfg.select
        total = _count_inputs(cfg.inputs) if self.progress else None
        if total is not None and cfg.limit is not None:
            total = min(total, cfg.limit)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc="curate", unit=" prompt", dynamic_ncols=True, mininterval=0.5)
        files = {}
        with contextlib.ExitStack() as stack:
            W = {name: stack.enter_context(SampleWriter(out / f"{name}.jsonl"))
                 for name in ("sft", "dpo", "rl", "rejected", "decontaminated")}
            state = {"input": 0}

            def counted(it):
                for s in it:
                    state["input"] += 1
                    yield s
                if rep.input_problems:
                    self.log(f"curate: left out {dict(rep.input_problems)} input(s) (report.json input_problems): "
                             + "; ".join(rep.input_examples[:3]))

            def removed(s, hit):
                rep.counts["decontaminated"] += 1
                rep.decontamination[hit[0]] += 1
                W["decontaminated"].write(s)

            stream = decontaminate(counted(checked_inputs(cfg.inputs, rep)), index, removed)
            if cfg.limit is not None:
                stream = itertools.islice(stream, cfg.limit)
            units = (Unit(i, chunk, n_input=len(chunk)) for i, chunk in enumerate(chunked(stream, cfg.unit_size))
                     if self.unit_filter is None or self.unit_filter(i))
            for unit in ordered_map(self.stage_teacher, units, cfg.workers):
                self.stage_judge(unit)
                self.stats["units"] += 1
                rep.counts["out_of_range"] += unit.out_of_range
                for s in unit.samples:
                    kept, drop = select_sft(s, sel.sft)
                    if sel.sft.enabled:
                        for i in kept:
                            W["sft"].write(response_record(s, i, s.responses[i]))
                    pairs = pair_dpo(s, sel.dpo) if sel.dpo.enabled else []
                    for p in pairs:
                        W["dpo"].write(p)
                    rl = rl_prompt(s, sel.rl) if sel.rl.enabled else None
                    if rl is not None:
                        W["rl"].write(rl)
                    rej = dropped(s, kept, drop)
                    for i, r in rej:
                        W["rejected"].write(response_record(s, i, r))
                    rep.add_prompt(s, sft=len(kept) if sel.sft.enabled else 0, pairs=len(pairs), rl=rl is not None,
                                   rejected=rej)
                if bar is not None:
                    bar.update(unit.n_input)
                    bar.set_postfix(sft=rep.counts["sft"], dpo=rep.counts["dpo_pairs"], rl=rep.counts["rl_prompts"],
                                    cached=self.stats["teacher_cached"], refresh=False)
            rep.counts["input"] = state["input"] + sum(rep.input_problems.values())  # left-out inputs were read too
            for name in W:
                files[f"{name}.jsonl"] = str(out / f"{name}.jsonl")
        if bar is not None:
            bar.close()
        report = rep.write(str(out), config=conf, plots=cfg.report.plots)
        for f in ["report.json", "report.md", *report.get("plots", [])]:
            files[f] = str(out / f)
        run = {"status": "complete", "prompts": rep.counts["prompts"], "responses": rep.counts["responses"]}
        return CurateResult(str(out), report, run, files)


def _located(spec: InputSpec) -> Iterator[tuple[str, Sample]]:
    """``(file:line or input record, sample)`` of one input."""
    if spec.path is None:
        name = input_name(spec)
        for n, s in enumerate(iter_input(spec), 1):
            yield f"input {name} record {n}", s
        return
    left = spec.limit
    for f in expand_paths(spec.path):
        n = 0
        for (_, line, _, _), s in zip(iter_raw_records(f), read_samples(f), strict=False):
            if left is not None:
                if left <= 0:
                    return
                left -= 1
            n += 1
            yield f"{f}:{line}", s
        if n == 0:
            logger.warning("curate: input %s holds no records (an empty file?)", f)


class _SeenIds:
    """Which sample ids came before, at 8 bytes an id (a 64-bit hash in a sorted numpy array plus a small
    buffer), so that 200k-prompt runs stay within the pipeline's memory bound."""

    def __init__(self, buffer: int = 4096):
        import numpy as np

        self._np = np
        self.sorted = np.empty(0, dtype=np.uint64)
        self.recent: set[int] = set()
        self.buffer = buffer

    def add(self, key: str) -> bool:
        """Record ``key``; False when it was seen before."""
        import hashlib

        h = int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
        if h in self.recent:
            return False
        i = int(self._np.searchsorted(self.sorted, h))
        if i < len(self.sorted) and int(self.sorted[i]) == h:
            return False
        self.recent.add(h)
        if len(self.recent) >= self.buffer:
            new = self._np.fromiter(self.recent, dtype=self._np.uint64, count=len(self.recent))
            self.sorted = self._np.union1d(self.sorted, new)
            self.recent.clear()
        return True


def checked_inputs(specs: list[InputSpec], rep: Report) -> Iterator[Sample]:
    """The inputs' samples, less those whose id was seen before (the first is kept) and those with a missing or
    unreadable image; each left out is counted in the report with its file and line."""
    seen = _SeenIds()
    for spec in specs:
        for where, s in _located(spec):
            if not seen.add(s.id):
                rep.add_input_problem("duplicate_ids", f"{where}: id {s.id!r} was given before in the inputs; "
                                      "the first is kept (give each sample its own id)")
                continue
            bad = next((m for m in map(unreadable_image, s.images) if m), None)
            if bad:
                rep.add_input_problem("bad_images", f"{where}: field 'images': {bad}; the sample is left out")
                continue
            yield s


def _jsonable(x):
    return json.loads(json.dumps(x, default=str))


def run(config, overrides: list[str] | dict | None = None, *, fresh: bool = False, teacher: Teacher | None = None,
        progress: bool | None = None) -> CurateResult:
    """Run curation from a config (YAML path, name under ``configs/``, dict or ``CurateConfig``).

    ``overrides``: dotted ``key=value`` strings or a dict (``{"out": "runs/x", "workers": 4}``).
    ``fresh``: delete this output directory's units and outputs first (default: resume).
    ``teacher``: a ready ``Teacher`` object instead of ``config.teacher`` (Python API only)."""
    cfg = load_config(config, overrides)
    return Pipeline(cfg, teacher=teacher, progress=progress).run(fresh=fresh)


__all__ = ["run", "Pipeline", "CurateResult", "Unit", "judge_sample", "iter_inputs", "iter_input", "chunked",
           "ordered_map", "key_of", "judge_samples"]
