"""The trained difficulty scorer: learns on CPU and beats the constant predictor on held-out items; the
regression head; reloading; resumable scoring (kill -9 and rerun); scores flowing into curation; configs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmredstar.curate.config import ConfigError
from mmredstar.difficulty.cli import difficulty as difficulty_cli
from mmredstar.difficulty.config import load_config
from mmredstar.difficulty.data import labelled_items
from mmredstar.difficulty.model import load_scorer
from mmredstar.difficulty.score import score_file
from mmredstar.io import read_jsonl, read_samples
from mmredstar.levels import band as _band
from mmredstar.synth.arithmetic import write_problems


def band(d):
    return _band(d, clip=True)


REPO = Path(__file__).resolve().parents[2]


def test_tiny_scorer_learns_and_beats_the_constant_predictor(tiny_scorer):
    out, rep = tiny_scorer
    m, c = rep["model"], rep["constant"]
    assert rep["n_eval"] >= 150 and rep["n_train"] >= 800
    assert m["exact"] >= c["exact"] + 0.3 and m["within_1"] > c["within_1"] and m["mae"] < c["mae"]
    assert m["spearman"] > 0.8 and c["spearman"] is None
    assert all(rep["beats_constant"].values())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["last_loss"] < 0.5 * metrics["first_loss"] and metrics["steps"] == 60
    assert metrics["weights_moved"]["backbone"] > 0 and metrics["weights_moved"]["head"] > 0
    info = json.loads((out / "scorer.json").read_text())
    assert info["head"] == "classification" and info["num_labels"] == 10 and len(info["weights_sha256"]) == 64
    preds = list(read_jsonl(out / "predictions.jsonl"))
    assert len(preds) == rep["n_eval"]
    assert sum(band(p["prediction"]) == band(p["label"]) for p in preds) / len(preds) == pytest.approx(m["exact"])
    assert (out / "confusion.png").stat().st_size > 0 and (out / "eval.json").exists()
    # the rerun of the same config does nothing
    from mmredstar.difficulty.train import train

    before = (out / "model.safetensors").stat().st_mtime_ns
    assert train("configs/difficulty/tiny.yaml", {"out": str(out), "train.max_steps": 60}) == rep
    assert (out / "model.safetensors").stat().st_mtime_ns == before


def test_reloaded_scorer_predicts_what_training_reported(tiny_scorer):
    out, _ = tiny_scorer
    preds = {p["id"]: p for p in read_jsonl(out / "predictions.jsonl")}
    cfg = load_config("configs/difficulty/tiny.yaml")
    items = [it for it in labelled_items(cfg.inputs) if it.id in preds][:40]
    got = load_scorer(out, device="cpu").predict([it.text for it in items], batch_size=7)
    assert [g for g, _ in got] == [preds[it.id]["prediction"] for it in items]
    assert all(1 <= meta["difficulty_expected"] <= 10 for _, meta in got)


def test_regression_head(tmp_path):
    from mmredstar.difficulty.train import train

    rep = train("configs/difficulty/tiny.yaml", {"out": str(tmp_path / "reg"), "head": "regression",
                                                 "train.max_steps": 60, "train.lr": 5.0e-3})
    assert rep["head"] == "regression"
    assert rep["model"]["mae"] < 0.6 * rep["constant"]["mae"] and rep["model"]["spearman"] > 0.8
    assert rep["model"]["within_1"] > rep["constant"]["within_1"]


def test_score_file_writes_difficulty_and_resumes(tiny_scorer, tmp_path):
    out, _ = tiny_scorer
    src = write_problems(str(tmp_path / "p.jsonl"), 120, seed=9)
    s = score_file(str(out), src, tmp_path / "scored.jsonl", chunk_size=50, progress=False, num_threads=1)
    assert s["records"] == 120 and s["scored_now"] == 120 and sum(s["bands"].values()) == 120
    rows = list(read_samples(tmp_path / "scored.jsonl"))
    assert [r.id for r in rows] == [r.id for r in read_samples(src)]
    assert all(r.meta["difficulty_source"] == "trained" and r.meta["difficulty_model"] == str(out) for r in rows)
    assert all("difficulty_label" in r.meta for r in rows)     # the card label is kept
    agree = sum(band(r.difficulty) == band(r.meta["difficulty_label"]) for r in rows) / len(rows)
    assert agree > 0.6
    assert not (tmp_path / "scored.jsonl.parts").exists()
    again = score_file(str(out), src, tmp_path / "scored.jsonl", progress=False)
    assert again["up_to_date"]
    # other inputs under the same OUT: a clear error unless overwrite
    src2 = write_problems(str(tmp_path / "q.jsonl"), 10, seed=10)
    with pytest.raises(RuntimeError, match="--overwrite"):
        score_file(str(out), src2, tmp_path / "scored.jsonl", progress=False)
    assert score_file(str(out), src2, tmp_path / "scored.jsonl", progress=False, overwrite=True)["records"] == 10
    with pytest.raises(ValueError, match="not a difficulty scorer"):
        score_file(str(tmp_path), src, tmp_path / "x.jsonl", progress=False)


def test_score_survives_kill_9_and_resumes(tiny_scorer, tmp_path):
    """A real `mmredstar difficulty score` process killed mid-way: the rerun keeps the finished chunks and writes
    the same file an uninterrupted run writes."""
    out, _ = tiny_scorer
    src = write_problems(str(tmp_path / "p.jsonl"), 3000, seed=4)
    cmd = [sys.executable, "-m", "mmredstar.cli", "difficulty", "score", "--model", str(out), src, "--chunk-size", "50",
           "--batch-size", "50", "--threads", "1", "--quiet"]
    parts = tmp_path / "killed.jsonl.parts"
    p = subprocess.Popen(cmd + ["--out", str(tmp_path / "killed.jsonl")], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("chunk-*.jsonl"))) < 2 and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    done = len(list(parts.glob("chunk-*.jsonl")))
    assert 2 <= done < 60 and not (tmp_path / "killed.jsonl").exists()
    assert not list(parts.glob("*.tmp*"))        # atomic chunks: no half-written file under a final name
    r = subprocess.run(cmd + ["--out", str(tmp_path / "killed.jsonl")], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{3000 - 50 * done} sample(s), {50 * done} from earlier chunks" in r.stdout
    ref = score_file(str(out), src, tmp_path / "ref.jsonl", chunk_size=50, batch_size=50, progress=False)
    assert ref["scored_now"] == 3000
    assert (tmp_path / "killed.jsonl").read_text().replace("killed.jsonl", "") == \
        (tmp_path / "ref.jsonl").read_text().replace("ref.jsonl", "")


def test_trained_source_in_curation(tiny_scorer, tmp_path):
    """`difficulty: {source: trained}` scores the prompts; the range keeps the hard ones; results are cached."""
    from mmredstar.curate import run

    out, _ = tiny_scorer
    src = write_problems(str(tmp_path / "p.jsonl"), 60, seed=2)
    conf = {"out": str(tmp_path / "cur"), "inputs": [{"path": src}],
            "difficulty": {"source": "trained", "params": {"model": str(out), "batch_size": 16}, "range": [7, 9]},
            "schedule": {"1-10": 2}, "teacher": {"kind": "scripted", "error_rate": 0.0, "no_answer_rate": 0.0},
            "sampling": {"max_tokens": 256}, "select": {"dpo": {"enabled": False}, "rl": {"enabled": False}},
            "report": {"plots": False}, "unit_size": 16, "progress": False}
    res = run(conf)
    sft = list(read_samples(Path(res.out) / "sft.jsonl"))
    assert sft and all(7 <= band(s.difficulty) <= 9 for s in sft)
    assert all(s.meta["difficulty_source"] == "trained" for s in sft)
    labels = [s.meta.get("difficulty_label", s.difficulty) for s in sft]   # the generator's label (kept when it differs)
    assert sum(lab >= 7 for lab in labels) / len(labels) > 0.8
    assert res.run["units"]["difficulty_queried"] == 4 and res.run["units"]["difficulty_cached"] == 0
    assert run(conf).run["status"] == "up to date"
    conf["select"] = {**conf["select"], "sft": {"max_per_prompt": 1}}     # a later stage changes: scores are reused
    again = run(conf)
    assert again.run["units"]["difficulty_cached"] == 4 and again.run["units"]["difficulty_queried"] == 0
    with pytest.raises(ConfigError, match="holds no trained scorer"):
        run({**conf, "difficulty": {"source": "trained", "params": {"model": str(tmp_path)}}})


def test_config_errors_name_file_line_and_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model: tiny_text\ninputs:\n  - {builtin: arithmetic}\ntrain:\n  lrr: 1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:5: unknown key 'train\.lrr'; did you mean 'train\.lr'"):
        load_config(p)
    for text, msg in (("inputs: [{builtin: primes}]", "unknown 'primes'"),
                      ("inputs: [{card: math}]", "needs 'src'"),
                      ("inputs: [{path: a.jsonl, map: fancy}]", "unknown map 'fancy'"),
                      ("head: ordinal\ninputs: [{path: a.jsonl}]", "not one of"),
                      ("inputs: []", "no labelled inputs"),
                      ("inputs: [{path: a.jsonl, builtin: arithmetic}]", "exactly one of")):
        p.write_text(text + "\n")
        with pytest.raises(ConfigError, match=msg):
            load_config(p)


def test_paper_config_reads_math_and_omni_math_labels(tmp_path, assets):
    """The paper preset loads; its MATH input maps Level L -> 2L-1 and its inline Omni-MATH card keeps 1-10."""
    omni = tmp_path / "omni.jsonl"
    rows = [{"domain": ["Mathematics -> Algebra"], "difficulty": 6.5, "problem": "Find x if x^2 = 4.", "solution": "...",
             "answer": "2", "source": "imo"}, {"domain": [], "difficulty": 1.0, "problem": "1+1?", "solution": "",
                                               "answer": "2", "source": "amc"}]
    omni.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config("difficulty/qwen2_5_7b_math_omni",
                      {"inputs": [{"card": "math", "src": str(assets / "math" / "MATH" / "test"), "name": "math"},
                                  {**load_config("difficulty/qwen2_5_7b_math_omni").inputs[1].__dict__, "src": str(omni)}]})
    assert cfg.model == "qwen2_5_7b_instruct" and cfg.head == "classification" and cfg.train.deepspeed == "zero3"
    counts: dict = {}
    items = labelled_items(cfg.inputs, cfg.template, counts)
    by = {}
    for it in items:
        by.setdefault(it.source, []).append(it.label)
    assert by["omni_math"] == [6.5, 1.0]
    assert sorted(by["math"]) and set(by["math"]) <= {1.0, 3.0, 5.0, 7.0, 9.0}
    assert counts["omni_math"] == {"read": 2, "labelled": 2, "unlabelled": 0}


def test_cli_score_and_train_errors(tiny_scorer, tmp_path):
    out, _ = tiny_scorer
    src = write_problems(str(tmp_path / "p.jsonl"), 20, seed=1)
    r = CliRunner().invoke(difficulty_cli, ["score", "--model", str(out), src, "--out", str(tmp_path / "o.jsonl"),
                                            "--quiet", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "scored 20 sample(s)" in r.output and "bands:" in r.output
    r = CliRunner().invoke(difficulty_cli, ["train", str(tmp_path / "missing.yaml")])
    assert r.exit_code != 0 and "config not found" in r.output
    r = CliRunner().invoke(difficulty_cli, ["fixture", str(tmp_path / "f.jsonl"), "--n", "15"])
    assert r.exit_code == 0 and len(list(read_jsonl(tmp_path / "f.jsonl"))) == 15
    assert os.path.getsize(tmp_path / "f.jsonl") > 0
