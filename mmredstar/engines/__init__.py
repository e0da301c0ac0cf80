"""Our rule reward as a plug-in for the RL engines people scale on: verl and OpenRLHF (floor 3).

Export the prompt set (``mmredstar data export --format verl | openrlhf``), then point the engine at one of
these functions; each rebuilds the exact sample from the exported row (answer type, choices, code tests) and
scores the engine's response with ``mmredstar.verify`` (r = 1 verified / 0 wrong / -1 no valid answer):

  * verl: ``custom_reward_function.path=$(python -c 'import mmredstar.engines.verl as m; print(m.__file__)')``
    ``custom_reward_function.name=compute_score`` -> ``compute_score(data_source, solution_str, ground_truth,
    extra_info)``.
  * OpenRLHF: ``--remote_rm_url $(python -c 'import mmredstar.engines.openrlhf as m; print(m.__file__)')
    --label_key label`` -> ``reward_func(queries, prompts, labels)``.
"""

from __future__ import annotations

import json

from ..schema import Sample
from ..verify import verify_response

__all__ = ["sample_from_reference", "score"]


def sample_from_reference(reference, ground_truth: str | None = None, answer_type: str | None = None) -> Sample:
    """The Sample an exported row stands for: a record (dict or JSON text, as ``data export`` writes it) or,
    for rows made elsewhere, a bare ground-truth answer (``answer_type`` default ``math``)."""
    d = reference
    if isinstance(d, str):
        try:
            d = json.loads(d)
        except ValueError:
            d = None
    if isinstance(d, dict) and "answer_type" in d and "prompt" in d:
        return Sample.from_dict(d)
    answer = ground_truth if ground_truth is not None else (reference if isinstance(reference, str) else None)
    return Sample.text("", None if answer is None else str(answer), answer_type or "math")


def score(sample: Sample, response: str, **options) -> dict:
    """The rule reward of one response with its verdict: ``{"score", "verdict", "extracted"}``."""
    v = verify_response(sample, response, None, **options)
    return {"score": float(v.reward), "verdict": v.verdict, "extracted": v.extracted}
