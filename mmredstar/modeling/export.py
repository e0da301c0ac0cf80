"""Export our checkpoints so that other tools load them without mmredstar.

    mmredstar models export runs/vlm_sft --out export/vlm        # a VLM: see below
    mmredstar models export runs/sft --out export/lm             # a text model: a plain HF checkpoint

What ``CKPT`` is (anything ``load_model`` takes: a saved run, a preset, a checkpoint directory) decides
the layout written to ``OUT``:

* a VLM whose tower is InternViT-shaped (``vision.backend: internvl``): transformers' own InternVL
  layout, ``InternVLForConditionalGeneration`` (``model.vision_tower``, ``model.multi_modal_projector``,
  ``model.language_model``, ``lm_head``) with an ``InternVLProcessor`` (``GotOcr2ImageProcessor`` doing
  the same dynamic tiling, the tokenizer with ``<img>``/``</img>``/``<IMG_CONTEXT>`` named, our ChatML
  chat template). ``AutoModelForImageTextToText``, ``AutoProcessor``, ``transformers serve`` and vLLM
  load it.
* a VLM with another tower (timm): our own ``model_type: mmredstar_vlm`` weights with an ``auto_map``
  and the modeling code (``modeling_mmredstar_vlm.py``, a copy of ``mmredstar/modeling/vlm.py``, which
  needs only torch, transformers and timm) saved beside them: ``AutoModelForCausalLM.from_pretrained(OUT,
  trust_remote_code=True)``. The tokenizer and ``mmredstar_processor.json`` (the tiling settings) are
  saved too.
* a text model: ``config.json`` + weights, the tokenizer with its chat template and
  ``generation_config.json`` (``<|im_end|>`` ends a turn): a plain HF checkpoint.

The weights are copied as they are (the same tensors); ``OUT`` is written into a temporary sibling and
renamed at the end. ``export.json`` records the source and the layout.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from mmredstar.modeling.tokenizer import CHAT_TEMPLATE, IM_END, IMG_CONTEXT, IMG_END, IMG_START

log = logging.getLogger(__name__)

EXPORT_FILE = "export.json"
VIDEO_TOKEN = "<video>"
"""InternVLProcessor needs a video token distinct from the image token (added to the exported tokenizer)."""
REMOTE_MODULE = "modeling_mmredstar_vlm"
# our chat template with image parts rendered as transformers InternVL's image token (the processor
# expands it into <img> + <IMG_CONTEXT> x tokens + </img>); OpenAI-style image_url parts too
HF_CHAT_TEMPLATE = CHAT_TEMPLATE.replace(
    "{%- elif part['type'] == 'image' -%}{{- image_placeholder | default('<image>') -}}",
    "{%- elif part['type'] in ('image', 'image_url') -%}{{- image_placeholder | default('" + IMG_CONTEXT + "') -}}")
assert HF_CHAT_TEMPLATE != CHAT_TEMPLATE, "the chat template changed: update HF_CHAT_TEMPLATE"


def ours_to_hf_internvl(model, processor) -> tuple[dict, dict]:
    """Our ``VisionLanguageModel`` with an InternViT tower -> (``InternVLConfig`` kwargs, the
    ``InternVLForConditionalGeneration`` state dict). The inverse of ``convert.hf_to_ours``."""
    cfg = model.config
    tc = cfg.text_config.to_dict()
    vc = model.vision_model.config.to_dict()
    for d in (tc, vc):
        for k in ("architectures", "transformers_version", "_name_or_path", "dtype", "torch_dtype"):
            d.pop(k, None)
    hf = {"vision_config": vc, "text_config": tc, "image_token_id": int(cfg.image_token_id),
          "image_seq_length": int(processor.tokens_per_tile), "downsample_ratio": float(cfg.downsample_ratio),
          "projector_hidden_act": cfg.projector_hidden_act, "vision_feature_layer": int(cfg.select_layer),
          "vision_feature_select_strategy": "default",
          "tie_word_embeddings": bool(getattr(cfg.text_config, "tie_word_embeddings", False))}
    proj = {"0": "layer_norm", "1": "linear_1", "3": "linear_2"}
    out = {}
    for k, v in model.state_dict().items():
        if k.startswith("vision_model."):
            out["model.vision_tower." + k[len("vision_model."):]] = v
        elif k.startswith("mlp1."):
            idx, kind = k[len("mlp1."):].split(".", 1)
            out[f"model.multi_modal_projector.{proj[idx]}.{kind}"] = v
        elif k.startswith("language_model.model."):
            out["model.language_model." + k[len("language_model.model."):]] = v
        elif k.startswith("language_model.lm_head."):
            out["lm_head." + k[len("language_model.lm_head."):]] = v
        else:
            raise ValueError(f"unexpected weight {k!r} in a VisionLanguageModel")
    return hf, out


def _generation_config(processor):
    from transformers import GenerationConfig

    tok = processor.tokenizer
    return GenerationConfig(eos_token_id=tok.convert_tokens_to_ids(IM_END), pad_token_id=tok.pad_token_id,
                            bos_token_id=tok.bos_token_id)


def _hf_tokenizer(processor, chat_template: str):
    import copy

    tok = copy.deepcopy(processor.tokenizer)
    tok.chat_template = chat_template
    return tok


def _name_image_tokens(out: Path) -> None:
    """Name the image tokens in ``tokenizer_config.json`` as InternVLProcessor expects them."""
    p = out / "tokenizer_config.json"
    d = json.loads(p.read_text(encoding="utf-8"))
    extra = d.get("extra_special_tokens")
    named = {"start_image_token": IMG_START, "end_image_token": IMG_END, "context_image_token": IMG_CONTEXT,
             "video_token": VIDEO_TOKEN}
    if isinstance(extra, dict):
        extra.update(named)
    else:
        d["extra_special_tokens"] = named
    p.write_text(json.dumps(d, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_internvl(model, processor, tmp: Path) -> str:
    import torch
    from transformers import (
        AutoTokenizer,
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
    )
    from transformers.models.internvl.video_processing_internvl import InternVLVideoProcessor

    kwargs, state = ours_to_hf_internvl(model, processor)
    config = InternVLConfig(**kwargs)
    config.architectures = ["InternVLForConditionalGeneration"]
    dtype = next(model.parameters()).dtype
    with torch.device("meta"):
        hf = InternVLForConditionalGeneration(config)
    hf = hf.to_empty(device="cpu").to(dtype)
    missing, unexpected = hf.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise ValueError(f"export: weights do not fit InternVLForConditionalGeneration: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    if config.tie_word_embeddings:
        hf.tie_weights()
    tok = _hf_tokenizer(processor, HF_CHAT_TEMPLATE)
    if VIDEO_TOKEN not in tok.get_vocab():
        tok.add_special_tokens({"extra_special_tokens": [VIDEO_TOKEN]}, replace_extra_special_tokens=False)
    if len(tok) > hf.get_input_embeddings().num_embeddings:  # new rows only; existing logits unchanged
        hf.resize_token_embeddings(len(tok), pad_to_multiple_of=64, mean_resizing=False)
    hf.config.dtype = dtype
    hf.generation_config = _generation_config(processor)
    hf.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    _name_image_tokens(tmp)
    tok = AutoTokenizer.from_pretrained(tmp)
    size = processor.tile_size
    image_processor = GotOcr2ImageProcessor(
        size={"height": size, "width": size}, crop_to_patches=processor.max_tiles > 1,
        min_patches=processor.min_tiles, max_patches=processor.max_tiles, use_thumbnail=processor.use_thumbnail,
        image_mean=list(processor.image_mean), image_std=list(processor.image_std), do_convert_rgb=True)
    video_processor = InternVLVideoProcessor(size={"height": size, "width": size}, image_mean=list(processor.image_mean),
                                             image_std=list(processor.image_std))
    InternVLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                      image_seq_length=processor.tokens_per_tile, chat_template=HF_CHAT_TEMPLATE).save_pretrained(tmp)
    return "internvl"


def _write_remote(model, processor, tmp: Path) -> str:
    from mmredstar.modeling import vlm

    model.config.auto_map = {"AutoConfig": f"{REMOTE_MODULE}.VLMConfig",
                             "AutoModelForCausalLM": f"{REMOTE_MODULE}.VisionLanguageModel"}
    try:
        model.generation_config = _generation_config(processor)
        model.save_pretrained(tmp)
    finally:
        model.config.auto_map = None
    shutil.copyfile(vlm.__file__, tmp / f"{REMOTE_MODULE}.py")
    processor.save_pretrained(tmp)
    return "remote_code"


def _write_text(model, processor, tmp: Path) -> str:
    model.generation_config = _generation_config(processor)
    model.save_pretrained(tmp)
    _hf_tokenizer(processor, CHAT_TEMPLATE).save_pretrained(tmp)
    return "causal_lm"


def export_checkpoint(ckpt: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False,
                      dtype: str | None = None) -> dict:
    """Export ``ckpt`` into ``out`` (see the module docstring). Returns what ``export.json`` holds."""
    from mmredstar.modeling.loading import load_model

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: exists and is not empty (pass --overwrite)")
    model, processor = load_model(str(ckpt), dtype=dtype)
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if processor.family == "text":
            layout = _write_text(model, processor, tmp)
        elif getattr(model, "backend", None) == "internvl":
            layout = _write_internvl(model, processor, tmp)
        else:
            layout = _write_remote(model, processor, tmp)
        info = {"source": str(ckpt), "layout": layout, "family": processor.family,
                "architecture": json.loads((tmp / "config.json").read_text())["architectures"][0],
                "parameters": sum(p.numel() for p in model.parameters()),
                "load": {"internvl": "AutoModelForImageTextToText.from_pretrained(OUT); AutoProcessor.from_pretrained(OUT)",
                         "remote_code": "AutoModelForCausalLM.from_pretrained(OUT, trust_remote_code=True)",
                         "causal_lm": "AutoModelForCausalLM.from_pretrained(OUT)"}[layout]}
        (tmp / EXPORT_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s -> %s (%s)", ckpt, out, layout)
    return info
