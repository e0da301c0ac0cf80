"""The package's layout is its data flow: floors, no import cycles between packages or files (imports inside
functions count), no import running back up a floor. README's and DEVELOPERS.md's layout sections list the floors."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "mmredstar"

FLOORS = {
    # (0) records and base machinery
    "schema": 0, "io": 0, "config": 0, "registry": 0, "assets": 0, "levels": 0, "stages": 0, "clibase": 0, "trackers": 0,
    "cpu": 0,
    "__init__": 0,
    # (1) verification, models, generated data
    "verify": 1, "modeling": 1, "synth": 1,
    # (2) data and generation
    "data": 2, "generate": 2,
    # (3) training and evaluation
    "training": 3, "evaluation": 3, "search": 3, "engines": 3,
    # (4) difficulty (sources and the trained scorer), (5) curation
    "difficulty": 4, "curate": 5,
    # (6) workflows and the command line
    "workflows": 6, "cli": 6, "bench_cli": 6,
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> project modules it imports, anywhere in the file (top level, functions, TYPE_CHECKING)."""
    mods = _modules()
    g: dict[str, set[str]] = {}
    for name, p in mods.items():
        pkg = name.split(".") if p.name == "__init__.py" else name.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                cands = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                cands = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            deps |= {c for c in cands if c in mods and c != name and not name.startswith(c + ".")}
        g[name] = deps
    return g


def unit(module: str) -> str:
    """The floor unit of a module: its top-level package or file under mmredstar."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in g:
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_every_package_is_on_a_floor():
    units = {unit(m) for m in _modules()}
    assert not units - set(FLOORS), (f"new top-level modules/packages {sorted(units - set(FLOORS))}: give them a floor "
                                     "here and a line in README's and DEVELOPERS.md's layout sections")


def test_no_cycles_between_files():
    found = cycles(import_graph())
    assert not found, "import cycles between files (imports inside functions count): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_no_cycles_between_packages():
    g: dict[str, set[str]] = {}
    for a, deps in import_graph().items():
        g.setdefault(unit(a), set()).update(unit(b) for b in deps if unit(b) != unit(a))
    assert not cycles(g)


def test_imports_never_run_up_a_floor():
    up = sorted(f"{a} -> {b} (floor {FLOORS[unit(a)]} -> {FLOORS[unit(b)]})"
                for a, deps in import_graph().items() for b in deps
                if unit(a) != unit(b) and FLOORS[unit(b)] > FLOORS[unit(a)])
    assert not up, "imports running up a floor: " + "; ".join(up)


def test_the_walker_sees_function_level_imports_and_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    g = import_graph()
    assert "mmredstar.stages" in g["mmredstar.data.subset"]                 # a top-level relative import
    assert "mmredstar.curate.pipeline" in g["mmredstar.curate.cli"]         # imported inside the command function
