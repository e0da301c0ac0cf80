"""The benchmark runner: environment capture, result files, the printed table.

    python -m bench verify            # writes bench/results/verify-<machine>.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import importlib.metadata as md
import json
import os
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

from bench import SUITES

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("mmredstar", "torch", "transformers", "trl", "datasets", "deepspeed", "accelerate", "math-verify",
            "latex2sympy2_extended", "sympy", "numpy", "vllm")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """GPU names from nvidia-smi (no torch import); empty without a GPU."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                           text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [ln.strip() for ln in r.stdout.splitlines() if ln.strip()] if r.returncode == 0 else []


def machine_name() -> str:
    """A short name for this machine kind: ``MMREDSTAR_BENCH_MACHINE``, else the GPU or the CPU cores."""
    if os.environ.get("MMREDSTAR_BENCH_MACHINE"):
        return os.environ["MMREDSTAR_BENCH_MACHINE"]
    gpus = gpu_names()
    if gpus:
        slug = re.sub(r"[^a-z0-9]+", "-", gpus[0].lower()).strip("-")
        return f"{slug}-x{len(gpus)}"
    return f"cpu-{os.cpu_count()}core"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out


def environment() -> dict:
    return {"machine": machine_name(), "cpu": cpu_name(), "cpu_count": os.cpu_count(), "gpus": gpu_names(),
            "platform": platform.platform(), "versions": versions()}


def run_suite(name: str, quick: bool = False, out_dir: Path | None = None) -> tuple[dict, Path]:
    """Run suite ``name``, write its result file, return (record, path)."""
    if name not in SUITES:
        raise SystemExit(f"unknown suite {name!r}: choose one of {', '.join(sorted(SUITES))}")
    mod, attr = SUITES[name].split(":")
    fn = getattr(importlib.import_module(mod), attr)
    t0 = time.time()
    res = fn(quick=quick)
    rec = {
        "suite": name,
        "quick": quick,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "-m", "bench", name] + (["--quick"] if quick else [])),
        "seconds": round(time.time() - t0, 1),
        "environment": environment(),
        **res,
    }
    out_dir = out_dir or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}{'-quick' if quick else ''}-{rec['environment']['machine']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rec, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return rec, path


def format_table(rows) -> str:
    rows = [[str(c) for c in r] + [""] * (3 - len(r)) for r in rows]
    w = [max(len(r[i]) for r in rows) for i in range(3)] if rows else [0, 0, 0]
    return "\n".join(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]}" for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description="Run a benchmark suite and record it.")
    ap.add_argument("suite", nargs="?", help="suite name (see --list)")
    ap.add_argument("--quick", action="store_true", help="a short run (smoke-test sized)")
    ap.add_argument("--list", action="store_true", help="list the suites")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    a = ap.parse_args(argv)
    if a.list or not a.suite:
        print("\n".join(f"{k:<12} {v}" for k, v in SUITES.items()))
        return 0
    rec, path = run_suite(a.suite, a.quick, Path(a.out) if a.out else None)
    env = rec["environment"]
    print(f"{a.suite} on {env['machine']} ({env['cpu']}{'; ' + ', '.join(env['gpus']) if env['gpus'] else ''})")
    print(format_table(rec.get("table", [])))
    for n in rec.get("notes", []):
        print("note:", n)
    print(f"-> {path}")
    return 0
