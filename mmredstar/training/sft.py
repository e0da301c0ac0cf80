"""Supervised fine-tuning (SFT) on long-CoT targets, for text models and VLMs, on transformers' Trainer.

Each sample is formatted by the model's own processor (the chat template shared with generation and
evaluation) with loss only on the assistant tokens (``sft.loss_on_think: false`` masks the think block
too). Over-long samples follow ``data.truncation`` (never cutting an image span); ``data.packing``
packs samples into ``data.max_length`` rows with restarting position ids and no cross-sample
attention. Gradient checkpointing, bf16, DeepSpeed ZeRO-2/3, Ulysses sequence parallelism, Liger
kernels and Position Interpolation come from the recipe (see ``config.py``).

    mmredstar train tiny/sft                        # or: python -m mmredstar.training tiny/sft
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from .config import Recipe
from .kernels import use_varlen_attention
from .memory import apply_train_options, offload_stats
from .packing import SFTCollator, TruncationStats, fit_length, merge, pack
from .parallel import patch_packed_sdpa, patch_sp_vlm, patch_ulysses_adapter
from .runner import (
    GroupsMixin,
    finish,
    fit,
    load_data,
    load_model_for,
    metrics_callback,
    prepare,
    tokenizer_of,
    trainer_args,
)


def encode_sft(processor, sample, *, loss_on_think: bool, blank_images: bool) -> dict:
    """The training feature of one SFT sample (its single response is the target)."""
    return processor.encode(sample, sample.responses[0].text, loss_on_think=loss_on_think,
                            blank_images=blank_images)


class SFTDataset(Dataset):
    """SFT rows: single samples or packed groups, encoded on access (pixel values are not kept in memory).

    Built in one pass over the records that encodes each sample once to learn its length and apply the
    truncation policy; text-only features are cached, image features are re-encoded when accessed."""

    def __init__(self, records, processor, *, max_length: int, truncation: str, packing: bool,
                 loss_on_think: bool, blank_images: bool, progress: bool = True):
        from tqdm.auto import tqdm

        self.processor = processor
        self.max_length = max_length
        self.truncation = truncation
        self.loss_on_think = loss_on_think
        self.blank_images = blank_images
        self.stats = TruncationStats()
        self.samples = []
        self.cache: dict[int, dict] = {}
        lengths = []
        for rec, _, _ in tqdm(records, desc="encode", disable=not progress, mininterval=2):
            f = fit_length(self._encode(rec), max_length, truncation, self.stats)
            if f is None:
                continue
            i = len(self.samples)
            self.samples.append(rec)
            if not rec.images:
                self.cache[i] = f
            lengths.append(len(f["input_ids"]))
        if not self.samples:
            raise ValueError(f"every SFT sample was dropped by the length policy ({self.stats.to_dict()}); "
                             "raise data.max_length or use data.truncation=truncate")
        self.rows = pack(lengths, max_length) if packing else [[i] for i in range(len(self.samples))]
        self.packing = packing
        self.lengths = lengths

    def _encode(self, rec) -> dict:
        return encode_sft(self.processor, rec, loss_on_think=self.loss_on_think, blank_images=self.blank_images)

    def feature(self, i: int) -> dict:
        if i in self.cache:
            return self.cache[i]
        return fit_length(self._encode(self.samples[i]), self.max_length, self.truncation, TruncationStats())

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: int) -> dict:
        feats = [self.feature(i) for i in self.rows[idx]]
        return merge(feats) if self.packing else feats[0]

    def summary(self) -> dict:
        tokens = sum(self.lengths)
        return {"samples": len(self.samples), "rows": len(self.rows), "tokens": tokens,
                "packing_efficiency": round(tokens / (len(self.rows) * self.max_length), 4) if self.packing else None}


def _trainer_cls():
    from transformers import Trainer

    class SFTTrainer(GroupsMixin, Trainer):
        """transformers' Trainer with per-module learning rates (loss = the model's, on assistant labels).

        Records the longest sequence one forward saw (``local_seq_len``: the shard length under Ulysses)."""

        local_seq_len = 0

        def compute_loss(self, model, inputs, *args, **kwargs):
            ids = inputs.get("input_ids")
            if ids is not None:
                self.local_seq_len = max(self.local_seq_len, int(ids.shape[-1]))
            return super().compute_loss(model, inputs, *args, **kwargs)

    return SFTTrainer


def build_trainer(rec: Recipe, callbacks=()):
    """Everything ``train`` runs before ``trainer.train()``: ``(trainer, ctx, processor, train_ds, timer)``.

    The benchmarks (``bench/``) time exactly this trainer; ``callbacks`` are added to it."""
    ctx = prepare(rec)
    records, eval_records = load_data(ctx, "sft")
    model, processor = load_model_for(rec)
    memory = apply_train_options(model, rec.train)
    d = rec.data
    common = dict(max_length=d.max_length, truncation=d.truncation, packing=d.packing,
                  loss_on_think=rec.sft.loss_on_think, blank_images=d.blank_images, progress=rec.train.progress)
    train_ds = SFTDataset(records, processor, **common)
    eval_ds = SFTDataset(eval_records, processor, **common) if eval_records else None
    sp = rec.train.sequence_parallel
    # Ulysses all-gathers each batch across the ranks (gloo needs equal shapes): pad to one fixed length
    fixed = -(-d.max_length // sp) * sp if sp > 1 else None
    collator = SFTCollator(processor, packed=d.packing, pad_to_multiple_of=fixed, with_positions=sp > 1,
                           sequence_parallel=sp > 1)
    if sp > 1:
        patch_ulysses_adapter()
        patch_packed_sdpa()
        patch_sp_vlm(model)
    varlen = rec.train.varlen_attention
    if varlen is True and (not d.packing or sp > 1):
        raise ValueError("train.varlen_attention=true needs data.packing=true and train.sequence_parallel=1; "
                         "set it to auto")
    if varlen and d.packing and sp == 1 and use_varlen_attention(model):
        memory["varlen_attention"] = True
    args = trainer_args(ctx)
    cls = _trainer_cls()
    cls.module_lrs, cls.module_freeze = dict(rec.model.lrs), dict(rec.model.freeze)
    timer = metrics_callback()
    trainer = cls(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collator,
                  processing_class=tokenizer_of(processor), callbacks=[timer, *callbacks])
    if memory:
        ctx.extra_metrics["memory_options"] = memory
    return trainer, ctx, processor, train_ds, timer


def train(rec: Recipe) -> str:
    """Run SFT for a loaded recipe; returns the output directory."""
    trainer, ctx, processor, train_ds, timer = build_trainer(rec)
    fit(trainer, ctx)
    moved = offload_stats(trainer.model)
    if moved is not None:
        ctx.extra_metrics["memory_options"]["offloaded_bytes"] = moved.bytes
    extra = {"truncation": train_ds.stats.to_dict(), "data": train_ds.summary(), "packing": rec.data.packing,
             "sequence_parallel": rec.train.sequence_parallel, "local_seq_len": trainer.local_seq_len}
    eval_ds = trainer.eval_dataset
    if eval_ds is not None:
        extra["eval"] = trainer.evaluate()
    return finish(trainer, ctx, processor, timer, extra)


def sft_loss(model, batch: dict) -> torch.Tensor:
    """The model's mean token loss on one collated batch (packed or not), without a cache."""
    with torch.no_grad():
        return model(**{**batch, "use_cache": False}).loss
