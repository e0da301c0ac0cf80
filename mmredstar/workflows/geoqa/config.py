"""The GeoQA pipeline's config: one dataclass tree for every stage, checked on load (file:line errors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...config import ConfigError, load_dataclass, to_plain
from ...cpu import resolve_threads
from ...curate.config import load_config as load_curate
from ...evaluation.config import EvalRunConfig
from ...evaluation.spec import load_spec
from ...training import RecipeError, load_recipe

STAGES = ("prepare", "curate", "sft", "dpo", "rl", "sft_continued", "eval")
AFTER_SFT = ("dpo", "rl", "sft_continued")
"""The stages that start from the SFT model."""
DEFAULT_RECIPES = {"sft": "tiny/vlm_sft", "dpo": "tiny/vlm_dpo", "rl": "tiny/vlm_grpo"}
"""The recipe of a training stage that names none."""
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
    """A recipe name under ``train/`` (e.g. ``tiny/vlm_sft``) or a path; empty: the stage's default
    (``DEFAULT_RECIPES``; ``sft_continued``: the SFT stage's recipe)."""
    overrides: dict = field(default_factory=dict)
    """Recipe keys to change, dotted (``{train.max_steps: 300, train.lr: 2.0e-3}``) or nested."""
    enabled: bool = True
    """Run this stage (``false``: skip it; DPO off means eval uses the SFT model)."""


@dataclass
class GeoQAEval(EvalRunConfig):
    """Evaluation of each checkpoint on the held-out split (the shared evaluation-run keys plus the ones below)."""

    bench: str = "geoqa"
    """The benchmark spec (``eval/<name>.yaml``): prompt template, verifier, sampling, metrics."""
    checkpoints: list[str] = field(default_factory=lambda: ["base", "sft", "dpo"])
    """``base`` (the untrained model), ``sft``, ``dpo``, ``rl``, ``sft_continued``, or ``LABEL=PATH`` for other models."""
    blank_images: list[str] = field(default_factory=lambda: ["dpo"])
    """Checkpoints evaluated again with every image replaced by a white one (the image ablation)."""
    batch_size: int | None = 64
    """Sequences generated together (local transformers backend)."""


@dataclass
class GeoQAConfig:
    """One GeoQA pipeline: the model, the data, and every stage's settings."""

    out: str = "runs/geoqa"
    """Output directory (``prepare/``, ``curate/``, ``sft/``, ``dpo/``, ``eval/``, ``report.json``)."""
    model: str = "tiny_vlm"
    """The model SFT starts from (a preset or a model directory); ``base`` in the evaluation."""
    seed: int = 0
    """Seed of the model's random initialisation (tiny presets) and of training."""
    threads: int | str | None = None
    """torch CPU threads for training and evaluation (``auto``: the cores idle when each stage starts, see
    ``mmredstar.cpu``; ``None``: leave as is)."""
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
    rl: TrainStage = field(default_factory=lambda: TrainStage(enabled=False))
    """Online RL with the rule reward (GRPO / REINFORCE++ / PPO recipe) on the curated RL prompts
    (``curate/rl.jsonl``), from the SFT model. Off unless enabled."""
    sft_continued: TrainStage = field(default_factory=lambda: TrainStage(enabled=False))
    """The control for the stages after SFT: SFT continued from the SFT model with the SFT stage's recipe and
    data settings, on the same prompts (the DPO pairs' prompts with their chosen, verified responses), trained
    like the DPO stage (every ``train.*`` key of DPO's overrides: steps, batch size, learning rate, schedule),
    so that only the loss differs; its own ``overrides`` change any of that. Off unless enabled."""
    eval: GeoQAEval = field(default_factory=GeoQAEval)
    """Evaluation."""

    # runtime only
    path: str | None = field(default=None, metadata={"runtime": True})

    def to_dict(self) -> dict:
        return to_plain(self)


class PipelineError(RuntimeError):
    """A stage cannot run (missing inputs, stale upstream); the message says which command to run."""


def load_config(path_or_dict, overrides: list[str] | dict | None = None) -> GeoQAConfig:
    """A checked ``GeoQAConfig`` from a YAML path (or a name under ``configs/``) or a dict; ``overrides`` are
    dotted ``key=value`` strings. Errors name the file, line and key."""
    cfg, file, where = load_dataclass(GeoQAConfig, path_or_dict, overrides)
    cfg.path = None if file == "<config>" else file

    try:
        resolve_threads(cfg.threads if cfg.threads != "auto" else None, what="threads")
    except ValueError as e:
        raise ConfigError(f"{where('threads')}: key 'threads': {e}") from None
    for name in ("sft",) + AFTER_SFT:
        st = getattr(cfg, name)
        if not st.recipe:
            st.recipe = cfg.sft.recipe if name == "sft_continued" else DEFAULT_RECIPES[name]

    pr = cfg.prepare
    if (pr.generate is None) == (pr.src is None):
        raise ConfigError(f"{where('prepare')}: key 'prepare': give either 'generate' (a synthetic GeoQA-format set) "
                          "or 'src' (your GeoQA files)")
    if pr.generate is not None:
        from ...synth import generator

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

    try:
        load_spec(cfg.eval.bench, cfg.eval.spec_overrides() or None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where('eval.bench')}: key 'eval.bench': {e}") from None

    for name in ("sft",) + AFTER_SFT:
        st = getattr(cfg, name)
        if not st.enabled:
            continue
        try:
            load_recipe(st.recipe, _train_overrides(cfg, name, Path(cfg.out)))
        except (RecipeError, ValueError, FileNotFoundError) as e:
            raise ConfigError(f"{where(name)}: key '{name}': {e}") from None
    _check_model(cfg.model, where("model"))
    known = {"base", "sft", *AFTER_SFT}
    for c in cfg.eval.checkpoints + cfg.eval.blank_images:
        if c not in known and "=" not in c:
            raise ConfigError(f"{where('eval.checkpoints')}: key 'eval.checkpoints': {c!r} is not one of "
                              f"{', '.join(sorted(known))} or LABEL=PATH")
        if c in ("rl", "sft_continued") and not getattr(cfg, c).enabled:
            raise ConfigError(f"{where('eval.checkpoints')}: key 'eval.checkpoints': {c!r} is evaluated but its "
                              f"stage is off; set {c}.enabled: true")
    for c in cfg.eval.blank_images:
        if c in known and c not in cfg.eval.checkpoints:
            raise ConfigError(f"{where('eval.blank_images')}: key 'eval.blank_images': {c!r} is not in eval.checkpoints")
    return cfg


def _check_model(model: str, at: str) -> None:
    """``model`` must be a preset, a model directory, or a hub id (``ORG/NAME``): a typo is caught before any stage."""
    import difflib
    import os

    from ...assets import AssetError, list_assets, resolve
    from ...config import ConfigError

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


# ----------------------------------------------------------------------------------------- derived configs
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


def _stage_dir(cfg: GeoQAConfig, stage: str) -> Path:
    return Path(cfg.out) / stage


def control_data(out: Path) -> Path:
    """Where the ``sft_continued`` control's training set is written (the chosen sides of ``curate/dpo.jsonl``)."""
    return Path(out) / "sft_continued.data" / "sft.jsonl"


def curate_config(cfg: GeoQAConfig):
    """The curation config of this pipeline (inputs = prepare's train.jsonl, out = OUT/curate)."""
    data = {**cfg.curate, "inputs": [{"path": str(_stage_dir(cfg, "prepare") / "train.jsonl")}],
            "out": str(_stage_dir(cfg, "curate"))}
    return load_curate(data)


def _train_overrides(cfg: GeoQAConfig, stage: str, out: Path) -> dict:
    st: TrainStage = getattr(cfg, stage)
    o = flatten(dict(st.overrides))
    if stage == "sft":
        o.update({"model.name": cfg.model, "model.seed": cfg.seed, "data.train": [str(out / "curate" / "sft.jsonl")]})
    else:
        data = {"dpo": out / "curate" / "dpo.jsonl", "rl": out / "curate" / "rl.jsonl",
                "sft_continued": control_data(out)}[stage]
        o.update({"model.name": str(out / "sft"), "model.init_from": None, "data.train": [str(data)]})
        if stage == "sft_continued":
            # the honest control: the SFT stage's recipe and data settings, trained like the DPO stage (its
            # steps, batch size, learning rate and schedule: every train.* key DPO sets), only the loss differs
            dpo = {k: v for k, v in flatten(dict(cfg.dpo.overrides)).items() if k.startswith("train.")} \
                if cfg.dpo.enabled else {}
            base = {k: v for k, v in flatten(dict(cfg.sft.overrides)).items() if not k.startswith("train.")}
            o = {**base, **dpo, **o}
    o["output_dir"] = str(out / stage)
    o.setdefault("train.seed", cfg.seed)
    if cfg.threads:
        o.setdefault("train.num_threads", cfg.threads)
    return o
