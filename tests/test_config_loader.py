"""The shared typed-config loader (``mmredstar.config``) that every config family is built on."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from mmredstar.config import (
    ConfigError,
    apply_overrides,
    build_dataclass,
    coerce,
    field_docs,
    load_dataclass,
    parse_override,
    to_plain,
)


@dataclass
class Item:
    path: str | None = None
    """A file."""
    weight: float = 1.0
    """Its weight."""


@dataclass
class Inner:
    mode: Literal["fast", "slow"] = "fast"
    """How to run."""
    steps: int = 1
    """Steps."""


@dataclass
class Outer:
    name: str = ""
    """The name."""
    inner: Inner = field(default_factory=Inner)
    """Inner settings."""
    items: list[Item] = field(default_factory=list)
    """Inputs."""
    tags: list[str] = field(default_factory=list)
    """Tags."""
    options: dict = field(default_factory=dict)
    """Free options."""
    limit: int | None = None
    """A limit."""
    runtime_only: str | None = field(default=None, metadata={"runtime": True})


def _shorthand(section, value):
    return {"mode": value} if section == "inner" and isinstance(value, str) else value


def test_types_are_coerced():
    assert coerce("1e-5", float, "lr") == 1e-5
    assert coerce("1e3", int, "n") == 1000 and coerce(4.0, int, "n") == 4
    assert coerce("yes", bool, "b") is True and coerce("off", bool, "b") is False
    assert coerce("a", list[str], "x") == ["a"] and coerce("[a, b]", list[str], "x") == ["a", "b"]
    assert coerce("{a: 1}", dict, "d") == {"a": 1}
    assert coerce("SLOW", Literal["fast", "slow"], "m") == "slow"
    assert coerce(None, int | None, "x") is None
    for value, tp, msg in [("big", int, "expected an integer, got 'big'"), (True, int, "expected an integer"),
                           ("x", float, "expected a number"), ("maybe", bool, "expected true or false"),
                           ([1], str, "expected a string"), ("medium", Literal["fast", "slow"], "not one of"),
                           (None, int, "expected an integer, got None")]:
        with pytest.raises(ConfigError, match=msg):
            coerce(value, tp, "k")


def test_errors_name_file_line_and_dotted_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: a\ninner:\n  mode: fast\n  stesp: 3\nitems:\n  - path: x\n    weight: heavy\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:4: unknown key 'inner\.stesp'; did you mean 'inner\.steps'"):
        load_dataclass(Outer, p)
    p.write_text("name: a\nitems:\n  - path: x\n    weight: heavy\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:4: key 'items\[0\]\.weight': expected a number, got 'heavy'"):
        load_dataclass(Outer, p)
    p.write_text("name: [a\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:2: invalid YAML"):
        load_dataclass(Outer, p)
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_dataclass(Outer, p)
    with pytest.raises(ConfigError, match="config not found"):
        load_dataclass(Outer, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="unknown key 'runtime_only'"):
        build_dataclass(Outer, {"runtime_only": "x"})


def test_overrides_shorthands_and_round_trip(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: a\ninner: slow\nitems: data.jsonl\n")
    cfg, file, where = load_dataclass(Outer, p, ["inner.steps=5", "options.k=0.5", "limit=null", "tags=[x, y]"],
                                      shorthand=_shorthand)
    assert file == str(p) and where("inner") == f"{p}:2"
    assert where("inner.steps") == f"{p} (command-line override inner.steps=5)"  # not a line of the file
    assert cfg.inner == Inner(mode="slow", steps=5) and cfg.items == [Item(path="data.jsonl")]
    assert cfg.options == {"k": 0.5} and cfg.limit is None and cfg.tags == ["x", "y"]
    again, file2, _ = load_dataclass(Outer, cfg)
    assert again == cfg and file2 == "<config>" and "runtime_only" not in to_plain(cfg)
    assert parse_override("a.b=") == ("a.b", None)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("a.b")
    with pytest.raises(ConfigError, match="'name' is 'a', not a section"):
        apply_overrides({"name": "a"}, ["name.x=1"])


@dataclass
class WeightedItem(Item):
    tag: str = ""
    """A tag."""


def test_field_docs_walks_nested_sections_and_bases():
    docs = {k: (t, d) for k, t, d in field_docs(Outer)}
    assert docs["inner.mode"][1] == "How to run." and docs["items[].weight"] == ("float", "Its weight.")
    assert "runtime_only" not in docs
    assert [(k, d) for k, _, d in field_docs(WeightedItem)] == [("path", "A file."), ("weight", "Its weight."),
                                                                  ("tag", "A tag.")]
