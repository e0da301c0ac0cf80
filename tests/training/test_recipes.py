"""Every shipped recipe validates without loading a model: keys and types, the first-line command, the
referenced preset, data sets of the right kind, DeepSpeed configs; and the named-set file is well formed.

    .venv/bin/python -m pytest -q tests/training/test_recipes.py
"""

import json

import pytest

from mmredstar.assets import asset_dir, list_assets
from mmredstar.training.data import named_sets
from mmredstar.training.validate import check

RECIPES = list_assets("train")
REQUIRED = ["tiny/sft", "tiny/dpo", "tiny/grpo", "tiny/vlm_sft", "tiny/vlm_dpo", "tiny/reinforce_pp", "tiny/ppo",
            "tiny/vlm_grpo", "tiny/vlm_ppo", "qwen2_5/14B_ppo", "qwen2_5/7B_sft_4k",
            "qwen2_5/7B_sft_8k", "qwen2_5/7B_sft_16k", "qwen2_5/7B_sft_32k", "qwen2_5/7B_sft_1000k",
            "qwen2_5/14B_sft_4k", "qwen2_5/14B_sft_1000k", "qwen2_5_math/7B_sft_pi16k",
            "qwen2_5/32B_sft_16k_ulysses", "qwen2_5/32B_dpo", "qwen2_5/14B_dpo", "qwen2_5/14B_reinforce_pp",
            "internvl2/8B_geoqa_sft"]


def test_required_recipes_are_shipped():
    missing = [r for r in REQUIRED if r not in RECIPES]
    assert not missing, missing


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_validates(name):
    rec = check(name)
    first = (asset_dir("train") / f"{name}.yaml").read_text().splitlines()[0]
    assert first == f"# mmredstar train {name}", first
    assert rec.description and rec.source


def test_paper_dpo_settings():
    for name in ("qwen2_5/14B_dpo", "qwen2_5/32B_dpo", "qwen2_5/14B_dpo_beta0_5", "qwen2_5/32B_dpo_beta0_5"):
        rec = check(name)
        assert (rec.train.lr, rec.train.epochs, rec.train.batch_size, rec.train.lr_scheduler) == (5e-7, 2, 64, "linear")
        assert rec.dpo.beta in (0.3, 0.5)
    rl = check("qwen2_5/14B_reinforce_pp")
    assert (rl.method, rl.rl.num_generations, rl.rl.temperature, rl.train.lr) == ("reinforce_pp", 2, 1.0, 5e-7)
    assert (rl.train.epochs, rl.train.batch_size * rl.rl.num_generations, rl.ppo.mini_batch_size) == (5, 1024, 1024)
    # paper Table 9: 5 episodes, actor lr 5e-7, critic lr 5e-6, batch 1024, 2 responses per prompt, temperature 1.0,
    # 2 critic warm-up steps, linear decay
    ppo = check("qwen2_5/14B_ppo")
    assert (ppo.method, ppo.train.epochs, ppo.train.lr, ppo.ppo.critic_lr, ppo.ppo.mini_batch_size, ppo.rl.num_generations,
            ppo.rl.temperature, ppo.ppo.critic_warmup_steps, ppo.train.lr_scheduler) == (
        "ppo", 5, 5e-7, 5e-6, 1024, 2, 1.0, 2, "linear")
    for name in ("tiny/grpo", "tiny/reinforce_pp", "tiny/ppo", "tiny/vlm_grpo", "tiny/vlm_ppo"):
        tiny = check(name)  # every tiny RL recipe starts from a tiny SFT recipe's output, built on demand
        assert tiny.model.init_from in ("tiny/sft", "tiny/vlm_sft") and tiny.model.init_build, name
    pi = check("qwen2_5_math/7B_sft_pi16k")
    from mmredstar.modeling import load_preset

    preset = load_preset(pi.model.name)
    assert preset.rope_scaling == {"rope_type": "linear", "factor": 4.0} and pi.data.max_length == 16384
    ul = check("qwen2_5/32B_sft_16k_ulysses")
    assert ul.train.sequence_parallel > 1 and ul.train.deepspeed


def test_named_sets_and_deepspeed_configs():
    sets = named_sets()
    assert {"redstar_math_4k", "redstar_math_1000k", "redstar_geoqa_3k7", "tiny_sft_text"} <= set(sets)
    for name in ("zero2", "zero3"):
        cfg = json.loads((asset_dir("train") / "deepspeed" / f"{name}.json").read_text())
        assert cfg["zero_optimization"]["stage"] == int(name[-1])
        assert "mmredstar train" in cfg["_comment"]


def test_wrong_kind_of_data_is_reported(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("# mmredstar train bad.yaml\nmethod: dpo\nmodel: tiny_text\ndata: [tiny_sft_text]\n")
    with pytest.raises(ValueError, match="is a sft set, but method dpo trains on dpo data"):
        check(p)
    p.write_text("method: sft\nmodel: tiny_text\ndata: [tiny_sft_text]\n")
    with pytest.raises(ValueError, match="first line must be a comment"):
        check(p)
    p.write_text("# mmredstar train bad.yaml\nmethod: sft\nmodel: no_such_preset\ndata: [tiny_sft_text]\n")
    with pytest.raises(ValueError, match="no preset 'no_such_preset'"):
        check(p)
