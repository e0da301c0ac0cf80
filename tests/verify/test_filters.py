"""Rule filters: the repetition conformance cases, each filter's keep/drop, the YAML spec runner.

    .venv/bin/python -m pytest -q tests/verify/test_filters.py
"""

import json

import pytest
import yaml

from mmredstar.schema import CodeTests, Response, Sample
from mmredstar.verify.filters import (
    FILTERS,
    parse_spec,
    repeated_tail,
    repetition_penalty,
    run_filters,
    script_share,
)

MATH = Sample.text("What is 2+2?", "4")
CODE = Sample.text("double", None, "code", tests=CodeTests(["1"], ["2"]))


def R(text, **kw):
    return Response(text=text, **kw)


def test_repetition_conformance(shared):
    rows = [json.loads(line) for line in (shared / "conformance" / "repetition_cases.jsonl").open()]
    assert len(rows) == 16
    for r in rows:
        got = repetition_penalty(r["text"], r["ngram_size"], r["max_penalty"])
        assert got == pytest.approx(r["expected_reward"], abs=1e-4), r


def test_repetition_and_degenerate_ending():
    loop = "Let me think. " + "Wait, let me recompute the sum. " * 40
    assert FILTERS["repetition"](R(loop), MATH, ngram_size=5, max_ratio=0.5)[0] is False
    fine = "We add two and two to get four, so the answer is \\boxed{4}."
    assert FILTERS["repetition"](R(fine), MATH)[0] is True
    keep, why = FILTERS["degenerate_ending"](R("The answer is 4. " + "4 4 4 4 " * 20), MATH)
    assert keep is False and "repeated" in why
    assert FILTERS["degenerate_ending"](R(fine), MATH) == (True, None)
    assert repeated_tail("abcabcabc")[1] == 3


def test_language():
    en = "We compute the area of the triangle: $\\frac{1}{2}bh = 6$, so the answer is 6."
    zh = "我们计算三角形的面积，$\\frac{1}{2}bh = 6$，所以答案是6。"
    mixed = en + " 但是我们需要再检查一下这个结果是否正确，因为三角形的高可能不对。"
    assert script_share(en, "en") == 0 and script_share(zh, "zh") == 0
    assert FILTERS["language"](R(en), MATH, target="en") == (True, None)
    keep, why = FILTERS["language"](R(mixed), MATH, target="en", max_share=0.1)
    assert keep is False and "not en" in why
    assert FILTERS["language"](R(zh), MATH, target="zh")[0] is True
    assert FILTERS["language"](R(en), MATH, target="zh")[0] is False
    code_heavy = "代码如下：\n```python\nprint('hello world this is english code')\n```\n答案是4。"
    assert FILTERS["language"](R(code_heavy), MATH, target="zh")[0] is True   # code is not prose


def test_answer_format_and_code_complete():
    assert FILTERS["answer_format"](R("so \\boxed{4}"), MATH) == (True, None)
    assert FILTERS["answer_format"](R("I think it is four-ish"), MATH)[0] is False
    assert FILTERS["answer_format"](R("The answer is 4."), MATH, require="boxed")[0] is False
    assert FILTERS["answer_format"](R("```python\nprint(2)\n```"), CODE) == (True, None)
    ok = "```python\nprint(int(input()) * 2)\n```"
    assert FILTERS["code_complete"](R(ok), CODE) == (True, None)
    keep, why = FILTERS["code_complete"](R("```python\nprint(1)\n```\n```python\nwhile True"), CODE)
    assert keep is False and "unbalanced" in why
    keep, why = FILTERS["code_complete"](R("```python\ndef f(:\n    pass\n```"), CODE)
    assert keep is False and "does not parse" in why
    assert FILTERS["code_complete"](R("no code here"), CODE)[0] is False
    assert FILTERS["code_complete"](R("math only"), MATH) == (True, None)


def test_truncation_think_and_length():
    assert FILTERS["truncation"](R("...", finish_reason="length"), MATH)[0] is False
    assert FILTERS["truncation"](R("...", finish_reason="stop"), MATH) == (True, None)
    good = "<think>2+2 is 4</think>The answer is \\boxed{4}."
    assert FILTERS["think_format"](R(good), MATH) == (True, None)
    for bad, why in [("<think>still thinking", "never closed"), ("The answer is 4.", "no <think>"),
                     ("<think>a</think>x<think>b</think>y", "expected one block"), ("<think> </think>4", "empty"),
                     ("<think>2+2</think>  ", "nothing after"), ("hi <think>a</think>4", "before <think>")]:
        keep, reason = FILTERS["think_format"](R(bad), MATH)
        assert keep is False and why in reason, (bad, reason)
    assert FILTERS["think_format"](R("The answer is 4."), MATH, required=False) == (True, None)
    assert FILTERS["length"](R("x" * 10), MATH, max_chars=5)[0] is False
    assert FILTERS["length"](R("a b c", completion_tokens=900), MATH, max_tokens=512)[0] is False
    assert FILTERS["length"](R("a b c"), MATH, min_tokens=2, max_tokens=5) == (True, None)


def test_run_filters_from_yaml():
    spec = yaml.safe_load("""
    - truncation: {}
    - think_format: {required: true}
    - repetition: {ngram_size: 5, max_ratio: 0.5}
    - answer_format
    """)
    assert run_filters(R("<think>2+2=4</think>\\boxed{4}", finish_reason="stop"), MATH, spec) == (True, None)
    keep, why = run_filters(R("<think>2+2=4</think>\\boxed{4}", finish_reason="length"), MATH, spec)
    assert keep is False and why.startswith("truncation:")
    keep, why = run_filters(R("<think>hm</think>no idea"), MATH, spec)
    assert keep is False and why.startswith("answer_format:")
    with pytest.raises(ValueError, match="unknown filter 'repetiton'"):
        parse_spec([{"repetiton": {}}])
    with pytest.raises(ValueError, match="parameters must be a mapping"):
        parse_spec([{"length": 5}])
    assert parse_spec({"length": {"max_chars": 3}}) == [("length", {"max_chars": 3})]
    custom = [{"mmredstar.verify.filters:length": {"max_chars": 3}}]
    assert run_filters(R("toolong"), MATH, custom)[0] is False
