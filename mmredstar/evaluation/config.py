"""How a workflow evaluates its models: the one evaluation-run config (``eval:``) of the GeoQA pipeline and the study.

    from mmredstar.evaluation.config import EvalRunConfig
    run = EvalRunConfig(backend="vllm", backend_options={"tensor_parallel_size": 2}, limit=500)
    run.backend_options_for(seed=0)      # what mmredstar.evaluation.runner.evaluate takes as backend_options

The workflows extend it with what they evaluate (the GeoQA pipeline: one benchmark and its checkpoints; the
study: several benchmarks for every cell); the keys below mean the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EvalRunConfig:
    """The evaluation runner's settings (``mmredstar.evaluation.runner``): backend, how much, and spec changes."""

    backend: str = "transformers"
    """Generation backend (a teacher kind of ``mmredstar.generate``): ``transformers`` (local), ``vllm`` (GPU),
    ``openai`` (a server)."""
    backend_options: dict = field(default_factory=dict)
    """Backend options (e.g. ``{dtype: bfloat16, device: cuda}``, vLLM's ``{tensor_parallel_size: 2}``,
    ``{base_url: ...}``)."""
    batch_size: int | None = None
    """Sequences generated together by the local ``transformers`` backend (``None``: ``backend_options`` or the
    backend's default)."""
    n: int | None = None
    """Samples per prompt (``None``: each benchmark spec's)."""
    limit: int | None = None
    """Evaluate at most the first N items of each benchmark."""
    overrides: dict = field(default_factory=dict)
    """Benchmark spec keys changed for every benchmark (e.g. ``{max_new_tokens: 64}``)."""
    chunk_size: int | None = None
    """Items generated and written together (one resumable chunk; ``None``: 64, or ``batch_size`` if larger)."""

    def spec_overrides(self) -> dict:
        """The spec keys to change: ``overrides`` plus ``n`` when set.

        >>> EvalRunConfig(n=4, overrides={"max_new_tokens": 64}).spec_overrides()
        {'max_new_tokens': 64, 'n': 4}
        """
        return {**self.overrides, **({"n": self.n} if self.n is not None else {})}

    def backend_options_for(self, *, seed: int | None = None, threads: int | None = None) -> dict:
        """``backend_options`` completed for the local backend (``batch_size``, the tiny presets' ``init_seed``,
        torch ``threads``); given options win.

        >>> EvalRunConfig(batch_size=8).backend_options_for(seed=0, threads=2)
        {'batch_size': 8, 'init_seed': 0, 'threads': 2}
        >>> EvalRunConfig(backend="vllm", batch_size=8, backend_options={"tensor_parallel_size": 2}).backend_options_for(seed=0)
        {'tensor_parallel_size': 2}
        """
        if self.backend != "transformers":
            return dict(self.backend_options)
        base = {"batch_size": self.batch_size} if self.batch_size is not None else {}
        if seed is not None:
            base["init_seed"] = seed
        if threads:
            base["threads"] = threads
        return {**base, **self.backend_options}
