"""Rollouts for PPO / REINFORCE++: the policy's responses to a batch of prompts, as token ids.

Backends (``ppo.rollout``):
  * ``hf`` (default, the CPU path): transformers ``generate`` on the training model itself (always current;
    text and VLM, prompts encoded by our processor exactly as in training).
  * ``vllm``: vLLM's in-process engine colocated with training (GPU); after every policy update the
    actor's weights are pushed into the engine (``sync``) so rollouts stay on-policy. vLLM is imported
    only when this backend is used.
  * ``server``: an OpenAI-compatible server (``vllm serve``, ``transformers serve``, SGLang) at
    ``ppo.rollout_url``, through ``mmredstar.generate.openai``; response texts are re-tokenised with our
    processor. The server holds its own weights: rollouts are on-policy only while it serves the current
    policy (``sync`` saves the actor to ``ppo.rollout_sync_dir`` when set, for a server that reloads from disk).

Every backend samples each prompt's ``n`` responses with a seed derived from (seed, step, prompt id)
(``generate.sample_seed``), so a rollout does not depend on how prompts are split across processes.

    ro = make_rollout("hf", processor, n=2, temperature=1.0, top_p=1.0, max_new_tokens=64)
    batch = ro.generate(model, samples, step=0, seed=0)   # -> Rollout (prompt/response ids, texts, ...)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch

from mmredstar.generate import SamplingParams, sample_seed
from mmredstar.schema import Sample

log = logging.getLogger(__name__)

BACKENDS = ("hf", "vllm", "server")


@dataclass
class Rollout:
    """One row per response (``n`` rows per prompt, prompt-major)."""

    sample_index: list[int] = field(default_factory=list)
    """Index of the row's prompt in the batch of samples given to ``generate``."""
    prompt_ids: list[list[int]] = field(default_factory=list)
    response_ids: list[list[int]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    features: list[dict] = field(default_factory=list)
    """Per prompt (not per row): the processor's prompt encoding (``input_ids``, ``pixel_values``, ``num_tiles``)."""

    def __len__(self) -> int:
        return len(self.response_ids)


class _Base:
    def __init__(self, processor, *, n: int, temperature: float, top_p: float, max_new_tokens: int,
                 blank_images: bool = False, suppress_ids: list[int] | None = None):
        self.processor, self.n, self.temperature, self.top_p = processor, n, temperature, top_p
        self.max_new_tokens, self.blank_images = max_new_tokens, blank_images
        self.suppress_ids = list(suppress_ids or [])
        tok = processor.tokenizer
        self.stop_ids = sorted({i for i in (processor.eos_token_id, tok.eos_token_id) if i is not None})
        self.pad_id = processor.pad_token_id if processor.pad_token_id is not None else self.stop_ids[0]

    def encode(self, s: Sample) -> dict:
        return self.processor.encode(s, None, add_generation_prompt=True, blank_images=self.blank_images)

    def _cut(self, row: list[int]) -> tuple[list[int], str]:
        for j, t in enumerate(row):
            if t in self.stop_ids:
                return row[:j + 1], "stop"
        return row, "length"

    def sync(self, model) -> None:
        """Make the backend sample from ``model``'s current weights (after an update)."""


class HFRollout(_Base):
    """transformers ``generate`` on the training model, ``prompts_per_call`` prompts (x ``n`` rows) per call.

    With one prompt per call each prompt's responses depend only on (seed, step, prompt id), whatever the
    process layout; more prompts per call are faster and seeded by the call's first prompt."""

    def __init__(self, processor, *, prompts_per_call: int = 1, synced_gpus: bool = False, **kw):
        super().__init__(processor, **kw)
        self.prompts_per_call = max(1, int(prompts_per_call))
        self.synced_gpus = synced_gpus  # ZeRO-3: every rank runs every forward (shards are gathered together)

    def generate(self, model, samples: list[Sample], *, step: int, seed: int) -> Rollout:
        device = next(model.parameters()).device
        vlm = getattr(model.config, "model_type", "") == "mmredstar_vlm"
        out = Rollout()
        was = model.training
        model.eval()
        kw = dict(max_new_tokens=self.max_new_tokens, do_sample=self.temperature > 0, eos_token_id=self.stop_ids,
                  pad_token_id=self.pad_id, use_cache=True)
        if self.temperature > 0:
            kw.update(temperature=float(self.temperature), top_p=float(self.top_p), top_k=0)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        if self.suppress_ids:
            kw["suppress_tokens"] = self.suppress_ids
        if self.synced_gpus:
            kw["synced_gpus"] = True
        try:
            for c0 in range(0, len(samples), self.prompts_per_call):
                chunk = list(range(c0, min(c0 + self.prompts_per_call, len(samples))))
                feats = [self.encode(samples[i]) for i in chunk]
                out.features.extend(feats)
                batch = self.processor.collate([f for f in feats for _ in range(self.n)], padding_side="left")
                keep = {"input_ids", "attention_mask"} | ({"pixel_values", "num_tiles"} if vlm else set())
                inputs = {k: v.to(device) for k, v in batch.items() if k in keep}
                with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                    torch.manual_seed(sample_seed(seed, samples[chunk[0]].id, step))
                    with torch.no_grad():
                        gen = model.generate(**inputs, **kw)
                for r, row in enumerate(gen[:, inputs["input_ids"].shape[1]:].tolist()):
                    j = r // self.n
                    ids, reason = self._cut(row)
                    out.sample_index.append(chunk[j])
                    out.prompt_ids.append(list(feats[j]["input_ids"]))
                    out.response_ids.append(ids)
                    out.texts.append(self.processor.decode(ids, skip_special_tokens=True))
                    out.finish_reasons.append(reason)
        finally:
            model.train(was)
        return out


class VLLMRollout(_Base):
    """vLLM's offline engine colocated with training (GPU), weights pushed from the actor after each update.

    Set up as TRL's colocate mode does (``distributed_executor_backend="external_launcher"``: one engine per
    training process, same seed within a process); ``sync`` loads the actor's parameters into the engine's
    model (gathered one by one under ZeRO-3) and resets the prefix cache."""

    def __init__(self, processor, *, model_path: str, engine: dict | None = None, **kw):
        super().__init__(processor, **kw)
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError("ppo.rollout=vllm needs vLLM on a GPU (pip install 'mmredstar[vllm]'); "
                              "use ppo.rollout=hf on CPU") from e
        rank = int(os.environ.get("RANK", 0))
        opts = {"gpu_memory_utilization": 0.3, "distributed_executor_backend": "external_launcher", "seed": rank,
                "max_num_batched_tokens": 4096, **(engine or {})}
        if int(os.environ.get("WORLD_SIZE", 1)) == 1:
            opts.pop("distributed_executor_backend")
        self.llm = LLM(model=model_path, **opts)

    def sync(self, model) -> None:
        target = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        zero3 = any(hasattr(p, "ds_id") for p in model.parameters())
        for name, param in model.named_parameters():
            if zero3:
                import deepspeed

                with deepspeed.zero.GatheredParameters([param]):
                    target.load_weights([(name, param.data)])
            else:
                target.load_weights([(name, param.data)])
        self.llm.reset_prefix_cache()

    def generate(self, model, samples: list[Sample], *, step: int, seed: int) -> Rollout:
        from vllm import SamplingParams as VSP

        from mmredstar.generate.vllm import VLLMConfig, build_vllm_input

        cfg = VLLMConfig(model="policy")
        tok = self.llm.get_tokenizer()
        feats = [self.encode(s) for s in samples]
        # text: our processor's prompt ids exactly (the ids the update scores); images: vLLM's own chat input
        inputs = [build_vllm_input(s, tok, cfg) if s.images else {"prompt_token_ids": list(f["input_ids"])}
                  for s, f in zip(samples, feats, strict=True)]
        sps = [VSP(n=self.n, temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_new_tokens,
                   seed=sample_seed(seed, s.id, step), stop_token_ids=self.stop_ids) for s in samples]
        outs = self.llm.generate(inputs, sps, use_tqdm=False)
        ro = Rollout()
        for i, (f, o) in enumerate(zip(feats, outs, strict=True)):
            ro.features.append(f)
            p = list(f["input_ids"])
            for c in o.outputs:
                ids, reason = self._cut(list(c.token_ids))
                ro.sample_index.append(i)
                ro.prompt_ids.append(p)
                ro.response_ids.append(ids)
                ro.texts.append(self.processor.decode(ids, skip_special_tokens=True))
                ro.finish_reasons.append(reason if c.finish_reason != "length" else "length")
        return ro


class ServerRollout(_Base):
    """An OpenAI-compatible server; texts re-tokenised with our processor (``<|im_end|>`` appended on ``stop``)."""

    def __init__(self, processor, *, url: str, model: str, sync_dir: str | None = None, **kw):
        super().__init__(processor, **kw)
        from mmredstar.generate import build_teacher

        self.teacher = build_teacher({"kind": "openai", "base_url": url, "model": model})
        self.sync_dir = sync_dir

    def sync(self, model) -> None:
        if self.sync_dir:
            os.makedirs(self.sync_dir, exist_ok=True)
            model.save_pretrained(self.sync_dir)

    def generate(self, model, samples: list[Sample], *, step: int, seed: int) -> Rollout:
        params = SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_new_tokens,
                                seed=seed * 1_000_003 + step)
        res = self.teacher.generate(list(samples), [self.n] * len(samples), params)
        tok = self.processor.tokenizer
        end = self.stop_ids[0]
        ro = Rollout()
        for i, (s, rs) in enumerate(zip(samples, res, strict=True)):
            ro.features.append(self.encode(s))
            p = list(ro.features[-1]["input_ids"])
            for r in rs:
                ids = tok(r.text, add_special_tokens=False)["input_ids"][:self.max_new_tokens]
                if r.finish_reason == "stop" and len(ids) < self.max_new_tokens:
                    ids = ids + [end]
                ro.sample_index.append(i)
                ro.prompt_ids.append(p)
                ro.response_ids.append(ids)
                ro.texts.append(r.text)
                ro.finish_reasons.append(r.finish_reason or "stop")
        return ro


def make_rollout(backend: str, processor, *, model_path: str | None = None, url: str | None = None,
                 server_model: str | None = None, sync_dir: str | None = None, engine: dict | None = None,
                 prompts_per_call: int = 1, synced_gpus: bool = False, **kw):
    """The rollout backend a recipe names (``hf`` | ``vllm`` | ``server``)."""
    if backend == "hf":
        return HFRollout(processor, prompts_per_call=prompts_per_call, synced_gpus=synced_gpus, **kw)
    if backend == "vllm":
        if not model_path:
            raise ValueError("ppo.rollout=vllm needs the policy's weights on disk (model.name or init_from)")
        return VLLMRollout(processor, model_path=model_path, engine=engine, **kw)
    if backend == "server":
        if not url:
            raise ValueError("ppo.rollout=server needs ppo.rollout_url (e.g. http://localhost:8000/v1)")
        return ServerRollout(processor, url=url, model=server_model or "policy", sync_dir=sync_dir, **kw)
    raise ValueError(f"ppo.rollout={backend!r}: choose one of {', '.join(BACKENDS)}")
