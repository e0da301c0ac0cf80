"""Online RL: GRPO (TRL's GRPOTrainer) and REINFORCE++ (our loop, ``training/ppo.py``): the mean reward rises on
a learnable reward (text and VLM), the rule reward runs end to end, and REINFORCE++'s global advantages differ
from GRPO's per-group ones.

    .venv/bin/python -m pytest -q tests/training/test_rl.py
"""

import pytest

from mmredstar.training import run
from mmredstar.training.runner import read_metrics

TOY = "rl.reward=tests.training.rewards:low_token_share"
RANDOM = "model.init_from=null"  # these tests start from the random-init preset, not the recipes' SFT model
GRPO_SMALL = ["train.batch_size=8", "train.micro_batch_size=8", "rl.num_generations=2"]  # 4 prompts x 2 per step
RPP_SMALL = ["train.batch_size=8", "train.micro_batch_size=8", "rl.num_generations=2", "ppo.mini_batch_size=16",
             "ppo.ppo_epochs=1", "rl.beta=0", "ppo.rollout_prompts_per_call=8"]  # 8 prompts x 2 per step, no KL


def _avg(series, first: bool, k: int = 5) -> float:
    vals = [v for _, v in series]
    part = vals[:k] if first else vals[-k:]
    return sum(part) / len(part)


def _weights(out):
    from safetensors.torch import load_file

    return load_file(f"{out}/model.safetensors")


def test_grpo_mean_reward_rises_text(tmp_path):
    m = read_metrics(run("tiny/grpo", [f"output_dir={tmp_path / 'g'}", TOY, RANDOM, *GRPO_SMALL, "train.max_steps=30", "train.lr=1e-2",
                                       "rl.max_completion_length=16", "train.progress=false"]))
    r = m["series"]["reward"]
    assert len(r) == 30 and _avg(r, False) > _avg(r, True) + 0.2, r


def test_reinforce_pp_mean_reward_rises_text(tmp_path):
    m = read_metrics(run("tiny/reinforce_pp", [f"output_dir={tmp_path / 'r'}", TOY, RANDOM, *RPP_SMALL, "train.max_steps=30",
                                               "train.lr=1e-2", "rl.max_completion_length=16", "train.progress=false"]))
    assert "global batch" in m["rl"]["advantages"]
    r = m["series"]["reward"]
    assert _avg(r, False) > _avg(r, True) + 0.2, r


def test_grpo_mean_reward_rises_vlm(tmp_path):
    m = read_metrics(run("tiny/vlm_grpo", [f"output_dir={tmp_path / 'v'}", TOY, RANDOM, "train.max_steps=16",
                                           "train.batch_size=4", "train.micro_batch_size=4", "rl.num_generations=2",
                                           "rl.max_completion_length=16",
                                           "train.lr=1e-2", "train.progress=false"]))
    assert m["rl"]["vlm"]
    r = m["series"]["reward"]
    assert _avg(r, False, 4) > _avg(r, True, 4) + 0.15, r


def test_rule_reward_runs_end_to_end(tmp_path):
    m = read_metrics(run("tiny/grpo", [f"output_dir={tmp_path / 'rule'}", RANDOM, *GRPO_SMALL, "train.max_steps=2",
                                       "train.progress=false"]))
    assert m["steps"] == 2 and all(-1.0 <= v <= 1.0 for _, v in m["series"]["reward"])


def test_global_vs_group_advantages(tmp_path):
    """Rewards constant within each prompt's group: GRPO has nothing to learn, REINFORCE++ does."""
    parity = "rl.reward=tests.training.rewards:answer_parity"
    common = [parity, RANDOM, "train.max_steps=3", "train.lr=1e-2", "rl.max_completion_length=8", "train.progress=false"]
    g = run("tiny/grpo", [f"output_dir={tmp_path / 'g'}", *common, *GRPO_SMALL])
    r = run("tiny/reinforce_pp", [f"output_dir={tmp_path / 'r'}", *common, *RPP_SMALL])
    from mmredstar.modeling import load_model

    init = load_model("tiny_text", seed=0)[0].state_dict()
    dg = max(float((w - init[k]).abs().max()) for k, w in _weights(g).items())
    dr = max(float((w - init[k]).abs().max()) for k, w in _weights(r).items())
    assert dg == 0.0 and dr > 1e-3, (dg, dr)


@pytest.mark.slow
def test_rule_reward_rises_after_sft_warmup(tmp_path):
    """The real verifier as reward: an SFT-warmed tiny model answers in the boxed format more often and its
    mean rule reward (1 / 0 / -1) rises under GRPO."""
    sft = run("tiny/sft", [f"output_dir={tmp_path / 'sft'}", "train.max_steps=60", "train.lr=5e-3",
                           "train.progress=false"])
    m = read_metrics(run("tiny/grpo", [f"output_dir={tmp_path / 'g'}", f"model={sft}", RANDOM, "train.max_steps=40",
                                       "train.lr=2e-3", "rl.max_completion_length=32", "rl.num_generations=4", "train.batch_size=8",
                                       "train.micro_batch_size=8",
                                       "train.progress=false"]))
    r = m["series"]["reward"]
    assert _avg(r, False, 10) > _avg(r, True, 10) + 0.1, r


def test_grpo_vlm_with_kl_to_the_starting_policy(tmp_path):
    """``rl.beta > 0`` on a VLM: TRL cannot reload our VLM as its reference, so the trainer gets a frozen copy
    of the starting policy; the KL to it is logged and grows from 0 as the policy moves."""
    m = read_metrics(run("tiny/vlm_grpo", [f"output_dir={tmp_path / 'k'}", TOY, RANDOM, "train.max_steps=6",
                                           "train.batch_size=4", "train.micro_batch_size=4", "rl.num_generations=2",
                                           "rl.max_completion_length=8", "rl.beta=0.1", "train.logging_steps=1",
                                           "train.lr=1e-2", "train.progress=false"]))
    kl = [v for _, v in m["series"]["kl"]]
    assert m["rl"]["vlm"] and len(kl) == 6, m["series"]
    assert abs(kl[0]) < 1e-6 and max(kl[1:]) > 1e-4, kl
