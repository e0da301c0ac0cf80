"""``mmredstar models export``: our checkpoints loaded by transformers alone (no mmredstar code)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from mmredstar.cli import cli
from mmredstar.modeling import load_model
from mmredstar.modeling.export import export_checkpoint
from mmredstar.schema import ImageRef, Sample
from mmredstar.training import run as train_run


def _shape_sample(make_image, sides=4):
    return Sample.with_images("What colour is the shape?", [ImageRef.from_image(make_image(sides))], "red", "text")


@pytest.fixture(scope="module")
def trained_internvit(tmp_path_factory):
    """tiny_internvit_vlm after a few SFT steps (so the exported weights are not the init)."""
    out = tmp_path_factory.mktemp("vit") / "sft"
    return train_run("tiny/vlm_sft", [f"output_dir={out}", "model=tiny_internvit_vlm", "train.max_steps=3",
                                      "train.progress=false"])


def test_export_internvit_vlm_to_transformers_internvl(tmp_path, trained_internvit, make_image):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    r = CliRunner().invoke(cli, ["models", "export", str(trained_internvit), "--out", str(tmp_path / "hf")])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert cfg["model_type"] == "internvl" and cfg["architectures"] == ["InternVLForConditionalGeneration"]
    assert not (tmp_path / "hf" / "mmredstar_processor.json").exists()
    ours, proc = load_model(str(trained_internvit))
    init, _ = load_model("tiny_internvit_vlm")
    assert not torch.equal(ours.mlp1[1].weight, init.mlp1[1].weight)       # trained weights went out
    hf = AutoModelForImageTextToText.from_pretrained(tmp_path / "hf").eval()
    hp = AutoProcessor.from_pretrained(tmp_path / "hf")
    assert type(hf).__name__ == "InternVLForConditionalGeneration" and type(hp).__name__ == "InternVLProcessor"
    s = _shape_sample(make_image)
    batch = proc.collate([proc.encode(s)])
    # transformers' processor alone makes the same inputs from the chat messages and the image
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is the shape?"}]}]
    text = hp.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    enc = hp(images=[s.images[0].load()], text=[text], return_tensors="pt")
    assert torch.equal(enc["input_ids"], batch["input_ids"])
    assert torch.allclose(enc["pixel_values"], batch["pixel_values"], atol=1e-5)
    ours.eval()
    with torch.no_grad():
        a = ours(**batch).logits
        b = hf(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=enc["pixel_values"]).logits
        assert torch.allclose(a, b[..., :a.shape[-1]], atol=1e-5), (a - b[..., :a.shape[-1]]).abs().max()
        n = enc["input_ids"].shape[1]
        g1 = ours.generate(**batch, max_new_tokens=6, do_sample=False, eos_token_id=None)
        g2 = hf.generate(**enc, max_new_tokens=6, do_sample=False, eos_token_id=None)
    assert g2[0, n:].tolist() == g1[0, -6:].tolist() and len(g2[0, n:]) == 6   # the same greedy tokens


def test_export_timm_vlm_with_remote_code(tmp_path, make_image):
    """Another tower: our code beside the weights; loaded in a process where mmredstar cannot be imported."""
    info = export_checkpoint("tiny_vlm", tmp_path / "rc")
    assert info["layout"] == "remote_code"
    cfg = json.loads((tmp_path / "rc" / "config.json").read_text())
    assert cfg["auto_map"]["AutoModelForCausalLM"] == "modeling_mmredstar_vlm.VisionLanguageModel"
    ours, proc = load_model("tiny_vlm")
    batch = proc.collate([proc.encode(_shape_sample(make_image))])
    torch.save({k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}, tmp_path / "batch.pt")
    script = f"""
import sys
sys.modules["mmredstar"] = None            # importing mmredstar now fails: only the exported code is used
import torch
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained({str(tmp_path / "rc")!r}, trust_remote_code=True).eval()
assert type(m).__module__.startswith("transformers_modules"), type(m).__module__
b = torch.load({str(tmp_path / "batch.pt")!r})
with torch.no_grad():
    torch.save(m(**b).logits, {str(tmp_path / "logits.pt")!r})
"""
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={"PATH": "/usr/bin:/bin", "HF_MODULES_CACHE": str(tmp_path / "modules"),
                            "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-3000:]
    ours.eval()
    with torch.no_grad():
        a = ours(**batch).logits
    assert torch.allclose(a, torch.load(tmp_path / "logits.pt"), atol=1e-5)


def test_export_text_model_is_a_plain_hf_checkpoint(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = export_checkpoint("tiny_text", tmp_path / "lm")
    assert info["layout"] == "causal_lm" and not (tmp_path / "lm" / "mmredstar_processor.json").exists()
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "lm").eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "lm")
    ours, proc = load_model("tiny_text")
    s = Sample.text("What is 2 + 3?", "5", "numeric")
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], add_generation_prompt=True,
                                  return_dict=True)["input_ids"]
    assert ids == proc.encode(s)["input_ids"]
    gen = json.loads((tmp_path / "lm" / "generation_config.json").read_text())
    assert gen["eos_token_id"] == tok.convert_tokens_to_ids("<|im_end|>")
    with torch.no_grad():
        assert torch.allclose(hf(torch.tensor([ids])).logits, ours.eval()(torch.tensor([ids])).logits, atol=1e-6)
    r = CliRunner().invoke(cli, ["models", "export", "tiny_text", "--out", str(tmp_path / "lm")])
    assert r.exit_code != 0 and "not empty" in r.output


@pytest.mark.slow
def test_exported_vlm_served_by_transformers_serve_for_an_eval_run(tmp_path, make_image):
    """Train tiny_internvit_vlm on the shape-colour set, export it, serve the export with transformers
    serve and evaluate it over HTTP (images as data URLs): the same pass@1 as evaluating our checkpoint
    in-process with the transformers backend (greedy, identical logits: the very same responses)."""
    from conftest import RealServer

    from mmredstar.evaluation.runner import evaluate
    from mmredstar.evaluation.spec import load_spec
    from mmredstar.io import read_samples
    from mmredstar.synth.builtins import write_builtin

    ckpt = train_run("tiny/vlm_sft", [f"output_dir={tmp_path / 'sft'}", "model=tiny_internvit_vlm",
                                      "train.max_steps=30", "train.progress=false"])
    export_checkpoint(ckpt, tmp_path / "hf")
    samples = list(read_samples(write_builtin("rl_vlm", str(tmp_path / "data"))))[:8]
    spec = load_spec("geoqa", {"prompt": "{question}", "max_new_tokens": 24, "temperature": 0.0, "n": 1})
    local = evaluate(str(ckpt), [spec], samples={"geoqa": samples}, backend="transformers",
                     out=tmp_path / "ev_local", progress=False)["results"][0]
    server = RealServer(tmp_path / "hf", tmp_path / "logs")
    try:
        served = evaluate(str(tmp_path / "hf"), [spec], samples={"geoqa": samples}, backend="openai",
                          backend_options={"base_url": server.url, "api_key_env": None, "concurrency": 2},
                          out=tmp_path / "ev_served", progress=False)["results"][0]
    finally:
        server.stop()
    def items(d):
        return [json.loads(x) for x in next((tmp_path / d).rglob("samples.jsonl")).read_text().splitlines()]

    over_http, in_process = items("ev_served"), items("ev_local")
    assert served["n_items"] == len(samples) == len(over_http) and served["backend"] == "openai"
    assert all(i["prompt_tokens"] > 16 for i in over_http)          # the 16 image tokens of the tile went in
    assert [i["responses"][0]["text"] for i in over_http] == [i["responses"][0]["text"] for i in in_process]
    assert all("Answer:" in i["responses"][0]["text"] for i in over_http)      # it learned the format
    assert served["pass@1"] == local["pass@1"], (served, local)
