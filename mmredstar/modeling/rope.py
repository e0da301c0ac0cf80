"""RoPE scaling on a transformers config: the ``rope_scaling`` of presets and recipes (no torch import).

    from mmredstar.modeling.rope import apply_rope
    apply_rope(config, {"type": "yarn", "factor": 4.0}, max_position_embeddings=131072)
"""

from __future__ import annotations


def normalize_rope(rope_scaling: dict | None, rope_theta: float | None = None) -> dict | None:
    """A rope scaling mapping in transformers' ``rope_parameters`` form (``type`` -> ``rope_type``).

    >>> normalize_rope({"type": "linear", "factor": 4}, 10000.0)
    {'factor': 4.0, 'rope_theta': 10000.0, 'rope_type': 'linear'}
    """
    if rope_scaling is None:
        return None
    rs = {k: v for k, v in dict(rope_scaling).items() if k != "type"}
    rs["rope_type"] = rope_scaling.get("rope_type", rope_scaling.get("type", "default"))
    if "factor" in rs:
        rs["factor"] = float(rs["factor"])
    if rope_theta is not None:
        rs.setdefault("rope_theta", float(rope_theta))
    return dict(sorted(rs.items()))


def apply_rope(config, rope_scaling: dict | None = None, max_position_embeddings: int | None = None):
    """Set RoPE scaling / context length on an LM config (in place) and return it."""
    if rope_scaling is not None:
        theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta",
                                                                    getattr(config, "rope_theta", None))
        params = normalize_rope(rope_scaling, theta)
        if params.get("rope_type") in ("yarn", "longrope", "llama3"):
            params.setdefault("original_max_position_embeddings", config.max_position_embeddings)
        config.rope_parameters = params
    if max_position_embeddings is not None:
        config.max_position_embeddings = int(max_position_embeddings)
    return config
