"""``mmredstar eval run`` end to end on CPU: tiny_vlm and tiny_text through the local transformers backend,
resumability (a rerun generates nothing new; a torn last line is redone), settings changes, the scripted and
OpenAI-compatible (a real local server process) backends, blank images, the report.

    .venv/bin/python -m pytest -q tests/evaluation/test_runner.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from mmredstar.evaluation.runner import ModelEntry, blank_images, evaluate, parse_models, read_items
from mmredstar.evaluation.spec import load_bench_samples, load_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = {"max_new_tokens": 8}
BACKEND = {"threads": 2, "batch_size": 8}


def _lines(path):
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def test_tiny_vlm_eval_run_and_resume(tmp_path, polygons):
    out = tmp_path / "ev"
    rep = evaluate("tiny_vlm", "geoqa", data=polygons, limit=6, spec_overrides=SMALL, out=out,
                   backend_options=BACKEND, progress=False)
    (r,) = rep["results"]
    assert r["n_items"] == 6 and r["n_samples"] == 1 and r["generated_now"] == 6
    assert r["pass@1"] == 0.0 and r["verdicts"] == {"no_answer": 1.0}     # an untrained model names no choice
    assert r["tokens"]["max"] <= 8 and r["chars"]["mean"] is not None
    items = _lines(out / "tiny_vlm" / "geoqa" / "samples.jsonl")
    assert len(items) == 6
    it = items[0]
    assert {"id", "orig_id", "answer", "question", "responses", "correct", "n"} <= set(it)
    assert it["orig_id"] == "0" and 'with "Answer: X"' in it["question"]
    assert {"text", "finish_reason", "completion_tokens", "chars", "extracted", "verdict", "reward", "key"} <= set(
        it["responses"][0])
    # rerun: nothing generated, same numbers
    rep2 = evaluate("tiny_vlm", "geoqa", data=polygons, limit=6, spec_overrides=SMALL, out=out,
                    backend_options=BACKEND, progress=False)
    assert rep2["results"][0]["generated_now"] == 0 and rep2["results"][0]["pass@1"] == r["pass@1"]
    # a kill mid-write leaves a torn last line: it is dropped and only that item is redone
    f = out / "tiny_vlm" / "geoqa" / "samples.jsonl"
    data = f.read_bytes()
    f.write_bytes(data[:-40])
    assert len(read_items(f, repair=False)) == 5
    rep3 = evaluate("tiny_vlm", "geoqa", data=polygons, limit=6, spec_overrides=SMALL, out=out,
                    backend_options=BACKEND, progress=False)
    assert rep3["results"][0]["generated_now"] == 1 and len(_lines(f)) == 6
    # a larger limit continues where the smaller one stopped
    rep4 = evaluate("tiny_vlm", "geoqa", data=polygons, limit=8, spec_overrides=SMALL, out=out,
                    backend_options=BACKEND, progress=False)
    assert rep4["results"][0]["generated_now"] == 2 and rep4["results"][0]["n_items"] == 8
    # other settings: a clear error, or --overwrite
    with pytest.raises(RuntimeError, match=r"other settings \(differ in \['max_new_tokens'\]\).*--overwrite"):
        evaluate("tiny_vlm", "geoqa", data=polygons, limit=6, spec_overrides={"max_new_tokens": 9}, out=out,
                 backend_options=BACKEND, progress=False)
    rep5 = evaluate("tiny_vlm", "geoqa", data=polygons, limit=2, spec_overrides={"max_new_tokens": 9}, out=out,
                    backend_options=BACKEND, progress=False, overwrite=True)
    assert rep5["results"][0]["generated_now"] == 2 and len(_lines(f)) == 2


def test_tiny_text_several_models_side_by_side(tmp_path, math_file):
    out = tmp_path / "ev"
    rep = evaluate("a=tiny_text,b=tiny_text", "hs_league24", data=math_file, n=2,
                   spec_overrides={"max_new_tokens": 6, "temperature": 1.0, "metrics": ["pass@1", "pass@2", "maj@2"]},
                   out=out, backend_options={**BACKEND, "init_seed": 3}, progress=False)
    assert rep["models"] == ["a", "b"] and rep["benchmarks"] == ["hs_league24"]
    assert set(rep["table"]["a"]) == {"hs_league24", "AVG"}
    for r in rep["results"]:
        assert r["n_items"] == 3 and r["n_samples"] == 2 and "pass@2" in r and "maj@2" in r
        items = _lines(out / r["label"] / "hs_league24" / "samples.jsonl")
        assert [len(i["responses"]) for i in items] == [2, 2, 2]
        assert items[0]["responses"][0]["text"] != items[0]["responses"][1]["text"]   # sampled at T=1
    md = (out / "report.md").read_text()
    assert "| Model | hs_league24 | AVG |" in md and "| a |" in md and "| b |" in md and "## pass@2 (%)" in md
    assert (out / "report.png").stat().st_size > 1000


def test_scripted_backend_metrics_follow_the_teacher(tmp_path, polygons):
    spec = {"max_new_tokens": 64, "metrics": ["pass@1", "maj@4", "pass@4"]}
    perfect = evaluate("scripted", "geoqa", data=polygons, backend="scripted", n=4, spec_overrides=spec,
                       backend_options={"error_rate": 0.0, "no_answer_rate": 0.0}, out=tmp_path / "a", progress=False)
    r = perfect["results"][0]
    assert r["pass@1"] == 1.0 and r["maj@4"] == 1.0 and r["pass@4"] == 1.0 and r["n_items"] == 12
    noisy = evaluate("scripted", "geoqa", data=polygons, backend="scripted", n=4, spec_overrides=spec,
                     backend_options={"error_rate": 0.5, "no_answer_rate": 0.2}, out=tmp_path / "b", progress=False)
    r = noisy["results"][0]
    items = _lines(tmp_path / "b" / "scripted" / "geoqa" / "samples.jsonl")
    c = [i["correct"] for i in items]
    assert r["pass@1"] == pytest.approx(sum(c) / 48)
    assert r["pass@4"] == pytest.approx(sum(x > 0 for x in c) / 12)
    assert r["pass@1"] < r["pass@4"] and 0 < r["verdicts"]["no_answer"] < 1


def test_openai_backend_against_a_real_server_process(tmp_path, assets):
    from mmredstar.io import write_samples

    qa = assets / "geoqa" / "qa"
    spec = load_spec("geoqa", {"prompt": "{question}", "max_new_tokens": 256, "image_dir": str(qa / "images")})
    samples = load_bench_samples(spec, qa / "test_questions.jsonl")
    sample_file = tmp_path / "served.jsonl"
    write_samples(sample_file, samples)
    port_file, log = tmp_path / "port", tmp_path / "requests.jsonl"
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "openai_server.py"),
                             "--port-file", str(port_file), "--log", str(log), "--samples", str(sample_file),
                             "--error-rate", "0", "--no-answer-rate", "0"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not port_file.exists():
            assert proc.poll() is None and time.time() < deadline, "server did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{int(port_file.read_text())}/v1"
        rep = evaluate("scripted-qwq", [spec], samples={"geoqa": samples}, backend="openai",
                       backend_options={"base_url": url, "api_key_env": None, "concurrency": 4},
                       out=tmp_path / "ev", progress=False)
    finally:
        proc.terminate()
        proc.wait(10)
    r = rep["results"][0]
    assert r["n_items"] == len(samples) >= 2 and r["pass@1"] == 1.0 and r["backend"] == "openai"
    reqs = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(reqs) == len(samples) and all(q["images"] and all(i["ok"] for i in q["images"]) for q in reqs)


def test_blank_images_keep_size_and_id(polygons):
    s = load_bench_samples(load_spec("geoqa"), polygons)[0]
    b = blank_images(s)
    img, orig = b.images[0].load(), s.images[0].load()
    assert img.size == orig.size and img.getextrema() == ((255, 255), (255, 255), (255, 255))
    assert orig.getextrema() != img.getextrema() and b.id == s.id and b.meta["blank_images"]


def test_blank_run_labels(tmp_path, polygons):
    rep = evaluate("scripted", "geoqa", data=polygons, backend="scripted", blank=True, limit=2,
                   out=tmp_path / "ev", progress=False)
    assert rep["models"] == ["scripted-blank"] and rep["results"][0]["blank_images"] is True


def test_parse_models():
    assert [m.label for m in parse_models(["runs/a/sft", {"model": "tiny_vlm", "blank_images": True}])] == [
        "sft", "tiny_vlm-blank"]
    with pytest.raises(ValueError, match="share the label"):
        parse_models("runs/a/sft,runs/b/sft")
    assert ModelEntry("x/y/").label == "y"


def test_eval_cli_run_list_show_report(tmp_path, polygons):
    from click.testing import CliRunner

    from mmredstar.evaluation.cli import eval_group

    run = CliRunner()
    r = run.invoke(eval_group, ["run", "--model", "teacher=scripted", "--bench", "geoqa", "--backend", "scripted",
                                "--backend-opt", "error_rate=0.0", "--backend-opt", "no_answer_rate=0.0",
                                "--data", str(polygons), "--limit", "4", "--set", "max_new_tokens=64",
                                "--out", str(tmp_path / "ev")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "| teacher | 100.0 | 100.0 |" in r.output and (tmp_path / "ev" / "teacher" / "geoqa" / "result.json").exists()
    r = run.invoke(eval_group, ["report", str(tmp_path / "ev"), "--title", "Again"])
    assert r.exit_code == 0 and "# Again" in r.output
    r = run.invoke(eval_group, ["list"])
    assert r.exit_code == 0 and "geometry3k" in r.output and "[--data]" in r.output
    r = run.invoke(eval_group, ["show", "aime24"])
    assert r.exit_code == 0 and json.loads(r.output)["n"] == 8
    r = run.invoke(eval_group, ["run", "--model", "tiny_vlm", "--bench", "geometry3k", "--out", str(tmp_path / "x")])
    assert r.exit_code == 1 and "pass --data PATH" in r.output
