"""The real SmolLM2-135M-Instruct as a student: the train/smollm2 recipes (full fine-tuning) on built-in
verifiable long-CoT arithmetic. Slow (CPU minutes); the numbers go in README ("A real small model")."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch

from mmredstar.evaluation.runner import evaluate
from mmredstar.evaluation.spec import spec_from_dict
from mmredstar.synth.builtins import arith_spec, held_out_arith
from mmredstar.training import run as train_run

HELD_OUT = 100
BENCH = "arith_held_out"


def _pass1(model: str, samples, out, **backend):
    """pass@1 with the prompt the arithmetic sets train on (``arith_spec``: the bare question), greedy, 128 new
    tokens; locally every item in one fp32 batch (base and SFT alike)."""
    spec = spec_from_dict({**arith_spec(128), "n": 1}, name=BENCH)
    rep = evaluate(model, [spec], samples={BENCH: samples}, backend=backend.pop("backend", "transformers"),
                   backend_options={"batch_size": HELD_OUT, "dtype": "float32", **backend}
                   if not backend.get("base_url") else backend, out=out, progress=False)
    return rep["results"][0]


def _generates(ckpt) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(ckpt).eval()
    tok = AutoTokenizer.from_pretrained(ckpt)
    ids = tok.apply_chat_template([{"role": "user", "content": "Compute 12 + 7 - 5."}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=48, do_sample=False)
    return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.mark.slow
def test_sft_raises_held_out_pass_at_1(tmp_path, smollm2_dir):
    """Held-out pass@1 of the base model vs after 135M_sft (greedy, 100 disjoint problems), with standard
    errors; the SFT checkpoint loads in AutoModelForCausalLM, generates and is served by transformers serve."""
    from conftest import RealServer

    samples = held_out_arith(HELD_OUT)
    t0 = time.time()
    base = _pass1("smollm2_135m_instruct", samples, tmp_path / "ev_base")
    t_base = time.time() - t0
    ckpt = Path(train_run("smollm2/135M_sft", [f"output_dir={tmp_path / 'sft'}", "train.progress=false"]))
    t_train = time.time() - t0 - t_base
    after = _pass1(str(ckpt), samples, tmp_path / "ev_sft")
    wall = time.time() - t0
    se = {k: math.sqrt(r["pass@1"] * (1 - r["pass@1"]) / r["n_items"]) for k, r in (("base", base), ("sft", after))}
    numbers = {"items": HELD_OUT, "base_pass@1": base["pass@1"], "base_se": se["base"], "sft_pass@1": after["pass@1"],
               "sft_se": se["sft"], "eval_base_s": round(t_base), "train_s": round(t_train), "wall_s": round(wall)}
    print("SMOLLM2_SFT_NUMBERS", json.dumps(numbers))
    metrics = json.loads((ckpt / "metrics.json").read_text())
    assert metrics["last_loss"] < metrics["first_loss"]
    assert base["n_items"] == after["n_items"] == HELD_OUT
    gap = after["pass@1"] - base["pass@1"]
    assert gap > 2 * math.sqrt(se["base"] ** 2 + se["sft"] ** 2), numbers    # a rise beyond 2 standard errors
    text = _generates(ckpt)
    assert "boxed" in text and "<think>" in text, text                        # the learned long-CoT format
    server = RealServer(ckpt, tmp_path / "logs")
    try:
        served = _pass1(str(ckpt), samples[:6], tmp_path / "ev_served", backend="openai", base_url=server.url,
                        api_key_env=None, concurrency=2)
    finally:
        server.stop()
    assert served["n_items"] == 6 and served["backend"] == "openai"


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["smollm2/135M_dpo", "smollm2/135M_grpo"])
def test_dpo_and_grpo_recipes_train_the_real_model(tmp_path, smollm2_dir, recipe):
    """One short run each (full fine-tuning): weights move, the checkpoint is a plain HF one that generates."""
    from safetensors.torch import load_file

    ckpt = Path(train_run(recipe, [f"output_dir={tmp_path / 'run'}", "train.max_steps=2", "train.progress=false",
                                   *(["train.batch_size=4", "train.micro_batch_size=4"] if "grpo" in recipe else [])]))
    metrics = json.loads((ckpt / "metrics.json").read_text())
    assert metrics["steps"] == 2 and math.isfinite(metrics["last_loss"])
    after = load_file(ckpt / "model.safetensors")
    before = load_file(smollm2_dir / "model.safetensors")
    k = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(after[k].float(), before[k].float())
    assert _generates(ckpt).strip()
