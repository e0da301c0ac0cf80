"""Time limits that work in the main thread, in other threads and in worker processes.

``time_limit(seconds)`` interrupts Python code with SIGALRM when called from a process's main
thread (a soft limit: C code is not interrupted). ``call_with_limit(fn, *args, seconds=...)`` is the
hard limit: it runs ``fn`` in a helper process (one per thread, reused) and kills and replaces the
helper when the limit passes, so a comparison stuck inside C code (a huge integer power in sympy)
cannot hang the caller, whether it runs in the main thread, another thread or a worker process.

    python -c "from mmredstar.verify.timeout import call_with_limit; print(call_with_limit(sum, [1, 2], seconds=1))"
"""

from __future__ import annotations

import atexit
import contextlib
import select
import signal
import threading
import time


class LimitExceeded(TimeoutError):
    """A call ran past its time limit."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise ``LimitExceeded`` inside the block after ``seconds`` (main thread only; elsewhere no-op).

    Nested limits keep the tighter deadline and restore the outer one afterwards.
    """
    if not seconds or seconds <= 0 or not _in_main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def _raise(signum, frame):
        raise LimitExceeded(f"time limit of {seconds:g}s exceeded")

    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left < seconds:       # an outer limit fires first: leave it alone
        yield
        return
    old = signal.signal(signal.SIGALRM, _raise)
    t0 = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if outer_left:
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - t0), 0.001))


# ----------------------------------------------------------------------------------------- hard limit
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
    if not hard and _in_main_thread():
        with time_limit(seconds):
            return fn(*args, **kwargs)
    from .worker import Worker

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
