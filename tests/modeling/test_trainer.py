"""The tiny VLM trains under transformers' ``Trainer`` (as the SFT/DPO/RL trainers use it): mixed batches,
gradient checkpointing, per-part LRs through ``param_groups``; then saves and reloads.

    .venv/bin/python -m pytest -q tests/modeling/test_trainer.py
"""

from __future__ import annotations

import torch

from mmredstar.modeling import load_model, param_groups
from mmredstar.schema import ImageRef, Sample


def test_trainer_accepts_the_vlm(tmp_path, make_image):
    from transformers import Trainer, TrainingArguments

    model, proc = load_model("tiny_vlm", seed=0, max_tiles=2)
    data = []
    for name, rgb in {"red": (220, 20, 20), "blue": (20, 20, 220)}.items():
        for sides in (3, 4):
            img = make_image(sides, (128, 64) if sides == 3 else (64, 64), color=rgb)
            data.append(proc.encode(Sample.with_images("Color?", [ImageRef.from_image(img)], name, "text"), name))
    data.append(proc.encode(Sample.text("Say hi.", "hi", "text"), "hi"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    class GroupTrainer(Trainer):
        def create_optimizer(self, model=None):
            self.optimizer = torch.optim.AdamW(param_groups(self.model, {"projector": 5e-3, "vision": 5e-3},
                                                            {}), lr=self.args.learning_rate)
            return self.optimizer

    args = TrainingArguments(output_dir=str(tmp_path / "run"), per_device_train_batch_size=5, max_steps=12,
                             learning_rate=3e-3, logging_steps=1, report_to=[], save_strategy="no", use_cpu=True,
                             gradient_checkpointing=True, dataloader_num_workers=0, remove_unused_columns=False,
                             lr_scheduler_type="constant")
    trainer = GroupTrainer(model=model, args=args, train_dataset=data, data_collator=proc.collate)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[-1] < losses[0] * 0.6, losses
    assert [g["lr"] for g in trainer.optimizer.param_groups][:2] == [5e-3, 5e-3]
    moved = {n.split(".")[0] for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {"vision_model", "mlp1", "language_model"}
    trainer.save_model(str(tmp_path / "out"))
    proc.save_pretrained(tmp_path / "out")
    again, _ = load_model(str(tmp_path / "out"))
    model.eval()
    again.eval()
    batch = proc.collate(data[:2])
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, again(**batch).logits)
