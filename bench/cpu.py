"""Benchmark suite ``cpu``: verifiers, the SFT data path, packing, SFT step speed vs TRL, memory options.

    python -m bench cpu [--quick]            # minutes on a 2-core box; writes bench/results/cpu-<machine>.json

Every comparison is against a peer measured in the same run, on the same data:

* verify: math throughput vs math-verify and code-sandbox tests/s (the ``verify`` suite's functions);
* data path: a generated long-CoT chat set (``bench/longcot.py``) through convert (the ``messages``
  card) -> chat template + tokenize (``processor.encode``) -> length policy -> pack, samples/s per stage;
* packing efficiency = real tokens / (rows x max_length) (what a fixed-shape step computes) of our
  first-fit-decreasing packing vs TRL's ``pack_dataset`` (``bfd``; ``wrapped`` for reference: full rows,
  but it cuts samples and lets them attend across the cut), at several max lengths; and real / computed
  tokens for micro-batches of 4 rows padded to their longest;
* SFT step tokens/s on the ``tiny_text`` preset: our trainer (``mmredstar.training.sft.build_trainer``,
  exactly what ``mmredstar train`` runs) vs TRL's ``SFTTrainer`` used directly on the same model and
  tokens, packing on both, one row per step, warm-up steps excluded, repeats alternated, median; each run
  in a fresh process (plus one run of ours with transformers' block-masked sdpa, to attribute the gain);
* exact checks: packed loss == unpacked loss (ours), and our trainer's loss == TRL's on the same batch;
* long-sequence memory on CPU: peak RSS growth of one SFT step of a 2-layer model with Qwen2.5-0.5B's
  layer shapes and vocabulary (fp32; plain SGD, which keeps no optimiser state, so the peak is weights +
  gradients + activations), plain vs fused linear cross-entropy vs tiled MLP vs both, with activation
  checkpointing, and with the offload path (whose saving is GPU memory: on a CPU the host is the device),
  each in its own process; the losses of all configurations agree.

The 1-minute load average is recorded at the start and end (other users of the machine slow it down).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _work_dir() -> str:
    d = os.environ.get("MMREDSTAR_BENCH_WORK") or os.path.join(tempfile.gettempdir(), "mmredstar-bench")
    os.makedirs(d, exist_ok=True)
    return d


# ------------------------------------------------------------------------------------------ data path
def sft_samples(work: str, n: int, *, seed: int = 0, words: int | None = None, name: str | None = None) -> str:
    """A generated long-CoT set converted to SFT samples (``mmredstar.schema``): the sample file's path."""
    from bench.longcot import to_samples, write_longcot
    from mmredstar.io import write_samples

    stem = name or f"longcot_{n}_{seed}_{words or 'lognormal'}"
    raw = write_longcot(os.path.join(work, stem + ".chat.jsonl"), n, seed=seed, words=words)
    out = os.path.join(work, stem + ".sft.jsonl")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(raw):
        write_samples(out + ".tmp.jsonl", to_samples(raw))
        os.replace(out + ".tmp.jsonl", out)
    return out


def data_path_bench(work: str, n: int, max_length: int) -> tuple[dict, list, list[int]]:
    """Samples/s of each stage of the SFT data path; returns (figures, table rows, encoded lengths)."""
    from bench.longcot import write_longcot
    from mmredstar.data.convert import iter_card
    from mmredstar.modeling import load_model
    from mmredstar.training.packing import TruncationStats, fit_length, pack
    from mmredstar.training.sft import encode_sft

    raw = write_longcot(os.path.join(work, f"datapath_{n}.chat.jsonl"), n, seed=1)
    _, proc = load_model("tiny_text")
    t0 = time.perf_counter()
    samples = list(iter_card("messages", raw))
    t1 = time.perf_counter()
    feats = [encode_sft(proc, s, loss_on_think=True, blank_images=False) for s in samples]
    t2 = time.perf_counter()
    stats = TruncationStats()
    kept = [f for f in (fit_length(f, max_length, "truncate", stats) for f in feats) if f is not None]
    lengths = [len(f["input_ids"]) for f in kept]
    bins = pack(lengths, max_length)
    t3 = time.perf_counter()
    tokens = sum(len(f["input_ids"]) for f in feats)
    total = t3 - t0
    fig = {"samples": n, "tokens": tokens, "max_length": max_length,
           "tokenizer": "tiny byte-level BPE (the tiny presets'; ~2 characters per token)",
           "convert_samples_per_s": round(n / (t1 - t0), 1),
           "template_tokenize_samples_per_s": round(n / (t2 - t1), 1),
           "template_tokenize_tokens_per_s": round(tokens / (t2 - t1)),
           "truncate_pack_samples_per_s": round(n / (t3 - t2), 1),
           "end_to_end_samples_per_s": round(n / total, 1), "end_to_end_tokens_per_s": round(tokens / total),
           "rows": len(bins), "truncated": stats.samples_truncated}
    table = [["data path: convert (messages card)", f"{fig['convert_samples_per_s']:.0f}", "samples/s"],
             ["data path: chat template + tokenize", f"{fig['template_tokenize_samples_per_s']:.0f}",
              f"samples/s ({fig['template_tokenize_tokens_per_s'] / 1e3:.0f}k tokens/s)"],
             ["data path: truncate + pack", f"{fig['truncate_pack_samples_per_s']:.0f}", "samples/s"],
             ["data path: end to end", f"{fig['end_to_end_samples_per_s']:.0f}",
              f"samples/s ({n} samples, {tokens / n:.0f} tokens each on average)"]]
    return fig, table, [len(f["input_ids"]) for f in feats]


# ------------------------------------------------------------------------------------------ packing
def fill_efficiency(row_lengths: list[int], max_length: int) -> float:
    """Real tokens / (rows x max_length): how full fixed-length rows are.

    >>> fill_efficiency([7, 7], 7)
    1.0
    >>> fill_efficiency([6, 5, 4], 8)
    0.625
    """
    return sum(row_lengths) / (len(row_lengths) * max_length) if row_lengths else 0.0


def padded_efficiency(row_lengths: list[int], micro_batch: int) -> float:
    """Real tokens / computed tokens when consecutive rows are batched ``micro_batch`` at a time and padded
    to the longest row of their batch (padding-free batching computes only real tokens: 1.0).

    >>> padded_efficiency([6, 5, 4], 2)     # (6+5+4) / (2*6 + 1*4)
    0.9375
    """
    computed = 0
    for i in range(0, len(row_lengths), micro_batch):
        b = row_lengths[i:i + micro_batch]
        computed += len(b) * max(b)
    return sum(row_lengths) / computed if computed else 0.0


def packing_bench(lengths: list[int], max_lengths: list[int]) -> tuple[dict, list]:
    """Our packing vs TRL's ``pack_dataset`` on the same token lengths (samples cut to max_length first)."""
    from datasets import Dataset, disable_progress_bars
    from trl.data_utils import pack_dataset

    from mmredstar.training.packing import pack

    disable_progress_bars()
    fig, table = {}, []
    for ml in max_lengths:
        cut = [min(n, ml) for n in lengths]
        t0 = time.perf_counter()
        bins = pack(cut, ml)
        t_ours = time.perf_counter() - t0
        ours_rows = [sum(cut[i] for i in b) for b in bins]
        ds = Dataset.from_dict({"input_ids": [[1] * n for n in cut]})
        res = {"samples": len(cut), "tokens": sum(cut),
               "ours": {"rows": len(bins), "efficiency": round(fill_efficiency(ours_rows, ml), 4),
                        "padded_mb4_efficiency": round(padded_efficiency(ours_rows, 4), 4),
                        "seconds": round(t_ours, 4)}}
        for strat in ("bfd", "wrapped"):
            t0 = time.perf_counter()
            packed = pack_dataset(ds, ml, strategy=strat)
            dt = time.perf_counter() - t0
            rows = [len(x) for x in packed["input_ids"]]
            res[f"trl_{strat}"] = {"rows": len(rows), "efficiency": round(fill_efficiency(rows, ml), 4),
                                   "padded_mb4_efficiency": round(padded_efficiency(rows, 4), 4),
                                   "seconds": round(dt, 4)}
        res["ours_minus_trl_bfd"] = round(res["ours"]["efficiency"] - res["trl_bfd"]["efficiency"], 4)
        fig[str(ml)] = res
        table.append([f"packing @{ml}: ours (FFD) / TRL bfd / TRL wrapped*",
                      f"{res['ours']['efficiency']:.4f} / {res['trl_bfd']['efficiency']:.4f} / "
                      f"{res['trl_wrapped']['efficiency']:.4f}", f"real/computed tokens, {len(bins)} rows"])
    return fig, table


# ------------------------------------------------------------------------------------------ SFT speed
def sft_speed_bench(work: str, data: str, *, max_length: int, warmup: int, steps: int, repeats: int,
                    threads: int) -> tuple[dict, list]:
    """Tokens/s of our SFT trainer vs TRL's SFTTrainer, alternating fresh processes; medians and ratio."""
    from bench.worker import run_in_subprocess

    runs: dict[str, list[dict]] = {"ours": [], "trl": []}
    for r in range(repeats):
        for impl in (("ours", "trl") if r % 2 == 0 else ("trl", "ours")):
            spec = dict(kind="sft", impl=impl, preset="tiny_text", data=data, max_length=max_length, packing=True,
                        micro_batch_size=1, grad_accum=1, warmup=warmup, steps=steps, lr=1e-4, threads=threads,
                        seed=0, device="cpu", work_dir=os.path.join(work, f"speed_{impl}_{r}"))
            rec = run_in_subprocess(spec, os.path.join(work, f"speed_{impl}_{r}.json"), timeout=1800)
            if rec["status"] != "ok":
                raise RuntimeError(f"SFT speed run {impl} #{r} failed: {rec.get('error')}\n{rec.get('traceback', '')}"
                                   f"{rec.get('stderr', '')}")
            runs[impl].append(rec)
    # attribution: one run of ours with the block-masked sdpa of transformers (train.varlen_attention=false)
    spec = dict(kind="sft", impl="ours", preset="tiny_text", data=data, max_length=max_length, packing=True,
                micro_batch_size=1, grad_accum=1, warmup=warmup, steps=steps, lr=1e-4, threads=threads, seed=0,
                device="cpu", options={"varlen_attention": False}, work_dir=os.path.join(work, "speed_masked"))
    masked = run_in_subprocess(spec, os.path.join(work, "speed_masked.json"), timeout=1800)
    med = {k: statistics.median(r["tokens_per_s"] for r in v) for k, v in runs.items()}
    fig = {"preset": "tiny_text", "max_length": max_length, "micro_batch_size": 1, "warmup_steps": warmup,
           "timed_steps": steps, "repeats": repeats, "threads": threads,
           "ours_tokens_per_s": round(med["ours"], 1), "trl_tokens_per_s": round(med["trl"], 1),
           "ratio_ours_over_trl": round(med["ours"] / med["trl"], 3),
           "ours_runs_tokens_per_s": [round(r["tokens_per_s"], 1) for r in runs["ours"]],
           "trl_runs_tokens_per_s": [round(r["tokens_per_s"], 1) for r in runs["trl"]],
           "ours_packing_efficiency": runs["ours"][0]["data"]["packing_efficiency"],
           "trl_packing_efficiency": runs["trl"][0]["data"]["packing_efficiency"],
           "ours_step_seconds_median": round(statistics.median(runs["ours"][0]["step_seconds"][warmup:]), 4),
           "trl_step_seconds_median": round(statistics.median(runs["trl"][0]["step_seconds"][warmup:]), 4),
           "ours_first_losses": runs["ours"][0]["losses"][:3], "trl_first_losses": runs["trl"][0]["losses"][:3],
           "ours_peak_rss_growth_bytes": statistics.median(r["peak_memory_bytes"] for r in runs["ours"]),
           "trl_peak_rss_growth_bytes": statistics.median(r["peak_memory_bytes"] for r in runs["trl"]),
           "ours_varlen_off_tokens_per_s": round(masked["tokens_per_s"], 1) if masked["status"] == "ok" else None,
           "ours_varlen_off_peak_rss_growth_bytes": masked.get("peak_memory_bytes")}
    table = [[f"SFT tiny_text @{max_length} packed: ours", f"{med['ours']:.0f}", "tokens/s"],
             [f"SFT tiny_text @{max_length} packed: TRL SFTTrainer", f"{med['trl']:.0f}", "tokens/s"],
             ["SFT speed ours / TRL (target >= 1.0)", f"{med['ours'] / med['trl']:.2f}", "x"]]
    if fig["ours_varlen_off_tokens_per_s"]:
        table.insert(1, [f"SFT tiny_text @{max_length} packed: ours, block-masked sdpa (varlen off)",
                         f"{fig['ours_varlen_off_tokens_per_s']:.0f}", "tokens/s (1 run)"])
    return fig, table


def loss_checks(work: str, data: str) -> tuple[dict, list]:
    """Packed == unpacked (ours) and ours == TRL on the same batch (both trainers' own compute_loss)."""
    import torch

    from bench.worker import run_ours, run_trl
    from mmredstar.io import read_samples, write_samples
    from mmredstar.modeling import load_model
    from mmredstar.training.packing import SFTCollator
    from mmredstar.training.sft import SFTDataset, encode_sft, sft_loss

    torch.set_num_threads(1)
    model, proc = load_model("tiny_text", seed=0)
    recs = list(read_samples(data))
    lens = sorted((len(encode_sft(proc, s, loss_on_think=True, blank_images=False)["input_ids"]), i)
                  for i, s in enumerate(recs))
    chosen = [recs[i] for _, i in lens[:6]]
    total = sum(n for n, _ in lens[:6])
    small = os.path.join(work, "loss_check.sft.jsonl")
    write_samples(small, chosen)
    # packed vs unpacked, our collator
    rows = [(s, "", 0) for s in chosen]
    packed = SFTDataset(rows, proc, max_length=total, truncation="truncate", packing=True, loss_on_think=True,
                        blank_images=False, progress=False)
    plain = SFTDataset(rows, proc, max_length=total, truncation="truncate", packing=False, loss_on_think=True,
                       blank_images=False, progress=False)
    model.eval()
    lp = float(sft_loss(model, SFTCollator(proc, packed=True)([packed[0]])))
    lu = float(sft_loss(model, SFTCollator(proc, packed=False)([plain[i] for i in range(len(plain))])))
    # ours vs TRL: one batch holding the same samples, through each trainer's dataloader and compute_loss
    spec = dict(kind="sft", preset="tiny_text", data=small, max_length=total, packing=True, micro_batch_size=1,
                warmup=0, steps=1, lr=1e-4, seed=0, device="cpu")
    losses, shapes = {}, {}
    for impl, fn in (("ours", run_ours), ("trl", run_trl)):
        rec: dict = {"step_seconds": [], "losses": []}
        trainer, _ = fn({**spec, "impl": impl, "work_dir": os.path.join(work, f"loss_{impl}")}, rec, False)
        batch = next(iter(trainer.get_train_dataloader()))
        shapes[impl] = sorted(int(x) for x in _seq_lengths(batch))
        trainer.model.eval()
        with torch.no_grad():
            losses[impl] = float(trainer.compute_loss(trainer.model, trainer._prepare_inputs(batch)))
    same = shapes["ours"] == shapes["trl"]
    fig = {"samples": len(chosen), "tokens": total, "packed_loss": lp, "unpacked_loss": lu,
           "packed_minus_unpacked": abs(lp - lu), "ours_loss": losses["ours"], "trl_loss": losses["trl"],
           "ours_minus_trl": abs(losses["ours"] - losses["trl"]), "same_samples_in_batch": same,
           "sample_lengths": shapes["ours"]}
    table = [["loss: packed vs unpacked (ours), |diff|", f"{abs(lp - lu):.2e}", "(exact: float32 summation order)"],
             ["loss: ours vs TRL on the same batch, |diff|", f"{abs(losses['ours'] - losses['trl']):.2e}",
              "(target < 1e-4)" + ("" if same else " BATCHES DIFFER")]]
    return fig, table


def _seq_lengths(batch) -> list[int]:
    pos = batch["position_ids"][0].tolist()
    starts = [i for i, p in enumerate(pos) if p == 0] + [len(pos)]
    return [b - a for a, b in zip(starts, starts[1:], strict=False)]


# ------------------------------------------------------------------------------------------ memory
MEMORY_LADDER = [
    ("plain", {}),
    ("fused_linear_ce", {"fused_linear_ce": True}),
    ("tiled_mlp", {"tiled_mlp": True}),
    ("fused_linear_ce+tiled_mlp", {"fused_linear_ce": True, "tiled_mlp": True}),
    ("checkpointing+fused+tiled", {"fused_linear_ce": True, "tiled_mlp": True, "gradient_checkpointing": True}),
    ("offload+fused+tiled", {"fused_linear_ce": True, "tiled_mlp": True, "offload_activations": True}),
]


def memory_bench(work: str, seq_len: int, threads: int, layers: int = 2) -> tuple[dict, list]:
    """Peak RSS growth of one SFT step at ``seq_len`` tokens, per memory option (fresh process each)."""
    from bench.worker import run_in_subprocess
    from mmredstar.modeling import load_preset

    base = load_preset("qwen2_5_0_5b")
    tc = {**base.text_config, "num_hidden_layers": layers, "max_window_layers": layers}
    data = sft_samples(work, 2, words=seq_len, name=f"mem_{seq_len}")
    fig: dict = {"model": f"Qwen2.5-0.5B shapes (hidden 896, MLP 4864, vocab 151936), {layers} layers, fp32",
                 "optimizer": "sgd (stateless: the peak is weights + gradients + activations)",
                 "seq_len": seq_len, "configs": {}}
    table = []
    plain_peak = None
    for name, opts in MEMORY_LADDER:
        o = dict(opts)
        gc = bool(o.pop("gradient_checkpointing", False))
        spec = dict(kind="sft", impl="ours", preset="qwen2_5_0_5b", model_overrides={"text_config": tc},
                    dtype="float32", data=data, max_length=seq_len, packing=False, micro_batch_size=1, warmup=0,
                    steps=1, lr=1e-5, optim="sgd", threads=threads, seed=0, device="cpu", gradient_checkpointing=gc,
                    options=o, work_dir=os.path.join(work, f"mem_{name}"))
        rec = run_in_subprocess(spec, os.path.join(work, f"mem_{name}.json"), timeout=1800)
        if rec["status"] != "ok":
            raise RuntimeError(f"memory run {name} failed: {rec.get('error')}\n{rec.get('traceback', '')}"
                               f"{rec.get('stderr', '')}")
        peak = rec.get("peak_memory_bytes")
        plain_peak = peak if name == "plain" else plain_peak
        fig["configs"][name] = {"peak_rss_growth_bytes": peak, "step_seconds": round(rec["step_seconds"][0], 2),
                                "loss": rec["losses"][0] if rec["losses"] else None,
                                "tokens": rec["step_tokens"][0], "reset_peak": rec.get("cpu_peak_reset"),
                                "memory_options": rec.get("memory_options")}
        table.append([f"memory @{seq_len}: {name}", f"{peak / 2**20:.0f}",
                      f"MiB peak RSS growth ({rec['step_seconds'][0]:.1f} s/step"
                      + (f", {peak / plain_peak:.2f}x plain)" if plain_peak else ")")])
    losses = [c["loss"] for c in fig["configs"].values()]
    fig["max_loss_difference"] = max(losses) - min(losses)
    fig["note"] = ("offload moves the checkpointed layer inputs to host memory: on a CPU the host is the device, "
                   "so its RSS cannot drop; on a GPU it frees layers x tokens x hidden x 2 bytes (bf16)")
    return fig, table


# ------------------------------------------------------------------------------------------ the suite
def run(quick: bool = False) -> dict:
    import bench.verify as bv

    work = _work_dir()
    load0 = _load()
    t0 = time.time()
    figures: dict = {"load_average_start": load0}
    table: list = []
    notes: list = []

    if bv.CASES.is_file():
        mf, mt = bv.math_bench(quick)
        cf, ct = bv.code_bench(quick)
        figures["verify"] = {"math": mf, "code": cf}
        table += mt[:3] + ct
    else:
        notes.append(f"verify figures skipped: {bv.CASES} not found")

    n = 300 if quick else 3000
    df, dt, lengths = data_path_bench(work, n, 8192)
    figures["data_path"] = df
    table += dt

    pf, pt = packing_bench(lengths, [8192] if quick else [4096, 8192, 16384])
    figures["packing"] = pf
    table += pt

    data = sft_samples(work, 60 if quick else 160, seed=2)
    sf, st = sft_speed_bench(work, data, max_length=2048 if quick else 8192, warmup=2 if quick else 3,
                             steps=3 if quick else 10, repeats=1 if quick else 3, threads=1)
    figures["sft_speed"] = sf
    table += st

    lf, lt = loss_checks(work, data)
    figures["loss_checks"] = lf
    table += lt

    mf2, mt2 = memory_bench(work, 512 if quick else 2048, threads=1)
    figures["memory"] = mf2
    table += mt2

    figures["load_average_end"] = _load()
    figures["suite_seconds"] = round(time.time() - t0, 1)
    table.append(["load average (1, 5, 15 min) start / end", f"{load0} / {figures['load_average_end']}", ""])
    for ml, res in pf.items():
        if res["ours"]["efficiency"] < 0.97:
            notes.append(f"packing efficiency at {ml}: {res['ours']['efficiency']} < 0.97 target")
        if res["ours_minus_trl_bfd"] < 0:
            notes.append(f"packing efficiency at {ml}: ours below TRL bfd by {-res['ours_minus_trl_bfd']}")
    if sf["ratio_ours_over_trl"] < 1.0:
        notes.append(f"SFT tokens/s ours/TRL = {sf['ratio_ours_over_trl']} < 1.0 target")
    if lf["ours_minus_trl"] >= 1e-4 or not lf["same_samples_in_batch"]:
        notes.append(f"loss parity with TRL missed: |diff| {lf['ours_minus_trl']:.2e}")
    if lf["packed_minus_unpacked"] >= 1e-5:
        notes.append(f"packed vs unpacked loss differ by {lf['packed_minus_unpacked']:.2e}")
    notes.append("packing '*': TRL's wrapped strategy fills rows completely by cutting samples and letting tokens "
                 "attend across the cut (no sample boundaries): not an SFT-safe packing, shown for reference")
    return {"figures": figures, "table": table, "notes": notes}
