"""Code verifier: program extraction, TACO-style comparison, call-based tests, verdicts.

    .venv/bin/python -m pytest -q tests/verify/test_code.py
"""

import json

from mmredstar.schema import CodeTests, Sample
from mmredstar.verify import verify_response
from mmredstar.verify.code import extract_code, outputs_match, run_tests, special_judge_ids, values_match


def test_extract_code():
    assert extract_code("a\n```python\nprint(1)\n```\nb\n```python\nprint(2)\n```") == "print(2)\n"
    assert extract_code("```\nx = 1\n```\n```text\nnot code\n```") == "x = 1\n"   # untagged, no python tag
    assert extract_code("```python\nprint(1)\n```\n```cpp\nint main(){}\n```") == "print(1)\n"
    assert extract_code("```python\ndef f(:\n") is None                            # truncated, unparseable
    assert extract_code("<think>```python\nprint(0)\n```</think>no code after thinking") is None
    assert extract_code("import sys\nprint(sys.stdin.read())") is not None        # a bare program
    assert extract_code("Just prose, no program.") is None


def test_outputs_match_taco_rules():
    assert outputs_match("3\n", "3")
    assert outputs_match("1 2 \n3\n\n", ["1 2", "3"])
    assert outputs_match("0.3333333", "0.33333331")
    assert not outputs_match("0.34", "0.33")
    assert not outputs_match("YES", "yes")
    assert not outputs_match("1 2", "1 2 3")
    assert values_match([1, 2], [[1, 2]]) and values_match((1, 2), [1, 2]) and values_match(0.1 + 0.2, 0.3)
    assert not values_match(True, 1)


def test_stdio_and_call_based():
    t = CodeTests(["1 2\n", "5 7\n"], ["3\n", "12\n"])
    assert run_tests("a, b = map(int, input().split())\nprint(a + b)", t).ok
    rep = run_tests("a, b = map(int, input().split())\nprint(a * b)", t)
    assert not rep.ok and "test 1/2" in rep.failure and rep.passed == 0
    call = CodeTests([[1, 2], [3, 4]], [[3], [7]], fn_name="add")
    assert run_tests("def add(a, b):\n    return a + b", call).ok
    assert run_tests("class Solution:\n    def add(self, a, b):\n        return a + b", call).ok
    assert not run_tests("def plus(a, b):\n    return a + b", call).ok
    json_inputs = CodeTests([json.dumps([2, 3])], [json.dumps(5)], fn_name="add")   # TACO stores JSON text
    assert run_tests("def add(a, b):\n    return a + b", json_inputs).ok


def test_verdicts_and_reasons():
    s = Sample.text("double it", None, "code", tests=CodeTests(["2"], ["4"]))
    ok = verify_response(s, "```python\nprint(int(input()) * 2)\n```")
    assert (ok.verdict, ok.reward) == ("correct", 1.0) and "passed 1/1" in ok.reason
    crash = verify_response(s, "```python\nraise ValueError('boom')\n```")
    assert crash.verdict == "wrong" and "ValueError" in crash.reason
    slow = verify_response(s, "```python\nwhile True: pass\n```", per_test=0.5, total=2)
    assert slow.verdict == "wrong" and "time limit" in slow.reason
    none = verify_response(s, "I would use a loop.")
    assert (none.verdict, none.reward) == ("no_answer", -1.0)
    syn = verify_response(s, "```python\nprint(\n```")
    assert syn.verdict in ("wrong", "no_answer")


def test_special_judge(shared):
    ids = special_judge_ids(str(shared / "benchmarks" / "taco_output_spj.jsonl"))
    assert 5 in ids and 0 not in ids and len(ids) == 218
    s = Sample.text("any valid order", None, "code", tests=CodeTests(["2"], ["1 2"]), meta={"special_judge": True})
    v = verify_response(s, "```python\nprint('2 1')\n```")
    assert v.verdict == "error" and "special-judge" in v.reason
    v = verify_response(s, "```python\nprint('1 2')\n```", special_judge="compare")
    assert v.verdict == "correct"
