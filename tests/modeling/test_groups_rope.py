"""Freezing and per-module learning rates; RoPE scaling (Position Interpolation) from presets and overrides.

    .venv/bin/python -m pytest -q tests/modeling/test_groups_rope.py
"""

from __future__ import annotations

import pytest
import torch

from mmredstar.modeling import load_model, load_preset, param_groups, text_config_of
from mmredstar.schema import ImageRef, Sample


def test_freeze_and_lr_groups(make_image):
    model, proc = load_model("tiny_vlm", seed=0)
    groups = param_groups(model, lrs={"projector": 1e-2, "llm": 1e-3}, freeze={"vision": True})
    assert [g["name"] for g in groups] == ["projector", "lm"]
    assert [g["lr"] for g in groups] == [1e-2, 1e-3]
    assert all(not p.requires_grad for p in model.vision_model.parameters())
    assert all(p.requires_grad for p in model.mlp1.parameters())
    ids = {id(p) for g in groups for p in g["params"]}
    assert ids == {id(p) for n, p in model.named_parameters() if not n.startswith("vision_model")}
    opt = torch.optim.SGD(groups, lr=0.5)
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 1e-3]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    s = Sample.with_images("Color?", [ImageRef.from_image(make_image())], "red", "text")
    model.train()
    model(**proc.collate([proc.encode(s, "red")])).loss.backward()
    opt.step()
    for n, p in model.named_parameters():
        if n.startswith("vision_model"):
            assert torch.equal(p, before[n]), n
    assert not torch.equal(model.mlp1[1].weight, before["mlp1.1.weight"])
    # the step size follows each group's learning rate: same gradient scale, 10x lr -> ~10x update
    d_proj = (model.mlp1[3].bias - before["mlp1.3.bias"]).abs().max() / model.mlp1[3].bias.grad.abs().max()
    d_lm = (model.language_model.model.norm.weight - before["language_model.model.norm.weight"]).abs().max() / \
        model.language_model.model.norm.weight.grad.abs().max()
    assert torch.isclose(d_proj, torch.tensor(1e-2), rtol=1e-3) and torch.isclose(d_lm, torch.tensor(1e-3), rtol=1e-3)
    # unfreezing gives the vision tower back, weight decay splits groups
    groups = param_groups(model, lrs={"vision": 1e-5}, freeze={}, weight_decay=0.1)
    assert all(p.requires_grad for p in model.parameters())
    names = [g["name"] for g in groups]
    assert names == ["vision", "vision.no_decay", "projector", "projector.no_decay", "lm", "lm.no_decay"]
    assert all(g["weight_decay"] == 0.0 for g in groups if g["name"].endswith("no_decay"))
    with pytest.raises(ValueError, match="unknown part"):
        param_groups(model, lrs={"decoder": 1e-4})


def test_text_model_has_only_the_lm(tiny_text):
    model, _ = tiny_text
    groups = param_groups(model, lrs={"lm": 2e-5, "vision": 1e-6})
    assert [g["name"] for g in groups] == ["lm"] and groups[0]["lr"] == 2e-5
    assert sum(p.numel() for p in groups[0]["params"]) == sum(p.numel() for p in model.parameters())
    param_groups(model, freeze={"lm": True})
    assert not any(p.requires_grad for p in model.parameters())
    param_groups(model, freeze={"lm": False})


def rotary(model_or_config, positions: torch.Tensor):
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

    cfg = model_or_config
    rot = Qwen2RotaryEmbedding(cfg)
    x = torch.zeros(1, 1, dtype=torch.float32)
    return rot(x, positions.view(1, -1).to(torch.float32))


def test_position_interpolation_divides_positions():
    """PI with factor f: rotary cos/sin at position p equal the unscaled ones at p / f."""
    pi = text_config_of(load_preset("qwen2_5_math_7b_instruct_16k"))
    base = text_config_of(load_preset("qwen2_5_math_7b_instruct"))
    assert pi.rope_parameters["rope_type"] == "linear" and pi.rope_parameters["factor"] == 4.0
    assert pi.rope_parameters["rope_theta"] == base.rope_parameters["rope_theta"] == 10000.0
    p = torch.tensor([0, 1, 3, 4, 1000, 4095, 8191, 12345, 16383])
    cos_s, sin_s = rotary(pi, p)
    cos_u, sin_u = rotary(base, p / 4.0)
    assert torch.allclose(cos_s, cos_u, atol=1e-5) and torch.allclose(sin_s, sin_u, atol=1e-5)
    cos_b, _ = rotary(base, p)
    assert not torch.allclose(cos_s, cos_b, atol=1e-3)   # really scaled
    assert load_preset("qwen2_5_math_7b_instruct_16k").context_length == 16384


def test_rope_overrides_reach_the_model():
    m, _ = load_model("tiny_text", rope_scaling={"type": "linear", "factor": 2.0}, max_position_embeddings=8192)
    rp = m.config.rope_parameters
    assert rp["rope_type"] == "linear" and rp["factor"] == 2.0 and m.config.max_position_embeddings == 8192
    p = torch.arange(0, 64)
    cos_s, _ = m.model.rotary_emb(torch.zeros(1), p.view(1, -1))
    base, _ = load_model("tiny_text")
    cos_u, _ = base.model.rotary_emb(torch.zeros(1), (p / 2.0).view(1, -1))
    assert torch.allclose(cos_s, cos_u, atol=1e-6)
    vlm, _ = load_model("tiny_vlm", rope_scaling={"rope_type": "dynamic", "factor": 2.0})
    assert vlm.config.text_config.rope_parameters["rope_type"] == "dynamic"
    yarn, _ = load_model("tiny_text", rope_scaling={"rope_type": "yarn", "factor": 4.0})
    assert yarn.config.rope_parameters["original_max_position_embeddings"] == 4096
