"""The tiny tokenizer: deterministic, lossless, short on CoT text, digits split, chat template markers.

    .venv/bin/python -m pytest -q tests/modeling/test_tokenizer.py
"""

from __future__ import annotations

import time

import pytest

from mmredstar.modeling.tokenizer import CHAT_TEMPLATE, build_tiny_tokenizer

COT = ("The figure shows a regular polygon with 5 sides, so the interior angles sum to (5-2) × 180° = 540°. "
       "Answer: 540")


def test_built_fast_and_deterministic(tmp_path):
    from mmredstar.modeling.tokenizer import _tiny_tokenizer_json

    _tiny_tokenizer_json.cache_clear()
    t = time.perf_counter()
    a = build_tiny_tokenizer()
    assert time.perf_counter() - t < 1.0
    _tiny_tokenizer_json.cache_clear()
    b = build_tiny_tokenizer()
    assert a.get_vocab() == b.get_vocab()
    assert a.encode(COT) == b.encode(COT)
    assert 1000 <= len(a) <= 1536


@pytest.mark.parametrize("text", [
    COT, "", " leading and trailing  ", "Ünïcödé ∑∫√ 🙂 中文 العربية", "\t\n\r\n  x\x00y", "<think>\nhmm\n</think>\n\nB",
    "def f(x):\n    return x ** 2  # comment\n", r"\frac{\sqrt{2}}{3} \boxed{-7}", "<img></img><|im_end|>"])
def test_round_trip_is_lossless(text):
    tok = build_tiny_tokenizer()
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_cot_is_short_and_digits_split():
    tok = build_tiny_tokenizer()
    n = len(tok.encode(COT, add_special_tokens=False))
    assert n < 60, n
    assert tok.tokenize("2024") == ["2", "0", "2", "4"]
    assert all(len(t.strip("Ġ")) <= 1 for t in tok.tokenize("x = 31415926") if any(c.isdigit() for c in t))


def test_special_tokens_and_template(tmp_path):
    tok = build_tiny_tokenizer()
    for t in ("<|im_start|>", "<|im_end|>", "<think>", "</think>", "<img>", "</img>", "<IMG_CONTEXT>"):
        ids = tok.encode(t, add_special_tokens=False)
        assert len(ids) == 1, t
    # think tags survive decoding with skip_special_tokens; control tokens do not
    ids = tok.encode("<think>a</think>b<|im_end|>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "<think>a</think>b"
    assert "{% generation %}" in tok.chat_template and tok.chat_template == CHAT_TEMPLATE
    out = tok.apply_chat_template([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
                                  tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tok.decode(masked, skip_special_tokens=False) == "yo<|im_end|>"
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.encode(COT) == tok.encode(COT) and again.chat_template == CHAT_TEMPLATE
