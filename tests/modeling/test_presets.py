"""Every shipped preset validates and builds (on the meta device: no weights, no memory); preset files,
inheritance and load_model overrides report mistakes clearly.

    .venv/bin/python -m pytest -q tests/modeling/test_presets.py
"""

from __future__ import annotations

import time

import pytest

from mmredstar.modeling import build_model, list_presets, load_model, load_preset
from mmredstar.modeling.presets import ModelPreset

EXPECTED_BILLIONS = {  # published sizes of the real models
    "qwen2_5_7b_instruct": 7.62, "qwen2_5_14b_instruct": 14.77, "qwen2_5_32b_instruct": 32.76,
    "qwen2_5_math_7b_instruct": 7.62, "qwen2_5_math_7b_instruct_16k": 7.62, "qwen2_5_0_5b": 0.49,
    "qwen2_5_1_5b": 1.54, "internvl2_8b": 8.08, "internvl2_1b": 0.94,
}


def test_required_presets_exist():
    names = set(list_presets())
    assert {"tiny_text", "tiny_vlm", *EXPECTED_BILLIONS} <= names


@pytest.mark.parametrize("name", list_presets())
def test_preset_validates_and_builds_on_meta(name):
    p = load_preset(name)
    assert p.validate() == [], p.validate()
    assert p.source and p.name == name
    model, _ = build_model(p, meta=True)
    n = sum(x.numel() for x in model.parameters())
    if name in EXPECTED_BILLIONS:
        assert abs(n / 1e9 - EXPECTED_BILLIONS[name]) < 0.01, n
    if p.family == "vlm":
        assert p.tokens_per_tile * 1 == (p.tile_size // p.patch_size // 2) ** 2
        assert type(model).__name__ == "VisionLanguageModel"


def test_tiny_presets_build_fast_and_small():
    load_model("tiny_vlm")  # warm the imports
    for name, lo, hi in (("tiny_text", 1e5, 1e6), ("tiny_vlm", 5e5, 2e6)):
        t = time.perf_counter()
        model, proc = load_model(name, seed=0)
        assert time.perf_counter() - t < 1.0, name
        n = sum(x.numel() for x in model.parameters())
        assert lo < n < hi, (name, n)
        assert model.get_input_embeddings().num_embeddings >= len(proc.tokenizer)


def test_base_inheritance():
    pi, base = load_preset("qwen2_5_math_7b_instruct_16k"), load_preset("qwen2_5_math_7b_instruct")
    assert pi.text_config == base.text_config and pi.checkpoint == base.checkpoint
    assert pi.rope_scaling == {"rope_type": "linear", "factor": 4.0} and base.rope_scaling is None
    assert pi.description != base.description


def test_bad_preset_files_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: text\nsource: x\nhidden: 3\n")
    with pytest.raises(ValueError, match=r"bad.yaml.*unknown key.*hidden"):
        load_preset(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("family: text\n  source: [\n")
    with pytest.raises(ValueError, match=r"broken.yaml:\d+"):
        load_preset(str(broken))
    odd = tmp_path / "odd.yaml"
    odd.write_text("family: vlm\nsource: here\ninit: random\ntile_size: 60\nvision: {backend: timm, embed_dim: 30, "
                   "num_heads: 4, depth: 1, patch_size: 8}\ntext_config: {model_type: qwen2, hidden_size: 30, "
                   "num_attention_heads: 4, num_key_value_heads: 3, num_hidden_layers: 1, intermediate_size: 8, "
                   "vocab_size: 10, max_position_embeddings: 8}\n")
    problems = " | ".join(load_preset(str(odd)).validate())
    for frag in ("must divide hidden_size", "must divide num_attention_heads", "multiple of the head count",
                 "multiple of vision.patch_size"):
        assert frag in problems, frag
    with pytest.raises(ValueError, match="must divide"):
        load_model(str(odd))


def test_unknown_override_is_rejected():
    with pytest.raises(ValueError, match="unknown override 'max_tile'"):
        load_model("tiny_vlm", max_tile=3)
    m, proc = load_model("tiny_vlm", max_tiles=6, use_thumbnail=False)
    assert proc.max_tiles == 6 and not proc.use_thumbnail


def test_preset_dataclass_replace_checks_fields():
    with pytest.raises(ValueError, match="unknown field"):
        ModelPreset(name="x").replace(nope=1)
