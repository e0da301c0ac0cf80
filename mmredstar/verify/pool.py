"""A worker-process pool for verification with a hard time limit per item, order preserved.

Each worker runs ``verify_response`` in its main thread (so the SIGALRM limits of the math fallback
work there too); the parent watches every task's deadline and kills and replaces a worker that
overruns it (a comparison stuck in C code, a sandbox that will not die), giving that item verdict
``error``. A worker that dies likewise costs only its item. Results come back in input order; input
is read lazily and at most ``window`` items are held.

    python -c "from mmredstar.verify.pool import VerifyPool; from mmredstar.schema import Sample; \\
p = VerifyPool(2, {}); print(list(p.imap([(Sample.text('?', '2'), '\\\\boxed{2}', None)]))); p.close()"
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import time
from collections.abc import Iterable, Iterator
from multiprocessing.connection import wait

from ..schema import Sample, Verdict


def _worker(conn, options):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from . import verify_response

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        idx, sample, text, finish = msg
        v = verify_response(sample, text, finish, **options)
        try:
            conn.send((idx, (v.verdict, v.reward, v.extracted, v.reason)))
        except (OSError, ValueError):
            return


def hard_limit(sample: Sample, options: dict) -> float:
    """Seconds after which a verification is abandoned (its worker killed)."""
    if options.get("hard_timeout"):
        return float(options["hard_timeout"])
    if sample.answer_type == "code":
        return float(options.get("total", 30.0)) + 20.0
    return float(options.get("timeout", 5.0)) * 4 + 10.0


class _W:
    def __init__(self, ctx, options):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, options), daemon=True)
        self.proc.start()
        child.close()
        self.task: int | None = None
        self.deadline = 0.0

    def kill(self):
        with contextlib.suppress(Exception):
            self.proc.kill()
            self.proc.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()


class VerifyPool:
    """``imap`` verdicts for (sample, text, finish_reason) triples over ``workers`` processes."""

    def __init__(self, workers: int, options: dict | None = None, window: int | None = None):
        self.options = dict(options or {})
        methods = mp.get_all_start_methods()
        self.ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        self.n = max(1, int(workers))
        self.window = window or self.n * 16
        self.workers = [_W(self.ctx, self.options) for _ in range(self.n)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for w in self.workers:
            with contextlib.suppress(Exception):
                w.conn.send(None)
        for w in self.workers:
            w.proc.join(2)
            if w.proc.is_alive():
                w.kill()
        self.workers = []

    def imap(self, pairs: Iterable[tuple[Sample, str, str | None]]) -> Iterator[Verdict]:
        it = iter(pairs)
        results: dict[int, Verdict] = {}
        items: dict[int, tuple] = {}
        next_in = next_out = 0
        exhausted = False
        while True:
            # hand work to idle workers
            for k, w in enumerate(self.workers):
                if w.task is not None or exhausted or next_in - next_out >= self.window:
                    continue
                try:
                    sample, text, finish = next(it)
                except StopIteration:
                    exhausted = True
                    break
                items[next_in] = (sample, text, finish)
                try:
                    w.conn.send((next_in, sample, text, finish))
                except Exception as e:  # noqa: BLE001 - unpicklable input or dead worker
                    results[next_in] = Verdict("error", -1.0, None, f"could not send to a worker: {e}"[:300])
                    self._replace(k)
                else:
                    w.task = next_in
                    w.deadline = time.monotonic() + hard_limit(sample, self.options)
                next_in += 1
            while next_out in results:
                items.pop(next_out, None)
                yield results.pop(next_out)
                next_out += 1
            busy = [w for w in self.workers if w.task is not None]
            if not busy:
                if exhausted and next_out >= next_in:
                    return
                continue
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = wait([w.conn for w in busy], timeout=timeout)
            now = time.monotonic()
            for k, w in enumerate(self.workers):
                if w.task is None:
                    continue
                if w.conn in ready:
                    try:
                        idx, (verdict, reward, extracted, reason) = w.conn.recv()
                        results[idx] = Verdict(verdict, reward, extracted, reason)
                        w.task = None
                    except (EOFError, OSError):
                        results[w.task] = Verdict("error", -1.0, None, "verification worker died")
                        self._replace(k)
                elif now >= w.deadline:
                    limit = hard_limit(items[w.task][0], self.options)
                    results[w.task] = Verdict("error", -1.0, None,
                                              f"verification exceeded the hard limit of {limit:g}s; worker killed")
                    self._replace(k)

    def _replace(self, k: int) -> None:
        self.workers[k].kill()
        self.workers[k] = _W(self.ctx, self.options)
