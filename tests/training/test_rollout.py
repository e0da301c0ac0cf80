"""Rollout backends (``training/rollout.py``) on CPU: the hf path's seeding (independent of how prompts are
batched across processes) and the server path against a real ``transformers serve`` serving our tiny SFT
checkpoint, also inside a PPO run (``ppo.rollout=server``). vLLM needs a GPU: its backend refuses clearly."""

from __future__ import annotations

import pytest

from mmredstar.io import read_samples
from mmredstar.modeling import load_model
from mmredstar.synth.builtins import write_builtin
from mmredstar.training import run
from mmredstar.training.rollout import make_rollout
from mmredstar.training.runner import read_metrics
from tests.conftest import RealServer


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft_rollout") / "sft"
    return run("tiny/sft", [f"output_dir={out}", "train.max_steps=30", "train.progress=false"])


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    return list(read_samples(write_builtin("rl_text", str(tmp_path_factory.mktemp("rl")))))[:4]


def test_hf_rollout_one_prompt_per_call_is_layout_independent(sft_dir, prompts):
    model, proc = load_model(sft_dir)
    ro = make_rollout("hf", proc, n=2, temperature=1.0, top_p=1.0, max_new_tokens=12)
    whole = ro.generate(model, prompts, step=3, seed=0)
    halves = [ro.generate(model, prompts[i::2], step=3, seed=0) for i in (0, 1)]  # 2 ranks, round-robin
    assert len(whole) == 8 and whole.sample_index == [0, 0, 1, 1, 2, 2, 3, 3]
    for i in range(4):
        part = halves[i % 2]
        rows = [r for r, j in enumerate(part.sample_index) if j == i // 2]
        assert [part.response_ids[r] for r in rows] == whole.response_ids[2 * i:2 * i + 2]
    assert whole.prompt_ids[0] == proc.encode(prompts[0], None, add_generation_prompt=True)["input_ids"]
    assert all(f in ("stop", "length") for f in whole.finish_reasons)
    again = ro.generate(model, prompts, step=4, seed=0)  # another step samples afresh
    assert again.response_ids != whole.response_ids


def test_vllm_backend_needs_vllm(sft_dir):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed: the GPU test covers it")
    except ImportError:
        pass
    _, proc = load_model(sft_dir)
    with pytest.raises(ImportError, match="ppo.rollout=vllm needs vLLM"):
        make_rollout("vllm", proc, model_path=sft_dir, n=2, temperature=1.0, top_p=1.0, max_new_tokens=8)
    with pytest.raises(ValueError, match="rollout_url"):
        make_rollout("server", proc, n=2, temperature=1.0, top_p=1.0, max_new_tokens=8)


@pytest.mark.slow
def test_server_rollout_against_transformers_serve(sft_dir, prompts, tmp_path):
    server = RealServer(sft_dir, tmp_path / "serve")
    try:
        _, proc = load_model(sft_dir)
        ro = make_rollout("server", proc, url=server.url, server_model=server.model, n=2, temperature=1.0,
                          top_p=1.0, max_new_tokens=12)
        out = ro.generate(None, prompts[:2], step=0, seed=0)
        assert len(out) == 4 and out.sample_index == [0, 0, 1, 1]
        assert all(0 < len(r) <= 13 for r in out.response_ids)
        m = read_metrics(run("tiny/ppo", [f"model.name={sft_dir}", "model.init_from=null", "ppo.rollout=server",
                                          f"ppo.rollout_url={server.url}", f"ppo.rollout_model={server.model}",
                                          "train.max_steps=2", "train.batch_size=2", "train.micro_batch_size=4",
                                          "rl.num_generations=2", "ppo.mini_batch_size=4",
                                          "rl.max_completion_length=12", "train.progress=false",
                                          f"output_dir={tmp_path / 'p'}"]))
        assert m["steps"] == 2 and m["rl"]["rollout"] == "server" and len(m["series"]["reward"]) == 2
    finally:
        server.stop()
