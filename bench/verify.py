"""Benchmark suite ``verify``: math verifier throughput against math-verify, code sandbox speed.

    python -m bench verify [--quick]

Math: the 320 conformance cases of ``../shared/conformance/verifier_cases.jsonl`` (``pred`` as the
response, ``gold`` as the answer), pinned to ONE core, in the same run: our ``verify_response`` (the
default ``strict`` mode) and
math-verify's own ``parse`` + ``verify`` (default settings, strings wrapped in ``$...$``). Every
timed pass starts with all parsing caches of both cleared (ours, including the sympy helper process's,
and math-verify's lru caches), so the ratio is for unseen answers; the median of 5 passes is reported
(1 with --quick). Agreement with the cases' expected verdicts is reported for both, per source, and
ours also end to end through the CLI's function (JSON in and out). Code: candidates with 10 stdin/stdout tests each through
``run_tests`` (one sandbox per candidate), sequentially on one core and in a pool on all cores.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MMREDSTAR_SHARED", REPO.parent / "shared"))
CASES = SHARED / "conformance" / "verifier_cases.jsonl"


def _source(s: str) -> str:
    return s.split("::")[0].split("/tests/")[0].split("/modeling/")[0]


def _wrap(s: str) -> str:
    return s if re.search(r"\$|\\\(|\\\[|\\boxed", s) else f"${s}$"


def _clear_ours():
    from mmredstar.verify.exec.timeout import call_with_limit
    from mmredstar.verify.math import clear_caches

    clear_caches()
    call_with_limit(clear_caches, seconds=30)      # the sympy helper process keeps math-verify caches too


def _clear_mv():
    import math_verify.grader as g
    import math_verify.parser as p

    for mod in (p, g):
        for v in vars(mod).values():
            if hasattr(v, "cache_clear"):
                v.cache_clear()


def _ours_pass(rows):
    from mmredstar.schema import Sample
    from mmredstar.verify import verify_response

    out = []
    for r in rows:
        s = Sample.text("", r["gold"], "math")
        out.append(verify_response(s, r["pred"]).verdict == "correct")     # the default: strict mode
    return out


def _mv_pass(rows):
    from math_verify import parse, verify

    out = []
    for r in rows:
        try:
            g = parse(_wrap(r["gold"]))
            p = parse(_wrap(r["pred"]))
            out.append(bool(verify(g, p)))
        except Exception:  # noqa: BLE001 - count a crash as "not equal", as a caller would
            out.append(False)
    return out


def _timed(fn, rows, clear, reps):
    times, res = [], None
    for _ in range(reps):
        clear()
        t0 = time.perf_counter()
        res = fn(rows)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, res


def _agreement(rows, res):
    per = defaultdict(lambda: [0, 0])
    for r, v in zip(rows, res, strict=False):
        k = _source(r["source"])
        per[k][1] += 1
        per[k][0] += int(v == r["expected"])
    total = sum(a for a, _ in per.values())
    return total, {k: f"{a}/{n}" for k, (a, n) in sorted(per.items())}


def math_bench(quick: bool) -> tuple[dict, list]:
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    rows = [json.loads(line) for line in CASES.open()]
    reps = 1 if quick else 5
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {allowed[0]})
    try:
        _ours_pass(rows)                # imports, regex compilation, the sympy helper start: outside the timing
        _mv_pass(rows)
        t_mv, mv_times, mv_res = _timed(_mv_pass, rows, _clear_mv, reps)
        t_ours, our_times, our_res = _timed(_ours_pass, rows, _clear_ours, reps)
        # end to end through the CLI's function (JSON in, JSON out)
        import tempfile

        from mmredstar.verify.cli import run_verify

        with tempfile.TemporaryDirectory() as d:
            inp = os.path.join(d, "cases.jsonl")
            with open(inp, "w") as f:
                for r in rows:
                    f.write(json.dumps({"response": r["pred"], "answer": r["gold"], "answer_type": "math",
                                        "source": r["source"]}) + "\n")
            _clear_ours()
            t0 = time.perf_counter()
            run_verify(inp, os.path.join(d, "out.jsonl"), progress=False)
            t_cli = time.perf_counter() - t0
    finally:
        os.sched_setaffinity(0, set(allowed))
    n = len(rows)
    ours_ok, ours_per = _agreement(rows, our_res)
    mv_ok, mv_per = _agreement(rows, mv_res)
    figures = {
        "cases": n,
        "ours_seconds": round(t_ours, 4), "ours_pass_seconds": [round(x, 4) for x in our_times],
        "mathverify_seconds": round(t_mv, 4), "mathverify_pass_seconds": [round(x, 4) for x in mv_times],
        "ours_cases_per_s": round(n / t_ours, 1), "mathverify_cases_per_s": round(n / t_mv, 1),
        "speedup": round(t_mv / t_ours, 2),
        "ours_cli_end_to_end_cases_per_s": round(n / t_cli, 1),
        "ours_agreement": f"{ours_ok}/{n}", "ours_agreement_pct": round(100 * ours_ok / n, 2),
        "mathverify_agreement": f"{mv_ok}/{n}", "mathverify_agreement_pct": round(100 * mv_ok / n, 2),
        "ours_agreement_per_source": ours_per, "mathverify_agreement_per_source": mv_per,
        "cores": 1, "passes": reps, "math_mode": "strict",
    }
    table = [
        ["math: ours (verify_response, strict mode), 1 core", f"{n / t_ours:.0f}", "cases/s"],
        ["math: math-verify parse+verify, 1 core", f"{n / t_mv:.0f}", "cases/s"],
        ["math: speed-up (target >= 4x)", f"{t_mv / t_ours:.1f}", "x"],
        ["math: ours via mmredstar verify (JSON I/O)", f"{n / t_cli:.0f}", "cases/s"],
        ["math: agreement ours, strict (target >= 312/320)", f"{ours_ok}/{n} ({100 * ours_ok / n:.1f}%)", ""],
        ["math: agreement math-verify", f"{mv_ok}/{n} ({100 * mv_ok / n:.1f}%)", ""],
    ]
    return figures, table


_PROG = "import sys\nn = int(sys.stdin.readline())\nprint(sum(int(x) for x in sys.stdin.readline().split()) * n)\n"


def code_bench(quick: bool) -> tuple[dict, list]:
    from mmredstar.schema import CodeTests, Sample
    from mmredstar.verify import verify_many
    from mmredstar.verify.code import run_tests
    from mmredstar.verify.exec.sandbox import describe

    n_cand = 8 if quick else 40
    n_tests = 10
    ins = [f"{k}\n{' '.join(str(j) for j in range(k + 3))}\n" for k in range(n_tests)]
    outs = [str(sum(range(k + 3)) * k) for k in range(n_tests)]
    tests = CodeTests(ins, outs)
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {allowed[0]})
    try:
        run_tests(_PROG, tests)                       # warm-up (first sandbox start)
        t0 = time.perf_counter()
        ok = sum(run_tests(_PROG, tests).ok for _ in range(n_cand))
        t_seq = time.perf_counter() - t0
    finally:
        os.sched_setaffinity(0, set(allowed))
    sample = Sample.text("sum", None, "code", tests=tests)
    text = "```python\n" + _PROG + "```"
    workers = max(2, len(allowed))
    t0 = time.perf_counter()
    verdicts = list(verify_many([(sample, text, None)] * n_cand, workers=workers))
    t_pool = time.perf_counter() - t0
    ok_pool = sum(v.verdict == "correct" for v in verdicts)
    figures = {
        "candidates": n_cand, "tests_per_candidate": n_tests,
        "sequential_1core_candidates_per_s": round(n_cand / t_seq, 2),
        "sequential_1core_tests_per_s": round(n_cand * n_tests / t_seq, 1),
        "pool_workers": workers, "pool_candidates_per_s": round(n_cand / t_pool, 2),
        "pool_tests_per_s": round(n_cand * n_tests / t_pool, 1),
        "all_passed": ok == n_cand and ok_pool == n_cand,
        "sandbox": describe(),
    }
    table = [
        ["code: sandbox, 1 core, sequential", f"{n_cand * n_tests / t_seq:.0f}", f"tests/s ({n_cand / t_seq:.1f} candidates/s)"],
        [f"code: sandbox, pool of {workers} (pool start included)", f"{n_cand * n_tests / t_pool:.0f}",
         f"tests/s ({n_cand / t_pool:.1f} candidates/s)"],
    ]
    return figures, table


def run(quick: bool = False) -> dict:
    if not CASES.is_file():
        raise SystemExit(f"{CASES} not found: the verify suite needs ../shared/conformance (or MMREDSTAR_SHARED)")
    mf, mt = math_bench(quick)
    cf, ct = code_bench(quick)
    notes = []
    if mf["speedup"] < 4:
        notes.append(f"math speed-up {mf['speedup']}x is below the 4x target")
    if mf["ours_agreement_pct"] < 97.5:      # strict: today's 315 minus the 3 approximations it rejects on purpose
        notes.append(f"math agreement {mf['ours_agreement_pct']}% is below the 97.5% (312/320) target")
    notes.append(f"code sandbox: {cf['sandbox']['summary']}")
    return {"figures": {"math": mf, "code": cf}, "table": mt + ct, "notes": notes}
