"""Evaluation: benchmark specs (``eval/*.yaml``), the runner, metrics, scoring of outside outputs, the report.

    mmredstar eval run --model tiny_vlm --bench geoqa --data data/geoqa_test.jsonl --limit 20 --out runs/eval
    mmredstar eval run --model sft=runs/sft,dpo=runs/dpo --bench aime24,math500 --n 4 --out runs/eval
    mmredstar eval score --bench aime24 --responses my_outputs.jsonl --out runs/scored

    from mmredstar.evaluation import evaluate, score_responses, load_spec
    report = evaluate(["tiny_text"], ["aime24"], limit=4, out="runs/eval")   # -> the report.json content

Generation goes through the curation teachers (``mmredstar.generate``: local transformers, any
OpenAI-compatible server, vLLM); every response is scored by ``mmredstar.verify.verify_response``.
Modules: ``spec`` (BenchSpec, loading, data, prompt templates), ``metrics`` (pass@k, maj@k, standard
errors, length statistics), ``runner`` (evaluate, resumable per-sample output), ``score`` (outside
outputs), ``report`` (report.json / report.md / report.png), ``cli``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BenchSpec": "spec", "SpecError": "spec", "load_spec": "spec", "list_specs": "spec",
    "load_bench_samples": "spec", "render_prompt": "spec",
    "pass_at_k": "metrics", "maj_at_k": "metrics", "aggregate": "metrics", "wilson": "metrics",
    "evaluate": "runner", "evaluate_samples": "runner", "backend_spec": "runner",
    "score_responses": "score",
    "write_report": "report", "collect_results": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"mmredstar.evaluation.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'mmredstar.evaluation' has no attribute {name!r}")


def __dir__():
    return __all__
