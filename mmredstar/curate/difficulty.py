"""Prompt difficulty on the 1-10 scale, the sampling schedule, and selection by difficulty range.

Sources (``DIFFICULTY_SOURCES``; config ``difficulty: {source: NAME, params: {...}}``):

- ``labels``: the dataset's own labels, already mapped into ``Sample.difficulty`` by the data card
  (MATH level L -> 2L-1, TACO EASY..VERY_HARD -> 2..10; the raw label stays in ``meta``); or mapped
  here from a meta field (``params: {field: level, map: math_level}``).
- ``scorer``: a model prompted with a rubric (``RUBRIC``) answers a 1-10 score, parsed robustly by
  :func:`parse_difficulty` ("Difficulty: 7", "7/10", "**7**", JSON, ``\\boxed{7}``); any teacher backend;
  the mean over ``votes`` samples.
- ``pass_rate``: a student answers each prompt k times; its pass rate p (verified with
  ``mmredstar.verify``) gives difficulty ``1 + 9 * (1 - p)`` (always solved -> 1, never -> 10);
  ``meta.student_pass_rate`` records p.
- your own: a dotted path ``pkg.mod:Factory`` (or ``register_difficulty_source``), e.g. a trained
  difficulty scorer. A source has ``score(samples) -> [(difficulty or None, meta dict)]``,
  ``fingerprint()`` and ``cached`` (True when it calls a model: its results are cached per work unit).

Bands: a difficulty is put in band ``round_half_up(d)``; schedules and ranges are inclusive bands,
e.g. ``{"1-3": 2, "4-6": 4, "7-10": 8}`` and ``range: [7, 9]``.

    from mmredstar.curate.difficulty import parse_schedule, samples_for
    bands = parse_schedule({"1-3": 2, "4-6": 4, "7-10": 8})
    samples_for(8.2, bands, default=4)   # -> 8
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..schema import Message, Part, Sample

DIFFICULTY_SOURCES: dict[str, str] = {
    "labels": "mmredstar.curate.difficulty:LabelSource",
    "scorer": "mmredstar.curate.difficulty:ScorerSource",
    "pass_rate": "mmredstar.curate.difficulty:PassRateSource",
    "trained": "mmredstar.difficulty.source:TrainedSource",   # a trained scorer (mmredstar difficulty train)
}


def register_difficulty_source(name: str, target: str) -> None:
    """Make ``difficulty.source: NAME`` resolve to ``target`` (``pkg.mod:Factory``)."""
    DIFFICULTY_SOURCES[name] = target


# ----------------------------------------------------------------------------------------- bands
def band(d: float) -> int:
    """The integer band of a difficulty (rounded half up).

    >>> band(6.5), band(6.49), band(9.0)
    (7, 6, 9)
    """
    return int(math.floor(float(d) + 0.5))


def parse_schedule(spec: dict, value=int) -> list[tuple[int, int, Any]]:
    """``{"1-3": 2, "4-6": 4, "7-10": 8}`` -> ``[(1, 3, 2), (4, 6, 4), (7, 10, 8)]`` (inclusive bands).

    Keys are ``"lo-hi"`` or a single band; overlapping bands are an error.

    >>> parse_schedule({"7-10": 8, "1-3": 2, 5: 3})
    [(1, 3, 2), (5, 5, 3), (7, 10, 8)]
    """
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"expected a mapping of difficulty bands to values, e.g. {{'1-3': 2, '4-10': 4}}, got {spec!r}")
    out = []
    for k, v in spec.items():
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(k))
        if not m:
            raise ValueError(f"band {k!r}: expected 'lo-hi' (e.g. '7-10') or one number")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo > hi:
            raise ValueError(f"band {k!r}: lo > hi")
        try:
            val = value(v)
        except (TypeError, ValueError):
            raise ValueError(f"band {k!r}: value {v!r} is not a {value.__name__}") from None
        if value is int and val < 0:
            raise ValueError(f"band {k!r}: the number of samples must be >= 0")
        out.append((lo, hi, val))
    out.sort()
    for (a_lo, a_hi, _), (b_lo, b_hi, _) in zip(out, out[1:], strict=False):
        if b_lo <= a_hi:
            raise ValueError(f"bands {a_lo}-{a_hi} and {b_lo}-{b_hi} overlap")
    return out


def samples_for(difficulty: float | None, bands: list[tuple[int, int, Any]], default: int):
    """Teacher samples for a prompt: its band's value, else ``default``.

    >>> b = parse_schedule({"1-3": 2, "4-6": 4, "7-10": 8})
    >>> samples_for(2.4, b, 1), samples_for(6.5, b, 1), samples_for(None, b, 1), samples_for(11, b, 1)
    (2, 8, 1, 1)
    """
    if difficulty is None:
        return default
    b = band(difficulty)
    for lo, hi, v in bands:
        if lo <= b <= hi:
            return v
    return default


def in_range(difficulty: float | None, rng: list[float] | None, keep_unknown: bool = False) -> bool:
    """Whether a difficulty's band lies in ``[lo, hi]`` (always true without a range).

    >>> in_range(7.4, [7, 9]), in_range(9.6, [7, 9]), in_range(None, [7, 9]), in_range(None, [7, 9], True)
    (True, False, False, True)
    """
    if rng is None:
        return True
    if difficulty is None:
        return keep_unknown
    return rng[0] <= band(difficulty) <= rng[1]


# ----------------------------------------------------------------------------------------- parsing
_THINK = re.compile(r"<think>.*?</think>", re.S)
_PATTERNS = [
    re.compile(r"(?:difficulty|score|rating|level)\s*(?:score|rating|level)?\s*(?:is|of|=|:)?\s*\**\s*(\d+(?:\.\d+)?)", re.I),
    re.compile(r"\\boxed\{\s*(\d+(?:\.\d+)?)\s*\}"),
    re.compile(r"(\d+(?:\.\d+)?)\s*(?:/|out of)\s*10\b", re.I),
    re.compile(r"\*\*\s*(\d+(?:\.\d+)?)\s*\*\*"),
]


def parse_difficulty(text: str) -> float | None:
    """A 1-10 difficulty from a scorer's answer, or ``None`` when there is none.

    Reads (after dropping ``<think>...</think>``) a JSON object's ``difficulty``/``score``/``level``,
    "Difficulty: 7", "Score = 6.5", ``\\boxed{7}``, "7/10" / "7 out of 10", "**7**", or a bare number;
    the last such statement wins; values outside 1-10 are rejected.

    >>> [parse_difficulty(t) for t in ["Difficulty: 7", "I'd say 7/10.", "**8**", '{"difficulty": 3}',
    ...                                 "<think>maybe 2/10</think> Final difficulty score: 9", "6", "hard", "15/10"]]
    [7.0, 7.0, 8.0, 3.0, 9.0, 6.0, None, None]
    """
    if not isinstance(text, str):
        return None
    t = _THINK.sub(" ", text)
    if "<think>" in t:  # unterminated reasoning: keep what follows the last think tag
        t = t.rsplit("<think>", 1)[-1]
    for m in reversed(list(re.finditer(r"\{[^{}]*\}", t))):
        try:
            obj = json.loads(m.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            for k in ("difficulty", "score", "level", "rating"):
                v = obj.get(k)
                if isinstance(v, (int, float)) and not isinstance(v, bool) or isinstance(v, str) and v.strip():
                    try:
                        f = float(v)
                    except ValueError:
                        continue
                    return f if 1 <= f <= 10 else None
    best: tuple[int, float] | None = None
    for pat in _PATTERNS:
        for m in pat.finditer(t):
            if best is None or m.start() > best[0]:
                best = (m.start(), float(m.group(1)))
    if best is None:
        s = t.strip().rstrip(".")
        if re.fullmatch(r"\d+(?:\.\d+)?", s):
            best = (0, float(s))
    if best is None:
        return None
    return best[1] if 1 <= best[1] <= 10 else None


RUBRIC = """You are rating how hard a problem is for a strong student, on a scale from 1 to 10.
1-2: a routine one-step exercise. 3-4: a standard textbook problem needing a few steps.
5-6: a multi-step problem needing a good idea or careful work (harder MATH / AMC 10).
7-8: a hard competition problem (AMC 12 / AIME level). 9-10: olympiad level (USAMO / IMO).
Do not solve the problem. Reply with one line: "Difficulty: N" where N is an integer from 1 to 10."""


# ----------------------------------------------------------------------------------------- sources
class DifficultySource:
    """Base: ``score(samples) -> [(difficulty or None, meta additions)]``."""

    name = "source"
    cached = False
    Config: type | None = None

    def __init__(self, config=None):
        self.config = config
        self.counters: dict[str, int] = {}

    def fingerprint(self) -> dict:
        d = dataclasses.asdict(self.config) if dataclasses.is_dataclass(self.config) else {}
        return {"source": self.name, **d}

    def score(self, samples: list[Sample]) -> list[tuple[float | None, dict]]:
        raise NotImplementedError

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def stats(self) -> dict:
        return dict(self.counters)


@dataclass
class LabelConfig:
    field: str | None = None
    """A dotted path into ``Sample.meta`` holding a raw label (e.g. ``level``); ``None``: use ``Sample.difficulty``."""
    map: str | dict | None = None
    """How to map the raw label: ``math_level``, ``taco``, ``scale10`` (``mmredstar.data.levels``) or ``{label: number}``."""
    override: bool = False
    """Map the meta label even when ``Sample.difficulty`` is already set."""


class LabelSource(DifficultySource):
    """Dataset labels (already on ``Sample.difficulty``, or mapped from a meta field)."""

    name = "labels"
    Config = LabelConfig

    def score(self, samples):
        from ..data.levels import map_difficulty

        out = []
        c = self.config or LabelConfig()
        for s in samples:
            d = s.difficulty
            if c.field and (d is None or c.override):
                v: Any = s.meta
                for part in c.field.split("."):
                    v = v.get(part) if isinstance(v, dict) else None
                mapped = map_difficulty(v, c.map) if c.map is not None else (
                    float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None)
                d = mapped if mapped is not None else d
            out.append((d, {}))
        return out


def _teacher_spec_check(spec: dict, what: str) -> None:
    from .teachers import teacher_config

    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"{what}: 'teacher' is required, e.g. {{kind: openai, base_url: ..., model: ...}}")
    teacher_config(spec)


def _sampling(d: dict, **defaults):
    from .config import SamplingConfig, build_dataclass
    from .teachers import SamplingParams

    return SamplingParams.from_config(build_dataclass(SamplingConfig, {**defaults, **(d or {})}, prefix="sampling."))


@dataclass
class ScorerConfig:
    teacher: dict = field(default_factory=dict)
    """The scorer model, any teacher backend: ``{kind: openai, base_url: ..., model: ...}``."""
    rubric: str | None = None
    """The rating instruction put before each problem (``None``: ``RUBRIC``)."""
    votes: int = 1
    """Scores asked per prompt; the difficulty is their mean (unparseable answers are left out)."""
    sampling: dict = field(default_factory=dict)
    """Sampling for the scorer (default temperature 0.6, max_tokens 2048)."""


class _TeacherSource(DifficultySource):
    """A source that asks a model (any teacher backend, ``config.teacher``), built once on first use; the
    teacher's fingerprint is part of the source's, so changing the model re-scores."""

    cached = True
    what = "model"

    def __init__(self, config):
        super().__init__(config)
        self._teacher = None

    @property
    def teacher(self):
        from .teachers import build_teacher

        if self._teacher is None:
            self._teacher = build_teacher(self.config.teacher)
        return self._teacher

    def check(self):
        _teacher_spec_check(self.config.teacher, self.what)

    def fingerprint(self):
        return {**super().fingerprint(), "teacher": self.teacher.fingerprint()}


class ScorerSource(_TeacherSource):
    """A model prompted with a rubric answers a 1-10 difficulty."""

    name = "scorer"
    what = "difficulty scorer"
    Config = ScorerConfig

    def prompt(self, s: Sample) -> Sample:
        """The rating prompt: rubric, the problem (with its images), then the request for one line."""
        user = [m for m in s.prompt if m.role == "user"]
        parts = [Part("text", text=(self.config.rubric or RUBRIC) + "\n\nProblem:\n")]
        parts += list(user[-1].content) if user else [Part("text", text=s.question)]
        parts.append(Part("text", text="\n\nRate the difficulty of this problem (1-10)."))
        return Sample(prompt=[Message("user", parts)], images=s.images, answer_type="text", answer="",
                      source=s.source, id=f"{s.id}:difficulty")

    def score(self, samples):
        params = _sampling(self.config.sampling, temperature=0.6, max_tokens=2048)
        prompts = [self.prompt(s) for s in samples]
        outs = self.teacher.generate(prompts, [self.config.votes] * len(prompts), params)
        res = []
        for rs in outs:
            scores = [parse_difficulty(r.text) for r in rs]
            ok = [x for x in scores if x is not None]
            self.count("scored" if ok else "unparsed")
            res.append((sum(ok) / len(ok) if ok else None, {"difficulty_scores": scores}))
        return res

@dataclass
class PassRateConfig:
    teacher: dict = field(default_factory=dict)
    """The student model, any teacher backend."""
    k: int = 8
    """Samples per prompt."""
    sampling: dict = field(default_factory=dict)
    """Sampling for the student (default temperature 1.0)."""
    verify: dict = field(default_factory=dict)
    """Options for ``mmredstar.verify.verify_response``."""


class PassRateSource(_TeacherSource):
    """A student's pass rate p over k samples -> difficulty ``1 + 9 * (1 - p)``."""

    name = "pass_rate"
    what = "difficulty pass_rate student"
    Config = PassRateConfig

    def check(self):
        super().check()
        if self.config.k < 1:
            raise ValueError("pass_rate: k must be at least 1")

    @staticmethod
    def difficulty(pass_rate: float) -> float:
        """``1 + 9 * (1 - p)``.

        >>> PassRateSource.difficulty(1.0), PassRateSource.difficulty(0.0), PassRateSource.difficulty(0.5)
        (1.0, 10.0, 5.5)
        """
        return 1.0 + 9.0 * (1.0 - pass_rate)

    def score(self, samples):
        from ..verify import verify_response

        params = _sampling(self.config.sampling, temperature=1.0)
        outs = self.teacher.generate(samples, [self.config.k] * len(samples), params)
        res = []
        for s, rs in zip(samples, outs, strict=True):
            if not rs:
                res.append((None, {}))
                continue
            ok = sum(verify_response(s, r.text, r.finish_reason, **self.config.verify).correct for r in rs)
            p = ok / len(rs)
            res.append((self.difficulty(p), {"student_pass_rate": p, "student_k": len(rs)}))
        return res


def build_source(name: str, params: dict | None = None, *, check_only: bool = False) -> DifficultySource:
    """A difficulty source by registry name or dotted path, its params checked against its ``Config``."""
    from mmredstar.registry import lookup

    from .config import ConfigError, build_dataclass

    factory = lookup(name, DIFFICULTY_SOURCES, "difficulty source", example="pkg.module:Factory")
    cfg_cls = getattr(factory, "Config", None)
    if cfg_cls is not None and dataclasses.is_dataclass(cfg_cls):
        try:
            cfg = build_dataclass(cfg_cls, params or {}, prefix="params.")
        except ConfigError as e:
            raise ValueError(f"source {name!r}: {str(e).split(': ', 1)[-1]}") from None
        src = factory(cfg)
    else:
        src = factory(**(params or {}))
    if check_only and hasattr(src, "check"):
        src.check()
    return src
