"""A reusable worker subprocess that runs module-level functions; the parent may kill it any time.

Started as ``python -m mmredstar.verify.exec`` (its ``__main__`` calls ``main`` here) (a fresh interpreter: safe from any thread, and it
never re-runs the caller's ``__main__`` the way multiprocessing's spawn/forkserver do). Requests and
replies are length-prefixed pickles over its stdin/stdout; anything the called code prints goes to
stderr. Used for hard time limits (``exec.timeout.call_with_limit``) and the verification pool.

    python -c "from mmredstar.verify.exec.worker import Worker; w = Worker(); print(w.call('builtins:sum', ([1, 2],))); w.kill()"
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import subprocess
import sys

from ...registry import import_attr
from .alarm import time_limit

_HDR = struct.Struct("<Q")


def _read_exact(f, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            raise EOFError("worker pipe closed")
        buf += chunk
    return buf


def read_frame(f):
    (n,) = _HDR.unpack(_read_exact(f, _HDR.size))
    return pickle.loads(_read_exact(f, n))


def write_frame(f, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(_HDR.pack(len(data)) + data)
    f.flush()


def resolve(path: str):
    return import_attr(path, "worker function")


class Worker:
    """One worker subprocess. ``send`` a request, wait on ``fileno()``, ``recv`` the reply; or ``call``."""

    def __init__(self):
        env = dict(os.environ)
        self.proc = subprocess.Popen([sys.executable, "-m", "mmredstar.verify.exec"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, close_fds=True)
        self.task = None
        self.deadline = 0.0

    def fileno(self) -> int:
        return self.proc.stdout.fileno()  # type: ignore[union-attr]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, path: str, args=(), kwargs=None, seconds: float | None = None) -> None:
        write_frame(self.proc.stdin, (path, tuple(args), dict(kwargs or {}), seconds))

    def recv(self):
        """The reply to the last request: the value, or the exception re-raised."""
        status, val = read_frame(self.proc.stdout)
        if status == "err":
            raise val
        return val

    def call(self, path: str, args=(), kwargs=None, timeout: float | None = None):
        """Run ``path(*args, **kwargs)`` in the worker; ``TimeoutError`` (and a dead worker) after ``timeout``."""
        import select

        self.send(path, args, kwargs, None)
        if timeout is not None:
            r, _, _ = select.select([self.fileno()], [], [], timeout)
            if not r:
                self.kill()
                raise TimeoutError(f"worker call exceeded {timeout:g}s")
        return self.recv()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                f.close()  # type: ignore[union-attr]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(5)
        self.kill()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                                  # stray prints must not corrupt the reply stream
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    while True:
        try:
            path, args, kwargs, seconds = read_frame(inp)
        except EOFError:
            return
        try:
            with time_limit(seconds):
                reply = ("ok", resolve(path)(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the caller
            reply = ("err", e if isinstance(e, Exception) else RuntimeError(repr(e)))
        try:
            write_frame(out, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            write_frame(out, ("err", RuntimeError(f"unpicklable reply: {e}")))
        except BrokenPipeError:
            return


if __name__ == "__main__":
    main()
