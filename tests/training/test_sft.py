"""SFT learns on CPU (text and VLM): weights move, the loss falls, and a run leaves its files
(weights + processor that load back, metrics.json, recipe.resolved.yaml, data_manifest.json, loss.png).

    .venv/bin/python -m pytest -q tests/training/test_sft.py
"""

import json
import os

import yaml

from mmredstar.stages import sha256_file
from mmredstar.training import run
from mmredstar.training.packing import SFTCollator
from mmredstar.training.runner import read_metrics
from mmredstar.training.sft import SFTDataset, sft_loss

from .conftest import moved, snapshot


def _loss_on(model, processor, recs):
    ds = SFTDataset(recs, processor, max_length=512, truncation="truncate", packing=False, loss_on_think=True,
                    blank_images=False, progress=False)
    model.eval()
    return float(sft_loss(model, SFTCollator(processor, packed=False)([ds[i] for i in range(len(ds))])))


def test_tiny_text_sft_learns_and_writes_run_files(tmp_path, records):
    from mmredstar.modeling import load_model

    init, proc = load_model("tiny_text", seed=0)  # the recipe's seed: the run starts from these weights
    out = run("tiny/sft", [f"output_dir={tmp_path / 'sft'}", "train.progress=false"])
    m = read_metrics(out)
    assert m["steps"] == 100 and m["first_loss"] > 6 and m["last_loss"] < 0.5 * m["first_loss"], m
    assert m["tokens_per_s"] > 0 and m["truncation"]["samples_dropped"] == 0 and m["train_records"] == 24
    assert len(m["series"]["loss"]) == 100
    trained, proc2 = load_model(out)
    assert moved(snapshot(init), trained) > 1e-2
    recs = records["sft_text"]
    assert _loss_on(trained, proc2, recs) < 0.5 * _loss_on(init, proc, recs)
    resolved = yaml.safe_load(open(os.path.join(out, "recipe.resolved.yaml")))
    assert resolved["method"] == "sft" and resolved["train"]["max_steps"] == 100 and resolved["output_dir"] == out
    man = json.load(open(os.path.join(out, "data_manifest.json")))
    (entry,) = man["files"]
    assert entry["records"] == 24 and entry["sha256"] == sha256_file(entry["path"])
    assert os.path.getsize(os.path.join(out, "loss.png")) > 1000


def test_tiny_vlm_sft_packed_learns(tmp_path, records):
    from mmredstar.modeling import load_model

    init, proc = load_model("tiny_vlm", seed=0)
    out = run("tiny/vlm_sft", [f"output_dir={tmp_path / 'vlm'}", "train.max_steps=12", "train.progress=false"])
    m = read_metrics(out)
    assert m["packing"] and m["data"]["rows"] < m["data"]["samples"]
    assert m["steps"] == 12 and m["last_loss"] < 0.7 * m["first_loss"], m
    trained, proc2 = load_model(out)
    assert moved(snapshot(init), trained) > 1e-2
    # the vision tower and projector moved too: images reach the loss
    vis = [k for k in snapshot(init) if k.startswith(("vision_model.", "mlp1."))]
    before, after = snapshot(init), trained.state_dict()
    assert max(float((after[k] - before[k]).abs().max()) for k in vis) > 1e-3
    assert _loss_on(trained, proc2, records["sft_vlm"]) < _loss_on(init, proc, records["sft_vlm"])
