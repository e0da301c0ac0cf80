"""Process-running code of the verifiers: the code sandbox, worker processes and hard time limits.

- ``sandbox``: ``run_program(code, inputs, ...)`` runs untrusted code isolated (``_runner.py`` is
  the in-sandbox launcher); ``describe()`` says which protections are in force.
- ``worker``: a reusable ``python -m mmredstar.verify.exec`` subprocess the parent may kill.
- ``pool``: ``VerifyPool``, verification over worker processes with a hard limit per item.
- ``alarm``: ``time_limit`` (SIGALRM, main thread) and ``LimitExceeded``.
- ``timeout``: ``call_with_limit``, a hard limit through a helper worker (any thread or process).

Nothing here imports the verifiers: they sit above it.
"""
