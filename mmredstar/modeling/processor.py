"""The processor: turns a ``Sample`` (+ an optional response) into model inputs, the same way for
training, generation and evaluation.

One class for text models and VLMs. The prompt is rendered with the tokenizer's chat template
(ChatML with ``{% generation %}`` markers); every image part becomes ``<img>`` + ``<IMG_CONTEXT>`` x
(tiles x tokens per tile) + ``</img>`` followed by a newline, where the tiles come from InternVL's
dynamic tiling. The response (when given) follows the generation prompt and ends with ``<|im_end|>``;
only its tokens carry labels.

    model, processor = mmredstar.modeling.load_model("tiny_vlm")
    feat = processor.encode(sample, "The answer is B.")       # input_ids, labels, pixel_values, ...
    batch = processor.collate([feat, ...])                      # tensors, right-padded
    text = processor.format_prompt(sample)                      # the exact prompt text
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from mmredstar.io import write_json
from mmredstar.modeling.tiling import tile_image
from mmredstar.modeling.tokenizer import (
    IM_END,
    IMG_CONTEXT,
    IMG_END,
    IMG_START,
    THINK_END,
    finish_tokenizer,
)
from mmredstar.schema import DataError, Problem, Sample

IGNORE_INDEX = -100
PROCESSOR_FILE = "mmredstar_processor.json"
_SENTINEL = "\x00\x01IMAGE\x01\x00"


class Processor:
    """Formats samples for one model. ``tokenizer`` is a ``PreTrainedTokenizerFast`` with the chat
    template; image settings are used only when ``family == "vlm"``."""

    def __init__(self, tokenizer, *, family: str = "text", name: str = "", tile_size: int = 448,
                 min_tiles: int = 1, max_tiles: int = 12, use_thumbnail: bool = True, tokens_per_tile: int = 256,
                 image_mean=(0.485, 0.456, 0.406), image_std=(0.229, 0.224, 0.225), system_prompt: str | None = None,
                 think_tags=("<think>", "</think>"), think_tokens: bool = True, blank_color=(255, 255, 255)):
        self.tokenizer = finish_tokenizer(tokenizer, image_tokens=(family == "vlm"), think_tokens=think_tokens)
        self.family = family
        self.name = name
        self.tile_size = int(tile_size)
        self.min_tiles = int(min_tiles)
        self.max_tiles = int(max_tiles)
        self.use_thumbnail = bool(use_thumbnail)
        self.tokens_per_tile = int(tokens_per_tile)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.system_prompt = system_prompt
        self.think_tags = list(think_tags)
        self.think_tokens = bool(think_tokens)
        self.blank_color = tuple(blank_color)
        tok = self.tokenizer
        self.pad_token_id = tok.pad_token_id
        self.eos_token_id = tok.convert_tokens_to_ids(IM_END)
        if family == "vlm":
            self.image_token_id = tok.convert_tokens_to_ids(IMG_CONTEXT)
            self.img_start_id = tok.convert_tokens_to_ids(IMG_START)
            self.img_end_id = tok.convert_tokens_to_ids(IMG_END)
        else:
            self.image_token_id = self.img_start_id = self.img_end_id = None
        nl = tok.encode("\n", add_special_tokens=False)
        self._newline_ids = nl

    # ------------------------------------------------------------------------------------------ config
    def settings(self) -> dict:
        return {"family": self.family, "name": self.name, "tile_size": self.tile_size, "min_tiles": self.min_tiles,
                "max_tiles": self.max_tiles, "use_thumbnail": self.use_thumbnail,
                "tokens_per_tile": self.tokens_per_tile, "image_mean": self.image_mean, "image_std": self.image_std,
                "system_prompt": self.system_prompt, "think_tags": self.think_tags,
                "think_tokens": self.think_tokens,
                "blank_color": list(self.blank_color)}

    def save_pretrained(self, out_dir: str | os.PathLike) -> None:
        """Write the tokenizer files and ``mmredstar_processor.json`` (reload with ``load_model(dir)``)."""
        os.makedirs(out_dir, exist_ok=True)
        self.tokenizer.save_pretrained(out_dir)

        write_json(os.path.join(out_dir, PROCESSOR_FILE), self.settings())

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides) -> Processor:
        """The processor a ``save_pretrained`` wrote (``overrides`` change settings, e.g. ``max_tiles``)."""
        from transformers import AutoTokenizer

        with open(os.path.join(path, PROCESSOR_FILE), encoding="utf-8") as f:
            settings = json.load(f)
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return cls(AutoTokenizer.from_pretrained(str(path)), **settings)

    def __repr__(self) -> str:
        extra = f", tile_size={self.tile_size}, tiles={self.min_tiles}-{self.max_tiles}" if self.family == "vlm" else ""
        return f"Processor(name={self.name!r}, family={self.family!r}, vocab={len(self.tokenizer)}{extra})"

    # ------------------------------------------------------------------------------------------ text
    def messages(self, sample: Sample) -> list[dict]:
        """The sample's prompt as HF chat messages (content parts ``{"type": "text"|"image"}``)."""
        out = []
        for m in sample.prompt:
            parts = []
            for p in m.content:
                if p.type == "image":
                    parts.append({"type": "image", "index": p.index})
                else:
                    parts.append({"type": "text", "text": p.text or ""})
            out.append({"role": m.role, "content": parts})
        return out

    def _render(self, sample: Sample, add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            self.messages(sample), tokenize=False, add_generation_prompt=add_generation_prompt,
            image_placeholder=_SENTINEL, default_system=self.system_prompt)

    def _image_order(self, sample: Sample) -> list[int]:
        order = [p.index for m in sample.prompt for p in m.content if p.type == "image"]
        for i in order:
            if i is None or not (0 <= i < len(sample.images)):
                raise DataError(Problem(None, None, "prompt", f"sample {sample.id}: image part refers to index "
                                        f"{i} but the sample has {len(sample.images)} image(s)",
                                        "fix the image indices in the prompt"))
        if order and self.family != "vlm":
            raise DataError(Problem(None, None, "images", f"sample {sample.id} has {len(order)} image part(s) but "
                                    f"model {self.name!r} is text-only", "use a VLM preset (e.g. tiny_vlm) or "
                                    "drop image samples"))
        return order

    def format_prompt(self, sample: Sample, response: str | None = None, *, add_generation_prompt: bool = True) -> str:
        """The exact chat-templated text (image placeholders expanded) used for training and generation;
        with ``response``, the full training text."""
        order = self._image_order(sample)
        chunks = self._render(sample, add_generation_prompt or response is not None).split(_SENTINEL)
        out = [chunks[0]]
        for k, idx in enumerate(order):
            n = self.num_tiles_for(sample.images[idx].load())
            out.append(IMG_START + IMG_CONTEXT * (n * self.tokens_per_tile) + IMG_END)
            out.append(chunks[k + 1])
        text = "".join(out)
        if response is not None:
            text += response + IM_END + "\n"
        return text

    # ------------------------------------------------------------------------------------------ images
    def num_tiles_for(self, image) -> int:
        from mmredstar.modeling.tiling import choose_grid

        c, r = choose_grid(image.width, image.height, tile_size=self.tile_size, min_tiles=self.min_tiles,
                           max_tiles=self.max_tiles)
        return c * r + (1 if self.use_thumbnail and c * r > 1 else 0)

    def image_tiles(self, image, *, blank: bool = False) -> torch.Tensor:
        """A ``PIL.Image`` -> normalised tiles [n, 3, tile, tile]. ``blank`` swaps in a blank image of the
        same size (the ablation that shows how much the model reads from images)."""
        if blank:
            from PIL import Image

            image = Image.new("RGB", image.size, self.blank_color)
        return tile_image(image, tile_size=self.tile_size, min_tiles=self.min_tiles, max_tiles=self.max_tiles,
                          use_thumbnail=self.use_thumbnail, mean=self.image_mean, std=self.image_std)

    # ------------------------------------------------------------------------------------------ encode
    def _ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False) if text else []

    def encode(self, sample: Sample, response: str | None = None, *, add_generation_prompt: bool | None = None,
               loss_on_think: bool = True, max_length: int | None = None, blank_images: bool = False) -> dict:
        """Model inputs for one sample.

        Returns ``input_ids``, ``labels`` (-100 except the response and its closing ``<|im_end|>``; with
        ``loss_on_think=False`` the ``<think>...</think>`` block is masked too), ``attention_mask``,
        ``image_spans`` (per image, ``[start, end)`` of its ``<img>...</img>`` run), ``num_tiles`` (per
        image) and, with images, ``pixel_values`` [tiles, 3, H, W]. ``max_length`` cuts the end, never
        inside an image span (the cut moves before it and the image is dropped; ``truncated`` is set).
        ``add_generation_prompt`` defaults to ``response is None``.
        """
        if add_generation_prompt is None:
            add_generation_prompt = response is None
        order = self._image_order(sample)
        chunks = self._render(sample, add_generation_prompt or response is not None).split(_SENTINEL)
        if len(chunks) != len(order) + 1:
            raise DataError(Problem(None, None, "prompt", f"sample {sample.id}: its text contains the reserved "
                                    "image sentinel", "remove NUL characters from the prompt text"))
        ids: list[int] = self._ids(chunks[0])
        spans, tiles, pixel = [], [], []
        for k, idx in enumerate(order):
            try:
                image = sample.images[idx].load()
            except Exception as e:  # noqa: BLE001 - name the image and the sample
                ref = sample.images[idx]
                raise DataError(Problem(None, None, f"images[{idx}]", f"sample {sample.id}: cannot read image "
                                        f"{ref.resolved_path() or '<bytes>'}: {e}",
                                        "check the path (relative to the data file) or the embedded bytes")) from None
            pv = self.image_tiles(image, blank=blank_images)
            start = len(ids)
            ids += [self.img_start_id] + [self.image_token_id] * (pv.shape[0] * self.tokens_per_tile) + \
                [self.img_end_id]
            spans.append([start, len(ids)])
            tiles.append(int(pv.shape[0]))
            pixel.append(pv)
            ids += self._ids(chunks[k + 1])
        labels = [IGNORE_INDEX] * len(ids)
        if response is not None:
            end_think = self.think_tags[1] if self.think_tags else THINK_END
            cut = response.find(end_think)
            if not loss_on_think and cut >= 0:
                head = self._ids(response[: cut + len(end_think)])
                tail = self._ids(response[cut + len(end_think):] + IM_END)
                ids += head + tail
                labels += [IGNORE_INDEX] * len(head) + tail
            else:
                resp = self._ids(response + IM_END)
                ids += resp
                labels += resp
            ids += self._newline_ids
            labels += [IGNORE_INDEX] * len(self._newline_ids)
        out: dict[str, Any] = {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids),
                               "image_spans": spans, "num_tiles": tiles}
        if pixel:
            out["pixel_values"] = torch.cat(pixel, 0)
        if max_length is not None and len(ids) > max_length:
            out = truncate(out, max_length)
        return out

    # ------------------------------------------------------------------------------------------ collate
    def collate(self, features: list[dict], pad_to_multiple_of: int | None = None,
                padding_side: str = "right") -> dict[str, torch.Tensor]:
        """Pad a list of ``encode`` outputs into tensors: ``input_ids``, ``attention_mask``, ``labels``
        and, when any row has images, ``pixel_values`` (all tiles, row by row) and ``num_tiles`` (per
        image). ``padding_side="left"`` for generation; ``position_ids`` rows are padded when present."""
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        length = max(len(f["input_ids"]) for f in features)
        if pad_to_multiple_of:
            length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
        pad = self.pad_token_id
        batch: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
        has_pos = any(f.get("position_ids") is not None for f in features)
        if has_pos:
            batch["position_ids"] = []
        for f in features:
            n = len(f["input_ids"])
            gap = length - n
            labels = f.get("labels") or [IGNORE_INDEX] * n
            mask = f.get("attention_mask") or [1] * n
            rows = {"input_ids": (list(f["input_ids"]), pad), "attention_mask": (list(mask), 0),
                    "labels": (list(labels), IGNORE_INDEX)}
            if has_pos:
                rows["position_ids"] = (list(f.get("position_ids") or range(n)), 0)
            for key, (vals, fill) in rows.items():
                batch[key].append(vals + [fill] * gap if padding_side == "right" else [fill] * gap + vals)
        out = {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}
        pvs = [f["pixel_values"] for f in features if f.get("pixel_values") is not None and len(f["pixel_values"])]
        if pvs:
            out["pixel_values"] = torch.cat(pvs, 0)
            out["num_tiles"] = torch.tensor([t for f in features for t in (f.get("num_tiles") or [])],
                                            dtype=torch.long)
        return out

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)


def truncate(feature: dict, max_length: int) -> dict:
    """Cut a feature to ``max_length`` tokens, never inside an image span (the cut moves to the span's
    start and that image's tiles go too).

    >>> f = {"input_ids": list(range(10)), "labels": list(range(10)), "attention_mask": [1] * 10,
    ...      "image_spans": [[2, 6]], "num_tiles": [1], "pixel_values": torch.zeros(1, 3, 4, 4)}
    >>> g = truncate(f, 4)
    >>> len(g["input_ids"]), g["image_spans"], g["num_tiles"], "pixel_values" in g
    (2, [], [], False)
    """
    cut = max_length
    for s, e in feature.get("image_spans") or []:
        if s < cut < e:
            cut = s
    out = dict(feature)
    for k in ("input_ids", "labels", "attention_mask", "position_ids"):
        if out.get(k) is not None:
            out[k] = list(out[k])[:cut]
    kept = [i for i, (s, e) in enumerate(feature.get("image_spans") or []) if e <= cut]
    tiles = list(feature.get("num_tiles") or [])
    out["image_spans"] = [list(feature["image_spans"][i]) for i in kept]
    out["num_tiles"] = [tiles[i] for i in kept]
    if feature.get("pixel_values") is not None:
        n = sum(out["num_tiles"])
        if n:
            out["pixel_values"] = feature["pixel_values"][:n]
        else:
            out.pop("pixel_values")
    out["truncated"] = True
    return out
