"""Teachers: one interface over every way of getting long chain-of-thought responses.

    teacher = build_teacher({"kind": "openai", "base_url": "http://localhost:8000/v1", "model": "QwQ-32B"})
    responses = teacher.generate(samples, n=[8, 4], params=SamplingParams(temperature=0.7, max_tokens=16384))
    # -> one list of Response per sample; each Response.gen records teacher, model, n, index,
    #    temperature, top_p, max_tokens and the seed used; finish_reason and token counts where known.

Kinds (``TEACHERS``; a dotted path ``pkg.mod:Class`` is the escape hatch for your own):

- ``vllm``: vLLM's offline engine (GPU; optional extra ``.[vllm]``, imported only when used).
- ``openai``: any OpenAI-compatible chat-completions server (vLLM serve, SGLang, ...): async, bounded
  concurrency, retries with backoff, timeouts, images as data URLs.
- ``transformers``: local generation with ``mmredstar.modeling`` (CPU-capable; text and VLM presets).
- ``replay``: responses already on disk (our files, released long-CoT sets, ShareGPT) matched to samples.
- ``scripted``: long chain-of-thought written from the reference, with controllable error and
  missing-answer rates (the demo and tests).

A teacher class has a ``Config`` dataclass (its YAML options), ``generate``, ``fingerprint`` (what
determines its outputs: the work-unit cache key) and ``stats`` (counters for the run log).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, build_dataclass
from ..registry import lookup
from ..schema import Response, Sample

TEACHERS: dict[str, str] = {
    "vllm": "mmredstar.generate.vllm:VLLMTeacher",
    "openai": "mmredstar.generate.openai:OpenAITeacher",
    "transformers": "mmredstar.generate.local:TransformersTeacher",
    "replay": "mmredstar.generate.replay:ReplayTeacher",
    "scripted": "mmredstar.generate.scripted:ScriptedTeacher",
}


class TeacherError(RuntimeError):
    """A teacher could not produce responses (after retries); the message says what failed and what to do."""


@dataclass
class SamplingParams:
    """What every generation backend is asked for (the ``sampling`` section of a config); recorded on each
    response's ``gen``. The one sampling-parameters type of the package."""

    temperature: float = 0.7
    """Sampling temperature (QwQ/QVQ-style long-CoT teachers: 0.6-1.0; 0 = greedy)."""
    top_p: float = 0.95
    """Nucleus sampling mass."""
    max_tokens: int = 16384
    """Maximum new tokens per response (a response cut at this limit has ``finish_reason: length``)."""
    seed: int = 0
    """Base seed; each prompt's seed is derived from it and the sample id, so results do not depend on
    batching, order or workers."""
    stop: list[str] | None = None
    """Stop strings."""
    extra: dict = field(default_factory=dict)
    """Backend-specific sampling options passed through (e.g. ``{top_k: 20, repetition_penalty: 1.05}``)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def sample_seed(seed: int, sample_id: str, index: int = 0) -> int:
    """A per-sample seed derived from the base seed and the sample id (independent of batching/order).

    >>> sample_seed(0, "abc") == sample_seed(0, "abc"), sample_seed(0, "abc") != sample_seed(1, "abc")
    (True, True)
    """
    h = hashlib.sha256(f"{seed}|{sample_id}|{index}".encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


def gen_record(kind: str, model: str | None, n: int, index: int, params: SamplingParams, seed: int | None) -> dict:
    """The ``Response.gen`` dict: how a response was made."""
    d = {"teacher": kind, "model": model, "n": n, "index": index, "temperature": params.temperature,
         "top_p": params.top_p, "max_tokens": params.max_tokens, "seed": seed}
    if params.extra:
        d["extra"] = dict(params.extra)
    return d


class Teacher:
    """Base class. Subclasses set ``kind``, ``Config`` and ``VOLATILE`` and implement ``generate``."""

    kind = "teacher"
    Config: type = object
    VOLATILE: tuple[str, ...] = ()
    """Config fields that do not change the responses (addresses, concurrency, retries): left out of the cache key."""

    def __init__(self, config):
        self.config = config
        self.counters: dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, key: str, k: int = 1) -> None:
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + k

    @property
    def model_name(self) -> str | None:
        return getattr(self.config, "model", None) or None

    def fingerprint(self) -> dict:
        """What determines the outputs (kind + config minus ``VOLATILE``): part of each work unit's key."""
        d = dataclasses.asdict(self.config) if dataclasses.is_dataclass(self.config) else dict(self.config)
        return {"kind": self.kind, **{k: v for k, v in d.items() if k not in self.VOLATILE}}

    def generate(self, samples: list[Sample], n: list[int], params: SamplingParams) -> list[list[Response]]:
        raise NotImplementedError

    def stats(self) -> dict:
        return dict(self.counters)

    def close(self) -> None:
        pass


def teacher_class(kind: str) -> type[Teacher]:
    """The class of a teacher kind (``TEACHERS`` name or ``pkg.mod:Class``)."""
    return lookup(kind, TEACHERS, "teacher kind", example="pkg.module:Class")


def teacher_config(spec: dict | Any):
    """(class, its checked config) from ``{kind: ..., **options}``."""
    if not isinstance(spec, dict) or "kind" not in spec:
        raise ValueError(f"expected a mapping with 'kind' (one of {list(TEACHERS)}), got {spec!r}")
    cls = teacher_class(str(spec["kind"]))
    opts = {k: v for k, v in spec.items() if k != "kind"}
    try:
        cfg = build_dataclass(cls.Config, opts, prefix="")
    except ConfigError as e:
        raise ValueError(f"{spec['kind']} teacher: {str(e).split(': ', 1)[-1]}") from None
    return cls, cfg


def build_teacher(spec: dict | Teacher) -> Teacher:
    """A teacher from ``{kind: ..., **options}`` (or return a ready ``Teacher``)."""
    if isinstance(spec, Teacher):
        return spec
    cls, cfg = teacher_config(spec)
    return cls(cfg)


__all__ = ["TEACHERS", "Teacher", "TeacherError", "SamplingParams", "build_teacher", "teacher_class",
           "teacher_config", "sample_seed", "gen_record"]
