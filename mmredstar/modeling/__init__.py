"""Models: presets, the tiny tokenizer, the InternVL-style vision adapter, tiling, the processor,
checkpoint loading and conversion, RoPE scaling, freezing / LR groups, generation.

    from mmredstar.modeling import load_model, generate, param_groups, load_preset, list_presets
    model, processor = load_model("tiny_vlm", seed=0)
    feature = processor.encode(sample, response_text)               # training inputs
    responses = generate(model, processor, samples, n=2, temperature=0.7)

Attributes are imported lazily, so ``load_preset``/``list_presets`` do not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ModelPreset": "presets", "load_preset": "presets", "list_presets": "presets", "preset_summary": "presets",
    "load_model": "loading", "build_model": "loading", "text_config_of": "loading", "apply_rope": "rope",
    "Processor": "processor", "IGNORE_INDEX": "processor",
    "generate": "generation",
    "param_groups": "groups", "parts": "groups",
    "VisionLanguageModel": "vlm", "VLMConfig": "vlm",
    "build_tiny_tokenizer": "tokenizer",
    "tile_image": "tiling", "choose_grid": "tiling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        mod = importlib.import_module(f"mmredstar.modeling.{_EXPORTS[name]}")
        return getattr(mod, name)
    raise AttributeError(f"module 'mmredstar.modeling' has no attribute {name!r}")


def __dir__():
    return __all__
