"""Turn a public dataset's files into ``Sample`` records through its data card.

    mmredstar data convert --card mathvista --src ../shared/benchmarks/mathvista/testmini.json \\
        --out data/mathvista_testmini.jsonl --subset geometry

Python::

    from mmredstar.data import iter_card, convert
    for s in iter_card("aime24", "../shared/benchmarks/qwen2.5-math/aime24.jsonl"):
        print(s.meta["orig_id"], s.answer)
    report = convert("math500", "math500.jsonl", "out/math500.jsonl")

Conversion streams: rows are read, mapped, validated (``validate_record``) and written one at a
time. A row that cannot be converted is not silently dropped: it is counted by reason, reported
with its file, line (or row) and field, and written with its reason to ``OUT.convert/skipped.jsonl``;
``OUT.convert/report.json`` holds the counts. A rerun with the same card, sources and options
finds the finished output and does nothing (``overwrite=True`` redoes it).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..io import SampleWriter, atomic_write, write_json, write_parquet
from ..levels import map_difficulty
from ..schema import DataError, ImageRef, Message, Pair, Part, Response, Sample, validate_record
from ..stages import fingerprint, sha256_file
from ..verify.extract import last_boxed
from .cards import Card, load_card, resolve_hook
from .rows import RowContext, Skip, _jsonable
from .sources import HF_PREFIX, RawRow, iter_source, list_source_files, parse_hf
from .text import (
    format_template,
    get_path,
    render_choices,
    scalar_to_str,
    split_choices,
    strip_math_delims,
    the_answer_is,
)
from .where import Predicate, parse_where

log = logging.getLogger(__name__)

KNOWN_SPLITS = ("train", "test", "testmini", "validation", "val", "dev")
MAX_EXAMPLES = 20  # skipped rows kept in memory per report (all are written to skipped.jsonl)


@dataclass
class ConvertReport:
    """What a conversion did: rows read, samples written, rows filtered out, rows skipped (by reason)."""

    card: str
    src: str
    out: str | None = None
    rows: int = 0
    written: int = 0
    filtered: int = 0
    skipped: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    skip_examples: list[dict] = field(default_factory=list)
    warnings: Counter = field(default_factory=Counter)
    answer_types: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    up_to_date: bool = False
    signature: str | None = None
    duplicates: int = 0
    outputs: dict = field(default_factory=dict)
    """Each written file's ``[size, sha256]``: a rerun finds a truncated or edited output not up to date."""

    def add_skip(self, rec: dict) -> None:
        self.skipped += 1
        self.skip_reasons[f"{rec['field']}: {rec['reason']}"] += 1
        if len(self.skip_examples) < MAX_EXAMPLES:
            self.skip_examples.append({k: v for k, v in rec.items() if k != "row"})

    def to_dict(self) -> dict:
        return {
            "card": self.card, "src": self.src, "out": self.out, "rows": self.rows, "written": self.written,
            "filtered": self.filtered, "skipped": self.skipped, "duplicates": self.duplicates, "skip_reasons": dict(self.skip_reasons.most_common()),
            "skip_examples": self.skip_examples, "warnings": dict(self.warnings),
            "answer_types": dict(self.answer_types), "seconds": round(self.seconds, 3), "signature": self.signature,
            "outputs": self.outputs,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ConvertReport:
        r = cls(card=d["card"], src=d["src"], out=d.get("out"))
        for k in ("rows", "written", "filtered", "skipped", "duplicates", "seconds", "signature", "outputs"):
            setattr(r, k, d.get(k, getattr(r, k)))
        r.skip_reasons = Counter(d.get("skip_reasons") or {})
        r.skip_examples = list(d.get("skip_examples") or [])
        r.warnings = Counter(d.get("warnings") or {})
        r.answer_types = Counter(d.get("answer_types") or {})
        return r

    def summary(self) -> str:
        """A few lines for people."""
        lines = [f"{self.card}: {self.written} sample(s) written from {self.rows} row(s)"
                 + (f" to {self.out}" if self.out else "")
                 + (f"; {self.filtered} filtered out" if self.filtered else "")
                 + (f"; {self.skipped} SKIPPED" if self.skipped else "")]
        if self.answer_types:
            lines.append("  answer types: " + ", ".join(f"{k} {v}" for k, v in sorted(self.answer_types.items())))
        for reason, n in self.skip_reasons.most_common(10):
            lines.append(f"  skipped {n}: {reason}")
        for ex in self.skip_examples[:5]:
            lines.append(f"    e.g. {ex['where']}: field '{ex['field']}': {ex['reason']}" + (f" ({ex['hint']})" if ex.get("hint") else ""))
        if self.duplicates:
            lines.append(f"  {self.duplicates} row(s) repeat an earlier row's content (kept with ids '<id>-2'..., "
                         "meta.duplicate_of; --dedupe drops them)")
        for w, n in sorted(self.warnings.items()):
            hint = " (run `mmredstar data validate` on the output to list them)" if w == "missing image" else ""
            lines.append(f"  warning: {n} {w}(s){hint}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------- one row
def _col(card: Card, row: dict, fld: str) -> tuple[Any, str | None]:
    """(value, column used) of the first present, non-null candidate column for a card field."""
    spec = card.columns.get(fld)
    if spec is None:
        return None, None
    for c in [spec] if isinstance(spec, str) else spec:
        if "{" in c:
            v = format_template(c, row)
        else:
            v = get_path(row, c)
        if v is not None and not (isinstance(v, str) and not v.strip() and fld != "answer"):
            return v, c
    return None, (spec if isinstance(spec, str) else spec[0])


def _as_list(v: Any, fld: str) -> list | None:
    if v is None:
        return None
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except json.JSONDecodeError:
            raise Skip(fld, f"expected a list, got the string {v[:60]!r}") from None
    if isinstance(v, dict):  # {"A": "...", "B": "..."}
        v = [v[k] for k in sorted(v)]
    if hasattr(v, "tolist"):
        v = v.tolist()
    if not isinstance(v, (list, tuple)):
        raise Skip(fld, f"expected a list, got {type(v).__name__}")
    return [scalar_to_str(x) or "" for x in v]


def _text_parts(text: str, images: list[ImageRef]) -> list[Part]:
    """Image parts before the text (InternVL convention) unless the text places ``<image>`` inline."""
    if images and "<image>" in text:
        pieces = text.split("<image>")
        if len(pieces) - 1 != len(images):
            raise Skip("images", f"the text has {len(pieces) - 1} <image> placeholder(s) but the row has "
                                 f"{len(images)} image(s)", "make them match")
        parts: list[Part] = []
        for k, piece in enumerate(pieces):
            if piece.strip():
                parts.append(Part("text", text=piece.strip() if k in (0, len(pieces) - 1) else piece))
            if k < len(images):
                parts.append(Part("image", index=k))
        return parts
    return [Part("image", index=i) for i in range(len(images))] + [Part("text", text=text.replace("<image>", "").strip())]


def _infer_split(raw: RawRow) -> str | None:
    import re

    names = [p for p in re.split(r"[/\\]", raw.file)] + [os.path.basename(raw.root)]
    for name in reversed(names):
        tokens = re.split(r"[^A-Za-z]+", os.path.splitext(name)[0].lower())
        for t in tokens:
            if t in KNOWN_SPLITS:
                return {"val": "validation"}.get(t, t)
    return None


def build_sample(card: Card, raw: RawRow, ctx: RowContext) -> Sample:
    """Map one raw row to a ``Sample`` (raises ``Skip`` naming the field when it cannot)."""
    row = raw.data
    if not isinstance(row, dict):
        raise Skip("-", f"expected a record object, got {type(row).__name__}")
    hook = resolve_hook(card.adapter)
    if hook is not None:
        row = hook(dict(row), ctx)
        if not isinstance(row, dict):
            raise Skip("-", f"adapter returned {type(row).__name__}, not a row dict")

    # answer type and choices
    answer_type = row.get("_answer_type") or card.answer_type
    choices = row.get("_choices")
    if choices is None and "choices" in card.columns:
        choices = _as_list(_col(card, row, "choices")[0], "choices")

    # question
    question = row.get("_question")
    qcol = None
    if question is None and "_prompt" not in row:
        question, qcol = _col(card, row, "question")
        if question is None:
            cands = card.columns.get("question")
            raise Skip(str(qcol or "question"), "missing or empty problem text",
                       f"the card reads it from {cands!r}; present columns: {sorted(k for k in row if not k.startswith('_'))[:15]}")
        if not isinstance(question, str):
            raise Skip(str(qcol), f"expected text, got {type(question).__name__}")
    if answer_type == "choice" and not choices and question:
        stem, parsed = split_choices(question)
        if parsed:
            question, choices = stem, parsed

    # answer
    answer: Any = row.get("_answer")
    acol = "answer"
    if answer is None and "_answer" not in row:
        answer, acol = _col(card, row, "answer")
        acol = acol or "answer"
        if (answer is None or (isinstance(answer, str) and not answer.strip())) and card.answer_from:
            sol, scol = _col(card, row, "solution")
            answer = last_boxed(sol) if card.answer_from == "boxed" else the_answer_is(sol)
            acol = scol or "solution"
            if answer is None:
                what = "\\boxed{...}" if card.answer_from == "boxed" else "'The answer is: ...'"
                raise Skip(acol, f"no {what} answer in the solution", "the row has no checkable final answer")
    if answer_type == "choice":
        if not choices:
            raise Skip(str(card.columns.get("choices", "choices")), "a choice question without choices",
                       "give the choices column, or write 'Choices: A: .. B: ..' in the question")
        from .text import choice_letter

        letter = choice_letter(answer, choices, card.answer_format)
        if letter is None:
            raise Skip(acol, f"answer {answer!r} is not a letter, an index or the text of one of the "
                             f"{len(choices)} choices", f"answer_format is {card.answer_format!r}")
        answer = letter
    elif answer_type == "code":
        answer = scalar_to_str(answer) if answer is not None else None
    else:
        if isinstance(answer, (list, tuple)):
            answer = ", ".join(scalar_to_str(a) or "" for a in answer)
        answer = scalar_to_str(answer)
        if answer is not None:
            answer = strip_math_delims(answer)
        if answer is None or (answer == "" and answer_type != "text"):
            raise Skip(acol, "missing reference answer", f"answer_type {answer_type!r} needs one")

    # images and prompt
    images: list[ImageRef] = list(row.get("_images") or [])
    if not images and "images" in card.columns:
        v, _ = _col(card, row, "images")
        images = ctx.images_from_value(v, name=None)
    prompt: list[Message] | None = row.get("_prompt")
    if prompt is None:
        text = render_choices(question, choices) if (answer_type == "choice" and choices) else question
        prompt = []
        system, _ = _col(card, row, "system")
        if system:
            prompt.append(Message.make("system", str(system)))
        prompt.append(Message("user", _text_parts(text, images)))

    # ids, split, difficulty, meta
    orig = row.get("_id")
    if orig is None:
        orig, _ = _col(card, row, "id")
    if orig is None:
        orig = raw.key if raw.key is not None else (raw.file if raw.single else ctx.seq)
    split = row.get("_split") or ctx.options.get("_split") or None
    if split is None:
        split = _col(card, row, "split")[0] if "split" in card.columns else None
    split = split or card.split or _infer_split(raw)
    meta: dict[str, Any] = {"orig_id": scalar_to_str(orig)}
    items = card.meta.items() if isinstance(card.meta, dict) else ((c, c) for c in card.meta)
    for key, cs in items:
        for c in [cs] if isinstance(cs, str) else cs:
            v = get_path(row, c)
            if v is not None:
                meta[key] = _jsonable(v)
                break
    difficulty = row.get("_difficulty")
    if difficulty is None and card.difficulty:
        label = get_path(row, card.difficulty["column"])
        if label is not None:
            meta.setdefault(card.difficulty["column"].split(".")[-1], _jsonable(label))
            difficulty = map_difficulty(label, card.difficulty["map"])
    meta.update(row.get("_meta") or {})

    responses = list(row.get("_responses") or [])
    rcol = ctx.options.get("response") or card.columns.get("response")
    if rcol and not responses:
        rv = get_path(row, rcol) if isinstance(rcol, str) else _col(card, row, "response")[0]
        if isinstance(rv, str) and rv.strip():
            responses.append(Response(text=rv, finish_reason="stop", meta={"origin": "dataset", "column": str(rcol)}))

    prov = {"file": raw.file, raw.unit: raw.number, "card": card.name}
    if raw.key is not None:
        prov["key"] = raw.key
    kw = dict(prompt=prompt, answer_type=answer_type, answer=answer, images=images, choices=choices or None,
              tests=row.get("_tests"), source=card.name, split=split, difficulty=difficulty, meta=meta,
              provenance=prov, responses=responses)
    if row.get("_chosen") is not None or row.get("_rejected") is not None:
        s: Sample = Pair(**kw, chosen=row.get("_chosen"), rejected=row.get("_rejected"))
    else:
        s = Sample(**kw)
    problems = validate_record(s.to_dict())
    if problems:
        p = problems[0]
        raise Skip(p.field, "; ".join(q.message for q in problems), p.hint)
    post = resolve_hook(card.post)
    if post is not None:
        s = post(s, row)
    return s


def _predicates(card: Card, where: Iterable[str | Predicate] = (), subset: str | None = None) -> list[Predicate]:
    preds = [parse_where(w) if isinstance(w, str) else w for w in where]
    if subset:
        preds += [parse_where(e) for e in card.subset_filters(subset)]
    return preds


def iter_card(card: Card | str | dict, src: str | os.PathLike, *, split: str | None = None,
              where: Iterable[str | Predicate] = (), subset: str | None = None, limit: int | None = None,
              image_dir: str | None = None, image_out: str | None = None, options: dict | None = None,
              report: ConvertReport | None = None, strict: bool = False, on_skip=None,
              dedupe: bool = False, progress: bool = False) -> Iterator[Sample]:
    """Samples from ``src`` through ``card`` (a name, a card file, a dict or a ``Card``), streaming.

    split: recorded on every sample (else the card's, else guessed from the file name).
    where / subset: keep only samples passing these filters (``mmredstar.data.where``).
    limit: stop after this many samples.
    image_dir: directory relative image paths are resolved against (overrides the card's).
    image_out: where image arrays/bytes found in the data are written as files (else embedded).
    options: adapter options (override the card's ``options``).
    report: a ``ConvertReport`` to fill (counts, skips, warnings).
    strict: raise ``DataError`` at the first row that cannot be converted; otherwise such rows are
        counted in ``report`` (a warning is issued at the end when no report was given).
    on_skip: called with each skipped row's record {where, file, line/row, field, reason, hint, row}.
    dedupe: drop rows whose content (prompt, images, answer, ...) repeats an earlier row's (counted
        as filtered). Without it a repeat is kept with the id ``<content id>-2`` (``-3``, ...) and
        ``meta.duplicate_of``, so ids stay unique within one conversion (College Math has 10 such rows).
    """
    card = load_card(card)
    own_report = report is None
    report = report or ConvertReport(card=card.name, src=os.fspath(src))
    preds = _predicates(card, where, subset)
    opts = {**card.options, **(options or {})}
    if split:
        opts["_split"] = split
    base_dir = None
    if image_dir:
        base_dir = os.path.abspath(image_dir)
    elif card.image_dir:
        root, _ = list_source_files(src, card.files)
        base_dir = os.path.normpath(os.path.join(root, card.image_dir))
    trust = str(opts.get("trust_pickle", "")).lower() in ("1", "true", "yes")
    rows = iter_source(src, pattern=card.files, trust_pickle=trust)
    seen: dict[str, int] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=f"convert {card.name}", unit=" rows", mininterval=0.5)
    try:
        for seq, raw in enumerate(rows):
            report.rows += 1
            if bar is not None:
                bar.update(1)
            if raw.problem is not None:
                p = raw.problem
                rec = _skip_record(raw, p.field, p.message, p.hint)
                _on_skip(rec, report, strict, on_skip)
                continue
            ctx = RowContext(card=card, raw=raw, options=opts, image_dir=base_dir, image_out=image_out, seq=seq)
            try:
                s = build_sample(card, raw, ctx)
            except Skip as e:
                _on_skip(_skip_record(raw, e.field, e.message, e.hint), report, strict, on_skip)
                continue
            if preds and not all(p(s) for p in preds):
                report.filtered += 1
                continue
            n_seen = seen.get(s.id, 0)
            seen[s.id] = n_seen + 1
            if n_seen:
                report.duplicates += 1
                if dedupe:
                    report.filtered += 1
                    continue
                s.meta["duplicate_of"] = s.id
                s.id = f"{s.id}-{n_seen + 1}"
            report.written += 1
            report.warnings.update(ctx.warnings)
            report.answer_types[s.answer_type] += 1
            yield s
            if limit is not None and report.written >= limit:
                break
    finally:
        if bar is not None:
            bar.close()
    if own_report and report.skipped:
        warnings.warn(f"{card.name}: {report.skipped} row(s) of {src} could not be converted:\n{report.summary()}",
                      stacklevel=2)


def _skip_record(raw: RawRow, fld: str, reason: str, hint: str = "") -> dict:
    return {"where": raw.where(), "file": raw.file, raw.unit: raw.number, "key": raw.key, "field": fld,
            "reason": reason, "hint": hint, "row": _jsonable(raw.data)}


def _on_skip(rec: dict, report: ConvertReport, strict: bool, on_skip) -> None:
    if strict:
        from ..schema import Problem

        raise DataError(Problem(rec["file"], rec.get("line") or rec.get("row"), rec["field"], rec["reason"], rec["hint"]))
    report.add_skip(rec)
    if on_skip is not None:
        on_skip(rec)


# ----------------------------------------------------------------------------------------- to a file
def sidecar_dir(out: str | os.PathLike) -> str:
    """``OUT.convert/``: the report and the skipped rows of a conversion (not a record file)."""
    return os.fspath(out) + ".convert"


def image_out_dir(out: str | os.PathLike) -> str:
    """Where images found as arrays/bytes in the source are written: ``<out stem>_images/`` beside OUT."""
    out = os.fspath(out)
    base = os.path.basename(out)
    for suf in (".jsonl.gz", ".jsonl", ".parquet", ".json"):
        if base.endswith(suf):
            base = base[: -len(suf)]
            break
    return os.path.join(os.path.dirname(os.path.abspath(out)), base + "_images")


def _signature(card: Card, src, params: dict) -> str:
    """The card file's bytes, the source files' sizes and mtimes (raw releases are large: not re-hashed on
    every rerun) and the parameters, as a ``mmredstar.stages.fingerprint``."""
    root, files = list_source_files(src, card.files)
    if card.path and os.path.exists(card.path):
        card_id = sha256_file(card.path)
    else:
        card_id = repr(sorted((k, repr(v)) for k, v in card.__dict__.items()))
    stats = []
    for f in files:
        if f.startswith(HF_PREFIX):
            stats.append([f])
            local = parse_hf(f)[0]
            f = local if os.path.exists(local) else None
        for g in ([] if f is None else _files_under(f)):
            st = os.stat(g)
            stats.append([os.path.abspath(g), st.st_size, st.st_mtime_ns])
    return fingerprint({"card": card_id, "files": stats, "params": params}, 20)


def _files_under(path: str) -> list[str]:
    """A file, or every file under a directory (a ``save_to_disk`` directory, a local ``hf:`` dataset)."""
    if not os.path.isdir(path):
        return [path]
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)


def convert(card: Card | str | dict, src: str | os.PathLike, out: str | os.PathLike, *, split: str | None = None,
            where: Iterable[str] = (), subset: str | None = None, limit: int | None = None,
            image_dir: str | None = None, options: dict | None = None, shard_size: int | None = None,
            dedupe: bool = False, overwrite: bool = False, progress: bool = True) -> ConvertReport:
    """Convert ``src`` into the sample file ``out`` (``.jsonl``, ``.jsonl.gz``, ``.parquet``, or a shard
    prefix with ``shard_size``); returns the ``ConvertReport`` (also written to ``OUT.convert/report.json``).

    Rows that cannot be converted are listed in ``OUT.convert/skipped.jsonl`` with file, line/row,
    field and reason. A finished output with the same card, sources and parameters is not redone
    unless ``overwrite``."""
    card = load_card(card)
    out = os.fspath(out)
    side = sidecar_dir(out)
    params = {"split": split, "where": list(where), "subset": subset, "limit": limit, "image_dir": image_dir,
              "options": options or {}, "shard_size": shard_size, "dedupe": dedupe, "out": os.path.abspath(out)}
    _check_out_not_source(card, src, out)
    sig = _signature(card, src, params)
    report_path = os.path.join(side, "report.json")
    _clean_temp(out, side)
    done = os.path.exists(out) if shard_size is None else os.path.exists(report_path)
    if not overwrite and done and os.path.exists(report_path):
        try:
            with open(report_path, encoding="utf-8") as f:
                old = json.load(f)
            if old.get("signature") == sig and _outputs_intact(old.get("outputs")):
                r = ConvertReport.from_dict(old)
                r.up_to_date = True
                return r
        except (OSError, json.JSONDecodeError):
            pass
    report = ConvertReport(card=card.name, src=os.fspath(src), out=out, signature=sig)
    t0 = time.time()
    os.makedirs(side, exist_ok=True)
    with atomic_write(os.path.join(side, "skipped.jsonl")) as skipped_f:
        def on_skip(rec):
            skipped_f.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")

        samples = iter_card(card, src, split=split, where=where, subset=subset, limit=limit, image_dir=image_dir,
                            image_out=image_out_dir(out), options=options, report=report, on_skip=on_skip,
                            dedupe=dedupe, progress=progress)
        if out.endswith(".parquet"):
            write_parquet(out, samples)
        else:
            with SampleWriter(out, shard_size=shard_size) as w:
                w.write_all(samples)
    report.seconds = time.time() - t0
    written = [out] if shard_size is None else sorted(glob.glob(glob.escape(out) + "-[0-9][0-9][0-9][0-9][0-9].jsonl"))
    report.outputs = {os.path.abspath(p): [os.path.getsize(p), sha256_file(p)] for p in written if os.path.exists(p)}
    write_json(report_path, report.to_dict())
    return report


def _check_out_not_source(card: Card, src, out: str) -> None:
    """``--out`` must not be (one of) the source file(s): the conversion would replace the raw data."""
    target = os.path.realpath(out)
    try:
        _, files = list_source_files(src, card.files)
    except (OSError, ValueError):
        files = []
    if target in {os.path.realpath(f) for f in [os.fspath(src), *files] if not str(f).startswith(HF_PREFIX)}:
        raise ValueError(f"--out {out} is the source being converted; write the samples to another file "
                         "(e.g. NAME.samples.jsonl) so the raw data stays as it is")


def _clean_temp(out: str, side: str) -> int:
    """Remove the temp files a killed conversion of ``out`` left behind (``.NAME*.tmp`` beside it and in its sidecar)."""
    d, base = os.path.dirname(os.path.abspath(out)), os.path.basename(out)
    stale = glob.glob(os.path.join(glob.escape(d), "." + glob.escape(base) + "*.tmp"))
    stale += glob.glob(os.path.join(glob.escape(side), ".*.tmp"))
    for p in stale:
        try:
            os.unlink(p)
        except OSError:
            continue
    if stale:
        log.info("removed %d temp file(s) of an earlier, interrupted conversion of %s", len(stale), out)
    return len(stale)


def _outputs_intact(outputs: dict | None) -> bool:
    """Whether every recorded output still has its size and sha256 (a report without them is not trusted)."""
    if not outputs:
        return False
    for p, (size, sha) in outputs.items():
        try:
            if os.path.getsize(p) != size or sha256_file(p) != sha:
                return False
        except OSError:
            return False
    return True
