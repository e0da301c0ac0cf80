"""Plain HF causal-LM checkpoint directories (the Qwen2.5 case) load with our chat template and tokens;
packed rows (restarting position ids, no attention mask) equal the unpacked samples through the VLM.

    .venv/bin/python -m pytest -q tests/modeling/test_checkpoints.py
"""

from __future__ import annotations

import torch

from mmredstar.modeling import load_model
from mmredstar.schema import ImageRef, Sample


def _plain_tokenizer():
    """A Qwen-like tokenizer: ChatML control tokens but no think/image tokens and no chat template of ours."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from mmredstar.modeling.tokenizer import _tiny_tokenizer_json

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_tiny_tokenizer_json(1536)))
    tok.add_special_tokens({"additional_special_tokens": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]})
    tok.pad_token, tok.eos_token = "<|endoftext|>", "<|im_end|>"
    return tok


def write_hf_lm(path, vocab_size: int):
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model("qwen2", vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                               max_position_embeddings=512, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(path)
    _plain_tokenizer().save_pretrained(path)
    return model


def test_hf_causal_lm_dir(tmp_path):
    ref = write_hf_lm(tmp_path, vocab_size=1280).eval()
    model, proc = load_model(str(tmp_path), dtype="float32")
    model.eval()
    assert type(model).__name__ == "Qwen2ForCausalLM" and proc.family == "text"
    tok = proc.tokenizer
    assert len(tok.encode("<think></think>", add_special_tokens=False)) == 2 and "{% generation %}" in tok.chat_template
    batch = proc.collate([proc.encode(Sample.text("What is 1+1?", "2", "numeric"), "<think>1+1=2</think> 2")])
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, ref(**batch).logits)
    scaled, _ = load_model(str(tmp_path), rope_scaling={"rope_type": "linear", "factor": 2.0})
    assert scaled.config.rope_parameters["factor"] == 2.0


def test_small_embedding_is_resized_for_new_tokens(tmp_path):
    n = len(_plain_tokenizer())
    write_hf_lm(tmp_path, vocab_size=n)             # no room for <think>, </think>
    model, proc = load_model(str(tmp_path))
    assert model.get_input_embeddings().num_embeddings >= len(proc.tokenizer) > n
    assert model.get_input_embeddings().num_embeddings % 64 == 0


def test_packed_rows_equal_separate_samples(make_image):
    model, proc = load_model("tiny_vlm", seed=0, attn_implementation="sdpa")
    model.eval()
    a = proc.encode(Sample.with_images("Color?", [ImageRef.from_image(make_image(5))], "red", "text"), "red")
    b = proc.encode(Sample.text("What is 2+2?", "4", "numeric"), "4")
    ids = torch.tensor([a["input_ids"] + b["input_ids"]])
    pos = torch.tensor([list(range(len(a["input_ids"]))) + list(range(len(b["input_ids"])))])
    with torch.no_grad():
        # packing is detected only without a KV cache: pass use_cache=False (training does)
        packed = model(input_ids=ids, position_ids=pos, pixel_values=a["pixel_values"], use_cache=False).logits[0]
        sa = model(**proc.collate([a])).logits[0]
        sb = model(**proc.collate([b])).logits[0]
    assert torch.allclose(packed[: len(sa)], sa, atol=1e-5)
    assert torch.allclose(packed[len(sa):], sb, atol=1e-5)


def test_bfloat16_load():
    model, proc = load_model("tiny_vlm", dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    f = proc.encode(Sample.text("Hi", "x", "text"), "ok")
    with torch.no_grad():
        assert model(**proc.collate([f])).logits.dtype == torch.bfloat16
