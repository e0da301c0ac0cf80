"""``mmredstar.cpu``: torch threads as a number or ``auto`` (the cores idle now)."""

from __future__ import annotations

import doctest
import subprocess
import sys
import time

import pytest

from mmredstar import cpu


def test_doctests():
    assert doctest.testmod(cpu).failed == 0


@pytest.mark.parametrize("bad", [0, -1, "lots", True, 1.5])
def test_bad_values_are_named(bad):
    with pytest.raises(ValueError, match="train.num_threads"):
        cpu.resolve_threads(bad, what="train.num_threads")


def test_auto_gives_a_busy_core_away():
    """With every core but one kept busy by other processes, ``auto`` picks one thread."""
    n = cpu.available_cpus()
    if n < 2:
        pytest.skip("one CPU: nothing to give away")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n - 1)]
    try:
        time.sleep(0.5)
        busy = cpu.resolve_threads("auto")
    finally:
        for p in hogs:
            p.kill()
            p.wait()
    idle = cpu.idle_cpus(0.5)
    assert 1 <= busy < n
    assert idle is not None and 0 <= idle <= n + 0.01
