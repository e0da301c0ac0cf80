"""The evaluation runner: generate with a backend, verify every response, write per-sample results as it goes.

    mmredstar eval run --model tiny_vlm --bench geoqa --data data/geoqa_test.jsonl --out runs/eval
    mmredstar eval run --model base=tiny_vlm,sft=runs/sft --bench geoqa --backend transformers --limit 50

Python::

    from mmredstar.evaluation import evaluate
    report = evaluate(["tiny_text"], ["aime24"], limit=4, out="runs/eval")

Backends are the curation teachers (``mmredstar.generate``): ``transformers`` (local, CPU-capable;
``--model`` is a preset or a saved model directory), ``openai`` (any OpenAI-compatible server; ``--model`` is
the served name, ``--backend-opt base_url=...``), ``vllm`` (offline engine, GPU), and ``scripted`` /
``replay`` for tests. Every response is scored by ``mmredstar.verify.verify_response`` (by the sample's
answer type); majority voting groups answers by ``mmredstar.verify.canonical_key``.

Output, per model and benchmark, under ``OUT/<model label>/<bench>/``:

- ``samples.jsonl``: one line per item as soon as its chunk is verified (appended, flushed and fsynced):
  ``id`` (the sample id = prompt id), ``orig_id`` (the dataset's own id), ``answer``, ``answer_type``,
  ``question`` (the prompt text sent), ``responses`` (each: ``text``, ``finish_reason``,
  ``completion_tokens``, ``chars``, ``extracted``, ``verdict``, ``reward``, ``reason``, ``key``),
  ``correct`` (how many responses are correct) and ``n``;
- ``run.json``: the settings that made them (model, backend, prompt, sampling); a rerun with the same
  settings skips every item already in ``samples.jsonl`` (a kill loses at most the chunk in flight; a torn
  last line is dropped), a rerun with other settings stops with a clear error unless ``overwrite``;
- ``result.json``: the metrics once every item is done.

Then ``OUT/report.json``, ``OUT/report.md`` and ``OUT/report.png`` (``mmredstar.evaluation.report``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import stages
from ..generate import SamplingParams, build_teacher
from ..io import write_json
from ..schema import ImageRef, Sample
from ..trackers import check_report_to, flatten, report_scalars
from ..verify import canonical_key, verification_mode, verify_response
from .metrics import aggregate
from .report import write_report
from .spec import BenchSpec, load_bench_samples, load_spec, render_prompt

RESULT_VERSION = 1


@dataclass
class ModelEntry:
    """One row of the report: a model (preset, saved directory, or served name) under a label."""

    model: str
    """Preset name, model directory, or the name an OpenAI-compatible server serves."""
    label: str = ""
    """Row label and output folder name (default: derived from ``model``)."""
    blank_images: bool = False
    """Replace every image by a white image of the same size (the ablation showing the picture matters)."""

    def __post_init__(self):
        if not self.label:
            self.label = default_label(self.model) + ("-blank" if self.blank_images else "")


def default_label(model: str) -> str:
    """A short label for a model path or preset.

    >>> default_label("runs/geoqa/sft/"), default_label("tiny_vlm"), default_label("Qwen/QwQ-32B")
    ('sft', 'tiny_vlm', 'QwQ-32B')
    """
    return Path(model.rstrip("/\\")).name or model


def parse_models(spec: str | Sequence[str | ModelEntry | dict]) -> list[ModelEntry]:
    """Model entries from ``"a,b"``, ``"label=path,..."``, or a list of strings / dicts / ``ModelEntry``.

    >>> [(m.label, m.model) for m in parse_models("base=tiny_vlm,runs/x/sft")]
    [('base', 'tiny_vlm'), ('sft', 'runs/x/sft')]
    """
    items = [x for x in spec.split(",") if x.strip()] if isinstance(spec, str) else list(spec)
    out: list[ModelEntry] = []
    for it in items:
        if isinstance(it, ModelEntry):
            out.append(it)
        elif isinstance(it, dict):
            out.append(ModelEntry(**it))
        else:
            it = it.strip()
            label, sep, model = it.partition("=")
            out.append(ModelEntry(model=model.strip(), label=label.strip()) if sep else ModelEntry(model=it))
    labels = [m.label for m in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ValueError(f"two models share the label(s) {dup}; name them: --model a=PATH1,b=PATH2")
    return out


def backend_spec(backend: str, model: str, options: dict | None = None) -> dict:
    """The teacher spec (``mmredstar.generate.build_teacher``) for a backend and model.

    >>> backend_spec("transformers", "tiny_vlm", {"batch_size": 8})
    {'kind': 'transformers', 'model': 'tiny_vlm', 'batch_size': 8}

    ``code_steps`` and ``ppm_search`` are the code-augmented step backends (``mmredstar.evaluation.search``).
    """
    return {"kind": SEARCH_BACKENDS.get(backend, backend), "model": model, **(options or {})}


SEARCH_BACKENDS = {"code_steps": "mmredstar.evaluation.search:CodeStepsTeacher",
                   "ppm_search": "mmredstar.evaluation.search:PPMSearchTeacher"}


# ----------------------------------------------------------------------------------------- images
def blank_images(sample: Sample, color=(255, 255, 255)) -> Sample:
    """A copy whose images are uniform ``color`` PNGs of the same sizes (embedded), same id."""
    from PIL import Image

    imgs = []
    for im in sample.images:
        size = im.load().size
        imgs.append(ImageRef.from_image(Image.new("RGB", size, color)))
    return dataclasses.replace(sample, images=imgs, meta={**sample.meta, "blank_images": True})


# ----------------------------------------------------------------------------------------- item files
def read_items(path: str | os.PathLike, *, repair: bool = True) -> dict[str, dict]:
    """The per-item records already in ``samples.jsonl`` (by id). A torn last line (a kill mid-write) is
    dropped and, with ``repair``, cut from the file so appends continue cleanly."""
    path = os.fspath(path)
    items: dict[str, dict] = {}
    if not os.path.exists(path):
        return items
    good_end = 0
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # no newline: an unfinished write
        line = data[pos:nl]
        try:
            rec = json.loads(line)
        except ValueError:
            break
        if isinstance(rec, dict) and "id" in rec:
            items[rec["id"]] = rec
        pos = good_end = nl + 1
    if repair and good_end < len(data):
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return items


def _append(path: str, records: Iterable[dict]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _model_stamp(model: str) -> str | None:
    """Sizes and mtimes of a model directory's files (a retrained checkpoint at the same path differs)."""
    p = Path(model)
    if not p.is_dir():
        return None
    files = [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in sorted(p.iterdir())
             if f.is_file() and f.suffix in (".safetensors", ".bin", ".pt", ".json")]
    return stages.fingerprint(files, 16)


def fingerprint(entry: ModelEntry, backend: dict, spec: BenchSpec) -> dict:
    """What determines the responses of one (model, benchmark) run (``run.json``)."""
    volatile = {"batch_size", "threads", "device", "concurrency", "timeout", "connect_timeout", "max_retries",
                "backoff", "backoff_max", "base_url", "api_key_env", "gpu_memory_utilization"}
    return {
        "version": RESULT_VERSION, "model": entry.model, "model_stamp": _model_stamp(entry.model),
        "blank_images": entry.blank_images,
        "backend": {k: v for k, v in backend.items() if k not in volatile},
        "bench": spec.name,
        **{k: getattr(spec, k) for k in ("prompt", "system", "n", "max_new_tokens", "temperature", "top_p", "seed",
                                        "verify")},
        "verification": verification_mode(spec.verify),      # stored verdicts were judged in this mode
    }


# ----------------------------------------------------------------------------------------- one run
def _item_record(sample: Sample, rendered: Sample, responses, spec: BenchSpec) -> dict:
    rs = []
    for r in responses:
        v = verify_response(sample, r.text, r.finish_reason, **spec.verify)
        key = canonical_key(sample, v.extracted) if v.extracted is not None else ""
        rs.append({"text": r.text, "finish_reason": r.finish_reason, "completion_tokens": r.completion_tokens,
                   "chars": len(r.text), "extracted": v.extracted, "verdict": v.verdict, "reward": v.reward,
                   "reason": v.reason, "key": key or None})
    return {"id": sample.id, "orig_id": (sample.meta or {}).get("orig_id"), "source": sample.source,
            "answer": sample.answer, "answer_type": sample.answer_type, "choices": sample.choices,
            "question": rendered.question, "prompt_tokens": responses[0].prompt_tokens if responses else None,
            "responses": rs, "correct": sum(r["verdict"] == "correct" for r in rs), "n": len(rs)}


def evaluate_samples(entry: ModelEntry, spec: BenchSpec, samples: Sequence[Sample], out_dir: str | os.PathLike, *,
                     teacher=None, backend: dict | None = None, chunk_size: int = 64, overwrite: bool = False,
                     progress: bool = True, data: str | None = None) -> dict:
    """Evaluate one model on one benchmark's ``samples`` into ``out_dir`` (resumable); returns ``result.json``.

    ``teacher``: a ready ``mmredstar.generate.Teacher`` (built from ``backend`` when omitted; the
    model is only loaded if some item still needs generating)."""
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    backend = backend or backend_spec("transformers", entry.model)
    fp = fingerprint(entry, backend, spec)
    run_path, items_path = out_dir / "run.json", out_dir / "samples.jsonl"
    marker = stages.Marker(run_path)   # the settings the per-item results in samples.jsonl belong to
    key = stages.fingerprint(fp)
    if run_path.exists():
        st = marker.read() or {}
        if st.get("fingerprint") != key:
            if not overwrite:
                old = st.get("settings", st)
                diff = sorted(k for k in set(old) | set(fp) if old.get(k) != fp.get(k))
                raise RuntimeError(f"{out_dir}: earlier results were made with other settings (differ in {diff}); "
                                   "pass --overwrite to discard them, or use another --out")
            for p in (items_path, out_dir / "result.json"):
                if p.exists():
                    p.unlink()
    elif overwrite and items_path.exists():
        items_path.unlink()
    marker.mark(key, settings=fp)
    done = read_items(items_path)
    t0 = time.time()
    todo = [s for s in samples if s.id not in done]
    generated = 0
    if todo:
        teacher = teacher or build_teacher(backend)
        params = SamplingParams(temperature=spec.temperature, top_p=spec.top_p, max_tokens=spec.max_new_tokens,
                                seed=spec.seed)
        bar = tqdm(total=len(samples), initial=len(samples) - len(todo), disable=not progress, unit="item",
                   desc=f"{entry.label}/{spec.name}")
        try:
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start:start + chunk_size]
                rendered = [render_prompt(s, spec) for s in chunk]
                if entry.blank_images:
                    rendered = [blank_images(s) if s.images else s for s in rendered]
                responses = teacher.generate(rendered, [spec.n] * len(rendered), params)
                recs = [_item_record(s, r, rs, spec) for s, r, rs in zip(chunk, rendered, responses, strict=True)]
                _append(str(items_path), recs)
                for r in recs:
                    done[r["id"]] = r
                generated += len(recs)
                bar.update(len(recs))
                if progress:
                    acc = sum(r["correct"] / max(1, r["n"]) for r in done.values()) / max(1, len(done))
                    bar.set_postfix(acc=f"{acc:.3f}")
        finally:
            bar.close()
    items = [done[s.id] for s in samples if s.id in done]
    res = aggregate(items, spec.metrics)
    gen_seconds = time.time() - t0
    result = {"model": entry.model, "label": entry.label, "blank_images": entry.blank_images, "bench": spec.name,
              "backend": backend.get("kind"), "data": data, "metrics": spec.metrics,
              "verification": verification_mode(spec.verify), **res,
              "generated_now": generated, "seconds_now": round(gen_seconds, 2),
              "items_per_s_now": round(generated / gen_seconds, 2) if generated and gen_seconds > 0 else None}
    write_json(out_dir / "result.json", result)
    return result


def evaluate(models: str | Sequence[str | ModelEntry | dict], benches: str | Sequence[str | BenchSpec], *,
             out: str | os.PathLike = "runs/eval", backend: str = "transformers", backend_options: dict | None = None,
             data: str | dict | None = None, samples: dict | None = None, n: int | None = None,
             limit: int | None = None, spec_overrides: dict | None = None, blank: bool = False,
             chunk_size: int | None = None, overwrite: bool = False, progress: bool = True,
             title: str | None = None, report_to: str | Sequence[str] | None = None) -> dict:
    """Evaluate every model on every benchmark; writes per-sample files and ``OUT/report.{json,md,png}``.

    models: ``"a,b"``, ``"label=path,..."`` or a list (strings, dicts, ``ModelEntry``); ``blank=True`` runs
        all of them with blank images.
    benches: names / paths of ``eval/*.yaml`` specs (``"aime24,math500"``) or ``BenchSpec`` objects.
    data: the source path for a single benchmark, or ``{bench: path}``; a path may also be a sample file.
    samples: ``{bench: [Sample, ...]}`` to evaluate given samples (no data loading).
    n / spec_overrides: override the spec's samples per prompt / any spec key (``{"max_new_tokens": 64}``).
    limit: the first N items of each benchmark.
    chunk_size: prompts generated and written together (default: 64, or the backend's ``batch_size`` if larger).
    report_to: trackers that get every result's metrics (``eval/<label>/<bench>/<metric>``), as a training
        run's ``train.report_to``: ``["tensorboard"]`` (event files under ``OUT/runs/``), ``["wandb"]``.
    Returns the report (what ``report.json`` holds)."""
    from ..generate import build_teacher

    report_to = check_report_to(report_to)           # before any model is loaded
    entries = parse_models(models)
    if blank:
        entries = [dataclasses.replace(e, blank_images=True, label=e.label + "-blank") for e in entries]
    bench_list = [b for b in benches.split(",") if b.strip()] if isinstance(benches, str) else list(benches)
    overrides = dict(spec_overrides or {})
    if n is not None:
        overrides["n"] = int(n)
    specs = [load_spec(b.strip() if isinstance(b, str) else b, overrides or None) for b in bench_list]
    if isinstance(data, (str, os.PathLike)):
        if len(specs) != 1:
            raise ValueError("--data names one source: use it with one --bench, or pass {bench: path} in Python")
        data = {specs[0].name: os.fspath(data)}
    data = data or {}
    loaded: dict[str, list[Sample]] = {}
    for spec in specs:
        if samples and spec.name in samples:
            ss = list(samples[spec.name])
            loaded[spec.name] = ss[:limit] if limit is not None else ss
        else:
            loaded[spec.name] = load_bench_samples(spec, data.get(spec.name), limit=limit)
    chunk_size = chunk_size or max(64, int((backend_options or {}).get("batch_size") or 0))
    results = []
    t0 = time.time()
    for entry in entries:
        bspec = backend_spec(backend, entry.model, backend_options)
        teacher = None
        for spec in specs:
            if teacher is None:
                teacher = build_teacher(bspec)  # lazy: the local backend loads the model on first generate
            r = evaluate_samples(entry, spec, loaded[spec.name], Path(out) / entry.label / spec.name,
                                 teacher=teacher, backend=bspec, chunk_size=chunk_size, overwrite=overwrite,
                                 progress=progress, data=spec.data_path(data.get(spec.name)))
            results.append(r)
        if teacher is not None:
            teacher.close()
    rep = write_report(out, results, title=title, seconds=time.time() - t0)
    if report_to:
        report_scalars(report_to, out, result_scalars(results), run_name=f"eval {Path(out).name}",
                       config={"models": [e.model for e in entries], "benches": [s.name for s in specs]})
    return rep


def result_scalars(results: Sequence[dict]) -> dict[str, float]:
    """Each result's numeric fields as ``eval/<label>/<bench>/<field>`` (what ``report_to`` gets).

    >>> result_scalars([{"label": "sft", "bench": "geoqa", "pass@1": 0.5, "n_items": 12, "model": "runs/sft"}])
    {'eval/sft/geoqa/pass@1': 0.5, 'eval/sft/geoqa/n_items': 12.0}
    """
    out: dict[str, float] = {}
    for r in results:
        out.update(flatten({k: v for k, v in r.items() if k not in ("label", "bench", "verification")}, f"eval/{r['label']}/{r['bench']}/"))
    return out


__all__ = ["evaluate", "evaluate_samples", "result_scalars", "ModelEntry", "parse_models", "backend_spec", "blank_images",
           "read_items", "fingerprint", "default_label"]
