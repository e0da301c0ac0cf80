"""Freezing and per-module learning rates for the three parts of a model: vision tower, projector, LM.

    from mmredstar.modeling import param_groups
    groups = param_groups(model, lrs={"vision": 1e-6, "projector": 1e-4, "lm": 1e-5}, freeze={"vision": True})
    optimizer = torch.optim.AdamW(groups)          # frozen parts get requires_grad=False and no group

Part names: ``vision`` (the tower), ``projector`` (``mlp1``), ``lm`` (the language model); ``llm`` and
``language_model`` are accepted for ``lm``, ``vit``/``vision_model`` for ``vision``, ``mlp``/``mlp1``
for ``projector``. A text-only model has only ``lm``.
"""

from __future__ import annotations

PARTS = ("vision", "projector", "lm")
ALIASES = {"vision": "vision", "vit": "vision", "vision_model": "vision", "vision_tower": "vision",
           "projector": "projector", "mlp": "projector", "mlp1": "projector", "multi_modal_projector": "projector",
           "lm": "lm", "llm": "lm", "language_model": "lm", "text": "lm"}
PREFIXES = {"vision_model.": "vision", "mlp1.": "projector", "language_model.": "lm"}


def part_of(param_name: str, is_vlm: bool) -> str:
    """Which part a parameter belongs to.

    >>> part_of("mlp1.1.weight", True), part_of("model.layers.0.mlp.up_proj.weight", False)
    ('projector', 'lm')
    """
    if not is_vlm:
        return "lm"
    for prefix, part in PREFIXES.items():
        if param_name.startswith(prefix):
            return part
    raise ValueError(f"parameter {param_name!r} belongs to no known part ({list(PREFIXES)})")


def _canon(d: dict | None, what: str) -> dict:
    out = {}
    for k, v in (d or {}).items():
        if k not in ALIASES:
            raise ValueError(f"param_groups: unknown part {k!r} in {what}; use one of {list(PARTS)} "
                             f"(aliases: {sorted(ALIASES)})")
        out[ALIASES[k]] = v
    return out


def parts(model) -> dict[str, list[tuple[str, object]]]:
    """``{part: [(name, parameter), ...]}`` for the parts the model has."""
    is_vlm = getattr(model.config, "model_type", "") == "mmredstar_vlm"
    out: dict[str, list] = {}
    for name, p in model.named_parameters():
        out.setdefault(part_of(name, is_vlm), []).append((name, p))
    return out


def param_groups(model, lrs: dict | None = None, freeze: dict | None = None, *,
                 weight_decay: float | None = None) -> list[dict]:
    """Freeze the parts marked true in ``freeze`` (``requires_grad=False``) and return optimizer groups
    for the rest, one per part, each with ``lr`` from ``lrs`` when given (else the optimizer's default),
    and ``name``. With ``weight_decay``, each part splits into a decayed group and a no-decay group
    (biases and norm weights, i.e. parameters with fewer than 2 dims)."""
    lrs, freeze = _canon(lrs, "lrs"), _canon(freeze, "freeze")
    groups: list[dict] = []
    by_part = parts(model)
    for part in (p for p in PARTS if p in by_part):
        params = by_part[part]
        frozen = bool(freeze.get(part, False))
        for _, p in params:
            p.requires_grad_(not frozen)
        if frozen:
            continue
        base = {"name": part}
        if part in lrs and lrs[part] is not None:
            base["lr"] = float(lrs[part])
        if weight_decay is None:
            groups.append({**base, "params": [p for _, p in params]})
        else:
            decay = [p for _, p in params if p.ndim >= 2]
            no_decay = [p for _, p in params if p.ndim < 2]
            if decay:
                groups.append({**base, "params": decay, "weight_decay": float(weight_decay)})
            if no_decay:
                groups.append({**base, "name": part + ".no_decay", "params": no_decay, "weight_decay": 0.0})
    # tied weights appear once in named_parameters, so no parameter is in two groups
    return groups
