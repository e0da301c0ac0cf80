"""CPU threads for torch: a number, or ``auto`` = the cores idle right now.

Tiny models on a CPU run thousands of small kernels per step; each ends at a barrier of torch's OpenMP
threads. When another process holds one of the cores, a thread waiting at every barrier for a descheduled
partner makes a 2-thread run several times slower than a 1-thread one (measured on a 2-core box: SFT of
``tiny_vlm`` about 10x slower while other jobs ran). ``auto`` samples ``/proc/stat`` for a moment and uses
as many threads as there are idle cores (at least one), so the same config is fast on an idle machine and
does not thrash on a busy one.

    >>> resolve_threads(2), resolve_threads(None)
    (2, None)
    >>> 1 <= resolve_threads("auto") <= available_cpus()
    True
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger(__name__)

AUTO = "auto"


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times() -> tuple[float, float] | None:
    """(idle, total) jiffies of all CPUs from ``/proc/stat`` (``None`` where there is no such file)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)     # idle + iowait
    return idle, sum(fields[:8])                                     # guest time is already in user


def idle_cpus(sample_s: float = 0.5) -> float | None:
    """How many CPUs were idle over the next ``sample_s`` seconds (``None`` where it cannot be measured)."""
    a = _cpu_times()
    time.sleep(sample_s)
    b = _cpu_times()
    if a is None or b is None or b[1] <= a[1]:
        return None
    ncpu = os.cpu_count() or 1
    return ncpu * (b[0] - a[0]) / (b[1] - a[1])


def resolve_threads(value: int | str | None, *, what: str = "threads") -> int | None:
    """``None`` -> ``None`` (leave torch as it is), a positive int -> itself, ``auto`` -> the idle cores now
    (rounded, at least 1, at most the CPUs this process may use); anything else is a ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == AUTO:
        idle = idle_cpus()
        n = available_cpus() if idle is None else max(1, min(available_cpus(), int(idle + 0.35)))
        log.info(f"{what}: auto -> {n} (idle CPUs now: {'unknown' if idle is None else f'{idle:.1f}'} of "
                 f"{available_cpus()})")
        return n
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what}: {value!r} is not a positive number of threads or 'auto'")
    return value


def set_threads(value: int | str | None, *, what: str = "threads") -> int | None:
    """``torch.set_num_threads`` with ``resolve_threads(value)`` (nothing for ``None``); returns the number set."""
    n = resolve_threads(value, what=what)
    if n is not None:
        import torch

        torch.set_num_threads(n)
    return n
