"""Typed curation configs: every YAML key of ``mmredstar curate CONFIG.yaml`` is a field below,
documented once, on the field.

    mmredstar curate configs/curate/geoqa_fixture.yaml --set sampling.temperature=0.6

Python::

    from mmredstar.curate.config import load_config
    cfg = load_config("configs/curate/geoqa_fixture.yaml", ["out=runs/x", "workers=2"])

Loading checks every key and type; a problem is reported as ``file:line: key 'a.b': ...`` with a
did-you-mean. Relative paths in a config are relative to the working directory the command runs in
(run the shipped configs from the repository root). Teacher and difficulty-source options are
checked against the chosen backend's own config class when the config is loaded.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from typing import Any

from mmredstar.config import (  # noqa: F401  (re-exported: the config API lived here first)
    ConfigError,
    apply_overrides,
    build_dataclass,
    load_dataclass,
    parse_override,
    where,
)
from mmredstar.config import field_docs as _field_docs
from mmredstar.data.inputs import InputSpec, check_input
from mmredstar.generate import SamplingParams
from mmredstar.trackers import check_report_to

from ..difficulty.sources import build_source
from ..generate import teacher_config
from ..levels import parse_schedule

# ----------------------------------------------------------------------------------------- sections
PAIRINGS = ("random", "shortest_chosen", "longest_rejected", "shortest_longest", "all")
"""The DPO pairing rules (``select.dpo.pairing``; ``mmredstar.curate.select`` implements them)."""


@dataclass
class DecontaminateConfig:
    """Drop training prompts that overlap evaluation benchmarks (word n-gram overlap of the question text)."""

    benchmarks: list[InputSpec] = field(default_factory=list)
    """The evaluation sets, as sample files or card + src (same keys as ``inputs``). Empty: no decontamination."""
    ngram: int = 13
    """n of the word n-grams compared (13 is the common practice, e.g. GPT-3 / OLMo decontamination)."""
    min_words: int = 6
    """A benchmark question shorter than ``ngram`` words is matched as a whole word sequence when it has
    at least this many words; shorter ones are ignored (too generic to mean contamination)."""


@dataclass
class DifficultyConfig:
    """Where each prompt's difficulty (1-10) comes from, and which difficulties are kept."""

    source: str = "labels"
    """``labels`` (the dataset's own, already in ``Sample.difficulty``), ``scorer`` (a model prompted with a
    rubric), ``pass_rate`` (a student's pass rate over k samples), or a dotted path ``pkg.mod:factory``
    (see ``mmredstar.difficulty.sources``)."""
    params: dict = field(default_factory=dict)
    """Options of the source (see its config class in ``mmredstar.difficulty.sources``), e.g. for ``scorer``:
    ``{teacher: {kind: openai, model: ...}, votes: 1}``; for ``pass_rate``: ``{teacher: {...}, k: 8}``."""
    range: list[float] | None = None
    """Keep only prompts whose difficulty band (difficulty rounded half up) lies in ``[lo, hi]``, e.g.
    ``[7, 9]``. ``None``: keep all."""
    keep_unknown: bool = False
    """With a ``range``: keep prompts whose difficulty is unknown (``None``) instead of dropping them."""
    default: float | None = None
    """Difficulty given to prompts the source leaves unknown (``None``: stays unknown)."""


@dataclass
class SFTSelect:
    """SFT positives: verified responses, deduplicated, capped per prompt."""

    enabled: bool = True
    """Write ``sft.jsonl``."""
    dedupe: bool = True
    """Drop a response whose normalised text (case and whitespace folded) repeats another of the same prompt."""
    shortest_k: int | None = None
    """Keep the k shortest verified responses of each prompt (``None``: all)."""
    max_per_prompt: int | None = None
    """At most this many SFT records per prompt (after ``shortest_k``; ``None``: no cap)."""


@dataclass
class DPOSelect:
    """DPO pairs: a verified (chosen) and a failed (rejected) response of the same prompt and images."""

    enabled: bool = True
    """Write ``dpo.jsonl``."""
    pairing: str = "random"
    """``random`` (seeded), ``shortest_chosen`` (shortest verified vs random failed), ``longest_rejected``
    (random verified vs longest failed), ``shortest_longest`` (shortest verified vs longest failed), ``all``
    (every chosen x rejected combination, in order)."""
    max_pairs_per_prompt: int = 1
    """At most this many pairs per prompt; each response is used at most once except with ``all``."""
    rejected_verdicts: list[str] = field(default_factory=lambda: ["wrong", "no_answer"])
    """Verdicts a rejected response may have (``wrong``, ``no_answer``, ``error``)."""
    include_filtered: bool = False
    """Also use responses dropped by rule filters (repetitive, wrong language, ...) as rejected."""
    seed: int = 0
    """Seed of the pairing choices (combined with the sample id: independent of order and workers)."""


@dataclass
class RLSelect:
    """RL prompt sets: prompts whose teacher pass rate is mixed (neither always nor never solved)."""

    enabled: bool = True
    """Write ``rl.jsonl`` (prompts without responses, with ``meta.pass_rate``)."""
    min_pass_rate: float = 0.0
    """Keep prompts with pass rate strictly above this."""
    max_pass_rate: float = 1.0
    """Keep prompts with pass rate strictly below this."""
    min_responses: int = 2
    """Only prompts with at least this many teacher responses have a meaningful pass rate."""


@dataclass
class SelectConfig:
    """What goes into the output sets."""

    sft: SFTSelect = field(default_factory=SFTSelect)
    """SFT positives."""
    dpo: DPOSelect = field(default_factory=DPOSelect)
    """DPO pairs."""
    rl: RLSelect = field(default_factory=RLSelect)
    """RL prompt sets."""


@dataclass
class ReportConfig:
    plots: bool = True
    """Write PNG plots (funnel, pass rate by difficulty, response lengths) beside ``report.md``."""


@dataclass
class CurateConfig:
    """One curation run: inputs -> decontaminate -> difficulty -> range -> teacher -> filters -> verify -> select."""

    out: str = "runs/curate"
    """Output directory: ``sft.jsonl``, ``dpo.jsonl``, ``rl.jsonl``, ``rejected.jsonl``,
    ``decontaminated.jsonl``, ``report.{json,md}``, plots, and ``units/`` (the resumable work units)."""
    inputs: list[InputSpec] = field(default_factory=list)
    """Where the prompts come from (read in order, streaming)."""
    decontaminate: DecontaminateConfig = field(default_factory=DecontaminateConfig)
    """Benchmark decontamination."""
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    """Difficulty source and range selection."""
    schedule: dict = field(default_factory=lambda: {"1-10": 4})
    """Teacher samples per prompt by difficulty band: ``{"1-3": 2, "4-6": 4, "7-10": 8}`` (bands inclusive,
    difficulty rounded half up). The paper samples harder prompts more."""
    default_n: int = 4
    """Teacher samples for a prompt whose difficulty is unknown or outside every schedule band."""
    teacher: dict = field(default_factory=lambda: {"kind": "scripted"})
    """The teacher: ``{kind: vllm | openai | transformers | replay | scripted | pkg.mod:Class, ...options}``;
    the options are the fields of that teacher's config class (``mmredstar.generate``)."""
    sampling: SamplingParams = field(default_factory=SamplingParams)
    """Sampling parameters."""
    filters: Any = None
    """Rule filters run on each response before verification (``mmredstar.verify.filters.run_filters``
    spec, e.g. ``[repetition, {language: {lang: en}}, answer_format, code_complete]``); ``None``: none."""
    verify: dict = field(default_factory=dict)
    """Options passed to ``mmredstar.verify.verify_response`` (e.g. ``{timeout: 10}`` for code)."""
    verify_workers: int = 0
    """Processes verifying responses (``mmredstar.verify.verify_many``); 0 or 1: in this process. Worth it
    for code (sandboxed test runs) and large math sets."""
    select: SelectConfig = field(default_factory=SelectConfig)
    """What goes into the SFT, DPO and RL files."""
    report: ReportConfig = field(default_factory=ReportConfig)
    """Report options."""
    unit_size: int = 64
    """Prompts per work unit. A unit's teacher output is written atomically before the next is used, so a
    kill loses at most the units in flight; a rerun re-queries no finished unit."""
    workers: int = 1
    """Units whose teacher calls run at the same time (threads). Each OpenAI-teacher unit already sends
    up to ``teacher.concurrency`` requests at once."""
    limit: int | None = None
    """Stop after this many input samples (after decontamination)."""
    progress: bool = True
    """Show a progress bar (rate and ETA)."""
    report_to: list[str] = field(default_factory=list)
    """Trackers that get the run's counters (``report.json``'s counts, verdicts, drop reasons, units), as a
    training run's ``train.report_to``: ``[tensorboard]`` (event files under ``OUT/runs/``), ``[wandb]``;
    ``[]``: none (``mmredstar.trackers``)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------------------- loading
def config_from_dict(data: dict, *, file: str = "<config>", lines: dict | None = None) -> CurateConfig:
    """Build and check a ``CurateConfig`` (teacher and difficulty options included)."""
    cfg = build_dataclass(CurateConfig, data, file=file, lines=lines)
    check_config(cfg, lambda key: where(file, lines or {}, key))
    return cfg


def check_config(cfg: CurateConfig, where=lambda key: "<config>") -> None:
    """Semantic checks beyond types: each raises ``ConfigError`` naming the key and what to do."""
    if not cfg.inputs:
        raise ConfigError(f"{where('inputs')}: key 'inputs': no inputs; add e.g. "
                          "`inputs: [{path: data/train.jsonl}]` or `[{card: geoqa, src: GeoQA3/train.pk}]`")
    for i, spec in enumerate(list(cfg.inputs) + list(cfg.decontaminate.benchmarks)):
        key = f"inputs[{i}]" if i < len(cfg.inputs) else f"decontaminate.benchmarks[{i - len(cfg.inputs)}]"
        check_input(spec, key, where)
    try:
        parse_schedule(cfg.schedule)
    except ValueError as e:
        raise ConfigError(f"{where('schedule')}: key 'schedule': {e}") from None
    if cfg.difficulty.range is not None and len(cfg.difficulty.range) != 2:
        raise ConfigError(f"{where('difficulty.range')}: key 'difficulty.range': expected [lo, hi], e.g. [7, 9]")
    for k in ("unit_size", "workers"):
        if getattr(cfg, k) < 1:
            raise ConfigError(f"{where(k)}: key '{k}': must be at least 1")
    if cfg.filters is not None:
        from ..verify.filters import parse_spec

        try:
            parse_spec(cfg.filters)
        except ValueError as e:
            raise ConfigError(f"{where('filters')}: key 'filters': {e}") from None
    try:
        teacher_config(cfg.teacher)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where('teacher')}: key 'teacher': {e}") from None
    try:
        check_report_to(cfg.report_to)
    except ValueError as e:
        raise ConfigError(f"{where('report_to')}: {e}") from None
    try:
        build_source(cfg.difficulty.source, cfg.difficulty.params, check_only=True)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where('difficulty')}: key 'difficulty': {e}") from None
    if cfg.select.dpo.pairing not in PAIRINGS:
        close = difflib.get_close_matches(cfg.select.dpo.pairing, list(PAIRINGS), n=1)
        raise ConfigError(f"{where('select.dpo.pairing')}: key 'select.dpo.pairing': unknown pairing "
                          f"{cfg.select.dpo.pairing!r}" + (f"; did you mean '{close[0]}'?" if close else "")
                          + f"; use one of {list(PAIRINGS)}")


def load_config(path_or_dict: str | os.PathLike | dict | CurateConfig,
                overrides: list[str] | dict | None = None) -> CurateConfig:
    """A ``CurateConfig`` from a YAML file (path or a name under ``configs/``), a dict or a config."""
    cfg, _, where = load_dataclass(CurateConfig, path_or_dict, overrides)
    check_config(cfg, where)
    return cfg


def field_docs(cls=CurateConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, type, doc) for every field of a curation config (or of ``cls``)."""
    return _field_docs(cls, prefix)
