"""The study's config: base model, recipe, pool, the two grids and the benchmarks; checked on load."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mmredstar.config import ConfigError, load_dataclass
from mmredstar.data.subset import parse_size, parse_sizes
from mmredstar.levels import parse_bands

from ...evaluation.config import EvalRunConfig

STUDY_VERSION = 1


# ----------------------------------------------------------------------------------------- config
@dataclass
class BuiltinPool:
    """Built-in data: generated arithmetic problems (level = number of operations) curated with the scripted teacher."""

    problems: int = 400
    """Generated problems (levels in turn; ``mmredstar.synth.arithmetic``)."""
    seed: int = 0
    """Generator seed."""
    levels: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    """Levels (MATH-style; difficulty 2L-1 on the 1-10 scale)."""
    max_operand: int | None = None
    """Operands 1..max_operand at every level, so the level is only the number of operations (default: up to
    ``min(level + 1, 3)`` digits); the held-out test set uses the same unless ``eval.builtin_test`` says otherwise."""
    curate: dict = field(default_factory=dict)
    """Curation config keys (``mmredstar curate --keys``) over the defaults: scripted teacher writing from each
    problem's reference working, error rate rising with difficulty, 2-4 samples per prompt by difficulty."""
    scorer: str | None = None
    """A difficulty-scorer training config (``configs/difficulty/tiny.yaml``): it is trained first (into
    ``OUT/pool/scorer``) and used as curation's difficulty source (``trained``), so the bands come from it."""


@dataclass
class PoolConfig:
    """The data the subsets are drawn from."""

    path: str | list[str | dict] | None = None
    """The curated SFT pool: sample files, globs, a named set of ``train/_sets.yaml`` (e.g. ``redstar_math_1000k``),
    or input mappings (``mmredstar.data.inputs.InputSpec`` keys: ``{path: pool.jsonl, where: ["difficulty>=4"]}``)."""
    root: str | None = None
    """Directory named sets are resolved against (default ``$MMREDSTAR_DATA`` or ``./data``)."""
    builtin: BuiltinPool | None = None
    """Built-in data instead of ``path`` (CPU runs and tests)."""
    rescore: str | None = None
    """A trained difficulty scorer directory: re-score the pool (``mmredstar difficulty score``) before banding."""


@dataclass
class ScaleGrid:
    """Table 1: the same recipe on nested subsets of growing size."""

    enabled: bool = True
    """Run this grid."""
    sizes: list = field(default_factory=lambda: [4000, 8000, 16000, 32000, "all"])
    """The ladder: numbers (``4000``, ``"4k"``) and ``all``."""


@dataclass
class DifficultyGrid:
    """Table 2: the same recipe on subsets of different difficulty."""

    enabled: bool = True
    """Run this grid."""
    bands: dict = field(default_factory=lambda: {"L3": "3", "L4-6": "4-6", "L7-9": "7-9"})
    """Cell name -> inclusive difficulty bands (``Sample.difficulty`` rounded half up)."""
    size: int | str | None = None
    """Cut every band to this many records (equal-size comparison); ``None``: every record of the band."""


@dataclass
class StudyEval(EvalRunConfig):
    """The benchmarks every cell is evaluated on (the shared evaluation-run keys plus the ones below)."""

    benches: list = field(default_factory=list)
    """Benchmark specs: names under ``eval/`` (``math_hard``, ``aime24``...) or paths, or inline
    ``{name: X, spec: {...BenchSpec keys...}}``."""
    data: dict = field(default_factory=dict)
    """``{bench: path}``: where a benchmark's data is (overrides the spec's default)."""
    builtin_test: dict | None = None
    """Built-in held-out problems for the built-in pool: ``{problems: 40, seed: 1, levels: [1, 2], max_new_tokens: 64}``
    adds the benchmark ``arith_heldout`` (problems that are not in the pool)."""
    include_base: bool = True
    """Also evaluate the untrained base model (row ``base``)."""


@dataclass
class StudyConfig:
    """One study: a base model, a recipe, a data pool, the grids and the benchmarks."""

    description: str = ""
    """What the study reproduces."""
    model: str | None = None
    """The base model (a preset or a path); ``None``: the recipe's. Every cell starts from it."""
    recipe: str = "qwen2_5/7B_sft_4k"
    """The training recipe every cell runs (``train/``), with ``data.train`` and ``output_dir`` set per cell."""
    overrides: dict = field(default_factory=dict)
    """Dotted recipe overrides for every cell (``{train.epochs: 3, train.num_threads: 1}``)."""
    pool: PoolConfig = field(default_factory=PoolConfig)
    """The data the subsets are drawn from."""
    seed: int = 0
    """Seed of the subsets (same seed, same ids; smaller sets inside larger ones)."""
    scale: ScaleGrid = field(default_factory=ScaleGrid)
    """Table 1 (data scale)."""
    difficulty: DifficultyGrid = field(default_factory=DifficultyGrid)
    """Table 2 (difficulty)."""
    eval: StudyEval = field(default_factory=StudyEval)
    """The evaluation runs."""
    out: str = "runs/study"
    """Output directory (pool, subsets, cells, eval, study.{json,md,png})."""
    launch: str = "accelerate launch --num_processes 8 -m mmredstar.training"
    """The training launcher ``plan`` prints for each cell (any launcher that runs ``mmredstar.training``)."""
    threads: int | None = None
    """torch CPU threads in this process (tiny runs: 1)."""
    progress: bool = True
    """Progress bars."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path_or_dict, overrides: list[str] | dict | None = None) -> StudyConfig:
    """A checked ``StudyConfig`` from a YAML path (or a name under ``configs/``, e.g. ``study/tiny``) or a dict."""
    cfg, _, where = load_dataclass(StudyConfig, path_or_dict, overrides)
    _check(cfg, where)
    return cfg


def _check(cfg: StudyConfig, where) -> None:
    if (cfg.pool.path is None) == (cfg.pool.builtin is None):
        raise ConfigError(f"{where('pool')}: key 'pool': give exactly one of 'path' (the curated SFT pool) or 'builtin'")
    mo = cfg.pool.builtin.max_operand if cfg.pool.builtin is not None else None
    if mo is not None and (isinstance(mo, bool) or not isinstance(mo, int) or mo < 1):
        raise ConfigError(f"{where('pool.builtin.max_operand')}: key 'pool.builtin.max_operand': a positive integer "
                          f"(or null), got {mo!r}")
    if not (cfg.scale.enabled or cfg.difficulty.enabled):
        raise ConfigError(f"{where('scale')}: both grids are disabled; enable scale or difficulty")
    try:
        if cfg.scale.enabled:
            parse_sizes(cfg.scale.sizes)
    except ValueError as e:
        raise ConfigError(f"{where('scale.sizes')}: key 'scale.sizes': {e}") from None
    try:
        if cfg.difficulty.enabled:
            parse_bands(cfg.difficulty.bands)
            if cfg.difficulty.size is not None:
                parse_size(cfg.difficulty.size)
    except ValueError as e:
        raise ConfigError(f"{where('difficulty')}: key 'difficulty': {e}") from None
    try:
        from mmredstar.assets import resolve

        resolve("train", cfg.recipe)
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"{where('recipe')}: key 'recipe': {e}") from None
    if not cfg.eval.benches and cfg.eval.builtin_test is None:
        raise ConfigError(f"{where('eval')}: key 'eval.benches': name at least one benchmark (or eval.builtin_test)")
    for i, b in enumerate(cfg.eval.benches):
        if isinstance(b, dict) and (set(b) - {"name", "spec"} or "name" not in b or not isinstance(b.get("spec"), dict)):
            raise ConfigError(f"{where(f'eval.benches[{i}]')}: key 'eval.benches[{i}]': write a spec name, or "
                              "{name: X, spec: {card: ..., data: ..., prompt: ...}}")
        elif not isinstance(b, (str, dict)):
            raise ConfigError(f"{where(f'eval.benches[{i}]')}: key 'eval.benches[{i}]': a spec name or a mapping")
