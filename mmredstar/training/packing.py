"""Sequence shaping for SFT: the truncation policy, packing (text and images) and the collators.

Features are what ``processor.encode`` returns: ``input_ids``, ``labels`` (-100 outside the assistant
target), ``attention_mask`` and, with images, ``pixel_values`` [tiles, 3, H, W], ``num_tiles`` (per image)
and ``image_spans`` (per image, ``(start, end)`` token positions of its whole placeholder, end exclusive).

Truncation never cuts an image span: the cut moves to the span's start and the image goes with it.
Packing concatenates whole samples into rows of at most ``max_length`` tokens (first-fit decreasing);
position ids restart at 0 for every sample and the collator passes no attention mask, so transformers
builds a block-causal mask from the restarting positions (sdpa / eager / flash-attention varlen): no
token attends across samples, and the packed loss equals the unpacked loss on the same samples.

    from mmredstar.training.packing import fit_length, pack, PackedCollator
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

IGNORE = -100
SEQ_KEYS = ("input_ids", "labels", "attention_mask")


@dataclass
class TruncationStats:
    """What the length policy did; written to ``metrics.json`` under ``truncation``."""

    samples_seen: int = 0
    samples_truncated: int = 0
    samples_dropped: int = 0
    tokens_dropped: int = 0
    images_dropped: int = 0
    reasons: dict = field(default_factory=dict)

    def drop(self, reason: str, tokens: int) -> None:
        self.samples_dropped += 1
        self.tokens_dropped += tokens
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def n_targets(labels: Sequence[int]) -> int:
    """Tokens that carry loss (a causal LM never predicts position 0).

    >>> n_targets([-100, 5, 6, -100])
    2
    >>> n_targets([7, -100])
    0
    """
    return sum(1 for x in list(labels)[1:] if x != IGNORE)


def safe_cut(length: int, max_length: int, spans: Sequence[Sequence[int]]) -> int:
    """The largest cut <= ``max_length`` that splits no image span (spans are [start, end)).

    >>> safe_cut(100, 50, [(10, 20), (45, 60)])
    45
    >>> safe_cut(100, 50, [(10, 20)])
    50
    >>> safe_cut(30, 50, [(10, 20)])
    30
    """
    cut = min(length, max_length)
    for s, e in sorted((tuple(x) for x in spans), reverse=True):
        if s < cut < e:
            cut = s
    return cut


def fit_length(feature: dict, max_length: int, policy: str, stats: TruncationStats) -> dict | None:
    """Apply the truncation policy to one feature: the feature (maybe cut) or ``None`` (dropped, counted)."""
    stats.samples_seen += 1
    n = len(feature["input_ids"])
    if n_targets(feature["labels"]) == 0:
        stats.drop("no target tokens", n)
        return None
    if n <= max_length:
        return feature
    if policy == "drop":
        stats.drop("longer than max_length", n)
        return None
    spans = [tuple(s) for s in feature.get("image_spans") or []]
    cut = safe_cut(n, max_length, spans)
    kept_images = sum(1 for s, e in spans if e <= cut)
    out = dict(feature)
    for k in SEQ_KEYS:
        if k in out and out[k] is not None:
            out[k] = list(out[k])[:cut]
    if "position_ids" in out and out["position_ids"] is not None:
        out["position_ids"] = list(out["position_ids"])[:cut]
    dropped_images = len(spans) - kept_images
    if spans:
        tiles = list(feature.get("num_tiles") or [])
        out["image_spans"] = [list(s) for s in spans[:kept_images]]
        if tiles:
            out["num_tiles"] = tiles[:kept_images]
            pv = feature.get("pixel_values")
            if pv is not None:
                out["pixel_values"] = pv[: sum(tiles[:kept_images])] if kept_images else pv[:0]
    if n_targets(out["labels"]) == 0:
        stats.drop("nothing left to learn after truncation", n)
        stats.images_dropped += 0
        return None
    stats.samples_truncated += 1
    stats.tokens_dropped += n - cut
    stats.images_dropped += dropped_images
    return out


def pack(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """Group sample indices into bins of total length <= ``max_length`` (first-fit decreasing, deterministic).

    >>> pack([5, 3, 4, 2], 7)
    [[0, 3], [2, 1]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    # a max-segment tree over the bins' free room finds the first bin with room >= n in O(log bins), so
    # packing stays fast for hundreds of thousands of samples (a linear scan is O(samples x bins))
    size = 1
    while size < max(1, len(lengths)):
        size *= 2
    tree = [-1] * (2 * size)  # -1: no bin there yet
    for i in order:
        n = lengths[i]
        if n > max_length:
            raise ValueError(f"sample {i} has {n} tokens > max_length {max_length}: apply fit_length first")
        if tree[1] >= n:
            node = 1
            while node < size:
                node = 2 * node if tree[2 * node] >= n else 2 * node + 1
            b = node - size
            bins[b].append(i)
            tree[node] -= n
        else:
            b = len(bins)
            bins.append([i])
            node = size + b
            tree[node] = max_length - n
        node //= 2
        while node:
            left, right = tree[2 * node], tree[2 * node + 1]
            tree[node] = left if left >= right else right
            node //= 2
    return bins


def merge(features: Sequence[dict]) -> dict:
    """One packed row from several features: sequences concatenated, restarting position ids, images in
    order (``pixel_values`` concatenated, ``num_tiles`` extended, ``image_spans`` shifted).

    The first label of every sample is masked so that no loss is taken across a sample boundary."""
    row: dict = {"input_ids": [], "labels": [], "position_ids": [], "seq_lengths": []}
    pvs, tiles, spans = [], [], []
    for f in features:
        off = len(row["input_ids"])
        ids = list(f["input_ids"])
        labels = list(f["labels"])
        if labels:
            labels[0] = IGNORE
        row["input_ids"] += ids
        row["labels"] += labels
        row["position_ids"] += list(range(len(ids)))
        row["seq_lengths"].append(len(ids))
        if f.get("pixel_values") is not None and len(f.get("num_tiles") or []) > 0:
            pvs.append(f["pixel_values"])
            tiles += list(f["num_tiles"])
            spans += [[s + off, e + off] for s, e in f.get("image_spans") or []]
    row["attention_mask"] = [1] * len(row["input_ids"])
    if pvs:
        row["pixel_values"] = torch.cat(pvs, 0)
        row["num_tiles"] = tiles
        row["image_spans"] = spans
    return row


def basic_collate(features: Sequence[dict], pad_id: int, pad_to_multiple_of: int | None = None) -> dict:
    """Right-pad ``input_ids``/``labels``/``attention_mask`` (+ ``position_ids``); concatenate images.

    Used when the processor has no ``collate`` (a plain tokenizer)."""
    n = max(len(f["input_ids"]) for f in features)
    if pad_to_multiple_of:
        n = -(-n // pad_to_multiple_of) * pad_to_multiple_of
    out = {
        "input_ids": torch.tensor([list(f["input_ids"]) + [pad_id] * (n - len(f["input_ids"])) for f in features]),
        "labels": torch.tensor([list(f["labels"]) + [IGNORE] * (n - len(f["labels"])) for f in features]),
        "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * (n - len(f["input_ids"]))
                                        for f in features]),
    }
    pvs = [f["pixel_values"] for f in features if f.get("pixel_values") is not None and len(f["pixel_values"])]
    if pvs:
        out["pixel_values"] = torch.cat(pvs, 0)
        out["num_tiles"] = torch.tensor([t for f in features for t in (f.get("num_tiles") or [])])
    return out


def _position_rows(rows: Sequence[dict], width: int) -> torch.Tensor:
    pos = []
    for r in rows:
        p = list(r.get("position_ids") or range(len(r["input_ids"])))
        pos.append(p + list(range(width - len(p))))  # padding is its own "sequence": attends only to padding
    return torch.tensor(pos)


class SFTCollator:
    """Batches SFT features (packed rows or plain samples) into model inputs.

    Packed rows get restarting ``position_ids`` and no ``attention_mask`` (block-causal by positions).
    Plain rows get the processor's padding; ``position_ids`` are added when ``with_positions`` (Ulysses
    needs them). ``pad_to_multiple_of`` keeps lengths divisible by the sequence-parallel degree."""

    def __init__(self, processor, *, packed: bool, pad_to_multiple_of: int | None = None,
                 with_positions: bool = False, sequence_parallel: bool = False):
        self.processor = processor
        self.packed = packed
        self.sequence_parallel = sequence_parallel
        self.pad_to_multiple_of = pad_to_multiple_of
        self.with_positions = with_positions or packed

    def _collate(self, features: list[dict]) -> dict:
        clean = [{k: v for k, v in f.items() if k not in ("position_ids", "seq_lengths")} for f in features]
        if hasattr(self.processor, "collate"):
            batch = dict(self.processor.collate(clean, pad_to_multiple_of=self.pad_to_multiple_of))
        else:
            tok = getattr(self.processor, "tokenizer", self.processor)
            batch = basic_collate(clean, tok.pad_token_id, self.pad_to_multiple_of)
        return batch

    def __call__(self, features: list[dict]) -> dict:
        batch = self._collate(features)
        for k in ("image_spans", "seq_lengths"):
            batch.pop(k, None)
        if self.with_positions:
            batch["position_ids"] = _position_rows(features, batch["input_ids"].shape[1])
        if self.packed:
            batch.pop("attention_mask", None)
            # a KV cache makes transformers skip the packed-sequence (block-causal) mask: never build one here
            batch["use_cache"] = False
        if self.sequence_parallel and batch.get("pixel_values") is not None:
            from .parallel import sp_vlm_batch

            batch = sp_vlm_batch(batch, self.processor.image_token_id)
        return batch
