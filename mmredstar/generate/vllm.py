"""The vLLM teacher: the offline ``vllm.LLM`` engine (GPU; ``pip install '.[vllm]'``; imported only when used).

    teacher: {kind: vllm, model: Qwen/QwQ-32B, tensor_parallel_size: 4, max_model_len: 20480}
    teacher: {kind: vllm, model: Qwen/QVQ-72B-Preview, tensor_parallel_size: 8, max_images: 1}
    teacher: {kind: vllm, model: OpenGVLab/InternVL2-8B, image_placeholder: "<image>"}

Prompts are the same chat messages the OpenAI teacher sends (``messages.chat_messages``), rendered
with the model's chat template; images go to the engine as ``multi_modal_data`` (PIL images in prompt
order). For templates that render ``{"type": "image"}`` parts (Qwen2-VL / QVQ) leave
``image_placeholder`` unset; for models whose prompts carry a literal token (InternVL's ``<image>``)
set it, and each image part becomes that text. Each prompt gets ``n`` samples and its own seed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..schema import Response, Sample
from . import SamplingParams, Teacher, gen_record, sample_seed
from .messages import chat_messages


@dataclass
class VLLMConfig:
    model: str = ""
    """Hub id or local path of the model."""
    tokenizer: str | None = None
    """Tokenizer (default: the model's)."""
    tensor_parallel_size: int = 1
    """GPUs the model is split over."""
    dtype: str = "auto"
    """Weights dtype."""
    max_model_len: int | None = None
    """Context length (prompt + response); must hold ``sampling.max_tokens`` plus the prompt."""
    gpu_memory_utilization: float = 0.9
    """Fraction of GPU memory vLLM may take."""
    max_images: int = 4
    """Images per prompt the engine accepts (``limit_mm_per_prompt``)."""
    image_placeholder: str | None = None
    """Text that stands for an image in the prompt (e.g. ``<image>``); ``None``: ``{"type": "image"}`` parts."""
    system: str | None = None
    """A system prompt added to samples that have none."""
    chat_template_kwargs: dict = field(default_factory=dict)
    """Extra chat-template variables (e.g. ``{enable_thinking: true}``)."""
    engine: dict = field(default_factory=dict)
    """Other ``vllm.LLM`` keywords (e.g. ``{enforce_eager: true, seed: 0}``)."""
    trust_remote_code: bool = True
    """Allow model code from the checkpoint (InternVL needs it)."""


def vllm_messages(sample: Sample, cfg: VLLMConfig) -> tuple[list[dict], list]:
    """(chat messages for the template, images in prompt order) of one sample."""
    images: list = []

    def part(im):
        images.append(im)
        if cfg.image_placeholder is not None:
            return {"type": "text", "text": cfg.image_placeholder}
        return {"type": "image"}

    msgs = chat_messages(sample, system=cfg.system, image_part=part)
    if cfg.image_placeholder is not None:  # text templates: flatten parts into one string
        for m in msgs:
            if isinstance(m["content"], list):
                m["content"] = "\n".join(p["text"] for p in m["content"])
    return msgs, images


def build_vllm_input(sample: Sample, tokenizer, cfg: VLLMConfig) -> dict:
    """``{"prompt": text, "multi_modal_data": {"image": [PIL, ...]}}`` for ``LLM.generate``."""
    msgs, images = vllm_messages(sample, cfg)
    prefix = msgs[-1]["role"] == "assistant"  # an assistant prefix the response continues
    prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=not prefix,
                                           continue_final_message=prefix, **cfg.chat_template_kwargs)
    d: dict = {"prompt": prompt}
    if images:
        loaded = [im.load() for im in images]
        d["multi_modal_data"] = {"image": loaded if len(loaded) > 1 else loaded[0]}
    return d


class VLLMTeacher(Teacher):
    kind = "vllm"
    Config = VLLMConfig
    VOLATILE = ("tensor_parallel_size", "gpu_memory_utilization")

    def __init__(self, config):
        super().__init__(config)
        self._llm = None
        self._lock = threading.Lock()

    def _engine(self):
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError as e:
                raise ImportError("the vllm teacher needs vLLM: pip install 'mmredstar[vllm]' (GPU), or use the "
                                  "openai teacher against a running `vllm serve`") from e
            c = self.config
            kw = dict(model=c.model, tokenizer=c.tokenizer, tensor_parallel_size=c.tensor_parallel_size, dtype=c.dtype,
                      gpu_memory_utilization=c.gpu_memory_utilization, trust_remote_code=c.trust_remote_code,
                      limit_mm_per_prompt={"image": c.max_images})
            if c.max_model_len:
                kw["max_model_len"] = c.max_model_len
            kw.update(c.engine)
            self._llm = LLM(**kw)
        return self._llm

    def generate(self, samples: list[Sample], n: list[int], params: SamplingParams) -> list[list[Response]]:
        from vllm import SamplingParams as VSP

        with self._lock:
            llm = self._engine()
            tok = llm.get_tokenizer()
            idx = [i for i, k in enumerate(n) if k > 0]
            inputs = [build_vllm_input(samples[i], tok, self.config) for i in idx]
            sps = [VSP(n=n[i], temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens,
                       seed=sample_seed(params.seed, samples[i].id), stop=params.stop, **params.extra) for i in idx]
            outs = llm.generate(inputs, sps, use_tqdm=False) if inputs else []
        res: list[list[Response]] = [[] for _ in samples]
        for i, o in zip(idx, outs, strict=True):
            seed = sample_seed(params.seed, samples[i].id)
            for j, c in enumerate(o.outputs):
                fr = c.finish_reason if c.finish_reason in ("stop", "length") else ("error" if c.finish_reason else None)
                res[i].append(Response(text=c.text, finish_reason=fr,
                                       prompt_tokens=len(o.prompt_token_ids or []) or None,
                                       completion_tokens=len(c.token_ids or []),
                                       gen=gen_record(self.kind, self.config.model, n[i], j, params, seed)))
            self.count("responses", len(o.outputs))
        self.count("requests", len(idx))
        return res
