"""Process preference model training: a pairwise Bradley-Terry loss on a scalar head (rStar-Math 3.3).

For a pair of steps sharing a prefix, ``loss = -log sigmoid(r(prefix, chosen) - r(prefix, rejected))``: the
PPM learns to rank the step on a path to a correct answer above the one on a path to a wrong answer,
instead of regressing the noisy Q values themselves. A plain loop (AdamW, linear warm-up and decay,
gradient clipping) over shuffled pairs; chosen and rejected are scored in one forward pass.

    mmredstar train rstar/tiny_ppm data.train=[runs/x/pairs.jsonl]       # recipe with ``method: ppm``

    from mmredstar.training.ppm import train_ppm
    metrics = train_ppm(model, processor, train_pairs, eval_pairs, lr=1e-3, epochs=4, batch_size=16)

Against over-fitting a few hundred pairs (the recipe's ``ppm`` section, :class:`mmredstar.training.config.PPMConfig`):
``trainable_layers`` trains only the backbone's last N blocks (its final norm too) and the head (0: the head
alone, a linear probe on the frozen backbone); ``val_share`` holds out that share of the training problems'
pairs (grouped by ``meta.problem_id``, else by prompt) as a validation split scored every ``val_every``
steps (default: every epoch); the weights of the best validation pairwise accuracy (ties: lower validation
loss) are kept, and training stops after ``patience`` checks without improvement (0: never early).

``metrics.json`` holds ``first_loss``, ``last_loss``, ``train_pairwise_accuracy``, ``eval_pairwise_accuracy``
(the share of held-out pairs ranked right) and the loss series; with a validation split also
``val_pairs``, ``best_step``, ``stopped_step`` and the ``val_pairwise_accuracy`` series.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time

import torch

from mmredstar.modeling.ppm import ProcessPreferenceModel, batch_rows, encode_scored

log = logging.getLogger(__name__)


def pair_rows(processor, pairs, max_length: int | None = None) -> list[tuple[tuple, tuple]]:
    """(chosen, rejected) per pair, each ``(ids, step start)`` (``encode_scored``): the pair's prompt (problem +
    prefix) followed by the step."""
    return [(encode_scored(processor, p, [p.chosen.text], max_length=max_length),
             encode_scored(processor, p, [p.rejected.text], max_length=max_length)) for p in pairs]


def _margins(model, rows, pad: int, device) -> torch.Tensor:
    ids, mask, start = batch_rows([c for c, _ in rows] + [r for _, r in rows], pad, device)
    s = model(ids, mask, start)
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


def trainable_to_last(model: ProcessPreferenceModel, n: int | None) -> int:
    """Freeze the backbone but its last ``n`` blocks and its final norm (``n = 0``: the head alone; ``None`` or
    a negative ``n``: leave the backbone as it is, i.e. all trainable unless ``model.freeze`` froze parts);
    returns the number of trainable parameters."""
    if n is not None and n >= 0:
        lm = model.lm
        for p in lm.parameters():
            p.requires_grad_(False)
        if n > 0:
            dec = lm.get_decoder() if hasattr(lm, "get_decoder") else lm
            blocks = next((b for b in (getattr(dec, k, None) for k in ("layers", "h", "blocks"))
                           if isinstance(b, torch.nn.ModuleList)), None)
            if blocks is None:
                raise ValueError(f"ppm.trainable_layers={n}: cannot find the decoder blocks of "
                                 f"{type(lm).__name__} (no 'layers' / 'h' / 'blocks'); use -1 (all) or 0 (head)")
            keep = list(blocks)[-n:] + [m for m in (getattr(dec, k, None) for k in ("norm", "ln_f"))
                                        if isinstance(m, torch.nn.Module)]
            for m in keep:
                for p in m.parameters():
                    p.requires_grad_(True)
    for p in model.head.parameters():
        p.requires_grad_(True)
    if model.logprob_weight is not None:
        model.logprob_weight.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def split_validation(pairs, share: float, seed: int = 0) -> tuple[list, list]:
    """(train, validation): the pairs of a ``share`` of the problems (``meta.problem_id``, else the prompt) go
    to validation, chosen by a seeded hash of the problem (``mmredstar.data.subset.unit_hash``)."""
    from mmredstar.data.subset import unit_hash

    if share <= 0:
        return list(pairs), []
    keys = sorted({(p.meta or {}).get("problem_id") or p.prompt_id for p in pairs})
    if len(keys) < 2:
        return list(pairs), []
    ranked = sorted(keys, key=lambda k: unit_hash(seed, k))
    val = set(ranked[: min(len(keys) - 1, max(1, round(share * len(keys))))])
    pick = [((p.meta or {}).get("problem_id") or p.prompt_id) in val for p in pairs]
    return [p for p, v in zip(pairs, pick, strict=True) if not v], [p for p, v in zip(pairs, pick, strict=True) if v]


@torch.no_grad()
def _val_scores(model, rows, pad: int, dev, batch_size: int = 32) -> tuple[float, float]:
    """(pairwise accuracy, mean loss) on ``rows``."""
    was = model.training
    model.eval()
    right, loss = 0.0, 0.0
    for i in range(0, len(rows), batch_size):
        m = _margins(model, rows[i:i + batch_size], pad, dev)
        right += float((m > 0).sum()) + 0.5 * float((m == 0).sum())
        loss += float(-torch.nn.functional.logsigmoid(m).sum())
    model.train(was)
    return right / len(rows), loss / len(rows)


def train_ppm(lm_or_ppm, processor, train_pairs, eval_pairs=None, *, lr: float = 1e-4, epochs: float = 1.0,
              max_steps: int = -1, batch_size: int = 16, weight_decay: float = 0.0, warmup_ratio: float = 0.05,
              max_grad_norm: float = 1.0, max_length: int | None = 2048, seed: int = 0,
              trainable_layers: int | None = None, val_share: float = 0.0, val_every: int = 0, patience: int = 0,
              step_logprob: bool = False, pool: str = "last", progress: bool = True) -> tuple[ProcessPreferenceModel, dict]:
    """Train a PPM (a causal LM gets a fresh head, with ``step_logprob`` also the log-likelihood term of
    ``mmredstar.modeling.ppm``) on ``train_pairs``; returns (model, metrics).

    ``trainable_layers``, ``val_share``, ``val_every``, ``patience``: see the module docstring."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    model = (lm_or_ppm if isinstance(lm_or_ppm, ProcessPreferenceModel)
             else ProcessPreferenceModel(lm_or_ppm, step_logprob=step_logprob, pool=pool))
    dev = next(model.parameters()).device
    model.to(dev)
    n_trainable = trainable_to_last(model, trainable_layers)
    pad = processor.pad_token_id if processor.pad_token_id is not None else 0
    fit_pairs, val_pairs = split_validation(train_pairs, val_share, seed)
    rows = pair_rows(processor, fit_pairs, max_length)
    val_rows = pair_rows(processor, val_pairs, max_length)
    eval_rows = pair_rows(processor, eval_pairs or [], max_length)
    if not rows:
        raise ValueError("PPM training: no training pairs (did the search find both correct and wrong steps?)")
    per_epoch = math.ceil(len(rows) / batch_size)
    total = max_steps if max_steps > 0 else max(1, math.ceil(epochs * per_epoch))
    every = val_every if val_every > 0 else per_epoch
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    warm = int(warmup_ratio * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    rng = random.Random(seed)
    order: list[int] = []
    losses: list[list[float]] = []
    val_series: list[list[float]] = []
    best: tuple | None = None          # ((accuracy, -loss), step, state)
    since = 0
    acc0 = pairwise_accuracy(model, processor, eval_rows)
    t0 = time.time()
    model.train()
    step = 0
    for step in tqdm(range(1, total + 1), desc="ppm", disable=not progress):
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
        losses.append([step, round(loss.item(), 6)])
        if val_rows and (step % every == 0 or step == total):
            acc, vloss = _val_scores(model, val_rows, pad, dev)
            val_series.append([step, round(acc, 6), round(vloss, 6)])
            if best is None or (acc, -vloss) > best[0]:
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best, since = ((acc, -vloss), step, state), 0
            else:
                since += 1
                if patience and since >= patience:
                    log.info("ppm: early stop at step %d (validation accuracy best at step %d)", step, best[1])
                    break
    stopped = step
    if best is not None:
        model.load_state_dict(best[2])
    model.eval()
    k = max(1, len(losses) // 10)
    metrics = {"method": "ppm", "steps": stopped, "planned_steps": total, "train_pairs": len(rows),
               "eval_pairs": len(eval_rows), "trainable_parameters": n_trainable,
               "first_loss": sum(x for _, x in losses[:k]) / k, "last_loss": sum(x for _, x in losses[-k:]) / k,
               "train_pairwise_accuracy": pairwise_accuracy(model, processor, rows),
               "eval_pairwise_accuracy_before": acc0,
               "eval_pairwise_accuracy": pairwise_accuracy(model, processor, eval_rows),
               "runtime_s": round(time.time() - t0, 2), "series": {"loss": losses}}
    if val_rows:
        metrics.update(val_pairs=len(val_rows), best_step=best[1] if best else None, stopped_step=stopped,
                       val_pairwise_accuracy=best[0][0] if best else None)
        metrics["series"]["val"] = val_series
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
                         trainable_layers=rec.ppm.trainable_layers, val_share=rec.ppm.val_share,
                         val_every=rec.ppm.val_every, patience=rec.ppm.patience, step_logprob=rec.ppm.step_logprob,
                         pool=rec.ppm.pool, progress=t.progress)
    out = ctx.output_dir
    model.save(out, processor, {"backbone": rec.model.name, "recipe": rec.name})
    m.update(recipe=rec.name, model=rec.model.name, output_dir=os.path.abspath(out))
    write_json(os.path.join(out, "metrics.json"), m)
    log.info("ppm: %d steps, loss %.4f -> %.4f, held-out pairwise accuracy %s; saved to %s", m["steps"],
             m["first_loss"], m["last_loss"], m["eval_pairwise_accuracy"], out)
    return out
