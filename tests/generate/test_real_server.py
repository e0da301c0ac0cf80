"""The OpenAI-compatible teacher, curation and evaluation against a real server: ``transformers serve``
serving the real SmolLM2-135M-Instruct (the session-scoped ``real_server`` fixture in tests/conftest.py).

transformers serve ignores ``n`` (it answers one choice), so the teacher's one-request-per-missing-sample
path runs for real. Replies are short (``max_tokens`` 24-40) to keep each test within seconds on a CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmredstar.cli import cli
from mmredstar.generate import SamplingParams, build_teacher
from mmredstar.io import read_samples, validate_file, write_samples
from mmredstar.schema import Sample
from mmredstar.synth.arithmetic import arithmetic_problems


def _teacher(server, **kw):
    return build_teacher({"kind": "openai", "base_url": server.url, "model": server.model, "api_key_env": None,
                          "concurrency": 2, "max_retries": 2, "backoff": 0.1, **kw})


def test_teacher_talks_to_transformers_serve(real_server):
    t = _teacher(real_server)
    samples = [Sample.text("What is 3 + 4? Answer with the number only.", "7", "numeric"),
               Sample.text("What is the capital of France?", "Paris", "text")]
    out = t.generate(samples, [3, 1], SamplingParams(temperature=0.7, max_tokens=24, seed=0))
    assert [len(rs) for rs in out] == [3, 1]
    for rs in out:
        for r in rs:
            assert r.text.strip() and r.finish_reason in ("stop", "length")
            assert r.prompt_tokens and r.prompt_tokens > 5
            assert r.completion_tokens and 0 < r.completion_tokens <= 24   # one choice per request: exact counts
            assert r.gen["teacher"] == "openai" and r.gen["model"] == real_server.model
    assert [r.gen["index"] for r in out[0]] == [0, 1, 2]
    c = t.counters
    assert c.get("short_n") == 1 and c["requests_ok"] == 4                  # n ignored -> the rest one by one
    [[greedy]] = t.generate(samples[1:], [1], SamplingParams(temperature=0.0, max_tokens=24, seed=0))
    assert "Paris" in greedy.text, greedy.text                              # a real model answering


@pytest.mark.slow  # ~40 s on the shared 2-core box
def test_curation_against_transformers_serve(tmp_path, real_server):
    """Difficulty-scaled n (level 1 -> 1 sample, level 2 -> 2), filters and verification, end to end."""
    src = tmp_path / "arith.jsonl"
    write_samples(src, arithmetic_problems(4, seed=3, levels=(1, 2)))
    cfg = {"out": str(tmp_path / "cur"), "inputs": [{"path": str(src)}],
           "difficulty": {"source": "labels"}, "schedule": {"1-2": 1, "3-10": 2}, "default_n": 1,
           "teacher": {"kind": "openai", "base_url": real_server.url, "model": real_server.model,
                       "api_key_env": None, "concurrency": 2,
                       "system": "Solve the problem. End with the final answer in \\boxed{}."},
           "sampling": {"temperature": 0.7, "max_tokens": 24, "seed": 0},
           "filters": ["repetition", "answer_format"], "unit_size": 2,
           "select": {"rl": {"min_responses": 2}}}
    from mmredstar.curate import run

    res = run(cfg, progress=False)
    out = tmp_path / "cur"
    rep = json.loads((out / "report.json").read_text())
    c = rep["counts"]
    assert c["prompts"] == 4 and c["responses"] == 2 * 1 + 2 * 2
    assert c["sft"] + c["rejected"] == c["responses"]
    for f in ("sft", "dpo", "rl", "rejected"):
        assert validate_file(out / f"{f}.jsonl")[1] == []
    kept = list(read_samples(out / "sft.jsonl")) + list(read_samples(out / "rejected.jsonl"))
    assert len(kept) == 6
    for s in kept:
        r = s.responses[0]
        assert r.gen["n"] == (1 if s.difficulty == 1 else 2) and r.gen["model"] == real_server.model
        assert r.text
        if r.meta.get("stage") == "filter":                                 # filtered before verification
            assert r.verdict is None and r.reason.split(":")[1].strip() in ("repetition", "answer_format")
        else:                                                               # verified: the rule reward
            assert r.verdict in ("correct", "wrong", "no_answer") and r.reward in (1, 0, -1)
            assert (r.reward == 1) == (r.verdict == "correct")
    assert all(s.responses[0].verdict == "correct" for s in read_samples(out / "sft.jsonl"))
    assert all(s.responses[0].reason for s in read_samples(out / "rejected.jsonl"))
    assert res.run["units"]["teacher_queried"] == 2


@pytest.mark.slow  # ~30 s on the shared 2-core box
def test_eval_run_openai_backend_against_transformers_serve(tmp_path, real_server):
    data = tmp_path / "items.jsonl"
    write_samples(data, arithmetic_problems(2, seed=1, levels=(1,), split="test"))
    r = CliRunner().invoke(cli, ["eval", "run", "--model", real_server.model, "--bench", "math500", "--data", str(data),
                                 "--backend", "openai", "--backend-opt", f"base_url={real_server.url}",
                                 "--backend-opt", "api_key_env=", "--backend-opt", "concurrency=2",
                                 "--n", "2", "--set", "max_new_tokens=24", "--set", "temperature=0.7",
                                 "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    [res] = rep["results"]
    assert res["n_items"] == 2 and res["backend"] == "openai" and 0.0 <= res["pass@1"] <= 1.0
    items = [json.loads(x) for x in next(Path(tmp_path / "ev").rglob("samples.jsonl")).read_text().splitlines()]
    assert len(items) == 2
    assert all(len(i["responses"]) == 2 for i in items), items[0].keys()


def test_failover_from_a_dying_server_to_transformers_serve(real_server, start_server):
    """Two endpoints serving the same model name: our test server (killed mid-run) and the real server,
    which then answers everything left."""
    import threading
    import time

    fake = start_server("--model", real_server.model, "--delay", "0.3")
    t = _teacher(real_server, base_url=[fake.url, real_server.url], n_per_request=False, max_retries=1)
    samples = [Sample.text(f"What is {a} + {a}?", str(2 * a), "numeric") for a in range(1, 7)]
    box = {}
    th = threading.Thread(target=lambda: box.setdefault(
        "out", t.generate(samples, [1] * len(samples), SamplingParams(temperature=0.0, max_tokens=12, seed=0))))
    th.start()
    deadline = time.time() + 60
    while not fake.requests() and time.time() < deadline:
        time.sleep(0.05)
    fake.stop()
    th.join(300)
    out = box["out"]
    assert [len(rs) for rs in out] == [1] * 6 and all(r.text for rs in out for r in rs)
    st = t.stats()
    on_fake, on_real = st["endpoints"].values()
    assert on_fake >= 1 and on_real >= 4 and on_fake + on_real == 6 and st["failovers"] >= 1
