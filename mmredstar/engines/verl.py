"""verl's custom reward function: ``compute_score(data_source, solution_str, ground_truth, extra_info)``.

    mmredstar data export --src rl.jsonl --out rl.parquet --format verl
    python -m verl.trainer.main_ppo data.train_files=rl.parquet \\
        custom_reward_function.path=$(python -c 'import mmredstar.engines.verl as m; print(m.__file__)') \\
        custom_reward_function.name=compute_score ...

verl calls ``compute_score`` once per response with the row's ``data_source``, the decoded response
(``solution_str``), ``reward_model.ground_truth`` and ``extra_info``; our export puts the whole record in
``extra_info["sample"]``, so choice and code prompts are verified exactly as in our own trainers. Extra keyword
arguments (``custom_reward_function.reward_kwargs``) go to the verifier (e.g. ``think="after"``).
"""

from __future__ import annotations

from mmredstar.engines import sample_from_reference, score  # absolute: verl loads this file by path


def compute_score(data_source=None, solution_str: str = "", ground_truth=None, extra_info=None, **kwargs) -> float:
    """The rule reward (1 / 0 / -1) of ``solution_str``; verl reads a float (or a dict with ``score``)."""
    extra = extra_info if isinstance(extra_info, dict) else {}
    ref = extra.get("sample")
    sample = sample_from_reference(ref if ref else ground_truth, ground_truth, extra.get("answer_type"))
    opts = {k: v for k, v in kwargs.items() if k not in ("sandbox_fusion_url", "concurrent_semaphore", "memory_limit_mb")}
    return score(sample, solution_str or "", **opts)["score"]
