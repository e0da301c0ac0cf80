"""Batched generation from text models and VLMs with the training prompt format.

Prompts are encoded by ``processor.encode(sample)`` (the same chat template and image expansion as
training), sorted by length, left-padded into batches and decoded with transformers' ``generate``
(KV cache). Each output is a ``Response`` with finish reason, token counts and the generation
parameters.

    from mmredstar.modeling import load_model, generate
    model, processor = load_model("tiny_vlm")
    responses = generate(model, processor, samples, n=4, temperature=1.0, max_new_tokens=128, seed=0)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from mmredstar.schema import Response, Sample

CHUNK_BATCHES = 8
"""Prompts are encoded ``CHUNK_BATCHES`` batches at a time (and sorted by length within a chunk), so
memory stays bounded however many samples are given."""


def _model_inputs(model, batch: dict) -> dict:
    keep = {"input_ids", "attention_mask"}
    if getattr(model.config, "model_type", "") == "mmredstar_vlm":
        keep |= {"pixel_values", "num_tiles"}
    return {k: v for k, v in batch.items() if k in keep}


def encode_prompt(processor, sample: Sample, *, blank_images: bool = False) -> dict:
    """``processor.encode(sample)`` for generation; a final ``assistant`` message is an assistant prefix:
    the prompt without it (with the generation prompt) followed by the prefix text, so the model continues it."""
    if not (sample.prompt and sample.prompt[-1].role == "assistant"):
        return processor.encode(sample, blank_images=blank_images)
    head = copy.copy(sample)
    head.prompt = sample.prompt[:-1]
    f = processor.encode(head, blank_images=blank_images)
    extra = processor.tokenizer.encode(sample.prompt[-1].text, add_special_tokens=False)
    f["input_ids"] = f["input_ids"] + extra
    f["labels"] = f["labels"] + [-100] * len(extra)
    f["attention_mask"] = f["attention_mask"] + [1] * len(extra)
    return f


def generate(model, processor, samples: Sequence[Sample], *, n: int = 1, temperature: float = 0.0,
             top_p: float = 1.0, max_new_tokens: int = 256, seed: int = 0, batch_size: int = 16,
             blank_images: bool = False, progress: bool = True, name: str | None = None,
             stop: Sequence[str] | None = None) -> list[list[Response]]:
    """``n`` responses per sample (greedy when ``temperature == 0``), in the order of ``samples``.

    Deterministic for a given seed, batch size and sample list. ``finish_reason`` is ``stop`` when the model closed
    its turn (``<|im_end|>``/EOS) or wrote one of the ``stop`` strings (cut before it, as OpenAI servers do)
    and ``length`` when it hit ``max_new_tokens``. A sample whose last prompt message is ``assistant`` is a
    prefix: the response continues it (step-wise generation in tree search). ``gen`` records
    teacher (model name), n, temperature, top_p, max_tokens, seed (and ``blank_images`` when set).
    """
    from tqdm.auto import tqdm

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    samples = list(samples)
    device = next(model.parameters()).device
    tok = processor.tokenizer
    stop_ids = sorted({i for i in (processor.eos_token_id, tok.eos_token_id) if i is not None})
    pad_id = processor.pad_token_id if processor.pad_token_id is not None else stop_ids[0]
    do_sample = temperature > 0
    gen_params = {"teacher": name or processor.name or getattr(model.config, "_name_or_path", ""), "n": n,
                  "temperature": float(temperature), "top_p": float(top_p), "max_tokens": int(max_new_tokens),
                  "seed": int(seed)}
    if blank_images:
        gen_params["blank_images"] = True
    results: list[list[Response]] = [[] for _ in samples]
    rows_per_batch = max(1, batch_size // n)
    chunk = rows_per_batch * CHUNK_BATCHES   # encode (and hold pixels for) this many prompts at a time
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(samples), desc="generate", disable=not progress, unit="prompt")
    b = 0
    try:
        for c0 in range(0, len(samples), chunk):
            feats = {i: encode_prompt(processor, samples[i], blank_images=blank_images)
                     for i in range(c0, min(c0 + chunk, len(samples)))}
            order = sorted(feats, key=lambda i: -len(feats[i]["input_ids"]))
            for start in range(0, len(order), rows_per_batch):
                idx = order[start:start + rows_per_batch]
                rows = [feats[i] for i in idx for _ in range(n)]
                batch = processor.collate(rows, padding_side="left")
                inputs = {k: v.to(device) for k, v in _model_inputs(model, batch).items()}
                prompt_len = inputs["input_ids"].shape[1]
                kw = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, eos_token_id=stop_ids,
                          pad_token_id=pad_id, use_cache=True)
                if stop:
                    kw.update(stop_strings=list(stop), tokenizer=tok)
                if do_sample:
                    kw.update(temperature=float(temperature), top_p=float(top_p), top_k=0)
                else:
                    kw.update(temperature=None, top_p=None, top_k=None)
                with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                    torch.manual_seed(int(seed) * 1_000_003 + b)
                    with torch.inference_mode():
                        out = model.generate(**inputs, **kw)
                b += 1
                for r, row in enumerate(out[:, prompt_len:].tolist()):
                    i = idx[r // n]
                    cut, reason = len(row), "length"
                    for j, t in enumerate(row):
                        if t in stop_ids:
                            cut, reason = j + 1, "stop"
                            break
                    ids = row[:cut]
                    text = processor.decode(ids, skip_special_tokens=True)
                    hits = [text.find(x) for x in stop or () if x in text]
                    if hits:
                        text, reason = text[:min(hits)], "stop"
                    results[i].append(Response(text=text,
                                               finish_reason=reason, prompt_tokens=len(feats[i]["input_ids"]),
                                               completion_tokens=len(ids), gen=dict(gen_params)))
                bar.update(len(idx))
    finally:
        bar.close()
        model.train(was_training)
    return results
