"""Online RL with the rule reward: GRPO and REINFORCE++ on TRL's GRPOTrainer, for text models and VLMs.

Prompts are formatted by our processor (the chat template shared with SFT and evaluation; images spliced
in for VLMs); TRL samples ``rl.num_generations`` responses per prompt, scores them with the reward
(``rl.reward: rule`` = ``mmredstar.verify.reward.trl_reward_fn``: 1 verified / 0 wrong / -1 no valid
answer) and optimises its clipped policy-gradient loss.

Advantages -- the one difference between the two methods:
  * GRPO (``method: grpo``): per-group normalisation, A_i = (r_i - mean(r of the same prompt)) / std(group)
    (``rl.scale_rewards``: group | batch | none, TRL's options).
  * REINFORCE++ (``method: reinforce_pp``): no critic and no per-prompt baseline; the advantage is the
    reward normalised over the whole global batch, A_i = (r_i - mean(r over all prompts and processes)) /
    std(same). With 2 samples per prompt (the paper's setting) GRPO's group statistics rest on two values;
    REINFORCE++'s global statistics are stable and unbiased across prompts of different difficulty.

    mmredstar train tiny/grpo                 # the paper's run: qwen2_5/14B_reinforce_pp
"""

from __future__ import annotations

import json

import torch

from .config import Recipe
from .runner import (
    GroupsMixin,
    finish,
    load_data,
    load_model_for,
    metrics_callback,
    prepare,
    tokenizer_of,
    trainer_args,
)
from .vlm_fused import is_vlm, vlm_aware_fused_head

SEQ = ("input_ids", "labels", "attention_mask", "position_ids", "image_spans")


TRL_HOOKS: dict[str, tuple[str, ...]] = {
    "_tokenize_prompts": ("prompts",),
    "_calculate_rewards": ("inputs", "prompts", "completions", "completion_ids_list"),
    "_generate_and_score_completions": ("inputs",),
    "_get_per_token_logps_and_entropies": ("model", "input_ids", "attention_mask", "logits_to_keep", "batch_size",
                                           "pixel_values", "num_images", "num_tiles"),
}
"""The private ``trl.GRPOTrainer`` methods ``MMGRPOTrainer`` overrides or calls, with the parameters it relies on.
``pyproject`` admits ``trl>=1.0,<2``; ``tests/training/test_trl_hooks.py`` fails, naming the method, on a TRL that
renamed one or changed its parameters."""


def missing_trl_hooks() -> list[str]:
    """What ``TRL_HOOKS`` expects and the installed ``trl.GRPOTrainer`` lacks (empty when compatible)."""
    import inspect

    from trl import GRPOTrainer

    problems = []
    for name, params in TRL_HOOKS.items():
        fn = getattr(GRPOTrainer, name, None)
        if not callable(fn):
            problems.append(f"trl.GRPOTrainer.{name} does not exist")
            continue
        have = inspect.signature(fn).parameters
        lost = [p for p in params if p not in have]
        if lost:
            problems.append(f"trl.GRPOTrainer.{name}{inspect.signature(fn)} has no parameter(s) {lost}")
    return problems


def reward_function(name: str, options: dict):
    """The TRL reward function a recipe names: ``rule`` or ``module:factory`` (called with ``options``)."""
    if name == "rule":
        from mmredstar.verify.reward import trl_reward_fn

        fn = trl_reward_fn(**options)
    else:
        from mmredstar.registry import lookup

        fn = lookup(name, {"rule": None}, "rl.reward", example="pkg.module:factory")(**options)
    if not getattr(fn, "__name__", None):
        fn.__name__ = name.replace(":", ".")
    return fn


def global_advantages(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """REINFORCE++ advantages: rewards normalised over the whole (global) batch; NaN (unscorable) -> 0.

    >>> [round(a, 3) for a in global_advantages(torch.tensor([1.0, 0.0, 1.0, -1.0])).tolist()]
    [0.783, -0.261, 0.783, -1.305]
    """
    mean = torch.nanmean(rewards)
    ok = ~torch.isnan(rewards)
    std = rewards[ok].std() if int(ok.sum()) > 1 else torch.zeros((), device=rewards.device)
    return torch.nan_to_num((rewards - mean) / (std + eps), nan=0.0)


def prompt_rows(records, processor, max_length: int, stats: dict) -> tuple[list[dict], list]:
    """Dataset rows for TRL (conversational ``prompt`` + reward columns + ``idx``) and the samples kept.

    Prompts longer than ``max_length`` tokens are dropped (a cut question cannot be answered) and counted."""
    rows, kept = [], []
    for s, _, _ in records:
        n = len(processor.encode(s, None, add_generation_prompt=True)["input_ids"])
        if n > max_length:
            stats["prompts_dropped"] = stats.get("prompts_dropped", 0) + 1
            continue
        rows.append({
            "prompt": [{"role": "user", "content": s.question}],
            "idx": len(kept),
            "id": s.id,
            "answer": s.answer if s.answer is not None else "",
            "answer_type": s.answer_type,
            "choices": list(s.choices) if s.choices else [],
            "tests": json.dumps(s.tests.to_dict()) if s.tests else "",
            "sample": json.dumps(s.to_dict(), ensure_ascii=False),
        })
        kept.append(s)
    stats["prompts"] = len(kept)
    if not rows:
        raise ValueError(f"every RL prompt is longer than data.max_length={max_length}; raise it")
    return rows, kept


def _trainer_cls(global_norm: bool):
    from trl import GRPOTrainer

    class MMGRPOTrainer(GroupsMixin, GRPOTrainer):
        """TRL's GRPOTrainer with prompts (and images) encoded by our processor; with ``global_norm`` the
        advantages are REINFORCE++'s (global batch normalisation) instead of GRPO's per-group ones."""

        samples: list = []
        processor = None
        blank_images = False

        def _features(self, rows: list[int]) -> list[dict]:
            return [self.processor.encode(self.samples[i], None, add_generation_prompt=True,
                                          blank_images=self.blank_images) for i in rows]

        def _tokenize_prompts(self, prompts):
            feats = self._batch_feats
            ids = [f["input_ids"] for f in feats]
            mm = {}
            if any(f.get("pixel_values") is not None for f in feats):
                batch = self.processor.collate(feats, padding_side="left")
                mm = {k: v for k, v in batch.items() if k not in SEQ}
            return ids, None, mm

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            r = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._last_rewards_per_func = r
            return r

        def _generate_and_score_completions(self, inputs):
            self._batch_rows = [int(x["idx"]) for x in inputs]
            self._batch_feats = feats = self._features(self._batch_rows)
            vlm = any(self.samples[i].images for i in self._batch_rows)
            beta = self.beta
            if vlm and beta != 0.0:
                self.beta = 0.0  # TRL would score the reference without images; we do it below
            try:
                out = super()._generate_and_score_completions(inputs)
            finally:
                self.beta = beta
            if vlm:
                pv = [f["pixel_values"] for f in feats if f.get("pixel_values") is not None]
                device = self.accelerator.device
                out["pixel_values"] = torch.cat(pv, 0).to(device)
                out["num_images"] = [len(f.get("num_tiles") or []) for f in feats]
                out["num_tiles"] = [int(sum(f.get("num_tiles") or [])) for f in feats]
                if beta != 0.0 and self.ref_model is not None:
                    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
                    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
                    with torch.no_grad():
                        out["ref_per_token_logps"], _, _ = self._get_per_token_logps_and_entropies(
                            self.ref_model, ids, mask, out["completion_ids"].size(1),
                            batch_size=self.args.per_device_train_batch_size, pixel_values=out["pixel_values"],
                            num_images=out["num_images"], num_tiles=out["num_tiles"])
            if global_norm:
                w = self.reward_weights.to(self._last_rewards_per_func.device)
                rewards = (self._last_rewards_per_func * w.unsqueeze(0)).nansum(dim=1)
                rewards[torch.isnan(self._last_rewards_per_func).all(dim=1)] = torch.nan
                adv = global_advantages(rewards)
                n = len(inputs)
                rank = self.accelerator.process_index
                out["advantages"] = adv[rank * n:(rank + 1) * n].to(out["advantages"].device)
            return out

    return MMGRPOTrainer


def train(rec: Recipe) -> str:
    """Run GRPO or REINFORCE++ for a loaded recipe; returns the output directory."""
    from datasets import Dataset
    from trl import GRPOConfig

    ctx = prepare(rec)
    records, _ = load_data(ctx, "rl")
    model, processor = load_model_for(rec)
    tok = tokenizer_of(processor)
    stats: dict = {}
    rows, kept = prompt_rows(records, processor, rec.data.max_length, stats)
    r = rec.rl
    global_norm = rec.method == "reinforce_pp"
    # a sampled image placeholder would have no pixels behind it: never generate one
    image_ids = [i for i in (getattr(processor, a, None) for a in ("image_token_id", "img_start_id", "img_end_id"))
                 if i is not None]
    gen_kwargs = {"suppress_tokens": image_ids} if image_ids else None
    args = trainer_args(ctx, GRPOConfig, generation_kwargs=gen_kwargs, include_num_input_tokens_seen="no", num_generations=r.num_generations, temperature=r.temperature,
                        top_p=r.top_p, max_completion_length=r.max_completion_length, beta=r.beta,
                        epsilon=r.epsilon, num_iterations=r.num_iterations, loss_type=r.loss_type,
                        scale_rewards="none" if global_norm else r.scale_rewards, log_completions=False)
    cls = _trainer_cls(global_norm)
    cls.samples, cls.processor, cls.blank_images = kept, processor, rec.data.blank_images
    cls.module_lrs, cls.module_freeze = dict(rec.model.lrs), dict(rec.model.freeze)
    timer = metrics_callback()
    with vlm_aware_fused_head():
        trainer = cls(model=model, reward_funcs=[reward_function(r.reward, r.reward_options)], args=args,
                      train_dataset=Dataset.from_list(rows), processing_class=tok, callbacks=[timer])
    trainer.train(resume_from_checkpoint=ctx.resume_from)
    extra = {"rl": {**stats, "advantages": "global batch (REINFORCE++)" if global_norm else
                    f"per group ({r.scale_rewards} scaling, GRPO)", "vlm": is_vlm(model)}}
    return finish(trainer, ctx, processor, timer, extra)
