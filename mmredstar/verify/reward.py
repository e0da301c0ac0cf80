"""The rule reward r = 1 (verified), 0 (wrong), -1 (no valid answer format; verifier error).

One function serves curation (``rule_reward``), RL training through TRL (``trl_reward_fn``: prompts
and completions in, floats out) and evaluation (which reads ``Verdict.reward`` directly).

    python -c "from mmredstar.verify.reward import trl_reward_fn; \
print(trl_reward_fn()(prompts=['2+2?'], completions=['\\boxed{4}'], answer=['4'], answer_type=['math']))"

    trainer = GRPOTrainer(..., reward_funcs=[trl_reward_fn()], train_dataset=ds)  # ds has answer, answer_type

TRL passes every dataset column to reward functions as keyword arguments (lists, one value per
completion). A ``sample`` column (the whole record, JSON or dict) is used when present; else
``answer`` and ``answer_type``, and ``choices``, ``tests`` (a dict or JSON string), ``meta`` and
``finish_reason`` when present. Completions are strings or chat message lists
(``[{"role": "assistant", "content": ...}]``); the last assistant message's text is scored.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..schema import CodeTests, Message, Sample
from . import verify_many, verify_response


def rule_reward(sample: Sample, text: str, finish_reason: str | None = None, **options) -> float:
    """The rule reward of one response (1 / 0 / -1).

    >>> rule_reward(Sample.text("2+2?", "4"), "The answer is $\\\\boxed{4}$.")
    1.0
    >>> rule_reward(Sample.text("2+2?", "4"), "I do not know.")
    -1.0
    """
    return verify_response(sample, text, finish_reason, **options).reward


def completion_text(c) -> str:
    """The text of a TRL completion: a string, or the last assistant message of a message list."""
    if isinstance(c, str):
        return c
    if isinstance(c, dict):
        return _content_text(c.get("content"))
    if isinstance(c, (list, tuple)):
        for m in reversed(c):
            if isinstance(m, dict) and m.get("role", "assistant") == "assistant":
                return _content_text(m.get("content"))
        return "".join(_content_text(m.get("content")) if isinstance(m, dict) else str(m) for m in c)
    return str(c)


def _content_text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return str(content)


def _prompt_messages(p) -> list[Message]:
    text = completion_text(p) if not isinstance(p, str) else p
    return [Message.make("user", text or "")]


def _tests(t) -> CodeTests | None:
    if t is None:
        return None
    if isinstance(t, str):
        t = json.loads(t) if t.strip() else None
        if t is None:
            return None
    if isinstance(t, CodeTests):
        return t
    return CodeTests(list(t["inputs"]), list(t["outputs"]), t.get("fn_name"), t.get("starter_code"))


def sample_from_columns(prompt, i: int, columns: dict) -> Sample:
    """The Sample a TRL row stands for: its ``sample`` column (the record as JSON or a dict) when there is
    one, else built from the ``answer``, ``answer_type``, ``choices``, ``tests``, ``meta`` columns."""
    def col(name, default=None):
        v = columns.get(name)
        return v[i] if isinstance(v, (list, tuple)) and len(v) > i else default

    rec = col("sample")
    if rec:
        d = json.loads(rec) if isinstance(rec, str) else rec
        if isinstance(d, dict) and "answer_type" in d:
            return Sample.from_dict(d)

    meta = col("meta") or {}
    if isinstance(meta, str):
        meta = json.loads(meta) if meta.strip() else {}
    answer = col("answer")
    return Sample(prompt=_prompt_messages(prompt), answer_type=col("answer_type") or "math",
                  answer=None if answer is None else str(answer), choices=col("choices"),
                  tests=_tests(col("tests")), meta=dict(meta), id=str(col("id") or "trl"))


def trl_reward_fn(workers: int = 0, name: str = "rule_reward", **options) -> Callable[..., list[float]]:
    """A TRL reward function ``f(prompts, completions, **columns) -> list[float]`` using the rule reward.

    ``workers`` > 1 verifies a batch in a process pool (code-heavy batches); ``options`` go to
    ``verify_response`` (e.g. ``think="after"``, ``timeout=5``).
    """

    def reward(prompts=None, completions=None, **columns) -> list[float]:
        completions = list(completions or [])
        prompts = list(prompts or [None] * len(completions))
        finish = columns.get("finish_reason")
        triples = []
        for i, (p, c) in enumerate(zip(prompts, completions, strict=False)):
            s = sample_from_columns(p, i, columns)
            fr = finish[i] if isinstance(finish, (list, tuple)) and len(finish) > i else None
            triples.append((s, completion_text(c), fr))
        return [v.reward for v in verify_many(triples, workers=workers, **options)]

    reward.__name__ = name
    return reward
