"""What a training run may do with an output directory that already holds something: a resume of a finished
run changes nothing, a checkpoint at max_steps is not trained past, a resume under another recipe is refused
(naming the keys), a rerun without --resume is refused unless --overwrite, and one run at a time holds the lock.

    .venv/bin/python -m pytest -q tests/training/test_run_dir.py
"""

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from mmredstar.io import dir_lock
from mmredstar.stages import sha256_file
from mmredstar.training import run
from mmredstar.training.runner import read_metrics

from .test_distributed import REPO, _env

OVER = ["train.max_steps=4", "train.save_steps=2", "train.save_total_limit=3", "train.progress=false"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("rundir") / "sft")
    run("tiny/sft", [f"output_dir={out}", *OVER])
    return out


def _ckpts(out):
    return sorted(n for n in os.listdir(out) if n.startswith("checkpoint-"))


def test_resume_of_finished_run_changes_nothing(finished, capsys):
    before = sha256_file(os.path.join(finished, "model.safetensors"))
    assert run("tiny/sft", [f"output_dir={finished}", "train.resume=true", *OVER]) == finished
    assert "already finished" in capsys.readouterr().out
    assert sha256_file(os.path.join(finished, "model.safetensors")) == before
    assert _ckpts(finished) == ["checkpoint-2", "checkpoint-4"]


def test_resume_with_changed_recipe_is_refused(finished):
    with pytest.raises(ValueError, match=r"train.lr: 0.003 -> 0.1.*train.max_steps: 4 -> 8.*resume_changes=true"):
        run("tiny/sft", [f"output_dir={finished}", "train.resume=true", *OVER, "train.lr=0.1", "train.max_steps=8"])
    with open(os.path.join(finished, "recipe.resolved.yaml"), encoding="utf-8") as f:
        assert "max_steps: 4" in f.read()  # the record of the run is untouched


def test_rerun_without_resume_is_refused(finished):
    with pytest.raises(ValueError, match="holds a finished run.*--resume.*--overwrite"):
        run("tiny/sft", [f"output_dir={finished}", *OVER])


def test_checkpoint_at_max_steps_is_saved_not_trained_past(finished, tmp_path):
    import shutil

    out = str(tmp_path / "killed")
    shutil.copytree(finished, out)
    for n in ("metrics.json", "model.safetensors"):  # as if killed between the last checkpoint and the final save
        os.unlink(os.path.join(out, n))
    run("tiny/sft", [f"output_dir={out}", "train.resume=true", *OVER])
    assert _ckpts(out) == ["checkpoint-2", "checkpoint-4"]  # no checkpoint-5
    m = read_metrics(out)
    assert m["steps"] == 4 and m["resumed_from"].endswith("checkpoint-4")
    a, b = load_file(os.path.join(out, "checkpoint-4", "model.safetensors")), load_file(os.path.join(out, "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(m["series"]["loss"]) == 4  # the loss history came back with the checkpoint


def test_overwrite_removes_old_checkpoints(finished, tmp_path):
    import shutil

    out = str(tmp_path / "again")
    shutil.copytree(finished, out)
    run("tiny/sft", [f"output_dir={out}", "train.overwrite=true", *OVER, "train.save_steps=0"])
    assert _ckpts(out) == [] and read_metrics(out)["steps"] == 4


def test_second_run_on_a_locked_dir_is_refused(tmp_path):
    out = tmp_path / "busy"
    with dir_lock(out, "train"):  # another process's run holds it
        p = subprocess.run([sys.executable, "-m", "mmredstar.training", "tiny/sft", f"output_dir={out}", *OVER],
                           cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and f"error: {out}: another train run is using this output directory" in p.stderr
    assert not (out / "recipe.resolved.yaml").exists()
