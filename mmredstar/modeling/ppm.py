"""The process preference model (rStar-Math): a scalar head on a policy-sized causal-LM backbone.

The PPM reads the problem, the steps so far and one candidate step, formatted exactly as the policy saw
them when writing the step (chat template, then the previous steps as the assistant's text, then the step),
and gives one number from a linear head on the backbone's last hidden states: the step's last token's (``pool:
"last"``, the paper's reading) or the mean over the step's own tokens (``pool: "step_mean"``, ``ppm.pool`` in a
recipe: on the tiny arithmetic the last token's state barely tells a right step from a wrong one, the step
tokens' mean does; README, rStar-Math). With ``step_logprob``
(``ppm.step_logprob`` in a ``method: ppm`` recipe) the score adds ``w * log p(step | problem, steps so far)``
under the backbone's own LM head (the sum over the step's tokens; ``w`` learned, starting at 1): a backbone
fine-tuned on step trajectories already ranks steps by their likelihood, and the head learns on top of it
(the full ``[batch, tokens, vocab]`` logits are computed: mind the memory with a large vocabulary). Training compares two
steps sharing a prefix (Bradley-Terry, ``mmredstar.training.ppm``); at search time ``tanh(score)`` in [-1, 1]
initialises a node's value or ranks candidate steps (``mmredstar.evaluation.search``).

A saved PPM directory holds the backbone (``save_pretrained``: config, weights, tokenizer: loadable by
``load_model``), ``value_head.pt`` and ``ppm.json``.

    from mmredstar.modeling.ppm import PPMScorer
    scorer = PPMScorer("runs/rstar/round1/ppm")
    scorer.score([(sample, ["x = 3 + 5", "x = x - 2"])])       # -> [0.93]
"""

from __future__ import annotations

import json
import os

import torch

from mmredstar.schema import Sample

PPM_FILE = "ppm.json"
HEAD_FILE = "value_head.pt"
POOLS = ("last", "step_mean")   # which hidden states the value head reads
STEP_END = "<end_of_step>"  # the step marker (``mmredstar.synth.steps.STEP_END``; repeated to stay on this floor)


class ProcessPreferenceModel(torch.nn.Module):
    """``score(input_ids, attention_mask, step_start) -> [batch]``: a linear head on the last real token's hidden
    state (``pool="last"``) or on the mean of the step tokens' states (``pool="step_mean"``)."""

    def __init__(self, lm, step_logprob: bool = False, pool: str = "last"):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"ppm pool {pool!r}: expected one of {', '.join(POOLS)}")
        self.pool = pool
        self.lm = lm
        hidden = lm.config.hidden_size if hasattr(lm.config, "hidden_size") else lm.config.text_config.hidden_size
        self.head = torch.nn.Linear(hidden, 1)
        torch.nn.init.zeros_(self.head.bias)
        torch.nn.init.normal_(self.head.weight, std=hidden ** -0.5)
        self.step_logprob = step_logprob
        self.logprob_weight = torch.nn.Parameter(torch.ones(())) if step_logprob else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                step_start: torch.Tensor | None = None) -> torch.Tensor:
        """Scores ``[batch]``; ``step_start`` (``[batch]``: the index of each row's first step token) is needed
        with ``step_logprob``."""
        decoder = self.lm.get_decoder() if hasattr(self.lm, "get_decoder") else None
        logits = None
        if self.pool == "step_mean" and step_start is None:
            raise ValueError("a PPM with pool 'step_mean' needs step_start (see encode_scored)")
        if self.step_logprob:
            if step_start is None:
                raise ValueError("a PPM with step_logprob needs step_start (see encode_scored)")
            o = self.lm(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            h, logits = o.hidden_states[-1], o.logits
        elif decoder is not None:
            h = decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        else:
            h = self.lm(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[-1]
        last = attention_mask.long().sum(1) - 1          # right padding: the last real token
        if self.pool == "step_mean":                     # the mean over the step's own tokens
            pos = torch.arange(h.shape[1], device=h.device)[None, :]
            w = ((pos >= step_start.to(h.device)[:, None]) & attention_mask.bool()).to(h.dtype)
            w[torch.arange(h.shape[0], device=h.device), last] = 1.0     # an empty step: its last token
            x = (h * w[..., None]).sum(1) / w.sum(1, keepdim=True)
        else:
            x = h[torch.arange(h.shape[0], device=h.device), last]
        score = self.head(x.to(self.head.weight.dtype)).squeeze(-1)
        if logits is not None:
            lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
            pos = torch.arange(1, input_ids.shape[1], device=input_ids.device)[None, :]   # each target's index
            keep = (pos >= step_start.to(pos.device)[:, None]) & attention_mask[:, 1:].bool()
            score = score + self.logprob_weight * (lp * keep).sum(1).to(score.dtype)
        return score

    def save(self, out: str, processor, meta: dict | None = None) -> None:
        from mmredstar.io import write_json

        os.makedirs(out, exist_ok=True)
        self.lm.save_pretrained(out)
        if hasattr(processor, "save_pretrained"):
            processor.save_pretrained(out)
        tmp = os.path.join(out, HEAD_FILE + ".tmp")
        state = dict(self.head.state_dict())
        if self.logprob_weight is not None:
            state["logprob_weight"] = self.logprob_weight.detach().cpu()
        torch.save(state, tmp)
        os.replace(tmp, os.path.join(out, HEAD_FILE))
        write_json(os.path.join(out, PPM_FILE), {"format": "mmredstar-ppm-1", **(meta or {}),
                                                 "step_logprob": self.step_logprob, "pool": self.pool})


def load_ppm(path: str, *, device: str | None = None, dtype=None):
    """(PPM, processor) from a saved PPM directory."""
    from mmredstar.modeling import load_model

    if not os.path.exists(os.path.join(path, PPM_FILE)):
        raise FileNotFoundError(f"{path}: not a PPM directory (no {PPM_FILE}); train one with method 'ppm'")
    lm, processor = load_model(path, device=device, dtype=dtype)
    state = torch.load(os.path.join(path, HEAD_FILE), map_location="cpu")
    w = state.pop("logprob_weight", None)
    m = ProcessPreferenceModel(lm, step_logprob=w is not None, pool=read_ppm_meta(path).get("pool", "last"))
    m.head.load_state_dict(state)
    if w is not None:
        m.logprob_weight.data.copy_(w)
    m.to(next(lm.parameters()).device)
    return m.eval(), processor


def encode_step(processor, sample: Sample, steps: list[str], *, max_length: int | None = None) -> list[int]:
    """Token ids of (problem, previous steps, last step) as the policy saw them; the left is cut past ``max_length``.

    ``sample`` may already end with an assistant-prefix message (a PPM pair's prompt): ``steps`` then holds
    only the step(s) after it."""
    from mmredstar.modeling.generation import encode_prompt

    prefix = sample.prompt[-1].text if sample.prompt and sample.prompt[-1].role == "assistant" else ""
    head = sample
    if prefix:
        import copy

        head = copy.copy(sample)
        head.prompt = sample.prompt[:-1]
    ids = encode_prompt(processor, head)["input_ids"]
    text = prefix + "".join(s + STEP_END + "\n" for s in steps[:-1]) + steps[-1]
    ids = ids + processor.tokenizer.encode(text, add_special_tokens=False)
    if max_length and len(ids) > max_length:
        ids = ids[-max_length:]
    return ids


def encode_scored(processor, sample: Sample, steps: list[str], *, max_length: int | None = None) -> tuple[list[int], int]:
    """(:func:`encode_step`'s ids, the index of the last step's first token): the tokens from that index on are
    the step's (those after the encoded problem and previous steps; a left cut moves the index with it)."""
    ids = encode_step(processor, sample, steps, max_length=None)
    start = len(encode_step(processor, sample, list(steps[:-1]) + [""], max_length=None))
    if max_length and len(ids) > max_length:
        cut = len(ids) - max_length
        ids, start = ids[cut:], max(0, start - cut)
    return ids, min(start, len(ids))


def batch_rows(rows: list[tuple[list[int], int]], pad_id: int, device):
    """``batch_ids`` of :func:`encode_scored` rows, with their step starts as a tensor."""
    ids, mask = batch_ids([r for r, _ in rows], pad_id, device)
    return ids, mask, torch.tensor([s for _, s in rows], dtype=torch.long, device=device)


def batch_ids(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask``."""
    n = max(len(r) for r in rows)
    ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


class PPMScorer:
    """Scores (sample, steps) items with a saved PPM: ``tanh(score)`` per item, in batches, no gradients."""

    def __init__(self, path_or_model, processor=None, *, batch_size: int = 32, max_length: int = 2048,
                 device: str | None = None):
        if isinstance(path_or_model, (str, os.PathLike)):
            self.model, self.processor = load_ppm(os.fspath(path_or_model), device=device)
        else:
            self.model, self.processor = path_or_model, processor
        self.batch_size, self.max_length = batch_size, max_length

    @torch.no_grad()
    def raw(self, items: list[tuple[Sample, list[str]]]) -> list[float]:
        if not items:
            return []
        dev = next(self.model.parameters()).device
        pad = self.processor.pad_token_id if self.processor.pad_token_id is not None else 0
        rows = [encode_scored(self.processor, s, st, max_length=self.max_length) for s, st in items]
        out: list[float] = []
        was = self.model.training
        self.model.eval()
        for i in range(0, len(rows), self.batch_size):
            ids, mask, start = batch_rows(rows[i:i + self.batch_size], pad, dev)
            out += self.model(ids, mask, start).float().tolist()
        self.model.train(was)
        return out

    def score(self, items: list[tuple[Sample, list[str]]]) -> list[float]:
        import math

        return [math.tanh(x) for x in self.raw(items)]


def read_ppm_meta(path: str) -> dict:
    with open(os.path.join(path, PPM_FILE), encoding="utf-8") as f:
        return json.load(f)
