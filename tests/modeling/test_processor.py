"""The processor: prompt formatting, labels, think masking, images, collate, truncation, errors.

    .venv/bin/python -m pytest -q tests/modeling/test_processor.py
"""

from __future__ import annotations

import pytest
import torch

from mmredstar.modeling.processor import IGNORE_INDEX, Processor
from mmredstar.schema import DataError, ImageRef, Message, Sample

RESP = "<think>\nThe shape has 5 sides.\n</think>\n\nThe answer is B."


def labelled(feat, tok):
    return tok.decode([t for t in feat["labels"] if t != IGNORE_INDEX], skip_special_tokens=False)


def test_text_labels_cover_only_the_response(tiny_text):
    _, proc = tiny_text
    s = Sample.text("What is 2+3?", "5", system="Be brief.")
    f = proc.encode(s, RESP)
    assert labelled(f, proc.tokenizer) == RESP + "<|im_end|>"
    assert len(f["input_ids"]) == len(f["labels"]) == len(f["attention_mask"])
    assert f["image_spans"] == [] and f["num_tiles"] == [] and "pixel_values" not in f
    # the training text is exactly prompt + response: what format_prompt shows
    assert proc.tokenizer.decode(f["input_ids"], skip_special_tokens=False) == proc.format_prompt(s, RESP)
    prompt = proc.encode(s)
    assert f["input_ids"][: len(prompt["input_ids"])] == prompt["input_ids"]
    assert all(t == IGNORE_INDEX for t in prompt["labels"])
    assert proc.format_prompt(s).endswith("<|im_start|>assistant\n")


def test_loss_on_think_false_masks_the_think_block(tiny_text):
    _, proc = tiny_text
    s = Sample.text("Q?", "B")
    f = proc.encode(s, RESP, loss_on_think=False)
    assert labelled(f, proc.tokenizer) == "\n\nThe answer is B.<|im_end|>"
    assert f["input_ids"] == proc.encode(s, RESP)["input_ids"]     # same tokens, fewer labels
    no_think = proc.encode(s, "Just B.", loss_on_think=False)
    assert labelled(no_think, proc.tokenizer) == "Just B.<|im_end|>"


def test_chat_template_agrees_with_encode(tiny_text):
    _, proc = tiny_text
    s = Sample(prompt=[Message.make("system", "Sys."), Message.make("user", "Hi"),
                       Message.make("assistant", "Hello."), Message.make("user", "2+2?")], answer="4",
               answer_type="numeric")
    f = proc.encode(s, "4")
    msgs = proc.messages(s) + [{"role": "assistant", "content": "4"}]
    ref = proc.tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert ref["input_ids"] == f["input_ids"]
    # the template's generation markers cover the earlier assistant turn too; encode labels only the target
    assert labelled(f, proc.tokenizer) == "4<|im_end|>"


def test_default_system_prompt(tiny_text):
    _, proc = tiny_text
    p2 = Processor(proc.tokenizer, system_prompt="You are helpful.")
    assert p2.format_prompt(Sample.text("Q", "A")).startswith("<|im_start|>system\nYou are helpful.<|im_end|>\n")
    own = Sample.text("Q", "A", system="Mine.")
    assert "You are helpful." not in p2.format_prompt(own)


def test_images_expand_to_tiles_and_spans(tiny_vlm, make_image):
    _, proc = tiny_vlm
    imgs = [ImageRef.from_image(make_image(5, (64, 64))), ImageRef.from_image(make_image(3, (128, 64)))]
    s = Sample(prompt=[Message.make("user", 0, "Compare", 1, "?")], images=imgs, answer="A", answer_type="choice")
    f = proc.encode(s, "A")
    assert f["num_tiles"] == [1, 3]                       # 64x64 -> 1 tile; 128x64 -> 2 tiles + thumbnail
    assert f["pixel_values"].shape == (4, 3, 64, 64)
    ids = f["input_ids"]
    for (start, end), n in zip(f["image_spans"], f["num_tiles"], strict=True):
        assert ids[start] == proc.img_start_id and ids[end - 1] == proc.img_end_id
        assert ids[start + 1:end - 1] == [proc.image_token_id] * (n * proc.tokens_per_tile)
        assert all(lab == IGNORE_INDEX for lab in f["labels"][start:end])
    assert sum(t == proc.image_token_id for t in ids) == 4 * 16
    text = proc.format_prompt(s, "A")
    assert proc.tokenizer.decode(ids, skip_special_tokens=False) == text
    assert text.index("Compare") > text.index("</img>") and text.count("<img>") == 2


def test_blank_images_keep_the_shape(tiny_vlm, make_image):
    _, proc = tiny_vlm
    s = Sample.with_images("How many sides?", [ImageRef.from_image(make_image(5, (128, 64)))], "5", "numeric")
    real, blank = proc.encode(s), proc.encode(s, blank_images=True)
    assert real["input_ids"] == blank["input_ids"] and real["pixel_values"].shape == blank["pixel_values"].shape
    white = (torch.tensor([1.0, 1.0, 1.0]) - torch.tensor(proc.image_mean)) / torch.tensor(proc.image_std)
    assert torch.allclose(blank["pixel_values"], white.view(1, 3, 1, 1).expand_as(blank["pixel_values"]))
    assert not torch.allclose(real["pixel_values"], blank["pixel_values"])


def test_collate_right_and_left(tiny_vlm, make_image):
    _, proc = tiny_vlm
    a = proc.encode(Sample.with_images("Q1", [ImageRef.from_image(make_image(4, (128, 64)))], "x", "text"), "yes")
    b = proc.encode(Sample.text("A longer text-only question here?", "y", "text"), "no")
    c = proc.encode(Sample.with_images("Q3", [ImageRef.from_image(make_image(6))], "z", "text"), "ok")
    batch = proc.collate([a, b, c], pad_to_multiple_of=8)
    L = batch["input_ids"].shape[1]
    assert L % 8 == 0 and L >= max(len(f["input_ids"]) for f in (a, b, c))
    assert batch["num_tiles"].tolist() == [3, 1] and batch["pixel_values"].shape[0] == 4
    assert torch.equal(batch["pixel_values"][:3], a["pixel_values"]) and torch.equal(batch["pixel_values"][3:],
                                                                                      c["pixel_values"])
    n = len(b["input_ids"])
    assert batch["input_ids"][1, :n].tolist() == b["input_ids"] and batch["attention_mask"][1, n:].sum() == 0
    assert (batch["labels"][1, n:] == IGNORE_INDEX).all()
    left = proc.collate([a, b], padding_side="left")
    m = left["input_ids"].shape[1]
    assert left["input_ids"][1, m - n:].tolist() == b["input_ids"] and left["attention_mask"][1, : m - n].sum() == 0


def test_truncation_never_cuts_an_image(tiny_vlm, make_image):
    _, proc = tiny_vlm
    imgs = [ImageRef.from_image(make_image(5)), ImageRef.from_image(make_image(3, (128, 64)))]
    s = Sample(prompt=[Message.make("user", 0, "and", 1, "which has more sides?")], images=imgs, answer="A",
               answer_type="choice")
    full = proc.encode(s, "The first one.")
    (s0, e0), (s1, e1) = full["image_spans"]
    cut = proc.encode(s, "The first one.", max_length=s1 + 5)     # inside the second image
    assert len(cut["input_ids"]) == s1 and cut["truncated"]
    assert cut["image_spans"] == [[s0, e0]] and cut["num_tiles"] == [1] and cut["pixel_values"].shape[0] == 1
    short = proc.encode(s, "The first one.", max_length=len(full["input_ids"]) - 2)
    assert len(short["input_ids"]) == len(full["input_ids"]) - 2 and short["num_tiles"] == [1, 3]


def test_errors_name_the_problem(tiny_text, tiny_vlm, make_image, tmp_path):
    _, text_proc = tiny_text
    _, vlm_proc = tiny_vlm
    s = Sample.with_images("Q", [ImageRef.from_image(make_image())], "A", "choice")
    with pytest.raises(DataError, match="text-only"):
        text_proc.encode(s)
    missing = Sample.with_images("Q", [ImageRef(path="imgs/nope.png", root=str(tmp_path))], "A", "choice")
    with pytest.raises(DataError, match="nope.png"):
        vlm_proc.encode(missing)
    bad = Sample(prompt=[Message.make("user", 1, "Q")], images=[ImageRef.from_image(make_image())], answer="A",
                 answer_type="choice")
    with pytest.raises(DataError, match="index 1"):
        vlm_proc.encode(bad)


def test_save_and_reload(tiny_vlm, make_image, tmp_path):
    _, proc = tiny_vlm
    proc.save_pretrained(tmp_path)
    again = Processor.from_pretrained(tmp_path)
    assert again.settings() == proc.settings()
    s = Sample.with_images("Q", [ImageRef.from_image(make_image(5, (128, 64)))], "A", "choice")
    a, b = proc.encode(s, "A"), again.encode(s, "A")
    assert a["input_ids"] == b["input_ids"] and torch.equal(a["pixel_values"], b["pixel_values"])
