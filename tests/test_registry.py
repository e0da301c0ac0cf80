"""The name-or-dotted-path look-up every pluggable part uses (teachers, sources, verifiers, filters...)."""

import pytest

from mmredstar.generate import teacher_class
from mmredstar.registry import import_attr, lookup
from mmredstar.verify import resolve as resolve_verifier
from mmredstar.verify.filters import resolve_filter

REG = {"sqrt": "math:sqrt", "direct": len}


def test_names_values_and_dotted_paths():
    assert lookup("sqrt", REG, "function")(16.0) == 4.0
    assert lookup("direct", REG, "function") is len
    assert lookup("os.path:join", REG, "function")("a", "b") == "a/b"
    assert import_attr("collections:OrderedDict.fromkeys")("ab") == {"a": None, "b": None}


def test_errors_say_what_and_suggest():
    with pytest.raises(ValueError, match=r"unknown function 'sqtr'; did you mean 'sqrt'\? Use one of \['direct', 'sqrt'\]"):
        lookup("sqtr", REG, "function")
    with pytest.raises(ValueError, match=r"unknown function 'zzz'; use one of"):
        lookup("zzz", REG, "function")
    with pytest.raises(ValueError, match=r"function 'math:nope': cannot import math:nope"):
        lookup("math:nope", REG, "function")
    with pytest.raises(ValueError, match=r"cannot import no_such_pkg_x:f \(No module named"):
        import_attr("no_such_pkg_x:f", "hook")
    with pytest.raises(ValueError, match="expected a name or a dotted path"):
        lookup(3, REG, "function")


def test_the_package_registries_use_it():
    from mmredstar.generate import Teacher

    assert teacher_class("mmredstar.generate:Teacher") is Teacher
    with pytest.raises(ValueError, match="unknown teacher kind 'scriptd'; did you mean 'scripted'"):
        teacher_class("scriptd")
    with pytest.raises(ValueError, match="unknown verifier 'mth'; did you mean 'math'"):
        resolve_verifier("mth")
    assert resolve_filter("mmredstar.verify.filters:resolve_filter") is resolve_filter
