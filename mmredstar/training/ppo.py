"""Our RL loop: PPO with a critic, REINFORCE++ and REINFORCE++-baseline, for text models and VLMs.

One step reads top to bottom: **rollout** (``rollout.py``: ``rl.num_generations`` responses per prompt)
-> **reward** (``rl.reward``, the rule reward r = 1 / 0 / -1 by default, at the last response token; minus
``rl.beta`` x the per-token KL to the frozen reference, ``ppo.kl_estimator`` k1 or k3) -> **advantages**
-> **update** (``ppo.ppo_epochs`` passes of mini-batches: clipped policy loss, and for PPO the clipped
value loss; linear LR decay). Advantages per method (OpenRLHF's ``advantage_estimator`` names in brackets):

  * ``ppo`` [gae]: GAE(gamma, lambda) over the critic's values; returns = advantages + values; advantages
    whitened over the global batch. The critic is a value head on the actor's backbone or a separate model
    (``ppo.critic``); during ``ppo.critic_warmup_steps`` only the critic learns.
  * ``reinforce_pp`` [reinforce]: no critic; returns G_t = sum_{s>=t} gamma^(s-t) r_s of the KL-shaped token
    rewards, normalised over every response token of the global batch (all prompts, all processes).
  * ``reinforce_baseline`` [reinforce_baseline]: the same after subtracting each prompt's mean reward over its
    ``rl.num_generations`` responses.

Losses are token means over the global mini-batch (each token weighs the same whatever the process layout);
prompts are dealt to processes round-robin, so a mini-batch holds the same prompts under 1 or N processes and
the runs agree to float rounding. transformers + accelerate (DDP, DeepSpeed ZeRO through ``train.deepspeed``:
actor and critic are one module with one optimiser, two parameter groups: ``train.lr`` and ``ppo.critic_lr``).

    mmredstar train tiny/ppo                    # text, from the tiny SFT checkpoint
    mmredstar train tiny/vlm_ppo
    torchrun --nproc_per_node 8 -m mmredstar.training qwen2_5/14B_ppo
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from types import SimpleNamespace

import torch
from torch import nn

from .config import Recipe
from .rl import prompt_rows, reward_function
from .rollout import Rollout, make_rollout
from .runner import (
    deepspeed_config,
    finish,
    init_path,
    last_checkpoint,
    load_data,
    load_model_for,
    prepare,
    use_bf16,
)

log = logging.getLogger(__name__)
STATE_FILE = "trainer_state.json"


# ----------------------------------------------------------------------------------------- the maths
def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token KL(pi || pi_ref) estimates from the sampled tokens' log-probs.

    k1 = log p - log p_ref; k3 = (r - 1) - log r with r = p_ref / p (Schulman's low-variance, non-negative one).

    >>> [round(x, 4) for x in kl_penalty(torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0]), "k1").tolist()]
    [0.5, -1.0]
    >>> [round(x, 4) for x in kl_penalty(torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0]), "k3").tolist()]
    [0.1065, 0.7183]
    """
    if estimator == "k1":
        return logp - ref_logp
    if estimator == "k3":
        lr = (ref_logp - logp).clamp(-20, 20)
        return torch.expm1(lr) - lr
    raise ValueError(f"ppo.kl_estimator={estimator!r}: use k1 or k3")


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """-beta x KL on every response token, plus the sequence's score on its last token. [rows, T]."""
    r = -beta * kl * mask
    last = (mask.cumsum(1) == mask.sum(1, keepdim=True)) & mask.bool()
    return r + last.to(r.dtype) * scores[:, None].to(r.dtype)


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float):
    """Generalised advantage estimation over right-padded responses: (advantages, returns), both [rows, T].

    >>> a, r = gae(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.5]]), torch.ones(1, 2), 1.0, 1.0)
    >>> a.tolist(), r.tolist()
    ([[0.5, 0.5]], [[1.0, 1.0]])
    """
    values, rewards = values * mask, rewards * mask
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    T = rewards.shape[1]
    for t in reversed(range(T)):
        nxt = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * nxt - values[:, t]
        last = delta + gamma * lam * last
        adv[:, t] = last
    return adv * mask, (adv + values) * mask


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """REINFORCE++ returns G_t = r_t + gamma G_{t+1} over each response (no critic).

    >>> [round(x, 4) for x in discounted_returns(torch.tensor([[-0.1, -0.1, 1.0]]), torch.ones(1, 3), 1.0)[0].tolist()]
    [0.8, 0.9, 1.0]
    """
    rewards = rewards * mask
    out = torch.zeros_like(rewards)
    run = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        run = rewards[:, t] + gamma * run
        out[:, t] = run
    return out * mask


def global_whiten(x: torch.Tensor, mask: torch.Tensor, reduce=None, shift_mean: bool = True, eps: float = 1e-8):
    """(x - mean) / std over every masked token of the global batch; ``reduce`` sums a tensor over processes.

    >>> global_whiten(torch.tensor([[1.0, 3.0, 9.0]]), torch.tensor([[1.0, 1.0, 0.0]])).tolist()
    [[-1.0, 1.0, 0.0]]
    """
    stats = torch.stack([(x * mask).sum(), (x * x * mask).sum(), mask.sum()]).double()
    if reduce is not None:
        stats = reduce(stats)
    s, ss, n = stats.tolist()
    mean = s / max(n, 1.0)
    var = max(ss / max(n, 1.0) - mean * mean, 0.0)
    out = (x - mean) if shift_mean else x
    return out / math.sqrt(var + eps) * mask


def group_baseline(scores: torch.Tensor, groups: list[int]) -> torch.Tensor:
    """Each score minus the mean score of its prompt's group (REINFORCE++-baseline).

    >>> group_baseline(torch.tensor([1.0, 0.0, -1.0, -1.0]), [0, 0, 1, 1]).tolist()
    [0.5, -0.5, 0.0, 0.0]
    """
    g = torch.tensor(groups)
    out = scores.clone()
    for k in g.unique().tolist():
        sel = g == k
        out[sel] = scores[sel] - scores[sel].mean()
    return out


# ----------------------------------------------------------------------------------------- the model
class PolicyValue(nn.Module):
    """The actor (a causal LM or our VLM) with a value head on its last hidden states, or on a separate critic's."""

    def __init__(self, actor, critic=None):
        super().__init__()
        self.actor, self.critic = actor, critic
        hidden = (critic or actor).get_input_embeddings().embedding_dim
        self.value_head = nn.Linear(hidden, 1)
        nn.init.normal_(self.value_head.weight, std=1.0 / (hidden + 1))
        nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids, attention_mask, with_policy: bool = True, **mm):
        logits = hidden = None
        if with_policy or self.critic is None:
            out = self.actor(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=self.critic is None,
                             use_cache=False, **mm)
            logits = out.logits
            if self.critic is None:
                hidden = out.hidden_states[-1]
        if self.critic is not None:
            hidden = self.critic(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                                 use_cache=False, logits_to_keep=1, **mm).hidden_states[-1]
        return logits, self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1)


def response_logprobs(logits: torch.Tensor, ids: torch.Tensor, start: torch.Tensor, T: int, temperature: float):
    """Log-probs [rows, T] of the response tokens (row i's response starts at ``start[i]``) under ``logits``."""
    lp = torch.log_softmax(logits[:, :-1].float() / max(temperature, 1e-6), -1)
    tok = lp.gather(-1, ids[:, 1:, None]).squeeze(-1)          # position p predicts ids[p + 1]
    return _response_slice(tok, start, T, shift=1)


def _response_slice(x: torch.Tensor, start: torch.Tensor, T: int, shift: int) -> torch.Tensor:
    """x[:, start - shift : start - shift + T] per row (padded with 0)."""
    idx = (start[:, None] - shift + torch.arange(T, device=x.device)[None]).clamp(0, x.shape[1] - 1)
    return x.gather(1, idx)


# ----------------------------------------------------------------------------------------- batches
def _rows(ro: Rollout, sel: list[int], pad_id: int, device):
    """Right-padded prompt+response tensors for rollout rows ``sel`` (and the rows' images)."""
    seqs = [ro.prompt_ids[i] + ro.response_ids[i] for i in sel]
    L = max(len(s) for s in seqs)
    T = max(max(len(ro.response_ids[i]) for i in sel), 1)
    ids = torch.full((len(sel), L), pad_id, dtype=torch.long)
    att = torch.zeros((len(sel), L), dtype=torch.long)
    mask = torch.zeros((len(sel), T))
    for r, (i, s) in enumerate(zip(sel, seqs, strict=True)):
        ids[r, :len(s)] = torch.tensor(s)
        att[r, :len(s)] = 1
        mask[r, :len(ro.response_ids[i])] = 1
    start = torch.tensor([len(ro.prompt_ids[i]) for i in sel])
    mm = {}
    feats = [ro.features[ro.sample_index[i]] for i in sel]
    pv = [f["pixel_values"] for f in feats if f.get("pixel_values") is not None and len(f["pixel_values"])]
    if pv:
        mm = {"pixel_values": torch.cat(pv, 0).to(device),
              "num_tiles": torch.tensor([t for f in feats for t in (f.get("num_tiles") or [])], device=device)}
    return ids.to(device), att.to(device), mask.to(device), start.to(device), T, mm


def _take(x: torch.Tensor, sel: list[int], T: int, device) -> torch.Tensor:
    return x[sel][:, :T].to(device)


def _pad_to(x: torch.Tensor, T: int) -> torch.Tensor:
    return x if x.shape[1] == T else torch.nn.functional.pad(x, (0, T - x.shape[1]))


# ----------------------------------------------------------------------------------------- the run
def _lr_lambda(kind: str, total: int, delay: int = 0):
    """LR factor per optimiser step: 0 during ``delay`` (the actor's critic warm-up), then ``kind`` (linear decay
    to 0, cosine, or constant) over the remaining steps."""

    def f(t: int) -> float:
        if t < delay:
            return 0.0
        if kind == "constant":
            return 1.0
        frac = min(1.0, (t - delay) / max(1, total - delay))
        return 0.5 * (1 + math.cos(math.pi * frac)) if kind == "cosine" else 1.0 - frac
    return f


def train(rec: Recipe) -> str:
    """Run PPO / REINFORCE++ / REINFORCE++-baseline for a loaded recipe; returns the output directory."""
    from accelerate import Accelerator
    from accelerate.utils import DeepSpeedPlugin, set_seed

    ctx = prepare(rec)
    t, r, p = rec.train, rec.rl, rec.ppo
    method = rec.method
    records, _ = load_data(ctx, "rl")
    actor, processor = load_model_for(rec)
    stats: dict = {}
    rows, kept = prompt_rows(records, processor, rec.data.max_length, stats)
    world, rank = ctx.world_size, ctx.rank
    B, n = t.batch_size, r.num_generations
    if B % world:
        raise ValueError(f"train.batch_size={B} (prompts per step) must be a multiple of the {world} processes")
    if B > len(kept):
        raise ValueError(f"train.batch_size={B} prompts per step but the data has {len(kept)} usable prompts")
    mini = p.mini_batch_size or B * n
    if mini % n or (B * n) % mini or (mini // n) % world:
        raise ValueError(f"ppo.mini_batch_size={mini}: must divide train.batch_size x rl.num_generations = {B * n} "
                         f"into whole prompts (multiples of {n}) that split evenly over {world} processes")
    local_mini = mini // world
    micro = min(t.micro_batch_size, local_mini)
    if local_mini % micro:
        raise ValueError(f"train.micro_batch_size={micro} must divide the per-process mini-batch {local_mini}")
    gas = local_mini // micro
    ds = deepspeed_config(t.deepspeed)
    plugin, zero3 = None, False
    if ds:
        with open(ds, encoding="utf-8") as f:
            cfg = json.load(f)
        cfg.update(train_micro_batch_size_per_gpu=micro, gradient_accumulation_steps=gas,
                   gradient_clipping=t.max_grad_norm)
        cfg["train_batch_size"] = micro * gas * world
        zero3 = cfg.get("zero_optimization", {}).get("stage") == 3
        plugin = DeepSpeedPlugin(hf_ds_config=cfg)
    acc = Accelerator(gradient_accumulation_steps=gas, deepspeed_plugin=plugin,
                      mixed_precision="bf16" if use_bf16(t.bf16) else "no", cpu=not torch.cuda.is_available())
    set_seed(t.seed)
    critic_net = None
    if method == "ppo" and p.critic == "separate":
        critic_net, _ = load_model_for(rec)
        out_emb, in_emb = critic_net.get_output_embeddings(), critic_net.get_input_embeddings()
        if out_emb is not None and out_emb.weight is not in_emb.weight:
            out_emb.weight.requires_grad_(False)  # the critic's LM head is never used
    model = PolicyValue(actor, critic_net)
    if t.gradient_checkpointing:
        for net in (actor, critic_net):
            if net is not None:
                net.gradient_checkpointing_enable()
    ref = None
    if r.beta:
        ref, _ = load_model_for(rec)
        ref.requires_grad_(False)
        ref.eval().to(acc.device)
    critic_params = [q for k, q in model.named_parameters() if not k.startswith("actor.") and q.requires_grad]
    actor_params = [q for k, q in model.named_parameters() if k.startswith("actor.") and q.requires_grad]
    groups = [{"params": actor_params, "lr": t.lr}]
    if method == "ppo":
        groups.append({"params": critic_params, "lr": p.critic_lr})
    else:
        model.value_head.requires_grad_(False)
    opt = torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)
    model, opt = acc.prepare(model, opt)

    steps_per_epoch = len(kept) // B
    total = t.max_steps if t.max_steps > 0 else max(1, int(t.epochs * steps_per_epoch))
    updates = p.ppo_epochs * (B * n // mini)
    warm = p.critic_warmup_steps if method == "ppo" else 0
    lambdas = [_lr_lambda(t.lr_scheduler, total * updates, warm * updates)]
    if method == "ppo":
        lambdas.append(_lr_lambda(t.lr_scheduler, total * updates))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambdas)
    acc.register_for_checkpointing(sched)

    inner = acc.unwrap_model(model)
    pad_id = processor.pad_token_id if processor.pad_token_id is not None else processor.eos_token_id
    image_ids = [i for i in (getattr(processor, a, None) for a in ("image_token_id", "img_start_id", "img_end_id"))
                 if i is not None]
    rollout = make_rollout(p.rollout, processor, n=n, temperature=r.temperature, top_p=r.top_p,
                           max_new_tokens=r.max_completion_length, blank_images=rec.data.blank_images,
                           suppress_ids=image_ids, model_path=init_path(rec) or rec.model.name, url=p.rollout_url,
                           server_model=p.rollout_model, sync_dir=p.rollout_sync_dir, engine=p.vllm_engine,
                           prompts_per_call=p.rollout_prompts_per_call, synced_gpus=zero3 and world > 1)
    reward_fn = reward_function(r.reward, r.reward_options)
    reduce = (lambda x: acc.reduce(x.to(acc.device), "sum").cpu()) if world > 1 else None

    history: list[dict] = []
    start = 0
    if ctx.resume_from:
        acc.load_state(ctx.resume_from)
        with open(os.path.join(ctx.resume_from, STATE_FILE), encoding="utf-8") as f:
            st = json.load(f)
        start, history = st["global_step"], st["log_history"]
        log.info("resumed from %s at step %d", ctx.resume_from, start)

    from tqdm.auto import tqdm

    t0 = time.time()
    bar = tqdm(range(start, total), desc=method, disable=not (t.progress and ctx.is_main))
    for step in bar:
        # ---- 1. rollout: this process's prompts (dealt round-robin from the step's global batch)
        epoch, k = divmod(step, max(1, steps_per_epoch))
        perm = torch.randperm(len(kept), generator=torch.Generator().manual_seed(t.seed + epoch)).tolist()
        batch = perm[k * B:(k + 1) * B][rank::world]
        ro = rollout.generate(inner.actor, [kept[i] for i in batch], step=step, seed=t.seed)

        # ---- 2. reward: the rule reward of each response (TRL's reward-function convention)
        cols = {c: [rows[batch[i]][c] for i in ro.sample_index] for c in rows[0] if c not in ("prompt", "idx")}
        scores = torch.tensor(reward_fn(prompts=[rows[batch[i]]["prompt"] for i in ro.sample_index],
                                        completions=ro.texts, completion_ids=ro.response_ids, **cols),
                              dtype=torch.float32).nan_to_num(0.0)
        if method == "reinforce_baseline":
            shaped = group_baseline(scores, ro.sample_index)
        else:
            shaped = scores

        # ---- 3. old log-probs, reference log-probs, values; per-token KL folded into the reward
        T = max(len(x) for x in ro.response_ids)
        old_lp, ref_lp, vals, masks = [], [], [], []
        model.eval()
        with torch.no_grad():
            for s in range(0, len(ro), micro):
                sel = list(range(s, min(s + micro, len(ro))))
                ids, att, mask, st_, Tm, mm = _rows(ro, sel, pad_id, acc.device)
                logits, v = model(ids, att, **mm)
                old_lp.append(_pad_to(response_logprobs(logits, ids, st_, Tm, r.temperature), T))
                vals.append(_pad_to(_response_slice(v.float(), st_, Tm, shift=1), T))
                masks.append(_pad_to(mask, T))
                if ref is not None:
                    rl = ref(input_ids=ids, attention_mask=att, use_cache=False, **mm).logits
                    ref_lp.append(_pad_to(response_logprobs(rl, ids, st_, Tm, r.temperature), T))
        model.train()
        old_lp, vals, mask = torch.cat(old_lp).cpu(), torch.cat(vals).cpu(), torch.cat(masks).cpu()
        ref_lp = torch.cat(ref_lp).cpu() if ref is not None else old_lp
        kl = kl_penalty(old_lp, ref_lp, p.kl_estimator) * mask
        rewards = token_rewards(shaped, kl, mask, r.beta)

        # ---- 4. advantages
        if method == "ppo":
            adv, returns = gae(rewards, vals, mask, p.gamma, p.lam)
            if p.whiten_advantages:
                adv = global_whiten(adv, mask, reduce)
        else:
            returns = discounted_returns(rewards, mask, p.gamma)
            adv = global_whiten(returns, mask, reduce)

        # ---- 5. update: epochs x mini-batches (the same prompts under any process layout), token-mean losses
        actor_on = step >= warm
        sums = {"policy_loss": 0.0, "value_loss": 0.0, "clip_frac": 0.0, "tokens": 0.0}
        for _ in range(p.ppo_epochs):
            for m0 in range(0, len(ro), local_mini):
                mb = list(range(m0, min(m0 + local_mini, len(ro))))
                ntok = mask[mb].sum().reshape(1)
                ntok = float(reduce(ntok)) if reduce else float(ntok)
                for s in range(0, len(mb), micro):
                    sel = mb[s:s + micro]
                    with acc.accumulate(model):
                        ids, att, m_, st_, Tm, mm = _rows(ro, sel, pad_id, acc.device)
                        logits, v = model(ids, att, **mm)
                        lp = response_logprobs(logits, ids, st_, Tm, r.temperature)
                        a, olp, tm = _take(adv, sel, Tm, acc.device), _take(old_lp, sel, Tm, acc.device), m_
                        ratio = torch.exp(lp - olp)
                        pl = torch.max(-a * ratio, -a * ratio.clamp(1 - r.epsilon, 1 + r.epsilon))
                        loss_tok = pl * (1.0 if actor_on else 0.0)
                        vl = torch.zeros_like(pl)
                        if method == "ppo":
                            vv = _response_slice(v.float(), st_, Tm, shift=1)
                            ov, ret = _take(vals, sel, Tm, acc.device), _take(returns, sel, Tm, acc.device)
                            vl = (vv - ret) ** 2
                            if p.value_clip > 0:
                                vc = ov + (vv - ov).clamp(-p.value_clip, p.value_clip)
                                vl = torch.max(vl, (vc - ret) ** 2)
                            vl = 0.5 * vl
                            loss_tok = loss_tok + p.vf_coef * vl
                        # DDP averages over processes and accelerate divides by the accumulation steps: undo both
                        loss = (loss_tok * tm).sum() / max(ntok, 1.0) * world * gas
                        acc.backward(loss)
                        if acc.sync_gradients and t.max_grad_norm:
                            acc.clip_grad_norm_(model.parameters(), t.max_grad_norm)
                        opt.step()
                        if acc.sync_gradients:
                            sched.step()
                        opt.zero_grad()
                    with torch.no_grad():
                        sums["policy_loss"] += float((pl * tm).sum())
                        sums["value_loss"] += float((vl * tm).sum())
                        sums["clip_frac"] += float((((ratio - 1).abs() > r.epsilon).float() * tm).sum())
                        sums["tokens"] += float(tm.sum())
        rollout.sync(inner.actor)

        # ---- log (global means)
        vec = torch.tensor([scores.sum(), (scores ** 2).sum(), float(len(scores)), kl.sum(), mask.sum(),
                            sums["policy_loss"], sums["value_loss"], sums["clip_frac"], sums["tokens"]],
                           dtype=torch.float64)
        vec = reduce(vec) if reduce else vec
        s_sum, s_sq, cnt, kl_sum, tok, pls, vls, cfs, utok = vec.tolist()
        mean = s_sum / cnt
        entry = {"step": step + 1, "reward": mean, "reward_std": math.sqrt(max(s_sq / cnt - mean * mean, 0.0)),
                 "kl": kl_sum / max(tok, 1.0), "response_length": tok / cnt, "policy_loss": pls / max(utok, 1.0),
                 "clip_frac": cfs / max(utok, 1.0), "lr": sched.get_last_lr()[0]}
        entry["loss"] = entry["policy_loss"] * (1.0 if actor_on else 0.0)
        if method == "ppo":
            entry["value_loss"] = vls / max(utok, 1.0)
            entry["critic_lr"] = sched.get_last_lr()[1]
            entry["loss"] += p.vf_coef * entry["value_loss"]
        history.append(entry)
        bar.set_postfix(reward=f"{mean:.3f}")
        if t.save_steps and (step + 1) % t.save_steps == 0 and step + 1 < total:
            _save_checkpoint(acc, ctx, step + 1, history, t.save_total_limit)

    bar.close()
    seconds = time.time() - t0
    run = SimpleNamespace(model=inner.actor, state=SimpleNamespace(
        log_history=history, global_step=total, max_steps=total, epoch=total / max(1, steps_per_epoch)))
    run.save_model = lambda out: _save_final(acc, model, out)
    timer = SimpleNamespace(seconds=seconds, tokens=int(sum(h["response_length"] for h in history[-(total - start):]) * B * n))
    extra = {"rl": {**stats, "advantages": {"ppo": "GAE over the critic's values, whitened over the global batch",
                                            "reinforce_pp": "REINFORCE++: KL-shaped returns, no critic, normalised "
                                                            "over the global batch",
                                            "reinforce_baseline": "REINFORCE++-baseline: group mean subtracted, "
                                                                  "then global normalisation"}[method],
                    "vlm": getattr(inner.actor.config, "model_type", "") == "mmredstar_vlm", "rollout": p.rollout,
                    "critic": p.critic if method == "ppo" else None, "init": init_path(rec) or rec.model.name}}
    return finish(run, ctx, processor, timer, extra)


def _save_checkpoint(acc, ctx, step: int, history: list[dict], limit: int | None) -> None:
    """``checkpoint-N/``: accelerate state (weights, optimiser, scheduler, RNG), then ``trainer_state.json`` last."""
    d = os.path.join(ctx.output_dir, f"checkpoint-{step}")
    acc.save_state(d)
    if ctx.is_main:
        from mmredstar.io import write_json

        write_json(os.path.join(d, STATE_FILE), {"global_step": step, "log_history": history})
        if limit:
            cks = sorted((int(x.split("-")[1]), x) for x in os.listdir(ctx.output_dir)
                         if x.startswith("checkpoint-") and x.split("-")[1].isdigit())
            for _, x in cks[:-limit]:
                shutil.rmtree(os.path.join(ctx.output_dir, x), ignore_errors=True)
    acc.wait_for_everyone()
    assert last_checkpoint(ctx.output_dir) is not None


def _save_final(acc, model, out: str) -> None:
    """The actor as a model directory (``load_model(out)`` reloads it); the critic under ``out/critic/``
    (``value_head.safetensors`` and, for a separate critic, its backbone as a model directory)."""
    from safetensors.torch import save_file

    state = acc.get_state_dict(model)
    inner = acc.unwrap_model(model)
    if acc.is_main_process:
        actor = {k[len("actor."):]: v for k, v in state.items() if k.startswith("actor.")}
        inner.actor.save_pretrained(out, state_dict=actor)
        d = os.path.join(out, "critic")
        os.makedirs(d, exist_ok=True)
        head = {k: v.contiguous() for k, v in state.items() if k.startswith("value_head.")}
        save_file(head, os.path.join(d, "value_head.safetensors"))
        if inner.critic is not None:  # a separate critic: its backbone as a model directory beside the head
            inner.critic.save_pretrained(d, state_dict={k[len("critic."):]: v for k, v in state.items()
                                                        if k.startswith("critic.")})
    acc.wait_for_everyone()
