"""The GeoQA pipeline's stages (prepare, curate, sft, dpo, eval), their markers, ``run_all`` and the summary table."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from pathlib import Path

from ...cpu import set_threads
from ...curate import run as curate_run
from ...data import ConvertReport, iter_card, load_card
from ...evaluation.metrics import paired_difference
from ...evaluation.runner import ModelEntry, evaluate, read_items
from ...evaluation.spec import load_spec, render_prompt
from ...io import read_samples, write_json, write_samples
from ...schema import Sample
from ...stages import Marker, asset_sha256, fingerprint
from ...training import run as train_run
from ...training.runner import read_metrics
from .config import (
    AFTER_SFT,
    PIPELINE_VERSION,
    STAGES,
    GeoQAConfig,
    PipelineError,
    TrainStage,
    _stage_dir,
    _train_overrides,
    control_data,
    curate_config,
)

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------- helpers
def digest(obj) -> str:
    """A short content hash of JSON-able data (``mmredstar.stages.fingerprint``, 16 characters).

    >>> digest({"a": 1}) == digest({"a": 1}), digest({"a": 1}) == digest({"a": 2})
    (True, False)
    """
    return fingerprint(obj, 16)


def _deps(cfg: GeoQAConfig, stage: str) -> list[str]:
    """The stages whose outputs ``stage`` reads."""
    if stage == "eval":
        return ["prepare"] + [s for s in ("sft",) + AFTER_SFT if s in cfg.eval.checkpoints + cfg.eval.blank_images]
    return {"prepare": [], "curate": ["prepare"], "sft": ["curate"]}.get(stage, ["curate", "sft"])


def stage_hash(cfg: GeoQAConfig, stage: str) -> str:
    """The fingerprint that marks ``stage`` finished: its own settings, the bytes of the asset files they
    name (data card, recipe, model preset, benchmark spec), and the hashes of the stages it reads."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; use one of {STAGES}")
    d = cfg.to_dict()
    if stage == "prepare":
        own = {"prepare": d["prepare"], "card_sha256": asset_sha256("data_cards", cfg.prepare.card)}
        if cfg.prepare.template:
            spec = load_spec(cfg.eval.bench, cfg.eval.spec_overrides() or None)
            own["template"] = {"bench": spec.name, "prompt": spec.prompt, "system": spec.system}
    elif stage == "curate":
        own = {"curate": d["curate"]}
    elif stage in ("sft",) + AFTER_SFT:
        own = {stage: d[stage], "recipe_sha256": asset_sha256("train", getattr(cfg, stage).recipe),
               # what the recipe gets (the control takes keys from the SFT and DPO stages); threads only change
               # the rounding, no reason to redo a stage
               "overrides": {k: v for k, v in _train_overrides(cfg, stage, Path("OUT")).items()
                             if k != "train.num_threads"}}
        if stage == "sft":
            own.update({"model": cfg.model, "seed": cfg.seed, "model_sha256": asset_sha256("models", cfg.model)})
    else:
        own = {"eval": d["eval"], "model": cfg.model, "seed": cfg.seed, "model_sha256": asset_sha256("models", cfg.model),
               "spec": load_spec(cfg.eval.bench, cfg.eval.spec_overrides() or None).to_dict()}
    return digest({"version": PIPELINE_VERSION, "stage": stage, "own": own,
                   "deps": {s: stage_hash(cfg, s) for s in _deps(cfg, stage)}})


def _marker(cfg: GeoQAConfig, stage: str) -> Marker:
    return Marker(_stage_dir(cfg, stage) / "stage.json")


def _stage_inputs(cfg: GeoQAConfig, stage: str) -> list[Path]:
    """What a stage read: the markers of the stages before it (each holds its outputs' sha256), so a stage
    redone upstream (or whose outputs changed) makes this one stale."""
    return [_stage_dir(cfg, s) / "stage.json" for s in _deps(cfg, stage)]


def stage_state(cfg: GeoQAConfig, stage: str) -> dict | None:
    """The stage's ``stage.json`` when the stage is finished for this config: same fingerprint (config and
    the files it names), same upstream markers, and its outputs there with their recorded sha256."""
    st = _marker(cfg, stage).check(stage_hash(cfg, stage), _stage_inputs(cfg, stage))
    # trained weights are too large to hash on every check: each must still be there with its recorded size
    if st is not None and any(not os.path.exists(p) or os.path.getsize(p) != n for p, n in st.get("weights", {}).items()):
        _log(f"{stage}: its model weights are missing or changed since it finished; the stage is redone")
        return None
    return st


def _weights(out: str | Path) -> dict[str, int]:
    """``{path: size}`` of the weight files of a model directory."""
    return {str(p): p.stat().st_size for pat in ("*.safetensors", "*.bin") for p in sorted(Path(out).glob(pat))}


def _finish_stage(cfg: GeoQAConfig, stage: str, outputs: dict, seconds: float, extra: dict | None = None) -> dict:
    return _marker(cfg, stage).mark(stage_hash(cfg, stage), _stage_inputs(cfg, stage), outputs, stage=stage,
                                    seconds=round(seconds, 2), **(extra or {}))


def _require(cfg: GeoQAConfig, stage: str, needed_by: str) -> dict:
    st = stage_state(cfg, stage)
    if st is None:
        cfgname = cfg.path or "CONFIG.yaml"
        raise PipelineError(f"stage '{needed_by}' needs stage '{stage}' finished for this config, and it is not "
                            f"(missing or made with other settings); run `mmredstar geoqa {stage} {cfgname}` "
                            f"or `mmredstar geoqa run {cfgname}` (with the same --out and --set options)")
    return st


def _log(msg: str) -> None:
    log.info(f"[geoqa] {msg}")


def _set_threads(cfg: GeoQAConfig) -> None:
    set_threads(cfg.threads, what="threads")


# ----------------------------------------------------------------------------------------- stages
def run_prepare(cfg: GeoQAConfig) -> dict:
    """Generate or read the GeoQA-format data; write ``prepare/train.jsonl`` and ``prepare/test.jsonl``."""
    t0 = time.time()
    pr = cfg.prepare
    d = _stage_dir(cfg, "prepare")
    d.mkdir(parents=True, exist_ok=True)
    if pr.generate is not None:
        from ...synth import generator

        g = pr.generate
        files = generator(g.kind)(d / "raw", g.splits, seed=g.seed, **g.options)
        src, test_src = files["train"], files["test"]
    else:
        src, test_src = pr.src, pr.test_src
    card = load_card(pr.card)
    if pr.meta:
        base_meta = card.meta if isinstance(card.meta, dict) else {c: c for c in card.meta}
        card = dataclasses.replace(card, meta={**base_meta, **pr.meta})
    reports = []

    def read(path, limit=None):
        rep = ConvertReport(card=card.name, src=os.fspath(path))
        reports.append(rep)
        return list(iter_card(card, path, limit=limit, image_dir=pr.image_dir, options=pr.options or None,
                              report=rep))

    train = read(src, pr.limit if test_src else None)
    if test_src:
        test = read(test_src)
    else:
        order = sorted(train, key=lambda s: digest([pr.seed, s.id]))
        if pr.held_out >= len(order):
            raise PipelineError(f"prepare: held_out={pr.held_out} but {src} has only {len(order)} items")
        held = {s.id for s in order[:pr.held_out]}
        test = [s for s in train if s.id in held]
        train = [s for s in train if s.id not in held]
        if pr.limit is not None:
            train = train[:pr.limit]
    if pr.template:
        spec = load_spec(cfg.eval.bench, cfg.eval.spec_overrides() or None)
        train = [render_prompt(s, spec) for s in train]
        test = [render_prompt(s, spec) for s in test]
    out_train, out_test = d / "train.jsonl", d / "test.jsonl"
    write_samples(out_train, train)
    write_samples(out_test, test)
    skipped = sum(r.skipped for r in reports)
    for r in reports:
        if r.skipped:
            _log("prepare: " + r.summary())
    _log(f"prepare: {len(train)} training and {len(test)} held-out samples -> {d}")
    return _finish_stage(cfg, "prepare", {"train": out_train, "test": out_test}, time.time() - t0,
                         {"counts": {"train": len(train), "test": len(test), "skipped": skipped}})


def run_curate(cfg: GeoQAConfig) -> dict:
    """The curation pipeline on the training samples: ``curate/sft.jsonl``, ``curate/dpo.jsonl``, report."""
    t0 = time.time()
    _require(cfg, "prepare", "curate")
    res = curate_run(curate_config(cfg))
    d = _stage_dir(cfg, "curate")
    outputs = {k: d / f"{k}.jsonl" for k in ("sft", "dpo") if (d / f"{k}.jsonl").exists()}
    outputs["report"] = d / "report.json"
    counts = (res.report or {}).get("counts", {})
    _log(f"curate: {counts}")
    return _finish_stage(cfg, "curate", outputs, time.time() - t0, {"counts": counts})


def run_train(cfg: GeoQAConfig, stage: str) -> dict:
    """SFT or DPO through ``mmredstar.training.run``; the stage directory is the model's output directory."""
    t0 = time.time()
    _require(cfg, "curate", stage)
    if stage != "sft":
        _require(cfg, "sft", stage)
    st: TrainStage = getattr(cfg, stage)
    d = _stage_dir(cfg, stage)
    if not st.enabled:
        d.mkdir(parents=True, exist_ok=True)
        return _finish_stage(cfg, stage, {}, 0.0, {"skipped": True})
    kind = "dpo" if stage == "sft_continued" else stage
    data = Path(cfg.out) / "curate" / f"{kind}.jsonl"
    if not data.exists():
        raise PipelineError(f"{stage}: {data} does not exist; curation wrote no {kind.upper()} set (check the "
                            f"curate section: select.{kind}.enabled)")
    if d.exists():  # a stale or half-finished run: start clean (its config differs or it did not finish)
        shutil.rmtree(d)
    if stage == "sft_continued":
        n = write_control_data(data, control_data(Path(cfg.out)))
        _log(f"sft_continued: {n} verified responses of the DPO pairs' prompts -> {control_data(Path(cfg.out))}")
    out = train_run(st.recipe, _train_overrides(cfg, stage, Path(cfg.out)))
    m = read_metrics(out)
    keep = {k: m.get(k) for k in ("steps", "first_loss", "last_loss", "train_runtime", "seconds") if k in m}
    _log(f"{stage}: {keep}")
    return _finish_stage(cfg, stage, {"model": Path(out) / "config.json", "metrics": Path(out) / "metrics.json"},
                         time.time() - t0, {"metrics": keep, "weights": _weights(out)})


def write_control_data(pairs: Path, out: Path) -> int:
    """The ``sft_continued`` control's set: each DPO pair's prompt with its chosen (verified) response as an
    SFT sample, so the control sees the same prompts and positives as DPO, without the rejected sides."""
    out.parent.mkdir(parents=True, exist_ok=True)

    def samples():
        for p in read_samples(pairs):
            d = p.to_dict()
            d.update(id=f"{p.prompt_id}-chosen", responses=[d.pop("chosen")])
            d.pop("rejected")
            s = Sample.from_dict(d)
            for a, b in zip(s.images, p.images, strict=True):
                a.root = b.root
            yield s

    return write_samples(out, samples())


def _checkpoint_entries(cfg: GeoQAConfig):
    out = Path(cfg.out)

    def entry(name: str, blank: bool) -> ModelEntry:
        if "=" in name:
            label, path = name.split("=", 1)
        else:
            label = name
            path = cfg.model if name == "base" else str(out / name)
            if name == "dpo" and not cfg.dpo.enabled:
                path = str(out / "sft")
        return ModelEntry(model=path, label=label + ("-blank" if blank else ""), blank_images=blank)

    return [entry(c, False) for c in cfg.eval.checkpoints] + [entry(c, True) for c in cfg.eval.blank_images]


def run_eval(cfg: GeoQAConfig) -> dict:
    """Evaluate each checkpoint on the held-out split; write ``eval/report.*`` and the summary ``report.json``."""
    t0 = time.time()
    st = _require(cfg, "prepare", "eval")
    for c in cfg.eval.checkpoints + cfg.eval.blank_images:
        if c in ("sft", "dpo"):
            _require(cfg, c, "eval")
    _set_threads(cfg)
    spec = load_spec(cfg.eval.bench, cfg.eval.spec_overrides() or None)
    samples = list(read_samples(st["outputs"]["test"]))
    if cfg.eval.limit is not None:
        samples = samples[:cfg.eval.limit]
    d = _stage_dir(cfg, "eval")
    entries = _checkpoint_entries(cfg)
    bopts = cfg.eval.backend_options_for(seed=cfg.seed, threads=cfg.threads)
    rep = evaluate(entries, [spec], out=d, samples={spec.name: samples}, backend=cfg.eval.backend,
                   backend_options=bopts, chunk_size=cfg.eval.chunk_size,
                   overwrite=True, progress=cfg.progress,
                   title=f"GeoQA pipeline: {spec.name} on {len(samples)} held-out items")
    acc = {}
    for r in rep["results"]:
        p, n = r["pass@1"], r["n_items"]
        lo, hi = r["ci95"]                    # Wilson with one sample per item (binomial), else normal
        acc[r["label"]] = {"accuracy": round(p, 4), "n": n, "se": round(r["se"], 4), "ci95": [round(lo, 4), round(hi, 4)],
                           "model": r["model"], "blank_images": r["blank_images"],
                           "no_answer": (r.get("verdicts") or {}).get("no_answer", 0.0)}
    summary = {"bench": spec.name, "items": len(samples), "accuracy": acc}
    first = next((e.label for e in entries if not e.blank_images and e.label == "base"), None)
    blank = next((e.label for e in entries if e.blank_images), None)
    # "trained": the model the image ablation is run on (the DPO model in the demo), else the last one listed
    best = (blank[:-len("-blank")] if blank else None) or next(
        (e.label for e in reversed(entries) if not e.blank_images and e.label != "base"), None)
    margins = {}
    for a, b, name in ((best, first, "trained_minus_untrained"), (best, blank, "trained_minus_blank_images")):
        if a in acc and b in acc:
            diff = acc[a]["accuracy"] - acc[b]["accuracy"]
            se = (acc[a]["se"] ** 2 + acc[b]["se"] ** 2) ** 0.5
            margins[name] = {"of": [a, b], "difference": round(diff, 4), "se": round(se, 4),
                             "z": round(diff / se, 1) if se > 0 else None}
    # each stage after SFT against its honest control (SFT continued for the same extra steps), paired by item
    if "sft_continued" in acc:
        scores = {e.label: {i: r["correct"] / max(r["n"], 1) for i, r in
                            read_items(d / e.label / spec.name / "samples.jsonl", repair=False).items()}
                  for e in entries if e.label in ("dpo", "rl", "sft", "sft_continued")}
        for a in ("dpo", "rl", "sft"):
            if a in scores:
                key = "sft_vs_sft_continued" if a == "sft" else f"{a}_vs_sft_continued"
                margins[key] = {"of": [a, "sft_continued"], "se_kind": "paired",
                                **paired_difference(scores[a], scores["sft_continued"])}
    summary["margins"] = margins
    write_json(d / "summary.json", summary)
    _log("eval: " + ", ".join(f"{k} {100 * v['accuracy']:.1f}%" for k, v in acc.items()))
    return _finish_stage(cfg, "eval", {"report": d / "report.json", "summary": d / "summary.json"}, time.time() - t0,
                         {"summary": summary})


RUNNERS = {"prepare": run_prepare, "curate": run_curate, "sft": lambda c: run_train(c, "sft"),
           **{s: (lambda c, s=s: run_train(c, s)) for s in AFTER_SFT}, "eval": run_eval}


def run_stage(cfg: GeoQAConfig, stage: str, *, force: bool = False) -> dict:
    """Run one stage unless it is finished for this config (``force``: run anyway); returns its state."""
    st = None if force else stage_state(cfg, stage)
    if st is not None:
        _log(f"{stage}: finished for this config ({st['finished_at']}); skipped")
        return {**st, "skipped_now": True}
    _log(f"{stage}: running")
    return {**RUNNERS[stage](cfg), "skipped_now": False}


def run_all(cfg: GeoQAConfig, *, force: tuple[str, ...] = (), until: str | None = None) -> dict:
    """Every stage in order (finished ones skipped; a stage whose upstream reran reruns too, by its hash).
    Writes ``OUT/report.json``: the evaluation summary, each stage's state and timing. Returns it."""
    t0 = time.time()
    states = {}
    forcing = False
    for stage in STAGES:
        if stage in ("rl", "sft_continued") and not getattr(cfg, stage).enabled:
            continue               # optional stages that are off are not part of the run (nor of its report)
        forcing = forcing or stage in force  # a forced stage's followers run again too
        states[stage] = run_stage(cfg, stage, force=forcing)
        if until == stage:
            break
    report = {"config": cfg.path, "out": cfg.out, "model": cfg.model,
              "stages": {k: {"seconds": v.get("seconds"), "skipped_now": v.get("skipped_now"),
                             **{x: v[x] for x in ("counts", "metrics") if x in v}} for k, v in states.items()},
              "seconds_now": round(time.time() - t0, 1)}
    if "eval" in states:
        report.update(states["eval"]["summary"])
    write_json(Path(cfg.out) / "report.json", report)
    return report


def summary_table(report: dict) -> str:
    """The before/after table of a pipeline report (markdown)."""
    acc = report.get("accuracy") or {}
    names = {"base": "untrained", "sft": "after SFT", "dpo": "after SFT + DPO", "rl": "after SFT + RL",
             "sft_continued": "SFT continued (control)"}
    lines = [f"{report.get('bench', 'eval')} accuracy on {report.get('items')} held-out items",
             "", "| model | accuracy | 95% CI | ± SE | no answer |", "|---|---|---|---|---|"]
    for label, a in acc.items():
        base = label[:-6] if label.endswith("-blank") else label
        name = names.get(base, base) + (" (blank images)" if a.get("blank_images") else "")
        lines.append(f"| {name} | {100 * a['accuracy']:.1f}% | [{100 * a['ci95'][0]:.1f}, {100 * a['ci95'][1]:.1f}] | "
                     f"{100 * a['se']:.1f} | {100 * a['no_answer']:.1f}% |")
    for k, m in (report.get("margins") or {}).items():
        if "points" in m:      # a paired comparison on the same items (points and se in percentage points)
            z = "no spread to compare" if m["z"] is None else f"{m['z']} paired standard errors"
            lines.append(f"\n{k.replace('_', ' ')}: {m['points']:+.1f} points ± {m['se']:.1f} ({z}; "
                         f"{m['wins']} items won, {m['losses']} lost of {m['n']})")
            continue
        z = "no spread to compare" if m["z"] is None else f"{m['z']} standard errors"
        lines.append(f"\n{k.replace('_', ' ')}: {100 * m['difference']:+.1f} points ({m['of'][0]} vs {m['of'][1]}; {z})")
    return "\n".join(lines)
