"""Long-context memory options (``mmredstar/training/memory.py``): each gives the plain path's loss and
gradients (text and VLM, packed rows and padded batches), the offload moves exactly the checkpointed
layer inputs, generation is unchanged, copies stay independent, and a training run with all three on
learns like the plain run. Memory figures live in ``python -m bench cpu`` (not in timed tests).

    .venv/bin/python -m pytest -q tests/training/test_memory.py
"""

import copy

import pytest
import torch

from mmredstar.training.memory import (
    apply_memory_options,
    linear_cross_entropy,
    offload_stats,
)
from mmredstar.training.packing import SFTCollator
from mmredstar.training.sft import SFTDataset

LOSS_TOL = 1e-5  # absolute, on a loss of ~7
GRAD_TOL = 1e-5  # per parameter: max |g - g_plain| / max |g_plain|

OPTIONS = {
    "fused_linear_ce": dict(fused_linear_ce=True, ce_chunk_tokens=16),
    "tiled_mlp": dict(tiled_mlp=True, mlp_tile_tokens=16),
    "offload_activations": dict(offload_activations=True),
    "all": dict(fused_linear_ce=True, ce_chunk_tokens=16, tiled_mlp=True, mlp_tile_tokens=16,
                offload_activations=True),
}


def _batch(preset, recs, packed):
    from mmredstar.modeling import load_model

    model, proc = load_model(preset, seed=0)
    ds = SFTDataset(recs, proc, max_length=512, truncation="truncate", packing=packed, loss_on_think=True,
                    blank_images=False, progress=False)
    batch = SFTCollator(proc, packed=packed)([ds[i] for i in range(len(ds))])
    return model, batch


def _step(model, batch, **opts):
    m = copy.deepcopy(model)
    m.train()
    apply_memory_options(m, **opts)
    n = int((batch["labels"][:, 1:] != -100).sum())
    out = m(**batch, num_items_in_batch=torch.tensor(n))
    out.loss.backward()
    return float(out.loss.detach()), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}, m


def _compare(model, batch, opts):
    l0, g0, _ = _step(model, batch)
    loss, grads, m = _step(model, batch, **opts)
    assert abs(loss - l0) < LOSS_TOL, (loss, l0)
    assert set(grads) == set(g0)
    worst = max(float((grads[k] - g0[k]).abs().max() / (g0[k].abs().max() + 1e-12)) for k in g0)
    assert worst < GRAD_TOL, worst
    return m


@pytest.fixture(scope="module")
def text_packed(records):
    return _batch("tiny_text", records["sft_text"][:8], True)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_text_packed_parity(text_packed, name):
    model, batch = text_packed
    assert "attention_mask" not in batch and int((batch["position_ids"] == 0).sum()) > 1  # really packed
    _compare(model, batch, OPTIONS[name])


def test_text_padded_batch_parity(records):
    model, batch = _batch("tiny_text", records["sft_text"][:12], False)
    assert int((batch["attention_mask"] == 0).sum()) > 0  # rows of different lengths, right-padded
    _compare(model, batch, OPTIONS["all"])


@pytest.mark.parametrize("name", ["fused_linear_ce", "all"])
def test_vlm_packed_parity(records, name):
    model, batch = _batch("tiny_vlm", records["sft_vlm"][:6], True)
    assert batch["pixel_values"].shape[0] == 6
    m = _compare(model, batch, OPTIONS[name])
    assert any(k.startswith("vision_model.") for k, p in m.named_parameters() if p.grad is not None)


def test_fused_ce_matches_cross_entropy_with_bias_and_ignored_tokens():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(37, 16, generator=g, requires_grad=True)
    w = torch.randn(50, 16, generator=g, requires_grad=True)
    b = torch.randn(50, generator=g, requires_grad=True)
    t = torch.randint(0, 50, (37,), generator=g)
    t[::5] = -100
    for num_items in (None, 11.0):
        ref = torch.nn.functional.cross_entropy(torch.nn.functional.linear(h, w, b), t, ignore_index=-100,
                                                reduction="sum" if num_items else "mean")
        ref = ref / num_items if num_items else ref
        gr = torch.autograd.grad(ref, [h, w, b])
        out = linear_cross_entropy(h, w, t, b, num_items=num_items, chunk_tokens=8, use_liger=False)
        go = torch.autograd.grad(out, [h, w, b])
        assert abs(float(out.detach()) - float(ref.detach())) < 1e-6 * float(ref.detach())
        for a, c in zip(go, gr, strict=True):
            assert torch.allclose(a, c, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # evaluation: the loss alone
        mean = float(torch.nn.functional.cross_entropy(torch.nn.functional.linear(h, w, b), t))
        assert abs(float(linear_cross_entropy(h, w, t, b, chunk_tokens=8)) - mean) < 1e-6 * mean


def test_offload_moves_exactly_the_checkpointed_layer_inputs(text_packed):
    model, batch = text_packed
    _, _, m = _step(model, batch, offload_activations=True)
    cfg = m.config
    tokens = batch["input_ids"].numel()
    stats = offload_stats(m)
    assert stats.tensors == cfg.num_hidden_layers
    assert stats.bytes == cfg.num_hidden_layers * tokens * cfg.hidden_size * 4  # fp32 hidden states


def test_generation_and_logits_unchanged_and_copies_independent(text_packed):
    model, batch = text_packed
    m = copy.deepcopy(model).eval()
    ids = batch["input_ids"][:, :40]
    ref_logits = m(input_ids=ids).logits
    apply_memory_options(m, **OPTIONS["all"])
    assert torch.allclose(m(input_ids=ids).logits, ref_logits, atol=1e-6)  # no labels: the original forward
    out = m.generate(ids[:, :10], max_new_tokens=5, do_sample=False)
    assert torch.equal(out, model.generate(ids[:, :10], max_new_tokens=5, do_sample=False))
    # a deep copy (DPO's reference model) computes with its own weights, not the original's
    c = copy.deepcopy(m)
    with torch.no_grad():
        for p in c.parameters():
            p.mul_(0.5)
    c.train()
    m.train()
    lab = dict(input_ids=batch["input_ids"], labels=batch["labels"], position_ids=batch["position_ids"])
    assert abs(float(c(**lab).loss.detach()) - float(m(**lab).loss.detach())) > 1e-3


def test_zero3_is_refused_with_a_clear_message(text_packed):
    with pytest.raises(ValueError, match="ZeRO-3"):
        apply_memory_options(copy.deepcopy(text_packed[0]), tiled_mlp=True, deepspeed="zero3")


def test_sft_run_with_all_options_matches_the_plain_run(tmp_path):
    from mmredstar.training import run
    from mmredstar.training.runner import read_metrics

    common = ["train.max_steps=6", "train.progress=false", "train.logging_steps=1"]
    plain = read_metrics(run("tiny/sft", [f"output_dir={tmp_path / 'plain'}", *common]))
    opts = ["train.fused_linear_ce=true", "train.ce_chunk_tokens=32", "train.tiled_mlp=true",
            "train.mlp_tile_tokens=32", "train.offload_activations=true"]
    fused = read_metrics(run("tiny/sft", [f"output_dir={tmp_path / 'fused'}", *common, *opts]))
    mem = fused["memory_options"]
    assert mem["tiled_mlp"]["layers"] == 2 and mem["offload_activations"] and mem["offloaded_bytes"] > 0
    lp = [v for _, v in plain["series"]["loss"]]
    lf = [v for _, v in fused["series"]["loss"]]
    assert len(lf) == len(lp) == 6 and lf[-1] < lf[0]  # it learns
    assert max(abs(a - b) for a, b in zip(lp, lf, strict=True)) < 1e-3  # and follows the plain run
