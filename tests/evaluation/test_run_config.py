"""The one evaluation-run config (mmredstar/evaluation/config.py), shared by the GeoQA pipeline and the study."""

from __future__ import annotations

import dataclasses
import doctest

import mmredstar.evaluation.config as run_config
from mmredstar.config import field_docs
from mmredstar.evaluation.config import EvalRunConfig


def test_doctests():
    assert doctest.testmod(run_config).failed == 0


def test_both_workflows_take_the_same_keys():
    from mmredstar.workflows import geoqa, study

    shared = {f.name for f in dataclasses.fields(EvalRunConfig)}
    for mod, eval_cls in ((geoqa, geoqa.GeoQAEval), (study, study.StudyEval)):
        assert issubclass(eval_cls, EvalRunConfig) and shared <= {f.name for f in dataclasses.fields(eval_cls)}
        assert not hasattr(mod, "EvalConfig")
    g = geoqa.load_config("configs/geoqa/tiny.yaml", ["eval.n=2", "eval.limit=3", "eval.chunk_size=4"])
    s = study.load_config("configs/study/tiny.yaml", ["eval.n=2", "eval.limit=3", "eval.overrides.max_new_tokens=9"])
    assert g.eval.spec_overrides() == {"max_new_tokens": 8, "n": 2} and g.eval.batch_size == 16 and geoqa.GeoQAEval().batch_size == 64
    assert s.eval.spec_overrides()["n"] == 2 and s.eval.spec_overrides()["max_new_tokens"] == 9
    assert g.eval.backend_options_for(seed=0, threads=2) == {"batch_size": 16, "init_seed": 0, "threads": 2}
    docs = {k: d for k, _, d in field_docs(geoqa.GeoQAConfig)}
    assert docs["eval.backend"] and docs["eval.n"] and docs["eval.checkpoints"]
