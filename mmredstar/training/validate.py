"""Check a recipe without loading a model: keys and types, the referenced preset, data and DeepSpeed config.

    mmredstar train qwen2_5/7B_sft_4k --check
    python -c "from mmredstar.training.validate import check_all; check_all()"    # every shipped recipe
"""

from __future__ import annotations

import os
from pathlib import Path

from mmredstar.assets import AssetError, list_assets, resolve

from ..data.inputs import as_input, check_input
from ..synth.builtins import BUILTIN_SETS
from .config import Recipe, RecipeError, load_recipe
from .data import KINDS, describe_spec, named_sets, shipped_sets_path

METHOD_KIND = {"sft": "sft", "dpo": "dpo", "grpo": "rl", "reinforce_pp": "rl", "reinforce_baseline": "rl", "ppo": "rl",
               "ppm": "dpo"}


def check(name_or_path, overrides=None) -> Recipe:
    """Load and check one recipe; raises ``RecipeError`` naming the file, line and key."""
    rec = load_recipe(name_or_path, overrides)
    path = rec.path or str(name_or_path)
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("#") or "mmredstar train" not in lines[0] and "python -m" not in lines[0]:
        raise RecipeError(f"{path}:1: the first line must be a comment with the command that runs this recipe, "
                          f"e.g. '# mmredstar train {rec.name}'")
    # model: a preset or an existing path
    m = rec.model.name
    if not os.path.exists(m):
        try:
            resolve("models", m)
        except AssetError:
            raise RecipeError(f"{path}:{_line(lines, 'model')}: key 'model': no preset {m!r} in models/ and no such "
                              f"path; presets: {', '.join(list_assets('models'))}") from None
    if rec.model.init_from:
        try:
            load_recipe(rec.model.init_from)
        except (RecipeError, AssetError, FileNotFoundError) as e:
            raise RecipeError(f"{path}:{_line(lines, 'init_from')}: key 'model.init_from': {e}") from None

    def at(needle: str) -> str:  # file:line of a value, or the command-line override that set it
        n = _line(lines, needle)
        return f"{path}:{n}" if n != "?" else (f"{path} (command-line override)" if overrides else f"{path}:?")

    # data: built-in, named set of the right kind, or an existing path
    sets = named_sets()
    want = METHOD_KIND[rec.method]
    for spec in rec.data.train + rec.data.eval + [m["path"] for m in rec.data.mixture]:
        try:
            kind, name = describe_spec(spec)
        except ValueError as e:
            raise RecipeError(f"{at('data')}: key 'data': {e}") from None
        if isinstance(spec, dict):   # an input mapping (card + src, where, limit, ...)
            try:
                check_input(as_input(spec), "data", lambda key: at("data"))
            except ValueError as e:
                raise RecipeError(str(e)) from None
            if kind not in ("set", "builtin"):
                continue
        label = spec if isinstance(spec, str) else str(name)
        if kind == "set":
            if sets[name]["kind"] != want:
                raise RecipeError(f"{at(label)}: data set {label!r} is a {sets[name]['kind']} set, "
                                  f"but method {rec.method} trains on {want} data")
        elif kind == "builtin":
            if name in BUILTIN_SETS and not name.startswith(want + "_"):
                raise RecipeError(f"{at(label)}: built-in set {name!r} is not {want} data")
        elif isinstance(spec, str) and spec.startswith("hf:"):
            from mmredstar.schema import convert_command

            raise RecipeError(f"{at(spec)}: data {spec!r}: a hub dataset is read through its card; convert it first: "
                              f"{convert_command('CARD', spec)}"
                              " (CARD: trl, sharegpt, llamafactory, swift, messages or a dataset's card; "
                              "`mmredstar data cards` lists them)")
        elif kind == "path" and isinstance(spec, str) and not os.path.exists(spec) and not any(c in spec for c in "*?["):
            raise RecipeError(f"{at(spec)}: data {spec!r} is neither a named set "
                              f"({shipped_sets_path()}), 'builtin:NAME', nor an existing path")
        elif isinstance(spec, str):
            problem = _probe_data(spec, want)
            if problem:
                raise RecipeError(f"{at(spec)}: data {spec!r}: {problem}")
    if rec.train.extra_args:
        from .config import check_extra_args

        check_extra_args(rec, at("extra_args"))
    if rec.train.deepspeed:
        from .runner import deepspeed_config

        try:
            deepspeed_config(rec.train.deepspeed)
        except ValueError as e:
            raise RecipeError(f"{path}:{_line(lines, 'deepspeed')}: {e}") from None
    return rec


PROBE_ROWS = 100  # rows of each data file that --check reads


def _probe_data(spec: str, want: str | None = None) -> str | None:
    """What is wrong with a data path, judged from its listing and the first ``PROBE_ROWS`` records of each file
    (cheap): a ``save_to_disk`` or LLaMA-Factory directory, or another tool's row layout, comes back with the
    convert command to run; an invalid record, a file without records, or records of the wrong kind for the
    method (``want``: sft | dpo | rl) name the file and line."""
    import itertools

    from mmredstar.io import expand_paths, iter_raw_records
    from mmredstar.schema import DataError, validate_record

    try:
        files = expand_paths(spec)
    except DataError as e:
        return str(e.problems[0])
    for path in files:
        n = 0
        for file, line, d, prob in itertools.islice(iter_raw_records([path]), PROBE_ROWS):
            n += 1
            if prob is not None:
                return str(prob)
            ps = validate_record(d, file=file, line=line)
            if ps:
                return str(ps[0])
            pair = isinstance(d, dict) and "chosen" in d
            if want == "dpo" and not pair:
                return f"{file}:{line}: a DPO recipe trains on pairs (chosen + rejected); this record is a sample"
            if want == "sft" and pair:
                return f"{file}:{line}: an SFT recipe trains on samples; this record is a DPO pair (use method: dpo)"
        if n == 0:
            return f"{path}: holds no records (an empty file?)"
    return None


def _line(lines: list[str], needle: str) -> int | str:
    for i, ln in enumerate(lines, 1):
        if needle in ln and not ln.lstrip().startswith("#"):
            return i
    return "?"


def check_all() -> list[str]:
    """Check every recipe under ``train/`` and the named-set file; returns the recipe names."""
    names = list_assets("train")
    for n in names:
        check(n)
    for name, s in named_sets().items():
        assert s["kind"] in KINDS, name
    return names
