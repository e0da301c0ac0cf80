"""The GeoQA pipeline: one config drives prepare -> curate -> SFT -> DPO -> eval for an InternVL-style model.

    mmredstar geoqa run configs/geoqa/demo.yaml                    # every stage, skipping finished ones
    mmredstar geoqa prepare|curate|sft|dpo|eval CONFIG.yaml        # one stage (its inputs must be ready)
    mmredstar geoqa run CONFIG.yaml --out runs/x --set sft.overrides.train.max_steps=20

Stages (each writes under ``OUT/<stage>/`` and ends by writing ``OUT/<stage>/stage.json``):

- ``prepare``: GeoQA-format data -> samples. Either a generator (``prepare.generate``, e.g. the synthetic
  polygons in GeoQA's LLM-era JSONL format) or your files (``prepare.src``: the original ``*.pk`` release,
  GeoQA+ JSON, or LLM-era JSONL), converted through the ``geoqa`` data card; the held-out split is
  ``prepare.test_src`` or ``prepare.held_out`` items split off ``src`` by a seeded hash. With
  ``prepare.template`` the evaluation spec's prompt template is applied to every sample, so training sees
  the prompt evaluation sends. Writes ``train.jsonl`` and ``test.jsonl``.
- ``curate``: the curation pipeline (``mmredstar.curate``) on ``train.jsonl`` with the ``curate:`` section
  (any curation config key): teacher samples, verification, ``sft.jsonl`` / ``dpo.jsonl``.
- ``sft`` / ``dpo``: training recipes (``mmredstar.training``) with dotted ``overrides``; the pipeline wires
  ``model.name`` (the base model for SFT, the SFT output for DPO), ``data.train`` and ``output_dir``.
- ``eval``: the evaluation spec (``eval.bench``, default ``geoqa``) on ``test.jsonl`` for each checkpoint
  (``base`` = the untrained model, ``sft``, ``dpo``), and for ``eval.blank_images`` checkpoints again with
  every image blanked. Writes ``OUT/eval/report.{json,md,png}`` and the summary ``OUT/report.json``:
  accuracy, item count, binomial standard error and 95% Wilson interval per checkpoint.

A stage is finished when its ``stage.json`` holds the hash of its config section and of the stages it
reads from, and its outputs exist; ``run`` skips finished stages. Changing a stage's config changes its
hash, so that stage and every stage after it run again. ``--force STAGE`` reruns one stage regardless.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from ..clibase import Group
from ..stages import Marker, asset_sha256, fingerprint

STAGES = ("prepare", "curate", "sft", "dpo", "eval")
PIPELINE_VERSION = 1


# ----------------------------------------------------------------------------------------- config
@dataclass
class GenerateConfig:
    """A generated GeoQA-format dataset (``mmredstar.synth``)."""

    kind: str = "polygons"
    """Generator name (``mmredstar.synth.GENERATORS``) or ``pkg.module:function(out_dir, splits, seed=, **options)``."""
    splits: dict = field(default_factory=lambda: {"train": 3000, "test": 300})
    """Items per split; ``train`` feeds curation, ``test`` is the held-out split."""
    seed: int = 0
    """Generator seed."""
    options: dict = field(default_factory=dict)
    """Other generator keywords (e.g. ``{image_size: 64}``)."""


@dataclass
class PrepareConfig:
    """Where the GeoQA-format data comes from and how it becomes train / held-out samples."""

    generate: GenerateConfig | None = None
    """Generate the data (the demo); mutually exclusive with ``src``."""
    src: str | None = None
    """Your GeoQA-format training source: ``train.pk``, GeoQA+ JSON folder, or LLM-era JSONL."""
    test_src: str | None = None
    """The held-out source (e.g. ``test.pk``); ``None``: ``held_out`` items are split off ``src``."""
    held_out: int = 300
    """Items split off ``src`` for evaluation when there is no ``test_src`` (seeded, by sample id)."""
    card: str = "geoqa"
    """The data card reading the sources."""
    options: dict = field(default_factory=dict)
    """Card adapter options (e.g. ``{language: en}``)."""
    image_dir: str | None = None
    """Directory the sources' relative image paths are resolved against."""
    meta: dict = field(default_factory=dict)
    """Extra source columns copied into ``Sample.meta`` (``{meta_key: column}``), e.g. ``{reference_cot: reference_cot}``
    for the scripted teacher."""
    template: bool = True
    """Apply the eval spec's prompt template to every sample (train and held-out)."""
    limit: int | None = None
    """Use at most this many training items."""
    seed: int = 0
    """Seed of the held-out split."""


@dataclass
class TrainStage:
    """One training stage: a recipe plus overrides (the pipeline sets model, data and output dir)."""

    recipe: str = ""
    """A recipe name under ``train/`` (e.g. ``tiny/vlm_sft``) or a path."""
    overrides: dict = field(default_factory=dict)
    """Recipe keys to change, dotted (``{train.max_steps: 300, train.lr: 2.0e-3}``) or nested."""
    enabled: bool = True
    """Run this stage (``false``: skip it; DPO off means eval uses the SFT model)."""


@dataclass
class EvalConfig:
    """Evaluation of each checkpoint on the held-out split."""

    bench: str = "geoqa"
    """The benchmark spec (``eval/<name>.yaml``): prompt template, verifier, sampling, metrics."""
    checkpoints: list[str] = field(default_factory=lambda: ["base", "sft", "dpo"])
    """``base`` (the untrained model), ``sft``, ``dpo``, or ``LABEL=PATH`` for other models."""
    blank_images: list[str] = field(default_factory=lambda: ["dpo"])
    """Checkpoints evaluated again with every image replaced by a white one (the image ablation)."""
    limit: int | None = None
    """Evaluate at most this many held-out items."""
    batch_size: int = 64
    """Sequences generated together (local transformers backend)."""
    overrides: dict = field(default_factory=dict)
    """Spec keys to change (e.g. ``{max_new_tokens: 64}``)."""
    backend: str = "transformers"
    """Generation backend (a curation teacher kind): ``transformers`` (local) or ``vllm`` (GPU)."""
    backend_options: dict = field(default_factory=dict)
    """Backend options (e.g. ``{dtype: bfloat16, device: cuda}`` or vLLM's ``{tensor_parallel_size: 2}``)."""


@dataclass
class GeoQAConfig:
    """One GeoQA pipeline: the model, the data, and every stage's settings."""

    out: str = "runs/geoqa"
    """Output directory (``prepare/``, ``curate/``, ``sft/``, ``dpo/``, ``eval/``, ``report.json``)."""
    model: str = "tiny_vlm"
    """The model SFT starts from (a preset or a model directory); ``base`` in the evaluation."""
    seed: int = 0
    """Seed of the model's random initialisation (tiny presets) and of training."""
    threads: int | None = None
    """torch CPU threads for training and evaluation (``None``: leave as is)."""
    progress: bool = True
    """Progress bars in the evaluation stage (curation and training have their own ``progress`` keys)."""
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    """Data preparation."""
    curate: dict = field(default_factory=dict)
    """Curation config keys (``mmredstar.curate.config.CurateConfig``) except ``inputs`` and ``out``, which the
    pipeline sets."""
    sft: TrainStage = field(default_factory=lambda: TrainStage(recipe="tiny/vlm_sft"))
    """Supervised fine-tuning on the curated SFT set."""
    dpo: TrainStage = field(default_factory=lambda: TrainStage(recipe="tiny/vlm_dpo"))
    """Preference optimisation on the curated DPO pairs, from the SFT model."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation."""

    # runtime only
    path: str | None = field(default=None, metadata={"runtime": True})

    def to_dict(self) -> dict:
        from ..config import to_plain

        return to_plain(self)


class PipelineError(RuntimeError):
    """A stage cannot run (missing inputs, stale upstream); the message says which command to run."""


def load_config(path_or_dict, overrides: list[str] | dict | None = None) -> GeoQAConfig:
    """A checked ``GeoQAConfig`` from a YAML path (or a name under ``configs/``) or a dict; ``overrides`` are
    dotted ``key=value`` strings. Errors name the file, line and key."""
    from ..config import ConfigError, load_dataclass

    cfg, file, where = load_dataclass(GeoQAConfig, path_or_dict, overrides)
    cfg.path = None if file == "<config>" else file

    pr = cfg.prepare
    if (pr.generate is None) == (pr.src is None):
        raise ConfigError(f"{where('prepare')}: key 'prepare': give either 'generate' (a synthetic GeoQA-format set) "
                          "or 'src' (your GeoQA files)")
    if pr.generate is not None:
        from ..synth import generator

        try:
            generator(pr.generate.kind)
        except (ValueError, ImportError, AttributeError) as e:
            raise ConfigError(f"{where('prepare.generate.kind')}: key 'prepare.generate.kind': {e}") from None
        if "train" not in pr.generate.splits or "test" not in pr.generate.splits:
            raise ConfigError(f"{where('prepare.generate.splits')}: key 'prepare.generate.splits': needs 'train' "
                              "and 'test' counts, e.g. {train: 3000, test: 300}")
    for k in ("inputs", "out"):
        if k in cfg.curate:
            raise ConfigError(f"{where('curate.' + k)}: key 'curate.{k}': set by the pipeline (prepare's train.jsonl, "
                              "OUT/curate); remove it")
    try:
        curate_config(cfg)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where('curate')}: key 'curate': {e}") from None
    from ..evaluation.spec import load_spec

    try:
        load_spec(cfg.eval.bench, cfg.eval.overrides or None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where('eval.bench')}: key 'eval.bench': {e}") from None
    from ..training import RecipeError, load_recipe

    for name in ("sft", "dpo"):
        st = getattr(cfg, name)
        if not st.enabled:
            continue
        try:
            load_recipe(st.recipe, _train_overrides(cfg, name, Path(cfg.out)))
        except (RecipeError, ValueError, FileNotFoundError) as e:
            raise ConfigError(f"{where(name)}: key '{name}': {e}") from None
    _check_model(cfg.model, where("model"))
    known = {"base", "sft", "dpo"}
    for c in cfg.eval.checkpoints + cfg.eval.blank_images:
        if c not in known and "=" not in c:
            raise ConfigError(f"{where('eval.checkpoints')}: key 'eval.checkpoints': {c!r} is not base, sft, dpo "
                              "or LABEL=PATH")
    for c in cfg.eval.blank_images:
        if c in known and c not in cfg.eval.checkpoints:
            raise ConfigError(f"{where('eval.blank_images')}: key 'eval.blank_images': {c!r} is not in eval.checkpoints")
    return cfg


def _check_model(model: str, at: str) -> None:
    """``model`` must be a preset, a model directory, or a hub id (``ORG/NAME``): a typo is caught before any stage."""
    import difflib

    from ..assets import AssetError, list_assets, resolve
    from ..config import ConfigError

    if os.path.exists(model) or "/" in model:
        return
    try:
        resolve("models", model)
    except AssetError:
        presets = list_assets("models")
        close = difflib.get_close_matches(model, presets, n=1)
        raise ConfigError(f"{at}: key 'model': {model!r} is no preset in models/ and no directory"
                          + (f"; did you mean {close[0]!r}?" if close else "")
                          + f" (presets: {', '.join(presets)}; a hub model is written ORG/NAME)") from None


# ----------------------------------------------------------------------------------------- helpers
def flatten(d: dict, prefix: str = "") -> dict:
    """Nested mappings -> dotted keys (``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``).

    >>> flatten({"train": {"lr": 1, "max_steps": 5}, "data.max_length": 64})
    {'train.lr': 1, 'train.max_steps': 5, 'data.max_length': 64}
    """
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def digest(obj) -> str:
    """A short content hash of JSON-able data (``mmredstar.stages.fingerprint``, 16 characters).

    >>> digest({"a": 1}) == digest({"a": 1}), digest({"a": 1}) == digest({"a": 2})
    (True, False)
    """
    return fingerprint(obj, 16)


def _deps(cfg: GeoQAConfig, stage: str) -> list[str]:
    """The stages whose outputs ``stage`` reads."""
    if stage == "eval":
        return ["prepare"] + [s for s in ("sft", "dpo") if s in cfg.eval.checkpoints + cfg.eval.blank_images]
    return {"prepare": [], "curate": ["prepare"], "sft": ["curate"], "dpo": ["curate", "sft"]}[stage]


def stage_hash(cfg: GeoQAConfig, stage: str) -> str:
    """The fingerprint that marks ``stage`` finished: its own settings, the bytes of the asset files they
    name (data card, recipe, model preset, benchmark spec), and the hashes of the stages it reads."""
    from ..evaluation.spec import load_spec

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; use one of {STAGES}")
    d = cfg.to_dict()
    if stage == "prepare":
        own = {"prepare": d["prepare"], "card_sha256": asset_sha256("data_cards", cfg.prepare.card)}
        if cfg.prepare.template:
            spec = load_spec(cfg.eval.bench, cfg.eval.overrides or None)
            own["template"] = {"bench": spec.name, "prompt": spec.prompt, "system": spec.system}
    elif stage == "curate":
        own = {"curate": d["curate"]}
    elif stage in ("sft", "dpo"):
        own = {stage: d[stage], "recipe_sha256": asset_sha256("train", getattr(cfg, stage).recipe)}
        if stage == "sft":
            own.update({"model": cfg.model, "seed": cfg.seed, "model_sha256": asset_sha256("models", cfg.model)})
    else:
        own = {"eval": d["eval"], "model": cfg.model, "seed": cfg.seed, "model_sha256": asset_sha256("models", cfg.model),
               "spec": load_spec(cfg.eval.bench, cfg.eval.overrides or None).to_dict()}
    return digest({"version": PIPELINE_VERSION, "stage": stage, "own": own,
                   "deps": {s: stage_hash(cfg, s) for s in _deps(cfg, stage)}})


def _stage_dir(cfg: GeoQAConfig, stage: str) -> Path:
    return Path(cfg.out) / stage


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
    click.echo(f"[geoqa] {msg}", err=True)


def _set_threads(cfg: GeoQAConfig) -> None:
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)


# ----------------------------------------------------------------------------------------- stages
def run_prepare(cfg: GeoQAConfig) -> dict:
    """Generate or read the GeoQA-format data; write ``prepare/train.jsonl`` and ``prepare/test.jsonl``."""
    from ..data import ConvertReport, iter_card, load_card
    from ..evaluation.spec import load_spec, render_prompt
    from ..io import write_samples

    t0 = time.time()
    pr = cfg.prepare
    d = _stage_dir(cfg, "prepare")
    d.mkdir(parents=True, exist_ok=True)
    if pr.generate is not None:
        from ..synth import generator

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
        spec = load_spec(cfg.eval.bench, cfg.eval.overrides or None)
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


def curate_config(cfg: GeoQAConfig):
    """The curation config of this pipeline (inputs = prepare's train.jsonl, out = OUT/curate)."""
    from ..curate.config import load_config as load_curate

    data = {**cfg.curate, "inputs": [{"path": str(_stage_dir(cfg, "prepare") / "train.jsonl")}],
            "out": str(_stage_dir(cfg, "curate"))}
    return load_curate(data)


def run_curate(cfg: GeoQAConfig) -> dict:
    """The curation pipeline on the training samples: ``curate/sft.jsonl``, ``curate/dpo.jsonl``, report."""
    from ..curate import run as curate_run

    t0 = time.time()
    _require(cfg, "prepare", "curate")
    res = curate_run(curate_config(cfg))
    d = _stage_dir(cfg, "curate")
    outputs = {k: d / f"{k}.jsonl" for k in ("sft", "dpo") if (d / f"{k}.jsonl").exists()}
    outputs["report"] = d / "report.json"
    counts = (res.report or {}).get("counts", {})
    _log(f"curate: {counts}")
    return _finish_stage(cfg, "curate", outputs, time.time() - t0, {"counts": counts})


def _train_overrides(cfg: GeoQAConfig, stage: str, out: Path) -> dict:
    st: TrainStage = getattr(cfg, stage)
    o = flatten(dict(st.overrides))
    if stage == "sft":
        o.update({"model.name": cfg.model, "model.seed": cfg.seed, "data.train": [str(out / "curate" / "sft.jsonl")]})
    else:
        o.update({"model.name": str(out / "sft"), "model.init_from": None,
                  "data.train": [str(out / "curate" / "dpo.jsonl")]})
    o["output_dir"] = str(out / stage)
    o.setdefault("train.seed", cfg.seed)
    if cfg.threads:
        o.setdefault("train.num_threads", cfg.threads)
    return o


def run_train(cfg: GeoQAConfig, stage: str) -> dict:
    """SFT or DPO through ``mmredstar.training.run``; the stage directory is the model's output directory."""
    from ..training import run as train_run
    from ..training.runner import read_metrics

    t0 = time.time()
    _require(cfg, "curate", stage)
    if stage == "dpo":
        _require(cfg, "sft", stage)
    st: TrainStage = getattr(cfg, stage)
    d = _stage_dir(cfg, stage)
    if not st.enabled:
        d.mkdir(parents=True, exist_ok=True)
        return _finish_stage(cfg, stage, {}, 0.0, {"skipped": True})
    data = Path(cfg.out) / "curate" / f"{stage}.jsonl"
    if not data.exists():
        raise PipelineError(f"{stage}: {data} does not exist; curation wrote no {stage.upper()} set (check the "
                            "curate section: select.{stage}.enabled)")
    if d.exists():  # a stale or half-finished run: start clean (its config differs or it did not finish)
        shutil.rmtree(d)
    out = train_run(st.recipe, _train_overrides(cfg, stage, Path(cfg.out)))
    m = read_metrics(out)
    keep = {k: m.get(k) for k in ("steps", "first_loss", "last_loss", "train_runtime", "seconds") if k in m}
    _log(f"{stage}: {keep}")
    return _finish_stage(cfg, stage, {"model": Path(out) / "config.json", "metrics": Path(out) / "metrics.json"},
                         time.time() - t0, {"metrics": keep, "weights": _weights(out)})


def _checkpoint_entries(cfg: GeoQAConfig):
    from ..evaluation.runner import ModelEntry

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
    from ..evaluation.runner import evaluate
    from ..evaluation.spec import load_spec
    from ..io import read_samples, write_json

    t0 = time.time()
    st = _require(cfg, "prepare", "eval")
    for c in cfg.eval.checkpoints + cfg.eval.blank_images:
        if c in ("sft", "dpo"):
            _require(cfg, c, "eval")
    _set_threads(cfg)
    spec = load_spec(cfg.eval.bench, cfg.eval.overrides or None)
    samples = list(read_samples(st["outputs"]["test"]))
    if cfg.eval.limit is not None:
        samples = samples[:cfg.eval.limit]
    d = _stage_dir(cfg, "eval")
    entries = _checkpoint_entries(cfg)
    if cfg.eval.backend == "transformers":
        bopts = {"batch_size": cfg.eval.batch_size, "init_seed": cfg.seed,
                 **({"threads": cfg.threads} if cfg.threads else {}), **cfg.eval.backend_options}
    else:
        bopts = dict(cfg.eval.backend_options)
    rep = evaluate(entries, [spec], out=d, samples={spec.name: samples}, backend=cfg.eval.backend,
                   backend_options=bopts,
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
    best = next((e.label for e in reversed(entries) if not e.blank_images and e.label != "base"), None)
    blank = next((e.label for e in entries if e.blank_images), None)
    margins = {}
    for a, b, name in ((best, first, "trained_minus_untrained"), (best, blank, "trained_minus_blank_images")):
        if a in acc and b in acc:
            diff = acc[a]["accuracy"] - acc[b]["accuracy"]
            se = (acc[a]["se"] ** 2 + acc[b]["se"] ** 2) ** 0.5
            margins[name] = {"of": [a, b], "difference": round(diff, 4), "se": round(se, 4),
                             "z": round(diff / se, 1) if se > 0 else None}
    summary["margins"] = margins
    write_json(d / "summary.json", summary)
    _log("eval: " + ", ".join(f"{k} {100 * v['accuracy']:.1f}%" for k, v in acc.items()))
    return _finish_stage(cfg, "eval", {"report": d / "report.json", "summary": d / "summary.json"}, time.time() - t0,
                         {"summary": summary})


RUNNERS = {"prepare": run_prepare, "curate": run_curate, "sft": lambda c: run_train(c, "sft"),
           "dpo": lambda c: run_train(c, "dpo"), "eval": run_eval}


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
    from ..io import write_json

    t0 = time.time()
    states = {}
    forcing = False
    for stage in STAGES:
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
    names = {"base": "untrained", "sft": "after SFT", "dpo": "after DPO"}
    lines = [f"{report.get('bench', 'eval')} accuracy on {report.get('items')} held-out items",
             "", "| model | accuracy | 95% CI | ± SE | no answer |", "|---|---|---|---|---|"]
    for label, a in acc.items():
        base = label[:-6] if label.endswith("-blank") else label
        name = names.get(base, base) + (" (blank images)" if a.get("blank_images") else "")
        lines.append(f"| {name} | {100 * a['accuracy']:.1f}% | [{100 * a['ci95'][0]:.1f}, {100 * a['ci95'][1]:.1f}] | "
                     f"{100 * a['se']:.1f} | {100 * a['no_answer']:.1f}% |")
    for k, m in (report.get("margins") or {}).items():
        z = "no spread to compare" if m["z"] is None else f"{m['z']} standard errors"
        lines.append(f"\n{k.replace('_', ' ')}: {100 * m['difference']:+.1f} points ({m['of'][0]} vs {m['of'][1]}; {z})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- CLI
def _load(config: str, out: str | None, sets: tuple[str, ...]) -> GeoQAConfig:
    ov = list(sets)
    if out:
        ov.append(f"out={out}")
    return load_config(config, ov)


def _stage_command(stage: str):
    @click.command(stage, help=f"Run the '{stage}' stage of CONFIG (skipped when finished for this config).")
    @click.argument("config")
    @click.option("--out", default=None, help="Output directory (overrides the config's 'out').")
    @click.option("--set", "sets", multiple=True, help="Override a config key, e.g. --set sft.overrides.train.max_steps=20.")
    @click.option("--force", is_flag=True, help="Run even if finished.")
    def cmd(config, out, sets, force):
        cfg = _load(config, out, sets)
        st = run_stage(cfg, stage, force=force)
        if stage == "eval":
            click.echo(summary_table(st["summary"]))

    return cmd


@click.group("geoqa", cls=Group)
def geoqa():
    """The GeoQA pipeline: prepare | curate | sft | dpo | eval | run CONFIG.yaml (one config for every stage)."""


for _s in STAGES:
    geoqa.add_command(_stage_command(_s))


@geoqa.command("run")
@click.argument("config")
@click.option("--out", default=None, help="Output directory (overrides the config's 'out').")
@click.option("--set", "sets", multiple=True, help="Override a config key, e.g. --set eval.limit=50.")
@click.option("--force", multiple=True, type=click.Choice(STAGES), help="Rerun this stage and every stage after it.")
@click.option("--until", type=click.Choice(STAGES), default=None, help="Stop after this stage.")
def run_cmd(config, out, sets, force, until):
    """Every stage in order, skipping finished ones; prints the before/after table."""
    cfg = _load(config, out, sets)
    rep = run_all(cfg, force=tuple(force), until=until)
    if "accuracy" not in rep:
        click.echo(f"stopped after '{until}'; wrote {cfg.out}/report.json")
        return
    click.echo(summary_table(rep))
    click.echo(f"\nwrote {cfg.out}/report.json (and eval/report.md); took {rep['seconds_now']:.0f} s")
