"""Soft time limits by SIGALRM (main thread only) and the ``LimitExceeded`` error.

``time_limit(seconds)`` interrupts Python code with SIGALRM when called from a process's main
thread (C code is not interrupted). The hard limit (a killable helper process) is
``mmredstar.verify.exec.timeout.call_with_limit``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time


class LimitExceeded(TimeoutError):
    """A call ran past its time limit."""


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise ``LimitExceeded`` inside the block after ``seconds`` (main thread only; elsewhere no-op).

    Nested limits keep the tighter deadline and restore the outer one afterwards.
    """
    if not seconds or seconds <= 0 or not in_main_thread() or not hasattr(signal, "setitimer"):
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
