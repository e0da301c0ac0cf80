"""Model presets: ``models/<name>.yaml`` files of literal numbers with the source they came from.

A YAML key is the name of a ``ModelPreset`` field (documented once, on the field). A preset may
extend another by name (``base: qwen2_5_math_7b_instruct``) and override some fields; nested
``text_config``/``vision`` mappings are merged key by key.

    from mmredstar.modeling import load_preset, list_presets
    p = load_preset("tiny_vlm"); print(p.family, p.tokens_per_tile)
    mmredstar models list          # the same from the command line

Validation (``ModelPreset.validate``) checks consistency without loading any weights.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mmredstar.assets import list_assets, load_yaml, resolve

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VISION_BACKENDS = ("internvl", "timm")
ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "longrope", "llama3")


@dataclass
class ModelPreset:
    """One model: where its weights are (or that it is built from config) and every number needed."""

    name: str = ""
    """The preset's name (set from its file name)."""
    family: str = "text"
    """``text`` (a causal LM) or ``vlm`` (vision tower + projector + causal LM, InternVL-style)."""
    source: str = ""
    """Where the numbers come from: hub id + file (e.g. ``Qwen/Qwen2.5-7B-Instruct config.json``), or
    ``built here`` for the tiny presets. Required."""
    description: str = ""
    """One line for ``mmredstar models list``."""
    base: str | None = None
    """Another preset this one extends: its fields first, then this file's."""
    checkpoint: str | None = None
    """Hub id or local directory of the weights (and tokenizer) when ``init: pretrained``."""
    init: str = "pretrained"
    """``pretrained`` (load ``checkpoint``) or ``random`` (build from ``text_config``/``vision`` with the
    seed: tiny presets, and real-architecture presets for the performance suite)."""
    language_model: str | None = None
    """``family: vlm`` with ``init: random``: a text checkpoint (a preset name, directory, hub id or GGUF)
    whose LM weights and tokenizer the VLM starts from; the tower and projector are new (seeded). Its
    numbers must equal ``text_config``."""
    tokenizer: str = "auto"
    """``checkpoint`` (the checkpoint's own tokenizer), ``tiny`` (the local byte-level BPE, built in
    ~0.05 s) or ``auto`` (the checkpoint's when ``init: pretrained``, else tiny)."""
    dtype: str = "bfloat16"
    """Weights dtype: ``float32`` | ``bfloat16`` | ``float16``."""
    attn_implementation: str = "sdpa"
    """``sdpa`` | ``eager`` | ``flash_attention_2`` (the LM's and the transformers vision tower's)."""
    text_config: dict = field(default_factory=dict)
    """The LM's transformers config, literally as in the checkpoint's ``config.json`` (``model_type``
    and the numbers; ``llm_config`` for original InternVL2 releases)."""
    vision: dict | None = None
    """The vision tower (``family: vlm``): ``backend: internvl`` (transformers ``InternVLVisionConfig``
    keys: hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, patch_size, ...) or
    ``backend: timm`` (``embed_dim``, ``depth``, ``num_heads``, ``mlp_ratio``, ``patch_size`` and
    optional ``stem_channels``: a stride-2 conv stem per entry before the patch embedding)."""
    downsample_ratio: float = 0.5
    """Pixel-shuffle factor: 0.5 merges 2x2 neighbouring patch features into one image token."""
    projector_hidden_act: str = "gelu"
    """Activation of the MLP projector (LayerNorm -> Linear -> act -> Linear)."""
    select_layer: int = -1
    """Which vision layer's output feeds the projector (-1 = last); the CLS token is dropped."""
    tile_size: int = 448
    """Side of one square image tile in pixels (the vision tower's input size)."""
    min_tiles: int = 1
    """Dynamic tiling: fewest tiles per image."""
    max_tiles: int = 12
    """Dynamic tiling: most tiles per image (1 = resize the whole image to one tile)."""
    use_thumbnail: bool = True
    """Append a whole-image thumbnail tile when an image is split into more than one tile."""
    image_mean: list = field(default_factory=lambda: list(IMAGENET_MEAN))
    """Per-channel mean for normalisation (RGB, 0-1 scale)."""
    image_std: list = field(default_factory=lambda: list(IMAGENET_STD))
    """Per-channel standard deviation for normalisation."""
    max_context: int | None = None
    """Context length this preset is meant to train/generate with; default: the LM's
    ``max_position_embeddings`` (times the RoPE factor when scaled)."""
    rope_scaling: dict | None = None
    """RoPE scaling applied on top of ``text_config``: ``{rope_type: linear, factor: 4.0}`` is Position
    Interpolation; any type transformers supports (linear, dynamic, yarn, longrope, llama3)."""
    system_prompt: str | None = None
    """System turn added when a sample has none (e.g. Qwen2.5's default); ``None`` = none."""
    think_tags: list = field(default_factory=lambda: ["<think>", "</think>"])
    """The tags that open and close the reasoning block in responses."""
    think_tokens: bool = True
    """Add the think tags to the vocabulary as tokens of their own (when it lacks them). ``false`` for a small
    pretrained model: they stay text its vocabulary spells (``<``, ``think``, ``>``), whose embeddings are
    trained; a new token starts untrained, and a short fine-tune never learns to open the think block with it."""
    notes: str = ""
    """Free text for people (caveats, what differs from the release)."""

    # ------------------------------------------------------------------------------------------ derived
    @property
    def patch_size(self) -> int:
        v = self.vision or {}
        p = v.get("patch_size", 14)
        return int(p[0] if isinstance(p, (list, tuple)) else p)

    @property
    def tokens_per_tile(self) -> int:
        """Image tokens one tile becomes: (tile/patch)^2 * downsample^2 (256 for InternVL2 at 448 px).

        >>> ModelPreset(family="vlm", tile_size=64, vision={"patch_size": 8}, downsample_ratio=0.5).tokens_per_tile
        16
        """
        side = self.tile_size // self.patch_size
        return int(round(side * self.downsample_ratio)) ** 2

    @property
    def rope_factor(self) -> float:
        return float((self.rope_scaling or {}).get("factor", 1.0) or 1.0)

    @property
    def context_length(self) -> int | None:
        """``max_context``, else the LM's ``max_position_embeddings``."""
        if self.max_context:
            return int(self.max_context)
        mpe = self.text_config.get("max_position_embeddings")
        return int(mpe) if mpe else None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> ModelPreset:
        """A copy with fields changed; unknown keys raise ``ValueError`` naming the valid ones."""
        names = {f.name for f in fields(self)}
        bad = sorted(set(changes) - names)
        if bad:
            raise ValueError(f"preset {self.name!r}: unknown field(s) {bad}; valid fields: {sorted(names)}")
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------------------------------ checks
    def validate(self) -> list[str]:
        """Every inconsistency found (empty when the preset is sound). Builds nothing, loads nothing."""
        p, out = f"preset {self.name!r}", []
        if self.family not in ("text", "vlm"):
            out.append(f"{p}: family must be 'text' or 'vlm', got {self.family!r}")
        if not self.source:
            out.append(f"{p}: 'source' is required (hub id + file the numbers came from, or 'built here')")
        if self.init not in ("pretrained", "random"):
            out.append(f"{p}: init must be 'pretrained' or 'random', got {self.init!r}")
        if self.init == "pretrained" and not self.checkpoint:
            out.append(f"{p}: init is 'pretrained' but no 'checkpoint' is given")
        if self.tokenizer not in ("auto", "checkpoint", "tiny"):
            out.append(f"{p}: tokenizer must be 'auto', 'checkpoint' or 'tiny', got {self.tokenizer!r}")
        if self.init == "random" and self.tokenizer == "checkpoint" and not (self.checkpoint or self.language_model):
            out.append(f"{p}: tokenizer 'checkpoint' needs a 'checkpoint'")
        if self.language_model and (self.family != "vlm" or self.init != "random"):
            out.append(f"{p}: 'language_model' composes a new VLM around a pretrained LM: it needs family: vlm "
                       "and init: random")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            out.append(f"{p}: dtype must be float32, bfloat16 or float16, got {self.dtype!r}")
        tc = self.text_config or {}
        if not tc.get("model_type"):
            out.append(f"{p}: text_config.model_type is required (e.g. qwen2, llama, internlm2)")
        hid, heads = tc.get("hidden_size"), tc.get("num_attention_heads")
        kv = tc.get("num_key_value_heads") or heads
        for k in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size",
                  "max_position_embeddings"):
            v = tc.get(k)
            if not isinstance(v, int) or v <= 0:
                out.append(f"{p}: text_config.{k} must be a positive integer, got {v!r}")
        if isinstance(hid, int) and isinstance(heads, int) and heads > 0:
            if hid % heads and not tc.get("head_dim"):
                out.append(f"{p}: text_config: num_attention_heads ({heads}) must divide hidden_size ({hid})")
            if isinstance(kv, int) and kv > 0 and heads % kv:
                out.append(f"{p}: text_config: num_key_value_heads ({kv}) must divide num_attention_heads ({heads})")
            head_dim = tc.get("head_dim") or (hid // heads)
            if head_dim % 2:
                out.append(f"{p}: text_config: head dim {head_dim} must be even for RoPE")
        if self.rope_scaling is not None:
            rs = self.rope_scaling
            rtype = rs.get("rope_type", rs.get("type"))
            if rtype not in ROPE_TYPES:
                out.append(f"{p}: rope_scaling.rope_type must be one of {ROPE_TYPES}, got {rtype!r}")
            if rtype != "default" and not (isinstance(rs.get("factor"), (int, float)) and rs["factor"] > 0):
                out.append(f"{p}: rope_scaling.factor must be a positive number, got {rs.get('factor')!r}")
        mpe = tc.get("max_position_embeddings")
        if self.max_context and isinstance(mpe, int) and self.max_context > mpe * self.rope_factor \
                and (self.rope_scaling or {}).get("rope_type", (self.rope_scaling or {}).get("type")) != "dynamic":
            out.append(f"{p}: max_context {self.max_context} exceeds max_position_embeddings x rope factor "
                       f"({mpe} x {self.rope_factor}); set rope_scaling or raise max_position_embeddings")
        if self.family == "vlm":
            v = self.vision or {}
            if v.get("backend") not in VISION_BACKENDS:
                out.append(f"{p}: vision.backend must be one of {VISION_BACKENDS}, got {v.get('backend')!r}")
            dim_key = "hidden_size" if v.get("backend") == "internvl" else "embed_dim"
            vh, vheads = v.get(dim_key), v.get("num_attention_heads" if dim_key == "hidden_size" else "num_heads")
            if not isinstance(vh, int) or not isinstance(vheads, int) or vheads <= 0 or vh % vheads:
                out.append(f"{p}: vision.{dim_key} ({vh}) must be a positive multiple of the head count ({vheads})")
            if self.tile_size % self.patch_size:
                out.append(f"{p}: tile_size {self.tile_size} must be a multiple of vision.patch_size {self.patch_size}")
            side = self.tile_size // max(self.patch_size, 1)
            if abs(side * self.downsample_ratio - round(side * self.downsample_ratio)) > 1e-9 or \
                    abs(1 / self.downsample_ratio - round(1 / self.downsample_ratio)) > 1e-9:
                out.append(f"{p}: downsample_ratio {self.downsample_ratio} must be 1/k and divide the "
                           f"{side}x{side} patch grid")
            if not (1 <= self.min_tiles <= self.max_tiles):
                out.append(f"{p}: need 1 <= min_tiles ({self.min_tiles}) <= max_tiles ({self.max_tiles})")
            for k in ("image_mean", "image_std"):
                val = getattr(self, k)
                if len(val) != 3 or any(not isinstance(x, (int, float)) for x in val):
                    out.append(f"{p}: {k} must be three numbers (RGB)")
            if self.select_layer != -1 and v.get("backend") == "timm":
                out.append(f"{p}: select_layer other than -1 is supported for the internvl backend only")
        elif self.vision:
            out.append(f"{p}: 'vision' is set but family is 'text'; use family: vlm")
        return out


PRESET_FIELDS = {f.name for f in fields(ModelPreset)}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if k in ("text_config", "vision") and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def _raw(name_or_path: str | os.PathLike, seen: tuple = ()) -> tuple[dict, Path]:
    path = resolve("models", name_or_path)
    data = load_yaml(path)
    bad = sorted(set(data) - PRESET_FIELDS)
    if bad:
        raise ValueError(f"{path}: unknown key(s) {bad}; a preset's keys are ModelPreset fields: "
                         f"{sorted(PRESET_FIELDS)}")
    base = data.get("base")
    if base:
        if base in seen:
            raise ValueError(f"{path}: 'base' chain loops back to {base!r}")
        parent, _ = _raw(base, seen + (base,))
        parent.pop("description", None)
        data = _merge(parent, data)
    return data, path


def load_preset(name_or_path: str | os.PathLike | ModelPreset) -> ModelPreset:
    """The preset ``models/<name>.yaml`` (or a YAML path), with its ``base`` chain merged in."""
    if isinstance(name_or_path, ModelPreset):
        return name_or_path
    data, path = _raw(name_or_path)
    data["name"] = path.stem if Path(str(name_or_path)).suffix not in (".yaml", ".yml") else path.stem
    data.pop("base", None)
    try:
        preset = ModelPreset(**data)
    except TypeError as e:  # pragma: no cover - unknown keys are caught above
        raise ValueError(f"{path}: {e}") from None
    preset.base = None
    return preset


def is_preset(name: str | os.PathLike) -> bool:
    """Whether ``name`` resolves to a preset file."""
    try:
        resolve("models", name)
        return True
    except (FileNotFoundError, ValueError):
        return False


def list_presets() -> list[str]:
    """Names of every shipped preset."""
    return list_assets("models")


def preset_summary(p: ModelPreset) -> dict[str, Any]:
    """The facts ``mmredstar models info`` prints (no weights loaded)."""
    tc = p.text_config
    d: dict[str, Any] = {
        "name": p.name, "family": p.family, "source": p.source, "checkpoint": p.checkpoint, "init": p.init,
        "dtype": p.dtype, "lm": tc.get("model_type"), "hidden_size": tc.get("hidden_size"),
        "layers": tc.get("num_hidden_layers"), "heads": f"{tc.get('num_attention_heads')}/"
        f"{tc.get('num_key_value_heads', tc.get('num_attention_heads'))}", "vocab_size": tc.get("vocab_size"),
        "max_position_embeddings": tc.get("max_position_embeddings"), "context_length": p.context_length,
        "rope": {"rope_theta": tc.get("rope_theta"), **(tc.get("rope_scaling") or {}), **(p.rope_scaling or {})},
    }
    if p.family == "vlm":
        d.update({"vision": dict(p.vision or {}), "tile_size": p.tile_size, "tiles": f"{p.min_tiles}-{p.max_tiles}",
                  "thumbnail": p.use_thumbnail, "tokens_per_tile": p.tokens_per_tile,
                  "downsample_ratio": p.downsample_ratio})
    return d
