"""Difficulty sources: where a prompt's 1-10 difficulty comes from in curation.

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

- ``trained``: the trained scorer (``mmredstar difficulty train``), :class:`TrainedSource`.

The scale, bands and schedules (``band``, ``parse_schedule``, ``samples_for``, ``in_range``) are
``mmredstar.levels``.

    from mmredstar.difficulty import build_source
    build_source("labels", {"field": "level", "map": "math_level"}).score(samples)   # [(difficulty, meta)]
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, build_dataclass
from ..generate import SamplingParams, build_teacher, teacher_config
from ..levels import map_difficulty
from ..registry import lookup
from ..schema import Message, Part, Sample
from ..verify import verify_response
from .model import SCORER_FILE, load_scorer

DIFFICULTY_SOURCES: dict[str, str] = {
    "labels": "mmredstar.difficulty.sources:LabelSource",
    "scorer": "mmredstar.difficulty.sources:ScorerSource",
    "pass_rate": "mmredstar.difficulty.sources:PassRateSource",
    "trained": "mmredstar.difficulty.sources:TrainedSource",   # a trained scorer (mmredstar difficulty train)
}


def register_difficulty_source(name: str, target: str) -> None:
    """Make ``difficulty.source: NAME`` resolve to ``target`` (``pkg.mod:Factory``)."""
    DIFFICULTY_SOURCES[name] = target


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
    """How to map the raw label: ``math_level``, ``taco``, ``scale10`` (``mmredstar.levels``) or ``{label: number}``."""
    override: bool = False
    """Map the meta label even when ``Sample.difficulty`` is already set."""


class LabelSource(DifficultySource):
    """Dataset labels (already on ``Sample.difficulty``, or mapped from a meta field)."""

    name = "labels"
    Config = LabelConfig

    def score(self, samples):
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
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"{what}: 'teacher' is required, e.g. {{kind: openai, base_url: ..., model: ...}}")
    teacher_config(spec)


def _sampling(d: dict, **defaults):
    return build_dataclass(SamplingParams, {**defaults, **(d or {})}, prefix="sampling.")


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


# ----------------------------------------------------------------------------------------- the trained scorer
@dataclass
class TrainedConfig:
    model: str = ""
    """The scorer directory written by ``mmredstar difficulty train`` (holds ``scorer.json``)."""
    batch_size: int = 32
    """Problems per forward pass."""
    device: str | None = None
    """``cuda`` / ``cpu``; ``None``: a GPU when there is one."""


class TrainedSource(DifficultySource):
    """Difficulty from a trained scorer (``mmredstar.difficulty``)."""

    name = "trained"
    cached = True
    Config = TrainedConfig

    def __init__(self, config: TrainedConfig):
        super().__init__(config)
        self._scorer = None

    def check(self):
        if not self.config.model:
            raise ValueError("trained: params.model is required: the directory `mmredstar difficulty train` wrote")
        if not os.path.exists(os.path.join(self.config.model, SCORER_FILE)):
            raise ValueError(f"trained: {self.config.model} holds no trained scorer ({SCORER_FILE}); train one with "
                             "`mmredstar difficulty train CONFIG.yaml`")

    def scorer(self):
        if self._scorer is None:
            self.check()
            self._scorer = load_scorer(self.config.model, device=self.config.device)
        return self._scorer

    def fingerprint(self) -> dict:
        self.check()
        with open(os.path.join(self.config.model, SCORER_FILE), encoding="utf-8") as f:
            info = json.load(f)
        return {"source": self.name, "weights": info.get("weights_sha256"), "config": info.get("config_sha256"),
                "head": info.get("head")}

    def score(self, samples):
        res = self.scorer().score_samples(samples, batch_size=self.config.batch_size)
        self.count("scored", len(res))
        return [(d, {**meta, "difficulty_source": "trained"}) for d, meta in res]
