"""Direct preference optimisation (DPO) from curated (chosen, rejected) pairs, text and images, on TRL.

The loss, the reference model handling and the logged rewards are TRL's ``DPOTrainer``'s; we feed it
features tokenized by our processor (the chat template shared with SFT, generation and evaluation):
``prompt_ids``/``chosen_ids``/``rejected_ids`` per pair, plus the prompt's images, which our collator
adds to each batch (chosen rows first, then rejected rows, as TRL lays the batch out). Over-long pairs
follow ``data.truncation`` (the completion end is cut; a prompt is never cut, so image spans are whole).
``dpo.precompute_ref_log_probs`` computes the reference log-probs once before training.

    mmredstar train tiny/dpo          # the paper's runs: qwen2_5/14B_dpo, qwen2_5/32B_dpo (lr 5e-7, beta 0.3/0.5)
"""

from __future__ import annotations

import copy

import torch

from .config import Recipe
from .memory import apply_train_options
from .packing import TruncationStats
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
from .vlm_fused import vlm_aware_fused_head

SEQ = ("input_ids", "labels", "attention_mask", "position_ids", "image_spans")


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the common prefix.

    >>> common_prefix([1, 2, 3], [1, 2, 4, 5])
    2
    """
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode_pair(processor, pair, *, blank_images: bool = False) -> dict:
    """Token ids of one pair: the prompt (with its image placeholders) and each completion after it."""
    prompt = processor.encode(pair, None, add_generation_prompt=True, blank_images=blank_images)["input_ids"]
    chosen = processor.encode(pair, pair.chosen.text, blank_images=blank_images)["input_ids"]
    rejected = processor.encode(pair, pair.rejected.text, blank_images=blank_images)["input_ids"]
    n = min(common_prefix(prompt, chosen), common_prefix(prompt, rejected), len(prompt))
    return {"prompt_ids": list(prompt[:n]), "chosen_ids": list(chosen[n:]), "rejected_ids": list(rejected[n:])}


def fit_pair(f: dict, max_length: int, policy: str, stats: TruncationStats) -> dict | None:
    """Apply the length policy to one pair (completions cut at the end; prompts never cut)."""
    stats.samples_seen += 1
    p = len(f["prompt_ids"])
    longest = p + max(len(f["chosen_ids"]), len(f["rejected_ids"]))
    if not f["chosen_ids"] or not f["rejected_ids"]:
        stats.drop("empty completion", longest)
        return None
    if longest <= max_length:
        return f
    if policy == "drop" or p >= max_length - 1:
        stats.drop("longer than max_length" if policy == "drop" else "prompt fills max_length", longest)
        return None
    room = max_length - p
    out = dict(f, chosen_ids=f["chosen_ids"][:room], rejected_ids=f["rejected_ids"][:room])
    stats.samples_truncated += 1
    stats.tokens_dropped += (len(f["chosen_ids"]) - len(out["chosen_ids"])) + (
        len(f["rejected_ids"]) - len(out["rejected_ids"]))
    return out


class PreferenceCollator:
    """TRL's preference collator for the token ids + the prompts' images for both halves of the batch."""

    def __init__(self, processor, records, pad_token_id: int, blank_images: bool, pad_to_multiple_of=None):
        from trl.trainer.dpo_trainer import DataCollatorForPreference

        self.base = DataCollatorForPreference(pad_token_id=pad_token_id, pad_to_multiple_of=pad_to_multiple_of)
        self.processor = processor
        self.records = records
        self.blank_images = blank_images

    def image_inputs(self, idx: list[int]) -> dict:
        recs = [self.records[i] for i in idx]
        if not any(r.images for r in recs):
            return {}
        feats = [self.processor.encode(r, None, add_generation_prompt=True, blank_images=self.blank_images)
                 for r in recs]
        batch = self.processor.collate(feats)
        return {k: v for k, v in batch.items() if k not in SEQ}

    def __call__(self, examples: list[dict]) -> dict:
        seq = [{k: e[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids", "ref_chosen_logps",
                                  "ref_rejected_logps") if k in e} for e in examples]
        out = self.base(seq)
        for k, v in self.image_inputs([int(e["idx"]) for e in examples]).items():
            out[k] = torch.cat([v, v]) if isinstance(v, torch.Tensor) else list(v) + list(v)
        return out


def _trainer_cls():
    from trl import DPOTrainer

    class MMDPOTrainer(GroupsMixin, DPOTrainer):
        """TRL's DPOTrainer fed pre-tokenized features (our processor's chat template and images)."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if "prompt_ids" in dataset.column_names:
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return MMDPOTrainer


def build_dataset(records, processor, rec: Recipe, stats: TruncationStats, kept: list | None = None):
    """(datasets.Dataset of token ids + record index into ``kept``, ``kept``) after the length policy.

    Records kept are appended to ``kept`` (pass the training list to index eval records after it)."""
    from datasets import Dataset
    from tqdm.auto import tqdm

    rows = []
    kept = [] if kept is None else kept
    for r, _, _ in tqdm(records, desc="encode pairs", disable=not rec.train.progress, mininterval=2):
        f = fit_pair(encode_pair(processor, r, blank_images=rec.data.blank_images), rec.data.max_length,
                     rec.data.truncation, stats)
        if f is None:
            continue
        f["idx"] = len(kept)
        kept.append(r)
        rows.append(f)
    if not rows:
        raise ValueError(f"every DPO pair was dropped by the length policy ({stats.to_dict()}); raise data.max_length")
    return Dataset.from_list(rows), kept


def build_trainer(rec: Recipe, callbacks=()):
    """Everything ``train`` runs before ``trainer.train()``: ``(trainer, ctx, processor, extra, timer)``.

    The benchmarks (``bench/``) time exactly this trainer; ``callbacks`` are added to it."""
    from trl import DPOConfig

    ctx = prepare(rec)
    records, eval_records = load_data(ctx, "dpo")
    model, processor = load_model_for(rec)
    memory = apply_train_options(model, rec.train)  # tiled MLP / offload; TRL scores log-probs in chunks itself
    tok = tokenizer_of(processor)
    stats = TruncationStats()
    train_ds, kept = build_dataset(records, processor, rec, stats)
    n_train = len(kept)
    eval_ds = build_dataset(eval_records, processor, rec, TruncationStats(), kept)[0] if eval_records else None
    d = rec.dpo
    losses, weights = [d.loss_type], [1.0]
    if d.sft_weight > 0:
        losses.append("sft")
        weights.append(d.sft_weight)
    args = trainer_args(ctx, DPOConfig, beta=d.beta, loss_type=losses, loss_weights=weights,
                        label_smoothing=d.label_smoothing, precompute_ref_log_probs=d.precompute_ref_log_probs,
                        max_length=None, dataset_num_proc=None)
    ref = None
    if not d.precompute_ref_log_probs:
        ref = copy.deepcopy(model).eval()
        for p in ref.parameters():
            p.requires_grad_(False)
    collator = PreferenceCollator(processor, kept, tok.pad_token_id, rec.data.blank_images)
    cls = _trainer_cls()
    cls.module_lrs, cls.module_freeze = dict(rec.model.lrs), dict(rec.model.freeze)
    timer = metrics_callback()
    with vlm_aware_fused_head():  # TRL's fused log-prob head, routed through a VLM's language model
        trainer = cls(model=model, ref_model=ref, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                      data_collator=collator, processing_class=tok, callbacks=[timer, *callbacks])
    if memory:
        ctx.extra_metrics["memory_options"] = memory
    return trainer, ctx, processor, {"truncation": stats.to_dict(), "pairs": n_train, "beta": d.beta}, timer


def train(rec: Recipe) -> str:
    """Run DPO for a loaded recipe; returns the output directory."""
    trainer, ctx, processor, extra, timer = build_trainer(rec)
    fit(trainer, ctx)
    if trainer.eval_dataset is not None:
        extra["eval"] = trainer.evaluate()
    return finish(trainer, ctx, processor, timer, extra)
