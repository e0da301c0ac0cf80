"""One benchmark measurement (``bench/worker.py``) in this process, on tiny models: our trainer with the
long-context options and TRL's SFTTrainer time real steps and count the real tokens of each step; our
trainer's loss equals TRL's on the same batch, and packed equals unpacked (the CPU suite's exact checks).

    .venv/bin/python -m pytest -q tests/bench/test_bench_worker.py
"""

import pytest

from bench.cpu import loss_checks, sft_samples
from bench.worker import measure


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("bench_data"))
    return work, sft_samples(work, 8, seed=5, words=120, name="small")


@pytest.mark.parametrize("impl,options", [("ours", {"fused_linear_ce": True, "tiled_mlp": True,
                                                     "mlp_tile_tokens": 64, "offload_activations": True}),
                                          ("trl", {})])
def test_measure_times_steps_and_counts_tokens(data, tmp_path, impl, options):
    _, path = data
    rec = measure(dict(kind="sft", impl=impl, preset="tiny_text", data=path, max_length=512, packing=True,
                       warmup=1, steps=2, lr=1e-3, threads=1, seed=0, device="cpu", options=options,
                       work_dir=str(tmp_path)))
    assert rec["status"] == "ok", rec.get("traceback")
    assert len(rec["step_seconds"]) == len(rec["step_tokens"]) == 3 and rec["timed_steps"] == 2
    assert all(0 < t <= 512 for t in rec["step_tokens"])
    assert all(sum(lens) == t for lens, t in zip(rec["step_seq_lengths"], rec["step_tokens"], strict=True))
    # (in this process RSS may not grow at all: the suites measure memory in fresh processes)
    assert rec["tokens_per_s"] > 0 and rec["peak_memory_bytes"] >= 0 and len(rec["losses"]) == 3
    if impl == "ours":
        assert rec["memory_options"] == {"fused_linear_ce": True, "tiled_mlp": True, "offload_activations": True,
                                         "varlen_attention": True}


def test_dpo_measure_counts_both_completions(tmp_path):
    from mmredstar.training.data import resolve_data

    (path,) = [f.path for f in resolve_data(["builtin:dpo_text"], root=None, work_dir=str(tmp_path / "d"))]
    rec = measure(dict(kind="dpo", impl="ours", preset="tiny_text", data=path, max_length=128, packing=False,
                       warmup=0, steps=2, lr=1e-4, threads=1, seed=0, device="cpu", work_dir=str(tmp_path / "w")))
    assert rec["status"] == "ok", rec.get("traceback")
    assert all(len(lens) == 2 for lens in rec["step_seq_lengths"])  # prompt+chosen, prompt+rejected


def test_loss_checks_ours_equals_trl_and_packed_equals_unpacked(data):
    work, path = data
    fig, _ = loss_checks(work, path)
    assert fig["same_samples_in_batch"] and fig["samples"] == 6
    assert fig["ours_minus_trl"] < 1e-4, fig
    assert fig["packed_minus_unpacked"] < 1e-5, fig
