"""Run untrusted code in a sandboxed subprocess: namespaces, an allow-list of what it sees, limits.

One sandbox per candidate program. Isolation, strongest first (``isolation_mode()``; ``describe()``
says which protections are in force, and every weaker fallback is logged as a warning):

- ``namespaces`` (as root): ``unshare`` gives it new network (no interfaces up: no network), pid,
  mount, ipc and uts namespaces; each test's child drops to a fresh unprivileged uid/gid (root ignores
  RLIMIT_NPROC, so untrusted code never runs as root).
- ``userns`` (an ordinary user, e.g. on a cluster): the same namespaces inside a new user namespace
  (``unshare --user --map-root-user``); the candidate runs as the calling user with every capability
  dropped (bounding set, ambient, effective, permitted; securebits locked) and no_new_privs, so it
  cannot undo the mounts, and RLIMIT_NPROC counts only the sandbox's own processes.
- ``rlimits`` (no usable namespaces): resource limits, a private working directory and (as root) the
  dropped uid only: the candidate has the network and reads what the caller can read. Loud warning.

Inside the namespaces the runner (``_runner.py``) remounts ``/`` read-only and shows the candidate an
**allow-list**: the system folders (/usr, /bin, /lib*, /sbin, /etc, /dev, a fresh /proc), the
interpreter and its libraries (bound back read-only), its own scratch directory and private tmpfs on
/tmp, /var/tmp and /dev/shm; every other top-level folder (/home, /root, the project, /scratch,
/lustre, /fsx, /gpfs, /opt, /mnt, /srv, /var, /run, /sys, ...) is an empty tmpfs (``hidden_dirs()``).
Each test runs in a forked child under RLIMIT_AS / CPU / FSIZE / NOFILE / NPROC with a per-test
wall-clock limit; the environment is scrubbed. On timeout the parent kills the sandbox's process
group; the runner is pid 1 of its pid namespace, so every process the candidate started dies with it.
The sandbox also dies with the thread that started it (``setpriv --pdeathsig KILL``), so a verification
worker killed for overrunning its hard limit takes its sandbox along.

Memory and process caps across ALL of a candidate's processes (RLIMIT_AS bounds each one alone): one
cgroup per sandbox (``memory_mb`` + 256 MiB, ``nproc`` + 16 processes) where a writable cgroup is
available: cgroup v2 (``memory.max``, ``pids.max``; under ``$MMREDSTAR_CGROUP`` or this process's own
delegated cgroup), else v1 ``memory`` + ``pids`` under ``/sys/fs/cgroup/<controller>/mmredstar`` (as root,
or delegated to the user by ``chown``), else none (the per-process rlimits still apply; logged).

``MMREDSTAR_SANDBOX=namespaces|userns|rlimits`` forces a mode.

    python -c "from mmredstar.verify.exec.sandbox import run_program; print(list(run_program('print(input())', ['hi'])))"
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
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
USERNS = ["unshare", "--user", "--map-root-user", "--net", "--pid", "--mount", "--ipc", "--uts", "--fork",
          "--kill-child", "--mount-proc"]
MODES = ("namespaces", "userns", "rlimits")
VISIBLE = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/dev", "/proc", "/tmp")
"""The top-level folders a candidate sees (read-only but /tmp, which is private); all others are hidden."""
log = logging.getLogger(__name__)
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/tmp",
             "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}
UID_RANGE = (2_000_000, 3_000_000)
ISSUED_UIDS: set[int] = set()
"""The sandbox uids this process has used (tests check that none of them has a process left)."""


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


def _works(cmd: list[str]) -> tuple[bool, str]:
    try:
        r = subprocess.run(cmd + ["true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    return r.returncode == 0, r.stderr.decode(errors="replace").strip()[:200]


def _warn(msg: str) -> None:
    log.warning(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


@functools.lru_cache(maxsize=1)
def isolation_mode() -> str:
    """``"namespaces"`` (root), ``"userns"`` (an ordinary user with user namespaces), else ``"rlimits"``
    (loudly: no network isolation, the candidate reads what this user can read)."""
    forced = os.environ.get("MMREDSTAR_SANDBOX")
    if forced in MODES:
        return forced
    if shutil.which("unshare") is None:
        why = "the 'unshare' program is missing"
    else:
        whys = []
        if os.getuid() == 0:
            ok, why = _works(UNSHARE)
            if ok:
                return "namespaces"
            whys.append(f"namespaces: {why}")
        ok, why = _works(USERNS)
        if ok:
            if os.getuid() == 0:
                _warn(f"code sandbox: root namespaces unavailable ({whys[0]}); using a user namespace")
            return "userns"
        whys.append(f"user namespaces: {why}")
        why = "; ".join(whys)
    _warn(f"code sandbox: namespaces unavailable ({why}); falling back to resource limits only: candidate code "
          "has the network and can read whatever this user can read (home, tokens, shared scratch)")
    return "rlimits"


def hidden_dirs() -> list[str]:
    """Top-level folders the candidate does not see (namespace modes): every folder of ``/`` but the
    allow-list ``VISIBLE``; the interpreter's own directories are bound back inside, read-only."""
    out = []
    for name in os.listdir("/"):
        d = "/" + name
        if d in VISIBLE or os.path.islink(d) or not os.path.isdir(d):
            continue
        out.append(d)
    return sorted(out)


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
    if iso not in MODES:
        raise SandboxError(f"isolation {iso!r} is not one of {', '.join(MODES)}")
    uid, gid = _fresh_ids() if iso != "userns" else (0, 0)       # userns: the caller's own uid, no capabilities
    if uid:
        ISSUED_UIDS.add(uid)
    args = ["--uid", str(uid), "--gid", str(gid), "--per-test", str(lim.per_test), "--total", str(lim.total),
            "--memory-mb", str(lim.memory_mb), "--fsize-mb", str(lim.fsize_mb), "--nofile", str(lim.nofile),
            "--nproc", str(lim.nproc), "--tmp-mb", str(lim.tmp_mb)]
    for d in hidden_dirs():
        args += ["--hide", d]
    cgroups = make_cgroups(uid if iso != "userns" else random.SystemRandom().randrange(*UID_RANGE), lim)
    for cg in cgroups:
        args += ["--cgroup", cg]
    workdir = None
    # the sandbox dies with the thread that started it, even when that process is SIGKILLed
    prefix = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
    if iso == "namespaces":
        cmd = prefix + UNSHARE + [sys.executable, "-I", RUNNER] + args
    elif iso == "userns":
        cmd = prefix + USERNS + [sys.executable, "-I", RUNNER, "--userns"] + args
    else:
        workdir = tempfile.mkdtemp(prefix="mmredstar-sandbox-")
        if os.getuid() == 0:
            os.chown(workdir, uid, gid)
        else:
            _warn_once("code sandbox: not running as root and without namespaces, so untrusted code runs as "
                       "this user, with its network and its files")
            args += ["--nproc-base", str(tasks_of(os.getuid()))]
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
        if iso == "rlimits" and os.getuid() == 0:
            kill_uid(uid)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        remove_cgroups(cgroups)


CGROUP_ROOTS = {"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"}
"""cgroup v1 controller mounts; the sandboxes' cgroups live in ``<root>/mmredstar/`` (root, or a user it
was delegated to with ``chown``)."""


def _v2_mount() -> str | None:
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[2] == "cgroup2":
                    return parts[1]
    except OSError:
        pass
    return None


def _v2_parent() -> str | None:
    """A cgroup v2 directory this process may create sandbox cgroups in, with memory and pids enabled
    for its children: ``$MMREDSTAR_CGROUP``, else this process's own cgroup (delegated subtrees: systemd
    user sessions, Slurm / Kubernetes jobs). None when there is none."""
    mnt = _v2_mount()
    if mnt is None:
        return None
    cands = [os.environ["MMREDSTAR_CGROUP"]] if os.environ.get("MMREDSTAR_CGROUP") else []
    try:
        with open("/proc/self/cgroup") as f:
            own = next((ln.split("::", 1)[1].strip() for ln in f if ln.startswith("0::")), None)
        if own is not None:
            cands.append(os.path.join(mnt, own.lstrip("/")))
    except OSError:
        pass
    for d in cands:
        try:
            with open(os.path.join(d, "cgroup.controllers")) as f:
                avail = set(f.read().split())
            if not {"memory", "pids"} <= avail or not os.access(d, os.W_OK):
                continue
            with open(os.path.join(d, "cgroup.subtree_control")) as f:
                on = set(f.read().split())
            if not {"memory", "pids"} <= on:
                with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                    f.write("+memory +pids")          # refused where d itself holds processes: next one
            return d
        except OSError:
            continue
    return None


def _v1_parent(kind: str) -> str | None:
    d = os.path.join(CGROUP_ROOTS[kind], "mmredstar")
    if os.path.isdir(d):
        return d if os.access(d, os.W_OK) else None
    return d if os.access(CGROUP_ROOTS[kind], os.W_OK) else None


def cgroup_support() -> str | None:
    """``"v2"`` / ``"v1"`` when per-sandbox memory + pids cgroups can be made here, else None."""
    if _v2_parent():
        return "v2"
    if all(_v1_parent(k) for k in CGROUP_ROOTS):
        return "v1"
    return None


def make_cgroups(uid: int, lim: Limits) -> list[str]:
    """Per-sandbox cgroups bounding the memory of ALL its processes together (RLIMIT_AS bounds each one
    alone) and their number: cgroup v2 (one directory, ``memory.max`` + ``pids.max``), else v1
    ``memory`` + ``pids`` controllers, else none (the rlimits still apply; logged once). Returns the
    directories the runner joins."""
    total = (lim.memory_mb + 256) * 1024 * 1024
    npids = lim.nproc + 16
    parent = _v2_parent()
    if parent:
        d = os.path.join(parent, f"mmredstar-sandbox-{uid}")
        try:
            os.makedirs(d, exist_ok=True)
            for f, v in (("memory.max", total), ("pids.max", npids)):
                with open(os.path.join(d, f), "w") as fh:
                    fh.write(str(v))
            with contextlib.suppress(OSError), open(os.path.join(d, "memory.swap.max"), "w") as fh:
                fh.write("0")                       # no swapping around the limit
            return [d]
        except OSError as e:
            with contextlib.suppress(OSError):
                os.rmdir(d)
            log.debug("cgroup v2 under %s unusable: %s", parent, e)
    out = []
    for kind, files in (("memory", {"memory.limit_in_bytes": total}), ("pids", {"pids.max": npids})):
        base = _v1_parent(kind)
        if base is None:
            continue
        d = os.path.join(base, f"sandbox-{uid}")
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
    if len(out) < 2:
        _warn_once("code sandbox: no writable cgroup (v2 with memory+pids, or v1 "
                   f"{' and '.join(r + '/mmredstar' for r in CGROUP_ROOTS.values())}): memory and process counts are capped per "
                   "process only (RLIMIT_AS, RLIMIT_NPROC), not across all of a candidate's processes")
    return out


_WARNED: set = set()


def _warn_once(msg: str) -> None:
    if msg not in _WARNED:
        _WARNED.add(msg)
        _warn(msg)


def tasks_of(uid: int) -> int:
    """Tasks (processes and threads) owned by ``uid``: what RLIMIT_NPROC counts."""
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                st = {k: v for k, _, v in (ln.partition(":") for ln in f)}
            if int(st["Uid"].split()[0]) == uid:
                n += int(st.get("Threads", "1").strip() or 1)
        except (OSError, ValueError, KeyError):
            continue
    return n


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


def describe(isolation: str | None = None) -> dict:
    """Which protections are in force on this machine (the verify report and benchmarks print it)."""
    iso = isolation or isolation_mode()
    cg = cgroup_support()
    root = os.getuid() == 0
    d = {"isolation": iso, "root": root, "limits": asdict(Limits()),
         "network": "none (own network namespace)" if iso != "rlimits" else "the host's (no isolation)",
         "filesystem": ("allow-list: system folders and the interpreter read-only, own scratch dir and /tmp"
                        if iso != "rlimits" else "everything this user can read (no isolation)"),
         "identity": {"namespaces": "a fresh unprivileged uid", "userns": "this user, without capabilities",
                      "rlimits": "a fresh unprivileged uid" if root else "this user"}[iso],
         "cgroups": cg,
         "memory_cap": "all of a candidate's processes together (cgroup)" if cg else "per process (RLIMIT_AS)",
         "process_cap": "all of a candidate's processes (cgroup pids + RLIMIT_NPROC)" if cg else "RLIMIT_NPROC",
         "processes_outliving": "killed with the pid namespace" if iso != "rlimits" else
                                ("killed by uid" if root else "killed by process group only")}
    d["summary"] = (f"{iso}: network {d['network'].split(' ')[0]}, files {d['filesystem'].split(':')[0]}, "
                    f"runs as {d['identity']}, memory cap {d['memory_cap'].split(' (')[0]}")
    return d
