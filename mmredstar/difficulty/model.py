"""The scorer model: a causal LM's transformer with a sequence-classification (or regression) head.

    from mmredstar.difficulty.model import build_scorer_model, load_scorer
    model, tokenizer = build_scorer_model("tiny_text", head="classification", seed=0)
    scorer = load_scorer("runs/difficulty/tiny")                    # a trained scorer directory
    scorer.predict(["Compute 3 + 4.", "Compute 12 - 5 + 903 - 77."])  # -> [(difficulty, meta), ...]

The model is ``AutoModelForSequenceClassification`` of the backbone's architecture (e.g.
``Qwen2ForSequenceClassification``): the causal LM's transformer (its weights loaded from the checkpoint,
or copied from the randomly initialised tiny preset) and a new linear ``score`` head read at the last
non-padding token. ``classification``: 10 logits, the integer bands 1-10; the prediction is the arg-max
band (``meta.difficulty_expected`` keeps the probability-weighted mean). ``regression``: one output,
the 1-10 number (clipped). A scorer directory holds the transformers model and tokenizer plus
``scorer.json`` (head, template, max_length, the base model).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mmredstar.modeling.presets import is_preset, load_preset

from .data import render

SCORER_FILE = "scorer.json"
NUM_BANDS = 10


def _seq_config(config, head: str, pad_token_id: int | None):
    config.num_labels = NUM_BANDS if head == "classification" else 1
    config.problem_type = "single_label_classification" if head == "classification" else "regression"
    if head == "classification":
        config.id2label = {i: str(i + 1) for i in range(NUM_BANDS)}
        config.label2id = {str(i + 1): i for i in range(NUM_BANDS)}
    if pad_token_id is not None:
        config.pad_token_id = pad_token_id
    return config


def build_scorer_model(name: str, *, head: str = "classification", seed: int = 0, dtype: str | None = None):
    """``(model, tokenizer)``: a new scorer on the backbone ``name`` (a text preset, an HF causal-LM directory
    or hub id, or a saved mmredstar run). The head is new (seeded); the transformer keeps its weights."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from mmredstar.modeling.loading import _dtype, _local, _tokenizer_from, build_model
    from mmredstar.modeling.processor import PROCESSOR_FILE, Processor

    if head not in ("classification", "regression"):
        raise ValueError(f"head {head!r}: use classification or regression")
    path = None
    if not os.path.isdir(str(name)) and is_preset(name):
        preset = load_preset(name)
        if preset.family != "text":
            raise ValueError(f"model {name!r} is a {preset.family} preset; the difficulty scorer reads text: use a text "
                             "preset (e.g. qwen2_5_7b_instruct, tiny_text) or an LM checkpoint")
        if preset.init == "random":
            causal, processor = build_model(preset, seed=seed)
            tok = processor.tokenizer
            cfg = _seq_config(causal.config, head, tok.pad_token_id)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = AutoModelForSequenceClassification.from_config(cfg)
            model.base_model.load_state_dict(causal.base_model.state_dict(), strict=True)
            dt = _dtype(dtype) or _dtype(preset.dtype)
            return model.to(dt), tok
        path = _local(preset.checkpoint)
        dtype = dtype or preset.dtype
    else:
        path = str(name) if os.path.isdir(str(name)) else _local(str(name))
    raw = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    if raw.get("model_type") in ("mmredstar_vlm", "internvl", "internvl_chat"):
        raise ValueError(f"{path}: a vision-language checkpoint; the difficulty scorer needs a text LM (use its "
                         "language model or a text preset)")
    if os.path.exists(os.path.join(path, PROCESSOR_FILE)):
        tok = Processor.from_pretrained(path).tokenizer
    else:
        tok = _tokenizer_from(path, False)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    cfg = _seq_config(AutoConfig.from_pretrained(path), head, tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(path, config=cfg, dtype=_dtype(dtype) or "auto")
    return model, tok


@dataclass
class Scorer:
    """A trained scorer: ``predict(texts)`` / ``score_samples(samples)``."""

    model: object
    tokenizer: object
    info: dict
    path: str | None = None

    @property
    def head(self) -> str:
        return self.info.get("head", "classification")

    def predict(self, texts: list[str], *, batch_size: int = 32) -> list[tuple[float, dict]]:
        """(difficulty on 1-10, meta) per text; batches sorted by length (output in input order)."""
        import torch

        out: list[tuple[float, dict] | None] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        self.model.eval()
        dev = next(self.model.parameters()).device
        max_len = int(self.info.get("max_length", 512))
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                enc = self.tokenizer([texts[i] for i in idx], truncation=True, max_length=max_len, padding=True,
                                     return_tensors="pt")
                logits = self.model(input_ids=enc["input_ids"].to(dev),
                                    attention_mask=enc["attention_mask"].to(dev)).logits.float()
                if self.head == "regression":
                    for i, v in zip(idx, logits[:, 0].tolist(), strict=True):
                        out[i] = (round(min(10.0, max(1.0, v)), 4), {"difficulty_raw": round(v, 4)})
                else:
                    p = logits.softmax(-1)
                    levels = torch.arange(1, NUM_BANDS + 1, dtype=p.dtype, device=p.device)
                    exp = (p * levels).sum(-1)
                    for i, a, e, pm in zip(idx, p.argmax(-1).tolist(), exp.tolist(), p.max(-1).values.tolist(),
                                           strict=True):
                        out[i] = (float(a + 1), {"difficulty_expected": round(e, 4), "difficulty_confidence": round(pm, 4)})
        return out  # type: ignore[return-value]

    def score_samples(self, samples, *, batch_size: int = 32) -> list[tuple[float, dict]]:
        """``predict`` on the samples' rendered questions (the template the scorer was trained with)."""
        template = self.info.get("template", "{question}")
        return self.predict([render(s, template) for s in samples], batch_size=batch_size)

    def stamp(self) -> dict:
        """What identifies this scorer in caches and sidecars: the hashes of its weights and training config."""
        return {"weights": self.info.get("weights_sha256"), "config": self.info.get("config_sha256"),
                "head": self.head}


def load_scorer(path: str | os.PathLike, *, device: str | None = None, dtype: str | None = None) -> Scorer:
    """A scorer directory written by ``mmredstar difficulty train`` (``scorer.json`` + model + tokenizer)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mmredstar.modeling.loading import _dtype

    p = Path(path)
    info_path = p / SCORER_FILE
    if not info_path.exists():
        raise ValueError(f"{p}: not a difficulty scorer (no {SCORER_FILE}); train one with "
                         "`mmredstar difficulty train CONFIG.yaml` and pass its output directory")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    tok = AutoTokenizer.from_pretrained(str(p))
    model = AutoModelForSequenceClassification.from_pretrained(str(p), dtype=_dtype(dtype) or "auto")
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    return Scorer(model, tok, info, str(p))
