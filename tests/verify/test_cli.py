"""``mmredstar verify``: flat lines, sample records, bad lines, resume after a crash, the summary.

    .venv/bin/python -m pytest -q tests/verify/test_cli.py
"""

import json

from click.testing import CliRunner

from mmredstar.cli import cli
from mmredstar.schema import Message, Response, Sample
from mmredstar.verify.cli import run_verify


def _write(path, lines):
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))


def _read(path):
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def test_flat_lines_and_bad_lines(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [
        {"id": "a", "response": "so \\boxed{4}", "answer": "4", "answer_type": "math"},
        {"id": "b", "response": "The answer is (B).", "answer": "B", "answer_type": "choice", "choices": ["1", "2"]},
        {"id": "c", "response": "```python\nprint(int(input()) + 1)\n```", "answer_type": "code",
         "tests": {"inputs": ["1"], "outputs": ["2"]}},
        "{not json",
        {"id": "e", "response": "4", "answer_type": "poem", "answer": "4"},
        {"id": "f", "response": 7, "answer_type": "math", "answer": "7"},
        {"id": "g", "response": "x", "answer_type": "math"},
        {"id": "h", "response": "I give up", "answer": "3", "answer_type": "math"},
        "",
        [1, 2],
    ])
    res = CliRunner().invoke(cli, ["verify", str(inp), "--out", str(out), "-q", "--summary", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    rows = _read(out)
    assert len(rows) == 9                                          # every non-blank line, in order
    assert [r.get("id") for r in rows[:3]] == ["a", "b", "c"]
    assert [r["verdict"] for r in rows] == ["correct", "correct", "correct", "error", "error", "error", "error",
                                           "no_answer", "error"]
    assert rows[0]["reward"] == 1.0 and rows[0]["extracted"] == "4" and rows[0]["reason"]
    assert "malformed JSON" in rows[3]["reason"] and ":4" in rows[3]["reason"]
    assert "answer_type" in rows[4]["reason"] and "in.jsonl:5" in rows[4]["reason"]
    assert "field 'response'" in rows[5]["reason"] and "field 'answer'" in rows[6]["reason"]
    assert rows[7]["reward"] == -1.0
    assert "correct" in res.output and "error" in res.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["counts"] == {"correct": 3, "error": 5, "no_answer": 1} and summary["total"] == 9


def test_sample_records_are_verified_in_place(tmp_path):
    s = Sample(prompt=[Message.make("user", "2+2?")], answer="4", answer_type="math",
               responses=[Response("\\boxed{4}"), Response("\\boxed{5}", finish_reason="stop"), Response("hmm")])
    empty = Sample.text("3+3?", "6")
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [s.to_dict(), empty.to_dict(), {**s.to_dict(), "answer_type": "math", "prompt": 5}])
    run_verify(str(inp), str(out), progress=False)
    rows = _read(out)
    assert [r["verdict"] for r in rows[0]["responses"]] == ["correct", "wrong", "no_answer"]
    assert [r["reward"] for r in rows[0]["responses"]] == [1.0, 0.0, -1.0]
    assert Sample.from_dict(rows[0]).responses[0].extracted == "4"
    assert rows[1]["id"] == empty.id and rows[1]["responses"] == []
    assert rows[2]["verdict"] == "error" and "prompt" in rows[2]["reason"]


def test_resume_does_not_redo_finished_lines(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    log = tmp_path / "calls.log"
    lines = [{"id": i, "response": f"\\boxed{{{i}}}", "answer": str(i), "answer_type": "math",
              "meta": {"verifier": "verify.helpers:logged_verify", "log": str(log)}} for i in range(6)]
    _write(inp, lines)
    # a crashed run left three finished lines and a torn fourth one
    done = [dict(ln, verdict="correct", reward=1.0, extracted=str(ln["id"]), reason="earlier run") for ln in lines[:3]]
    (tmp_path / "out.jsonl.partial").write_text("".join(json.dumps(d) + "\n" for d in done) + '{"id": 3, "verd')
    run_verify(str(inp), str(out), progress=False)
    rows = _read(out)
    assert [r["id"] for r in rows] == list(range(6))
    assert [r["reason"] for r in rows[:3]] == ["earlier run"] * 3
    assert log.read_text().split() == ["3", "4", "5"]              # only the unfinished lines were verified
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_modes_and_options(tmp_path):
    inp = tmp_path / "in.jsonl"
    _write(inp, [{"response": "4, 10, -2", "answer": "10, 4, -2", "answer_type": "math"}])
    r = CliRunner()
    assert r.invoke(cli, ["verify", str(inp), "-o", str(tmp_path / "a.jsonl"), "-q"]).exit_code == 0
    assert _read(tmp_path / "a.jsonl")[0]["verdict"] == "correct"
    assert r.invoke(cli, ["verify", str(inp), "-o", str(tmp_path / "b.jsonl"), "-q", "--mode", "strict"]).exit_code == 0
    assert _read(tmp_path / "b.jsonl")[0]["verdict"] == "correct"          # strict is about numbers, not order
    assert _read(tmp_path / "b.jsonl")[0]["math_mode"] == "strict"
    res = r.invoke(cli, ["verify", str(inp), "-o", str(tmp_path / "c.jsonl"), "-q", "--opt", "tuple_order=strict"])
    assert res.exit_code == 0 and _read(tmp_path / "c.jsonl")[0]["verdict"] == "wrong"
    assert r.invoke(cli, ["verify", str(inp), "-o", str(tmp_path / "d.jsonl"), "--opt", "nokey"]).exit_code != 0
    res = r.invoke(cli, ["verify", str(inp), "-o", str(tmp_path / "e.jsonl"), "-q", "--workers", "2"])
    assert res.exit_code == 0 and _read(tmp_path / "e.jsonl")[0]["verdict"] == "correct"


def test_the_math_mode_is_chosen_and_recorded(tmp_path):
    inp = tmp_path / "in.jsonl"
    _write(inp, [{"response": "so x = 0.33", "answer": "\\frac{1}{3}", "answer_type": "math"},
                 {"response": "so x = 0.33", "answer": "\\frac{1}{3}", "answer_type": "math", "meta": {"math_mode": "lenient"}}])
    r = CliRunner()
    for mode, want in [("strict", ["wrong", "correct"]), ("lenient", ["correct", "correct"]),
                       ("math_verify", ["wrong", "correct"])]:
        out, summ = tmp_path / f"{mode}.jsonl", tmp_path / f"{mode}.json"
        res = r.invoke(cli, ["verify", str(inp), "-o", str(out), "-q", "--mode", mode, "--summary", str(summ)])
        assert res.exit_code == 0, res.output
        rows = _read(out)
        assert [x["verdict"] for x in rows] == want, (mode, rows)
        assert [x["math_mode"] for x in rows] == [mode, "lenient"]
        s = json.loads(summ.read_text())
        assert s["verification"]["math_mode"] == mode and s["sandbox"]["isolation"]
        assert f"math mode {mode}" in res.output and "code sandbox:" in res.output


def test_bad_input_and_unusable_outputs_are_refused_with_what_to_do(tmp_path):
    r = CliRunner()
    inp = tmp_path / "in.jsonl"
    _write(inp, [{"response": "4", "answer": "4", "answer_type": "math"}])
    before = inp.read_bytes()
    res = r.invoke(cli, ["verify", str(inp), "-o", str(inp), "-q"])
    assert res.exit_code != 0 and "is the input file" in res.output and inp.read_bytes() == before
    (tmp_path / "afile").write_text("x")
    res = r.invoke(cli, ["verify", str(inp), "-o", str(tmp_path / "afile" / "x.jsonl"), "-q"])
    assert res.exit_code != 0 and "is a file, not a directory" in res.output and "Traceback" not in res.output
    res = r.invoke(cli, ["verify", str(inp), "-o", str(tmp_path / "nodir" / "x.jsonl"), "-q"])
    assert res.exit_code != 0 and "does not exist" in res.output
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    res = r.invoke(cli, ["verify", str(empty), "-o", str(tmp_path / "e.jsonl"), "-q"])
    assert res.exit_code != 0 and "empty (0 bytes)" in res.output
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"response": "4", "answer": "4", "answer_type": "math"}\n'
                      b'{"response": "caf\xe9 4", "answer": "4", "answer_type": "math"}\n')
    res = r.invoke(cli, ["verify", str(latin), "-o", str(tmp_path / "l.jsonl"), "-q"])
    assert res.exit_code != 0 and f"{latin}:2: not UTF-8" in res.output and "iconv" in res.output


def test_a_lone_surrogate_is_verified_and_written(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text('{"response": "so \\ud83d the answer is 2", "answer": "2", "answer_type": "math"}\n'
                   '{"response": "4", "answer": "4", "answer_type": "math"}\n')
    res = CliRunner().invoke(cli, ["verify", str(inp), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    rows = _read(out)
    assert [x["verdict"] for x in rows] == ["correct", "correct"] and rows[0]["response"] == "so \ud83d the answer is 2"


def test_a_resumed_run_reports_every_line_and_writes_its_summary(tmp_path):
    inp, out, summ = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "s.json"
    _write(inp, [{"response": "4", "answer": "4", "answer_type": "math"},
                 {"response": "5", "answer": "4", "answer_type": "math"},
                 {"response": "4", "answer": "4", "answer_type": "math"}])
    first = {"response": "4", "answer": "4", "answer_type": "math", "verdict": "correct", "reward": 1.0,
             "extracted": "4", "reason": "earlier run"}
    (tmp_path / "out.jsonl.partial").write_text(json.dumps(first) + "\n")          # a killed earlier run
    res = CliRunner().invoke(cli, ["verify", str(inp), "-o", str(out), "-q", "--summary", str(summ)])
    assert res.exit_code == 0, res.output
    assert "verified 3 responses" in res.output
    s = json.loads(summ.read_text())
    assert s["counts"] == {"correct": 2, "wrong": 1} and s["total"] == 3


def test_a_test_too_large_to_judge_is_an_error_not_wrong():
    from mmredstar.schema import CodeTests
    from mmredstar.verify import verify_response

    big = "1\n" * (35 * 1024 * 1024)                      # 70 MiB of input
    s = Sample(prompt=[], answer_type="code", tests=CodeTests([big], ["1"]))
    v = verify_response(s, "```python\nprint(1)\n```")
    assert v.verdict == "error" and "cannot be judged" in v.reason and v.reward == -1.0
    s = Sample(prompt=[], answer_type="code", tests=CodeTests(["1"], ["x" * (9 * 1024 * 1024)]))
    assert verify_response(s, "```python\nprint(1)\n```").verdict == "error"
