"""The doctests of the benchmark helpers and the memory options (small pure functions: FLOPs, packing
efficiency, the longest-sequence search, chunk sizes).

    .venv/bin/python -m pytest -q tests/bench/test_bench_doctests.py
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["bench.flops", "bench.cpu", "bench.gpu", "bench.longcot", "mmredstar.training.memory"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0, result
