"""A worker-process pool for verification with a hard time limit per item, order preserved.

Each worker (``worker.Worker``: a fresh ``python -m mmredstar.verify.exec`` process) runs
``verify_response``; the parent watches every task's deadline and kills and replaces a worker that
overruns it (a comparison stuck in C code, a sandbox that will not die), giving that item verdict
``error``. A worker that dies likewise costs only its item. Results come back in input order; input
is read lazily and at most ``window`` items are held.

    python -c "from mmredstar.verify.exec.pool import VerifyPool; from mmredstar.schema import Sample; \\
p = VerifyPool(2); print(list(p.imap([(Sample.text('?', '2'), '\\\\boxed{2}', None)]))); p.close()"
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from multiprocessing.connection import wait

from ...schema import Sample, Verdict
from .worker import Worker

VERIFY = "mmredstar.verify:verify_response"


def hard_limit(sample: Sample, options: dict) -> float:
    """Seconds after which a verification is abandoned (its worker killed)."""
    if options.get("hard_timeout"):
        return float(options["hard_timeout"])
    if sample.answer_type == "code":
        return float(options.get("total", 30.0)) + 20.0
    return float(options.get("timeout", 5.0)) * 4 + 10.0


class VerifyPool:
    """``imap`` verdicts for (sample, text, finish_reason) triples over ``workers`` processes."""

    def __init__(self, workers: int, options: dict | None = None, window: int | None = None):
        self.options = dict(options or {})
        self.n = max(1, int(workers))
        self.window = window or self.n * 16
        self.workers = [Worker() for _ in range(self.n)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for w in self.workers:
            w.close()
        self.workers = []

    def _replace(self, k: int) -> None:
        self.workers[k].kill()
        self.workers[k] = Worker()

    def imap(self, pairs: Iterable[tuple[Sample, str, str | None]]) -> Iterator[Verdict]:
        it = iter(pairs)
        results: dict[int, Verdict] = {}
        limits: dict[int, float] = {}
        next_in = next_out = 0
        exhausted = False
        opts = {k: v for k, v in self.options.items() if k != "hard_timeout"}
        while True:
            for k, w in enumerate(self.workers):          # hand work to idle workers
                if w.task is not None or exhausted or next_in - next_out >= self.window:
                    continue
                try:
                    sample, text, finish = next(it)
                except StopIteration:
                    exhausted = True
                    break
                limits[next_in] = hard_limit(sample, self.options)
                try:
                    w.send(VERIFY, (sample, text, finish), opts)
                except Exception as e:  # noqa: BLE001 - unpicklable input or a dead worker
                    results[next_in] = Verdict("error", -1.0, None, f"could not send to a worker: {e}"[:300])
                    self._replace(k)
                else:
                    w.task = next_in
                    w.deadline = time.monotonic() + limits[next_in]
                next_in += 1
            while next_out in results:
                limits.pop(next_out, None)
                yield results.pop(next_out)
                next_out += 1
            busy = [w for w in self.workers if w.task is not None]
            if not busy:
                if exhausted and next_out >= next_in:
                    return
                continue
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = wait(busy, timeout=timeout)
            now = time.monotonic()
            for k, w in enumerate(self.workers):
                if w.task is None:
                    continue
                if w in ready:
                    try:
                        v = w.recv()
                        results[w.task] = v if isinstance(v, Verdict) else \
                            Verdict("error", -1.0, None, f"worker returned {type(v).__name__}")
                        w.task = None
                    except EOFError:
                        results[w.task] = Verdict("error", -1.0, None, "verification worker died")
                        self._replace(k)
                    except Exception as e:  # noqa: BLE001 - verify_response itself failed in the worker
                        results[w.task] = Verdict("error", -1.0, None, f"worker error: {type(e).__name__}: {e}"[:300])
                        w.task = None
                elif now >= w.deadline:
                    results[w.task] = Verdict("error", -1.0, None, f"verification exceeded the hard limit of "
                                                                   f"{limits[w.task]:g}s; worker killed")
                    self._replace(k)
