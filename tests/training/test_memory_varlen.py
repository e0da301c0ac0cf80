"""Per-sample ("varlen") attention on packed rows (``mmredstar/training/kernels.py``): the same loss and
gradients as transformers' block-masked sdpa (text and VLM), plain batches and generation untouched, and
packed SFT runs use it by default (``train.varlen_attention: auto``).

    .venv/bin/python -m pytest -q tests/training/test_memory_varlen.py
"""

import copy

import pytest
import torch

from mmredstar.training.kernels import NAME, packed_segments, use_varlen_attention
from mmredstar.training.packing import SFTCollator
from mmredstar.training.sft import SFTDataset


def _batch(preset, recs, packed):
    from mmredstar.modeling import load_model

    model, proc = load_model(preset, seed=0)
    ds = SFTDataset(recs, proc, max_length=512, truncation="truncate", packing=packed, loss_on_think=True,
                    blank_images=False, progress=False)
    return model, SFTCollator(proc, packed=packed)([ds[i] for i in range(len(ds))])


def _loss_grads(model, batch, varlen):
    m = copy.deepcopy(model).train()
    if varlen:
        assert use_varlen_attention(m)
    out = m(**batch)
    out.loss.backward()
    return float(out.loss.detach()), {k: p.grad for k, p in m.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("preset,name,n", [("tiny_text", "sft_text", 10), ("tiny_vlm", "sft_vlm", 6)])
def test_varlen_equals_block_masked_sdpa(records, preset, name, n):
    model, batch = _batch(preset, records[name][:n], True)
    segs = packed_segments(batch["position_ids"])
    assert segs is not None and sum(len(r) for r in segs) >= n  # every sample its own span
    l0, g0 = _loss_grads(model, batch, False)
    l1, g1 = _loss_grads(model, batch, True)
    assert abs(l0 - l1) < 1e-5
    assert max(float((g1[k] - g0[k]).abs().max() / (g0[k].abs().max() + 1e-12)) for k in g0) < 1e-5


def test_padded_batches_and_generation_use_plain_sdpa(records):
    model, batch = _batch("tiny_text", records["sft_text"][:6], False)
    m = copy.deepcopy(model).eval()
    assert use_varlen_attention(m) and m.config._attn_implementation == NAME
    with torch.no_grad():
        assert torch.allclose(m(**batch).logits, model.eval()(**batch).logits, atol=1e-6)
    ids = batch["input_ids"][:2, :12]
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding: positions 1,1,1,0,1,... are not a packed layout
    a = m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    b = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert torch.equal(a, b)


def test_packed_sft_runs_use_it_by_default(tmp_path):
    from mmredstar.training import run
    from mmredstar.training.runner import read_metrics

    m = read_metrics(run("tiny/vlm_sft", [f"output_dir={tmp_path / 'v'}", "train.max_steps=2", "train.progress=false"]))
    assert m["packing"] and m["memory_options"]["varlen_attention"] is True
    with pytest.raises(ValueError, match="varlen_attention=true needs data.packing"):
        run("tiny/sft", [f"output_dir={tmp_path / 't'}", "train.max_steps=1", "train.varlen_attention=true"])


def test_segments_follow_each_new_batch_even_at_a_reused_address():
    layouts = [[0, 1, 2, 0, 1, 2], [0, 1, 0, 1, 2, 3], [0, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 0]]
    for _ in range(3):
        for lay in layouts:
            pos = torch.tensor([lay])  # the previous batch's tensor is freed: its memory may be reused
            starts = [i for i, p in enumerate(lay) if p == 0] + [len(lay)]
            assert packed_segments(pos) == [list(zip(starts[:-1], starts[1:], strict=True))]
            assert packed_segments(pos) is packed_segments(pos)  # the same live tensor: read once
            del pos
