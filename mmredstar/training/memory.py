"""Long-context memory options for training: fused linear cross-entropy, tiled MLP, offloaded checkpoints.

Three independent switches (recipe keys under ``train``, all off by default), each exact up to float
summation order (tests compare loss and gradients with the plain path):

* ``fused_linear_ce``: the LM head and the cross-entropy run together over chunks of tokens, so the
  ``[tokens, vocab]`` logits are never materialised (at 16k tokens and Qwen2.5's 152k vocabulary the
  plain path holds ~10 GB of fp32 logits and their gradient). Each chunk computes its logits, its loss
  and, when gradients are needed, its gradients for the hidden states, the weight and the bias at once
  (softmax minus one-hot, scaled), as Liger's ``LigerFusedLinearCrossEntropyLoss`` does; the backward
  only scales the stored gradients by the incoming one, so nothing is recomputed and no chunk's logits
  outlive the chunk. On a CUDA GPU with ``liger-kernel`` installed Liger's Triton kernel is used; the
  pure-torch version runs everywhere else. Padding-free/packed rows, pre-shifted ``shift_labels``
  (Ulysses) and ``num_items_in_batch`` (gradient accumulation) give the model's own loss.
* ``tiled_mlp``: every decoder layer's MLP runs over tiles of the sequence (``mlp_tile_tokens``; 0 = the
  hidden size, as in Arctic Long Sequence Training) with recomputation: the forward keeps only the
  MLP's input, the backward recomputes one tile at a time. The MLP's ``[tokens, intermediate]``
  activations (3-4 of them, ~5x the hidden size each for Qwen2.5) shrink to one tile's.
* ``offload_activations``: activation checkpointing whose saved layer inputs (the only activations a
  checkpointed layer keeps) go to (pinned) host memory in the forward and come back in the backward,
  so a long sequence needs ``layers x tokens x hidden`` bytes less device memory. Implies checkpointing.
  On a CPU-only machine the host *is* the device: the tensors are still copied (the code path and the
  parity are exercised) but no memory is saved; the byte counter says what would leave a GPU.

All three work on text models and on our VLM (they patch its ``language_model``), with packed rows
(restarting ``position_ids``) and with DeepSpeed ZeRO-2. ZeRO-3 partitions the parameters these
functions read directly: ``apply_memory_options`` refuses that combination with a clear message.

    from mmredstar.training.memory import apply_memory_options
    report = apply_memory_options(model, fused_linear_ce=True, tiled_mlp=True, offload_activations=True)
    mmredstar train tiny/sft train.fused_linear_ce=true train.tiled_mlp=true train.offload_activations=true
"""

from __future__ import annotations

import functools
import importlib.util
import math
import types
from dataclasses import dataclass

import torch
from torch import nn

from .runner import use_liger
from .vlm_fused import is_vlm

IGNORE = -100
CE_CHUNK_ELEMENTS = 1 << 26
"""Auto chunk size of the fused cross-entropy: tokens per chunk x vocabulary <= this many fp32 logits (256 MB)."""


# ------------------------------------------------------------------------------------------------ helpers
def auto_ce_chunk(vocab: int, budget: int = CE_CHUNK_ELEMENTS) -> int:
    """Tokens per fused cross-entropy chunk: the largest power of two with ``tokens x vocab <= budget``.

    >>> auto_ce_chunk(151936)
    256
    >>> auto_ce_chunk(1280)
    32768
    """
    return 1 << max(0, int(math.floor(math.log2(max(1, budget // max(1, vocab))))))


def tile_bounds(n: int, tile: int) -> list[tuple[int, int]]:
    """[start, end) of each tile of ``n`` positions, ``tile`` at a time (the last one shorter).

    >>> tile_bounds(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    """
    return [(s, min(s + tile, n)) for s in range(0, n, max(1, tile))]


def shift_targets(labels: torch.Tensor | None, shift_labels: torch.Tensor | None) -> torch.Tensor:
    """The next-token target of every position, as transformers' causal-LM loss builds it: labels moved
    one to the left with ``-100`` after the last one (or ``shift_labels`` as given, already shifted).

    >>> shift_targets(torch.tensor([[5, 6, 7]]), None).tolist()
    [[6, 7, -100]]
    """
    if shift_labels is not None:
        return shift_labels
    return nn.functional.pad(labels, (0, 1), value=IGNORE)[..., 1:]


def _autocast_state(device_type: str) -> tuple[bool, torch.dtype | None]:
    try:
        on = torch.is_autocast_enabled(device_type)
    except TypeError:  # older torch: no device argument
        on = torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()
    return on, (torch.get_autocast_dtype(device_type) if on else None)


# ------------------------------------------------------------------------------- fused linear cross-entropy
class _FusedLinearCE(torch.autograd.Function):
    """sum over valid tokens of CE(hidden @ weight.T + bias, target), times ``scale``; grads made per chunk."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk: int, scale: float, grads: bool):
        n = hidden.shape[0]
        need = [bool(x) and grads for x in ctx.needs_input_grad]
        grad_h = torch.empty_like(hidden) if need[0] else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need[1] else None
        grad_b = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) \
            if bias is not None and need[2] else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for s, e in tile_bounds(n, chunk):
            h = hidden[s:e]
            t = targets[s:e]
            logits = nn.functional.linear(h, weight, bias).float()
            valid = t != IGNORE
            tc = t.clamp(min=0)
            lse = torch.logsumexp(logits, dim=-1)
            picked = logits.gather(1, tc[:, None])[:, 0]
            total += ((lse - picked) * valid).sum()
            if not any(need[:3]):
                continue
            # d(loss)/d(logits) = softmax - onehot on valid rows, 0 elsewhere; reuse the logits buffer
            g = logits.sub_(lse[:, None]).exp_()
            g[torch.arange(e - s, device=g.device), tc] -= 1.0
            g.mul_((valid.to(g.dtype) * scale)[:, None])
            gl = g.to(h.dtype) if h.dtype != torch.float32 else g
            if grad_h is not None:
                grad_h[s:e] = (gl @ weight.to(gl.dtype)).to(hidden.dtype)
            if grad_w is not None:
                grad_w.add_((gl.t() @ h.to(gl.dtype)).float())
            if grad_b is not None:
                grad_b.add_(g.sum(0))
        ctx.save_for_backward(*(x for x in (grad_h, grad_w, grad_b) if x is not None))
        ctx.has = (grad_h is not None, grad_w is not None, grad_b is not None)
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype if bias is not None else None)
        return total * scale

    @staticmethod
    def backward(ctx, grad_out):
        saved = list(ctx.saved_tensors)
        out = []
        for has, dt in zip(ctx.has, ctx.dtypes, strict=True):
            out.append((saved.pop(0) * grad_out).to(dt) if has else None)
        return out[0], out[1], out[2], None, None, None, None


def liger_available(device: torch.device) -> bool:
    """Liger's Triton kernels can run here: ``liger-kernel`` installed and a CUDA tensor."""
    return device.type == "cuda" and importlib.util.find_spec("liger_kernel") is not None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         bias: torch.Tensor | None = None, *, num_items: float | torch.Tensor | None = None,
                         chunk_tokens: int = 0, use_liger: bool | None = None) -> torch.Tensor:
    """Cross-entropy of ``hidden @ weight.T (+ bias)`` against ``targets`` (``-100`` = ignored) without the
    full logits: the sum over valid tokens divided by ``num_items`` (default: the number of valid tokens,
    i.e. the mean). ``hidden`` is [tokens, H] (any leading shape is flattened), ``targets`` the same tokens.

    ``use_liger``: ``None`` = Liger's kernel when available on this device, else the pure-torch chunks."""
    h = hidden.reshape(-1, hidden.shape[-1])
    t = targets.reshape(-1).to(h.device)
    if num_items is None:
        denom = float((t != IGNORE).sum().clamp(min=1))
    else:
        denom = float(num_items.item() if torch.is_tensor(num_items) else num_items)
    if use_liger is None:
        use_liger = liger_available(h.device)
    if use_liger:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        out = LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE, reduction="sum")(weight, h, t, bias)
        out = out[0] if isinstance(out, tuple) else out
        return out / denom
    chunk = chunk_tokens or auto_ce_chunk(weight.shape[0])
    return _FusedLinearCE.apply(h, weight, bias, t, int(chunk), 1.0 / denom, torch.is_grad_enabled())


def _fused_forward(original, chunk_tokens: int, use_liger: bool | None):
    """A causal LM forward that, given labels, returns the loss through ``linear_cross_entropy`` (no logits)."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    @functools.wraps(original)
    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, logits_to_keep=0, **kwargs):
        shift_labels = kwargs.pop("shift_labels", None)
        if labels is None and shift_labels is None:
            return original(self, input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache,
                            logits_to_keep=logits_to_keep, **kwargs)
        num_items = kwargs.pop("num_items_in_batch", None)
        out = self.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                 past_key_values=past_key_values, inputs_embeds=inputs_embeds,
                                 use_cache=use_cache, **kwargs)
        hidden = out.last_hidden_state
        head = self.get_output_embeddings()
        targets = shift_targets(labels, shift_labels)
        loss = linear_cross_entropy(hidden, head.weight, targets, getattr(head, "bias", None),
                                    num_items=num_items, chunk_tokens=chunk_tokens, use_liger=use_liger)
        return CausalLMOutputWithPast(loss=loss, logits=None, past_key_values=out.past_key_values,
                                      hidden_states=getattr(out, "hidden_states", None),
                                      attentions=getattr(out, "attentions", None))

    return forward


def language_model_of(model) -> nn.Module:
    """The causal LM inside ``model``: a VLM's ``language_model``, else the model (DeepSpeed wrappers unwrapped)."""
    target = getattr(model, "module", model)
    return target.language_model if is_vlm(target) else target


def patch_fused_cross_entropy(model, *, chunk_tokens: int = 0, use_liger: bool | None = None) -> nn.Module:
    """Make the model's loss (given ``labels``) the fused linear cross-entropy; returns the patched LM.

    Without labels the forward is the original one (generation, logits). Idempotent."""
    lm = language_model_of(model)
    if getattr(lm, "_mmredstar_fused_ce", False):
        return lm
    if not hasattr(lm, "get_decoder") or lm.get_output_embeddings() is None:
        raise ValueError(f"fused_linear_ce: {type(lm).__name__} has no decoder + LM head to fuse; "
                         "set train.fused_linear_ce=false for this model")
    lm.forward = types.MethodType(_fused_forward(type(lm).forward, chunk_tokens, use_liger), lm)
    lm._mmredstar_fused_ce = True
    return lm


# ------------------------------------------------------------------------------------------------ tiled MLP
class _TiledMLP(torch.autograd.Function):
    """``fn`` applied to sequence tiles of ``x`` ([..., S, H]); the backward recomputes one tile at a time."""

    @staticmethod
    def forward(ctx, fn, tile: int, x, *params):
        ctx.fn, ctx.tile, ctx.params = fn, tile, params
        ctx.autocast = _autocast_state(x.device.type)
        ctx.save_for_backward(x)
        ctx.n_params = len(params)
        with torch.no_grad():
            outs = [fn(x[..., s:e, :]) for s, e in tile_bounds(x.shape[-2], tile)]
        return torch.cat(outs, dim=-2)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        params = ctx.params
        need_x = ctx.needs_input_grad[2]
        need_p = list(ctx.needs_input_grad[3:])
        gx = torch.zeros_like(x) if need_x else None
        gp = [None] * ctx.n_params
        on, dtype = ctx.autocast
        for s, e in tile_bounds(x.shape[-2], ctx.tile):
            xt = x[..., s:e, :].detach().requires_grad_(need_x)
            with torch.enable_grad(), torch.autocast(x.device.type, enabled=on, dtype=dtype or torch.bfloat16):
                y = ctx.fn(xt)
            wrt = ([xt] if need_x else []) + [p for p, n in zip(params, need_p, strict=True) if n]
            grads = list(torch.autograd.grad(y, wrt, grad_out[..., s:e, :], allow_unused=True))
            if need_x:
                gx[..., s:e, :] = grads.pop(0)
            k = 0
            for i, n in enumerate(need_p):
                if not n:
                    continue
                g = grads[k]
                k += 1
                if g is not None:
                    gp[i] = g if gp[i] is None else gp[i] + g
        return (None, None, gx, *gp)


def tiled_mlp_forward(mlp: nn.Module, x: torch.Tensor, tile_tokens: int) -> torch.Tensor:
    """``mlp(x)`` computed over sequence tiles of ``tile_tokens`` with recomputation in the backward.

    A sequence no longer than one tile runs the MLP as it is."""
    fn = type(mlp).forward.__get__(mlp)  # the class's forward, bound now (a deep copy binds to itself)
    if x.shape[-2] <= tile_tokens or not torch.is_grad_enabled():
        return fn(x)
    params = list(mlp.parameters())
    return _TiledMLP.apply(fn, int(tile_tokens), x, *params)


def patch_tiled_mlp(model, *, tile_tokens: int = 0) -> int:
    """Tile the MLP of every decoder layer of the model's LM; returns how many MLPs were patched.

    ``tile_tokens`` 0 = the LM's hidden size (ALST's choice: tiles of ``hidden`` tokens keep the matmuls
    large while one tile's ``[tile, intermediate]`` activations stay small). Idempotent."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    lm = language_model_of(model)
    tile = tile_tokens or int(lm.config.get_text_config().hidden_size)
    n = 0
    for layer in lm.modules():
        mlp = getattr(layer, "mlp", None)
        if not isinstance(layer, GradientCheckpointingLayer) or not isinstance(mlp, nn.Module):
            continue
        if getattr(mlp, "_mmredstar_tiled", False):
            n += 1
            continue
        def forward(self, x, _tile=tile):
            return tiled_mlp_forward(self, x, _tile)

        mlp.forward = types.MethodType(forward, mlp)
        mlp._mmredstar_tiled = True
        n += 1
    if n == 0:
        raise ValueError(f"tiled_mlp: no decoder layer with an 'mlp' found in {type(lm).__name__}; "
                         "set train.tiled_mlp=false for this model")
    return n


# --------------------------------------------------------------------------------- offloaded checkpoints
@dataclass
class OffloadStats:
    """What the offload hooks moved: tensors and bytes packed to the host (per forward, cumulative)."""

    tensors: int = 0
    bytes: int = 0


class OffloadHooks(torch.autograd.graph.saved_tensors_hooks):
    """Saved tensors of at least ``min_bytes`` go to host memory (pinned when they come from a GPU) in the
    forward and back to their device in the backward. CPU tensors are copied too (a real copy, counted),
    so the path runs and is checked on a CPU-only machine."""

    def __init__(self, stats: OffloadStats | None = None, min_bytes: int = 1 << 10):
        self.stats = stats if stats is not None else OffloadStats()

        def pack(t: torch.Tensor):
            size = t.numel() * t.element_size()
            if size < min_bytes or t.layout != torch.strided:
                return (None, t)
            cuda = t.device.type == "cuda"
            host = torch.empty(t.size(), dtype=t.dtype, layout=t.layout, pin_memory=cuda)
            host.copy_(t, non_blocking=cuda)
            self.stats.tensors += 1
            self.stats.bytes += size
            return (t.device, host)

        def unpack(packed):
            device, t = packed
            if device is None:
                return t
            return t.to(device, non_blocking=device.type == "cuda")

        super().__init__(pack, unpack)


def offloaded_checkpoint(function, *args, _stats: OffloadStats | None = None, **kwargs):
    """``torch.utils.checkpoint.checkpoint`` whose saved inputs live in host memory until the backward."""
    from torch.utils.checkpoint import checkpoint

    kwargs.setdefault("use_reentrant", False)
    with OffloadHooks(_stats):
        return checkpoint(function, *args, **kwargs)


def enable_offloaded_checkpointing(model) -> OffloadStats:
    """Turn on activation checkpointing for every checkpointable layer of ``model`` (the LM's decoder layers,
    a transformers vision tower's layers) with the inputs kept in host memory. Returns the live byte counter.

    The model's ``gradient_checkpointing_enable`` / ``activation_checkpointing_enable`` are wrapped so that a
    Trainer enabling checkpointing later keeps the offload."""
    target = getattr(model, "module", model)
    if getattr(target, "_mmredstar_offload_stats", None) is None:
        target._mmredstar_offload_stats = OffloadStats()
        for name in ("gradient_checkpointing_enable", "activation_checkpointing_enable"):
            if hasattr(target, name):  # bound to the model, so a deep copy (a DPO reference) binds to the copy
                setattr(target, name, types.MethodType(_enable_offload, target))
    _enable_offload(target)
    return target._mmredstar_offload_stats


def _enable_offload(model, *args, **kwargs):
    func = functools.partial(offloaded_checkpoint, _stats=model._mmredstar_offload_stats, use_reentrant=False)
    model._set_gradient_checkpointing(enable=True, gradient_checkpointing_func=func)
    if hasattr(model, "config"):
        model.config.use_cache = False


# ------------------------------------------------------------------------------------------------ switch
def apply_memory_options(model, *, fused_linear_ce: bool = False, ce_chunk_tokens: int = 0,
                         tiled_mlp: bool = False, mlp_tile_tokens: int = 0, offload_activations: bool = False,
                         deepspeed: str | None = None, liger_model: bool = False) -> dict:
    """Apply the recipe's memory options to a loaded model (before the Trainer wraps it); returns what was
    done (for ``metrics.json``). ``liger_model``: Liger's model patch is on (``train.liger``), which already
    fuses the LM head and cross-entropy, so ``fused_linear_ce`` has nothing left to do."""
    done: dict = {}
    if (fused_linear_ce or tiled_mlp or offload_activations) and deepspeed and "zero3" in str(deepspeed):
        raise ValueError(f"train.fused_linear_ce / tiled_mlp / offload_activations read parameters directly, which "
                         f"ZeRO-3 partitions (train.deepspeed={deepspeed!r}): use zero2 or no DeepSpeed with them")
    if fused_linear_ce:
        if liger_model:
            done["fused_linear_ce"] = "liger model patch (train.liger)"
        else:
            lm = patch_fused_cross_entropy(model, chunk_tokens=ce_chunk_tokens)
            dev = next(lm.parameters()).device
            done["fused_linear_ce"] = "liger kernel" if liger_available(dev) else \
                f"torch chunks of {ce_chunk_tokens or auto_ce_chunk(lm.get_output_embeddings().weight.shape[0])} tokens"
    if tiled_mlp:
        done["tiled_mlp"] = {"layers": patch_tiled_mlp(model, tile_tokens=mlp_tile_tokens),
                             "tile_tokens": mlp_tile_tokens or int(language_model_of(model).config.get_text_config().hidden_size)}
    if offload_activations:
        enable_offloaded_checkpointing(model)
        done["offload_activations"] = True
    return done


def offload_stats(model) -> OffloadStats | None:
    """The offload byte counter of a model set up by ``enable_offloaded_checkpointing`` (else None)."""
    return getattr(getattr(model, "module", model), "_mmredstar_offload_stats", None)


def apply_train_options(model, train) -> dict:
    """``apply_memory_options`` with a recipe's ``train`` section (``TrainConfig``)."""
    return apply_memory_options(model, fused_linear_ce=train.fused_linear_ce, ce_chunk_tokens=train.ce_chunk_tokens,
                                tiled_mlp=train.tiled_mlp, mlp_tile_tokens=train.mlp_tile_tokens,
                                offload_activations=train.offload_activations, deepspeed=train.deepspeed,
                                liger_model=use_liger(train.liger))
