"""Code verification: run the response's program against TACO-style tests in the sandbox.

The program is the last ``python``-tagged fenced code block of the response (else the last untagged
block; blocks tagged with another language are not Python; a response that is itself valid Python is
taken whole). Tests are standard-input tests (``fn_name``
None: each input is the whole stdin, each output the expected stdout) or call-based tests (a
function ``fn_name``, or a ``class Solution`` method of that name, called with the input's arguments).
Only an explicit pass of every test counts as correct; a timeout, crash, memory error or wrong
output is ``wrong`` with its reason; no program is ``no_answer``; a sandbox failure is ``error``.

Output comparison is strict but TACO-tolerant: exact after trimming line ends, then
whitespace-normalised lines, then tokens, then tokens as floats within ``float_tol``. Return values
compare with ``==`` (tuples as lists; TACO's ``[value]`` wrapping accepted), floats within
``float_tol``.

Special-judge problems (several valid outputs; ``sample.meta["special_judge"]`` true, e.g. the
TACO problems flagged in ``../shared/benchmarks/taco_output_spj.jsonl``) cannot be judged by
comparison: by default they get verdict ``error`` with that reason (so curation drops them rather than
calling a valid answer wrong); ``special_judge="compare"`` compares anyway.

    python -c "from mmredstar.verify.code import run_tests; from mmredstar.schema import CodeTests; \\
print(run_tests('print(int(input())*2)', CodeTests(['3'], ['6'])))"

>>> extract_code("Here:\\n```python\\nprint(1)\\n```\\nDone.")
'print(1)\\n'
>>> outputs_match("1.0000001\\n", "1.0")
True
>>> outputs_match("1 2\\n3", "1 2 3\\n")
True
>>> outputs_match("YES", "NO")
False
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field

from ..schema import CodeTests, Sample, Verdict
from .exec.sandbox import Limits, SandboxError, run_program
from .extract import cut_end, strip_think

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PY = {"python", "py", "python3", "py3", ""}


def extract_code(text: str | None, *, language: str = "python", think: str = "after") -> str | None:
    """The program in a response: the last fenced block (``python``-tagged preferred), or None.

    An unclosed final fence counts only if what it holds parses (a truncated program does not)."""
    if not text:
        return None
    body = cut_end(strip_think(text, think))
    blocks = []
    for m in _FENCE.finditer(body):
        closed = body[m.end() - 3:m.end()] == "```"
        blocks.append((m.group(1).lower(), m.group(2), closed))
    if blocks:
        tags = {language} if language != "python" else _PY - {""}
        pool = [b for b in blocks if b[0] in tags] or [b for b in blocks if b[0] == ""]
        if not pool:
            return None
        lang, code, closed = pool[-1]
        if not closed and language == "python" and not _parses(code):
            return None
        return code if code.strip() else None
    if language == "python" and body.strip() and _parses(body) and re.search(r"\b(def|print|import|input)\b", body):
        return body
    return None


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except (SyntaxError, ValueError):
        return False


def _as_text(x) -> str:
    if isinstance(x, list):
        return "\n".join(str(v) for v in x)
    return str(x)


def _float(tok: str):
    try:
        v = float(tok)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def outputs_match(got: str, expected, float_tol: float = 1e-6) -> bool:
    """TACO-style comparison of a program's stdout with the expected output (see module doc)."""
    exp = _as_text(expected)
    if got == exp:
        return True
    g_lines = [ln.rstrip() for ln in got.strip().splitlines()]
    e_lines = [ln.rstrip() for ln in exp.strip().splitlines()]
    if g_lines == e_lines:
        return True
    if [ln.strip() for ln in g_lines if ln.strip()] == [ln.strip() for ln in e_lines if ln.strip()]:
        return True
    gt, et = got.split(), exp.split()
    if gt == et:
        return True
    if len(gt) != len(et) or not gt:
        return False
    for a, b in zip(gt, et, strict=False):
        if a == b:
            continue
        fa, fb = _float(a), _float(b)
        if fa is None or fb is None or not math.isclose(fa, fb, rel_tol=float_tol, abs_tol=float_tol):
            return False
    return True


def values_match(got, expected, float_tol: float = 1e-6) -> bool:
    """Call-based comparison: ``==`` with tuples as lists, floats within tolerance, ``[v]`` wrapping."""
    if _eq(got, expected, float_tol):
        return True
    return isinstance(expected, list) and len(expected) == 1 and _eq(got, expected[0], float_tol)


def _eq(a, b, tol) -> bool:
    if isinstance(a, tuple):
        a = list(a)
    if isinstance(b, tuple):
        b = list(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_eq(x, y, tol) for x, y in zip(a, b, strict=False))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_eq(a[k], b[k], tol) for k in a)
    return a == b


@dataclass
class TestReport:
    """What running a program against tests gave: ``passed`` of ``total``; ``failure`` describes the
    first failing test (None when all passed); ``results`` the per-test records."""

    passed: int
    total: int
    failure: str | None = None
    time: float = 0.0
    results: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None and self.passed == self.total


def _parse_call_input(x):
    if isinstance(x, str):
        try:
            return json.loads(x)
        except ValueError:
            return x
    return x


def run_tests(code: str, tests: CodeTests, *, limits: Limits | None = None, stop_on_fail: bool = True,
              float_tol: float = 1e-6, isolation: str | None = None) -> TestReport:
    """Run ``code`` on every test in one sandbox and compare (expected outputs stay in this process)."""
    call = tests.fn_name is not None
    inputs = [_parse_call_input(x) for x in tests.inputs] if call else [_as_text(x) for x in tests.inputs]
    rep = TestReport(0, len(tests.inputs))
    gen = run_program(code, inputs, mode="call" if call else "stdio", fn_name=tests.fn_name, limits=limits,
                      isolation=isolation)
    try:
        for rec in gen:
            i = rec["i"]
            rep.time += rec.get("time", 0.0)
            rep.results.append({k: rec.get(k) for k in ("i", "status", "time")})
            why = None
            if rec["status"] == "ok":
                if call:
                    exp = _parse_call_input(tests.outputs[i])
                    if not values_match(rec.get("result"), exp, float_tol):
                        why = f"test {i + 1}/{rep.total}: returned {str(rec.get('result'))[:80]!r}, expected {str(exp)[:80]!r}"
                elif not outputs_match(rec["out"], tests.outputs[i], float_tol):
                    why = f"test {i + 1}/{rep.total}: wrong output {rec['out'][:80]!r}, expected {_as_text(tests.outputs[i])[:80]!r}"
            elif rec["status"] == "timeout":
                why = f"test {i + 1}/{rep.total}: time limit exceeded"
            elif rec["status"] == "memory":
                why = f"test {i + 1}/{rep.total}: memory limit exceeded"
            else:
                err = (rec.get("err") or "").strip().splitlines()
                why = f"test {i + 1}/{rep.total}: {rec['status']}" + (f": {err[-1][:160]}" if err else "")
            if why is None:
                rep.passed += 1
            elif rep.failure is None:
                rep.failure = why
                if stop_on_fail:
                    break
    finally:
        gen.close()
    if rep.failure is None and rep.passed < rep.total:
        rep.failure = f"only {rep.passed}/{rep.total} tests ran"
    return rep


MAX_OUTPUT_BYTES = 8 * 1024 * 1024
"""The sandbox captures at most this much of a program's output (``_runner.MAX_OUT``)."""


def _oversized_test(tests: CodeTests, lim: Limits) -> str | None:
    """Why a test cannot be judged here (an input larger than the sandbox's /tmp holds, an expected output
    larger than the output it captures), or None."""
    cap_in = lim.tmp_mb * 1024 * 1024 // 2
    for i, (x, y) in enumerate(zip(tests.inputs, tests.outputs, strict=False)):
        nx = len(_as_text(x).encode("utf-8", "surrogatepass")) if tests.fn_name is None else len(json.dumps(x, default=str))
        ny = len(_as_text(y).encode("utf-8", "surrogatepass")) if not isinstance(y, (list, dict)) else len(json.dumps(y))
        if nx > cap_in:
            return (f"test {i + 1}/{len(tests)}: its input is {nx / 2 ** 20:.1f} MiB, more than the sandbox can take "
                    f"({cap_in / 2 ** 20:.0f} MiB, half of tmp_mb); it cannot be judged here")
        if ny > MAX_OUTPUT_BYTES:
            return (f"test {i + 1}/{len(tests)}: its expected output is {ny / 2 ** 20:.1f} MiB, more than the sandbox "
                    f"captures ({MAX_OUTPUT_BYTES / 2 ** 20:.0f} MiB); it cannot be judged here")
    return None


def verify_code(sample: Sample, text: str, finish_reason: str | None = None, **options) -> Verdict:
    """Verify a response to a code sample by running its program against ``sample.tests``."""
    if sample.tests is None or not len(sample.tests):
        return Verdict("error", -1.0, None, "code sample without tests")
    if sample.meta.get("special_judge") and options.get("special_judge", "skip") != "compare":
        return Verdict("error", -1.0, None, "special-judge problem: several outputs are valid, comparison "
                                            "cannot judge it (special_judge='compare' to compare anyway)")
    code = extract_code(text, think=options.get("think", "after"))
    if code is None:
        why = "no complete program found (no closed ``` code block)"
        return Verdict("no_answer", -1.0, None, why + ("; the response was truncated" if finish_reason == "length" else ""))
    if not _parses(code):
        return Verdict("wrong", 0.0, code, "the program does not parse (SyntaxError)")
    lim = Limits(**{k: options[k] for k in ("per_test", "total", "memory_mb", "fsize_mb", "nofile", "nproc", "tmp_mb")
                    if k in options})
    too_big = _oversized_test(sample.tests, lim)
    if too_big:
        return Verdict("error", -1.0, code, too_big)
    try:
        rep = run_tests(code, sample.tests, limits=lim, float_tol=float(options.get("float_tol", 1e-6)),
                        isolation=options.get("isolation"))
    except SandboxError as e:
        return Verdict("error", -1.0, code, f"sandbox failure: {e}"[:500])
    if rep.ok:
        return Verdict("correct", 1.0, code, f"passed {rep.passed}/{rep.total} tests")
    return Verdict("wrong", 0.0, code, rep.failure)


def special_judge_ids(path: str) -> set[int]:
    """TACO problem indices flagged as special-judge in a ``taco_output_spj.jsonl``-style file."""
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                if d.get("special_judge"):
                    out.add(int(d["idx"]))
    return out
