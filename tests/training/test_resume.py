"""Kill-and-resume: a real SIGKILL to a real training process after a checkpoint, then ``--resume``,
ends with exactly the weights of an uninterrupted run (bit-exact on CPU: weights, optimiser, scheduler,
data order and RNG are all restored).

    .venv/bin/python -m pytest -q tests/training/test_resume.py
"""

import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from mmredstar.training.runner import last_checkpoint

from .test_distributed import REPO, _env, train

OVER = ["train.max_steps=30", "train.save_steps=10", "train.save_total_limit=3"]


def test_kill_and_resume_matches_uninterrupted(tmp_path):
    full = train(tmp_path / "full", "tiny/sft", OVER)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mmredstar.training", "tiny/sft", f"output_dir={out}", "train.progress=false", *OVER]
    p = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while not (out / "checkpoint-10" / "trainer_state.json").exists():
            assert p.poll() is None, f"training exited early: {p.stderr.read().decode()[-2000:]}"
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.01)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL
    assert not (out / "metrics.json").exists(), "the run finished before the kill: the test proves nothing"
    ckpt = last_checkpoint(str(out))
    assert ckpt is not None and int(ckpt.rsplit("-", 1)[1]) < 30
    resumed = train(out, "tiny/sft", OVER + ["--resume"])
    assert resumed["resumed_from"] == ckpt and resumed["steps"] == 30
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the loss history is the uninterrupted one (logs before the checkpoint come back with it)
    assert [v for _, v in resumed["series"]["loss"]] == [v for _, v in full["series"]["loss"]]


def test_partial_checkpoint_is_skipped(tmp_path):
    for n in (5, 10):
        d = tmp_path / f"checkpoint-{n}"
        d.mkdir()
        (d / "trainer_state.json").write_text(f'{{"global_step": {n}}}')
    (tmp_path / "checkpoint-15").mkdir()  # killed while writing weights
    (tmp_path / "checkpoint-20").mkdir()
    (tmp_path / "checkpoint-20" / "trainer_state.json").write_text('{"global_st')  # killed mid-write
    assert last_checkpoint(str(tmp_path)).endswith("checkpoint-10")
