"""Typed YAML configs: one loader for every config family of the package.

Curation configs, training recipes, evaluation specs, GeoQA pipeline configs, study configs and
difficulty-scorer configs are all trees of dataclasses whose fields are the YAML keys, each documented
once by the string under it. This module turns YAML (or a dict) into such a tree, checking every key
and type, and reports a problem as ``file:line: key 'a.b': what is wrong`` (unknown keys get a
did-you-mean with the full dotted key, ready to paste as an override).

    from mmredstar.config import load_dataclass
    cfg, file, where = load_dataclass(MyConfig, "configs/x.yaml", ["a.b=3"])

Values are coerced to the annotated type: ``"1e-5"`` to a float, ``"true"`` to a bool, a single value
to a one-item list, a YAML string to a mapping; ``Optional``, unions and ``Literal`` are honoured.
A dataclass field may carry ``metadata={"runtime": True}``: it is not a key (set by code, not YAML).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from mmredstar.assets import AssetError, resolve


class ConfigError(ValueError):
    """A config key or value is wrong; the message names the file, line and key and says what to do."""


Shorthand = Callable[[str, Any], Any]
"""``(field name, value) -> value``: expands a short form of a section (``model: NAME`` -> ``{name: NAME}``)
before it is built as a dataclass."""


# ----------------------------------------------------------------------------------------- locations
def key_lines(node, prefix: str = "", out: dict | None = None) -> dict[str, int]:
    """Line (1-based) of every key of a composed YAML node tree, dotted: ``{"select.sft.dedupe": 12}``;
    list items as ``inputs[0]``, ``inputs[0].path``."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = f"{prefix}{k.value}"
            out[key] = k.start_mark.line + 1
            key_lines(v, key + ".", out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out[f"{prefix[:-1]}[{i}]"] = v.start_mark.line + 1
            key_lines(v, f"{prefix[:-1]}[{i}].", out)
    return out


def duplicate_keys(node, prefix: str = "") -> list[tuple[str, int, int]]:
    """``(dotted key, first line, repeated line)`` for each key given twice in one mapping of a composed YAML
    tree (``yaml.safe_load`` would silently keep the last value)."""
    out: list[tuple[str, int, int]] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                if k.value in seen:
                    out.append((f"{prefix}{k.value}", seen[k.value], k.start_mark.line + 1))
                seen.setdefault(k.value, k.start_mark.line + 1)
            out += duplicate_keys(v, f"{prefix}{getattr(k, 'value', k)}.")
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out += duplicate_keys(v, f"{prefix[:-1]}[{i}].")
    return out


def where(file: str, lines: dict[str, int], key: str) -> str:
    """``file:line`` of ``key`` (or of its closest enclosing key that has a line); ``file`` alone otherwise."""
    k = key
    while True:
        line = lines.get(k)
        if isinstance(line, str):  # set on the command line (``mark_overrides``), not at a line of the file
            return f"{file} ({line})"
        if line is not None:
            return f"{file}:{line}"
        cut = max(k.rfind("."), k.rfind("["))
        if cut <= 0:
            return file
        k = k[:cut]


# ----------------------------------------------------------------------------------------- coercion
def _runtime(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("runtime"))


def key_names(cls) -> list[str]:
    """The YAML keys of dataclass ``cls`` (its fields, runtime-only ones left out)."""
    return [f.name for f in dataclasses.fields(cls) if not _runtime(f)]


def coerce(value: Any, tp, key: str, *, file: str = "<config>", lines: dict | None = None,
           error: type[ConfigError] = ConfigError, shorthand: Shorthand | None = None) -> Any:
    """Check and convert ``value`` to the annotated type ``tp`` (errors name ``file:line`` and ``key``).

    >>> coerce("1e-5", float, "train.lr"), coerce("true", bool, "x"), coerce("a", list[str], "data.train")
    (1e-05, True, ['a'])
    """
    lines = lines or {}

    def fail(msg: str):
        raise error(f"{where(file, lines, key)}: key '{key}': {msg}")

    def again(v, t, k):
        return coerce(v, t, k, file=file, lines=lines, error=error, shorthand=shorthand)

    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if shorthand is not None:
            value = shorthand(key.rsplit(".", 1)[-1], value)
        if value is None:
            return tp()
        if not isinstance(value, dict):
            fail(f"expected a mapping of {key_names(tp)}, got {type(value).__name__} {value!r}")
        return build_dataclass(tp, value, prefix=key + ".", file=file, lines=lines, error=error, shorthand=shorthand)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            fail("must not be empty")
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return again(value, options[0], key)
        errors = []
        for a in options:
            try:
                return again(value, a, key)
            except ConfigError as e:
                errors.append(str(e).split(": ", 2)[-1])
        fail(f"{value!r} fits none of the allowed types ({'; '.join(errors)})")
    if origin is Literal:
        for a in args:
            if value == a and type(value) is type(a):
                return a
        if isinstance(value, str):
            for a in args:
                if isinstance(a, str) and value.lower() == a.lower():
                    return a
        fail(f"{value!r} is not one of {list(args)}")
    if origin is list:
        (item,) = args or (Any,)
        if dataclasses.is_dataclass(item):
            if isinstance(value, dict):
                value = [value]
            elif isinstance(value, str) and "path" in key_names(item):
                value = [{"path": value}]
        elif isinstance(value, str) and value.startswith("["):
            value = yaml.safe_load(value)
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value] if value != "" else []
        if not isinstance(value, list):
            fail(f"expected a list, got {type(value).__name__} {value!r}")
        return [again(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is dict or origin is dict:
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                pass
        if value is None:
            return {}
        if not isinstance(value, dict):
            fail(f"expected a mapping, got {type(value).__name__} {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        fail(f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                f = None
            if f is not None and f.is_integer():
                return int(f)
        fail(f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        fail(f"expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        fail(f"expected a string, got {type(value).__name__} {value!r}")
    return value


def build_dataclass(cls, data: dict, *, prefix: str = "", file: str = "<config>", lines: dict | None = None,
                    error: type[ConfigError] = ConfigError, shorthand: Shorthand | None = None):
    """Build dataclass ``cls`` from a mapping, checking every key and type (errors name file:line and key)."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise error(f"{where(file, lines, prefix[:-1]) if prefix else file}: expected a mapping of "
                    f"{key_names(cls)}, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    names = key_names(cls)
    aliases = key_aliases(cls)
    notes = getattr(cls, "key_notes", {})
    kw = {}
    for k, v in data.items():
        key = prefix + str(k)
        if k not in names and k in aliases:
            if aliases[k] in data:
                raise error(f"{where(file, lines, key)}: key '{key}' is another name for '{prefix}{aliases[k]}', "
                            f"which is set too; keep one")
            kw[aliases[k]] = coerce(v, hints[aliases[k]], key, file=file, lines=lines, error=error, shorthand=shorthand)
            continue
        if k not in names:
            if k in notes:
                raise error(f"{where(file, lines, key)}: key '{key}' is not a key here: {notes[k]}")
            close = difflib.get_close_matches(str(k), names + list(aliases), n=1)
            if close and close[0] in aliases:
                close = [aliases[close[0]]]
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; allowed keys: {names}"
            raise error(f"{where(file, lines, key)}: unknown key '{key}'{hint}")
        kw[k] = coerce(v, hints[k], key, file=file, lines=lines, error=error, shorthand=shorthand)
    return cls(**kw)


def key_aliases(cls) -> dict[str, str]:
    """Other names accepted for keys of ``cls`` (its ``key_aliases`` class attribute: alias -> field), e.g. the
    transformers ``TrainingArguments`` names of training keys (``learning_rate`` for ``lr``)."""
    return dict(getattr(cls, "key_aliases", {}) or {})


def to_plain(obj: Any) -> Any:
    """A dataclass tree as plain data (runtime-only fields left out): what ``yaml.safe_dump`` can write."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not _runtime(f)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


# ----------------------------------------------------------------------------------------- overrides
def parse_override(text: str, error: type[ConfigError] = ConfigError) -> tuple[str, Any]:
    """``"sampling.temperature=0.6"`` -> ``("sampling.temperature", 0.6)``: the value is read as YAML (and
    typed by its field when the config is built).

    >>> parse_override("select.dpo.pairing=all"), parse_override("limit=10")
    (('select.dpo.pairing', 'all'), ('limit', 10))
    """
    if "=" not in text:
        raise error(f"override {text!r}: expected KEY=VALUE, e.g. train.lr=1e-5")
    key, raw = text.split("=", 1)
    key, raw = key.strip().lstrip("-"), raw.strip()
    if not raw:
        return key, None
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError:
        return key, raw


def canonical_key(cls, key: str) -> str:
    """A dotted key with each part given under another name (``key_aliases``) replaced by the field's own name:
    ``train.learning_rate`` -> ``train.lr``, so an override by either name replaces the value in the file."""
    parts, out, cur = key.split("."), [], cls
    for p in parts:
        if cur is not None and dataclasses.is_dataclass(cur):
            p = key_aliases(cur).get(p, p)
            tp = typing.get_type_hints(cur).get(p)
            cur = tp if dataclasses.is_dataclass(tp) else None
        else:
            cur = None
        out.append(p)
    return ".".join(out)


def canonical_overrides(cls, overrides: list[str] | dict | None, error: type[ConfigError] = ConfigError) -> dict:
    """Overrides as ``{canonical dotted key: value}`` (see ``canonical_key``), in order; the original text of each is
    kept for messages by ``mark_overrides``."""
    items = overrides.items() if isinstance(overrides, dict) else [parse_override(o, error) for o in overrides or []]
    return {canonical_key(cls, k): v for k, v in items}


def apply_overrides_to(cls, data: dict, overrides: list[str] | dict | None, *, shorthand: Shorthand | None = None,
                       error: type[ConfigError] = ConfigError) -> dict:
    """``apply_overrides`` for the keys of dataclass ``cls``: an override by either name of a key (``key_aliases``)
    sets the field and replaces the value the file gave under either name."""
    canon = canonical_overrides(cls, overrides, error)
    data = apply_overrides(data, canon, shorthand=shorthand, error=error)
    for key in canon:
        parts, cur, node = key.split("."), cls, data
        for p in parts[:-1]:
            tp = typing.get_type_hints(cur).get(p) if dataclasses.is_dataclass(cur) else None
            node = node.get(p) if isinstance(node, dict) else None
            cur = tp if dataclasses.is_dataclass(tp) else None
        if isinstance(node, dict) and cur is not None:
            for alias, f in key_aliases(cur).items():
                if f == parts[-1]:
                    node.pop(alias, None)
    return data


def mark_overrides(lines: dict, overrides: list[str] | dict | None, error: type[ConfigError] = ConfigError,
                   cls=None) -> dict:
    """``lines`` with each overridden key (and what lay under it in the file) marked as a command-line
    override, so an error about it says so instead of pointing at a line of the file the user never wrote.
    With ``cls``, keys given under another name are marked under the field's name too."""
    out = dict(lines)
    if isinstance(overrides, dict):
        items = [(k, f"{k}={v}") for k, v in overrides.items()]
    else:
        items = [(parse_override(o, error)[0], o.strip()) for o in overrides or []]
    if cls is not None:
        items = [(k2, t) for k, t in items for k2 in dict.fromkeys([k, canonical_key(cls, k)])]
    for key, text in items:
        for k in [k for k in out if k == key or k.startswith(key + ".") or k.startswith(key + "[")]:
            del out[k]
        out[key] = f"command-line override {text}"
    return out


def apply_overrides(data: dict, overrides: list[str] | dict | None, *, shorthand: Shorthand | None = None,
                    error: type[ConfigError] = ConfigError) -> dict:
    """Set dotted keys in a nested mapping (a copy). A section given in a short form is expanded by
    ``shorthand`` first; overriding inside a value that is not a section is an error."""
    data = copy.deepcopy(data)
    items = overrides.items() if isinstance(overrides, dict) else [parse_override(o, error) for o in overrides or []]
    for key, value in items:
        parts = key.split(".")
        cur = data
        for i, p in enumerate(parts[:-1]):
            nxt = cur.get(p)
            if nxt is None:
                nxt = cur[p] = {}
            elif not isinstance(nxt, dict):
                if shorthand is not None:
                    nxt = shorthand(p, nxt)
                if not isinstance(nxt, dict):
                    raise error(f"override {key}: '{'.'.join(parts[:i + 1])}' is {nxt!r}, not a section")
                cur[p] = nxt
            cur = nxt
        cur[parts[-1]] = value
    return data


# ----------------------------------------------------------------------------------------- loading
def read_yaml(path_or_data: str | os.PathLike | dict, *, kind: str = "configs",
              error: type[ConfigError] = ConfigError) -> tuple[dict, str, dict[str, int]]:
    """``(data, file, lines)`` from a YAML path, a bare name under the ``kind`` asset folder
    (``configs/``, ``train/``, ``eval/``), or a dict (file ``<config>``, no lines)."""
    if isinstance(path_or_data, dict):
        return dict(path_or_data), "<config>", {}

    path = os.fspath(path_or_data)
    if not os.path.exists(path):
        try:
            path = os.fspath(resolve(kind, path))
        except AssetError as e:
            raise error(f"{path_or_data}: config not found ({e})") from None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = Path(path).read_bytes()[:e.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not UTF-8 text (byte {e.object[e.start:e.start + 1]!r}); save the file as UTF-8") from None
    try:
        data = yaml.safe_load(text)
        tree = yaml.compose(text) if data else None
        lines = key_lines(tree) if data else {}
        dups = duplicate_keys(tree)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise error(f"{path}{line}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    if dups:
        key, first, again = dups[0]
        raise error(f"{path}:{again}: duplicate key {key!r} (first given at line {first}); keep one of the two")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data, path, lines


def load_dataclass(cls, path_or_data, overrides: list[str] | dict | None = None, *, kind: str = "configs",
                   error: type[ConfigError] = ConfigError, shorthand: Shorthand | None = None):
    """``(config, file, where)``: dataclass ``cls`` from a YAML path / asset name / dict / instance of ``cls``,
    with dotted overrides applied; ``file`` is the YAML path (``<config>`` for data) and ``where(key)`` gives
    ``file:line`` for the family's own semantic checks."""
    if isinstance(path_or_data, cls):
        path_or_data = to_plain(path_or_data)
    data, file, lines = read_yaml(path_or_data, kind=kind, error=error)
    if overrides:
        data = apply_overrides_to(cls, data, overrides, shorthand=shorthand, error=error)
        lines = mark_overrides(lines, overrides, error, cls)
    cfg = build_dataclass(cls, data, file=file, lines=lines, error=error, shorthand=shorthand)
    return cfg, file, (lambda key: where(file, lines, key))


def field_docs(cls, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(dotted key, type, doc)`` for every key of dataclass ``cls``, from the strings under its fields."""
    import ast
    import inspect

    docs: dict[tuple[str, str], str] = {}
    for mod in {inspect.getmodule(c) for c in _dataclass_tree(cls)}:
        for node in ast.parse(inspect.getsource(mod)).body:
            if isinstance(node, ast.ClassDef):
                for a, b in zip(node.body, node.body[1:], strict=False):
                    if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                            and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
                        docs[(node.name, a.target.id)] = " ".join(b.value.value.split())
    return _field_docs(cls, prefix, docs)


def _dataclass_tree(cls) -> list:
    out, todo = [], [cls]
    while todo:
        c = todo.pop()
        if c in out:
            continue
        out.append(c)
        todo.extend(b for b in c.__mro__[1:] if dataclasses.is_dataclass(b))
        for tp in typing.get_type_hints(c).values():
            for t in (tp, *typing.get_args(tp)):
                if dataclasses.is_dataclass(t):
                    todo.append(t)
    return out


def _field_docs(cls, prefix: str, docs: dict) -> list[tuple[str, str, str]]:
    out = []
    hints = typing.get_type_hints(cls)
    for name in key_names(cls):
        tp = hints[name]
        doc = next((docs[(c.__name__, name)] for c in cls.__mro__ if (c.__name__, name) in docs), "")
        also = [a for a, f in key_aliases(cls).items() if f == name]
        if also:
            doc += (" " if doc else "") + f"(Also accepted as: {', '.join(also)}.)"
        out.append((prefix + name, getattr(tp, "__name__", str(tp).replace("typing.", "")), doc))
        if dataclasses.is_dataclass(tp):
            out.extend(_field_docs(tp, prefix + name + ".", docs))
        else:
            inner = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
            if inner:
                sep = "[]." if typing.get_origin(tp) is list else "."
                out.extend(_field_docs(inner[0], prefix + name + sep, docs))
    return out
