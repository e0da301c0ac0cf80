"""Code-augmented steps: what a step's code is, running a path's code in the sandbox, terminal verdicts.

A *step* is text the policy writes up to the step marker (``<end_of_step>``, the stop string). Its code
is the contents of its ```` ```python ```` fences when it has any, else the step text itself (rStar-Math
writes each step as Python with the reasoning as comments) minus lines holding ``\\boxed{}``. A step is
kept only if the code of all previous steps plus its own runs in the sandbox (``mmredstar.verify.exec.sandbox``:
namespaces, dropped uid, resource limits; each candidate in its own forked child). A step containing
``The answer is`` or ``\\boxed{`` is *terminal*: its verdict comes from the sample's verifier on the
``\\boxed{}`` answer it writes, or, when it writes none, on the last line the path's program printed.

    from mmredstar.search.steps import execute
    execute(["x = 2 + 3\\nprint(x)", "while True: pass"])   # -> [{"status": "ok", "out": "5\\n"}, {"status": "timeout", ...}]
"""

from __future__ import annotations

import copy
import re

from ..schema import Message, Sample, Verdict
from ..synth.steps import ANSWER_MARK, STEP_END, join_steps
from ..verify import verify_response
from ..verify.exec.sandbox import Limits, SandboxError, run_program

EXEC_PROGRAM = ("import sys\n"
                "exec(compile(sys.stdin.read(), '<steps>', 'exec'), {'__name__': '__main__'})\n")
"""The sandboxed program: runs the code it reads on stdin (one test per candidate path)."""
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


def candidate_steps(responses) -> list[str]:
    """The usable candidate steps among one node's generated responses, in order: their text without
    surrounding newlines, dropping cut-off (``finish_reason == "length"``), empty and repeated ones."""
    out, seen = [], set()
    for r in responses:
        text = (r.text or "").strip("\n")
        if r.finish_reason == "length" or not text.strip() or text in seen:
            continue
        seen.add(text)
        out.append(text)
    return out


def step_code(text: str) -> str:
    """The code of one step (see the module docstring).

    >>> step_code("Add them.\\n```python\\nx = 1 + 2\\n```")
    'x = 1 + 2'
    >>> step_code("# The answer is x\\nprint(x)\\nThe answer is \\\\boxed{3}")
    '# The answer is x\\nprint(x)'
    """
    blocks = _FENCE.findall(text)
    if blocks:
        return "\n".join(b.strip("\n") for b in blocks)
    lines = [ln for ln in text.split("\n") if "\\boxed" not in ln and not ln.startswith(ANSWER_MARK)]
    return "\n".join(lines).strip("\n")


def is_terminal(text: str) -> bool:
    """Whether a step is the final, answer step."""
    return "\\boxed{" in text or ANSWER_MARK in text


def execute(programs: list[str], *, per_test: float = 2.0, memory_mb: int = 512) -> list[dict]:
    """Run each program in the sandbox (one sandbox, one forked, limited child per program): per program
    ``{"status": ok|timeout|error|memory|killed, "out", "err"}``. A sandbox failure marks all ``error``."""
    if not programs:
        return []
    lim = Limits(per_test=per_test, total=per_test * len(programs) + 5.0, memory_mb=memory_mb)
    res: dict[int, dict] = {}
    try:
        for r in run_program(EXEC_PROGRAM, list(programs), mode="stdio", limits=lim):
            res[r["i"]] = {"status": r["status"], "out": (r.get("out") or "")[-2000:],
                           "err": (r.get("err") or "")[-500:]}
    except SandboxError as e:
        return [{"status": "error", "out": "", "err": f"sandbox: {e}"[:500]} for _ in programs]
    return [res.get(i, {"status": "timeout", "out": "", "err": "not run (sandbox time limit)"})
            for i in range(len(programs))]


def last_output(out: str) -> str:
    lines = [ln.strip() for ln in (out or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def terminal_verdict(sample: Sample, step_text: str, out: str, **verify_options) -> tuple[Verdict, str]:
    """(verdict, the text scored) of a terminal step: its ``\\boxed{}`` answer, else the last printed line."""
    text = step_text if "\\boxed{" in step_text else f"The answer is \\boxed{{{last_output(out)}}}."
    return verify_response(sample, text, "stop", **verify_options), text


def with_prefix(sample: Sample, steps: list[str], tag: str) -> Sample:
    """A copy of ``sample`` whose prompt ends with the assistant prefix ``steps`` (continued by the policy);
    ``tag`` makes its id unique (per-prompt seeds)."""
    s = copy.copy(sample)
    s.prompt = list(sample.prompt)
    s.responses = []
    if steps:
        s.prompt.append(Message.make("assistant", join_steps(steps, final=False)))
    s.id = f"{sample.id}#{tag}"
    return s


__all__ = ["STEP_END", "EXEC_PROGRAM", "step_code", "is_terminal", "execute", "last_output", "terminal_verdict",
           "with_prefix"]


def split_steps(text: str) -> list[str]:
    """A whole trajectory's steps (split at the step marker)."""
    return [s.strip("\n") for s in text.split(STEP_END) if s.strip()]


def score_trajectories(items: list[tuple[Sample, str]], *, per_test: float = 2.0, **verify_options) -> list[dict]:
    """Verdicts of whole trajectories written in one go (greedy / sampled decoding): each one's steps' code is
    run together in the sandbox and its last step scored as a terminal step. Per item ``{"verdict",
    "answer", "status"}``; a trajectory whose code fails or that never reaches an answer step is ``wrong``
    / ``no_answer`` with its answer ``None``."""
    progs, metas = [], []
    for s, text in items:
        steps = split_steps(text or "")
        progs.append("\n".join(c for c in (step_code(x) for x in steps) if c))
        metas.append((s, steps))
    res = execute(progs, per_test=per_test)
    out = []
    for (s, steps), r in zip(metas, res, strict=True):
        if not steps or not is_terminal(steps[-1]):
            out.append({"verdict": "no_answer", "answer": None, "status": r["status"]})
        elif r["status"] != "ok":
            out.append({"verdict": "wrong", "answer": None, "status": r["status"]})
        else:
            v, _ = terminal_verdict(s, steps[-1], r["out"], **verify_options)
            out.append({"verdict": v.verdict, "answer": v.extracted, "status": "ok"})
    return out
