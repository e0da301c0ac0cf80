"""Sequence parallelism (DeepSpeed Ulysses / ALST) for text models and VLMs, through transformers' Trainer.

``train.sequence_parallel: N`` (with ``train.deepspeed``) splits every sequence over N ranks: transformers
and accelerate wrap the attention with ``UlyssesSPAttentionHF`` (all-to-all over heads, full-sequence
attention, back to sequence shards) and shard each batch along the sequence with
``UlyssesSPDataLoaderAdapter``. Batches carry ``position_ids`` (restarting per packed sample) and lengths
padded to a multiple of N; the loss is the token-weighted mean over the shards.

Two things are ours:
  * the adapter is made re-iterable per epoch (upstream it returns itself with an exhausted iterator,
    so a second epoch ends at once) and forwards ``set_epoch`` to the wrapped loader;
  * VLM batches: the adapter shards every tensor along dim 1, which ``pixel_values`` [tiles, 3, H, W]
    is not. ``VLMSequenceParallel`` turns images into per-token inputs before sharding: the image
    features are computed once (every rank sees the whole batch's tiles) and each rank's shard carries,
    per token, the index of its image feature row, so the shard splices in exactly its own image tokens.

    mmredstar train tiny/sft train.deepspeed=zero2 train.sequence_parallel=2   # under torchrun, 2 processes
"""

from __future__ import annotations

from .vlm_fused import is_vlm

_PATCHED = False


def patch_ulysses_adapter() -> None:
    """Make DeepSpeed's ``UlyssesSPDataLoaderAdapter`` restart on every ``iter()`` (one pass per epoch)."""
    global _PATCHED
    if _PATCHED:
        return
    from deepspeed.runtime.sequence_parallel.ulysses_sp import UlyssesSPDataLoaderAdapter as A

    def __iter__(self):
        self.iter = iter(self.dl)
        self.micro_batches.clear()
        return self

    def set_epoch(self, epoch):
        for obj in (self.dl, getattr(self.dl, "sampler", None), getattr(self.dl, "batch_sampler", None)):
            if obj is not None and hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)
                return

    A.__iter__ = __iter__
    A.set_epoch = set_epoch
    _PATCHED = True


def image_token_index(input_ids, image_token_id: int):
    """Per token: the row of its image feature in the batch's flattened image features, else -1.

    Rows follow the ``<IMG_CONTEXT>`` tokens in row-major order, the order the VLM splices features in.

    >>> import torch
    >>> image_token_index(torch.tensor([[5, 9, 9, 1], [9, 2, 9, 0]]), 9).tolist()
    [[-1, 0, 1, -1], [2, -1, 3, -1]]
    """
    import torch

    mask = input_ids == image_token_id
    idx = torch.cumsum(mask.reshape(-1).long(), 0).reshape(mask.shape) - 1
    return torch.where(mask, idx, torch.full_like(idx, -1))


def sp_vlm_batch(batch: dict, image_token_id: int) -> dict:
    """Rewrite a VLM batch for sequence sharding: ``pixel_values`` travel whole (as a one-item list, which
    the adapter copies to every rank) and ``image_token_index`` (per token) is sharded with the tokens."""
    pv = batch.pop("pixel_values", None)
    batch.pop("num_tiles", None)
    batch.pop("image_flags", None)
    batch["image_token_index"] = image_token_index(batch["input_ids"], image_token_id)
    batch["sp_pixel_values"] = [pv]
    return batch


def patch_sp_vlm(model) -> bool:
    """Let a VLM take ``image_token_index`` + ``sp_pixel_values`` (a sequence shard's view of the images).

    Every rank encodes all tiles of the micro-batch and writes into its shard the feature rows its image
    tokens point at; the rest of the forward is the model's own. No-op (False) for text models."""
    import functools
    import types

    target = getattr(model, "module", model)
    if not is_vlm(target):
        return False
    inner = target.forward  # may already be the fused-head forward

    @functools.wraps(type(target).forward)
    def forward(self, *args, image_token_index=None, sp_pixel_values=None, **kw):
        if image_token_index is None:
            return inner(*args, **kw)
        input_ids = kw.pop("input_ids", args[0] if args else None)
        embeds = self.get_input_embeddings()(input_ids)
        pv = sp_pixel_values[0] if isinstance(sp_pixel_values, (list, tuple)) else sp_pixel_values
        if pv is not None and pv.numel():
            feats = self.extract_feature(pv.to(embeds.device))
            feats = feats.reshape(-1, feats.shape[-1]).to(embeds.dtype)
            mask = image_token_index >= 0
            embeds = embeds.clone()
            embeds[mask] = feats[image_token_index[mask]]
            if not bool(mask.any()):  # keep the vision tower in the graph on shards without image tokens
                embeds = embeds + 0.0 * feats.sum()
        for k in ("num_tiles", "image_flags", "pixel_values", "image_spans"):
            kw.pop(k, None)
        return inner(inputs_embeds=embeds, **kw)

    target.forward = types.MethodType(forward, target)
    return True


def block_causal_mask(position_ids):
    """[B, 1, S, S] boolean mask: causal, and only within the packed sample a token belongs to.

    A sample starts wherever the position id restarts at 0.

    >>> import torch
    >>> block_causal_mask(torch.tensor([[0, 1, 0, 1]]))[0, 0].int().tolist()
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]
    """
    import torch

    seg = torch.cumsum((position_ids == 0).long(), dim=-1)
    s = position_ids.shape[-1]
    causal = torch.ones(s, s, dtype=torch.bool, device=position_ids.device).tril()
    return ((seg[:, :, None] == seg[:, None, :]) & causal)[:, None]


_SDPA_PATCHED = False


def patch_packed_sdpa() -> None:
    """Under Ulysses the attention gets no mask (it is dropped before the all-to-all) and sdpa falls back to
    plain causal attention, which would let packed samples see each other. Wrap transformers' sdpa so that,
    given no mask and restarting (gathered, full-length) ``position_ids``, it attends block-causally.

    Flash-attention varlen reads the same position ids natively; this is for sdpa (CPU, tests, GPUs
    without flash-attn). Install before the trainer registers Ulysses (it captures the function)."""
    global _SDPA_PATCHED
    if _SDPA_PATCHED:
        return
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    sdpa = ALL_ATTENTION_FUNCTIONS["sdpa"]

    def sdpa_packed(module, query, key, value, attention_mask, *args, **kwargs):
        pos = kwargs.get("position_ids")
        if attention_mask is None and pos is not None and pos.shape[-1] == query.shape[2] and pos.shape[-1] > 1:
            if bool((pos[..., 1:] == 0).any()):
                attention_mask = block_causal_mask(pos.expand(query.shape[0], -1))
        return sdpa(module, query, key, value, attention_mask, *args, **kwargs)

    ALL_ATTENTION_FUNCTIONS["sdpa"] = sdpa_packed
    _SDPA_PATCHED = True
