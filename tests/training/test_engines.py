"""The verl and OpenRLHF reward plug-ins, loaded the way the engines load them (by file path, as a stand-alone
module) and called with their calling conventions on rows exported by ``mmredstar data export``.

verl and OpenRLHF themselves are not installed here (verl pulls Ray and ~60 packages and pins an older
transformers; OpenRLHF needs Ray, vLLM and flash-attn): the loader and the call mirror their code
(verl ``get_custom_reward_fn`` + ``NaiveRewardManager``; OpenRLHF ``--remote_rm_url FILE.py``)."""

import importlib.util
import inspect
import json

import pyarrow.parquet as pq
import pytest
import torch

import mmredstar.engines.openrlhf as orl
import mmredstar.engines.verl as verl
from mmredstar.data.export import export
from mmredstar.io import read_jsonl, write_samples
from mmredstar.schema import CodeTests, Sample


def _load_by_path(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def rl_set(tmp_path):
    rows = [Sample.text("What is 2+3?", "5", source="arith"),
            Sample.text("Pick the prime.", "B", "choice", choices=["4", "5", "6"], source="mcq"),
            Sample.text("Print the input doubled.", None, "code", tests=CodeTests(["2\n"], ["4\n"]), source="code")]
    p = tmp_path / "rl.jsonl"
    write_samples(p, rows)
    return p


RESPONSES = [  # (right, wrong, no valid answer) for each of the three prompts
    ("<think>2+3=5</think> The answer is $\\boxed{5}$.", "The answer is $\\boxed{6}$.", "I am not sure."),
    ("The answer is B.", "The answer is A.", "No idea."),
    ("```python\nprint(int(input()) * 2)\n```", "```python\nprint(int(input()) + 1)\n```", "no code here"),
]


def test_verl_compute_score_on_exported_rows(tmp_path, rl_set):
    export(rl_set, tmp_path / "rl.parquet", "verl")
    rows = pq.read_table(tmp_path / "rl.parquet").to_pylist()
    fn = _load_by_path(verl.__file__, "custom_module").compute_score  # verl: custom_reward_function
    assert list(inspect.signature(fn).parameters)[:4] == ["data_source", "solution_str", "ground_truth", "extra_info"]
    for row, resp in zip(rows, RESPONSES, strict=True):
        got = [fn(data_source=row["data_source"], solution_str=r, ground_truth=row["reward_model"]["ground_truth"],
                  extra_info=row["extra_info"]) for r in resp]
        assert got == [1.0, 0.0, -1.0], (row["data_source"], got)
    # reward_kwargs from the config are merged into the call; sandbox options of verl's default are ignored
    assert fn(data_source="x", solution_str="\\boxed{5}", ground_truth="5", extra_info=None,
              sandbox_fusion_url=None) == 1.0
    # a row made elsewhere (no record in extra_info): the ground truth is a math answer
    assert fn("openai/gsm8k", "so \\boxed{72}", "72", {"split": "train", "index": 0}) == 1.0
    assert fn("openai/gsm8k", "so \\boxed{71}", "72", {}) == 0.0


def test_openrlhf_reward_func_on_exported_rows(tmp_path, rl_set):
    export(rl_set, tmp_path / "rl.jsonl", "openrlhf")
    rows = list(read_jsonl(tmp_path / "rl.jsonl"))
    fn = _load_by_path(orl.__file__, "reward_module").reward_func  # OpenRLHF: --remote_rm_url FILE.py
    prompts = [f"<|im_start|>user\n{r['input'][-1]['content']}<|im_end|>\n<|im_start|>assistant\n" for r in rows]
    queries, ps, labels = [], [], []
    for p, row, resp in zip(prompts, rows, RESPONSES, strict=True):
        for r in resp:
            queries.append(p + r)
            ps.append(p)
            labels.append(row["label"])
    out = fn(queries, ps, labels)
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert out["rewards"].tolist() == [1.0, 0.0, -1.0] * 3
    assert out["scores"].tolist() == [1.0, 0.0, 0.0] * 3 and out["rewards"].dtype == torch.float32
    assert float(out["extra_logs"]["verified"]) == pytest.approx(1 / 3)
    # a bare answer as the label (a data set made elsewhere)
    assert fn(["Q: 2+2? A: \\boxed{4}"], ["Q: 2+2? A: "], ["4"])["rewards"].tolist() == [1.0]
    assert json.loads(labels[0])["answer"] == "5"
