"""Find the declarative assets (data cards, model presets, training recipes, benchmark specs).

A bare name (``qwen2_5/14B_sft``, ``internvl2_8b``, ``geoqa``) or a path resolves to one file.
Assets live in top-level folders of the repository: ``data_cards/*.md``, ``models/*.yaml``,
``train/**/*.yaml``, ``eval/*.yaml``, and pipeline configs (curation, GeoQA pipeline, studies)
in ``configs/**/*.yaml``. Search order: an existing path as given; the folders under
``$MMREDSTAR_ASSETS`` (a directory holding those folders, for installs outside a clone); the
repository this package was installed from.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

KINDS = {"data_cards": ".md", "models": ".yaml", "train": ".yaml", "eval": ".yaml", "configs": ".yaml"}

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


class AssetError(FileNotFoundError):
    pass


def roots() -> list[Path]:
    out = []
    env = os.environ.get("MMREDSTAR_ASSETS")
    if env:
        out.extend(Path(p) for p in env.split(os.pathsep) if p)
    out.append(REPO_ROOT)
    return out


def asset_dir(kind: str) -> Path:
    """The first existing ``kind`` folder on the search path."""
    for r in roots():
        if (r / kind).is_dir():
            return r / kind
    raise AssetError(f"no '{kind}/' folder found under {[str(r) for r in roots()]}; set MMREDSTAR_ASSETS")


def resolve(kind: str, name: str | os.PathLike) -> Path:
    """Path of the asset ``name`` of ``kind`` (one of ``data_cards``, ``models``, ``train``, ``eval``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown asset kind {kind!r}; use one of {list(KINDS)}")
    p = Path(name)
    if p.suffix in (".yaml", ".yml", ".md") and p.exists():
        return p
    ext = KINDS[kind]
    for r in roots():
        cand = r / kind / (str(name) + ext)
        if cand.exists():
            return cand
        cand = r / kind / str(name)
        if cand.is_file():
            return cand
    avail = ", ".join(list_assets(kind)[:40])
    raise AssetError(f"unknown {kind} asset {str(name)!r}: no file {name}{ext} under {kind}/ and no such path. "
                     f"Available: {avail}")


def list_assets(kind: str) -> list[str]:
    """Bare names of every asset of ``kind`` (e.g. ``qwen2_5/14B_sft``)."""
    ext = KINDS[kind]
    names: set[str] = set()
    for r in roots():
        d = r / kind
        if d.is_dir():
            for f in d.rglob("*" + ext):
                if f.name.startswith(("_", ".")) or f.name.upper() == "README.MD":
                    continue
                names.add(str(f.relative_to(d).with_suffix("")).replace(os.sep, "/"))
    return sorted(names)


def load_yaml(path: str | os.PathLike) -> dict:
    """Load a YAML mapping; errors name the file and line."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{line}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


def front_matter(path: str | os.PathLike) -> tuple[dict, str]:
    """(YAML front matter, markdown body) of a data card."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        raise ValueError(f"{path}:1: a data card must start with YAML front matter between '---' lines")
    end = text.find("\n---", 3)
    if end < 0:
        raise ValueError(f"{path}: front matter is not closed by a '---' line")
    try:
        meta = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 2}" if mark is not None else ""
        raise ValueError(f"{path}{line}: invalid YAML front matter: {getattr(e, 'problem', e)}") from None
    return meta, text[end + 4:].lstrip("\n")
