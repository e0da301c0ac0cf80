"""Our RL loop (``training/ppo.py``) on CPU with tiny models: PPO with a critic (value head on the actor or a
separate critic), REINFORCE++-baseline; text and VLM; critic warm-up; kill + resume; 2 processes vs 1.

Fast tests show learning on a reward a tiny model can move in seconds (``tests/training/rewards.py``); the
slow test runs every shipped tiny RL recipe as it is (rule reward, from the tiny SFT checkpoint built on
demand) and asserts the mean rule reward rises (``first_reward`` < ``last_reward`` in ``metrics.json``).

    .venv/bin/python -m pytest -q tests/training/test_ppo.py            # fast + 2-process
    .venv/bin/python -m pytest -q -m slow tests/training/test_ppo.py    # the shipped recipes
"""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from mmredstar.training import run
from mmredstar.training.runner import last_checkpoint, read_metrics

from .test_distributed import REPO, _env
from .test_distributed import train as train_proc

TOY = "rl.reward=tests.training.rewards:low_token_share"
SMALL = ["train.batch_size=8", "train.micro_batch_size=8", "rl.num_generations=2", "ppo.mini_batch_size=8",
         "ppo.rollout_prompts_per_call=8", "rl.max_completion_length=16", "train.progress=false"]


def _avg(series, first: bool, k: int = 5) -> float:
    vals = [v for _, v in series]
    part = vals[:k] if first else vals[-k:]
    return sum(part) / len(part)


@pytest.fixture(scope="module")
def sft_text(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft_text") / "sft"
    return run("tiny/sft", [f"output_dir={out}", "train.max_steps=30", "train.progress=false"])


@pytest.mark.parametrize("method,critic", [("ppo", "value_head"), ("ppo", "separate"), ("reinforce_baseline", None)])
def test_reward_rises_text(tmp_path, method, critic):
    over = [f"method={method}", "model.init_from=null", TOY, "train.max_steps=20", "train.lr=1e-2", "rl.beta=0",
            "ppo.critic_warmup_steps=0", "ppo.critic_lr=1e-2", *SMALL, f"output_dir={tmp_path / 'o'}"]
    if critic:
        over.append(f"ppo.critic={critic}")
    m = read_metrics(run("tiny/ppo", over))
    r = m["series"]["reward"]
    assert len(r) == 20 and _avg(r, False) > _avg(r, True) + 0.15, r
    assert m["method"] == method and m["last_reward"] == r[-1][1] and m["first_reward"] == r[0][1]
    if method == "ppo":
        assert m["rl"]["critic"] == critic and os.path.exists(tmp_path / "o" / "critic" / "value_head.safetensors")
        assert os.path.exists(tmp_path / "o" / "critic" / "model.safetensors") == (critic == "separate")


def test_reward_rises_vlm(tmp_path):
    m = read_metrics(run("tiny/vlm_ppo", ["model.init_from=null", TOY, "train.max_steps=16", "train.lr=3e-2",
                                          "rl.beta=0", "ppo.critic_warmup_steps=0", "train.batch_size=4",
                                          "train.micro_batch_size=8", "rl.num_generations=2", "ppo.mini_batch_size=8",
                                          "ppo.ppo_epochs=1", "ppo.rollout_prompts_per_call=1",
                                          "rl.max_completion_length=16", "train.progress=false",
                                          f"output_dir={tmp_path / 'v'}"]))
    assert m["rl"]["vlm"] and m["rl"]["critic"] == "separate"
    r = m["series"]["reward"]
    assert _avg(r, False, 4) > _avg(r, True, 4) + 0.2, r


def test_critic_warmup_only_the_critic_learns(tmp_path, sft_text):
    """From the SFT model with the rule reward: during warm-up the value loss falls and the actor stays put."""
    m = read_metrics(run("tiny/ppo", [f"model.name={sft_text}", "model.init_from=null", "train.max_steps=5",
                                      "ppo.critic_warmup_steps=5", "ppo.critic_lr=1e-2", *SMALL,
                                      "rl.max_completion_length=32", f"output_dir={tmp_path / 'w'}"]))
    v = [x for _, x in m["series"]["value_loss"]]
    assert v[-1] < v[0] and min(v[1:]) < 0.7 * v[0], v
    a, b = load_file(f"{sft_text}/model.safetensors"), load_file(str(tmp_path / "w" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the logged loss is the critic's alone (vf_coef x value loss) while the actor is frozen
    assert [x for _, x in m["series"]["loss"]] == pytest.approx([0.5 * x for x in v])
    assert m["rl"]["init"] == sft_text


RESUME = ["train.max_steps=6", "train.save_steps=2", "train.save_total_limit=3", "ppo.critic_warmup_steps=1",
          TOY, "model.init_from=null", *SMALL]


def test_kill_and_resume_matches_uninterrupted(tmp_path):
    full = train_proc(tmp_path / "full", "tiny/ppo", RESUME)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mmredstar.training", "tiny/ppo", f"output_dir={out}", *RESUME]
    p = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while not (out / "checkpoint-2" / "trainer_state.json").exists():
            assert p.poll() is None, f"training exited early: {p.stderr.read().decode()[-2000:]}"
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.01)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL
    assert not (out / "metrics.json").exists(), "the run finished before the kill: the test proves nothing"
    ckpt = last_checkpoint(str(out))
    assert ckpt is not None and int(ckpt.rsplit("-", 1)[1]) < 6
    resumed = train_proc(out, "tiny/ppo", RESUME + ["--resume"])
    assert resumed["resumed_from"] == ckpt and resumed["steps"] == 6
    for f in ("model.safetensors", "critic/value_head.safetensors"):
        a, b = load_file(str(tmp_path / "full" / f)), load_file(str(out / f))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (f, k)
    assert resumed["series"]["reward"] == full["series"]["reward"]


TOL = 1e-4  # reward series equal; losses and final weights within 1e-4 (float sums in another order)


@pytest.mark.distributed
def test_two_processes_match_one(tmp_path):
    over = ["train.max_steps=3", TOY, "model.init_from=null", "train.lr=1e-2", "ppo.critic_warmup_steps=1",
            "ppo.rollout_prompts_per_call=1", "train.batch_size=8", "train.micro_batch_size=4", "rl.num_generations=2",
            "ppo.mini_batch_size=8", "rl.max_completion_length=16"]
    one = train_proc(tmp_path / "one", "tiny/ppo", over)
    two = train_proc(tmp_path / "two", "tiny/ppo", over, nproc=2)
    assert two["world_size"] == 2
    assert [v for _, v in two["series"]["reward"]] == [v for _, v in one["series"]["reward"]]
    for key in ("loss", "value_loss", "kl"):
        for (_, a), (_, b) in zip(one["series"][key], two["series"][key], strict=True):
            assert abs(a - b) < TOL, (key, one["series"][key], two["series"][key])
    a, b = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < TOL


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("zero", ["zero2", "zero3"])
def test_deepspeed_two_processes_match_one(tmp_path, zero):
    """Actor and critic under DeepSpeed ZeRO-2 / ZeRO-3 (one engine, two parameter groups), 2 gloo processes."""
    over = ["train.max_steps=3", TOY, "model.init_from=null", "train.lr=1e-2", "ppo.critic_warmup_steps=1",
            "ppo.rollout_prompts_per_call=1", "train.batch_size=8", "train.micro_batch_size=4", "rl.num_generations=2",
            "ppo.mini_batch_size=8", "rl.max_completion_length=16"]
    one = train_proc(tmp_path / "one", "tiny/ppo", over)
    ds = train_proc(tmp_path / zero, "tiny/ppo", over + [f"train.deepspeed={zero}"], nproc=2)
    assert [v for _, v in ds["series"]["reward"]] == [v for _, v in one["series"]["reward"]]
    for key in ("loss", "value_loss"):
        assert max(abs(a - b) for (_, a), (_, b) in zip(one["series"][key], ds["series"][key], strict=True)) < TOL
    a, b = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / zero / "model.safetensors"))
    assert a.keys() == b.keys() and max(float((a[k] - b[k]).abs().max()) for k in a) < TOL


TINY_RL = ["tiny/grpo", "tiny/reinforce_pp", "tiny/ppo", "tiny/vlm_grpo", "tiny/vlm_ppo"]


@pytest.mark.slow
def test_every_tiny_rl_recipe_raises_the_rule_reward(tmp_path, monkeypatch):
    """Each shipped tiny RL recipe, as it is: its SFT checkpoint is built on demand (runs/tiny/sft, vlm_sft
    under a fresh working directory), and metrics.json shows the mean rule reward rising."""
    monkeypatch.chdir(tmp_path)
    for name in TINY_RL:
        t0 = time.time()
        m = read_metrics(run(name))
        print(f"[figures] {name}: first_reward {m['first_reward']:.3f} last_reward {m['last_reward']:.3f} "
              f"runtime_s {m.get('runtime_s')} wall_s {time.time() - t0:.0f} (includes building its SFT model if missing)")
        assert m["rl"]["init"].endswith(("runs/tiny/sft", "runs/tiny/vlm_sft")), m["rl"]
        assert m["last_reward"] > m["first_reward"], (name, m["series"]["reward"])
    assert (tmp_path / "runs" / "tiny" / "sft" / "model.safetensors").exists()
