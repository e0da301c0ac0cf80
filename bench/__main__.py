"""``python -m bench SUITE [--quick]``: run one benchmark suite and record its figures.

    python -m bench verify --quick
"""

from __future__ import annotations

import sys

from bench.framework import main

if __name__ == "__main__":
    sys.exit(main())
