"""Typed training recipes: the dataclasses every recipe key maps to, YAML loading and overrides.

A recipe is YAML whose keys are the fields below (each documented once, on its field). Loading checks
every key and type and reports a problem as ``file:line: key 'x': ...`` with a did-you-mean; dotted
command-line overrides (``train.lr=1e-5 data.max_length=2048``) are coerced to the field's type.

    from mmredstar.training.config import load_recipe
    cfg = load_recipe("tiny/sft", ["train.max_steps=10"])     # -> Recipe

Run ``mmredstar train tiny/sft --check`` to validate a recipe without loading a model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mmredstar import config as _config
from mmredstar.assets import resolve
from mmredstar.config import ConfigError

METHODS = ("sft", "dpo", "grpo", "reinforce_pp", "ppm")


class RecipeError(ConfigError):
    """A recipe key or value is wrong; the message names the file, line and key and says what to do."""


# ----------------------------------------------------------------------------------------- sections
@dataclass
class ModelConfig:
    """Which model to train and how to build it."""

    name: str = ""
    """A model preset (``models/<name>.yaml``, e.g. ``qwen2_5_7b_instruct``, ``tiny_text``) or a path to a
    saved model directory (an earlier run's output, an HF checkpoint)."""
    init_from: str | None = None
    """Start from the output of another recipe (e.g. DPO after ``qwen2_5/14B_sft_4k``): its output dir
    (``runs/<recipe>``, or that recipe's ``output_dir``) must exist; ``name`` still names the architecture."""
    dtype: str | None = None
    """Weights dtype when loading (``float32``, ``bfloat16``); ``None`` = the preset's."""
    attn_implementation: str | None = None
    """``sdpa`` | ``eager`` | ``flash_attention_2``; ``None`` = the preset's. Ulysses needs sdpa or flash."""
    rope_scaling: dict | None = None
    """RoPE scaling overriding the preset's, e.g. ``{rope_type: linear, factor: 4.0}`` (Position Interpolation)."""
    max_position_embeddings: int | None = None
    """Context length overriding the preset's (set it with ``rope_scaling`` when extending the context)."""
    freeze: dict = field(default_factory=dict)
    """Modules to freeze, e.g. ``{vision: true, projector: false, llm: false}`` (see ``modeling.param_groups``)."""
    lrs: dict = field(default_factory=dict)
    """Per-module learning rates, e.g. ``{vision: 1e-6, projector: 1e-4}``; modules not named use ``train.lr``."""
    overrides: dict = field(default_factory=dict)
    """Any other keyword passed to ``load_model`` (e.g. ``{max_tiles: 6}``)."""
    seed: int | None = None
    """Seed for random initialisation of tiny presets; ``None`` = ``train.seed``."""


@dataclass
class DataConfig:
    """What to train on and how to shape it into sequences."""

    train: list[str] = field(default_factory=list)
    """Training data: sample files, globs, directories or named sets (``train/_sets.yaml``). SFT files hold
    samples with one response (the target); DPO files hold pairs; RL files hold prompts."""
    eval: list[str] = field(default_factory=list)
    """Optional held-out data in the same form; evaluated every ``train.eval_steps``."""
    root: str | None = None
    """Directory that named sets' relative paths are resolved against; default ``$MMREDSTAR_DATA`` or ``./data``."""
    image_root: str | None = None
    """Directory image paths are relative to; default: each data file's directory."""
    limit: int | None = None
    """Use at most this many training records (after reading, before shuffling); ``None`` = all."""
    max_length: int = 4096
    """Maximum tokens per training sequence (prompt + response; for DPO each of prompt+chosen and
    prompt+rejected; for RL the prompt)."""
    truncation: Literal["truncate", "drop"] = "truncate"
    """Over-long samples: ``truncate`` cuts the response end (never inside an image span: the cut moves
    before the span and the image is dropped with it; a sample left with no target tokens is dropped);
    ``drop`` skips the sample. Both are counted in ``metrics.json`` (``truncation``)."""
    packing: bool = False
    """SFT: pack several samples into each ``max_length`` row (text and images); position ids restart per
    sample, attention never crosses samples, image spans are never split."""
    blank_images: bool = False
    """Replace every image by a blank one of the same size (the ablation that shows images are used)."""
    mixture: list[dict] = field(default_factory=list)
    """Draw the training set from several sets (``mmredstar.data.mixture``): ``[{path: SET, count: 4000},
    {path: SET, weight: 0.2}]`` (``path``: a named set, file, directory, glob or ``builtin:NAME``; ``count``: exact
    records or ``all``; ``weight``: a share of ``mixture_total``). Drawn before ``train`` files, which are added
    as they are; ``OUTPUT_DIR/mixture_manifest.json`` records what was drawn (hashes, counts, ids)."""
    mixture_total: int | None = None
    """Records of the mixture when sources are weighted (weights share what exact counts leave)."""
    mixture_seed: int = 0
    """Seed of the draw (per source: the records with the smallest ``sha256(seed:id)``, as ``mmredstar data subset``)."""


@dataclass
class TrainConfig:
    """Optimisation, schedule, precision, checkpoints and parallelism (the transformers Trainer's knobs)."""

    lr: float = 1e-5
    """Peak learning rate (the LM's; see ``model.lrs`` for per-module rates)."""
    epochs: float = 1.0
    """Passes over the training data (ignored when ``max_steps`` > 0)."""
    max_steps: int = -1
    """Stop after this many optimiser steps; -1 = run ``epochs``."""
    batch_size: int = 8
    """Global batch size in samples (packed rows for packed SFT; pairs for DPO; completions for RL) per
    optimiser step. Gradient accumulation = batch_size / (micro_batch_size x data-parallel processes)."""
    micro_batch_size: int = 1
    """Samples per process per forward pass."""
    lr_scheduler: str = "linear"
    """``linear`` | ``cosine`` | ``constant`` | ``constant_with_warmup`` | any transformers scheduler name."""
    warmup_ratio: float = 0.0
    """Fraction of steps with linear warm-up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 disables)."""
    optim: str = "adamw_torch"
    """Optimiser name as transformers knows it."""
    seed: int = 42
    """Seed for data order, initialisation of tiny presets, dropout and sampling."""
    bf16: Literal["auto", True, False] = "auto"
    """bfloat16 mixed precision: ``auto`` = on when a GPU supports it, off on CPU."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (long context)."""
    liger: Literal["auto", True, False] = "auto"
    """Liger kernels: ``auto`` = on when ``liger-kernel`` is installed and a GPU is present."""
    fused_linear_ce: bool = False
    """SFT: compute the LM head and the cross-entropy together over chunks of tokens, never holding the
    ``[tokens, vocab]`` logits (Liger's kernel on a GPU when installed, else pure torch); same loss and
    gradients (``mmredstar/training/memory.py``). For long sequences."""
    ce_chunk_tokens: int = 0
    """Tokens per fused cross-entropy chunk; 0 = auto (chunk x vocab <= 64M fp32 logits, 256 tokens for Qwen2.5)."""
    tiled_mlp: bool = False
    """SFT/DPO: run each decoder layer's MLP over sequence tiles with recomputation (Arctic long sequence
    training); same loss and gradients, a fraction of the MLP activation memory. For long sequences."""
    mlp_tile_tokens: int = 0
    """Tokens per MLP tile; 0 = the LM's hidden size."""
    varlen_attention: Literal["auto", True, False] = "auto"
    """Packed SFT rows: causal sdpa per packed sample (cost sum of s_i^2, no S x S block mask; the flash kernel on a
    GPU) instead of masked attention over the whole row; same outputs. ``auto`` = on with packing, sdpa attention
    and no sequence parallelism (``mmredstar/training/kernels.py``)."""
    offload_activations: bool = False
    """SFT/DPO: activation checkpointing with the checkpointed layer inputs held in (pinned) host memory between
    forward and backward; implies checkpointing. Saves ``layers x tokens x hidden`` bytes of GPU memory."""
    deepspeed: str | None = None
    """DeepSpeed config: ``zero2``, ``zero3`` (shipped in ``train/deepspeed/``) or a JSON path; ``None`` = none."""
    sequence_parallel: int = 1
    """Ulysses sequence-parallel degree (DeepSpeed ALST); needs ``deepspeed`` and sdpa/flash attention."""
    logging_steps: int = 1
    """Log the loss every this many steps (metrics.json keeps every logged value)."""
    save_steps: int = 0
    """Save a resumable checkpoint every this many steps; 0 = only the final model."""
    save_total_limit: int | None = 2
    """Keep at most this many checkpoints."""
    eval_steps: int = 0
    """Evaluate on ``data.eval`` every this many steps; 0 = at the end only (when eval data is given)."""
    resume: bool = False
    """Resume from the last checkpoint in the output directory (weights, optimiser, scheduler, data order, RNG)."""
    num_threads: int | None = None
    """torch CPU threads (``torch.set_num_threads``); ``None`` = leave as is."""
    dataloader_num_workers: int = 0
    """Background data-loading processes."""
    report_to: list[str] = field(default_factory=list)
    """Experiment trackers (``wandb``, ``tensorboard``); empty = none."""
    progress: bool = True
    """Show tqdm progress bars."""
    extra_args: dict = field(default_factory=dict)
    """Any other ``TrainingArguments`` / TRL config field, passed through verbatim."""


@dataclass
class SFTConfig:
    """Supervised fine-tuning on one target response per sample."""

    loss_on_think: bool = True
    """Train on the ``<think>...</think>`` block too (``false``: loss only on the text after it)."""


@dataclass
class DPOConfig:
    """Direct preference optimisation from (chosen, rejected) pairs, through TRL's DPOTrainer."""

    beta: float = 0.1
    """KL strength of the DPO loss (the paper: 0.3 and 0.5)."""
    loss_type: str = "sigmoid"
    """TRL loss type (``sigmoid`` = the DPO paper's; ``ipo``, ``hinge``, ...)."""
    label_smoothing: float = 0.0
    """Conservative-DPO label smoothing."""
    precompute_ref_log_probs: bool = False
    """Compute the reference model's log-probs once before training (frees the reference model)."""
    sft_weight: float = 0.0
    """Add TRL's ``sft`` loss on the chosen response with this weight (0 = pure DPO)."""


@dataclass
class RLConfig:
    """Online RL with the rule reward (GRPO or REINFORCE++) through TRL's GRPOTrainer."""

    num_generations: int = 2
    """Responses sampled per prompt (the paper: 2)."""
    temperature: float = 1.0
    """Sampling temperature (the paper: 1.0)."""
    top_p: float = 1.0
    """Nucleus sampling."""
    max_completion_length: int = 256
    """Maximum new tokens per response."""
    beta: float = 0.0
    """KL penalty coefficient against the initial policy (0 = no reference model)."""
    epsilon: float = 0.2
    """PPO-style clipping range of the importance ratio."""
    num_iterations: int = 1
    """Optimisation passes per generated batch."""
    loss_type: str = "dapo"
    """TRL loss aggregation (``grpo``, ``dapo``, ``dr_grpo``, ``bnpo``)."""
    reward: str = "rule"
    """``rule`` (r = 1 verified / 0 wrong / -1 no valid answer, ``mmredstar.verify``) or ``module:function``
    returning a TRL reward function when called with ``reward_options``."""
    reward_options: dict = field(default_factory=dict)
    """Keyword options for the reward (e.g. verifier options)."""
    scale_rewards: Literal["group", "batch", "none"] = "group"
    """GRPO's advantage scaling (ignored by REINFORCE++, which always normalises over the global batch)."""


@dataclass
class Recipe:
    """One training run: method, model, data, optimisation, and the method's own settings."""

    method: Literal["sft", "dpo", "grpo", "reinforce_pp", "ppm"] = "sft"
    """``sft`` | ``dpo`` | ``grpo`` | ``reinforce_pp`` | ``ppm`` (a process preference model on step pairs,
    ``mmredstar.training.ppm``)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The model (a preset name or path; the shorthand ``model: NAME`` sets ``model.name``)."""
    data: DataConfig = field(default_factory=DataConfig)
    """The data (the shorthand ``data: [a, b]`` sets ``data.train``)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation and infrastructure."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    """SFT settings (``method: sft``)."""
    dpo: DPOConfig = field(default_factory=DPOConfig)
    """DPO settings (``method: dpo``)."""
    rl: RLConfig = field(default_factory=RLConfig)
    """RL settings (``method: grpo`` / ``reinforce_pp``)."""
    output_dir: str | None = None
    """Where weights, checkpoints, metrics.json, the resolved recipe and the data manifest go;
    default ``runs/<recipe name>``."""
    description: str = ""
    """What this run reproduces (free text, e.g. the paper's table)."""
    source: str = ""
    """Where the hyper-parameters come from (paper section / table)."""

    # runtime-only (not recipe keys)
    path: str | None = field(default=None, metadata={"runtime": True})
    name: str | None = field(default=None, metadata={"runtime": True})

    def to_dict(self) -> dict:
        """The recipe as plain data (runtime fields dropped): what ``recipe.resolved.yaml`` holds."""
        return _config.to_plain(self)


# ----------------------------------------------------------------------------------------- loading
def _shorthand(section: str, value: Any) -> Any:
    """``model: NAME`` -> ``{name: NAME}``; ``data: [files]`` / ``data: FILE`` -> ``{train: [...]}``."""
    if section == "model" and isinstance(value, str):
        return {"name": value}
    if section == "data" and isinstance(value, (list, str)):
        return {"train": value if isinstance(value, list) else [value]}
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.lr=1e-5"`` -> ``("train.lr", "1e-5")``: the value is read as YAML and typed by its field.

    >>> parse_override("data.train=[a.jsonl, b.jsonl]")
    ('data.train', ['a.jsonl', 'b.jsonl'])
    """
    return _config.parse_override(text, RecipeError)


def apply_overrides(data: dict, overrides: list[str] | dict | None) -> dict:
    """Set dotted keys in a nested dict (a copy); ``model=NAME``/``data=[...]`` shorthands work too."""
    return _config.apply_overrides(data, overrides, shorthand=_shorthand, error=RecipeError)


def recipe_from_dict(data: dict, *, file: str = "<recipe>", lines: dict[str, int] | None = None) -> Recipe:
    """Build and check a ``Recipe`` from plain data (keys and types; not the referenced assets)."""
    if not isinstance(data, dict):
        raise RecipeError(f"{file}: a recipe must be a YAML mapping, got {type(data).__name__}")
    rec = _config.build_dataclass(Recipe, data, file=file, lines=lines, error=RecipeError, shorthand=_shorthand)
    if not rec.model.name:
        raise RecipeError(f"{file}: key 'model' is missing: name a preset (e.g. 'model: tiny_text') or a path")
    if not rec.data.train and not rec.data.mixture:
        raise RecipeError(f"{file}: key 'data' is missing: list sample files or named sets under 'data.train'")
    if rec.data.mixture:
        from mmredstar.data.mixture import parse_mixture

        try:
            parse_mixture(rec.data.mixture)
        except ValueError as e:
            raise RecipeError(f"{file}:{(lines or {}).get('data.mixture', '?')}: key {e}") from None
    t = rec.train
    if t.batch_size < 1 or t.micro_batch_size < 1:
        raise RecipeError(f"{file}: train.batch_size and train.micro_batch_size must be >= 1")
    if t.sequence_parallel > 1 and not t.deepspeed:
        raise RecipeError(f"{file}:{(lines or {}).get('train.sequence_parallel', '?')}: key 'train.sequence_parallel'"
                          f"={t.sequence_parallel} needs DeepSpeed: set train.deepspeed (e.g. zero2 or zero3)")
    if t.sequence_parallel > 1 and rec.method != "sft":
        raise RecipeError(f"{file}: train.sequence_parallel is supported for SFT (long-context fine-tuning); "
                          f"set it to 1 for method {rec.method}")
    if rec.method in ("grpo", "reinforce_pp") and rec.rl.num_generations < 2:
        raise RecipeError(f"{file}: rl.num_generations must be >= 2 (advantages compare responses to one another)")
    return rec


def load_recipe(name_or_path: str | os.PathLike, overrides: list[str] | dict | None = None) -> Recipe:
    """Resolve a recipe (bare name under ``train/`` or a path), apply overrides and check keys and types."""
    path = resolve("train", name_or_path)
    data, file, lines = _config.read_yaml(path, kind="train", error=RecipeError)
    data = apply_overrides(data, overrides)
    rec = recipe_from_dict(data, file=file, lines=lines)
    rec.path = str(path)
    rec.name = recipe_name(path)
    return rec


def recipe_name(path: str | os.PathLike) -> str:
    """``.../train/qwen2_5/7B_sft_4k.yaml`` -> ``qwen2_5/7B_sft_4k``; other paths -> the file stem."""
    p = Path(path).resolve()
    parts = p.with_suffix("").parts
    if "train" in parts:
        i = len(parts) - 1 - parts[::-1].index("train")
        return "/".join(parts[i + 1:])
    return p.stem


def dump_recipe(rec: Recipe) -> str:
    """The resolved recipe as YAML text (what ``recipe.resolved.yaml`` holds)."""
    head = f"# resolved from {rec.name or rec.path}: every default filled in, every override applied\n"
    return head + yaml.safe_dump(rec.to_dict(), sort_keys=False, allow_unicode=True)
