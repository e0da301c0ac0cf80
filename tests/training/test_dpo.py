"""DPO through TRL learns on CPU (text and VLM): the DPO loss falls from ln 2, reward accuracy and
margin rise, weights move (the vision tower too for the VLM); pre-computed reference log-probs work.

    .venv/bin/python -m pytest -q tests/training/test_dpo.py
"""

import math

import pytest

from mmredstar.training import run
from mmredstar.training.dpo import PreferenceCollator, encode_pair, fit_pair
from mmredstar.training.packing import TruncationStats
from mmredstar.training.runner import read_metrics


def _mean(series, k=5, last=True):
    vals = [v for _, v in series]
    vals = vals[-k:] if last else vals[:k]
    return sum(vals) / len(vals)


def test_tiny_text_dpo_learns(tmp_path):
    from safetensors.torch import load_file

    out = run("tiny/dpo", [f"output_dir={tmp_path / 'dpo'}", "train.progress=false"])
    m = read_metrics(out)
    assert m["steps"] == 30 and abs(m["first_loss"] - math.log(2)) < 1e-3  # policy == reference at step 1
    assert m["last_loss"] < 0.5 * m["first_loss"], m
    acc, margin = m["series"]["rewards/accuracies"], m["series"]["rewards/margins"]
    assert _mean(acc) >= 0.75 and _mean(margin) > 1.0 > _mean(margin, last=False)
    from mmredstar.modeling import load_model

    init, _ = load_model("tiny_text", seed=0)
    trained = load_file(f"{out}/model.safetensors")
    assert max(float((trained[k] - v).abs().max()) for k, v in init.state_dict().items() if k in trained) > 1e-2


def test_tiny_vlm_dpo_learns_and_uses_images(tmp_path):
    from safetensors.torch import load_file

    from mmredstar.modeling import load_model

    out = run("tiny/vlm_dpo", [f"output_dir={tmp_path / 'vdpo'}", "train.progress=false"])
    m = read_metrics(out)
    assert m["last_loss"] < 0.6 * m["first_loss"] and _mean(m["series"]["rewards/accuracies"]) >= 0.75, m
    init, _ = load_model("tiny_vlm", seed=0)
    trained = load_file(f"{out}/model.safetensors")
    before = init.state_dict()
    vis = [k for k in trained if k.startswith(("vision_model.", "mlp1."))]
    assert vis and max(float((trained[k] - before[k]).abs().max()) for k in vis) > 1e-4


def test_precomputed_reference_logps_match_live_reference(tmp_path):
    a = read_metrics(run("tiny/dpo", [f"output_dir={tmp_path / 'a'}", "train.max_steps=4", "train.progress=false"]))
    b = read_metrics(run("tiny/dpo", [f"output_dir={tmp_path / 'b'}", "train.max_steps=4", "train.progress=false",
                                      "dpo.precompute_ref_log_probs=true"]))
    la, lb = [v for _, v in a["series"]["loss"]], [v for _, v in b["series"]["loss"]]
    assert la == pytest.approx(lb, abs=1e-4)


def test_pair_encoding_and_length_policy(records):
    from mmredstar.modeling import load_model

    _, proc = load_model("tiny_vlm", seed=0)
    pair = records["dpo_vlm"][0][0]
    f = encode_pair(proc, pair)
    full = proc.encode(pair, pair.chosen.text)["input_ids"]
    assert f["prompt_ids"] + f["chosen_ids"] == full and f["chosen_ids"] != f["rejected_ids"]
    stats = TruncationStats()
    n = len(f["prompt_ids"])
    cut = fit_pair(f, n + 4, "truncate", stats)
    assert len(cut["chosen_ids"]) == 4 and cut["prompt_ids"] == f["prompt_ids"] and stats.samples_truncated == 1
    assert fit_pair(f, n, "truncate", stats) is None and stats.reasons == {"prompt fills max_length": 1}
    # the collator lays images out like TRL lays out rows: chosen rows first, then rejected rows
    coll = PreferenceCollator(proc, [r for r, _, _ in records["dpo_vlm"][:2]], proc.tokenizer.pad_token_id, False)
    ex = [dict(encode_pair(proc, r), idx=i) for i, (r, _, _) in enumerate(records["dpo_vlm"][:2])]
    batch = coll(ex)
    assert batch["input_ids"].shape[0] == 4 and batch["pixel_values"].shape[0] == 2 * sum(
        len(r.images) for r, _, _ in records["dpo_vlm"][:2])
