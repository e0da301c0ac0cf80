"""Process preference model training: a pairwise Bradley-Terry loss on a scalar head (rStar-Math 3.3).

For a pair of steps sharing a prefix, ``loss = -log sigmoid(r(prefix, chosen) - r(prefix, rejected))``: the
PPM learns to rank the step on a path to a correct answer above the one on a path to a wrong answer,
instead of regressing the noisy Q values themselves. A plain loop (AdamW, linear warm-up and decay,
gradient clipping) over shuffled pairs; chosen and rejected are scored in one forward pass.

    mmredstar train rstar/tiny_ppm data.train=[runs/x/pairs.jsonl]       # recipe with ``method: ppm``

    from mmredstar.training.ppm import train_ppm
    metrics = train_ppm(model, processor, train_pairs, eval_pairs, lr=1e-3, epochs=4, batch_size=16)

``metrics.json`` holds ``first_loss``, ``last_loss``, ``train_pairwise_accuracy``, ``eval_pairwise_accuracy``
(the share of held-out pairs ranked right) and the loss series.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time

import torch

from mmredstar.modeling.ppm import ProcessPreferenceModel, batch_ids, encode_step

log = logging.getLogger(__name__)


def pair_rows(processor, pairs, max_length: int | None = None) -> list[tuple[list[int], list[int]]]:
    """(chosen ids, rejected ids) per pair: the pair's prompt (problem + prefix) followed by each step."""
    return [(encode_step(processor, p, [p.chosen.text], max_length=max_length),
             encode_step(processor, p, [p.rejected.text], max_length=max_length)) for p in pairs]


def _margins(model, rows, pad: int, device) -> torch.Tensor:
    ids, mask = batch_ids([c for c, _ in rows] + [r for _, r in rows], pad, device)
    s = model(ids, mask)
    return s[: len(rows)] - s[len(rows):]


@torch.no_grad()
def pairwise_accuracy(model, processor, rows, batch_size: int = 32) -> float | None:
    """Share of pairs whose chosen step scores above the rejected one (ties count half)."""
    if not rows:
        return None
    dev = next(model.parameters()).device
    pad = processor.pad_token_id if processor.pad_token_id is not None else 0
    was = model.training
    model.eval()
    right = 0.0
    for i in range(0, len(rows), batch_size):
        m = _margins(model, rows[i:i + batch_size], pad, dev)
        right += float((m > 0).sum()) + 0.5 * float((m == 0).sum())
    model.train(was)
    return right / len(rows)


def train_ppm(lm_or_ppm, processor, train_pairs, eval_pairs=None, *, lr: float = 1e-4, epochs: float = 1.0,
              max_steps: int = -1, batch_size: int = 16, weight_decay: float = 0.0, warmup_ratio: float = 0.05,
              max_grad_norm: float = 1.0, max_length: int | None = 2048, seed: int = 0,
              progress: bool = True) -> tuple[ProcessPreferenceModel, dict]:
    """Train a PPM (a causal LM gets a fresh head) on ``train_pairs``; returns (model, metrics)."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    model = lm_or_ppm if isinstance(lm_or_ppm, ProcessPreferenceModel) else ProcessPreferenceModel(lm_or_ppm)
    dev = next(model.parameters()).device
    model.head.to(dev)
    pad = processor.pad_token_id if processor.pad_token_id is not None else 0
    rows = pair_rows(processor, train_pairs, max_length)
    eval_rows = pair_rows(processor, eval_pairs or [], max_length)
    if not rows:
        raise ValueError("PPM training: no training pairs (did the search find both correct and wrong steps?)")
    per_epoch = math.ceil(len(rows) / batch_size)
    total = max_steps if max_steps > 0 else max(1, math.ceil(epochs * per_epoch))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    warm = int(warmup_ratio * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    rng = random.Random(seed)
    order: list[int] = []
    losses: list[list[float]] = []
    acc0 = pairwise_accuracy(model, processor, eval_rows)
    t0 = time.time()
    model.train()
    for step in tqdm(range(total), desc="ppm", disable=not progress):
        if len(order) < batch_size:
            more = list(range(len(rows)))
            rng.shuffle(more)
            order += more
        idx, order = order[:batch_size], order[batch_size:]
        margin = _margins(model, [rows[i] for i in idx], pad, dev)
        loss = -torch.nn.functional.logsigmoid(margin).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        opt.step()
        sched.step()
        losses.append([step + 1, round(loss.item(), 6)])
    model.eval()
    k = max(1, len(losses) // 10)
    metrics = {"method": "ppm", "steps": total, "train_pairs": len(rows), "eval_pairs": len(eval_rows),
               "first_loss": sum(x for _, x in losses[:k]) / k, "last_loss": sum(x for _, x in losses[-k:]) / k,
               "train_pairwise_accuracy": pairwise_accuracy(model, processor, rows),
               "eval_pairwise_accuracy_before": acc0,
               "eval_pairwise_accuracy": pairwise_accuracy(model, processor, eval_rows),
               "runtime_s": round(time.time() - t0, 2), "series": {"loss": losses}}
    return model, metrics


def train(rec) -> str:
    """``method: ppm`` recipes: the model is the backbone (a preset, or the policy's output dir), ``data.train``
    / ``data.eval`` hold preference pairs (``mmredstar.search.select.ppm_pairs``). Writes the PPM directory."""
    from mmredstar.io import write_json

    from .runner import load_data, load_model_for, prepare

    ctx = prepare(rec)
    records, eval_records = load_data(ctx, "dpo")   # (record, file, line) triples
    pairs = [r for r, _, _ in records]
    eval_pairs = [r for r, _, _ in eval_records or []]
    lm, processor = load_model_for(rec)
    t = rec.train
    model, m = train_ppm(lm, processor, pairs, eval_pairs, lr=t.lr, epochs=t.epochs, max_steps=t.max_steps,
                         batch_size=t.batch_size, weight_decay=t.weight_decay, warmup_ratio=t.warmup_ratio,
                         max_grad_norm=t.max_grad_norm, max_length=rec.data.max_length, seed=t.seed,
                         progress=t.progress)
    out = ctx.output_dir
    model.save(out, processor, {"backbone": rec.model.name, "recipe": rec.name})
    m.update(recipe=rec.name, model=rec.model.name, output_dir=os.path.abspath(out))
    write_json(os.path.join(out, "metrics.json"), m)
    log.info("ppm: %d steps, loss %.4f -> %.4f, held-out pairwise accuracy %s; saved to %s", m["steps"],
             m["first_loss"], m["last_loss"], m["eval_pairwise_accuracy"], out)
    return out
