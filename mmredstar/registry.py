"""Name look-ups with an escape hatch: every pluggable part (teachers, difficulty sources, verifiers,
filters, adapters, dataset generators, RL rewards) is picked from a literal registry by name, or
given as a dotted path ``pkg.module:attr`` to the user's own code.

    >>> lookup("sqrt", {"sqrt": "math:sqrt"}, "function")(9.0)
    3.0
    >>> lookup("sqtr", {"sqrt": "math:sqrt"}, "function")
    Traceback (most recent call last):
    ...
    ValueError: unknown function 'sqtr'; did you mean 'sqrt'? Use one of ['sqrt'] or a dotted path 'pkg.module:function'
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any


def import_attr(path: str, what: str | None = None) -> Any:
    """The object at ``pkg.module:attr`` (``attr`` may be dotted: ``Class.method``); a clear ``ValueError``
    naming ``what`` when the module or attribute is missing.

    >>> import_attr("os.path:join")("a", "b")
    'a/b'
    """
    mod, sep, attr = path.partition(":")
    if not sep or not mod or not attr:
        raise ValueError(f"{what or path!r}: expected a dotted path 'pkg.module:attr', got {path!r}")
    try:
        obj = importlib.import_module(mod)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"{what or 'object'}: cannot import {path} ({e})") from None
    return obj


def lookup(name: str, registry: dict[str, Any], what: str, *, example: str = "pkg.module:function") -> Any:
    """``registry[name]`` (a value given as a ``"pkg.module:attr"`` string is imported), or ``name`` itself
    as a dotted path; an unknown name raises ``ValueError`` with a did-you-mean and the choices."""
    if not isinstance(name, str):
        raise ValueError(f"{what}: expected a name or a dotted path '{example}', got {name!r}")
    target = registry.get(name, name)
    if not isinstance(target, str):
        return target
    if ":" not in target:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = f"; did you mean '{close[0]}'? Use" if close else "; use"
        raise ValueError(f"unknown {what} {name!r}{hint} one of {sorted(registry)} or a dotted path '{example}'")
    return import_attr(target, f"{what} {name!r}")
