"""``load_model``: one entry point for presets, saved runs, HF checkpoints and hub ids.

    from mmredstar.modeling import load_model
    model, processor = load_model("tiny_vlm", seed=0)                 # built from config, < 1 s on CPU
    model, processor = load_model("runs/sft")                          # what save_pretrained wrote
    model, processor = load_model("ckpts/Qwen2.5-7B-Instruct", dtype="bfloat16")
    model, processor = load_model("ckpts/InternVL2-8B")                # original layout, converted
    model, processor = load_model("qwen2_5_math_7b_instruct", rope_scaling={"rope_type": "linear", "factor": 4})

What a path is decides how it loads: a directory with ``mmredstar_processor.json`` is a saved run
(reloads bit-exactly); ``config.json`` with ``model_type: internvl`` is a transformers-native InternVL
(``-hf``) checkpoint; ``model_type: internvl_chat`` (with ``llm_config``/``vision_config``) is an original
InternVL2 release, converted on load; anything else is a causal LM for ``AutoModelForCausalLM``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from pathlib import Path
from typing import Any

import torch

from mmredstar.modeling.presets import PRESET_FIELDS, ModelPreset, is_preset, load_preset
from mmredstar.modeling.processor import PROCESSOR_FILE, Processor
from mmredstar.modeling.rope import apply_rope, normalize_rope  # noqa: F401  (re-exported)
from mmredstar.modeling.tokenizer import build_tiny_tokenizer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "fp32": torch.float32,
          "bf16": torch.bfloat16, "fp16": torch.float16}
PROCESSOR_KEYS = ("tile_size", "min_tiles", "max_tiles", "use_thumbnail", "system_prompt", "image_mean", "image_std")
CONFIG_KEYS = ("rope_scaling", "max_position_embeddings", "attn_implementation")


def _dtype(d) -> torch.dtype | None:
    if d is None or isinstance(d, torch.dtype):
        return d
    if str(d) not in DTYPES:
        raise ValueError(f"unknown dtype {d!r}; use one of {sorted(DTYPES)}")
    return DTYPES[str(d)]


def text_config_of(preset: ModelPreset, **changes):
    """The LM's transformers config from a preset (+ rope scaling), without loading weights."""
    from transformers import AutoConfig

    tc = dict(preset.text_config)
    mt = tc.pop("model_type")
    if mt == "internlm2":
        from mmredstar.modeling.convert import internlm2_to_llama_config

        cfg = internlm2_to_llama_config({"model_type": mt, **tc})
    else:
        cfg = AutoConfig.for_model(mt, **tc)
    apply_rope(cfg, changes.get("rope_scaling", preset.rope_scaling), changes.get("max_position_embeddings"))
    attn = changes.get("attn_implementation") or preset.attn_implementation
    if attn:
        cfg._attn_implementation = attn
    return cfg


@contextlib.contextmanager
def _seeded(seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def _processor_for(preset: ModelPreset, tokenizer) -> Processor:
    return Processor(tokenizer, family=preset.family, name=preset.name, tile_size=preset.tile_size,
                     min_tiles=preset.min_tiles, max_tiles=preset.max_tiles, use_thumbnail=preset.use_thumbnail,
                     tokens_per_tile=preset.tokens_per_tile if preset.family == "vlm" else 0,
                     image_mean=preset.image_mean, image_std=preset.image_std, system_prompt=preset.system_prompt,
                     think_tags=preset.think_tags, think_tokens=preset.think_tokens)


def _fit_vocab(model, processor: Processor) -> None:
    n = len(processor.tokenizer)
    if model.get_input_embeddings().num_embeddings < n:
        model.resize_token_embeddings(n, pad_to_multiple_of=64)


def build_model(preset: ModelPreset, tokenizer=None, *, seed: int = 0, meta: bool = False, **changes):
    """A randomly initialised model from a preset's config (``meta=True``: on the meta device, no memory;
    used to count parameters of big presets). Returns ``(model, processor)``; processor is None when
    ``meta`` and no tokenizer was given."""
    from transformers import AutoModelForCausalLM

    from mmredstar.modeling.vlm import VisionLanguageModel, VLMConfig

    lm_dir = _lm_source(preset) if preset.language_model and not meta else None
    if tokenizer is None and not meta:
        if lm_dir and preset.tokenizer in ("auto", "checkpoint"):
            tokenizer = _tokenizer_from(lm_dir, False)
        elif preset.tokenizer == "checkpoint":
            tokenizer = _tokenizer_from(_local(preset.checkpoint, preset.dtype), False)
        else:
            tokenizer = build_tiny_tokenizer()
    processor = _processor_for(preset, tokenizer) if tokenizer is not None else None
    tcfg = text_config_of(preset, **changes)
    ctx = torch.device("meta") if meta else _seeded(seed)
    with ctx:
        if preset.family == "text":
            model = AutoModelForCausalLM.from_config(tcfg)
        else:
            image_token_id = processor.image_token_id if processor else tcfg.vocab_size - 1
            cfg = VLMConfig(text_config=tcfg, vision_config=dict(preset.vision or {}), image_token_id=image_token_id,
                            downsample_ratio=preset.downsample_ratio,
                            projector_hidden_act=preset.projector_hidden_act, select_layer=preset.select_layer,
                            tile_size=preset.tile_size)
            cfg._attn_implementation = tcfg._attn_implementation
            model = VisionLanguageModel(cfg)
    if lm_dir:
        _load_language_model(model, lm_dir, preset)
    if processor is not None and not meta:
        _fit_vocab(model, processor)
    return model, processor


def _lm_source(preset: ModelPreset) -> str:
    """The local directory of a VLM preset's ``language_model`` (a preset name or a checkpoint)."""
    src = preset.language_model
    if not os.path.isdir(str(src)) and is_preset(src):
        lp = load_preset(src)
        if lp.init != "pretrained" or lp.family != "text":
            raise ValueError(f"preset {preset.name!r}: language_model {src!r} must be a pretrained text preset")
        return _local(lp.checkpoint, lp.dtype)
    return _local(str(src), preset.dtype)


def _load_language_model(model, lm_dir: str, preset: ModelPreset) -> None:
    """Copy a pretrained causal LM's weights into ``model.language_model`` (every tensor must fit)."""
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(lm_dir, dtype=torch.float32)
    want, have = model.config.text_config, lm.config
    diff = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                        "intermediate_size", "vocab_size") if getattr(want, k, None) != getattr(have, k, None)]
    if diff:
        raise ValueError(f"preset {preset.name!r}: text_config differs from its language_model {lm_dir} in "
                         f"{', '.join(f'{k} ({getattr(want, k, None)} vs {getattr(have, k, None)})' for k in diff)}")
    missing, unexpected = model.language_model.load_state_dict(lm.state_dict(), strict=False)
    missing = [k for k in missing if not (want.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise ValueError(f"preset {preset.name!r}: {lm_dir} weights do not fit its LM: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    model.language_model.tie_weights()


def _split_overrides(overrides: dict) -> tuple[dict, dict, dict]:
    """(preset-field changes, LM-config changes, processor changes)."""
    preset_kw, config_kw, proc_kw = {}, {}, {}
    for k, v in overrides.items():
        if k in CONFIG_KEYS:
            config_kw[k] = v
        elif k in PROCESSOR_KEYS:
            proc_kw[k] = v
            preset_kw[k] = v
        elif k in PRESET_FIELDS:
            preset_kw[k] = v
        else:
            raise ValueError(f"load_model: unknown override {k!r}; use a ModelPreset field "
                             f"({sorted(PRESET_FIELDS)}) or one of {list(CONFIG_KEYS)}")
    return preset_kw, config_kw, proc_kw


def load_model(preset_or_path: str | os.PathLike | ModelPreset, *, dtype=None, device=None, seed: int = 0,
               trust_remote_code: bool = False, **overrides) -> tuple[Any, Processor]:
    """``(model, processor)`` for a preset name, a preset object, a saved output dir, an HF checkpoint dir
    or a hub id. See the module docstring. ``overrides``: preset fields (``max_tiles=6``,
    ``init="random"``), ``rope_scaling={...}``, ``max_position_embeddings``, ``attn_implementation``."""
    preset_kw, config_kw, proc_kw = _split_overrides(overrides)
    target = preset_or_path
    if isinstance(target, ModelPreset) or (not os.path.isdir(str(target)) and is_preset(target)):
        preset = load_preset(target)
        if preset_kw or "rope_scaling" in config_kw:
            changes = dict(preset_kw)
            if "rope_scaling" in config_kw:
                changes["rope_scaling"] = config_kw["rope_scaling"]
            if "attn_implementation" in config_kw:
                changes["attn_implementation"] = config_kw["attn_implementation"]
            preset = preset.replace(**changes)
        if "max_position_embeddings" in config_kw:
            preset = preset.replace(text_config={**preset.text_config,
                                                 "max_position_embeddings": config_kw["max_position_embeddings"]})
        problems = preset.validate()
        if problems:
            raise ValueError("; ".join(problems))
        dt = _dtype(dtype) or _dtype(preset.dtype)
        if preset.init == "random":
            model, processor = build_model(preset, seed=seed)
        else:
            model, processor = _load_checkpoint(_local(preset.checkpoint, preset.dtype), preset=preset, dtype=dt, config_kw=config_kw,
                                                proc_kw=proc_kw, trust_remote_code=trust_remote_code)
        model.to(dt)
    else:
        path = str(target)
        if not os.path.isdir(path):
            path = _download(path)
        model, processor = _load_checkpoint(path, preset=None, dtype=_dtype(dtype), config_kw=config_kw,
                                            proc_kw=proc_kw, trust_remote_code=trust_remote_code)
        if dtype is not None:
            model.to(_dtype(dtype))
    if device is not None:
        model.to(device)
    return model, processor


def _local(name: str, dtype: str = "bfloat16") -> str:
    """A local checkpoint directory: the directory itself, a GGUF file converted once into the cache
    (``modeling.importing``), or a hub snapshot."""
    from mmredstar.modeling.importing import cached_import, is_gguf

    if is_gguf(name):
        return str(cached_import(name, dtype=str(dtype).replace("torch.", "")))
    return name if os.path.isdir(name) else _download(name)


def _download(name: str) -> str:
    """A hub id -> a local snapshot directory (needs network; tests never get here)."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.py",
                                                       "*.tiktoken", "*.jinja"])
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{name!r} is not a preset (see `mmredstar models list`), not a directory, and could not "
                         f"be fetched from the hub: {e}") from None


def read_config(path: str | os.PathLike) -> dict:
    p = Path(path) / "config.json"
    if not p.exists():
        raise ValueError(f"{path}: no config.json; expected a saved model, an HF checkpoint or an InternVL2 release")
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def _tokenizer_from(path: str, trust_remote_code: bool):
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # it reads config.json and warns about the composite model type
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{path}: cannot load its tokenizer ({e}); original InternLM2-based releases need "
                         "trust_remote_code=True") from None
    finally:
        hf_logging.set_verbosity(level)


def _load_checkpoint(path: str, *, preset: ModelPreset | None, dtype, config_kw: dict, proc_kw: dict,
                     trust_remote_code: bool):
    from transformers import AutoConfig, AutoModelForCausalLM

    from mmredstar.modeling import convert
    from mmredstar.modeling.vlm import VisionLanguageModel

    raw = read_config(path)
    mt = raw.get("model_type")
    attn = config_kw.get("attn_implementation") or (preset.attn_implementation if preset else None)
    rope = config_kw.get("rope_scaling", preset.rope_scaling if preset else None)
    mpe = config_kw.get("max_position_embeddings")

    if os.path.exists(os.path.join(path, PROCESSOR_FILE)):  # a saved run
        processor = Processor.from_pretrained(path, **proc_kw)
        config = AutoConfig.from_pretrained(path)
        apply_rope(config.get_text_config(), rope, mpe)
        kw = {"config": config, "dtype": dtype or "auto"}
        if attn:
            kw["attn_implementation"] = attn
        cls = VisionLanguageModel if mt == "mmredstar_vlm" else AutoModelForCausalLM
        model = cls.from_pretrained(path, **kw)
        return model, processor

    if preset is not None and preset.tokenizer == "tiny":
        from mmredstar.modeling.tokenizer import build_tiny_tokenizer

        tok = build_tiny_tokenizer()
    else:
        tok = _tokenizer_from(path, trust_remote_code)
    if mt in ("internvl", "internvl_chat"):
        cfg, state = (convert.load_internvl_hf(path) if mt == "internvl" else convert.load_internvl_original(path))
        base = preset or ModelPreset(name=Path(path).name, family="vlm", source=f"{path}/config.json",
                                     checkpoint=path, dtype="bfloat16")
        vis = {**convert.vision_preset_fields(cfg), **proc_kw}
        base = base.replace(**{k: v for k, v in vis.items() if k in
                               ("tile_size", "min_tiles", "max_tiles", "use_thumbnail", "downsample_ratio")})
        base = base.replace(vision=cfg["vision_config"])
        processor = _processor_for(base, tok)
        saved = raw.get("torch_dtype") or raw.get("dtype")
        dtype = dtype or (_dtype(saved) if isinstance(saved, str) and saved in DTYPES else None)
        model = convert.build_vlm(cfg, state, image_token_id=processor.image_token_id, dtype=dtype,
                                  attn_implementation=attn, rope_scaling=rope, max_position_embeddings=mpe)
        _fit_vocab(model, processor)
        return model, processor

    # a plain causal LM (Qwen2.5, Llama, ...)
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    apply_rope(config, rope, mpe)
    kw = {"config": config, "dtype": dtype or "auto", "trust_remote_code": trust_remote_code}
    if attn:
        kw["attn_implementation"] = attn
    model = AutoModelForCausalLM.from_pretrained(path, **kw)
    base = preset or ModelPreset(name=Path(path).name, family="text", source=f"{path}/config.json", checkpoint=path)
    if proc_kw:
        base = base.replace(**proc_kw)
    processor = _processor_for(copy.copy(base), tok)
    _fit_vocab(model, processor)
    return model, processor
