"""Generated multi-step arithmetic with code-augmented steps whose code is checkable (rStar-Math fixture).

Each problem is a chain of ``level`` additions / subtractions (level 1-4). Its reference solution is a
list of *code-augmented steps* in the rStar-Math style: each step is Python code (the reasoning as a
comment where useful) that runs when all previous steps run before it; the last step is the answer
step, marked by the comment ``# The answer is x`` and printing the value, so the terminal verdict reads
the program's last printed value (PoT style) when the step writes no ``\\boxed{}``:

    x = 3 + 5                      <end_of_step>
    x = x - 2                      <end_of_step>
    # The answer is x
    print(x)

``meta.reference_steps`` holds the steps (without markers); ``meta.reference_cot`` the whole trajectory
text (steps joined by :data:`STEP_END` and a newline) which SFT trains on; ``difficulty`` is 2L-1 on the
1-10 scale, ``meta.level`` ``"Level L"``.

    python -m mmredstar.synth.steps OUT.jsonl [N] [SEED]

    >>> s = step_problems(4, seed=0)[1]
    >>> s.meta["level"], len(s.meta["reference_steps"])
    ('Level 2', 3)
    >>> run_steps(s.meta["reference_steps"]) == s.answer
    True
"""

from __future__ import annotations

import contextlib
import io
import random
import sys

from mmredstar.schema import Sample

SOURCE = "arith_steps"
LEVELS = (1, 2, 3, 4)
STEP_END = "<end_of_step>"
"""The marker ending every non-final step (the stop string of step-wise generation)."""
ANSWER_MARK = "The answer is"
"""A step containing this (or ``\\boxed{``) is the final, answer step."""


def join_steps(steps: list[str], final: bool = True) -> str:
    """The trajectory text of ``steps``: every step but a final last one is followed by ``STEP_END`` and a newline."""
    out = []
    for i, s in enumerate(steps):
        out.append(s if (final and i == len(steps) - 1) else s + STEP_END + "\n")
    return "".join(out)


def _problem(level: int, rng: random.Random, max_operand: int) -> tuple[str, list[str], int]:
    nums = [rng.randint(1, max_operand) for _ in range(level + 1)]
    ops = [rng.choice("+-") for _ in range(level)]
    expr = str(nums[0]) + "".join(f" {o} {n}" for o, n in zip(ops, nums[1:], strict=True))
    steps = [f"x = {nums[0]} {ops[0]} {nums[1]}"]
    total = nums[0] + nums[1] if ops[0] == "+" else nums[0] - nums[1]
    for o, n in zip(ops[1:], nums[2:], strict=True):
        steps.append(f"x = x {o} {n}")
        total = total + n if o == "+" else total - n
    steps.append(f"# {ANSWER_MARK} x\nprint(x)")
    return f"Compute {expr}.", steps, total


def step_problems(n: int, seed: int = 0, levels: tuple[int, ...] = LEVELS, split: str = "train",
                  max_operand: int = 20) -> list[Sample]:
    """``n`` distinct problems, levels cycling through ``levels``; deterministic in ``seed``."""
    rng = random.Random(seed)
    out: list[Sample] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        level = levels[len(out) % len(levels)]
        q, steps, total = _problem(level, rng, max_operand)
        tries += 1
        if q in seen:
            if tries > 50 * n + 1000:
                raise ValueError(f"cannot make {n} distinct problems at levels {levels}; ask for fewer")
            continue
        seen.add(q)
        out.append(Sample.text(q, str(total), "math", source=SOURCE, split=split, difficulty=float(2 * level - 1),
                               meta={"level": f"Level {level}", "domain": "arithmetic", "reference_steps": steps,
                                     "reference_cot": join_steps(steps)}))
    return out


def run_steps(steps: list[str]) -> str:
    """Run trusted reference steps in this process and return the last printed line (for checks only;
    model-written code goes through the sandbox, ``mmredstar.search.steps.execute``)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile("\n".join(steps), "<steps>", "exec"), {})  # noqa: S102 - our own generated code
    lines = buf.getvalue().strip().splitlines()
    return lines[-1] if lines else ""


def write_problems(path: str, n: int, seed: int = 0, **kw) -> str:
    """Write :func:`step_problems` to ``path`` (same bytes every time); returns the path."""
    from mmredstar.io import write_samples

    write_samples(path, step_problems(n, seed, **kw))
    return path


if __name__ == "__main__":
    a = sys.argv[1:]
    if not a:
        sys.exit("usage: python -m mmredstar.synth.steps OUT.jsonl [N] [SEED]")
    print(write_problems(a[0], int(a[1]) if len(a) > 1 else 1000, int(a[2]) if len(a) > 2 else 0))
