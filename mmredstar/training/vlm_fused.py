"""Let TRL's fused log-prob head run on our vision-language model.

TRL's DPO and GRPO trainers patch the policy (and reference) with ``add_fused_lm_head`` and then call
``model(..., labels=..., fused_lm_head=True)``: the patched forward runs the model's *backbone*
(``model.base_model``) to hidden states and scores the labels through the LM head in chunks. Our VLM is
its own backbone (empty ``base_model_prefix``), so for it we apply TRL's ``add_fused_lm_head`` to the
*language model* and route the fused call there, with the images spliced into the token embeddings by
``model.embed``. Everything else (the chunked log-probs, the losses) stays TRL's. Other models go
through TRL's function unchanged.

    from mmredstar.training.vlm_fused import vlm_aware_fused_head
    with vlm_aware_fused_head():
        trainer = DPOTrainer(...)           # or GRPOTrainer(...)
"""

from __future__ import annotations

import contextlib
import functools
import types


def is_vlm(model) -> bool:
    """Our VisionLanguageModel (or one shaped like it): an ``embed`` method and a ``language_model``."""
    return hasattr(model, "embed") and hasattr(model, "language_model")


def add_fused_lm_head_mm(model, **kwargs) -> None:
    """TRL's ``add_fused_lm_head`` for text models; for a VLM, the same applied to its language model."""
    from trl.trainer.utils import add_fused_lm_head

    target = getattr(model, "module", model)  # a DeepSpeed engine wraps the model
    if not is_vlm(target):
        add_fused_lm_head(model, **kwargs)
        return
    add_fused_lm_head(target.language_model, **kwargs)
    cls_forward = type(target).forward

    @functools.wraps(cls_forward)  # generate() validates its kwargs against forward's signature
    def forward(self, *args, fused_lm_head=False, **kw):
        if not fused_lm_head:
            return cls_forward(self, *args, **kw)
        input_ids = kw.pop("input_ids", args[0] if args else None)
        embeds = self.embed(input_ids, kw.pop("pixel_values", None), kw.pop("image_flags", None),
                            kw.pop("num_tiles", None))
        for k in ("image_spans", "num_images"):
            kw.pop(k, None)
        return self.language_model(inputs_embeds=embeds, fused_lm_head=True, **kw)

    target.forward = types.MethodType(forward, target)


@contextlib.contextmanager
def vlm_aware_fused_head():
    """While building a TRL DPO/GRPO trainer, use ``add_fused_lm_head_mm`` in place of TRL's function."""
    from trl.trainer import dpo_trainer, grpo_trainer

    saved = dpo_trainer.add_fused_lm_head, grpo_trainer.add_fused_lm_head
    dpo_trainer.add_fused_lm_head = grpo_trainer.add_fused_lm_head = add_fused_lm_head_mm
    try:
        yield
    finally:
        dpo_trainer.add_fused_lm_head, grpo_trainer.add_fused_lm_head = saved
