"""Run the doctests of the data-composition modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["mmredstar.difficulty.metrics", "mmredstar.synth.arithmetic", "mmredstar.difficulty.data",
           "mmredstar.data.subset", "mmredstar.data.mixture", "mmredstar.workflows.study.stages"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    res = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0
