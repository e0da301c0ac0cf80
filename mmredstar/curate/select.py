"""Selection, one prompt at a time: SFT positives, DPO pairs, RL prompts, and what is rejected.

Every function takes one judged sample (its responses carry ``verdict`` from the verifier, or were
dropped by a rule filter: ``meta.stage == "filter"``) and needs nothing else, so selection streams:
a prompt is selected as soon as its responses are judged.

- ``select_sft``: verified responses; dedupe by normalised text; optional ``shortest_k``; ``max_per_prompt``.
  Each kept response becomes one SFT record (the sample with exactly that response), id
  ``<prompt id>-<response index>``, ``meta.prompt_id`` = the prompt's id.
- ``pair_dpo``: (chosen = verified, rejected = failed) pairs of the same prompt and images, by a
  seeded rule (``PAIRINGS``); responses repeating another's normalised text are used once.
- ``rl_prompt``: the prompt (no responses) with ``meta.pass_rate`` when the pass rate is mixed.
- ``dropped``: every response not in the SFT set, with its reason (``filter: ...``,
  ``verify: wrong ...``, ``select: duplicate`` ...), for ``rejected.jsonl``.
"""

from __future__ import annotations

import dataclasses
import random

from ..generate import sample_seed
from ..schema import Pair, Response, Sample
from .config import PAIRINGS, DPOSelect, RLSelect, SFTSelect


def normalize_text(text: str) -> str:
    """Case and whitespace folded (the SFT dedupe key).

    >>> normalize_text("  The  answer\\n is B ") == normalize_text("the answer is b")
    True
    """
    return " ".join((text or "").lower().split())


def is_filtered(r: Response) -> bool:
    return (r.meta or {}).get("stage") == "filter"


def is_correct(r: Response) -> bool:
    return r.verdict == "correct" and not is_filtered(r)


def pass_rate(sample: Sample) -> float | None:
    """Verified responses / all responses (filtered ones count as failures); ``None`` without responses."""
    if not sample.responses:
        return None
    return sum(is_correct(r) for r in sample.responses) / len(sample.responses)


def response_record(sample: Sample, index: int, r: Response) -> Sample:
    """The sample with exactly one response (SFT and rejected records)."""
    return dataclasses.replace(sample, responses=[r], id=f"{sample.id}-{index}",
                               meta={**sample.meta, "prompt_id": sample.id})


def select_sft(sample: Sample, cfg: SFTSelect) -> tuple[list[int], dict[int, str]]:
    """(indices of responses kept for SFT, {index: reason} of verified responses not kept)."""
    kept = [i for i, r in enumerate(sample.responses) if is_correct(r)]
    drop: dict[int, str] = {}
    if cfg.dedupe:
        seen: set[str] = set()
        uniq = []
        for i in kept:
            k = normalize_text(sample.responses[i].text)
            if k in seen:
                drop[i] = "select: duplicate of another verified response"
            else:
                seen.add(k)
                uniq.append(i)
        kept = uniq
    if cfg.shortest_k is not None:
        by_len = sorted(kept, key=lambda i: (len(sample.responses[i].text), i))
        for i in by_len[cfg.shortest_k:]:
            drop[i] = f"select: not among the {cfg.shortest_k} shortest"
        kept = sorted(by_len[:cfg.shortest_k])
    if cfg.max_per_prompt is not None:
        for i in kept[cfg.max_per_prompt:]:
            drop[i] = f"select: over max_per_prompt={cfg.max_per_prompt}"
        kept = kept[:cfg.max_per_prompt]
    return kept, drop


def _unique(rs: list[Response], idx: list[int]) -> list[int]:
    seen: set[str] = set()
    out = []
    for i in idx:
        k = normalize_text(rs[i].text)
        if k not in seen:
            seen.add(k)
            out.append(i)
    return out


def pair_dpo(sample: Sample, cfg: DPOSelect) -> list[Pair]:
    """Preference pairs of one prompt by ``cfg.pairing`` (seeded by ``cfg.seed`` and the sample id)."""
    rs = sample.responses
    chosen = [i for i, r in enumerate(rs) if is_correct(r)]
    rejected = [i for i, r in enumerate(rs)
                if (not is_filtered(r) and r.verdict in cfg.rejected_verdicts) or (cfg.include_filtered and is_filtered(r))]
    chosen, rejected = _unique(rs, chosen), _unique(rs, rejected)   # identical texts make identical pairs
    if not chosen or not rejected or cfg.max_pairs_per_prompt < 1:
        return []
    rng = random.Random(sample_seed(cfg.seed, sample.id))
    length = lambda i: len(rs[i].text)  # noqa: E731
    if cfg.pairing == "all":
        combos = [(c, r) for c in chosen for r in rejected]
    else:
        C, R = list(chosen), list(rejected)
        rng.shuffle(C)
        rng.shuffle(R)
        if cfg.pairing in ("shortest_chosen", "shortest_longest"):
            C.sort(key=length)
        if cfg.pairing in ("longest_rejected", "shortest_longest"):
            R.sort(key=length, reverse=True)
        if cfg.pairing not in PAIRINGS:
            raise ValueError(f"unknown pairing {cfg.pairing!r}; use one of {list(PAIRINGS)}")
        combos = list(zip(C, R, strict=False))
    base = dataclasses.replace(sample, responses=[])
    pairs = []
    for c, r in combos[:cfg.max_pairs_per_prompt]:
        why = "filtered" if is_filtered(rs[r]) else rs[r].verdict
        pairs.append(Pair.from_sample(base, rs[c], rs[r], prompt_id=sample.id, pairing=cfg.pairing,
                                      chosen_index=c, rejected_index=r, rejected_why=why))
    return pairs


def rl_prompt(sample: Sample, cfg: RLSelect) -> Sample | None:
    """The prompt for RL (no responses; ``meta.pass_rate``, ``n_responses``, ``n_correct``) when its pass rate
    is strictly between the bounds and it had at least ``min_responses`` responses."""
    n = len(sample.responses)
    if n < max(1, cfg.min_responses):
        return None
    ok = sum(is_correct(r) for r in sample.responses)
    p = ok / n
    if not (cfg.min_pass_rate < p < cfg.max_pass_rate):
        return None
    return dataclasses.replace(sample, responses=[],
                               meta={**sample.meta, "pass_rate": p, "n_responses": n, "n_correct": ok})


def dropped(sample: Sample, sft_kept: list[int], sft_drop: dict[int, str]) -> list[tuple[int, Response]]:
    """Every response not kept for SFT, with ``reason`` set (``filter: ...`` / ``verify: ...`` / ``select: ...``)."""
    kept = set(sft_kept)
    out = []
    for i, r in enumerate(sample.responses):
        if i in kept:
            continue
        if i in sft_drop:
            reason = sft_drop[i]
        elif is_filtered(r):
            reason = r.reason or "filter"
        else:
            reason = f"verify: {r.verdict}" + (f" ({r.reason})" if r.reason else "")
        rr = dataclasses.replace(r, reason=reason, meta=dict(r.meta))
        out.append((i, rr))
    return out
