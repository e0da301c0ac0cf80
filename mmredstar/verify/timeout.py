"""Time limits that work in the main thread, in other threads and in worker processes.

``time_limit(seconds)`` interrupts Python code with SIGALRM when called from a process's main
thread (worker processes of ``verify_many`` run their tasks there). ``call_with_limit(fn, *args,
seconds=...)`` is the hard limit: from the main thread it uses the alarm; from any other thread it runs
``fn`` in a helper process (one per thread, reused) and kills and replaces the helper when the limit
passes, so a comparison stuck inside C code (a huge integer power) cannot hang the caller.

    python -c "from mmredstar.verify.timeout import call_with_limit; print(call_with_limit(sum, [1, 2], seconds=1))"
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
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


# ----------------------------------------------------------------------------------------- helper process
def _resolve(path: str):
    mod, attr = path.split(":")
    return getattr(importlib.import_module(mod), attr)


def _helper_main(conn):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        path, args, kwargs, seconds = msg
        try:
            with time_limit(seconds):
                out = ("ok", _resolve(path)(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - report every failure to the caller
            out = ("err", e if isinstance(e, Exception) else RuntimeError(repr(e)))
        try:
            conn.send(out)
        except Exception as e:  # unpicklable result
            conn.send(("err", RuntimeError(f"unpicklable result: {e}")))


class _Helper:
    def __init__(self):
        ctx = mp.get_context("forkserver") if "forkserver" in mp.get_all_start_methods() else mp.get_context()
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_helper_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def call(self, path, args, kwargs, seconds):
        self.conn.send((path, args, kwargs, seconds))
        if not self.conn.poll(seconds + 1.0):
            self.kill()
            raise LimitExceeded(f"time limit of {seconds:g}s exceeded (helper process killed)")
        status, val = self.conn.recv()
        if status == "err":
            raise val
        return val

    def kill(self):
        with contextlib.suppress(Exception):
            self.proc.kill()
            self.proc.join(2)
        with contextlib.suppress(Exception):
            self.conn.close()


_local = threading.local()


def call_with_limit(fn, *args, seconds: float, **kwargs):
    """``fn(*args, **kwargs)`` with a hard time limit; raises ``LimitExceeded``.

    ``fn`` must be a module-level function (it may run in a helper process in non-main threads).
    """
    if _in_main_thread():
        with time_limit(seconds):
            return fn(*args, **kwargs)
    path = f"{fn.__module__}:{fn.__qualname__}"
    helper = getattr(_local, "helper", None)
    if helper is None or not helper.proc.is_alive():
        helper = _local.helper = _Helper()
    try:
        return helper.call(path, args, kwargs, seconds)
    except LimitExceeded:
        _local.helper = None
        raise
