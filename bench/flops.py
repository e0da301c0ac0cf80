"""Training FLOPs and model FLOPs utilisation (MFU): the formula every GPU figure in bench/ uses.

    python -c "from bench.flops import *; print(lm_shape_from_preset('qwen2_5_1_5b'))"

Per real (non-padding) token of a causal LM, one training step (forward + backward = 3 forwards) costs

    6 * N  +  12 * L * H_attn * c

* ``N``: the parameters that take part in a matrix multiply per token (every weight matrix of the
  decoder layers and the LM head; the input embedding is a look-up and is not counted; with tied
  embeddings the LM head still counts once);
* ``12 * L * H_attn * c``: causal attention, where ``L`` = layers, ``H_attn`` = query heads x head dim,
  and ``c`` = the number of keys the token attends to (its position + 1 within its own packed sample):
  forward ``QK^T`` and ``AV`` are 2 * H_attn * c multiply-adds each = 4 * H_attn * c FLOPs, times 3 for
  the backward. Summed over a packed row of samples of lengths ``s_i``: ``6 L H_attn sum_i s_i (s_i + 1)``.

A VLM adds its vision tower on every image patch (``6 * N_vit`` per patch plus its bidirectional attention
``12 * L_v * H_v * P`` per patch, P = patches per tile) and the projector on every image token.

MFU = achieved FLOP/s / the device's peak dense bf16 FLOP/s (``PEAK_BF16``; H100 SXM 989 TFLOP/s).
Recomputation (activation checkpointing, tiled MLP) is *not* counted as useful work: MFU is model FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass

PEAK_BF16 = {  # dense bf16 tensor-core FLOP/s, from the vendors' data sheets
    "H200": 989.4e12,
    "H100 SXM": 989.4e12,
    "H100 NVL": 835.0e12,
    "H100 PCIe": 756.0e12,
    "H100": 989.4e12,  # an "H100 80GB HBM3" is the SXM part
    "GH200": 989.4e12,
    "A100": 312.0e12,
    "L40S": 362.0e12,
}


def peak_flops(device_name: str) -> float | None:
    """Peak dense bf16 FLOP/s of a GPU by its name (longest matching key), else None.

    >>> peak_flops("NVIDIA H100 80GB HBM3") / 1e12
    989.4
    >>> peak_flops("NVIDIA H100 PCIe") / 1e12
    756.0
    >>> peak_flops("cpu") is None
    True
    """
    name = device_name.upper()
    best = None
    for k in sorted(PEAK_BF16, key=len, reverse=True):
        parts = k.upper().split()
        if all(p in name for p in parts):
            best = PEAK_BF16[k]
            break
    return best


@dataclass
class LMShape:
    """What the FLOPs formula needs from a causal LM config."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool

    @property
    def matmul_params(self) -> int:
        """``N``: weights used in a matmul per token (attention q/k/v/o with biases, gated MLP, LM head).

        >>> LMShape(24, 896, 14, 2, 64, 4864, 151936, True).matmul_params
        494032768
        """
        h, a, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        attn = h * a + a + 2 * (h * kv + kv) + a * h  # q (bias), k, v (bias), o
        mlp = 3 * h * self.intermediate
        norms = 2 * h
        return self.layers * (attn + mlp + norms) + h + self.vocab * h

    @property
    def attn_width(self) -> int:
        return self.heads * self.head_dim


def lm_shape(cfg: dict) -> LMShape:
    """``LMShape`` from a transformers text config (as a dict)."""
    heads = int(cfg["num_attention_heads"])
    hidden = int(cfg["hidden_size"])
    return LMShape(layers=int(cfg["num_hidden_layers"]), hidden=hidden, heads=heads,
                   kv_heads=int(cfg.get("num_key_value_heads") or heads),
                   head_dim=int(cfg.get("head_dim") or hidden // heads), intermediate=int(cfg["intermediate_size"]),
                   vocab=int(cfg["vocab_size"]), tied=bool(cfg.get("tie_word_embeddings", False)))


def lm_shape_from_preset(name: str) -> LMShape:
    from mmredstar.modeling import load_preset

    return lm_shape(load_preset(name).text_config)


def attention_context(seq_lengths: list[int]) -> int:
    """Sum over tokens of the keys each attends to, for packed samples of these lengths (causal).

    >>> attention_context([3])       # 1 + 2 + 3
    6
    >>> attention_context([2, 2])
    6
    """
    return sum(s * (s + 1) // 2 for s in seq_lengths)


def train_flops(shape: LMShape, seq_lengths: list[int]) -> float:
    """Model FLOPs of one training pass over packed samples of these lengths (the formula above).

    >>> s = LMShape(2, 64, 4, 2, 16, 256, 1280, True)
    >>> train_flops(s, [10]) == 6 * s.matmul_params * 10 + 12 * 2 * 64 * 55
    True
    """
    tokens = sum(seq_lengths)
    return 6.0 * shape.matmul_params * tokens + 12.0 * shape.layers * shape.attn_width * attention_context(seq_lengths)


def vision_flops(vision_cfg: dict, tile_size: int, tiles: int, image_tokens_per_tile: int, llm_hidden: int,
                 downsample: float = 0.5) -> float:
    """Training FLOPs of an InternViT-style tower + MLP projector over ``tiles`` tiles.

    >>> vision_flops({"hidden_size": 8, "num_hidden_layers": 1, "intermediate_size": 16, "patch_size": 14},
    ...              28, 1, 1, 4) > 0
    True
    """
    d = int(vision_cfg.get("hidden_size") or vision_cfg.get("embed_dim"))
    layers = int(vision_cfg.get("num_hidden_layers") or vision_cfg.get("depth"))
    inter = int(vision_cfg.get("intermediate_size") or d * float(vision_cfg.get("mlp_ratio", 4.0)))
    patch = int(vision_cfg.get("patch_size", 14))
    p = (tile_size // patch) ** 2 + 1  # patches + CLS
    n_layer = layers * (4 * d * d + 2 * d * inter)
    k = int(round(1 / downsample)) ** 2
    proj = d * k * llm_hidden + llm_hidden * llm_hidden
    per_tile = 6.0 * n_layer * p + 12.0 * layers * d * p * p + 6.0 * proj * image_tokens_per_tile
    return per_tile * tiles


def mfu(flops_per_s: float, device_name: str) -> float | None:
    """Achieved FLOP/s over the device's peak (None when the peak is unknown, e.g. on a CPU)."""
    peak = peak_flops(device_name)
    return flops_per_s / peak if peak else None
