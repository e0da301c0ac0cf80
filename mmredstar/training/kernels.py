"""Packed-row attention without the block mask: causal attention run per packed sample ("varlen").

A packed SFT row holds several samples whose position ids restart at 0. With sdpa, transformers builds a
``[rows, 1, S, S]`` block-causal mask from the restarting positions and attends over the whole row: the
work is S^2 per head however short the samples are, sdpa cannot use its flash kernel (a mask is given),
and on a CPU the math path holds ``heads x S x S`` attention weights. ``sdpa_varlen`` runs causal sdpa on
each sample's own span instead (``is_causal=True``, no mask: the flash kernel on a GPU), which costs
``sum(s_i^2)`` and gives the same outputs (tested against the masked path). This is what flash-attention's
varlen kernels do from the same position ids; ``sdpa_varlen`` gets it from stock torch.

Anything that is not a packed row (no restart, a KV cache, a sliding window) goes to transformers' own
sdpa unchanged, so generation and evaluation are unaffected. ``train.varlen_attention: auto`` (default)
turns it on for packed SFT with sdpa attention and no sequence parallelism.

    from mmredstar.training.kernels import use_varlen_attention
    use_varlen_attention(model)             # the model's LM now attends per packed sample
"""

from __future__ import annotations

import weakref

import torch

NAME = "sdpa_varlen"
_CACHE: dict = {}


def packed_segments(position_ids: torch.Tensor) -> list[list[tuple[int, int]]] | None:
    """Per row, the [start, end) span of each packed sample; None unless ``position_ids`` is a packed layout
    (every row starts at 0 and each step is +1 or a restart at 0) with at least one restart.

    >>> packed_segments(torch.tensor([[0, 1, 2, 0, 1, 0]]))
    [[(0, 3), (3, 5), (5, 6)]]
    >>> packed_segments(torch.tensor([[0, 1, 2, 3]])) is None          # one sample: nothing to split
    True
    >>> packed_segments(torch.tensor([[1, 1, 0, 1, 2]])) is None       # left padding in generation
    True
    """
    # every layer of one forward gets the same position_ids object: read it once (a GPU sync), then reuse the
    # spans while that very tensor is alive and unmodified (a weak reference: a freed tensor's memory may be
    # reused by the next batch's position ids, so an address is no key)
    ref = _CACHE.get("ref")
    if ref is not None and ref() is position_ids and _CACHE.get("version") == position_ids._version:
        return _CACHE["segments"]
    p = position_ids.reshape(-1, position_ids.shape[-1]).detach().to("cpu")
    ok = bool((p[:, 0] == 0).all()) and p.shape[1] > 1
    if ok:
        step = (p[:, 1:] == p[:, :-1] + 1) | (p[:, 1:] == 0)
        ok = bool(step.all()) and bool((p[:, 1:] == 0).any())
    segs = None
    if ok:
        segs = []
        n = p.shape[1]
        for row in p:
            starts = torch.nonzero(row == 0).flatten().tolist() + [n]
            segs.append([(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True)])
    _CACHE["ref"], _CACHE["version"], _CACHE["segments"] = weakref.ref(position_ids), position_ids._version, segs
    return segs


def sdpa_varlen(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                **kwargs):
    """transformers attention function: per-sample causal sdpa on packed rows, transformers' sdpa otherwise.

    ``query`` is [B, heads, S, D]; ``key``/``value`` [B, kv_heads, S, D]; returns ([B, S, heads, D], None)."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    pos = kwargs.get("position_ids")
    s = query.shape[2]
    segs = None
    if (pos is not None and pos.shape[-1] == s == key.shape[2] and s > 1 and kwargs.get("sliding_window") is None
            and getattr(module, "is_causal", True)):
        segs = packed_segments(pos)
    if segs is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    p = dropout if module.training else 0.0
    rows = []
    for b, row in enumerate(segs):
        parts = [torch.nn.functional.scaled_dot_product_attention(
            query[b:b + 1, :, i:j], key[b:b + 1, :, i:j], value[b:b + 1, :, i:j], dropout_p=p, is_causal=True,
            scale=scaling) for i, j in row]
        rows.append(torch.cat(parts, dim=2) if len(parts) > 1 else parts[0])
    out = torch.cat(rows, dim=0) if len(rows) > 1 else rows[0]
    return out.transpose(1, 2).contiguous(), None


def register() -> str:
    """Register ``sdpa_varlen`` with transformers (attention + the sdpa mask builder); idempotent."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, sdpa_varlen)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME


def use_varlen_attention(model) -> bool:
    """Switch the model's LM (a VLM's ``language_model``) from sdpa to ``sdpa_varlen``; False (nothing done)
    when it uses another attention implementation (eager, flash-attention: the latter is varlen already)."""
    from .memory import language_model_of

    lm = language_model_of(model)
    cfg = lm.config
    if cfg._attn_implementation == NAME:
        return True
    if cfg._attn_implementation != "sdpa":
        return False
    register()
    cfg._attn_implementation = NAME
    return True
