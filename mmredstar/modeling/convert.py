"""Checkpoint conversion: original InternVL2 releases and transformers-native InternVL (``-hf``)
checkpoints into ``VisionLanguageModel`` (and original -> ``-hf``, for transformers' own classes).

Three key layouts:

* original InternVL2 (``model_type: internvl_chat``, ``config.json`` with ``vision_config`` and
  ``llm_config``): ``vision_model.embeddings.{class_embedding,patch_embedding,position_embedding}``,
  ``vision_model.encoder.layers.N.{attn.qkv,attn.proj,attn.q_norm,attn.k_norm,mlp.fc1,mlp.fc2,norm1,norm2,
  ls1,ls2}``, ``mlp1.{0,1,3}``, and the LLM under ``language_model.``: Qwen2/Llama keys as they are
  (``language_model.model.*``, ``language_model.lm_head``), or InternLM2 keys
  (``model.tok_embeddings``, ``attention.wqkv`` packed per KV group, ``attention.wo``,
  ``feed_forward.w1/w3/w2``, ``attention_norm``, ``ffn_norm``, ``output``), converted to Llama.
* transformers-native (``model_type: internvl``): ``model.vision_tower.*`` (``InternVLVisionModel``),
  ``model.multi_modal_projector.{layer_norm,linear_1,linear_2}``, ``model.language_model.*``, ``lm_head``.
* ours (``model_type: mmredstar_vlm``): ``vision_model.*`` (``InternVLVisionModel`` keys), ``mlp1.*``,
  ``language_model.{model.*,lm_head}``.

    from mmredstar.modeling.convert import original_to_hf, hf_to_ours
    hf_config, hf_state = original_to_hf(config_dict, state_dict)

``load_model(dir)`` calls these; every weight must be used, and missing or unexpected keys raise.
"""

from __future__ import annotations

import glob
import json
import os
import re

import torch

from mmredstar.modeling.rope import apply_rope

# ------------------------------------------------------------------------------------------ I/O


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory (``*.safetensors`` shards, else ``pytorch_model*.bin``)."""
    files = sorted(glob.glob(os.path.join(path, "*.safetensors")))
    state: dict[str, torch.Tensor] = {}
    from tqdm.auto import tqdm

    if files:
        from safetensors.torch import load_file

        for f in tqdm(files, desc="reading shards", disable=len(files) < 2):
            state.update(load_file(f))
        return state
    files = sorted(glob.glob(os.path.join(path, "pytorch_model*.bin")))
    if not files:
        raise ValueError(f"{path}: no *.safetensors or pytorch_model*.bin weights found")
    for f in tqdm(files, desc="reading shards", disable=len(files) < 2):
        state.update(torch.load(f, map_location="cpu", weights_only=True))
    return state


def _read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ------------------------------------------------------------------------------------------ configs

def internlm2_to_llama_config(llm: dict):
    """An InternLM2 ``llm_config`` as a transformers ``LlamaConfig`` (same math, Llama key names)."""
    from transformers import LlamaConfig

    heads = llm["num_attention_heads"]
    rope = llm.get("rope_scaling")
    kw = dict(
        vocab_size=llm["vocab_size"], hidden_size=llm["hidden_size"], intermediate_size=llm["intermediate_size"],
        num_hidden_layers=llm["num_hidden_layers"], num_attention_heads=heads,
        num_key_value_heads=llm.get("num_key_value_heads", heads), hidden_act=llm.get("hidden_act", "silu"),
        max_position_embeddings=llm.get("max_position_embeddings", 32768), rms_norm_eps=llm.get("rms_norm_eps", 1e-5),
        attention_bias=bool(llm.get("bias", False)), mlp_bias=False, tie_word_embeddings=bool(llm.get("tie_word_embeddings", False)),
        initializer_range=llm.get("initializer_range", 0.02), bos_token_id=llm.get("bos_token_id"),
        eos_token_id=llm.get("eos_token_id"), pad_token_id=llm.get("pad_token_id"),
    )
    params = {"rope_theta": float(llm.get("rope_theta", 10000.0))}
    if rope:
        params.update({k: v for k, v in rope.items() if k != "type"})
        params["rope_type"] = rope.get("rope_type", rope.get("type", "default"))
    else:
        params["rope_type"] = "default"
    kw["rope_parameters"] = params
    return LlamaConfig(**kw)


def _llm_kind(llm: dict) -> str:
    arch = (llm.get("architectures") or [""])[0]
    mt = llm.get("model_type", "")
    if arch.startswith("InternLM2") or mt == "internlm2":
        return "internlm2"
    return mt or {"Qwen2ForCausalLM": "qwen2", "LlamaForCausalLM": "llama"}.get(arch, "")


def text_config_dict(llm: dict) -> dict:
    """The LLM config as a transformers config dict (InternLM2 becomes Llama)."""
    if _llm_kind(llm) == "internlm2":
        d = internlm2_to_llama_config(llm).to_dict()
    else:
        from transformers import AutoConfig

        keep = {k: v for k, v in llm.items() if k not in ("architectures", "auto_map", "_name_or_path",
                                                         "transformers_version", "attn_implementation")}
        mt = keep.pop("model_type", None) or _llm_kind(llm)
        d = AutoConfig.for_model(mt, **keep).to_dict()
    return d


def intern_vit_to_hf_vision(vc: dict) -> dict:
    """An original ``InternVisionConfig`` as ``InternVLVisionConfig`` keyword arguments."""
    image = vc.get("image_size", 448)
    patch = vc.get("patch_size", 14)
    return {
        "hidden_size": vc["hidden_size"], "num_hidden_layers": vc["num_hidden_layers"],
        "num_attention_heads": vc["num_attention_heads"], "intermediate_size": vc["intermediate_size"],
        "attention_bias": bool(vc.get("qkv_bias", True)), "use_qk_norm": bool(vc.get("qk_normalization", False)),
        "hidden_act": vc.get("hidden_act", "gelu"), "norm_type": vc.get("norm_type", "rms_norm"),
        "layer_norm_eps": vc.get("layer_norm_eps", 1e-6), "image_size": [image, image] if isinstance(image, int)
        else list(image), "patch_size": [patch, patch] if isinstance(patch, int) else list(patch),
        "num_channels": vc.get("num_channels", 3), "layer_scale_init_value": vc.get("initializer_factor", 0.1),
        "use_mean_pooling": True,  # InternViT has no final norm: the Identity branch
        "initializer_range": vc.get("initializer_range", 0.02),
    }


# ------------------------------------------------------------------------------------------ weights

_VIT_LAYER = {
    "attn.proj.": "attention.projection_layer.", "attn.q_norm.": "attention.q_norm.",
    "attn.k_norm.": "attention.k_norm.", "mlp.fc1.": "mlp.fc1.", "mlp.fc2.": "mlp.fc2.",
    "norm1.": "layernorm_before.", "norm2.": "layernorm_after.",
}


def convert_intern_vit(state: dict, src: str = "vision_model.", dst: str = "model.vision_tower.") -> dict:
    """InternViT keys -> ``InternVLVisionModel`` keys (``attn.qkv`` split into q/k/v)."""
    out = {}
    for k, v in state.items():
        if not k.startswith(src):
            continue
        r = k[len(src):]
        if r == "embeddings.class_embedding":
            out[dst + "embeddings.cls_token"] = v
        elif r == "embeddings.position_embedding":
            out[dst + "embeddings.position_embeddings"] = v
        elif r.startswith("embeddings.patch_embedding."):
            out[dst + "embeddings.patch_embeddings.projection." + r.rsplit(".", 1)[1]] = v
        else:
            m = re.match(r"encoder\.layers\.(\d+)\.(.*)", r)
            if not m:
                raise ValueError(f"unexpected InternViT weight {k!r}")
            i, rest = m.group(1), m.group(2)
            base = f"{dst}encoder.layer.{i}."
            if rest.startswith("attn.qkv."):
                q, kk, vv = v.chunk(3, dim=0)
                kind = rest.rsplit(".", 1)[1]
                out[base + f"attention.q_proj.{kind}"] = q.clone()
                out[base + f"attention.k_proj.{kind}"] = kk.clone()
                out[base + f"attention.v_proj.{kind}"] = vv.clone()
            elif rest == "ls1":
                out[base + "lambda_1"] = v
            elif rest == "ls2":
                out[base + "lambda_2"] = v
            else:
                for a, b in _VIT_LAYER.items():
                    if rest.startswith(a):
                        out[base + b + rest[len(a):]] = v
                        break
                else:
                    raise ValueError(f"unexpected InternViT weight {k!r}")
    return out


def split_wqkv(w: torch.Tensor, num_heads: int, num_kv_heads: int, head_dim: int):
    """InternLM2's packed ``wqkv`` -> (q, k, v) weights in Llama's layout.

    Rows are grouped per KV head: [q_0 .. q_{g-1}, k, v] x head_dim, g = num_heads / num_kv_heads.
    """
    g = num_heads // num_kv_heads
    w = w.reshape(num_kv_heads, g + 2, head_dim, -1)
    q = w[:, :g].reshape(num_heads * head_dim, -1)
    k = w[:, g].reshape(num_kv_heads * head_dim, -1)
    v = w[:, g + 1].reshape(num_kv_heads * head_dim, -1)
    return q.contiguous(), k.contiguous(), v.contiguous()


_INTERNLM2 = {"attention.wo.": "self_attn.o_proj.", "feed_forward.w1.": "mlp.gate_proj.",
              "feed_forward.w3.": "mlp.up_proj.", "feed_forward.w2.": "mlp.down_proj.",
              "attention_norm.": "input_layernorm.", "ffn_norm.": "post_attention_layernorm."}


def convert_llm(state: dict, llm: dict, src: str = "language_model.", model_dst: str = "model.language_model.",
                head_dst: str = "lm_head.") -> dict:
    """LLM weights of an original release -> ``<model_dst>*`` (decoder) and ``<head_dst>weight``."""
    kind = _llm_kind(llm)
    out = {}
    heads = llm["num_attention_heads"]
    kv = llm.get("num_key_value_heads", heads)
    hd = llm.get("head_dim") or llm["hidden_size"] // heads
    for k, v in state.items():
        if not k.startswith(src):
            continue
        r = k[len(src):]
        if kind == "internlm2":
            if r == "output.weight":
                out[head_dst + "weight"] = v
            elif r == "model.tok_embeddings.weight":
                out[model_dst + "embed_tokens.weight"] = v
            elif r == "model.norm.weight":
                out[model_dst + "norm.weight"] = v
            else:
                m = re.match(r"model\.layers\.(\d+)\.(.*)", r)
                if not m:
                    raise ValueError(f"unexpected InternLM2 weight {k!r}")
                base = f"{model_dst}layers.{m.group(1)}."
                rest = m.group(2)
                if rest == "attention.wqkv.weight":
                    q, kk, vv = split_wqkv(v, heads, kv, hd)
                    out[base + "self_attn.q_proj.weight"] = q
                    out[base + "self_attn.k_proj.weight"] = kk
                    out[base + "self_attn.v_proj.weight"] = vv
                else:
                    for a, b in _INTERNLM2.items():
                        if rest.startswith(a):
                            out[base + b + rest[len(a):]] = v
                            break
                    else:
                        raise ValueError(f"unexpected InternLM2 weight {k!r}")
        else:
            if r.startswith("lm_head."):
                out[head_dst + r[len("lm_head."):]] = v
            elif r.startswith("model."):
                out[model_dst + r[len("model."):]] = v
            else:
                raise ValueError(f"unexpected LLM weight {k!r}")
    return out


_PROJ = {"mlp1.0.": "model.multi_modal_projector.layer_norm.", "mlp1.1.": "model.multi_modal_projector.linear_1.",
         "mlp1.3.": "model.multi_modal_projector.linear_2."}


def original_to_hf(config: dict, state: dict, *, image_token_id: int | None = None) -> tuple[dict, dict]:
    """An original InternVL2 release (config dict, state dict) -> transformers-native ``InternVLConfig``
    dict and ``InternVLForConditionalGeneration`` state dict. Raises on any weight it cannot place."""
    llm, vc = config["llm_config"], config["vision_config"]
    if config.get("ps_version", "v2") != "v2":
        raise ValueError("only ps_version 'v2' pixel shuffle is supported (InternVL2 and later)")
    tc = text_config_dict(llm)
    hf_cfg = {
        "model_type": "internvl", "architectures": ["InternVLForConditionalGeneration"],
        "vision_config": {"model_type": "internvl_vision", **intern_vit_to_hf_vision(vc)},
        "text_config": tc, "downsample_ratio": config.get("downsample_ratio", 0.5),
        "projector_hidden_act": "gelu", "vision_feature_layer": config.get("select_layer", -1),
        "vision_feature_select_strategy": "default",
        "image_seq_length": int((vc.get("image_size", 448) // vc.get("patch_size", 14) *
                                 config.get("downsample_ratio", 0.5)) ** 2),
        "tie_word_embeddings": bool(tc.get("tie_word_embeddings", False)),
        # mmredstar's record of the tiling settings of the release (ignored by transformers)
        "mmredstar_tiling": {"max_tiles": config.get("max_dynamic_patch", 12), "min_tiles": config.get("min_dynamic_patch", 1),
                             "use_thumbnail": bool(config.get("use_thumbnail", True)),
                             "tile_size": config.get("force_image_size") or vc.get("image_size", 448)},
    }
    if image_token_id is not None:
        hf_cfg["image_token_id"] = int(image_token_id)
    out = convert_intern_vit(state)
    out.update(convert_llm(state, llm))
    for k, v in state.items():
        if k.startswith("mlp1."):
            for a, b in _PROJ.items():
                if k.startswith(a):
                    out[b + k[len(a):]] = v
                    break
            else:
                raise ValueError(f"unexpected projector weight {k!r} (expected mlp1.0/1/3)")
    stray = sorted(k for k in state if not k.startswith(("vision_model.", "language_model.", "mlp1.")))
    if stray:
        raise ValueError(f"original InternVL2 checkpoint has weights outside vision_model./mlp1./language_model.: "
                         f"{stray[:5]}")
    if hf_cfg["tie_word_embeddings"] and "lm_head.weight" not in out:
        out["lm_head.weight"] = out["model.language_model.embed_tokens.weight"]
    return hf_cfg, out


_HF_ALIASES = (("vision_tower.", "model.vision_tower."), ("multi_modal_projector.", "model.multi_modal_projector."),
               ("language_model.model.", "model.language_model."), ("language_model.lm_head.", "lm_head."))


def _hf_canonical(state: dict) -> dict:
    """Transformers saves InternVL in the hub layout (``vision_tower.*``, ``language_model.model.*``,
    ``language_model.lm_head``); in memory it is ``model.vision_tower.*`` ... ``lm_head``. Accept both."""
    out = {}
    for k, v in state.items():
        for a, b in _HF_ALIASES:
            if k.startswith(a):
                k = b + k[len(a):]
                break
        out[k] = v
    return out


def hf_to_ours(hf_cfg: dict, state: dict) -> tuple[dict, dict]:
    """Transformers-native InternVL (config dict, state dict) -> ``VLMConfig`` kwargs and our state dict."""
    vc = dict(hf_cfg["vision_config"])
    vc.pop("model_type", None)
    for k in ("architectures", "transformers_version", "_name_or_path", "dtype", "torch_dtype"):
        vc.pop(k, None)
    image = vc.get("image_size", 448)
    tile = int(image[0] if isinstance(image, (list, tuple)) else image)
    layer = hf_cfg.get("vision_feature_layer", -1)
    if hf_cfg.get("vision_feature_select_strategy", "default") != "default" or isinstance(layer, list):
        raise ValueError("only vision_feature_select_strategy 'default' and a single vision_feature_layer are supported")
    ours = {
        "text_config": dict(hf_cfg["text_config"]), "vision_config": {"backend": "internvl", **vc},
        "downsample_ratio": hf_cfg.get("downsample_ratio", 0.5), "select_layer": layer,
        "projector_hidden_act": hf_cfg.get("projector_hidden_act", "gelu"), "tile_size": tile,
        "tiling": hf_cfg.get("mmredstar_tiling") or {},
    }
    out = {}
    for k, v in _hf_canonical(state).items():
        if k.startswith("model.vision_tower."):
            out["vision_model." + k[len("model.vision_tower."):]] = v
        elif k.startswith("model.multi_modal_projector."):
            r = k[len("model.multi_modal_projector."):]
            name, kind = r.split(".", 1)
            idx = {"layer_norm": 0, "linear_1": 1, "linear_2": 3}[name]
            out[f"mlp1.{idx}.{kind}"] = v
        elif k.startswith("model.language_model."):
            out["language_model.model." + k[len("model.language_model."):]] = v
        elif k.startswith("lm_head."):
            out["language_model." + k] = v
        else:
            raise ValueError(f"unexpected weight {k!r} in an InternVL (-hf) checkpoint")
    return ours, out


# ------------------------------------------------------------------------------------------ loaders

def load_internvl_original(path: str) -> tuple[dict, dict]:
    """(our config kwargs, our state dict) for an original InternVL2 release directory."""
    cfg = _read_json(os.path.join(path, "config.json"))
    if "llm_config" not in cfg or "vision_config" not in cfg:
        raise ValueError(f"{path}/config.json: an original InternVL2 config needs 'llm_config' and 'vision_config'")
    hf_cfg, hf_state = original_to_hf(cfg, read_state_dict(path))
    return hf_to_ours(hf_cfg, hf_state)


def load_internvl_hf(path: str) -> tuple[dict, dict]:
    """(our config kwargs, our state dict) for a transformers-native InternVL (``-hf``) directory."""
    cfg = _read_json(os.path.join(path, "config.json"))
    state = _hf_canonical(read_state_dict(path))
    # transformers may save without the tied head
    if "lm_head.weight" not in state and "model.language_model.embed_tokens.weight" in state:
        state["lm_head.weight"] = state["model.language_model.embed_tokens.weight"]
    return hf_to_ours(cfg, state)


def vision_preset_fields(ours: dict) -> dict:
    """Preset fields (tile size, tiling) implied by a converted config."""
    t = ours.get("tiling") or {}
    return {"tile_size": ours["tile_size"], "downsample_ratio": ours["downsample_ratio"],
            "max_tiles": t.get("max_tiles", 12), "min_tiles": t.get("min_tiles", 1),
            "use_thumbnail": t.get("use_thumbnail", True)}


def build_vlm(ours: dict, state: dict, *, image_token_id: int, dtype=None, attn_implementation=None,
              rope_scaling=None, max_position_embeddings=None):
    """A ``VisionLanguageModel`` holding exactly ``state``: raises if any weight is missing or unused."""
    from transformers import AutoConfig

    from mmredstar.modeling.vlm import VisionLanguageModel, VLMConfig

    tc = dict(ours["text_config"])
    mt = tc.pop("model_type")
    for k in ("architectures", "transformers_version", "_name_or_path"):
        tc.pop(k, None)
    tcfg = AutoConfig.for_model(mt, **tc)
    apply_rope(tcfg, rope_scaling, max_position_embeddings)
    cfg = VLMConfig(text_config=tcfg, vision_config=ours["vision_config"], image_token_id=int(image_token_id),
                    downsample_ratio=ours["downsample_ratio"], select_layer=ours["select_layer"],
                    projector_hidden_act=ours["projector_hidden_act"], tile_size=ours["tile_size"])
    if attn_implementation:
        cfg._attn_implementation = attn_implementation
    if tcfg.tie_word_embeddings:
        state = {k: v for k, v in state.items() if k != "language_model.lm_head.weight"}
    model, info = VisionLanguageModel.from_pretrained(None, config=cfg, state_dict=state, dtype=dtype or "auto",
                                                      output_loading_info=True)
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        raise ValueError(f"converted checkpoint does not fit the model: {bad}")
    return model
