"""Training: SFT, DPO, GRPO and REINFORCE++ from YAML recipes, for text models and VLMs.

    from mmredstar.training import run
    out = run("tiny/sft", ["train.max_steps=20"])     # -> output dir with weights, metrics.json, ...

Command line: ``mmredstar train RECIPE [key=value ...] [--resume] [--check]``. Recipes live in ``train/``
(``train/tiny/*.yaml`` run on CPU in minutes); ``train/_sets.yaml`` names the data sets recipes use.
"""

from __future__ import annotations

import contextlib
import os

from .config import METHODS, Recipe, RecipeError, load_recipe
from .validate import check

__all__ = ["run", "load_recipe", "check_recipe", "Recipe", "RecipeError", "METHODS"]


def run(recipe: str | os.PathLike | Recipe, overrides: list[str] | dict | None = None) -> str:
    """Train from a recipe (name, path or ``Recipe``) with dotted ``overrides``; returns the output directory."""
    rec = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
    if isinstance(recipe, Recipe) and overrides:
        from .config import apply_overrides, recipe_from_dict

        name, path = rec.name, rec.path
        rec = recipe_from_dict(apply_overrides(rec.to_dict(), overrides), file=path or "<recipe>")
        rec.name, rec.path = name, path
    from .config import check_extra_args

    check_extra_args(rec)  # before any model is loaded
    from mmredstar.io import dir_lock

    from .runner import check_output_dir, dist_env

    rec.output_dir = out = rec.output_dir or os.path.join("runs", rec.name or "run")
    lock = dir_lock(out, "train", "wait for it, or choose another output_dir") if dist_env()[0] == 0 \
        else contextlib.nullcontext()
    with lock:
        if check_output_dir(rec, out):
            return out
        return _train(rec)


def _train(rec: Recipe) -> str:
    if rec.method == "sft":
        from .sft import train
    elif rec.method == "dpo":
        from .dpo import train
    elif rec.method in ("ppo", "reinforce_pp", "reinforce_baseline"):
        from .ppo import train
    elif rec.method == "ppm":
        from .ppm import train
    else:
        from .rl import train
    return train(rec)


def check_recipe(recipe: str | os.PathLike, overrides: list[str] | dict | None = None) -> Recipe:
    """Validate a recipe without loading a model: keys and types, the model preset, data names, DeepSpeed config."""
    return check(recipe, overrides)
