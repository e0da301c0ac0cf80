"""Teachers: scripted, replay, OpenAI-compatible (against a real local server process), transformers, vLLM prompts."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from mmredstar.data import iter_card
from mmredstar.generate import SamplingParams, TeacherError, build_teacher, sample_seed
from mmredstar.generate.messages import chat_messages, data_url
from mmredstar.io import write_samples
from mmredstar.schema import ImageRef, Sample
from mmredstar.verify import verify_response

P = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=512, seed=3)


def geoqa_samples(path):
    return list(iter_card("geoqa", str(path), image_dir=str(path.parent / "images")))


# ----------------------------------------------------------------------------------------- scripted
def test_scripted_rates_match_the_verifier_and_are_deterministic(geoqa_dir):
    ss = geoqa_samples(geoqa_dir)
    t = build_teacher({"kind": "scripted", "error_rate": 0.3, "no_answer_rate": 0.2, "pad_to_chars": 600})
    out = t.generate(ss, [20] * len(ss), P)
    assert out == build_teacher({"kind": "scripted", "error_rate": 0.3, "no_answer_rate": 0.2,
                                 "pad_to_chars": 600}).generate(ss, [20] * len(ss), P)
    intended, agree = Counter(), 0
    for s, rs in zip(ss, out, strict=True):
        assert len(rs) == 20
        for j, r in enumerate(rs):
            assert r.gen == {"teacher": "scripted", "model": "scripted", "n": 20, "index": j, "temperature": 0.7,
                             "top_p": 0.9, "max_tokens": 512, "seed": sample_seed(3, s.id, j)}
            assert r.text.startswith("<think>\n") and "</think>" in r.text and len(r.text) >= 600
            v = verify_response(s, r.text, r.finish_reason)
            intended[r.meta["scripted"]] += 1
            agree += v.verdict == r.meta["scripted"]
    total = sum(intended.values())
    assert agree == total                      # what the script meant is what the verifier reads
    assert 0.12 < intended["no_answer"] / total < 0.28
    assert 0.18 < intended["wrong"] / total < 0.40   # 0.3 of what is left after no-answers
    # another seed gives other responses
    assert t.generate(ss[:1], [4], SamplingParams(seed=4))[0] != out[0][:4]


def test_scripted_writes_from_the_reference_cot_and_perturbs_values():
    s = Sample.text("Sum of the interior angles of a pentagon?", "B", "choice", choices=["360°", "540°", "720°", "900°"])
    s.meta["reference_cot"] = "A pentagon splits into 3 triangles.\nSo the sum is 3 x 180° = 540°.\nThe answer is \\boxed{B}."
    m = Sample.text("What is 17 * 3?", "51", "math")
    t = build_teacher({"kind": "scripted", "error_rate": 0.5, "no_answer_rate": 0.2, "think": False})
    seen = Counter()
    for smp, rs in zip([s, m], t.generate([s, m], [40, 40], P), strict=True):
        for r in rs:
            kind = r.meta["scripted"]
            seen[(smp.answer_type, kind)] += 1
            assert verify_response(smp, r.text, r.finish_reason).verdict == kind
            if smp is s:
                if kind == "correct":
                    assert "540°" in r.text and "\\boxed{B}" in r.text and "3 triangles" in r.text
                if kind == "wrong":
                    assert "540°" not in r.text and "\\boxed{B}" not in r.text and "3 triangles" in r.text
            if kind == "no_answer":
                assert "\\boxed" not in r.text
    assert all(seen[(a, k)] > 0 for a in ("choice", "math") for k in ("correct", "wrong", "no_answer"))


def test_scripted_code_from_a_reference_program():
    from mmredstar.schema import CodeTests

    tests = CodeTests(inputs=["1 2\n", "10 -3\n"], outputs=["3\n", "7\n"])
    with_ref = Sample.text("Read a and b, print a + b.", None, "code", tests=tests,
                           meta={"solutions": ["a, b = map(int, input().split())\nprint(a + b)"]})
    without = Sample.text("Read a and b, print a + b (no reference).", None, "code", tests=tests)
    t = build_teacher({"kind": "scripted", "error_rate": 0.3, "no_answer_rate": 0.0})
    a, b = t.generate([with_ref, without], [6, 3], P)
    assert [verify_response(with_ref, r.text).verdict for r in a] == [r.meta["scripted"] for r in a]
    assert "correct" in [r.meta["scripted"] for r in a]
    assert [r.meta["scripted"] for r in b] == ["wrong"] * 3
    assert all(verify_response(without, r.text).verdict == "wrong" for r in b)


def test_scripted_error_rate_by_difficulty_band():
    easy = [Sample.text(f"What is {i} + 1?", str(i + 1), "math", difficulty=2.0) for i in range(30)]
    hard = [Sample.text(f"What is {i} * 7?", str(i * 7), "math", difficulty=9.0) for i in range(30)]
    t = build_teacher({"kind": "scripted", "error_rate": {"1-3": 0.0, "7-10": 0.9}, "no_answer_rate": 0.0})
    out = t.generate(easy + hard, [4] * 60, P)
    wrong = [sum(r.meta["scripted"] == "wrong" for r in rs) for rs in out]
    assert sum(wrong[:30]) == 0 and sum(wrong[30:]) > 0.75 * 120


# ----------------------------------------------------------------------------------------- replay
def test_replay_matches_by_id_and_question_in_released_layouts(tmp_path, geoqa_dir):
    ss = geoqa_samples(geoqa_dir)
    a, b, c, d = ss[:4]
    rows = tmp_path / "released.jsonl"
    with open(rows, "w") as f:
        f.write(json.dumps({"problem": "  " + b.question.upper() + " ", "generations": ["r1 b", "r2 b", "r3 b"],
                            "model": "QwQ-32B"}) + "\n")
        f.write(json.dumps({"id": "zzz", "question": "unrelated", "response": "x"}) + "\n")
    sharegpt = tmp_path / "sharegpt.json"
    sharegpt.write_text(json.dumps([{"conversations": [{"from": "human", "value": "<image>\n" + c.question},
                                                       {"from": "gpt", "value": "sharegpt answer"}]}]))
    messages = tmp_path / "messages.jsonl"
    messages.write_text(json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": d.question}]},
                                                 {"role": "assistant", "content": "messages answer"}]}) + "\n")
    ours = tmp_path / "ours.jsonl"
    a2 = Sample.from_dict(a.to_dict())
    a2.responses = build_teacher({"kind": "scripted"}).generate([a], [2], P)[0]
    write_samples(ours, [a2])
    t = build_teacher({"kind": "replay", "path": [str(rows), str(sharegpt), str(messages), str(ours)]})
    e = ss[4]
    out = t.generate([a, b, c, d, e], [5, 2, 1, 1, 1], P)
    assert [r.text for r in out[0]] == [r.text for r in a2.responses]          # by id (our own files)
    assert [r.text for r in out[1]] == ["r1 b", "r2 b"]                          # by question, first n
    assert out[1][0].gen["model"] == "QwQ-32B" and out[1][1].gen["index"] == 1
    assert out[1][0].meta["replay_from"] == "released.jsonl:1"
    assert out[2][0].text == "sharegpt answer" and out[3][0].text == "messages answer"
    assert out[4] == []
    assert t.stats()["unmatched"] == 1 and t.stats()["short"] == 1 and t.stats()["matched"] == 4


def test_replay_bad_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "q", "response": "r"}\n{not json\n')
    t = build_teacher({"kind": "replay", "path": str(bad)})
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        t.generate([Sample.text("q", "1")], [1], P)


# ----------------------------------------------------------------------------------------- openai server
def _server_args(geoqa_dir, *extra):
    return ("--card", "geoqa", "--src", str(geoqa_dir), "--image-dir", str(geoqa_dir.parent / "images"), *extra)


def test_openai_teacher_against_a_real_server_with_images(geoqa_dir, start_server, monkeypatch):
    srv = start_server(*_server_args(geoqa_dir))
    ss = geoqa_samples(geoqa_dir)
    monkeypatch.setenv("MY_KEY", "sk-test")
    t = build_teacher({"kind": "openai", "base_url": srv.url, "model": "scripted-qwq", "api_key_env": "MY_KEY",
                       "concurrency": 4})
    out = t.generate(ss, [3] * len(ss), P)
    reqs = srv.requests()
    assert len(reqs) == len(ss) and all(r["status"] == 200 and r["n"] == 3 for r in reqs)
    assert all(r["auth"] == "Bearer sk-test" and r["max_tokens"] == 512 and r["temperature"] == 0.7 for r in reqs)
    assert all(len(r["images"]) == 1 and r["images"][0]["ok"] and r["images"][0]["mime"] == "image/png"
               and r["images"][0]["format"] == "PNG" for r in reqs)
    assert sorted(r["seed"] for r in reqs) == sorted(sample_seed(3, s.id) for s in ss)
    verdicts = Counter()
    for s, rs in zip(ss, out, strict=True):
        assert [r.gen["index"] for r in rs] == [0, 1, 2]
        for r in rs:
            assert r.finish_reason == "stop" and r.prompt_tokens > 0 and r.completion_tokens is None
            assert r.meta["usage"]["completion_tokens"] > 0 and r.gen["model"] == "scripted-qwq"
            verdicts[verify_response(s, r.text, r.finish_reason).verdict] += 1
    assert verdicts["correct"] > 0 and verdicts["wrong"] > 0
    assert t.stats()["requests_ok"] == len(ss)


def test_openai_retries_500_and_429_then_succeeds(geoqa_dir, start_server):
    srv = start_server(*_server_args(geoqa_dir, "--fail-first", "3"))
    ss = geoqa_samples(geoqa_dir)[:4]
    t = build_teacher({"kind": "openai", "base_url": srv.url, "model": "scripted-qwq", "backoff": 0.01})
    out = t.generate(ss, [2] * 4, P)
    assert all(len(rs) == 2 for rs in out)
    st = [r["status"] for r in srv.requests()]
    assert Counter(st) == {500: 8, 429: 4, 200: 4}
    assert t.stats()["retries"] == 12
    # too many failures: a clear error, not a hang
    srv2 = start_server(*_server_args(geoqa_dir, "--fail-first", "10"))
    t2 = build_teacher({"kind": "openai", "base_url": srv2.url, "model": "scripted-qwq", "backoff": 0.01, "max_retries": 2})
    with pytest.raises(TeacherError, match="gave up after 2 retries"):
        t2.generate(ss[:1], [1], P)


def test_openai_timeout_is_retried(geoqa_dir, start_server):
    srv = start_server(*_server_args(geoqa_dir, "--slow-first", "1", "--slow-seconds", "6"))
    ss = geoqa_samples(geoqa_dir)[:2]
    t = build_teacher({"kind": "openai", "base_url": srv.url, "model": "scripted-qwq", "timeout": 2.0, "backoff": 0.01})
    out = t.generate(ss, [1, 1], P)
    assert [len(rs) for rs in out] == [1, 1] and out[0][0].completion_tokens > 0
    assert t.stats()["timeouts"] >= 2 and t.stats()["requests_ok"] == 2


def test_openai_falls_back_when_n_is_refused_or_short(geoqa_dir, start_server):
    ss = geoqa_samples(geoqa_dir)[:3]
    srv = start_server(*_server_args(geoqa_dir, "--refuse-n"))
    t = build_teacher({"kind": "openai", "base_url": srv.url, "model": "scripted-qwq", "concurrency": 1})
    out = t.generate(ss, [3, 3, 3], P)
    assert [len(rs) for rs in out] == [3, 3, 3]
    reqs = srv.requests()
    assert Counter(r["status"] for r in reqs) == {400: 1, 200: 9}     # refused once, then n=1 requests only
    assert {r["seed"] for r in reqs if r["status"] == 200} == {sample_seed(3, s.id, j) for s in ss for j in range(3)}
    assert all(r.completion_tokens > 0 for rs in out for r in rs)
    srv2 = start_server(*_server_args(geoqa_dir, "--max-n", "2"))
    t2 = build_teacher({"kind": "openai", "base_url": srv2.url, "model": "scripted-qwq"})
    out2 = t2.generate(ss[:1], [5], P)
    assert len(out2[0]) == 5 and [r.gen["index"] for r in out2[0]] == [0, 1, 2, 3, 4]
    assert [r["n"] for r in srv2.requests()] == [5, 1, 1, 1]


def test_openai_joins_reasoning_content_and_rejects_unknown_model(geoqa_dir, start_server):
    ss = geoqa_samples(geoqa_dir)[:2]
    plain = start_server(*_server_args(geoqa_dir))
    split = start_server(*_server_args(geoqa_dir, "--reasoning"))
    a = build_teacher({"kind": "openai", "base_url": plain.url, "model": "scripted-qwq"}).generate(ss, [2, 2], P)
    b = build_teacher({"kind": "openai", "base_url": split.url, "model": "scripted-qwq"}).generate(ss, [2, 2], P)
    assert [[r.text for r in rs] for rs in a] == [[r.text for r in rs] for rs in b]
    with pytest.raises(TeacherError, match="refused"):
        build_teacher({"kind": "openai", "base_url": plain.url, "model": "nope"}).generate(ss[:1], [1], P)


def test_connection_refused_is_a_clear_error():
    t = build_teacher({"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "max_retries": 1,
                       "backoff": 0.01})
    with pytest.raises(TeacherError, match="gave up"):
        t.generate([Sample.text("q", "1")], [1], P)


def test_chat_messages_data_urls(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.png")
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "b.bmp")
    s = Sample.with_images("Compare the images.", [ImageRef(path="a.png", root=str(tmp_path)),
                                                   ImageRef(path="b.bmp", root=str(tmp_path))], "A", "text")
    msgs = chat_messages(s, system="sys")
    assert msgs[0] == {"role": "system", "content": "sys"}
    parts = msgs[1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")   # BMP re-encoded as PNG
    assert data_url(s.images[0]) == parts[0]["image_url"]["url"]


# ----------------------------------------------------------------------------------------- transformers
@pytest.mark.parametrize("preset", ["tiny_text", "tiny_vlm"])
def test_transformers_teacher_on_tiny_presets(preset, geoqa_dir):
    import torch

    torch.set_num_threads(2)
    ss = geoqa_samples(geoqa_dir)[:3] if preset == "tiny_vlm" else [Sample.text("What is 2+3?", "5"),
                                                                      Sample.text("What is 7-4?", "3")]
    t = build_teacher({"kind": "transformers", "model": preset, "batch_size": 4})
    params = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=12, seed=0)
    n = [2, 1, 3][:len(ss)]
    out = t.generate(ss, n, params)
    assert [len(rs) for rs in out] == n
    for rs, k in zip(out, n, strict=True):
        for j, r in enumerate(rs):
            assert isinstance(r.text, str) and r.finish_reason in ("stop", "length")
            assert 0 < r.completion_tokens <= 12 and r.prompt_tokens > 0
            assert r.gen == {"teacher": "transformers", "model": preset, "n": k, "index": j, "temperature": 1.0,
                             "top_p": 1.0, "max_tokens": 12, "seed": 0}
    assert out == t.generate(ss, n, params)    # same unit, same seed: same responses


# ----------------------------------------------------------------------------------------- vllm
def test_vllm_prompts_render_with_a_real_chat_template(geoqa_dir):
    from mmredstar.generate.vllm import VLLMConfig, build_vllm_input
    from mmredstar.modeling.tokenizer import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    s = geoqa_samples(geoqa_dir)[0]
    d = build_vllm_input(s, tok, VLLMConfig(model="m", system="Think."))
    assert d["prompt"].count("<image>") == 1 and s.question.split("\n")[0] in d["prompt"]
    assert d["prompt"].startswith("<|im_start|>system\nThink.") and d["prompt"].rstrip().endswith("<|im_start|>assistant")
    assert d["multi_modal_data"]["image"].size == (64, 64)
    d2 = build_vllm_input(s, tok, VLLMConfig(model="m", image_placeholder="<IMG>"))
    assert "<IMG>" in d2["prompt"] and "<image>" not in d2["prompt"]
    d3 = build_vllm_input(Sample.text("2+2?", "4"), tok, VLLMConfig(model="m"))
    assert "multi_modal_data" not in d3 and "2+2?" in d3["prompt"]


def test_vllm_teacher_without_vllm_says_how_to_get_it():
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    t = build_teacher({"kind": "vllm", "model": "Qwen/QwQ-32B"})
    with pytest.raises(ImportError, match=r"mmredstar\[vllm\]"):
        t._engine()


def test_unknown_teacher_kind_suggests():
    with pytest.raises(ValueError, match="did you mean 'openai'"):
        build_teacher({"kind": "opneai"})
    with pytest.raises(ValueError, match="unknown key 'concurency'"):
        build_teacher({"kind": "openai", "concurency": 3})


# ----------------------------------------------------------------------------------------- several endpoints
def test_openai_spreads_requests_over_several_base_urls(geoqa_dir, start_server):
    a, b = start_server(*_server_args(geoqa_dir)), start_server(*_server_args(geoqa_dir))
    ss = geoqa_samples(geoqa_dir)
    t = build_teacher({"kind": "openai", "base_url": f"{a.url}, {b.url}", "model": "scripted-qwq", "concurrency": 4})
    out = t.generate(ss, [2] * len(ss), P)
    ref = build_teacher({"kind": "openai", "base_url": a.url, "model": "scripted-qwq"}).generate(ss, [2] * len(ss), P)
    assert [[r.text for r in rs] for rs in out] == [[r.text for r in rs] for rs in ref]   # same answers
    na, nb = len(a.requests()) - len(ss), len(b.requests())   # `ref` sent len(ss) more to a
    assert na + nb == len(ss) and abs(na - nb) <= 1                                   # round-robin
    assert t.stats()["endpoints"] == {a.url + "/chat/completions": na, b.url + "/chat/completions": nb}
    assert build_teacher({"kind": "openai", "base_url": [a.url, b.url], "model": "m"}).urls == \
        build_teacher({"kind": "openai", "base_url": f"{a.url},{b.url}", "model": "m"}).urls
    # the address is not part of the cache key: moving to more servers keeps finished units valid
    assert t.fingerprint() == build_teacher({"kind": "openai", "base_url": a.url, "model": "scripted-qwq",
                                             "concurrency": 4}).fingerprint()


def test_openai_fails_over_when_a_server_dies_mid_run(geoqa_dir, start_server):
    import threading

    a = start_server(*_server_args(geoqa_dir, "--delay", "0.2"))
    b = start_server(*_server_args(geoqa_dir, "--delay", "0.2"))
    ss = geoqa_samples(geoqa_dir)
    t = build_teacher({"kind": "openai", "base_url": [a.url, b.url], "model": "scripted-qwq", "concurrency": 2,
                       "n_per_request": False, "max_retries": 1, "backoff": 0.01})
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("out", t.generate(ss, [3] * len(ss), P)))
    th.start()
    deadline = time.time() + 30
    while len(a.requests()) < 3 and time.time() < deadline:
        time.sleep(0.05)
    a.stop()                                              # killed with requests still to come
    th.join(120)
    out = box["out"]
    assert [len(rs) for rs in out] == [3] * len(ss)
    assert all(r.text for rs in out for r in rs)
    st = t.stats()
    assert st["failovers"] >= 1 and st["requests_ok"] == 3 * len(ss)
    served_a, served_b = st["endpoints"].values()
    assert served_a >= 3 and served_b > served_a          # b took over the rest
    assert "retries" not in st                            # failing over is not a retry


def test_openai_all_endpoints_down_is_a_clear_error():
    t = build_teacher({"kind": "openai", "base_url": ["http://127.0.0.1:9/v1", "http://127.0.0.1:7/v1"],
                       "model": "m", "max_retries": 1, "backoff": 0.01})
    with pytest.raises(TeacherError, match=r"gave up after 1 retries.*127\.0\.0\.1:(9|7)"):
        t.generate([Sample.text("q", "1")], [1], P)
    with pytest.raises(TeacherError, match="'base_url' is empty"):
        build_teacher({"kind": "openai", "base_url": " , ", "model": "m"})
