"""Step-wise generation with a real local model: an assistant prefix is continued and stop strings cut."""

from mmredstar.generate import SamplingParams, build_teacher
from mmredstar.search.steps import with_prefix
from mmredstar.synth.steps import step_problems


def test_local_teacher_continues_prefix_and_stops():
    s = step_problems(1, seed=0)[0]
    t = build_teacher({"kind": "transformers", "model": "tiny_text", "batch_size": 4})
    model, proc = t._load()
    from mmredstar.modeling.generation import encode_prompt

    p = with_prefix(s, ["x = 1 + 2"], "t")
    ids = encode_prompt(proc, p)["input_ids"]
    base = proc.encode(s)["input_ids"]
    assert ids[: len(base)] == base and proc.tokenizer.decode(ids[len(base):]) == "x = 1 + 2<end_of_step>\n"
    stop = "e"
    rs = t.generate([p], [4], SamplingParams(temperature=1.0, max_tokens=24, seed=0, stop=[stop]))[0]
    assert len(rs) == 4 and all(stop not in r.text for r in rs)
    assert any(r.finish_reason == "stop" for r in rs)
