"""Original InternVL2 release layout -> our VLM and transformers' InternVL: every weight used, no missing or
unexpected keys, identical logits; checked against reference computations on the ORIGINAL keys.

    .venv/bin/python -m pytest -q tests/modeling/test_internvl_convert.py
"""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn.functional as F

from mmredstar.modeling import load_model
from mmredstar.modeling.convert import original_to_hf, read_state_dict, split_wqkv
from mmredstar.schema import ImageRef, Message, Sample
from tests.modeling.internvl2_fixture import write_original_internvl2

CASES = [("qwen2", False), ("internlm2", False), ("internlm2", True)]


def _sample(make_image):
    imgs = [ImageRef.from_image(make_image(5, (112, 56))), ImageRef.from_image(make_image(3, (56, 56)))]
    return Sample(prompt=[Message.make("user", 0, 1, "Which has more sides?")], images=imgs, answer="A",
                  answer_type="choice")


def reference_intern_vit(sd: dict, vc: dict, pixel_values: torch.Tensor) -> torch.Tensor:
    """InternViT's forward written directly on the original keys (fused qkv, ls1/ls2, no final norm)."""
    p = "vision_model."
    c, heads = vc["hidden_size"], vc["num_attention_heads"]
    x = F.conv2d(pixel_values, sd[p + "embeddings.patch_embedding.weight"], sd[p + "embeddings.patch_embedding.bias"],
                 stride=vc["patch_size"])
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([sd[p + "embeddings.class_embedding"].expand(x.shape[0], 1, c), x], 1)
    x = x + sd[p + "embeddings.position_embedding"]

    def norm(h, name):
        if vc["norm_type"] == "rms_norm":
            return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + vc["layer_norm_eps"]) * sd[name + ".weight"]
        return F.layer_norm(h, (c,), sd[name + ".weight"], sd[name + ".bias"], vc["layer_norm_eps"])

    for i in range(vc["num_hidden_layers"]):
        b = f"{p}encoder.layers.{i}."
        h = norm(x, b + "norm1")
        qkv = F.linear(h, sd[b + "attn.qkv.weight"], sd.get(b + "attn.qkv.bias"))
        B, N, _ = qkv.shape
        q, k, v = qkv.reshape(B, N, 3, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
        if vc["qk_normalization"]:
            def rms(t, w, B=B, N=N):
                t = t.transpose(1, 2).flatten(-2)
                t = t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + vc["layer_norm_eps"]) * w
                return t.view(B, N, heads, c // heads).transpose(1, 2)
            q, k = rms(q, sd[b + "attn.q_norm.weight"]), rms(k, sd[b + "attn.k_norm.weight"])
        att = ((q * (c // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        a = (att @ v).transpose(1, 2).reshape(B, N, c)
        x = x + F.linear(a, sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"]) * sd[b + "ls1"]
        h = F.linear(F.gelu(F.linear(norm(x, b + "norm2"), sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"])),
                     sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
        x = x + h * sd[b + "ls2"]
    return x


@pytest.mark.parametrize("llm,qk_norm", CASES)
def test_original_layout_converts_and_matches_transformers(tmp_path, make_image, llm, qk_norm):
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    path = write_original_internvl2(tmp_path, llm=llm, qk_norm=qk_norm)
    model, proc = load_model(path, dtype="float32")
    model.eval()
    assert type(model).__name__ == "VisionLanguageModel"
    assert proc.tile_size == 56 and proc.max_tiles == 6 and proc.use_thumbnail and proc.tokens_per_tile == 4

    orig = read_state_dict(path)
    config = json.load(open(os.path.join(path, "config.json")))
    # every original weight landed in our model: total element count agrees
    ours = {k: v for k, v in model.state_dict().items()}
    assert sum(v.numel() for v in orig.values()) == sum(v.numel() for v in ours.values())

    # the same weights through transformers' own InternVL classes
    hf_cfg, hf_state = original_to_hf(config, orig, image_token_id=proc.image_token_id)
    hf = InternVLForConditionalGeneration(InternVLConfig.from_dict(hf_cfg)).eval()
    result = hf.load_state_dict(hf_state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys

    batch = proc.collate([proc.encode(_sample(make_image), "The first.")])
    assert batch["num_tiles"].tolist() == [3, 1]
    with torch.no_grad():
        a = model(**batch).logits
        b = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
               pixel_values=batch["pixel_values"]).logits
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()

    # independent check of the vision conversion: InternViT computed on the original keys
    with torch.no_grad():
        ref = reference_intern_vit(orig, config["vision_config"], batch["pixel_values"])
        got = model.vision_model(pixel_values=batch["pixel_values"]).last_hidden_state
    assert torch.allclose(ref, got, atol=1e-5), (ref - got).abs().max()

    # and of the projector: original mlp1 on pixel-shuffled features
    with torch.no_grad():
        feats = model.extract_feature(batch["pixel_values"])
        x = ref[:, 1:].reshape(ref.shape[0], 4, 4, -1)
        from mmredstar.modeling.vlm import pixel_shuffle

        x = pixel_shuffle(x, 0.5).reshape(ref.shape[0], 4, -1)
        x = F.layer_norm(x, x.shape[-1:], orig["mlp1.0.weight"], orig["mlp1.0.bias"])
        x = F.linear(F.gelu(F.linear(x, orig["mlp1.1.weight"], orig["mlp1.1.bias"])), orig["mlp1.3.weight"],
                     orig["mlp1.3.bias"])
    assert torch.allclose(feats, x, atol=1e-5)


def test_internlm2_wqkv_split_matches_its_attention_layout():
    """InternLM2 computes q/k/v from packed wqkv as (kv heads, [q x g, k, v], head_dim); the split must agree."""
    heads, kv, hd, hidden = 8, 2, 4, 32
    g = heads // kv
    w = torch.randn((heads + 2 * kv) * hd, hidden)
    x = torch.randn(3, 5, hidden)
    packed = (x @ w.T).reshape(3, 5, kv, g + 2, hd)
    q_ref = packed[..., :g, :].reshape(3, 5, heads, hd)
    k_ref, v_ref = packed[..., -2, :], packed[..., -1, :]
    q, k, v = split_wqkv(w, heads, kv, hd)
    assert torch.allclose((x @ q.T).view(3, 5, heads, hd), q_ref, atol=1e-5)
    assert torch.allclose((x @ k.T).view(3, 5, kv, hd), k_ref, atol=1e-5)
    assert torch.allclose((x @ v.T).view(3, 5, kv, hd), v_ref, atol=1e-5)


def test_transformers_native_checkpoint_loads(tmp_path, make_image):
    """An InternVL ``-hf`` directory (what transformers saves) loads with identical logits."""
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    path = write_original_internvl2(tmp_path, llm="qwen2")
    config = json.load(open(os.path.join(path, "config.json")))
    model, proc = load_model(path, dtype="float32")
    hf_cfg, hf_state = original_to_hf(config, read_state_dict(path), image_token_id=proc.image_token_id)
    hf = InternVLForConditionalGeneration(InternVLConfig.from_dict(hf_cfg))
    hf.load_state_dict(hf_state, strict=True)
    out = tmp_path / "InternVL2-tiny-hf"
    hf.save_pretrained(out)
    proc.tokenizer.save_pretrained(out)
    again, proc2 = load_model(str(out), dtype="float32")
    assert proc2.tile_size == 56 and proc2.max_tiles == 6
    batch = proc.collate([proc.encode(_sample(make_image), "x")])
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, again(**batch).logits, atol=1e-6)


def test_unexpected_weights_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    path = write_original_internvl2(tmp_path, llm="internlm2")
    sd = load_file(os.path.join(path, "model.safetensors"))
    sd["vision_model.encoder.layers.0.attn.extra.weight"] = torch.zeros(2)
    save_file(sd, os.path.join(path, "model.safetensors"))
    with pytest.raises(ValueError, match="attn.extra.weight"):
        load_model(path)
    del sd["vision_model.encoder.layers.0.attn.extra.weight"]
    del sd["mlp1.3.bias"]
    save_file(sd, os.path.join(path, "model.safetensors"))
    with pytest.raises(ValueError, match="mlp1.3.bias|missing"):
        load_model(path)
