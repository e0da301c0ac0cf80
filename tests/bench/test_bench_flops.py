"""The MFU formula's parameter count N equals the real models' matmul parameters (meta-device builds of the
shipped presets: tied and untied embeddings), and the attention term counts causal keys per packed sample.

    .venv/bin/python -m pytest -q tests/bench/test_bench_flops.py
"""

import pytest

from bench.flops import attention_context, lm_shape, peak_flops, train_flops


@pytest.mark.parametrize("preset", ["qwen2_5_0_5b", "qwen2_5_1_5b", "qwen2_5_7b_instruct"])
def test_matmul_params_match_the_built_model(preset):
    from mmredstar.modeling import build_model, load_preset

    p = load_preset(preset)
    model, _ = build_model(p, meta=True)
    total = sum(x.numel() for x in model.parameters())
    embed = model.get_input_embeddings().weight.numel()
    shape = lm_shape(p.text_config)
    # the input embedding is a look-up; with tied weights the same matrix is the LM head, counted once
    assert shape.matmul_params == (total if shape.tied else total - embed)


def test_attention_term_is_per_packed_sample():
    s = lm_shape({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
                  "intermediate_size": 256, "vocab_size": 1280, "tie_word_embeddings": True})
    one = train_flops(s, [8])
    two = train_flops(s, [4, 4])  # same tokens, shorter contexts: less attention work, same 6N part
    assert one - two == 12 * 2 * 64 * (attention_context([8]) - attention_context([4, 4]))
    assert attention_context([4, 4]) == 20 and attention_context([8]) == 36
    assert peak_flops("NVIDIA H200") == peak_flops("NVIDIA H100 80GB HBM3") == 989.4e12
