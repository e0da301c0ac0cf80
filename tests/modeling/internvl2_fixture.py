"""Write tiny, randomly initialised checkpoints in the ORIGINAL InternVL2 release layout.

The key names and config.json shape follow the InternVL2 releases (``InternVLChatModel``:
``vision_model.*`` InternViT, ``mlp1.{0,1,3}``, ``language_model.*`` Qwen2 or InternLM2, and a
``config.json`` with ``llm_config``/``vision_config``). Used by test_convert.py:

    from tests.modeling.internvl2_fixture import write_original_internvl2
    path = write_original_internvl2(tmp_path, llm="qwen2")
"""

from __future__ import annotations

import json
import os

import torch

VIT = {"architectures": ["InternVisionModel"], "model_type": "intern_vit_6b", "hidden_size": 32, "image_size": 56,
       "patch_size": 14, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, "qkv_bias": True,
       "qk_normalization": False, "norm_type": "layer_norm", "layer_norm_eps": 1e-6, "initializer_factor": 1.0,
       "hidden_act": "gelu", "use_flash_attn": False, "drop_path_rate": 0.0, "dropout": 0.0, "attention_dropout": 0.0,
       "num_channels": 3, "initializer_range": 0.02}
QWEN2 = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1280,
         "max_position_embeddings": 2048, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "hidden_act": "silu",
         "tie_word_embeddings": False, "use_sliding_window": False, "sliding_window": 2048, "max_window_layers": 2,
         "bos_token_id": 1227, "eos_token_id": 1229, "torch_dtype": "float32", "initializer_range": 0.02}
INTERNLM2 = {"architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2", "auto_map": {
    "AutoConfig": "configuration_internlm2.InternLM2Config", "AutoModelForCausalLM":
    "modeling_internlm2.InternLM2ForCausalLM"}, "attn_implementation": "eager", "bias": False, "hidden_act": "silu",
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 8,
    "num_key_value_heads": 2, "vocab_size": 1280, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
    "rope_theta": 1000000, "rope_scaling": None, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
    "pad_token_id": 2, "torch_dtype": "float32", "initializer_range": 0.02}


def _rand(*shape, std=0.05, g=None):
    return torch.randn(*shape, generator=g) * std


def vit_state(vc: dict, g) -> dict:
    c, i, p = vc["hidden_size"], vc["intermediate_size"], vc["patch_size"]
    n = (vc["image_size"] // p) ** 2
    rms = vc["norm_type"] == "rms_norm"
    sd = {"vision_model.embeddings.class_embedding": _rand(1, 1, c, g=g),
          "vision_model.embeddings.patch_embedding.weight": _rand(c, 3, p, p, g=g),
          "vision_model.embeddings.patch_embedding.bias": _rand(c, g=g),
          "vision_model.embeddings.position_embedding": _rand(1, n + 1, c, g=g)}
    for layer in range(vc["num_hidden_layers"]):
        b = f"vision_model.encoder.layers.{layer}."
        sd[b + "attn.qkv.weight"] = _rand(3 * c, c, std=0.2, g=g)
        if vc["qkv_bias"]:
            sd[b + "attn.qkv.bias"] = _rand(3 * c, g=g)
        if vc["qk_normalization"]:
            sd[b + "attn.q_norm.weight"] = 1 + _rand(c, std=0.1, g=g)
            sd[b + "attn.k_norm.weight"] = 1 + _rand(c, std=0.1, g=g)
        sd[b + "attn.proj.weight"] = _rand(c, c, std=0.2, g=g)
        sd[b + "attn.proj.bias"] = _rand(c, g=g)
        sd[b + "mlp.fc1.weight"] = _rand(i, c, std=0.2, g=g)
        sd[b + "mlp.fc1.bias"] = _rand(i, g=g)
        sd[b + "mlp.fc2.weight"] = _rand(c, i, std=0.2, g=g)
        sd[b + "mlp.fc2.bias"] = _rand(c, g=g)
        for norm in ("norm1", "norm2"):
            sd[b + f"{norm}.weight"] = 1 + _rand(c, std=0.1, g=g)
            if not rms:
                sd[b + f"{norm}.bias"] = _rand(c, g=g)
        sd[b + "ls1"] = 0.5 + _rand(c, std=0.2, g=g)
        sd[b + "ls2"] = 0.5 + _rand(c, std=0.2, g=g)
    return sd


def internlm2_state(lc: dict, g) -> dict:
    h, i, v = lc["hidden_size"], lc["intermediate_size"], lc["vocab_size"]
    heads, kv = lc["num_attention_heads"], lc["num_key_value_heads"]
    hd = h // heads
    sd = {"language_model.model.tok_embeddings.weight": _rand(v, h, g=g),
          "language_model.model.norm.weight": 1 + _rand(h, std=0.1, g=g),
          "language_model.output.weight": _rand(v, h, g=g)}
    for layer in range(lc["num_hidden_layers"]):
        b = f"language_model.model.layers.{layer}."
        sd[b + "attention.wqkv.weight"] = _rand((heads + 2 * kv) * hd, h, std=0.2, g=g)
        sd[b + "attention.wo.weight"] = _rand(h, heads * hd, std=0.2, g=g)
        sd[b + "feed_forward.w1.weight"] = _rand(i, h, std=0.2, g=g)
        sd[b + "feed_forward.w3.weight"] = _rand(i, h, std=0.2, g=g)
        sd[b + "feed_forward.w2.weight"] = _rand(h, i, std=0.2, g=g)
        sd[b + "attention_norm.weight"] = 1 + _rand(h, std=0.1, g=g)
        sd[b + "ffn_norm.weight"] = 1 + _rand(h, std=0.1, g=g)
    return sd


def qwen2_state(lc: dict, g) -> dict:
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model("qwen2", **{k: v for k, v in lc.items() if k not in ("architectures", "model_type")})
    with torch.device("meta"):
        shapes = {k: t.shape for k, t in AutoModelForCausalLM.from_config(cfg).state_dict().items()}
    sd = {}
    for k, shape in shapes.items():
        std = 0.2 if k.endswith("proj.weight") else 0.05
        sd["language_model." + k] = (1 + _rand(*shape, std=0.1, g=g)) if "norm" in k else _rand(*shape, std=std, g=g)
    return sd


def write_original_internvl2(root, *, llm: str = "qwen2", qk_norm: bool = False, seed: int = 0) -> str:
    """A tiny InternVL2-layout checkpoint directory (config.json, model.safetensors, tokenizer)."""
    from safetensors.torch import save_file

    from mmredstar.modeling.tokenizer import build_tiny_tokenizer, finish_tokenizer

    g = torch.Generator().manual_seed(seed)
    vc = dict(VIT)
    if qk_norm:
        vc.update(qk_normalization=True, norm_type="rms_norm", qkv_bias=False)
    lc = dict(QWEN2 if llm == "qwen2" else INTERNLM2)
    config = {"architectures": ["InternVLChatModel"], "model_type": "internvl_chat",
              "auto_map": {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
                           "AutoModel": "modeling_internvl_chat.InternVLChatModel"},
              "downsample_ratio": 0.5, "dynamic_image_size": True, "force_image_size": vc["image_size"],
              "max_dynamic_patch": 6, "min_dynamic_patch": 1, "ps_version": "v2", "select_layer": -1,
              "template": "internlm2-chat" if llm == "internlm2" else "Hermes-2", "use_thumbnail": True,
              "use_backbone_lora": 0, "use_llm_lora": 0, "torch_dtype": "float32",
              "llm_config": lc, "vision_config": vc}
    c = vc["hidden_size"] * 4
    h = lc["hidden_size"]
    sd = vit_state(vc, g)
    sd.update(internlm2_state(lc, g) if llm == "internlm2" else qwen2_state(lc, g))
    sd.update({"mlp1.0.weight": 1 + _rand(c, std=0.1, g=g), "mlp1.0.bias": _rand(c, g=g),
               "mlp1.1.weight": _rand(h, c, std=0.2, g=g), "mlp1.1.bias": _rand(h, g=g),
               "mlp1.3.weight": _rand(h, h, std=0.2, g=g), "mlp1.3.bias": _rand(h, g=g)})
    path = os.path.join(str(root), f"InternVL2-tiny-{llm}{'-qknorm' if qk_norm else ''}")
    os.makedirs(path, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(path, "model.safetensors"))
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    finish_tokenizer(build_tiny_tokenizer()).save_pretrained(path)
    return path
