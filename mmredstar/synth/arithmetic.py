"""A labelled fixture where difficulty is learnable from the text: generated arithmetic by level.

Level L (1-5, MATH-style ``meta.level = "Level L"``) is a chain of L additions / subtractions whose
operands have up to ``min(L + 1, 3)`` digits, so the number of operations (and digits) sets the level
(``max_operand=M``: operands 1..M at every level, so only the number of operations does: a skill a tiny model
can learn, each level's working being that many copies of the same kind of step);
``Sample.difficulty`` is the level on the 1-10 scale (``mmredstar.levels.math_level``: 2L-1).
Each sample carries ``meta.reference_cot`` (the step-by-step working ending in ``\\boxed{answer}``), so
the scripted curation teacher writes long-CoT responses from it (the tiny study's built-in data).

    python -m mmredstar.synth.arithmetic OUT.jsonl [N] [SEED]     # write N problems (deterministic)

    >>> ss = arithmetic_problems(10, seed=0)
    >>> sorted({s.meta["level"] for s in ss})[:2], ss[0].difficulty == 2 * int(ss[0].meta["level"][-1]) - 1
    (['Level 1', 'Level 2'], True)
"""

from __future__ import annotations

import random
import sys

from mmredstar.io import write_samples
from mmredstar.schema import Sample

SOURCE = "arith_levels"
LEVELS = (1, 2, 3, 4, 5)


def _problem(level: int, rng: random.Random, max_operand: int | None = None) -> tuple[str, str, str]:
    """(question, answer, reference chain of thought) for one problem of ``level``."""
    if max_operand is not None:
        nums = [rng.randint(1, max_operand) for _ in range(level + 1)]
    else:
        digits = min(level + 1, 3)
        nums = [rng.randint(1, 10 ** rng.randint(1, digits) - 1) for _ in range(level + 1)]
    ops = [rng.choice("+-") for _ in range(level)]
    expr = str(nums[0]) + "".join(f" {o} {n}" for o, n in zip(ops, nums[1:], strict=True))
    total = nums[0]
    steps = []
    for o, n in zip(ops, nums[1:], strict=True):
        new = total + n if o == "+" else total - n
        steps.append(f"{total} {o} {n} = {new}.")
        total = new
    cot = "\n".join(["Work from left to right.", *steps, f"The final answer is \\boxed{{{total}}}."])
    return f"Compute {expr}.", str(total), cot


def arithmetic_problems(n: int, seed: int = 0, levels: tuple[int, ...] = LEVELS, split: str = "train",
                        max_operand: int | None = None, exclude: set[str] | frozenset = frozenset()) -> list[Sample]:
    """``n`` distinct arithmetic problems, levels cycling through ``levels`` (balanced), deterministic;
    ``max_operand``: operands 1..max_operand at every level (default: up to ``min(level + 1, 3)`` digits);
    ``exclude``: questions never to return (a held-out set that avoids a training pool)."""
    if max_operand is not None and int(max_operand) < 1:
        raise ValueError(f"max_operand must be a positive integer, got {max_operand!r}")
    rng = random.Random(seed)
    out: list[Sample] = []
    seen: set[str] = set(exclude)
    tries = 0
    while len(out) < n:
        level = levels[len(out) % len(levels)]
        q, a, cot = _problem(level, rng, max_operand)
        tries += 1
        if q in seen:
            if tries > 50 * n + 1000:
                why = f" (besides the {len(exclude)} excluded)" if exclude else ""
                raise ValueError(f"cannot make {n} distinct problems at levels {levels}{why}"
                                 f"{f' with operands up to {max_operand}' if max_operand else ''}; ask for fewer")
            continue
        seen.add(q)
        out.append(Sample.text(q, a, "math", source=SOURCE, split=split, difficulty=float(2 * level - 1),
                               meta={"level": f"Level {level}", "domain": "arithmetic", "reference_cot": cot}))
    return out


def write_problems(path: str, n: int, seed: int = 0, **kw) -> str:
    """Write :func:`arithmetic_problems` to ``path`` (same bytes every time); returns the path."""
    write_samples(path, arithmetic_problems(n, seed, **kw))
    return path


if __name__ == "__main__":
    a = sys.argv[1:]
    if not a:
        sys.exit("usage: python -m mmredstar.synth.arithmetic OUT.jsonl [N] [SEED]")
    print(write_problems(a[0], int(a[1]) if len(a) > 1 else 1000, int(a[2]) if len(a) > 2 else 0))
