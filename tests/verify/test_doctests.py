"""The examples in the verification modules' docstrings run and hold.

    .venv/bin/python -m pytest -q tests/verify/test_doctests.py
"""

import doctest
import importlib

import pytest

MODULES = ["latex", "extract", "math", "choice", "code", "text", "filters", "reward", "__init__"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    mod = importlib.import_module("mmredstar.verify" + ("" if name == "__init__" else "." + name))
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0
