"""Time limits that work in the main thread, in other threads and in worker processes.

``time_limit(seconds)`` interrupts Python code with SIGALRM when called from a process's main
thread (a soft limit: C code is not interrupted). ``call_with_limit(fn, *args, seconds=...)`` is the
hard limit: it runs ``fn`` in a helper process (one per thread, reused) and kills and replaces the
helper when the limit passes, so a comparison stuck inside C code (a huge integer power in sympy)
cannot hang the caller, whether it runs in the main thread, another thread or a worker process.

    python -c "from mmredstar.verify.exec.timeout import call_with_limit; print(call_with_limit(sum, [1, 2], seconds=1))"
"""

from __future__ import annotations

import atexit
import select
import threading

from .alarm import LimitExceeded, in_main_thread, time_limit
from .worker import Worker

__all__ = ["LimitExceeded", "time_limit", "call_with_limit"]

_local = threading.local()
_helpers: list = []          # every helper started, so that none outlives this process


@atexit.register
def _close_helpers() -> None:
    for h in _helpers:
        h.kill()


def call_with_limit(fn, *args, seconds: float, hard: bool = True, **kwargs):
    """``fn(*args, **kwargs)`` with a time limit; raises ``LimitExceeded``.

    ``hard=True`` (default) runs ``fn`` in this thread's helper process (``worker.Worker``) and kills it
    at the limit: this stops even code stuck in C (``10**10**10``), from any thread or process.
    ``hard=False`` in the main thread uses SIGALRM in-process (cheaper; C code is not interrupted).
    ``fn`` must be a module-level function and its arguments and result picklable.
    """
    if not hard and in_main_thread():
        with time_limit(seconds):
            return fn(*args, **kwargs)
    path = f"{fn.__module__}:{fn.__qualname__}"
    helper = getattr(_local, "helper", None)
    if helper is None or not helper.alive:
        helper = _local.helper = Worker()
        _helpers[:] = [h for h in _helpers if h.alive] + [helper]
    helper.send(path, args, kwargs, seconds)
    r, _, _ = select.select([helper.fileno()], [], [], seconds + 1.0)
    if not r:
        helper.kill()
        _local.helper = None
        raise LimitExceeded(f"time limit of {seconds:g}s exceeded (helper process killed)")
    try:
        return helper.recv()
    except EOFError:
        _local.helper = None
        raise LimitExceeded("helper process died") from None
    except LimitExceeded:
        # interrupted mid-computation (its soft limit fired inside sympy / math-verify, whose caches may
        # now hold half-built entries): never reuse that interpreter
        helper.kill()
        _local.helper = None
        raise
