"""Fixtures for the verification tests: checking that sandboxed code left nothing behind.

    .venv/bin/python -m pytest -q tests/verify
"""

import os
import subprocess
import time

import pytest

from mmredstar.schema import CodeTests
from mmredstar.verify.code import run_tests
from mmredstar.verify.exec import sandbox as sb


def sandbox_processes() -> list[int]:
    """Live processes owned by a sandbox uid this test process used (what an escape would look like;
    other jobs on the machine run sandboxes of their own in the same uid range)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) in sb.ISSUED_UIDS:        # ours, not other jobs' sandboxes
                            out.append(int(pid))
                        break
        except (OSError, ValueError):
            continue
    return out


def assert_contained():
    """No sandbox process left, this process can still fork, and the next verification works."""
    for _ in range(50):
        if not sandbox_processes():
            break
        time.sleep(0.1)
    assert sandbox_processes() == [], "processes of the sandbox survived it"
    assert subprocess.run(["true"]).returncode == 0          # this process can still fork and run things
    rep = run_tests("print(int(input()) + 1)", CodeTests(["41"], ["42"]))
    assert rep.ok, rep.failure                               # and the next verification works



@pytest.fixture
def contained():
    """``contained()`` asserts that sandboxed code left nothing behind (see ``assert_contained``)."""
    return assert_contained
