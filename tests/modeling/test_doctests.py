"""The doctests in mmredstar.modeling (small pure functions).

    .venv/bin/python -m pytest -q tests/modeling/test_doctests.py
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["tokenizer", "tiling", "processor", "presets", "rope", "groups", "vlm"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    mod = importlib.import_module(f"mmredstar.modeling.{name}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0, result
