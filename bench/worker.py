"""One benchmark measurement in a fresh process: a few timed SFT or DPO steps, our trainer or TRL's.

    python -m bench.worker SPEC.json OUT.json

The suites (``bench/cpu.py``, ``bench/gpu.py``) start this once per measurement, so that one run's
memory (or an out-of-memory error) never affects the next. ``SPEC`` keys (all but ``kind``, ``impl``,
``preset``, ``data`` optional):

* ``kind``: ``sft`` | ``dpo``; ``impl``: ``ours`` (``mmredstar.training.sft.build_trainer`` /
  ``dpo.build_trainer``: exactly what ``mmredstar train`` runs) or ``trl`` (TRL's ``SFTTrainer`` used
  directly: same model, same tokens and loss mask, its own packing (``bfd``, padding-free) and loss);
* ``preset``, ``model_overrides`` (``load_model`` keyword overrides), ``dtype``;
* ``data``: a sample file (SFT samples or DPO pairs, ``mmredstar.schema``); ``max_length``, ``packing``;
* ``nproc`` (> 1: launched under ``torchrun``, e.g. Ulysses with ``options: {deepspeed: zero2,
  sequence_parallel: N}``; rank 0 writes the record; tokens are the whole sequence's, over all ranks),
* ``micro_batch_size``, ``grad_accum``, ``warmup``, ``steps``, ``lr``, ``threads``, ``seed``,
  ``gradient_checkpointing``, ``bf16`` (``auto``), ``options`` (``train.*`` memory options, e.g.
  ``{"fused_linear_ce": true}``), ``work_dir``.

``OUT`` gets ``status`` (``ok`` | ``oom`` | ``error``), per step ``step_seconds`` / ``step_tokens`` /
``step_seq_lengths`` (real tokens and packed sample lengths, from the batches the collator built),
``tokens_per_s`` over the steps after ``warmup``, ``peak_memory_bytes`` (GPU: ``max_memory_allocated``;
CPU: peak RSS growth over the start of training, read from ``/proc/self/status`` VmHWM after resetting
it), ``losses``, the device and the model's parameter count.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback


def _rss_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


class Counter:
    """Wraps a data collator: records each batch's real tokens and packed sample lengths, in order."""

    def __init__(self, collator):
        self.collator = collator
        self.tokens: list[int] = []
        self.seq_lengths: list[list[int]] = []
        self.tiles: list[int] = []

    def __call__(self, features):
        lens = []
        for f in features:
            if "input_ids" not in f:  # a DPO pair: prompt + chosen and prompt + rejected
                p = len(f["prompt_ids"])
                lens += [p + len(f["chosen_ids"]), p + len(f["rejected_ids"])]
                continue
            sl = f.get("seq_lengths")
            lens += [int(x) for x in sl] if sl is not None and len(sl) else [len(f["input_ids"])]
        self.tokens.append(sum(lens))
        self.seq_lengths.append(lens)
        self.tiles.append(sum(int(t) for f in features for t in (f.get("num_tiles") or [])))
        return self.collator(features)


def _callback(cuda: bool, rec: dict):
    import torch
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            else:
                rec["cpu_peak_reset"] = _reset_peak_rss()
                rec["rss_start_kb"] = _rss_kb("VmRSS")
            self.last = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            now = time.perf_counter()
            rec["step_seconds"].append(now - self.last)
            self.last = now

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                rec["losses"].append(float(logs["loss"]))

    return Timer()


def _sft_recipe(spec: dict, data: str, out: str):
    from mmredstar.training.config import recipe_from_dict

    micro, ga = int(spec.get("micro_batch_size", 1)), int(spec.get("grad_accum", 1))
    train = {"lr": spec.get("lr", 1e-5), "max_steps": int(spec["warmup"]) + int(spec["steps"]),
             "batch_size": micro * ga, "micro_batch_size": micro, "lr_scheduler": "constant",
             "gradient_checkpointing": bool(spec.get("gradient_checkpointing", False)),
             "bf16": spec.get("bf16", "auto"), "seed": int(spec.get("seed", 0)), "progress": False,
             "logging_steps": 1, "save_steps": 0, "liger": False, "optim": spec.get("optim", "adamw_torch"),
             **(spec.get("options") or {})}
    if spec.get("threads"):
        train["num_threads"] = int(spec["threads"])
    model = {"name": spec["preset"], "overrides": dict(spec.get("model_overrides") or {})}
    if spec.get("dtype"):
        model["dtype"] = spec["dtype"]
    rec = recipe_from_dict({"method": spec["kind"], "model": model, "output_dir": out, "train": train,
                            "data": {"train": [data], "max_length": int(spec["max_length"]),
                                     "packing": bool(spec.get("packing", True)), "truncation": "truncate"}})
    rec.name = f"bench-{spec['kind']}-{spec['impl']}"
    return rec


def run_ours(spec: dict, rec_out: dict, cuda: bool):
    rec = _sft_recipe(spec, spec["data"], os.path.join(spec["work_dir"], "run"))
    timer = _callback(cuda, rec_out)
    if spec["kind"] == "sft":
        from mmredstar.training.sft import build_trainer

        trainer, _, _, ds, _ = build_trainer(rec, callbacks=[timer])
        rec_out["data"] = ds.summary()
    else:
        from mmredstar.training.dpo import build_trainer

        trainer, _, _, extra, _ = build_trainer(rec, callbacks=[timer])
        rec_out["data"] = {"pairs": extra["pairs"]}
    counter = Counter(trainer.data_collator)
    trainer.data_collator = counter
    rec_out["memory_options"] = rec_out.get("memory_options") or _memory_report(trainer.model)
    return trainer, counter


def _memory_report(model) -> dict:
    m = getattr(model, "module", model)
    from mmredstar.training.memory import language_model_of

    lm = language_model_of(m)
    return {"fused_linear_ce": bool(getattr(lm, "_mmredstar_fused_ce", False)),
            "tiled_mlp": any(getattr(x, "_mmredstar_tiled", False) for x in lm.modules()),
            "offload_activations": getattr(m, "_mmredstar_offload_stats", None) is not None,
            "varlen_attention": lm.config._attn_implementation == "sdpa_varlen"}


def run_trl(spec: dict, rec_out: dict, cuda: bool):
    """TRL's SFTTrainer on our model and our tokens (input_ids + completion_mask): its packing, its loss."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from mmredstar.io import read_samples
    from mmredstar.modeling import load_model
    from mmredstar.training.sft import encode_sft

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    kw = dict(spec.get("model_overrides") or {})
    model, processor = load_model(spec["preset"], seed=int(spec.get("seed", 0)), dtype=spec.get("dtype"), **kw)
    if processor.family == "vlm":
        raise ValueError("the TRL baseline here is text-only (TRL's SFTTrainer has no InternVL-style collator); "
                         "compare VLMs within our trainer")
    tok = processor.tokenizer
    rows = []
    for s in read_samples(spec["data"]):
        f = encode_sft(processor, s, loss_on_think=True, blank_images=False)
        rows.append({"input_ids": list(f["input_ids"]),
                     "completion_mask": [int(x != -100) for x in f["labels"]]})
    ds = Dataset.from_list(rows)
    micro, ga = int(spec.get("micro_batch_size", 1)), int(spec.get("grad_accum", 1))
    from mmredstar.training.runner import use_bf16

    args = SFTConfig(output_dir=os.path.join(spec["work_dir"], "trl"), per_device_train_batch_size=micro,
                     gradient_accumulation_steps=ga, max_steps=int(spec["warmup"]) + int(spec["steps"]),
                     learning_rate=spec.get("lr", 1e-5), lr_scheduler_type="constant", weight_decay=0.0,
                     packing=bool(spec.get("packing", True)), packing_strategy="bfd", completion_only_loss=True,
                     max_length=int(spec["max_length"]), gradient_checkpointing=bool(spec.get("gradient_checkpointing")),
                     bf16=use_bf16(spec.get("bf16", "auto")), use_cpu=not cuda, optim=spec.get("optim", "adamw_torch"), report_to="none", logging_steps=1,
                     save_strategy="no", disable_tqdm=True, seed=int(spec.get("seed", 0)), dataset_num_proc=None)
    timer = _callback(cuda, rec_out)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[timer])
    counter = Counter(trainer.data_collator)
    trainer.data_collator = counter
    packed = trainer.train_dataset
    lens = [len(x) for x in packed["input_ids"]]
    rec_out["data"] = {"samples": len(rows), "rows": len(lens), "tokens": sum(lens),
                       "packing_efficiency": round(sum(lens) / (len(lens) * int(spec["max_length"])), 4)}
    return trainer, counter


def measure(spec: dict) -> dict:
    """Run one measurement in this process and return its record (see the module docstring)."""
    import torch

    cuda = torch.cuda.is_available() and spec.get("device", "cuda") != "cpu"
    rec: dict = {"spec": spec, "status": "error", "step_seconds": [], "losses": [],
                 "device": torch.cuda.get_device_name(0) if cuda else "cpu"}
    os.makedirs(spec["work_dir"], exist_ok=True)
    t0 = time.time()
    try:
        trainer, counter = (run_ours if spec["impl"] == "ours" else run_trl)(spec, rec, cuda)
        model = getattr(trainer.model, "module", trainer.model)
        rec["params"] = sum(p.numel() for p in model.parameters())
        rec["setup_seconds"] = round(time.time() - t0, 2)
        trainer.train()
        rec["status"] = "ok"
    except torch.OutOfMemoryError as e:  # the probe's "does not fit"
        rec["status"], rec["error"] = "oom", str(e).splitlines()[0][:300]
    except MemoryError as e:
        rec["status"], rec["error"] = "oom", f"MemoryError {e}"[:300]
    except Exception as e:  # noqa: BLE001 - recorded for the suite, which reports it
        rec["error"] = f"{type(e).__name__}: {e}"[:2000]
        rec["traceback"] = traceback.format_exc()[-4000:]
    else:
        ga = int(spec.get("grad_accum", 1))
        steps = len(rec["step_seconds"])
        toks = [sum(counter.tokens[i * ga:(i + 1) * ga]) for i in range(steps)]
        lens = [sum(counter.seq_lengths[i * ga:(i + 1) * ga], []) for i in range(steps)]
        rec["step_tokens"], rec["step_seq_lengths"] = toks, lens
        rec["step_tiles"] = [sum(counter.tiles[i * ga:(i + 1) * ga]) for i in range(steps)]
        w = min(int(spec.get("warmup", 0)), max(0, steps - 1))
        secs = sum(rec["step_seconds"][w:])
        rec["timed_steps"] = steps - w
        rec["tokens_per_s"] = sum(toks[w:]) / secs if secs > 0 else None
        rec["seconds_per_step"] = secs / max(1, steps - w)
    if cuda:
        rec["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated())
        rec["device_memory_bytes"] = int(torch.cuda.get_device_properties(0).total_memory)
    else:
        hwm, start = _rss_kb("VmHWM"), rec.get("rss_start_kb")
        if hwm is not None and start is not None:
            rec["peak_memory_bytes"] = (hwm - start) * 1024
            rec["peak_rss_bytes"] = hwm * 1024
    rec["wall_seconds"] = round(time.time() - t0, 2)
    return rec


def run_in_subprocess(spec: dict, out: str, timeout: float | None = None, env: dict | None = None) -> dict:
    """Start ``python -m bench.worker`` for ``spec``; return its record (``status: timeout`` when killed)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    spec_path = out + ".spec.json"
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=1)
    e = {**os.environ, **(env or {}), "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
         "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if spec.get("device") == "cpu":
        e["CUDA_VISIBLE_DEVICES"] = ""
    if os.path.exists(out):
        os.remove(out)
    nproc = int(spec.get("nproc", 1))
    cmd = [sys.executable, "-m", "bench.worker", spec_path, out]
    if nproc > 1:  # sequence parallelism: one process per device (gloo on a CPU), rank 0 writes the record
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={port}",
               "-m", "bench.worker", spec_path, out]
        e.pop("WORLD_SIZE", None)
        if spec.get("device") == "cpu":
            e["OMP_NUM_THREADS"] = "1"
    try:
        p = subprocess.run(cmd, cwd=root, env=e, timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return {"spec": spec, "status": "timeout", "error": f"no result within {timeout} s"}
    if os.path.exists(out):
        with open(out) as f:
            return json.load(f)
    tail = (p.stderr or "")[-3000:]
    status = "oom" if p.returncode in (-9, 137) or "out of memory" in tail.lower() else "error"
    return {"spec": spec, "status": status, "error": f"worker exited {p.returncode} without a result", "stderr": tail}


def main(argv: list[str]) -> int:
    spec_path, out = argv
    with open(spec_path) as f:
        spec = json.load(f)
    rec = measure(spec)
    if int(os.environ.get("RANK", 0)) != 0:
        return 0 if rec["status"] in ("ok", "oom") else 1
    rec["world_size"] = int(os.environ.get("WORLD_SIZE", 1))
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f, indent=1, default=str)
    os.replace(tmp, out)
    return 0 if rec["status"] in ("ok", "oom") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
