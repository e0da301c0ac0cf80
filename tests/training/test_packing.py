"""Packing and truncation: packed SFT gives the same loss as unpacked on the same samples (text and
images, to 1e-5), position ids restart per sample, image spans are never cut, drops are counted.

    .venv/bin/python -m pytest -q tests/training/test_packing.py
"""

import torch

from mmredstar.training.packing import SFTCollator, TruncationStats, fit_length, merge, pack
from mmredstar.training.sft import SFTDataset, encode_sft, sft_loss

TOL = 1e-5


def _dataset(records, processor, packing, max_length):
    return SFTDataset(records, processor, max_length=max_length, truncation="truncate", packing=packing,
                      loss_on_think=True, blank_images=False, progress=False)


def _packed_vs_unpacked(preset, recs, max_length):
    from mmredstar.modeling import load_model

    model, proc = load_model(preset, seed=0)
    model.eval()
    packed = _dataset(recs, proc, True, max_length)
    plain = _dataset(recs, proc, False, max_length)
    assert len(packed) < len(plain)  # several samples per row
    pb = SFTCollator(proc, packed=True)([packed[i] for i in range(len(packed))])
    ub = SFTCollator(proc, packed=False)([plain[i] for i in range(len(plain))])
    assert "attention_mask" not in pb
    # every sample's positions restart at 0
    row0 = packed[0]
    starts = [i for i, p in enumerate(row0["position_ids"]) if p == 0]
    assert len(starts) == len(packed.rows[0]) > 1
    assert int((pb["labels"] != -100).sum()) == int((ub["labels"][:, 1:] != -100).sum())
    return float(sft_loss(model, pb)), float(sft_loss(model, ub))


def test_packed_loss_equals_unpacked_text(records):
    lp, lu = _packed_vs_unpacked("tiny_text", records["sft_text"][:12], 128)
    assert abs(lp - lu) < TOL, (lp, lu)


def test_packed_loss_equals_unpacked_with_images(records):
    lp, lu = _packed_vs_unpacked("tiny_vlm", records["sft_vlm"][:8], 256)
    assert abs(lp - lu) < TOL, (lp, lu)


def test_pack_is_first_fit_decreasing_and_bounded():
    lengths = [7, 3, 5, 2, 9, 4, 1]
    bins = pack(lengths, 10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 4  # ceil(31/10) = 4 is optimal here


def test_merge_masks_the_first_label_of_each_sample():
    a = {"input_ids": [1, 2, 3], "labels": [5, 2, 3]}
    b = {"input_ids": [4, 5], "labels": [4, 5]}
    row = merge([a, b])
    assert row["position_ids"] == [0, 1, 2, 0, 1]
    assert row["labels"] == [-100, 2, 3, -100, 5]


def test_truncation_never_cuts_an_image_span(records):
    from mmredstar.modeling import load_model

    _, proc = load_model("tiny_vlm", seed=0)
    s = records["sft_vlm"][0][0]
    f = encode_sft(proc, s, loss_on_think=True, blank_images=False)
    (start, end), = f["image_spans"]
    stats = TruncationStats()
    # a cut inside the image span moves before it: the image goes, and with nothing left to learn the sample too
    assert fit_length(f, (start + end) // 2, "truncate", stats) is None
    assert stats.samples_dropped == 1 and stats.reasons == {"nothing left to learn after truncation": 1}
    # a cut in the response keeps the image whole
    n = len(f["input_ids"])
    g = fit_length(f, n - 3, "truncate", stats)
    assert g is not None and len(g["input_ids"]) == n - 3 and g["image_spans"] == [[start, end]]
    assert g["pixel_values"].shape == f["pixel_values"].shape and stats.samples_truncated == 1
    assert stats.tokens_dropped == n + 3  # the dropped sample counts whole
    # drop policy drops and counts
    assert fit_length(f, n - 3, "drop", stats) is None and stats.samples_dropped == 2


def test_truncation_drops_the_image_with_the_cut():
    f = {"input_ids": list(range(20)), "labels": [-100] * 4 + list(range(4, 20)), "attention_mask": [1] * 20,
         "image_spans": [[2, 5], [8, 14]], "num_tiles": [1, 2], "pixel_values": torch.zeros(3, 3, 4, 4)}
    stats = TruncationStats()
    g = fit_length(f, 10, "truncate", stats)
    assert len(g["input_ids"]) == 8 and g["image_spans"] == [[2, 5]] and g["num_tiles"] == [1]
    assert g["pixel_values"].shape[0] == 1 and stats.images_dropped == 1 and stats.tokens_dropped == 12


def test_loss_on_think_false_masks_the_think_block(records):
    from mmredstar.modeling import load_model

    _, proc = load_model("tiny_text", seed=0)
    s = records["sft_text"][0][0]
    with_think = encode_sft(proc, s, loss_on_think=True, blank_images=False)
    no_think = encode_sft(proc, s, loss_on_think=False, blank_images=False)
    target = proc.tokenizer.decode([t for t, lab in zip(no_think["input_ids"], no_think["labels"], strict=True) if lab != -100])
    assert "<think>" not in target and "boxed" in target
    full = proc.tokenizer.decode([t for t, lab in zip(with_think["input_ids"], with_think["labels"], strict=True) if lab != -100])
    assert full.startswith("<think>")
