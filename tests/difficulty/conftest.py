"""A tiny trained difficulty scorer, shared by the tests of this folder (trained once per session, ~10 s)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_scorer(tmp_path_factory):
    """(scorer directory, eval report) of configs/difficulty/tiny.yaml trained for 60 steps."""
    import torch

    from mmredstar.difficulty.train import train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("scorer") / "tiny"
    report = train("configs/difficulty/tiny.yaml", {"out": str(out), "train.max_steps": 60})
    return out, report
