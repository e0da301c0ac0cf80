"""The rule reward and its TRL adapter (called exactly the way TRL's GRPOTrainer calls it).

    .venv/bin/python -m pytest -q tests/verify/test_reward.py
"""

import json

from mmredstar.schema import Sample
from mmredstar.verify.reward import completion_text, rule_reward, trl_reward_fn


def test_rule_reward_values():
    s = Sample.text("2+3?", "5")
    assert rule_reward(s, "\\boxed{5}") == 1.0
    assert rule_reward(s, "\\boxed{6}") == 0.0
    assert rule_reward(s, "hmm") == -1.0


def test_trl_reward_fn_like_grpo_trainer():
    fn = trl_reward_fn()
    assert fn.__name__ == "rule_reward"
    prompts = [[{"role": "user", "content": "2+3?"}]] * 3 + [[{"role": "user", "content": "pick"}]] + \
              [[{"role": "user", "content": "double"}]]
    completions = [
        [{"role": "assistant", "content": "<think>2+3</think>\\boxed{5}"}],
        [{"role": "assistant", "content": "\\boxed{6}"}],
        [{"role": "assistant", "content": "I refuse"}],
        [{"role": "assistant", "content": "The answer is (B)."}],
        [{"role": "assistant", "content": "```python\nprint(int(input())*2)\n```"}],
    ]
    columns = {
        "answer": ["5", "5", "5", "B", None],
        "answer_type": ["math", "math", "math", "choice", "code"],
        "choices": [None, None, None, ["1", "2"], None],
        "tests": [None, None, None, None, json.dumps({"inputs": ["3"], "outputs": ["6"]})],
        "trainer_state": object(), "log_extra": lambda *a, **k: None, "log_metric": lambda *a, **k: None,
    }
    out = fn(prompts=prompts, completions=completions, completion_ids=[[1]] * 5, **columns)
    assert out == [1.0, 0.0, -1.0, 1.0, 1.0]
    assert all(isinstance(x, float) for x in out)


def test_plain_string_completions_and_workers():
    fn = trl_reward_fn(workers=2)
    out = fn(prompts=["q1", "q2"], completions=["so \\boxed{1}", "so \\boxed{3}"], answer=["1", "2"],
             answer_type=["math", "math"])
    assert out == [1.0, 0.0]


def test_completion_text_forms():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "image"}]}]) == "x"
    assert completion_text({"content": "y"}) == "y"


def test_a_sample_column_is_used_whole():
    s = Sample.text("pick", "B", "choice", choices=["1", "2"], meta={"note": "x"})
    fn = trl_reward_fn()
    out = fn(prompts=["pick"], completions=["so (B)"], sample=[json.dumps(s.to_dict())], answer=["A"])
    assert out == [1.0]                                     # the record, not the stray answer column
