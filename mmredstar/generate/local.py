"""The local transformers teacher: generation with ``mmredstar.modeling`` (CPU-capable; text and VLM presets).

    teacher: {kind: transformers, model: tiny_vlm, batch_size: 8}          # a preset (random init for tiny_*)
    teacher: {kind: transformers, model: runs/sft/geoqa, dtype: bfloat16}  # a saved model directory

The model is loaded on the first unit that needs the teacher (a fully cached rerun never loads it).
Prompts go through the same processor (chat template, image tiling) as training and evaluation;
samples are grouped by their number of samples ``n`` and generated in batches with a KV cache.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..cpu import set_threads
from ..schema import Response, Sample
from . import SamplingParams, Teacher, gen_record


@dataclass
class TransformersConfig:
    model: str = "tiny_text"
    """A model preset (``models/<name>.yaml``) or a saved model directory."""
    overrides: dict = field(default_factory=dict)
    """Extra keywords for ``mmredstar.modeling.load_model`` (e.g. ``{max_tiles: 2}``)."""
    init_seed: int = 0
    """Seed of the random initialisation of ``init: random`` presets (the tiny ones)."""
    dtype: str | None = None
    """Weights dtype (``float32``, ``bfloat16``); ``None``: the preset's."""
    device: str | None = None
    """``cpu``, ``cuda``, ``cuda:1``; ``None``: where the loader puts it (CPU here)."""
    batch_size: int = 16
    """Sequences generated together (prompts x samples)."""
    threads: int | str | None = None
    """``torch.set_num_threads`` for CPU generation (``auto``: the cores idle when the model loads, see
    ``mmredstar.cpu``; ``None``: leave as is)."""


class TransformersTeacher(Teacher):
    kind = "transformers"
    Config = TransformersConfig
    VOLATILE = ("device", "batch_size", "threads")

    def __init__(self, config):
        super().__init__(config)
        self._model = self._processor = None
        self._load_lock = threading.Lock()

    def _load(self):
        with self._load_lock:
            if self._model is None:
                import torch

                from ..modeling import load_model

                set_threads(self.config.threads, what="threads")
                self._model, self._processor = load_model(self.config.model, dtype=self.config.dtype,
                                                          device=self.config.device, seed=self.config.init_seed,
                                                          **self.config.overrides)
        return self._model, self._processor

    def generate(self, samples: list[Sample], n: list[int], params: SamplingParams) -> list[list[Response]]:
        from ..modeling import generate

        model, processor = self._load()
        out: list[list[Response]] = [[] for _ in samples]
        for k in sorted(set(n)):
            if k <= 0:
                continue
            idx = [i for i, x in enumerate(n) if x == k]
            with self._load_lock:  # one generation at a time on this model
                res = generate(model, processor, [samples[i] for i in idx], n=k, temperature=params.temperature,
                               top_p=params.top_p, max_new_tokens=params.max_tokens, seed=params.seed,
                               batch_size=self.config.batch_size, progress=False, name=self.config.model,
                               stop=params.stop)
            for i, rs in zip(idx, res, strict=True):
                for j, r in enumerate(rs):
                    r.gen = gen_record(self.kind, self.config.model, k, j, params, params.seed)
                out[i] = rs
                self.count("responses", len(rs))
        self.count("requests", len(samples))
        return out
