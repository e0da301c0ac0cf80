"""Benchmark suites: speed and memory figures, recorded per machine in ``bench/results/``.

    python -m bench SUITE [--quick]          # or: mmredstar bench SUITE [--quick]
    python -m bench --list

``SUITES`` maps a suite name to ``"module:function"``; the function takes ``quick: bool`` and returns
``{"figures": {...}, "table": [[label, value, unit], ...], "notes": [...]}``. The framework adds the
machine (CPU model and core count, GPU name), package versions, date and command, writes
``bench/results/<suite>-<machine>.json`` and prints the table. Add a suite by adding one line here and a
module beside this file. Benchmarks are not tests: targets are checked here, never in timed tests.
"""

from __future__ import annotations

SUITES: dict[str, str] = {
    "verify": "bench.verify:run",
    "cpu": "bench.cpu:run",
    "gpu": "bench.gpu:run",
}
