"""Recipe options reach the run: gradient checkpointing (same loss), freezing and per-module learning
rates, Position Interpolation from a recipe override, held-out eval data, and the ``train`` command.

    .venv/bin/python -m pytest -q tests/training/test_options.py
"""

import subprocess
import sys

import pytest
from safetensors.torch import load_file

from mmredstar.training import run
from mmredstar.training.config import load_recipe
from mmredstar.training.runner import load_model_for, read_metrics

from .test_distributed import REPO, _env

Q = ["train.progress=false"]


def _losses(out):
    return [v for _, v in read_metrics(out)["series"]["loss"]]


@pytest.mark.parametrize("recipe", ["tiny/sft", "tiny/vlm_sft"])
def test_gradient_checkpointing_gives_the_same_loss(tmp_path, recipe):
    a = run(recipe, [f"output_dir={tmp_path / 'a'}", "train.max_steps=3", *Q])
    b = run(recipe, [f"output_dir={tmp_path / 'b'}", "train.max_steps=3", "train.gradient_checkpointing=true", *Q])
    assert _losses(a) == pytest.approx(_losses(b), abs=1e-5)


def test_freeze_and_module_learning_rates(tmp_path):
    from mmredstar.modeling import load_model

    out = run("tiny/vlm_sft", [f"output_dir={tmp_path / 'f'}", "train.max_steps=3", "model.freeze={vision: true}",
                               "model.lrs={projector: 0.0}", *Q])
    init = load_model("tiny_vlm", seed=0)[0].state_dict()
    w = load_file(f"{out}/model.safetensors")

    def delta(prefix):
        return max(float((w[k] - init[k]).abs().max()) for k in w if k.startswith(prefix))

    assert delta("vision_model.") == 0.0  # frozen
    assert delta("mlp1.") == 0.0  # learning rate 0
    assert delta("language_model.") > 1e-3


def test_position_interpolation_from_a_recipe_override():
    rec = load_recipe("tiny/sft", ["model.rope_scaling={rope_type: linear, factor: 4.0}",
                                   "model.max_position_embeddings=16384"])
    model, _ = load_model_for(rec)
    cfg = model.config.get_text_config()
    assert cfg.max_position_embeddings == 16384
    assert cfg.rope_parameters["rope_type"] == "linear" and cfg.rope_parameters["factor"] == 4.0


def test_eval_data_is_evaluated_and_in_the_manifest(tmp_path):
    out = run("tiny/sft", [f"output_dir={tmp_path / 'e'}", "train.max_steps=2", "data.eval=[tiny_sft_text]", *Q])
    m = read_metrics(out)
    assert m["eval"]["eval_loss"] > 0
    import json

    roles = [f["role"] for f in json.load(open(f"{out}/data_manifest.json"))["files"]]
    assert roles == ["train", "eval"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mmredstar.cli", "train", *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=120)


def test_train_command_check_list_and_errors():
    p = _cli("tiny/sft", "--check")
    assert p.returncode == 0 and "ok: tiny/sft" in p.stdout
    p = _cli("--list")
    assert p.returncode == 0 and "qwen2_5/7B_sft_4k" in p.stdout and "redstar_math_1000k" in p.stdout
    p = _cli("tiny/sft", "train.lerning_rate=1", "--check")
    assert p.returncode != 0 and "unknown key 'train.lerning_rate'" in p.stderr
    p = _cli("tiny/sft", "train.batchsize=1", "--check")
    assert p.returncode != 0 and "did you mean 'train.batch_size'" in p.stderr
    p = _cli("no/such_recipe")
    assert p.returncode != 0 and "unknown train asset" in p.stderr
