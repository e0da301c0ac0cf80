"""Online RL with the rule reward: GRPO on TRL's GRPOTrainer, for text models and VLMs.

Prompts are formatted by our processor (the chat template shared with SFT and evaluation; images spliced
in for VLMs); TRL samples ``rl.num_generations`` responses per prompt, scores them with the reward
(``rl.reward: rule`` = ``mmredstar.verify.reward.trl_reward_fn``: 1 verified / 0 wrong / -1 no valid
answer) and optimises its clipped policy-gradient loss. GRPO's advantages are per group:
A_i = (r_i - mean(r of the same prompt)) / std(group) (``rl.scale_rewards``: group | batch | none, TRL's
options); TRL's KL term (``rl.beta``) is a loss term, not a reward penalty.

REINFORCE++, REINFORCE++-baseline and PPO run on our own loop (``ppo.py``): REINFORCE++ as its authors and
OpenRLHF define it needs the per-token KL folded into the reward and token-level returns, which TRL's
GRPOTrainer does not have. ``prompt_rows`` and ``reward_function`` here serve both.

    mmredstar train tiny/grpo
"""

from __future__ import annotations

import json

import torch

from .config import Recipe
from .runner import (
    GroupsMixin,
    finish,
    fit,
    init_path,
    load_data,
    load_model_for,
    metrics_callback,
    prepare,
    tokenizer_of,
    trainer_args,
)
from .vlm_fused import add_fused_lm_head_mm, is_vlm, vlm_aware_fused_head

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


def _trainer_cls():
    from trl import GRPOTrainer

    class MMGRPOTrainer(GroupsMixin, GRPOTrainer):
        """TRL's GRPOTrainer with prompts (and images) encoded by our processor (and the reference scored with them)."""

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
            return out

    return MMGRPOTrainer


def frozen_copy(model):
    """A copy of ``model`` for the KL reference: eval mode, no gradients, no dropout."""
    import copy

    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    for m in ref.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return ref


def attach_reference(trainer, ref, beta: float) -> None:
    """Give a GRPO trainer built with ``beta=0`` its KL reference model and coefficient (placed like TRL's own)."""
    from trl.models import prepare_deepspeed

    # TRL patches its own reference with the fused log-prob head at init; do the same for this one
    add_fused_lm_head_mm(ref, temperature=trainer.temperature, cast_lm_head_to_fp32=trainer.args.cast_lm_head_to_fp32)
    if trainer.is_deepspeed_enabled:
        ref = prepare_deepspeed(ref, trainer.accelerator)
    else:
        ref = trainer.accelerator.prepare_model(ref, evaluation_mode=True)
    trainer.ref_model, trainer.beta = ref, beta


def train(rec: Recipe) -> str:
    """Run GRPO for a loaded recipe; returns the output directory."""
    from datasets import Dataset
    from trl import GRPOConfig

    ctx = prepare(rec)
    records, _ = load_data(ctx, "rl")
    model, processor = load_model_for(rec)
    tok = tokenizer_of(processor)
    stats: dict = {}
    rows, kept = prompt_rows(records, processor, rec.data.max_length, stats)
    r = rec.rl
    # a sampled image placeholder would have no pixels behind it: never generate one
    image_ids = [i for i in (getattr(processor, a, None) for a in ("image_token_id", "img_start_id", "img_end_id"))
                 if i is not None]
    gen_kwargs = {"suppress_tokens": image_ids} if image_ids else None
    # TRL builds the KL reference by reloading the policy from its config's path, which our VLMs cannot do:
    # for them the trainer is built without KL and handed a frozen copy of the starting policy (below)
    own_ref = r.beta != 0.0 and is_vlm(model)
    ref = frozen_copy(model) if own_ref else None
    args = trainer_args(ctx, GRPOConfig, generation_kwargs=gen_kwargs, include_num_input_tokens_seen="no", num_generations=r.num_generations, temperature=r.temperature,
                        top_p=r.top_p, max_completion_length=r.max_completion_length, beta=0.0 if own_ref else r.beta,
                        epsilon=r.epsilon, num_iterations=r.num_iterations, loss_type=r.loss_type,
                        scale_rewards=r.scale_rewards, log_completions=False)
    cls = _trainer_cls()
    cls.samples, cls.processor, cls.blank_images = kept, processor, rec.data.blank_images
    cls.module_lrs, cls.module_freeze = dict(rec.model.lrs), dict(rec.model.freeze)
    timer = metrics_callback()
    with vlm_aware_fused_head():
        trainer = cls(model=model, reward_funcs=[reward_function(r.reward, r.reward_options)], args=args,
                      train_dataset=Dataset.from_list(rows), processing_class=tok, callbacks=[timer])
    if own_ref:
        attach_reference(trainer, ref, r.beta)
    fit(trainer, ctx)
    extra = {"rl": {**stats, "advantages": f"per group ({r.scale_rewards} scaling, GRPO)", "vlm": is_vlm(model),
                    "init": init_path(rec) or rec.model.name}}
    return finish(trainer, ctx, processor, timer, extra)
