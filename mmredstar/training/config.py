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
from typing import Any, ClassVar, Literal

import yaml

from mmredstar import config as _config
from mmredstar.assets import resolve
from mmredstar.config import ConfigError

METHODS = ("sft", "dpo", "grpo", "reinforce_pp", "reinforce_baseline", "ppo", "ppm")
RL_METHODS = ("grpo", "reinforce_pp", "reinforce_baseline", "ppo")


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
    init_build: bool = False
    """Train the ``init_from`` recipe first when its output does not exist yet (one process; the tiny RL
    recipes build their SFT checkpoint this way in seconds)."""
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

    key_aliases: ClassVar[dict[str, str]] = {"model_name_or_path": "name", "torch_dtype": "dtype"}


@dataclass
class DataConfig:
    """What to train on and how to shape it into sequences."""

    train: list[str | dict] = field(default_factory=list)
    """Training data: sample files, globs, directories, named sets (``train/_sets.yaml``), ``builtin:NAME``, or
    input mappings (``mmredstar.data.inputs.InputSpec`` keys: ``{card: math, src: MATH/train, where: [...],
    limit: N}``). SFT files hold samples with one response (the target); DPO files hold pairs; RL files hold prompts."""
    eval: list[str | dict] = field(default_factory=list)
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

    key_aliases: ClassVar[dict[str, str]] = {"max_seq_length": "max_length"}


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
    resume_changes: bool = False
    """Let ``resume`` continue a run whose recipe differs from the one it started with (e.g. a larger
    ``train.max_steps``); without it such a resume is refused, naming the changed keys."""
    overwrite: bool = False
    """Start afresh in an output directory that holds a finished run or checkpoints (they are removed first);
    without it (and without ``resume``) such a run is refused."""
    num_threads: int | str | None = None
    """torch CPU threads (``torch.set_num_threads``); ``auto``: the cores idle when the run starts
    (``mmredstar.cpu``: a tiny model's many small kernels thrash when a 2-thread run shares its cores);
    ``None`` = leave as is."""
    dataloader_num_workers: int = 0
    """Background data-loading processes."""
    report_to: list[str] = field(default_factory=list)
    """Experiment trackers (``wandb``, ``tensorboard``); empty = none."""
    progress: bool = True
    """Show tqdm progress bars."""
    extra_args: dict = field(default_factory=dict)
    """Any other ``TrainingArguments`` / TRL config field (``DPOConfig`` for dpo, ``GRPOConfig`` for grpo),
    passed through verbatim (ppo, reinforce_pp, reinforce_baseline and ppm run their own loop: none). ``--check``
    checks the names against the installed classes; a field that a key above sets (``learning_rate`` is
    ``train.lr``) is an error here: set the key."""

    key_aliases: ClassVar[dict[str, str]] = {
        "learning_rate": "lr", "num_train_epochs": "epochs", "lr_scheduler_type": "lr_scheduler",
        "per_device_train_batch_size": "micro_batch_size", "use_liger_kernel": "liger"}
    key_notes: ClassVar[dict[str, str]] = {
        "gradient_accumulation_steps": "accumulation follows from 'train.batch_size', the global batch = "
                                       "micro_batch_size x gradient_accumulation_steps x data-parallel processes; "
                                       "set train.batch_size (and train.micro_batch_size)",
        "per_device_eval_batch_size": "evaluation uses train.micro_batch_size",
        "output_dir": "'output_dir' is a top-level recipe key",
        "warmup_steps": "set train.warmup_ratio (a fraction of the steps)"}


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
class PPOConfig:
    """Our own RL loop (``training/ppo.py``): PPO with a critic, REINFORCE++ and REINFORCE++-baseline.

    Sampling, KL strength, clipping and the reward come from the ``rl`` section (``num_generations``,
    ``temperature``, ``top_p``, ``max_completion_length``, ``beta``, ``epsilon``, ``reward``); ``train.lr`` is
    the actor's learning rate, ``train.batch_size`` the prompts per rollout step, ``train.micro_batch_size``
    the rows per forward pass."""

    critic: Literal["value_head", "separate"] = "value_head"
    """PPO's critic: a value head on the actor's backbone (one model, both losses) or a separate critic model
    (a copy of the initial model with its own value head)."""
    critic_lr: float = 5.0e-6
    """Learning rate of the critic (value head and, when separate, its backbone)."""
    critic_warmup_steps: int = 0
    """First rollout steps during which only the critic learns (the actor's learning rate is 0)."""
    gamma: float = 1.0
    """Discount of GAE and of REINFORCE++'s returns."""
    lam: float = 0.95
    """GAE lambda."""
    value_clip: float = 0.2
    """Clip range of the value loss around the rollout's values (0 = unclipped)."""
    vf_coef: float = 0.5
    """Weight of the value loss (matters with a value head on the actor's backbone)."""
    kl_estimator: Literal["k1", "k3"] = "k1"
    """Per-token KL to the frozen reference folded into the reward: ``k1`` = log p - log p_ref,
    ``k3`` = (r - 1) - log r with r = p_ref / p (non-negative, lower variance)."""
    ppo_epochs: int = 1
    """Passes over each rollout batch."""
    mini_batch_size: int = 0
    """Responses per optimiser step within a pass (global, over all processes); 0 = the whole rollout batch."""
    whiten_advantages: bool = True
    """PPO: normalise the GAE advantages over the global batch (REINFORCE++ always does)."""
    rollout: Literal["hf", "vllm", "server"] = "hf"
    """Rollout backend (``training/rollout.py``): ``hf`` (transformers generate, the CPU path), ``vllm``
    (colocated engine, weights synced after each update; GPU), ``server`` (OpenAI-compatible server)."""
    rollout_prompts_per_call: int = 1
    """``rollout: hf``: prompts generated together (x ``rl.num_generations`` rows). 1 = each prompt's responses
    depend only on (seed, step, prompt id), so runs agree across process layouts; more is faster."""
    rollout_url: str | None = None
    """``rollout: server``: the server's base URL (``http://host:8000/v1``)."""
    rollout_model: str | None = None
    """``rollout: server``: the model name the server serves."""
    rollout_sync_dir: str | None = None
    """``rollout: server``: save the actor here after each update (for a server that reloads from disk)."""
    vllm_engine: dict = field(default_factory=dict)
    """``rollout: vllm``: extra ``vllm.LLM`` options (``gpu_memory_utilization``, ``max_model_len``, ...)."""


@dataclass
class PPMConfig:
    """Process preference model training (``method: ppm``, ``training/ppm.py``): against over-fitting a few
    hundred step pairs."""

    trainable_layers: int = -1
    """Train only the backbone's last N blocks (and its final norm) besides the value head; 0 = the head alone
    (a linear probe on the frozen backbone); -1 = the whole model (less what ``model.freeze`` freezes)."""
    val_share: float = 0.0
    """Share of the training problems whose pairs form a validation split (by ``meta.problem_id``); the weights
    with the best validation pairwise accuracy are kept. 0 = no split (the last weights are kept)."""
    val_every: int = 0
    """Score the validation split every this many steps; 0 = once per epoch."""
    patience: int = 0
    """Stop after this many validation checks without improvement; 0 = run all steps (still keep the best)."""
    step_logprob: bool = False
    """Add the backbone's own log-likelihood of the step (its LM head, summed over the step's tokens, times a
    learned weight starting at 1) to the value head's score (``mmredstar.modeling.ppm``). Off: the paper's PPM,
    the LM head replaced by the value head."""
    pool: Literal["last", "step_mean"] = "last"
    """Which hidden states the value head reads: ``last`` (the step's last token, as in the paper) or
    ``step_mean`` (the mean over the step's own tokens)."""


@dataclass
class Recipe:
    """One training run: method, model, data, optimisation, and the method's own settings."""

    method: Literal["sft", "dpo", "grpo", "reinforce_pp", "reinforce_baseline", "ppo", "ppm"] = "sft"
    """``sft`` | ``dpo`` | ``grpo`` (TRL) | ``reinforce_pp`` | ``reinforce_baseline`` | ``ppo`` (``training/ppo.py``)
    | ``ppm`` (a process preference model on step pairs, ``mmredstar.training.ppm``)."""
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
    """RL settings (``method: grpo`` / ``reinforce_pp`` / ``reinforce_baseline`` / ``ppo``)."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """Settings of our RL loop (``method: ppo`` / ``reinforce_pp`` / ``reinforce_baseline``)."""
    ppm: PPMConfig = field(default_factory=PPMConfig)
    """Process preference model settings (``method: ppm``)."""
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
    """Set dotted keys in a nested dict (a copy); ``model=NAME``/``data=[...]`` shorthands work too, and so do
    the other names of keys (``train.learning_rate=1e-5`` sets ``train.lr``)."""
    return _config.apply_overrides_to(Recipe, data, overrides, shorthand=_shorthand, error=RecipeError)


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
    for key, v, ok, need in (("lr", t.lr, t.lr > 0, "> 0"), ("epochs", t.epochs, t.epochs > 0, "> 0"),
                             ("warmup_ratio", t.warmup_ratio, 0 <= t.warmup_ratio < 1, "in [0, 1)"),
                             ("weight_decay", t.weight_decay, t.weight_decay >= 0, ">= 0"),
                             ("max_grad_norm", t.max_grad_norm, t.max_grad_norm >= 0, ">= 0"),
                             ("save_steps", t.save_steps, t.save_steps >= 0, ">= 0"),
                             ("num_threads", t.num_threads, t.num_threads is None or t.num_threads == "auto"
                              or (isinstance(t.num_threads, int) and t.num_threads >= 1), "a number >= 1 or 'auto'")):
        if not ok:
            raise RecipeError(f"{_config.where(file, lines or {}, 'train.' + key)}: key 'train.{key}'={v!r} must be {need}")
    if not 0 <= rec.ppm.val_share < 1:
        raise RecipeError(f"{_config.where(file, lines or {}, 'ppm.val_share')}: key 'ppm.val_share'="
                          f"{rec.ppm.val_share!r} must be in [0, 1)")
    if t.batch_size < 1 or t.micro_batch_size < 1:
        raise RecipeError(f"{file}: train.batch_size and train.micro_batch_size must be >= 1")
    if t.sequence_parallel > 1 and not t.deepspeed:
        raise RecipeError(f"{file}:{(lines or {}).get('train.sequence_parallel', '?')}: key 'train.sequence_parallel'"
                          f"={t.sequence_parallel} needs DeepSpeed: set train.deepspeed (e.g. zero2 or zero3)")
    if t.sequence_parallel > 1 and rec.method != "sft":
        raise RecipeError(f"{file}: train.sequence_parallel is supported for SFT (long-context fine-tuning); "
                          f"set it to 1 for method {rec.method}")
    if rec.method in ("grpo", "reinforce_baseline") and rec.rl.num_generations < 2:
        raise RecipeError(f"{file}: rl.num_generations must be >= 2 (advantages compare responses to one another)")
    for k in rec.train.extra_args:
        ours = named_key(k, rec.method)
        if ours is not None:
            raise RecipeError(f"{_config.where(file, lines or {}, 'train.extra_args.' + str(k))}: key "
                              f"'train.extra_args.{k}': the recipe key '{ours}' sets {k}; set '{ours}' instead "
                              "(extra_args are for fields no key covers)")
    return rec


# ----------------------------------------------------------------------------------------- extra_args
TRAINER_NAMES: dict[str, str] = {
    "output_dir": "output_dir", "per_device_train_batch_size": "train.micro_batch_size",
    "per_device_eval_batch_size": "train.micro_batch_size", "gradient_accumulation_steps": "train.batch_size",
    "learning_rate": "train.lr", "num_train_epochs": "train.epochs", "max_steps": "train.max_steps",
    "lr_scheduler_type": "train.lr_scheduler", "warmup_steps": "train.warmup_ratio",
    "warmup_ratio": "train.warmup_ratio", "weight_decay": "train.weight_decay",
    "max_grad_norm": "train.max_grad_norm", "optim": "train.optim", "seed": "train.seed", "data_seed": "train.seed",
    "bf16": "train.bf16", "gradient_checkpointing": "train.gradient_checkpointing", "use_liger_kernel": "train.liger",
    "deepspeed": "train.deepspeed", "logging_steps": "train.logging_steps", "save_steps": "train.save_steps",
    "save_strategy": "train.save_steps", "save_total_limit": "train.save_total_limit", "report_to": "train.report_to",
    "disable_tqdm": "train.progress", "dataloader_num_workers": "train.dataloader_num_workers",
    "eval_steps": "train.eval_steps", "eval_strategy": "train.eval_steps",
    "parallelism_config": "train.sequence_parallel",
}
"""``TrainingArguments`` field -> the recipe key the runner sets it from (``runner.trainer_args``)."""
METHOD_NAMES: dict[str, dict[str, str]] = {
    "dpo": {"beta": "dpo.beta", "loss_type": "dpo.loss_type", "loss_weights": "dpo.sft_weight",
            "label_smoothing": "dpo.label_smoothing", "precompute_ref_log_probs": "dpo.precompute_ref_log_probs",
            "max_length": "data.max_length"},
    "grpo": {k: f"rl.{k}" for k in ("num_generations", "temperature", "top_p", "max_completion_length", "beta",
                                     "epsilon", "num_iterations", "loss_type", "scale_rewards")},
}
"""TRL config field -> the recipe key the method sets it from (``dpo.py``, ``rl.py``)."""


def named_key(arg: str, method: str) -> str | None:
    """The recipe key that sets the ``TrainingArguments`` / TRL config field ``arg`` for ``method`` (or None)."""
    return METHOD_NAMES.get(method, {}).get(arg) or TRAINER_NAMES.get(arg)


OWN_LOOP_METHODS = ("ppo", "reinforce_pp", "reinforce_baseline", "ppm")
"""Methods trained by our own loop (``ppo.py``, ``ppm.py``), with no ``TrainingArguments`` to pass extra_args to."""


def args_class(method: str):
    """The arguments class the method's trainer takes: ``TrainingArguments`` (sft), TRL's ``DPOConfig`` (dpo)
    or ``GRPOConfig`` (grpo); ``None`` for the methods with their own loop. Imports transformers / trl."""
    if method in OWN_LOOP_METHODS:
        return None
    if method == "dpo":
        from trl import DPOConfig

        return DPOConfig
    if method == "grpo":
        from trl import GRPOConfig

        return GRPOConfig
    from transformers import TrainingArguments

    return TrainingArguments


def check_extra_args(rec: Recipe, where: str = "") -> None:
    """Every ``train.extra_args`` name must be a field of the installed arguments class (did-you-mean otherwise)."""
    if not rec.train.extra_args:
        return
    import dataclasses
    import difflib

    cls = args_class(rec.method)
    if cls is None:
        raise RecipeError(f"{where or rec.path or '<recipe>'}: key 'train.extra_args': method {rec.method} runs its own "
                          "training loop (no TrainingArguments), so extra_args would be ignored; remove it")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for k in rec.train.extra_args:
        if k not in names:
            close = difflib.get_close_matches(str(k), names, n=1)
            ours = [a for a in (close or []) if named_key(a, rec.method)]
            hint = (f"did you mean '{close[0]}'" + (f" (set it as '{named_key(close[0], rec.method)}')" if ours else "")
                    + "?") if close else f"see {cls.__module__}.{cls.__name__}"
            raise RecipeError(f"{where or rec.path or '<recipe>'}: key 'train.extra_args.{k}': not a field of "
                              f"{cls.__name__} (method {rec.method}); {hint}")


def load_recipe(name_or_path: str | os.PathLike, overrides: list[str] | dict | None = None) -> Recipe:
    """Resolve a recipe (bare name under ``train/`` or a path), apply overrides and check keys and types.
    An error about an overridden key names the override, not a line of the file."""
    path = resolve("train", name_or_path)
    data, file, lines = _config.read_yaml(path, kind="train", error=RecipeError)
    data = apply_overrides(data, overrides)
    lines = _config.mark_overrides(lines, overrides, RecipeError, Recipe)
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
