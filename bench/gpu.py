"""Benchmark suite ``gpu``: SFT throughput, MFU, peak memory and the longest trainable sequence on one GPU,
our long-context settings against TRL's SFTTrainer in the same run, an ablation ladder, DPO step speed.

    python -m bench gpu                       # the full plan (resumable: rerun until nothing is pending)
    python -m bench.gpu --budget 540          # stop starting measurements after 540 s; rerun to go on
    python -m bench.gpu --models qwen2_5_1_5b --parts throughput,longest
    python -m bench.gpu --dry-run             # every code path on CPU with tiny models, in ~2 minutes

Models are random-initialised from the real configs shipped in ``models/`` (Qwen2.5-0.5B, 1.5B, 7B; the
InternVL2-1B layout: InternViT-300M + Qwen2-0.5B); data is the generated long-CoT set (``longcot.py``)
through our processor. Every measurement runs in its own process (``bench/worker.py``): an out-of-memory
error never poisons the next one. Each finished measurement is stored at once in
``bench/results/gpu-<machine>.parts.json``; a rerun skips what is there, so the suite can be run in
pieces under a time limit (``--budget``). ``bench/results/gpu-<machine>.json`` summarises what is done.

The ablation ladder (all at ``seq_len`` = 16,384 tokens, micro-batch 1 packed row, bf16, activation
checkpointing on every rung, as TRL's SFTConfig defaults to):
  trl          TRL SFTTrainer used directly: packing (bfd, padding-free), its chunked log-prob loss;
  unpacked     our trainer, one sample per row, micro-batches padded to their longest (same tokens/step);
  packed       + our packing (restarting position ids, block-masked sdpa over the row);
  varlen       + attention per packed sample (``train.varlen_attention``, our default with packing);
  fused_ce     + fused linear cross-entropy (no [tokens, vocab] logits);
  tiled_mlp    + tiled MLP;
  offload      + checkpointed layer inputs offloaded to pinned host memory (= our long-context setting);
  ulysses      + Ulysses sequence parallelism over all GPUs with ZeRO-2 (only where several GPUs exist;
               tokens/s is the whole group's).
MFU uses ``bench/flops.py`` (6N + the causal attention term, per real token, over the peak bf16 FLOP/s).
The longest sequence: one sample of L tokens, one optimiser step; L doubles from 4,096 until a probe
fails (out of memory, or no step within ``probe_timeout``), then bisects to 1/16 of L (multiples of 1,024).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench.flops import lm_shape, peak_flops, train_flops, vision_flops

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

MODELS = {  # name -> (preset, load_model overrides), in the order they are measured (the targets' model first)
    "qwen2_5_1_5b": ("qwen2_5_1_5b", {}),
    "qwen2_5_0_5b": ("qwen2_5_0_5b", {}),
    "qwen2_5_7b": ("qwen2_5_7b_instruct", {"init": "random"}),
    "internvl2_1b": ("internvl2_1b", {}),
}
TINY = {"qwen2_5_0_5b": "tiny_text", "qwen2_5_1_5b": "tiny_text", "qwen2_5_7b": "tiny_text",
        "internvl2_1b": "tiny_vlm"}
ALL_ON = {"fused_linear_ce": True, "tiled_mlp": True, "offload_activations": True}
LADDER = [  # rung -> (impl, packing, options)
    ("trl", "trl", True, {}),
    ("unpacked", "ours", False, {}),
    ("packed", "ours", True, {"varlen_attention": False}),
    ("varlen", "ours", True, {}),
    ("fused_ce", "ours", True, {"fused_linear_ce": True}),
    ("tiled_mlp", "ours", True, {"fused_linear_ce": True, "tiled_mlp": True}),
    ("offload", "ours", True, ALL_ON),
]
PARTS = ("throughput", "longest", "dpo")


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class Settings:
    """The plan's sizes; ``dry_run`` shrinks everything to tiny presets on the CPU."""

    def __init__(self, *, dry_run: bool = False, quick: bool = False, models=None, parts=None,
                 budget_s: float | None = None, device: str | None = None):
        self.dry_run = dry_run
        self.device = device or ("cpu" if dry_run else "cuda")
        self.models = list(models or (["qwen2_5_0_5b", "internvl2_1b"] if dry_run else
                                      ["qwen2_5_1_5b"] if quick else list(MODELS)))
        self.parts = list(parts or PARTS)
        self.budget_s = budget_s
        self.seq_len = 256 if dry_run else 16384
        self.warmup, self.steps = (1, 1) if dry_run else (1, 2) if quick else (2, 5)
        self.probe_start, self.probe_cap = (128, 512) if dry_run else (4096, 1 << 21)
        self.probe_round = 64 if dry_run else 1024
        self.probe_timeout = 120 if dry_run else 560
        self.run_timeout = 300 if dry_run else 1200
        self.longest_models = [m for m in self.models if m != "internvl2_1b"] if not quick else ["qwen2_5_1_5b"]
        self.longest_rungs = ["offload"] if dry_run else ["trl", "offload"]
        self.dpo_models = [m for m in self.models if m in ("qwen2_5_0_5b", "qwen2_5_1_5b")]
        self.dpo_len = 128 if dry_run else 4096
        self.ladder = ([r for r in LADDER if r[0] in ("trl", "unpacked", "packed", "varlen", "offload")] if dry_run
                       else [r for r in LADDER if r[0] in ("trl", "offload")] if quick else list(LADDER))
        # Ulysses over every GPU (a dry run: 2 CPU processes on gloo, the same code path)
        self.sp = 2 if dry_run else _gpu_count()
        if self.sp >= 2 and not quick:
            self.ladder.append(("ulysses", "ours", True,
                                {**ALL_ON, "deepspeed": "zero2", "sequence_parallel": self.sp}))

    def preset(self, model: str) -> tuple[str, dict]:
        """(preset, load_model overrides); ``MMREDSTAR_BENCH_GPU_ATTN`` (e.g. ``flash_attention_2`` where
        flash-attn is installed) sets the attention implementation of every model, ours and TRL's alike."""
        name, over = (TINY[model], {}) if self.dry_run else MODELS[model]
        attn = os.environ.get("MMREDSTAR_BENCH_GPU_ATTN")
        return name, ({**over, "attn_implementation": attn} if attn else dict(over))


# ------------------------------------------------------------------------------------------ storage
class Parts:
    """Finished measurements by key, stored (atomically) after each one: the resume points."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str) -> dict | None:
        return self.data.get(key)

    def put(self, key: str, rec: dict) -> None:
        slim = {k: v for k, v in rec.items() if k not in ("traceback",)}
        self.data[key] = slim
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str) + "\n")
        os.replace(tmp, self.path)


class OutOfBudget(Exception):
    pass


class Runner:
    """Runs (or reuses) one measurement at a time within the time budget."""

    def __init__(self, s: Settings, parts: Parts, work: str):
        self.s, self.parts, self.work = s, parts, work
        self.t0 = time.time()
        self.ran = 0
        self.pending: list[str] = []

    def measure(self, key: str, spec: dict, timeout: float) -> dict | None:
        done = self.parts.get(key)
        if done is not None and done.get("status") != "error":
            return done
        if self.s.budget_s is not None and time.time() - self.t0 > self.s.budget_s:
            self.pending.append(key)
            raise OutOfBudget(key)
        from bench.worker import run_in_subprocess

        safe = key.replace("/", "__")
        spec = {**spec, "device": self.s.device, "work_dir": os.path.join(self.work, safe)}
        print(f"[gpu] {key} ...", flush=True)
        rec = run_in_subprocess(spec, os.path.join(self.work, safe + ".json"), timeout=timeout)
        rec["key"] = key
        self.parts.put(key, rec)
        self.ran += 1
        print(f"[gpu] {key}: {rec['status']}"
              + (f", {rec['tokens_per_s']:.0f} tokens/s" if rec.get("tokens_per_s") else "")
              + (f", peak {rec['peak_memory_bytes'] / 2**30:.2f} GiB" if rec.get("peak_memory_bytes") else "")
              + (f" ({rec.get('error', '')[:200]})" if rec["status"] != "ok" else ""), flush=True)
        return rec


# ------------------------------------------------------------------------------------------ data
def _data(work: str, name: str, n: int, *, images: bool = False, words: int | None = None, dpo: bool = False) -> str:
    from bench.longcot import to_samples, write_longcot
    from mmredstar.io import write_samples

    raw = write_longcot(os.path.join(work, f"{name}.chat.jsonl"), n, seed=3, images=images, words=words)
    out = os.path.join(work, f"{name}.{'dpo' if dpo else 'sft'}.jsonl")
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(raw):
        return out
    samples = to_samples(raw)
    if dpo:
        from mmredstar.schema import Pair, Response

        recs = [Pair.from_sample(s, s.responses[0], Response(text=samples[(i + 1) % len(samples)].responses[0].text))
                for i, s in enumerate(samples)]
    else:
        recs = samples
    write_samples(out + ".tmp.jsonl", recs)
    os.replace(out + ".tmp.jsonl", out)
    return out


# ------------------------------------------------------------------------------------------ figures
def _model_flops(model: str, s: Settings, rec: dict) -> float | None:
    """Model FLOPs of the timed steps of a measurement (bench/flops.py)."""
    from mmredstar.modeling import load_preset

    preset_name, _ = s.preset(model)
    p = load_preset(preset_name)
    shape = lm_shape(p.text_config)
    w = min(int(rec["spec"].get("warmup", 0)), max(0, len(rec.get("step_seq_lengths", [])) - 1))
    total = sum(train_flops(shape, lens) for lens in rec.get("step_seq_lengths", [])[w:])
    tiles = rec.get("step_tiles")
    if p.family == "vlm" and tiles:
        total += sum(vision_flops(p.vision or {}, p.tile_size, t, p.tokens_per_tile, shape.hidden,
                                  p.downsample_ratio) for t in tiles[w:])
    return total


def _summary(model: str, s: Settings, rec: dict | None) -> dict:
    if rec is None:
        return {"status": "pending"}
    out = {"status": rec["status"]}
    if rec["status"] != "ok":
        out["error"] = rec.get("error", "")[:300]
        return out
    secs = rec["seconds_per_step"] * rec["timed_steps"]
    flops = _model_flops(model, s, rec)
    peak = peak_flops(rec.get("device", ""))
    out.update({"tokens_per_s": round(rec["tokens_per_s"], 1), "seconds_per_step": round(rec["seconds_per_step"], 3),
                "tokens_per_step": statistics.mean(rec["step_tokens"][-rec["timed_steps"]:]),
                "model_tflops_per_s": round(flops / secs / 1e12, 2) if secs else None,
                "mfu": round(flops / secs / peak, 4) if (secs and peak) else None,
                "peak_memory_gib": round(rec["peak_memory_bytes"] / 2**30, 2) if rec.get("peak_memory_bytes") else None,
                "packing_efficiency": (rec.get("data") or {}).get("packing_efficiency"),
                "losses": rec.get("losses", [])[:3], "memory_options": rec.get("memory_options")})
    return out


# ------------------------------------------------------------------------------------------ parts
def throughput(r: Runner, figures: dict, notes: list) -> None:
    s = r.s
    res = figures.setdefault("throughput", {})
    for model in s.models:
        preset, over = s.preset(model)
        vlm = model == "internvl2_1b"
        n = 12 if s.dry_run else 48
        data = _data(r.work, f"tp_{'vlm' if vlm else 'text'}_{n}", n, images=vlm)
        lens = _mean_len(data, preset, over)
        rows = res.setdefault(model, {"seq_len": s.seq_len, "rungs": {}})
        for rung, impl, packing, opts in s.ladder:
            if vlm and impl == "trl":
                rows["rungs"][rung] = {"status": "n/a", "error": "TRL's SFTTrainer has no InternVL-style collator"}
                continue
            if vlm and s.dry_run and rung not in ("packed", "offload"):
                continue
            mb = 1 if packing else max(1, round(s.seq_len / lens))
            if vlm and s.dry_run and rung == "ulysses":
                continue
            spec = dict(kind="sft", impl=impl, preset=preset, model_overrides=over, data=data,
                        nproc=int(opts.get("sequence_parallel", 1)),
                        max_length=s.seq_len, packing=packing, micro_batch_size=mb, grad_accum=1,
                        warmup=s.warmup, steps=s.steps, lr=1e-5, seed=0, bf16="auto", threads=1 if s.dry_run else None,
                        gradient_checkpointing=not opts.get("offload_activations"), options=opts)
            rec = r.measure(f"throughput/{model}/{rung}/{s.seq_len}", spec, s.run_timeout)
            rows["rungs"][rung] = _summary(model, s, rec)
        base = rows["rungs"].get("trl", {}).get("tokens_per_s")
        for row in rows["rungs"].values():
            if base and row.get("tokens_per_s"):
                row["speedup_vs_trl"] = round(row["tokens_per_s"] / base, 3)
    if s.sp < 2:
        notes.append(f"Ulysses rung not run: it needs several GPUs (this machine has {_gpu_count()}); "
                     "see train.sequence_parallel")
    elif s.dry_run:
        notes.append("dry run: the Ulysses rung ran 2 CPU processes on gloo (sequence parallelism 2)")


def _mean_len(data: str, preset: str, over: dict) -> float:
    from mmredstar.io import read_samples
    from mmredstar.modeling import build_model, load_preset
    from mmredstar.modeling.tokenizer import build_tiny_tokenizer
    from mmredstar.training.sft import encode_sft

    _, proc = build_model(load_preset(preset).replace(**{k: v for k, v in over.items() if k != "attn_implementation"}),
                          build_tiny_tokenizer(), meta=True)
    recs = list(read_samples(data))[:16]
    return statistics.mean(len(encode_sft(proc, x, loss_on_think=True, blank_images=True)["input_ids"]) for x in recs)


def probe_status(rec: dict | None, limit: int | None) -> str:
    """``fits`` | ``oom`` | ``timeout`` | ``error`` for one probe record; ``limit`` caps peak memory (dry runs).

    >>> probe_status({"status": "ok", "peak_memory_bytes": 10}, None)
    'fits'
    >>> probe_status({"status": "ok", "peak_memory_bytes": 10}, 5)
    'oom'
    """
    if rec is None:
        return "pending"
    if rec["status"] == "ok":
        return "oom" if limit is not None and (rec.get("peak_memory_bytes") or 0) > limit else "fits"
    return rec["status"]


def search_longest(probe, start: int, cap: int, step: int, resolution: float = 1 / 16) -> dict:
    """Longest L (a multiple of ``step``) for which ``probe(L)`` returns ``fits``: double from ``start`` until a
    probe fails or ``cap`` is reached, then bisect until the gap is <= ``resolution`` x L.

    >>> search_longest(lambda n: "fits" if n <= 5000 else "oom", 1024, 1 << 20, 64)["longest"]  # within 1/16
    4864
    >>> search_longest(lambda n: "fits", 1024, 4096, 64)
    {'longest': 4096, 'first_failure': None, 'reason': 'cap', 'probes': {1024: 'fits', 2048: 'fits', 4096: 'fits'}}
    """
    probes: dict[int, str] = {}
    ok, bad, reason = 0, None, "cap"
    n = start
    while n <= cap:
        st = probes[n] = probe(n)
        if st == "fits":
            ok, n = n, n * 2
            continue
        bad, reason = n, st
        break
    if bad is not None and ok:
        while bad - ok > max(step, int(ok * resolution)):
            mid = (ok + bad) // 2 // step * step
            if mid <= ok:
                break
            st = probes[mid] = probe(mid)
            if st == "fits":
                ok = mid
            else:
                bad, reason = mid, st
    return {"longest": ok, "first_failure": bad, "reason": reason if bad else "cap", "probes": probes}


def longest(r: Runner, figures: dict, notes: list) -> None:
    s = r.s
    res = figures.setdefault("longest_sequence", {})
    limits: dict = {}
    for model in s.longest_models:
        preset, over = s.preset(model)
        res.setdefault(model, {})
        for rung_name in s.longest_rungs:
            impl, _, opts = next((i, p, o) for n, i, p, o in LADDER if n == rung_name)

            def probe(n, model=model, rung_name=rung_name, impl=impl, opts=opts, preset=preset, over=over):
                data = _data(r.work, f"probe_{n}", 1, words=n // 2 + 64)
                spec = dict(kind="sft", impl=impl, preset=preset, model_overrides=over, data=data, max_length=n,
                            packing=False, micro_batch_size=1, warmup=0, steps=1, lr=1e-5, seed=0, bf16="auto",
                            threads=1 if s.dry_run else None,
                            gradient_checkpointing=not opts.get("offload_activations"), options=opts)
                rec = r.measure(f"longest/{model}/{rung_name}/{n}", spec, s.probe_timeout)
                if s.dry_run and (model, rung_name) not in limits and rec and rec.get("peak_memory_bytes"):
                    limits[(model, rung_name)] = 3 * rec["peak_memory_bytes"]  # simulated device memory
                return probe_status(rec, limits.get((model, rung_name)))

            out = search_longest(probe, s.probe_start, s.probe_cap, s.probe_round)
            out["probes"] = {str(k): v for k, v in out["probes"].items()}
            res[model][rung_name] = out
        a, b = res[model].get("trl", {}).get("longest"), res[model].get("offload", {}).get("longest")
        if a and b:
            res[model]["ratio_ours_over_trl"] = round(b / a, 2)
    if s.dry_run:
        notes.append("dry run: the longest-sequence search used a simulated memory limit of 3x the first probe's "
                     "peak (CPU RSS); the figures check the code path only")


def dpo(r: Runner, figures: dict, notes: list) -> None:
    s = r.s
    res = figures.setdefault("dpo", {})
    for model in s.dpo_models:
        preset, over = s.preset(model)
        data = _data(r.work, f"dpo_{s.dpo_len}", 8 if s.dry_run else 24, words=s.dpo_len // 3, dpo=True)
        spec = dict(kind="dpo", impl="ours", preset=preset, model_overrides=over, data=data, max_length=s.dpo_len,
                    packing=False, micro_batch_size=1, warmup=s.warmup, steps=s.steps, lr=1e-6, seed=0, bf16="auto",
                    threads=1 if s.dry_run else None, gradient_checkpointing=True,
                    options={"tiled_mlp": True} if not s.dry_run else {})
        rec = r.measure(f"dpo/{model}/{s.dpo_len}", spec, s.run_timeout)
        row = _summary(model, s, rec)
        if rec and rec["status"] == "ok":
            row["pairs_per_s"] = round(1 / rec["seconds_per_step"], 3)
            row.pop("mfu", None)
            row.pop("model_tflops_per_s", None)
        res[model] = row


def run(quick: bool = False, settings: Settings | None = None) -> dict:
    """The suite (``python -m bench gpu``); options come from ``settings`` or ``MMREDSTAR_BENCH_GPU_*``."""
    import torch

    s = settings or Settings(quick=quick, **_env_settings())
    if s.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("the gpu suite needs a CUDA GPU; `python -m bench.gpu --dry-run` checks it on the CPU")
    from bench.framework import machine_name

    parts = Parts(Path(os.environ.get("MMREDSTAR_BENCH_GPU_PARTS") or
                       RESULTS / f"gpu{'-quick' if quick else ''}-{machine_name()}.parts.json"))
    work = os.environ.get("MMREDSTAR_BENCH_WORK") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), f"mmredstar-bench-gpu{'-dry' if s.dry_run else ''}")
    os.makedirs(work, exist_ok=True)
    r = Runner(s, parts, work)
    figures: dict = {"settings": {k: v for k, v in vars(s).items()}, "parts_file": str(parts.path.name),
                     "device": torch.cuda.get_device_name(0) if s.device == "cuda" else "cpu",
                     "peak_bf16_flops": peak_flops(torch.cuda.get_device_name(0)) if s.device == "cuda" else None,
                     "mfu_formula": "model FLOPs per step = sum over real tokens of 6N + 12 L H_attn c (c = keys "
                                    "attended, causal within the packed sample) [+ vision tower]; MFU = FLOPs / "
                                    "step time / peak dense bf16 FLOP/s (bench/flops.py)"}
    notes: list = []
    for part in s.parts:
        try:
            {"throughput": throughput, "longest": longest, "dpo": dpo}[part](r, figures, notes)
        except OutOfBudget:
            notes.append(f"time budget ({s.budget_s} s) spent during '{part}': rerun the same command to go on "
                         f"(finished measurements are kept in {parts.path.name})")
            break
    figures["measurements_run_now"] = r.ran
    figures["pending"] = r.pending
    return {"figures": figures, "table": _table(figures), "notes": notes}


def _table(f: dict) -> list:
    rows = []
    for model, m in (f.get("throughput") or {}).items():
        for rung, row in m["rungs"].items():
            if row.get("status") == "ok":
                rows.append([f"SFT {model} @{m['seq_len']} {rung}", f"{row['tokens_per_s']:.0f}",
                             f"tokens/s, MFU {row['mfu'] if row['mfu'] is not None else '-'}, "
                             f"peak {row['peak_memory_gib']} GiB"
                             + (f", {row['speedup_vs_trl']}x TRL" if row.get("speedup_vs_trl") else "")])
            else:
                rows.append([f"SFT {model} @{m['seq_len']} {rung}", row.get("status"), row.get("error", "")[:80]])
    for model, m in (f.get("longest_sequence") or {}).items():
        for rung, row in m.items():
            if isinstance(row, dict):
                rows.append([f"longest sequence {model} {rung}", f"{row['longest']}",
                             f"tokens (stopped by: {row['reason']})"])
    for model, row in (f.get("dpo") or {}).items():
        if row.get("status") == "ok":
            rows.append([f"DPO {model}", f"{row['tokens_per_s']:.0f}",
                         f"tokens/s ({row['pairs_per_s']} pairs/s, peak {row['peak_memory_gib']} GiB)"])
    return rows


def _env_settings() -> dict:
    e = os.environ
    out: dict = {}
    if e.get("MMREDSTAR_BENCH_GPU_MODELS"):
        out["models"] = e["MMREDSTAR_BENCH_GPU_MODELS"].split(",")
    if e.get("MMREDSTAR_BENCH_GPU_PARTS_TO_RUN"):
        out["parts"] = e["MMREDSTAR_BENCH_GPU_PARTS_TO_RUN"].split(",")
    if e.get("MMREDSTAR_BENCH_GPU_BUDGET_S"):
        out["budget_s"] = float(e["MMREDSTAR_BENCH_GPU_BUDGET_S"])
    if e.get("MMREDSTAR_BENCH_GPU_DRY_RUN"):
        out["dry_run"] = True
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny models on the CPU: check every code path")
    ap.add_argument("--quick", action="store_true", help="Qwen2.5-1.5B only, TRL vs our full setting")
    ap.add_argument("--models", default=None, help=f"comma-separated, of {','.join(MODELS)}")
    ap.add_argument("--parts", default=None, help=f"comma-separated, of {','.join(PARTS)}")
    ap.add_argument("--budget", type=float, default=None, help="seconds after which no new measurement starts")
    ap.add_argument("--out", default=None, help="results folder (default bench/results; a temp folder for --dry-run)")
    a = ap.parse_args(argv)
    if a.models:
        os.environ["MMREDSTAR_BENCH_GPU_MODELS"] = a.models
    if a.parts:
        os.environ["MMREDSTAR_BENCH_GPU_PARTS_TO_RUN"] = a.parts
    if a.budget:
        os.environ["MMREDSTAR_BENCH_GPU_BUDGET_S"] = str(a.budget)
    out = a.out
    if a.dry_run:
        import tempfile

        os.environ["MMREDSTAR_BENCH_GPU_DRY_RUN"] = "1"
        out = out or tempfile.mkdtemp(prefix="mmredstar-gpu-dry-")
        os.environ.setdefault("MMREDSTAR_BENCH_GPU_PARTS", os.path.join(out, "gpu-dryrun.parts.json"))
        from bench.framework import machine_name

        os.environ["MMREDSTAR_BENCH_MACHINE"] = "dryrun-" + machine_name()
    from bench.framework import main as fw_main

    return fw_main(["gpu"] + (["--quick"] if a.quick else []) + (["--out", out] if out else []))


if __name__ == "__main__":
    sys.exit(main())
