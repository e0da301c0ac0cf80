"""``python -m mmredstar.verify.exec``: a worker process (``worker.main``), as ``worker.Worker`` starts it."""

from .worker import main

main()
