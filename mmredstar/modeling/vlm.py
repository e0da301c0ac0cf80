"""The vision adapter: a vision tower + pixel shuffle + MLP projector + any causal LM = one VLM.

InternVL-style: each image tile goes through the tower; its patch features (CLS dropped) are
pixel-shuffled (``downsample_ratio`` 0.5 merges 2x2 neighbours, 4x the channels), projected by
``mlp1`` (LayerNorm -> Linear -> GELU -> Linear) to the LM's width, and written over the embeddings
of the ``<IMG_CONTEXT>`` tokens, in order. Rows without images go through the same model untouched.

Towers: ``backend: internvl`` (transformers' ``InternVLVisionModel``, the InternViT of InternVL2/2.5/3)
or ``backend: timm`` (a timm ``VisionTransformer``, optionally behind a small conv stem). LM: any
transformers causal LM (Qwen2/2.5, Llama, InternLM2 converted to Llama). Module names follow the
original InternVL release: ``vision_model``, ``mlp1``, ``language_model`` (a full ``*ForCausalLM``).

    from mmredstar.modeling import load_model
    model, processor = load_model("tiny_vlm")        # a VisionLanguageModel
    out = model(**processor.collate([processor.encode(sample, "answer")]))
"""

from __future__ import annotations

from functools import partial

import torch
from einops import rearrange
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec


class VLMConfig(PreTrainedConfig):
    """Config of ``VisionLanguageModel`` (``model_type: mmredstar_vlm``)."""

    model_type = "mmredstar_vlm"
    sub_configs_defaults = {"text_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2")}

    text_config: dict | PreTrainedConfig | None = None
    """The LM's config (any transformers causal LM)."""
    vision_config: dict | None = None
    """The tower: ``{"backend": "internvl", **InternVLVisionConfig kwargs}`` or ``{"backend": "timm", ...}``."""
    image_token_id: int = -1
    """Token id of ``<IMG_CONTEXT>``; its embeddings are replaced by image features."""
    downsample_ratio: float = 0.5
    projector_hidden_act: str = "gelu"
    select_layer: int = -1
    tile_size: int = 448
    vision_always_on: bool = True
    """In training, batches without images still run one blank tile through tower and projector (its
    contribution multiplied by 0) so every parameter is in the graph: DDP and ZeRO-3 need that."""
    tie_word_embeddings: bool = False


class ConvStem(nn.Module):
    """Stride-2 3x3 convolutions (GELU between) in front of a timm ViT's patch embedding."""

    def __init__(self, in_chans: int, channels: list[int]):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for i, out in enumerate(channels):
            layers.append(nn.Conv2d(c, out, 3, stride=2, padding=1))
            if i < len(channels) - 1:
                layers.append(nn.GELU())
            c = out
        self.net = nn.Sequential(*layers)
        self.out_channels = self.num_features = c
        self.reduction = 2 ** len(channels)

    def forward(self, x):
        return self.net(x)


def build_timm_tower(cfg: dict, tile_size: int) -> nn.Module:
    """A timm ``VisionTransformer`` from the preset's ``vision`` mapping (no head, no pooling)."""
    from timm.layers import HybridEmbed
    from timm.models.vision_transformer import VisionTransformer

    patch = int(cfg.get("patch_size", 16))
    stem = list(cfg.get("stem_channels") or [])
    kw = dict(img_size=tile_size, num_classes=0, global_pool="", embed_dim=int(cfg["embed_dim"]),
              depth=int(cfg["depth"]), num_heads=int(cfg["num_heads"]), mlp_ratio=float(cfg.get("mlp_ratio", 4.0)),
              class_token=bool(cfg.get("class_token", True)), qkv_bias=bool(cfg.get("qkv_bias", True)),
              init_values=cfg.get("init_values"))
    if stem:
        reduction = 2 ** len(stem)
        if patch % reduction:
            raise ValueError(f"vision.patch_size {patch} must be a multiple of the conv stem's reduction {reduction}")
        backbone = ConvStem(3, stem)
        feat = tile_size // reduction
        kw["patch_size"] = patch // reduction
        kw["embed_layer"] = partial(HybridEmbed, backbone=backbone, feature_size=feat, feature_ratio=reduction)
        tower = VisionTransformer(**kw)
    else:
        tower = VisionTransformer(patch_size=patch, **kw)
    return tower


def build_internvl_tower(cfg: dict, tile_size: int, attn_implementation: str | None = None):
    from transformers import InternVLVisionConfig, InternVLVisionModel

    kw = {k: v for k, v in cfg.items() if k != "backend"}
    kw.setdefault("image_size", tile_size)
    vc = InternVLVisionConfig(**kw)
    if attn_implementation:
        vc._attn_implementation = attn_implementation
    return InternVLVisionModel(vc)


def pixel_shuffle(x: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
    """InternVL's pixel shuffle (``ps_version: v2``): [n, w, h, c] -> [n, w*s, h*s, c/s^2].

    >>> pixel_shuffle(torch.arange(16.).view(1, 2, 2, 4), 0.5).shape
    torch.Size([1, 1, 1, 16])
    """
    r = round(1 / scale)
    if abs(r * scale - 1) > 1e-6:
        raise ValueError(f"pixel_shuffle: scale {scale} is not 1/integer (InternVL uses 0.5)")
    # each r x r block of neighbouring patches becomes one token with r*r times the channels
    return rearrange(x, "n (w dw) (h dh) c -> n w h (dw dh c)", dw=r, dh=r).contiguous()


class VisionLanguageModel(PreTrainedModel, GenerationMixin):
    """Vision tower + pixel shuffle + MLP projector + causal LM (see the module docstring).

    ``forward(input_ids, attention_mask=None, position_ids=None, pixel_values=None, num_tiles=None,
    image_flags=None, labels=None, past_key_values=None, ...) -> CausalLMOutputWithPast``.
    ``pixel_values`` holds every tile of every image in the batch, in the order their ``<IMG_CONTEXT>``
    runs appear (row by row); ``image_flags`` (1 = real, 0 = padding tile) drops padding tiles, and
    ``num_tiles`` (per image) is only checked.
    """

    config_class = VLMConfig
    config: VLMConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _skip_keys_device_placement = ["past_key_values"]
    _no_split_modules = ["InternVLVisionLayer", "Block", "Qwen2DecoderLayer", "LlamaDecoderLayer"]

    def __init__(self, config: VLMConfig):
        super().__init__(config)
        vc = dict(config.vision_config or {})
        self.backend = vc.get("backend")
        if self.backend == "timm":
            self.vision_model = build_timm_tower(vc, config.tile_size)
            vit_hidden = int(vc["embed_dim"])
        elif self.backend == "internvl":
            self.vision_model = build_internvl_tower(vc, config.tile_size, config._attn_implementation)
            vit_hidden = int(vc["hidden_size"])
        else:
            raise ValueError(f"vision_config.backend must be 'timm' or 'internvl', got {self.backend!r}")
        llm_hidden = config.text_config.hidden_size
        k = int(round(1 / config.downsample_ratio)) ** 2
        self.mlp1 = nn.Sequential(
            nn.LayerNorm(vit_hidden * k), nn.Linear(vit_hidden * k, llm_hidden),
            nn.GELU() if config.projector_hidden_act == "gelu" else nn.SiLU(), nn.Linear(llm_hidden, llm_hidden))
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    # ---------------------------------------------------------------------------------- plumbing
    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value):
        self.language_model.set_output_embeddings(value)

    def get_decoder(self):
        return self.language_model.get_decoder()

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        emb = self.language_model.resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        self.config.text_config.vocab_size = emb.num_embeddings
        return emb

    @torch.no_grad()
    def _init_weights(self, module):
        # The LM and the transformers tower initialise themselves; timm initialised its own modules at
        # construction. Only the projector is ours.
        if any(module is m for m in self.mlp1):
            std = getattr(self.config.text_config, "initializer_range", 0.02)
            if isinstance(module, nn.Linear):
                module.weight.normal_(0.0, std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()

    def _set_gradient_checkpointing(self, enable: bool = True, *args, **kwargs):
        # transformers toggles its own layers (LM, InternViT); a timm tower has its own switch
        super()._set_gradient_checkpointing(enable, *args, **kwargs)
        if self.backend == "timm" and hasattr(self.vision_model, "set_grad_checkpointing"):
            self.vision_model.set_grad_checkpointing(enable)

    # ---------------------------------------------------------------------------------- vision
    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Tower output for tiles [n, 3, H, W] -> patch features [n, side, side, C] (CLS dropped)."""
        if self.backend == "timm":
            feats = self.vision_model.forward_features(pixel_values)
            feats = feats[:, getattr(self.vision_model, "num_prefix_tokens", 1):]
        else:
            if self.config.select_layer == -1:
                feats = self.vision_model(pixel_values=pixel_values).last_hidden_state
            else:
                out = self.vision_model(pixel_values=pixel_values, output_hidden_states=True)
                feats = out.hidden_states[self.config.select_layer]
            feats = feats[:, 1:]
        n, length, c = feats.shape
        side = int(round(length ** 0.5))
        if side * side != length:
            raise ValueError(f"vision tower returned {length} patch tokens per tile, not a square grid")
        return feats.reshape(n, side, side, c)

    def extract_feature(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Tiles [n, 3, H, W] -> image-token embeddings [n, tokens_per_tile, LM hidden]."""
        dtype = next(self.mlp1.parameters()).dtype
        feats = self.vision_features(pixel_values.to(dtype))
        feats = pixel_shuffle(feats, self.config.downsample_ratio)
        feats = feats.reshape(feats.shape[0], -1, feats.shape[-1])
        return self.mlp1(feats)

    def _vision_trainable(self) -> bool:
        return any(p.requires_grad for p in self.vision_model.parameters()) or \
            any(p.requires_grad for p in self.mlp1.parameters())

    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
              image_flags: torch.Tensor | None = None, num_tiles: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings with image features written over the ``<IMG_CONTEXT>`` positions."""
        embeds = self.get_input_embeddings()(input_ids)
        mask = input_ids == self.config.image_token_id
        n_ctx = int(mask.sum())
        if pixel_values is not None and pixel_values.numel():
            if image_flags is not None:
                pixel_values = pixel_values[image_flags.view(-1).bool()]
            if num_tiles is not None and int(torch.as_tensor(num_tiles).sum()) != pixel_values.shape[0]:
                raise ValueError(f"num_tiles sums to {int(torch.as_tensor(num_tiles).sum())} but pixel_values has "
                                 f"{pixel_values.shape[0]} tiles; collate features with processor.collate")
            feats = self.extract_feature(pixel_values)
            if n_ctx != feats.shape[0] * feats.shape[1]:
                raise ValueError(
                    f"the batch has {n_ctx} <IMG_CONTEXT> tokens but {feats.shape[0]} tiles x {feats.shape[1]} "
                    f"tokens per tile = {feats.shape[0] * feats.shape[1]} image features: inputs and pixel_values "
                    "disagree (was a sequence truncated inside an image span? use processor.encode/collate)")
            embeds = embeds.masked_scatter(mask.unsqueeze(-1), feats.to(embeds.dtype))
        else:
            if n_ctx:
                raise ValueError(f"the batch has {n_ctx} <IMG_CONTEXT> tokens but no pixel_values")
            if self.training and self.config.vision_always_on and self._vision_trainable():
                size = self.config.tile_size
                dummy = torch.zeros(1, 3, size, size, device=embeds.device, dtype=embeds.dtype)
                embeds = embeds + 0.0 * self.extract_feature(dummy).sum().to(embeds.dtype)
        return embeds

    # ---------------------------------------------------------------------------------- forward
    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, pixel_values=None, num_tiles=None, image_flags=None, labels=None,
                use_cache=None, logits_to_keep=0, **kwargs):
        """Causal LM forward with images spliced in; returns the LM's ``CausalLMOutputWithPast``."""
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("pass input_ids (or inputs_embeds)")
            inputs_embeds = self.embed(input_ids, pixel_values, image_flags, num_tiles)
        kwargs.pop("image_spans", None)
        return self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                   position_ids=position_ids, past_key_values=past_key_values, labels=labels,
                                   use_cache=use_cache, logits_to_keep=logits_to_keep, **kwargs)


AutoConfig.register(VLMConfig.model_type, VLMConfig, exist_ok=True)
AutoModelForCausalLM.register(VLMConfig, VisionLanguageModel, exist_ok=True)
