"""The rStar-Math self-evolution workflow config (``configs/rstar/*.yaml``); every key documented below."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import ConfigError, load_dataclass, to_plain
from ...search.mcts import MCTSConfig
from ...search.select import SelectConfig


class RStarError(ConfigError):
    """A workflow config key or value is wrong, or a stage cannot run; the message says what to do."""


@dataclass
class ProblemsConfig:
    """Where the problems come from: generated multi-step arithmetic (``mmredstar.synth.steps``) or files."""

    train: str = ""
    """A problem file (JSONL/Parquet, schema samples with answers); empty = generate ``pool`` problems."""
    held_out: str = ""
    """Held-out problem file for the final evaluation; empty = generate ``held_out_n`` problems."""
    pool: int = 480
    """Generated training problems (rounds draw ``problems_per_round`` from them, unsolved first)."""
    held_out_n: int = 40
    """Generated held-out problems (none shares a question with the pool)."""
    levels: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    """Generated problems' levels (operations per problem)."""
    max_operand: int = 12
    """Generated problems' largest operand."""


@dataclass
class TrainStage:
    """A training stage: a recipe plus dotted overrides (the workflow sets model, data and output dir)."""

    recipe: str = ""
    """A recipe name under ``train/`` (e.g. ``rstar/tiny_policy``) or a path."""
    overrides: dict = field(default_factory=dict)
    """Dotted recipe overrides, e.g. ``{train.max_steps: 200}``."""
    start: str = "init"
    """Which model the stage starts from: ``init`` (the round-0 policy), ``previous`` (the previous round's
    policy), ``base`` (the recipe's own model), ``policy`` (this round's new policy; the PPM's default),
    ``init_long`` (PPM only: the round-0 policy trained further, see ``ppm_init``)."""


@dataclass
class InitConfig(TrainStage):
    """Round 0: fine-tune the base model on reference step trajectories so the policy can sometimes solve."""

    problems: int = 600
    """Generated problems (with reference trajectories) to fine-tune on; 0 = use ``model`` as it is."""
    model: str = "tiny_text"
    """The base model (preset or directory)."""


@dataclass
class PPMInitConfig:
    """The PPM's own backbone (``ppm.start: init_long``): the round-0 policy trained further on the same
    round-0 reference trajectories, so the PPM starts from a backbone trained longer than the policy
    (a tiny policy's backbone reads the steps too weakly to rank them)."""

    overrides: dict = field(default_factory=dict)
    """Dotted overrides of ``init.recipe`` for this continued training, e.g. ``{train.max_steps: 1100}``."""


@dataclass
class EvalConfig:
    """The final comparison on the held-out problems at equal numbers of generated samples."""

    samples: int = 4
    """Samples per problem N: majority over N whole trajectories; PPM search with N candidates per step."""
    beam: int = 1
    """PPM search beam width."""
    max_new_tokens: int = 256
    """Tokens per whole trajectory (greedy, majority)."""
    temperature: float = 1.0
    """Sampling temperature for majority voting and the PPM search's candidates."""
    include_greedy: bool = False
    """Majority voting's first sample and the PPM search's first candidate step per beam are the policy's
    greedy ones (the others sampled): both methods keep their budget of N and always see the greedy answer."""
    batch_size: int = 64
    """Sequences generated together."""


@dataclass
class RStarConfig:
    """Self-evolution: per round, MCTS with the current policy (and PPM from round 2), select SFT data and PPM
    pairs, train policy r and PPM r; then evaluate greedy / majority / PPM search on held-out problems."""

    out: str = "runs/rstar"
    """Output directory (``--out`` overrides)."""
    seed: int = 0
    """Seed of generated problems, search and training."""
    threads: int | None = 1
    """torch CPU threads (``None`` = leave as is)."""
    rounds: int = 2
    """Self-evolution rounds."""
    problems_per_round: int = 120
    """Problems searched per round (unsolved ones of earlier rounds first, then fresh ones)."""
    problems: ProblemsConfig = field(default_factory=ProblemsConfig)
    """The problem sets."""
    init: InitConfig = field(default_factory=lambda: InitConfig(recipe="rstar/tiny_policy"))
    """Round 0 (the policy that starts round 1)."""
    mcts: MCTSConfig = field(default_factory=MCTSConfig)
    """Tree search settings (``teacher.model``, ``input``, ``ppm`` and ``round`` are set by the workflow;
    other ``teacher`` keys, e.g. ``kind: openai``, are kept)."""
    select: SelectConfig = field(default_factory=SelectConfig)
    """What to take from each round's trees."""
    accumulate: bool = True
    """Train each round's policy (and PPM) on the SFT data (pairs) of this and all earlier rounds."""
    keep_init_data: bool = False
    """Round policies also train on the round-0 reference trajectories (with ``accumulate``: the growing set
    starts from them), so each round's policy, and the PPM started from it, keeps improving."""
    policy: TrainStage = field(default_factory=lambda: TrainStage(recipe="rstar/tiny_policy", start="init"))
    """Policy fine-tuning per round."""
    ppm: TrainStage = field(default_factory=lambda: TrainStage(recipe="rstar/tiny_ppm", start="policy"))
    """PPM training per round."""
    ppm_init: PPMInitConfig = field(default_factory=PPMInitConfig)
    """The PPM backbone's own training stage (used when ``ppm.start`` is ``init_long``)."""
    ppm_held_out: float = 0.2
    """Share of the problems whose pairs are held out to measure the PPM's pairwise accuracy (a seeded hash of
    the problem id, so a problem stays held out in every round); with ``accumulate`` each PPM is scored on the
    held-out pairs of all rounds so far."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """The final evaluation."""

    path: str | None = field(default=None, metadata={"runtime": True})

    def to_dict(self) -> dict:
        return to_plain(self)


def load_config(path_or_data, overrides: list[str] | dict | None = None, out: str | None = None) -> RStarConfig:
    cfg, file, where = load_dataclass(RStarConfig, path_or_data, overrides, error=RStarError)
    cfg.path = None if file == "<config>" else file
    if out:
        cfg.out = out
    if cfg.rounds < 1:
        raise RStarError(f"{where('rounds')}: key 'rounds' must be >= 1")
    if cfg.eval.samples < 1:
        raise RStarError(f"{where('eval.samples')}: key 'eval.samples' must be >= 1")
    for name in ("policy", "ppm", "init"):
        st = getattr(cfg, name)
        ok = ("init", "previous", "base", "policy") + (("init_long",) if name == "ppm" else ())
        if st.start not in ok:
            raise RStarError(f"{where(name + '.start')}: key '{name}.start'={st.start!r}: use "
                             + ", ".join(ok))
    if cfg.ppm.start == "init_long" and cfg.init.problems <= 0:
        raise RStarError(f"{where('ppm.start')}: key 'ppm.start'=init_long needs round-0 training "
                         "(init.problems > 0)")
    if not 0 <= cfg.ppm_held_out < 1:
        raise RStarError(f"{where('ppm_held_out')}: key 'ppm_held_out' must be in [0, 1)")
    return cfg


__all__ = ["RStarConfig", "RStarError", "load_config"]
