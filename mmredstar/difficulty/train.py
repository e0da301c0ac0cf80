"""Train a difficulty scorer and report its agreement with held-out labels.

    mmredstar difficulty train configs/difficulty/tiny.yaml                    # tiny CPU scorer, seconds
    mmredstar difficulty train configs/difficulty/qwen2_5_7b_math_omni.yaml    # the paper's: Qwen2.5-7B-Instruct
    torchrun --nproc_per_node 8 -m mmredstar.difficulty.train configs/difficulty/qwen2_5_7b_math_omni.yaml

Python::

    from mmredstar.difficulty.train import train
    report = train("configs/difficulty/tiny.yaml", ["out=runs/d"])   # the eval.json content

Reads top to bottom: load the labelled problems (mapped onto 1-10) and split off the held-out set, build
the model (backbone + new head), train with the transformers ``Trainer``, save the scorer, then predict
the held-out problems and compare with their labels and with the best constant predictor. Outputs in
``out``: the scorer (``config.json``, weights, tokenizer, ``scorer.json``), ``metrics.json`` (loss series,
steps, runtime, how far the weights moved), ``eval.json`` (``model`` and ``constant`` agreement: exact,
within 1 and 2 bands, MAE, Spearman; per source), ``predictions.jsonl`` (id, label, prediction),
``confusion.png``, ``loss.png``. A rerun of the same config does nothing (``fresh=True`` retrains).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from mmredstar.io import write_json
from mmredstar.training.runner import deepspeed_config, dist_env, grad_accumulation, use_bf16

from ..data.inputs import input_files
from ..levels import band
from ..stages import Marker, asset_sha256, fingerprint, sha256_file
from .config import DifficultyTrainConfig, load_config
from .data import Item, labelled_items, split_items
from .metrics import agreement, constant_baseline
from .model import NUM_BANDS, SCORER_FILE, Scorer, build_scorer_model

log = logging.getLogger(__name__)

SCORER_VERSION = 1


def config_hash(cfg: DifficultyTrainConfig) -> str:
    """What decides the trained scorer (every key but ``progress``)."""
    d = cfg.to_dict()
    d.pop("progress", None)
    return fingerprint({"v": SCORER_VERSION, **d})


def weights_sha256(out: str | os.PathLike) -> str:
    """One hash over the scorer's weight files (``*.safetensors`` / ``*.bin``), in name order."""
    files = sorted(Path(out).glob("*.safetensors")) + sorted(Path(out).glob("*.bin"))
    return fingerprint([[p.name, sha256_file(p)] for p in files])


def _train_marker(cfg: DifficultyTrainConfig) -> tuple[Marker, str, list[str]]:
    """The scorer's "trained" marker, its fingerprint (the config, the model preset's and data cards' files) and
    the input files it was trained from."""
    specs = cfg.inputs + cfg.eval_inputs
    fp = fingerprint({"config": config_hash(cfg), "model": asset_sha256("models", cfg.model),
                      "cards": [asset_sha256("data_cards", s.card) for s in specs if isinstance(s.card, str)]})
    return Marker(Path(cfg.out) / "stage.json"), fp, [p for s in specs for p in input_files(s)]


class _Encoded:
    """A torch-style dataset of tokenised problems with their targets."""

    def __init__(self, items: list[Item], tokenizer, max_length: int, head: str):
        self.rows = []
        for it in items:
            enc = tokenizer(it.text, truncation=True, max_length=max_length)
            target = float(it.label) if head == "regression" else band(it.label, clip=True) - 1
            self.rows.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": target})

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def _log(msg: str) -> None:
    log.info(f"[difficulty] {msg}")


def _snapshot(model, limit: int = 50_000_000):
    n = sum(p.numel() for p in model.parameters())
    if n > limit:
        return None
    return {k: v.detach().clone().float() for k, v in model.state_dict().items()}


def _moved(model, before) -> dict | None:
    """L2 distance of the weights from their initial values: the whole model, the backbone, the head."""
    if before is None:
        return None
    import torch

    tot = {"all": 0.0, "backbone": 0.0, "head": 0.0}
    for k, v in model.state_dict().items():
        if k not in before:
            continue
        d = float(torch.sum((v.detach().float().cpu() - before[k].cpu()) ** 2))
        tot["all"] += d
        tot["head" if k.startswith("score") else "backbone"] += d
    return {k: round(v ** 0.5, 6) for k, v in tot.items()}


def train(config, overrides: list[str] | dict | None = None, *, fresh: bool = False) -> dict:
    """Train the scorer a config describes; returns the held-out report (``eval.json``)."""
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    cfg = load_config(config, overrides)
    out = Path(cfg.out)
    chash = config_hash(cfg)
    marker, fp, input_paths = _train_marker(cfg)
    if not fresh and marker.check(fp, input_paths) is not None:
        _log(f"up to date: {out} (same config and inputs; fresh=True / --fresh retrains)")
        report = json.loads((out / "eval.json").read_text(encoding="utf-8"))
        return report
    rank, world = dist_env()
    is_main = rank == 0
    if is_main:
        marker.clear()   # retraining: the old scorer is no longer "done" until this run finishes
    t = cfg.train
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    if not cfg.progress:
        os.environ.setdefault("TQDM_DISABLE", "1")

    # 1. data: labelled problems on the 1-10 scale; the held-out split
    counts: dict = {}
    items = labelled_items(cfg.inputs, cfg.template, counts)
    if cfg.eval_inputs:
        train_items, held = items, labelled_items(cfg.eval_inputs, cfg.template, counts)
    else:
        train_items, held = split_items(items, cfg.eval_fraction, cfg.seed)
    if not train_items:
        raise ValueError(f"{cfg.out}: no labelled training problems (read: {counts}); check the inputs' label/map")
    if not held:
        raise ValueError("no held-out problems: raise eval_fraction or give eval_inputs")
    _log(f"{len(train_items)} training and {len(held)} held-out problems ({counts})")

    # 2. model: the backbone's transformer + a new head
    model, tok = build_scorer_model(cfg.model, head=cfg.head, seed=cfg.seed, dtype=cfg.dtype)
    before = _snapshot(model)
    ds = _Encoded(train_items, tok, cfg.max_length, cfg.head)

    # 3. train
    args = TrainingArguments(
        output_dir=str(out / "trainer"), per_device_train_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=grad_accumulation(t.batch_size, t.micro_batch_size, world, 1),
        learning_rate=t.lr, num_train_epochs=t.epochs, max_steps=t.max_steps, lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio, weight_decay=t.weight_decay, seed=cfg.seed, data_seed=cfg.seed,
        bf16=use_bf16(t.bf16 if t.bf16 in (True, False) else "auto"), gradient_checkpointing=t.gradient_checkpointing,
        deepspeed=deepspeed_config(t.deepspeed), logging_steps=t.logging_steps, logging_first_step=True,
        save_strategy="no", report_to="none", disable_tqdm=not cfg.progress, remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(), **({"ddp_backend": "gloo"} if world > 1 and not torch.cuda.is_available() else {}),
        **t.extra_args)
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=DataCollatorWithPadding(tok))
    t0 = time.time()
    trainer.train()
    seconds = time.time() - t0
    model = trainer.model
    trainer.save_model(str(out))
    if not is_main:
        return {}
    try:
        (out / "trainer").rmdir()   # the Trainer's working dir (no checkpoints are kept)
    except OSError:
        pass

    # 4. save the scorer
    tok.save_pretrained(str(out))
    info = {"head": cfg.head, "num_labels": NUM_BANDS if cfg.head == "classification" else 1,
            "scale": "1-10 (Sample.difficulty; mmredstar.levels)", "template": cfg.template,
            "max_length": cfg.max_length, "base_model": cfg.model, "config_sha256": chash,
            "weights_sha256": weights_sha256(out), "config": cfg.to_dict(), "version": SCORER_VERSION}
    write_json(out / SCORER_FILE, info)
    hist = trainer.state.log_history
    losses = [[h["step"], h["loss"]] for h in hist if isinstance(h.get("loss"), (int, float))]
    metrics = {"steps": trainer.state.global_step, "first_loss": losses[0][1] if losses else None,
               "last_loss": losses[-1][1] if losses else None, "runtime_s": round(seconds, 2),
               "train_records": len(train_items), "eval_records": len(held), "inputs": counts,
               "weights_moved": _moved(model, before), "series": {"loss": losses}}
    write_json(out / "metrics.json", metrics)

    # 5. held-out agreement vs the constant predictor
    scorer = Scorer(model, tok, info, str(out))
    preds = scorer.predict([it.text for it in held], batch_size=max(8, t.micro_batch_size * 4))
    gold = [it.label for it in held]
    pv = [p for p, _ in preds]
    train_labels = [it.label for it in train_items]
    report = {
        "scorer": str(out), "head": cfg.head, "base_model": cfg.model, "n_train": len(train_items), "n_eval": len(held),
        "held_out": "eval_inputs" if cfg.eval_inputs else f"{cfg.eval_fraction:g} of inputs by seeded id hash (seed {cfg.seed})",
        "scale": info["scale"], "model": agreement(pv, gold), "constant": constant_baseline(train_labels, gold, cfg.head),
        "per_source": {},
    }
    for name in dict.fromkeys(it.source for it in held):
        idx = [i for i, it in enumerate(held) if it.source == name]
        g = [gold[i] for i in idx]
        report["per_source"][name] = {"model": agreement([pv[i] for i in idx], g),
                                      "constant": constant_baseline(train_labels, g, cfg.head)}
    m, c = report["model"], report["constant"]
    report["beats_constant"] = {"exact": m["exact"] > c["exact"], "within_1": m["within_1"] > c["within_1"],
                                "mae": m["mae"] < c["mae"]}
    write_json(out / "eval.json", report)
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as f:
        for it, (p, meta) in zip(held, preds, strict=True):
            f.write(json.dumps({"id": it.id, "source": it.source, "label": it.label, "prediction": p, **meta}) + "\n")
    _plots(out, losses, gold, pv)
    marker.mark(fp, input_paths, {"scorer": out / SCORER_FILE, "eval": out / "eval.json", "metrics": out / "metrics.json"})
    return report


def summary(report: dict) -> str:
    """The held-out agreement table (scorer vs constant predictor), as printed after training."""
    def row(name, m):
        sp = "-" if m.get("spearman") is None else f"{m['spearman']:.3f}"
        return f"{name:28s} {m['exact']:>6.3f} {m['within_1']:>9.3f} {m['within_2']:>9.3f} {m['mae']:>6.2f} {sp:>9s}"

    lines = [f"held-out agreement on the 1-10 scale ({report['n_eval']} problems; trained on {report['n_train']})",
             f"{'':28s} {'exact':>6s} {'within 1':>9s} {'within 2':>9s} {'MAE':>6s} {'Spearman':>9s}",
             row("scorer", report["model"]), row(f"constant ({report['constant']['value']:g})", report["constant"])]
    if len(report.get("per_source", {})) > 1:
        for name, r in report["per_source"].items():
            lines.append(row(f"  {name} (n={r['model']['n']})", r["model"]))
    return "\n".join(lines)


def _plots(out: Path, losses, gold, pred) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # plots are a convenience
        return
    if losses:
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot(*zip(*losses, strict=True))
        ax.set_xlabel("step")
        ax.set_title("difficulty scorer loss")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "loss.png", dpi=90)
        plt.close(fig)
    grid = [[0] * NUM_BANDS for _ in range(NUM_BANDS)]
    for g, p in zip(gold, pred, strict=True):
        grid[band(g, clip=True) - 1][band(p, clip=True) - 1] += 1
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(grid, cmap="Blues", origin="lower")
    for i in range(NUM_BANDS):
        for j in range(NUM_BANDS):
            if grid[i][j]:
                ax.text(j, i, grid[i][j], ha="center", va="center", fontsize=7)
    ax.set_xticks(range(NUM_BANDS), [str(i + 1) for i in range(NUM_BANDS)])
    ax.set_yticks(range(NUM_BANDS), [str(i + 1) for i in range(NUM_BANDS)])
    ax.set_xlabel("predicted band")
    ax.set_ylabel("label band")
    ax.set_title("held-out difficulty")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":   # torchrun --nproc_per_node N -m mmredstar.difficulty.train CONFIG [KEY=VALUE ...]
    if len(sys.argv) < 2:
        sys.exit("usage: python -m mmredstar.difficulty.train CONFIG.yaml [KEY=VALUE ...]")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(summary(train(sys.argv[1], sys.argv[2:])))
