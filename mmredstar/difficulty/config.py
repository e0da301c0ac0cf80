"""Typed config of ``mmredstar difficulty train CONFIG.yaml``: every YAML key is a field below, documented once.

    mmredstar difficulty train configs/difficulty/tiny.yaml --set train.max_steps=100

Python::

    from mmredstar.difficulty.config import load_config
    cfg = load_config("difficulty/tiny", ["out=runs/d"])     # a path or a name under configs/

Loading checks every key and type (``file:line: key 'a.b': ...`` with a did-you-mean), using the same
loader as every config of the package (``mmredstar.config``). Relative paths are relative to the working
directory (run the shipped configs from the repository root).

The difficulty scale: every label is mapped onto ONE 1-10 scale, ``Sample.difficulty``
(``mmredstar.levels``): MATH ``Level L`` -> 2L-1 (1, 3, 5, 7, 9; ``map: math_level``), Omni-MATH's
1-10 ``difficulty`` as is (``map: scale10``, clipped), TACO EASY..VERY_HARD -> 2, 4, 6, 8, 10 (``taco``),
or your own ``{label: number}``. The classification head predicts the integer band 1-10 (difficulty
rounded half up); the regression head predicts the number.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mmredstar.config import ConfigError, load_dataclass
from mmredstar.data.inputs import InputSpec, check_input
from mmredstar.levels import DIFFICULTY_MAPS

HEADS = ("classification", "regression")


@dataclass
class LabelledInput(InputSpec):
    """Labelled problems: any input of ``mmredstar.data.inputs.InputSpec`` (sample files, a data card over its
    raw source, a generated set such as ``builtin: arithmetic``, a named set; with ``where``, ``subset``,
    ``limit``) plus the ones below."""

    label: str | None = None
    """Where the raw label is: ``None`` = ``Sample.difficulty`` (already on the 1-10 scale, as the data cards
    map it); else a sample field or a dotted path into ``meta`` (``level``, ``meta.level``, ``raw.difficulty``)."""
    map: str | dict | None = None
    """How ``label`` maps onto 1-10: ``math_level``, ``scale10``, ``taco`` (``mmredstar.levels``) or a
    ``{label: number}`` mapping. ``None``: the label must already be a number on 1-10."""


@dataclass
class OptimConfig:
    """Optimisation (the transformers ``Trainer``'s knobs; launch with torchrun / accelerate for many GPUs)."""

    lr: float = 1.0e-5
    """Peak learning rate."""
    epochs: float = 1.0
    """Passes over the training problems (ignored when ``max_steps`` > 0)."""
    max_steps: int = -1
    """Stop after this many optimiser steps; -1 = run ``epochs``."""
    batch_size: int = 32
    """Problems per optimiser step (per process x micro batch x accumulation)."""
    micro_batch_size: int = 8
    """Problems per process per forward pass."""
    lr_scheduler: str = "linear"
    """Any transformers scheduler name (``linear``, ``cosine``, ``constant``...)."""
    warmup_ratio: float = 0.0
    """Fraction of steps with linear warm-up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    bf16: bool | str = "auto"
    """bfloat16 mixed precision: ``auto`` = on when a GPU supports it."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (big backbones)."""
    deepspeed: str | None = None
    """DeepSpeed config: ``zero2`` / ``zero3`` (``train/deepspeed/``) or a JSON path."""
    num_threads: int | None = None
    """torch CPU threads; ``None`` = leave as is."""
    logging_steps: int = 10
    """Log the loss every this many steps (``metrics.json`` keeps the series)."""
    extra_args: dict = field(default_factory=dict)
    """Any other ``TrainingArguments`` field, passed through."""


@dataclass
class DifficultyTrainConfig:
    """Train a difficulty scorer: a sequence-classification (or regression) head on a causal LM backbone."""

    model: str = "tiny_text"
    """The backbone: a text preset (``qwen2_5_7b_instruct``, ``tiny_text``), an HF causal-LM directory or hub
    id, or a saved mmredstar run. Its transformer is kept; a new head (``score``) is trained on top."""
    head: str = "classification"
    """``classification`` (10 classes: the integer bands 1-10; cross-entropy) or ``regression`` (one output,
    mean squared error on the 1-10 number)."""
    inputs: list[LabelledInput] = field(default_factory=list)
    """Labelled training problems (read in order)."""
    eval_inputs: list[LabelledInput] = field(default_factory=list)
    """Held-out labelled problems. Empty: ``eval_fraction`` of ``inputs`` is held out (seeded hash of the id)."""
    eval_fraction: float = 0.1
    """Share of ``inputs`` held out when there are no ``eval_inputs``."""
    seed: int = 0
    """Seed of the held-out split, head initialisation (and tiny backbones), data order."""
    template: str = "{question}"
    """The text the scorer reads; ``{question}`` is the problem (the last user message's text)."""
    max_length: int = 512
    """Tokens per problem (longer ones are cut at the end)."""
    dtype: str | None = None
    """Backbone weights dtype (``bfloat16`` for 7B on GPU); ``None`` = the preset's / checkpoint's."""
    out: str = "runs/difficulty/scorer"
    """Output directory: the scorer (``config.json`` + weights + tokenizer + ``scorer.json``), ``metrics.json``,
    ``eval.json`` (agreement with held-out labels vs the constant predictor), ``predictions.jsonl``,
    ``confusion.png``, ``loss.png``."""
    train: OptimConfig = field(default_factory=OptimConfig)
    """Optimisation."""
    progress: bool = True
    """Progress bars."""
    description: str = ""
    """What this scorer is (free text)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check(cfg: DifficultyTrainConfig, where=lambda key: "<config>") -> None:
    """Semantic checks beyond types; each raises ``ConfigError`` naming the key and what to do."""
    if cfg.head not in HEADS:
        raise ConfigError(f"{where('head')}: key 'head': {cfg.head!r} is not one of {list(HEADS)}")
    if not cfg.inputs:
        raise ConfigError(f"{where('inputs')}: key 'inputs': no labelled inputs; add e.g. "
                          "`inputs: [{card: math, src: MATH/train}]` or `[{builtin: arithmetic}]`")
    for group in ("inputs", "eval_inputs"):
        for i, spec in enumerate(getattr(cfg, group)):
            key = f"{group}[{i}]"
            check_input(spec, key, where)
            if isinstance(spec.map, str) and spec.map not in DIFFICULTY_MAPS:
                raise ConfigError(f"{where(key)}: key '{key}.map': unknown map {spec.map!r}; use one of "
                                  f"{list(DIFFICULTY_MAPS)} or a {{label: number}} mapping")
    if not cfg.eval_inputs and not 0.0 < cfg.eval_fraction < 1.0:
        raise ConfigError(f"{where('eval_fraction')}: key 'eval_fraction': must be between 0 and 1 when there are "
                          "no eval_inputs")
    if cfg.max_length < 8:
        raise ConfigError(f"{where('max_length')}: key 'max_length': at least 8 tokens")
    if "{question}" not in cfg.template:
        raise ConfigError(f"{where('template')}: key 'template': must contain {{question}}")


def load_config(path_or_dict, overrides: list[str] | dict | None = None) -> DifficultyTrainConfig:
    """A checked ``DifficultyTrainConfig`` from a YAML path (or a name under ``configs/``), a dict or a config."""
    cfg, _, where = load_dataclass(DifficultyTrainConfig, path_or_dict, overrides)
    check(cfg, where)
    return cfg
