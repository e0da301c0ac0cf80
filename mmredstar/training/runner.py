"""What every training method shares: the run directory, model loading, Trainer arguments, metrics.

Each method (``sft.py``, ``dpo.py``, ``rl.py``) reads top to bottom with these helpers:
``prepare`` (output dir, seed, threads, resolved recipe) -> ``load_data`` -> ``load_model_for`` ->
``trainer_args`` -> the trainer -> ``finish`` (final weights + processor, ``metrics.json``, the data
manifest, ``loss.png``). Launch-agnostic: one process, or many under ``torchrun`` / ``accelerate launch``
/ ``deepspeed`` (ranks are read from the environment, as transformers does).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field

from mmredstar.assets import asset_dir
from mmredstar.cpu import set_threads
from mmredstar.io import write_json

from .config import Recipe, dump_recipe, load_recipe
from .data import DataFile, load_records, manifest, records_per_file, resolve_data, write_manifest

log = logging.getLogger(__name__)

REPO_DEEPSPEED = "deepspeed"  # train/deepspeed/<name>.json


@dataclass
class RunContext:
    """Where a run writes and who this process is."""

    rec: Recipe
    output_dir: str
    data_dir: str
    rank: int = 0
    world_size: int = 1
    resume_from: str | None = None
    started: float = field(default_factory=time.time)
    files: list[DataFile] = field(default_factory=list)
    eval_files: list[DataFile] = field(default_factory=list)
    manifest_entries: list[dict] = field(default_factory=list)
    extra_metrics: dict = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_env() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment (torchrun, accelerate, deepspeed)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0))), int(os.environ.get("WORLD_SIZE", 1))


def prepare(rec: Recipe) -> RunContext:
    """Create the output dir, set threads and seeds, write ``recipe.resolved.yaml``, find the checkpoint to resume."""
    import torch
    from transformers import set_seed

    rank, world = dist_env()
    out = rec.output_dir or os.path.join("runs", rec.name or "run")
    rec.output_dir = out
    set_threads(rec.train.num_threads, what="train.num_threads")
    set_seed(rec.train.seed)
    random.seed(rec.train.seed)
    ctx = RunContext(rec=rec, output_dir=out, data_dir=os.path.join(out, "data"), rank=rank, world_size=world)
    os.makedirs(out, exist_ok=True)
    if ctx.is_main:
        from mmredstar.io import atomic_write

        with atomic_write(os.path.join(out, "recipe.resolved.yaml")) as f:
            f.write(dump_recipe(rec))
    if rec.train.resume:
        ctx.resume_from = last_checkpoint(out)
        if ctx.resume_from is None and ctx.is_main:
            log.info(f"[train] resume requested but {out} holds no complete checkpoint: starting from scratch")
    if os.environ.get("TQDM_DISABLE") is None and not rec.train.progress:
        os.environ["TQDM_DISABLE"] = "1"
    return ctx


def last_checkpoint(out: str) -> str | None:
    """The newest complete ``checkpoint-N`` in ``out``: one whose ``trainer_state.json`` (the Trainer writes
    it last, after weights, optimiser, scheduler and RNG state) exists and parses. A checkpoint cut short
    by a kill is skipped, so a resume falls back to the one before it."""
    if not os.path.isdir(out):
        return None
    cands = []
    for name in os.listdir(out):
        if name.startswith("checkpoint-") and name[len("checkpoint-"):].isdigit():
            p = os.path.join(out, name)
            try:
                with open(os.path.join(p, "trainer_state.json"), encoding="utf-8") as f:
                    json.load(f)
            except (OSError, ValueError):
                continue
            cands.append((int(name[len("checkpoint-"):]), p))
    return max(cands)[1] if cands else None


# keys a resume may change freely: where and how the run is shown, not what it computes
RESUME_FREE = ("train.resume", "train.resume_changes", "train.overwrite", "train.progress", "train.num_threads",
               "train.dataloader_num_workers", "train.report_to", "train.logging_steps", "output_dir")
RUN_FILES = ("metrics.json", "loss.png", "data_manifest.json", "mixture_manifest.json")


def _flat(d, prefix=""):
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def recipe_changes(rec: Recipe, resolved_path: str) -> list[str]:
    """``key: old -> new`` for each recipe key that differs from the run's ``recipe.resolved.yaml``."""
    import yaml

    try:
        with open(resolved_path, encoding="utf-8") as f:
            old = _flat(yaml.safe_load(f))
    except (OSError, yaml.YAMLError):
        return []
    new = _flat(yaml.safe_load(yaml.safe_dump(rec.to_dict(), allow_unicode=True)))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
            if k not in RESUME_FREE and old.get(k) != new.get(k)]


def check_output_dir(rec: Recipe, out: str) -> bool:
    """What a run may do with ``out`` before it writes anything there; True = the run is already finished.

    - a finished run (``metrics.json``) or checkpoints, no ``train.resume``: refused unless ``train.overwrite``,
      which removes the checkpoints and the run's files first;
    - ``train.resume`` with a recipe that differs from the run's ``recipe.resolved.yaml``: refused, naming the
      keys, unless ``train.resume_changes``;
    - ``train.resume`` of a finished run with the same recipe: nothing to do (True).
    """
    import shutil

    t = rec.train
    finished = os.path.exists(os.path.join(out, "metrics.json"))
    ckpts = [n for n in (os.listdir(out) if os.path.isdir(out) else [])
             if n.startswith("checkpoint-") and n[len("checkpoint-"):].isdigit()]
    if not (finished or ckpts):
        return False
    what = "a finished run (metrics.json)" if finished else f"checkpoints of an unfinished run ({', '.join(sorted(ckpts))})"
    if not t.resume:
        if not t.overwrite:
            raise ValueError(f"output_dir {out} holds {what}; pass --resume to continue it, --overwrite "
                             "(train.overwrite=true) to replace it, or choose another output_dir")
        if dist_env()[0] == 0:
            for n in ckpts:
                shutil.rmtree(os.path.join(out, n), ignore_errors=True)
            for n in RUN_FILES:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(out, n))
            log.info("train.overwrite: removed %s from %s", what, out)
        return False
    changes = recipe_changes(rec, os.path.join(out, "recipe.resolved.yaml"))
    if changes and not t.resume_changes:
        raise ValueError(f"--resume of {out}: the recipe differs from the one the run started with "
                         f"({out}/recipe.resolved.yaml): {'; '.join(changes)}. Resume with the same recipe, or pass "
                         "train.resume_changes=true to continue under the new values deliberately "
                         "(--overwrite starts afresh)")
    if changes:
        log.warning("resuming %s with changed keys (train.resume_changes=true): %s", out, "; ".join(changes))
    if finished and not changes:
        print(f"[train] {out}: already finished ({what}); nothing to do (--overwrite trains it again)")
        return True
    return False


def fit(trainer, ctx: RunContext) -> None:
    """``trainer.train``, resuming from ``ctx.resume_from``; a checkpoint that already holds the last step (a kill
    between it and the final save) is loaded as it is instead of trained past ``max_steps``."""
    ck = ctx.resume_from
    if ck:
        with open(os.path.join(ck, "trainer_state.json"), encoding="utf-8") as f:
            st = json.load(f)
        last = trainer.args.max_steps if trainer.args.max_steps > 0 else st.get("max_steps", 0)
        if last > 0 and st.get("global_step", 0) >= last:
            from transformers.trainer_callback import TrainerState

            trainer._load_from_checkpoint(ck)
            trainer.state = TrainerState.load_from_json(os.path.join(ck, "trainer_state.json"))
            if ctx.is_main:
                print(f"[train] {ck} already holds step {st['global_step']} of {last}: saving it as the final "
                      "model, no further training")
            return
    trainer.train(resume_from_checkpoint=ck)


def load_data(ctx: RunContext, kind: str):
    """Resolve and read the recipe's training data (and eval data); records are checked for ``kind``."""
    d = ctx.rec.data
    ctx.files = resolve_data(d.train, root=d.root, work_dir=ctx.data_dir)
    if d.mixture:  # draw the mixture into data/mixture.jsonl; its manifest goes beside the checkpoint
        from mmredstar.data.mixture import draw_mixture

        mix = os.path.join(ctx.data_dir, "mixture.jsonl")
        draw_mixture(d.mixture, mix, total=d.mixture_total, seed=d.mixture_seed,
                     resolve=lambda spec: [f.path for f in resolve_data([spec], root=d.root, work_dir=ctx.data_dir)],
                     manifest_path=os.path.join(ctx.output_dir, "mixture_manifest.json") if ctx.is_main else None)
        ctx.files = [DataFile(mix, "mixture")] + ctx.files
    records = load_records(ctx.files, kind=kind, image_root=d.image_root, limit=d.limit)
    ctx.manifest_entries = manifest(ctx.files, records_per_file(records), "train")
    eval_records = None
    if d.eval:
        ctx.eval_files = resolve_data(d.eval, root=d.root, work_dir=ctx.data_dir)
        eval_records = load_records(ctx.eval_files, kind=kind, image_root=d.image_root)
        ctx.manifest_entries += manifest(ctx.eval_files, records_per_file(eval_records), "eval")
    if ctx.is_main:
        write_manifest(os.path.join(ctx.output_dir, "data_manifest.json"), ctx.manifest_entries)
    return records, eval_records


def load_model_for(rec: Recipe):
    """``mmredstar.modeling.load_model`` with the recipe's model overrides: (model, processor)."""
    from mmredstar.modeling import load_model

    m = rec.model
    kw = dict(m.overrides)
    for k in ("dtype", "attn_implementation", "rope_scaling", "max_position_embeddings"):
        v = getattr(m, k)
        if v is not None:
            kw[k] = v
    kw.setdefault("seed", rec.train.seed if m.seed is None else m.seed)
    model, processor = load_model(init_path(rec) or m.name, **kw)
    if m.freeze:
        from mmredstar.modeling import param_groups

        param_groups(model, m.lrs or {}, m.freeze)  # sets requires_grad=False on frozen modules
    return model, processor


def init_path(rec: Recipe) -> str | None:
    """The output dir of ``model.init_from``'s recipe, or None; an error says which command makes it."""
    src = rec.model.init_from
    if not src:
        return None

    other = load_recipe(src)
    out = other.output_dir or os.path.join("runs", other.name or src)
    if not os.path.exists(os.path.join(out, "config.json")) and rec.model.init_build:
        if dist_env()[1] > 1:
            raise ValueError(f"model.init_from={src!r}: {out} holds no trained model yet and model.init_build "
                             f"runs in one process only; run `mmredstar train {src}` first")
        log.info(f"[train] model.init_from={src}: {out} holds no trained model yet; training it first")
        from . import run

        run(other)
    if not os.path.exists(os.path.join(out, "config.json")):
        raise ValueError(f"model.init_from={src!r}: {out} holds no trained model yet; run `mmredstar train {src}` "
                         "first (or set model.init_from=null to start from the preset)")
    return out


def tokenizer_of(processor):
    return getattr(processor, "tokenizer", processor)


def deepspeed_config(name: str | None) -> str | None:
    """A shipped DeepSpeed config (``zero2``, ``zero3``) or a path to a JSON file."""
    if not name:
        return None
    if importlib.util.find_spec("deepspeed") is None:
        raise ValueError(f"train.deepspeed={name}: DeepSpeed is not installed; pip install 'mmredstar[deepspeed]' "
                         "(scripts/setup.sh installs it unless MMREDSTAR_NO_DEEPSPEED=1), or drop train.deepspeed")
    if os.path.exists(name):
        return name

    p = asset_dir("train") / REPO_DEEPSPEED / (name if name.endswith(".json") else name + ".json")
    if not p.exists():
        avail = sorted(x.stem for x in (asset_dir("train") / REPO_DEEPSPEED).glob("*.json"))
        raise ValueError(f"train.deepspeed: no config {name!r}; use one of {avail} or a path to a JSON file")
    return str(p)


def use_bf16(flag) -> bool:
    import torch

    if flag == "auto":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return bool(flag)


def use_liger(flag) -> bool:
    import torch

    have = importlib.util.find_spec("liger_kernel") is not None and torch.cuda.is_available()
    if flag is True and not have:
        raise ValueError("train.liger=true needs the liger-kernel package and a CUDA GPU "
                         "(pip install 'mmredstar[liger]'), or set train.liger=auto")
    return have if flag == "auto" else bool(flag)


def grad_accumulation(batch_size: int, micro: int, world: int, sp: int) -> int:
    """Accumulation steps so that micro x accumulation x data-parallel ranks == batch_size.

    >>> grad_accumulation(64, 1, 8, 1)
    8
    >>> grad_accumulation(8, 2, 2, 2)
    4
    """
    dp = max(1, world // max(1, sp))
    per_step = micro * dp
    if batch_size % per_step:
        raise ValueError(f"train.batch_size={batch_size} is not a multiple of micro_batch_size x data-parallel ranks "
                         f"= {micro} x {dp}; change train.batch_size or train.micro_batch_size")
    return batch_size // per_step


def trainer_args(ctx: RunContext, args_cls=None, **method_kwargs):
    """``TrainingArguments`` (or a TRL config class) from the recipe's ``train`` section."""
    import torch
    from transformers import TrainingArguments

    t = ctx.rec.train
    args_cls = args_cls or TrainingArguments
    sp = t.sequence_parallel
    kw = dict(
        output_dir=ctx.output_dir,
        per_device_train_batch_size=t.micro_batch_size,
        per_device_eval_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=grad_accumulation(t.batch_size, t.micro_batch_size, ctx.world_size, sp),
        learning_rate=t.lr,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=t.optim,
        seed=t.seed,
        data_seed=t.seed,
        bf16=use_bf16(t.bf16),
        # offload_activations turns checkpointing on itself (memory.py); the Trainer must not replace it
        gradient_checkpointing=t.gradient_checkpointing and not t.offload_activations,
        use_liger_kernel=use_liger(t.liger),
        deepspeed=deepspeed_config(t.deepspeed),
        logging_steps=t.logging_steps,
        logging_first_step=True,
        save_strategy="steps" if t.save_steps > 0 else "no",
        save_steps=t.save_steps if t.save_steps > 0 else 500,
        save_total_limit=t.save_total_limit,
        report_to=list(t.report_to) or "none",
        disable_tqdm=not t.progress,
        dataloader_num_workers=t.dataloader_num_workers,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        use_cpu=not torch.cuda.is_available(),
    )
    if not torch.cuda.is_available() and ctx.world_size > 1:
        kw["ddp_backend"] = "gloo"
    if ctx.rec.data.eval:
        kw["eval_strategy"] = "steps" if t.eval_steps > 0 else "no"
        if t.eval_steps > 0:
            kw["eval_steps"] = t.eval_steps
    if sp > 1:
        import deepspeed
        from accelerate.parallelism_config import ParallelismConfig

        # Ulysses registers its process groups before DeepSpeed's engine starts: bring up deepspeed.comm now
        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
        from accelerate.utils import DeepSpeedSequenceParallelConfig

        attn = ctx.rec.model.attn_implementation or "sdpa"
        kw["parallelism_config"] = ParallelismConfig(
            sp_backend="deepspeed", sp_size=sp,
            sp_handler=DeepSpeedSequenceParallelConfig(sp_seq_length_is_variable=True, sp_attn_implementation=attn))
    kw.update(method_kwargs)
    kw.update(t.extra_args)
    return args_cls(**kw)


class GroupsMixin:
    """Trainer mixin: per-module learning rates from ``model.lrs`` through ``modeling.param_groups``."""

    module_lrs: dict = {}
    module_freeze: dict = {}

    def create_optimizer(self, model=None):
        if not self.module_lrs:
            return super().create_optimizer(model) if model is not None else super().create_optimizer()
        from mmredstar.modeling import param_groups

        opt_model = self.model
        groups = param_groups(opt_model, {**self.module_lrs}, self.module_freeze,
                              weight_decay=self.args.weight_decay or None)
        for g in groups:
            g.setdefault("lr", self.args.learning_rate)
            g.setdefault("weight_decay", 0.0)
        cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        kwargs.pop("lr", None)
        self.optimizer = cls(groups, **kwargs)
        return self.optimizer


def metrics_callback():
    from transformers import TrainerCallback

    class _Timer(TrainerCallback):
        """Counts wall time spent in this process's training loop (for tokens/s)."""

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.time()
            self.tokens0 = state.num_input_tokens_seen

        def on_train_end(self, args, state, control, **kw):
            self.seconds = time.time() - self.t0
            self.tokens = state.num_input_tokens_seen - self.tokens0

    return _Timer()


def _series(log_history: list[dict], key: str) -> list[list[float]]:
    return [[h["step"], h[key]] for h in log_history if key in h and isinstance(h[key], (int, float))
            and not (isinstance(h[key], float) and math.isnan(h[key]))]


TRACKED = {
    "sft": ["loss"],
    "dpo": ["loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected"],
    "grpo": ["loss", "reward", "reward_std", "kl"],
    "reinforce_pp": ["loss", "reward", "reward_std", "kl", "response_length"],
    "reinforce_baseline": ["loss", "reward", "reward_std", "kl", "response_length"],
    "ppo": ["loss", "reward", "reward_std", "kl", "value_loss", "policy_loss", "response_length"],
}


def finish(trainer, ctx: RunContext, processor, timer=None, extra: dict | None = None) -> str:
    """Save final weights + processor and write ``metrics.json``, ``loss.png`` beside them. Returns the dir."""
    out = ctx.output_dir
    model = trainer.model
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "use_cache"):
        cfg.use_cache = True
    trainer.save_model(out)
    if ctx.is_main:
        if hasattr(processor, "save_pretrained"):
            processor.save_pretrained(out)
        hist = trainer.state.log_history
        method = ctx.rec.method
        series = {k: _series(hist, k) for k in TRACKED.get(method, ["loss"])}
        losses = series.get("loss") or []
        m = {
            "method": method,
            "recipe": ctx.rec.name,
            "model": ctx.rec.model.name,
            "output_dir": os.path.abspath(out),
            "steps": trainer.state.global_step,
            "max_steps": trainer.state.max_steps,
            "epochs": trainer.state.epoch,
            "first_loss": losses[0][1] if losses else None,
            "last_loss": losses[-1][1] if losses else None,
            "resumed_from": ctx.resume_from,
            "world_size": ctx.world_size,
            "device": _device_name(),
            "train_records": sum(e["records"] for e in ctx.manifest_entries if e["role"] == "train"),
        }
        if timer is not None and getattr(timer, "seconds", None):
            m["runtime_s"] = round(timer.seconds, 3)
            m["tokens_seen"] = int(timer.tokens)
            m["tokens_per_s"] = round(timer.tokens / timer.seconds, 1) if timer.seconds > 0 else None
        for k, s in series.items():
            if k != "loss" and s:
                m[f"first_{k}"] = s[0][1]
                m[f"last_{k}"] = s[-1][1]
        m.update(extra or {})
        m.update(ctx.extra_metrics)
        m["series"] = series
        write_json(os.path.join(out, "metrics.json"), m)
        _plot(series, os.path.join(out, "loss.png"), f"{ctx.rec.name or ''} ({method})")
        log.info(f"[train] {method}: {m['steps']} steps, loss {m['first_loss']} -> {m['last_loss']}; saved to {out}")
    _barrier(ctx)
    return out


def _barrier(ctx: RunContext):
    import torch.distributed as dist

    if ctx.world_size > 1 and dist.is_available() and dist.is_initialized():
        dist.barrier()


def _device_name() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _plot(series: dict, path: str, title: str) -> None:
    """``loss.png``: the training loss (and the method's reward / accuracy) against the step."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # plotting is a convenience; never fail a run on it
        return
    keys = [k for k, v in series.items() if v and k in ("loss", "reward", "rewards/accuracies", "rewards/margins")]
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
    for ax, k in zip(axes[0], keys, strict=True):
        xs, ys = zip(*series[k], strict=True)
        ax.plot(xs, ys, marker="." if len(xs) < 50 else None)
        ax.set_xlabel("step")
        ax.set_title(k)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def read_metrics(output_dir: str) -> dict:
    with open(os.path.join(output_dir, "metrics.json"), encoding="utf-8") as f:
        return json.load(f)
