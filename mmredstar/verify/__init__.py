"""Verification: THE scoring function for curation, RL rewards and evaluation.

``verify_response(sample, text, finish_reason=None, **options) -> Verdict`` picks the verifier from
``sample.answer_type`` through ``VERIFIERS`` (``options["verifier"]`` or ``sample.meta["verifier"]``
may name another one as ``"package.module:function"``). It never raises on model output: a
verifier that crashes yields verdict ``error`` (reward -1) with the reason. ``verify_many`` scores
many (sample, text, finish_reason) triples in order, with a worker pool and a hard time limit per
item. ``canonical_key`` makes equivalent answers group together for majority voting.

    python -c "from mmredstar.schema import Sample; from mmredstar.verify import verify_response; \\
print(verify_response(Sample.text('1+1?', '2'), 'So the answer is \\\\boxed{2}.'))"

Rewards: correct 1, wrong 0, no_answer -1, error -1 (``mmredstar.verify.reward``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from ..schema import Sample, Verdict
from .choice import extract_choice, verify_choice
from .code import extract_code, verify_code
from .math import MATH_DEFAULTS, extract_answer, math_key, verify_math, verify_numeric
from .text import normalize_text, verify_text

VERIFIERS = {
    "math": verify_math,
    "numeric": verify_numeric,
    "choice": verify_choice,
    "code": verify_code,
    "text": verify_text,
}
"""answer_type -> verifier ``f(sample, text, finish_reason=None, **options) -> Verdict``."""

REWARDS = {"correct": 1.0, "wrong": 0.0, "no_answer": -1.0, "error": -1.0}


def resolve(name_or_fn):
    """A verifier from a ``VERIFIERS`` key, a ``"package.module:function"`` path, or a callable."""
    if callable(name_or_fn):
        return name_or_fn
    from mmredstar.registry import lookup

    return lookup(name_or_fn, VERIFIERS, "verifier")


def verify_response(sample: Sample, text: str, finish_reason: str | None = None, **options) -> Verdict:
    """Score one response to one sample (see the module docstring). Never raises on bad model output."""
    options = dict(options)
    name = options.pop("verifier", None) or sample.meta.get("verifier") or sample.answer_type
    try:
        fn = resolve(name)
    except ValueError as e:
        return Verdict("error", -1.0, None, str(e))
    if not isinstance(text, str):
        return Verdict("error", -1.0, None, f"response text is {type(text).__name__}, not a string")
    try:
        v = fn(sample, text, finish_reason, **options)
    except Exception as e:  # noqa: BLE001 - the verifier must not take the caller down
        return Verdict("error", -1.0, None, f"verifier {name!r} failed: {type(e).__name__}: {e}"[:500])
    if not isinstance(v, Verdict):
        return Verdict("error", -1.0, None, f"verifier {name!r} returned {type(v).__name__}, not a Verdict")
    if v.verdict in REWARDS and v.reward != REWARDS[v.verdict]:
        v.reward = REWARDS[v.verdict]
    return v


def verify_many(pairs: Iterable[tuple[Sample, str, str | None]], workers: int = 0, **options) -> Iterator[Verdict]:
    """Verdicts for (sample, text, finish_reason) triples, in input order.

    ``workers`` 0 or 1 runs in this process; more runs a pool of worker processes, each task under
    a hard time limit (``hard_timeout`` seconds; default from the sample's verifier limits) after
    which the worker is killed and the item gets verdict ``error``. Input is consumed lazily.
    """
    if workers and workers > 1:
        from .exec.pool import VerifyPool

        with VerifyPool(workers, options) as pool:
            yield from pool.imap(pairs)
        return
    for sample, text, finish in pairs:
        yield verify_response(sample, text, finish, **options)


def verification_mode(options: dict | None = None) -> dict:
    """What a verdict file, eval result or curation report records of how math was judged: the math
    mode (``strict`` unless ``math_mode`` says otherwise; samples may override it in ``meta``) and the
    tolerance option, if any.

    >>> verification_mode({}), verification_mode({"math_mode": "lenient", "tolerance": 0.01})
    ({'math_mode': 'strict', 'rel_tol': 0.0001}, {'math_mode': 'lenient', 'rel_tol': 0.0001, 'tolerance': 0.01})
    """
    o = options or {}
    out = {"math_mode": o.get("math_mode") or MATH_DEFAULTS["math_mode"], "rel_tol": o.get("rel_tol", 1e-4)}
    if o.get("tolerance") is not None:
        out["tolerance"] = o["tolerance"]
    if out["math_mode"] == "math_verify" and o.get("math_verify"):
        out["math_verify"] = o["math_verify"]
    return out


def canonical_key(sample: Sample, extracted: str | None, **options) -> str:
    """A key under which equivalent extracted answers group together (maj@k voting).

    >>> s = Sample.text("?", "1/2")
    >>> canonical_key(s, "\\\\frac{1}{2}") == canonical_key(s, "0.5")
    True
    """
    if extracted is None:
        return ""
    at = sample.answer_type
    if at in ("math", "numeric"):
        return "math:" + math_key(extracted, **options)
    if at == "choice":
        return "choice:" + extracted.strip().upper()
    if at == "code":
        norm = "\n".join(ln.rstrip() for ln in extracted.strip().splitlines() if ln.strip())
        return "code:" + hashlib.sha256(norm.encode()).hexdigest()[:16]
    return "text:" + normalize_text(extracted)


__all__ = ["VERIFIERS", "REWARDS", "verify_response", "verify_many", "canonical_key", "resolve", "verification_mode",
           "extract_answer", "extract_choice", "extract_code", "Verdict"]
