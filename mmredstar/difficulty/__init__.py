"""Difficulty: where a prompt's 1-10 difficulty comes from (dataset labels, a rubric scorer, a student's pass
rate, a trained scorer) and the trained scorer itself, as the paper's Qwen2.5-7B-Instruct difficulty model
trained on MATH and Omni-MATH labels.

    mmredstar difficulty train configs/difficulty/tiny.yaml            # tiny CPU scorer on generated arithmetic
    mmredstar difficulty train configs/difficulty/qwen2_5_7b_math_omni.yaml
    mmredstar difficulty score --model runs/difficulty/tiny IN.jsonl --out OUT.jsonl

Python::

    from mmredstar.difficulty import train, load_scorer, score_file
    report = train("difficulty/tiny")                  # eval.json: agreement vs held-out labels and a constant
    scorer = load_scorer("runs/difficulty/tiny")
    scorer.score_samples(samples)                      # [(difficulty, meta), ...]

In curation: ``difficulty: {source: trained, params: {model: runs/difficulty/tiny}}``.

The scale: ``Sample.difficulty``, 1-10 (``mmredstar.levels``, re-exported here: level maps, ``band``,
schedules): MATH Level L -> 2L-1, Omni-MATH's 1-10 as is, TACO 2/4/6/8/10. Modules: ``sources`` (the
curation sources and their registry), ``config`` (the scorer's typed config), ``data`` (labelled inputs,
held-out split), ``model`` (backbone + head, ``Scorer``), ``train``, ``metrics`` (exact / within-k /
Spearman, constant baseline), ``score`` (resumable file scoring), ``cli``. The generated arithmetic by level
the tiny scorer trains on is ``mmredstar.synth.arithmetic``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "train": "train", "summary": "train",
    "load_scorer": "model", "build_scorer_model": "model", "Scorer": "model",
    "score_file": "score", "agreement": "metrics", "constant_baseline": "metrics", "spearman": "metrics",
    "load_config": "config", "DifficultyTrainConfig": "config",
    "TrainedSource": "sources", "DifficultySource": "sources", "DIFFICULTY_SOURCES": "sources",
    "build_source": "sources", "register_difficulty_source": "sources", "parse_difficulty": "sources",
}
# The scale (mmredstar.levels) under the same roof.
_SCALE = ("band", "parse_schedule", "samples_for", "in_range", "Band", "parse_bands", "map_difficulty",
          "DIFFICULTY_MAPS", "math_level", "taco", "scale10")

__all__ = sorted([*_EXPORTS, *_SCALE])


def __getattr__(name: str):
    if name in _SCALE:
        return getattr(importlib.import_module("mmredstar.levels"), name)
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"mmredstar.difficulty.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'mmredstar.difficulty' has no attribute {name!r}")


def __dir__():
    return __all__
