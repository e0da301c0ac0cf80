"""Curation: sample a teacher by difficulty, filter, verify, and write the SFT / DPO / RL sets.

    mmredstar curate configs/curate/geoqa_fixture.yaml          # resumable; --fresh starts over

Python::

    from mmredstar.curate import run
    result = run("configs/curate/geoqa_fixture.yaml", {"out": "runs/geoqa_fixture"})
    result.report["counts"]     # {"input": ..., "sft": ..., "dpo_pairs": ..., "rl_prompts": ...}

Modules: ``config`` (typed config fields), ``teachers`` (vllm, openai, transformers, replay, scripted),
``difficulty`` (sources, schedule, range), ``decontaminate`` (n-gram overlap), ``select`` (SFT, DPO,
RL, rejected), ``report`` (JSON, markdown, plots), ``pipeline`` (the resumable run), ``cli``.
"""

from __future__ import annotations

from ..generate import TEACHERS, SamplingParams, Teacher, build_teacher
from .config import CurateConfig, load_config
from .pipeline import CurateResult, Pipeline, run

__all__ = ["run", "Pipeline", "CurateResult", "CurateConfig", "load_config", "TEACHERS", "Teacher",
           "SamplingParams", "build_teacher"]
