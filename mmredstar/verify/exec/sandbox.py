"""Run untrusted code in a sandboxed subprocess: namespaces, a dropped uid, resource limits.

One sandbox per candidate program: ``unshare`` gives it new network (no interfaces up: no network),
pid, mount, ipc and uts namespaces; inside, the runner (``_runner.py``) remounts ``/`` read-only,
puts private tmpfs on /tmp, /var/tmp and /dev/shm, covers the folders where projects and data live
(``hidden_dirs()``: the caller's top-level folder such as /work, /home, /root, /mnt, ...) with empty
tmpfs and binds back only the interpreter's own directories, so candidate code cannot read the
project's files or test data; each test's child drops to a fresh unprivileged uid/gid (root
ignores RLIMIT_NPROC, so untrusted code never runs as root), sets no_new_privs, and runs each test in
a forked child under RLIMIT_AS / CPU / FSIZE / NOFILE / NPROC with a per-test wall-clock limit. The
environment is scrubbed. On timeout the parent kills the sandbox's process group; the runner is
pid 1 of its pid namespace, so every process the candidate started dies with it. The sandbox also
dies with the thread that started it (``setpriv --pdeathsig KILL``), so a verification worker killed
for overrunning its hard limit takes its sandbox along. Where cgroups are writable (v1 ``memory`` and
``pids``), one cgroup per sandbox also caps the memory of all its processes together (``memory_mb`` +
256 MiB) and their number, so a swarm of processes under the per-process RLIMIT_AS cannot exhaust
the machine.

Where namespaces are unavailable (no ``unshare``, or not permitted), ``isolation="rlimits"`` is used
with a warning: the dropped uid (when running as root), the resource limits and a private working
directory, but no network isolation and no private /tmp. ``MMREDSTAR_SANDBOX=rlimits`` forces it.

    python -c "from mmredstar.verify.exec.sandbox import run_program; print(list(run_program('print(input())', ['hi'])))"
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_runner.py")
UNSHARE = ["unshare", "--net", "--pid", "--mount", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc"]
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/tmp",
             "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}
UID_RANGE = (2_000_000, 3_000_000)


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the candidate): set-up error, runner crash."""


@dataclass
class Limits:
    """Resource limits for one candidate (seconds, MiB, counts)."""

    per_test: float = 4.0      # wall-clock seconds per test
    total: float = 30.0        # wall-clock seconds for all tests of one candidate
    memory_mb: int = 1024      # RLIMIT_AS per process
    fsize_mb: int = 16         # RLIMIT_FSIZE: largest file it may write
    nofile: int = 64           # RLIMIT_NOFILE
    nproc: int = 32            # RLIMIT_NPROC for the sandbox uid (processes + threads)
    tmp_mb: int = 64           # size of the private /tmp (namespaces only)


@functools.lru_cache(maxsize=1)
def isolation_mode() -> str:
    """``"namespaces"`` when ``unshare`` works here, else ``"rlimits"`` (with a warning)."""
    forced = os.environ.get("MMREDSTAR_SANDBOX")
    if forced in ("namespaces", "rlimits"):
        return forced
    if shutil.which("unshare") is None:
        why = "the 'unshare' program is missing"
    else:
        try:
            r = subprocess.run(UNSHARE + ["true"], capture_output=True, timeout=20)
            if r.returncode == 0:
                return "namespaces"
            why = r.stderr.decode(errors="replace").strip()[:200]
        except (OSError, subprocess.TimeoutExpired) as e:
            why = str(e)
    warnings.warn(f"code sandbox: namespaces unavailable ({why}); falling back to resource limits and a "
                  "dropped uid only: no network isolation, no private /tmp", RuntimeWarning, stacklevel=2)
    return "rlimits"


def hidden_dirs() -> list[str]:
    """Top-level folders the sandbox covers (namespaces only): where projects and data live (the
    caller's working directory, this package, home folders); the interpreter is bound back inside."""
    out = {"/home", "/root", "/mnt", "/media", "/srv", "/data", "/workspace"}
    for p in (os.getcwd(), os.path.dirname(os.path.abspath(__file__)), os.path.expanduser("~")):
        parts = os.path.realpath(p).strip("/").split("/")
        if parts and parts[0]:
            out.add("/" + parts[0])
    return sorted(d for d in out if os.path.isdir(d))


def _fresh_ids() -> tuple[int, int]:
    uid = random.SystemRandom().randrange(*UID_RANGE)
    return uid, uid


def run_program(code: str, inputs: list, *, mode: str = "stdio", fn_name: str | None = None,
                limits: Limits | None = None, isolation: str | None = None) -> Iterator[dict]:
    """Run ``code`` on each test input inside one sandbox; yield one result dict per test.

    Each result: ``{"i", "status": ok|timeout|error|memory|killed, "out", "err", "time"}`` (plus
    ``"result"`` in ``mode="call"``). Closing the generator early kills the sandbox. Raises
    ``SandboxError`` when the sandbox cannot start.
    """
    lim = limits or Limits()
    iso = isolation or isolation_mode()
    uid, gid = _fresh_ids()
    args = ["--uid", str(uid), "--gid", str(gid), "--per-test", str(lim.per_test), "--total", str(lim.total),
            "--memory-mb", str(lim.memory_mb), "--fsize-mb", str(lim.fsize_mb), "--nofile", str(lim.nofile),
            "--nproc", str(lim.nproc), "--tmp-mb", str(lim.tmp_mb)]
    for d in hidden_dirs():
        args += ["--hide", d]
    cgroups = make_cgroups(uid, lim)
    for cg in cgroups:
        args += ["--cgroup", cg]
    workdir = None
    # the sandbox dies with the thread that started it, even when that process is SIGKILLed
    prefix = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
    if iso == "namespaces":
        cmd = prefix + UNSHARE + [sys.executable, "-I", RUNNER] + args
    else:
        workdir = tempfile.mkdtemp(prefix="mmredstar-sandbox-")
        if os.getuid() == 0:
            os.chown(workdir, uid, gid)
        else:
            warnings.warn("code sandbox: not running as root, so untrusted code runs as this user",
                          RuntimeWarning, stacklevel=2)
        cmd = prefix + [sys.executable, "-I", RUNNER, "--no-ns", "--workdir", workdir] + args
    job = json.dumps({"code": code, "inputs": list(inputs), "mode": mode, "fn_name": fn_name})
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(CLEAN_ENV), start_new_session=True, close_fds=True,
                            cwd=workdir or "/")
    deadline = time.monotonic() + lim.total + 10.0
    sel = selectors.DefaultSelector()
    try:
        try:
            proc.stdin.write(job.encode())  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass
        sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        buf = b""
        ready = False
        seen = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                yield {"i": seen, "status": "timeout", "out": "", "err": "sandbox total time limit", "time": 0.0}
                return
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 1 << 20)  # type: ignore[union-attr]
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                rec = json.loads(line)
                if rec.get("ready"):
                    ready = True
                    continue
                seen = rec["i"] + 1
                yield rec
        proc.wait(timeout=5)
        if not ready:
            err = proc.stderr.read().decode("utf-8", "replace")[-2000:]  # type: ignore[union-attr]
            raise SandboxError(f"sandbox failed to start (exit {proc.returncode}): {err.strip()}")
    finally:
        sel.close()
        _kill(proc)
        if iso != "namespaces" and os.getuid() == 0:
            kill_uid(uid)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        remove_cgroups(cgroups)


CGROUP_ROOTS = {"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids", "v2": "/sys/fs/cgroup/unified"}


def make_cgroups(uid: int, lim: Limits) -> list[str]:
    """Per-sandbox cgroups bounding the memory of ALL its processes together (RLIMIT_AS bounds each one
    alone) and their number: v1 ``memory`` + ``pids`` controllers where writable, else none (the
    rlimits still apply). Returns the directories the runner joins."""
    out = []
    total = (lim.memory_mb + 256) * 1024 * 1024
    for kind, files in (("memory", {"memory.limit_in_bytes": total}), ("pids", {"pids.max": lim.nproc + 16})):
        root = CGROUP_ROOTS[kind]
        if not os.access(root, os.W_OK):
            continue
        d = os.path.join(root, "mmredstar", f"sandbox-{uid}")
        try:
            os.makedirs(d, exist_ok=True)
            for f, v in files.items():
                with open(os.path.join(d, f), "w") as fh:
                    fh.write(str(v))
            if kind == "memory":
                with contextlib.suppress(OSError):
                    with open(os.path.join(d, "memory.memsw.limit_in_bytes"), "w") as fh:
                        fh.write(str(total))      # no swapping around the limit where swap is accounted
        except OSError:
            with contextlib.suppress(OSError):
                os.rmdir(d)
            continue
        out.append(d)
    return out


def remove_cgroups(dirs: list[str]) -> None:
    for d in dirs:
        for _ in range(50):                # the namespace's processes take a moment to be reaped
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def kill_uid(uid: int) -> int:
    """SIGKILL every process owned by ``uid`` (the sandbox's own uid); returns how many were found."""
    n = 0
    for _ in range(3):
        found = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            if int(line.split()[1]) == uid:
                                found += 1
                                os.kill(int(pid), signal.SIGKILL)
                            break
            except (OSError, ValueError):
                continue
        n += found
        if not found:
            break
        time.sleep(0.01)
    return n


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)
    for f in (proc.stdout, proc.stderr, proc.stdin):
        with contextlib.suppress(Exception):
            f.close()  # type: ignore[union-attr]


def describe() -> dict:
    """What the sandbox does on this machine (for reports and benchmarks)."""
    return {"isolation": isolation_mode(), "limits": asdict(Limits()), "root": os.getuid() == 0,
            "cgroups": [k for k in ("memory", "pids") if os.access(CGROUP_ROOTS[k], os.W_OK)]}
