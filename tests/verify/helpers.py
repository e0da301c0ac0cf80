"""Helpers imported by name from verification worker code during the tests (a logging verifier).

    (imported by tests/verify/test_cli.py as ``verify.helpers:logged_verify`` through a sample's ``meta.verifier``)
"""

from mmredstar.verify.math import verify_math


def logged_verify(sample, text, finish_reason=None, **options):
    """verify_math that appends the sample id to the file named in ``sample.meta["log"]``."""
    with open(sample.meta["log"], "a") as f:
        f.write(f"{sample.id}\n")
    return verify_math(sample, text, finish_reason, **options)
