"""Bad input and faults, as a careless user meets them: each is caught with the file, line and field and
what to do, never a raw traceback or a silent wrong answer (issue 14, section 4).

    .venv/bin/python -m pytest -q tests/test_faults.py
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mmredstar.cli import cli
from mmredstar.config import ConfigError, read_yaml
from mmredstar.io import dir_lock, iter_jsonl, read_samples
from mmredstar.schema import DataError
from mmredstar.training import RecipeError, check_recipe


def _sample(i: int, question: str = "What is 1+1?") -> dict:
    return {"id": f"s{i}", "prompt": [{"role": "user", "content": question}], "answer": "2", "answer_type": "math",
            "responses": [{"text": "<think>1+1</think> 2"}]}


def _write_lines(path, lines: list[bytes]) -> str:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


@pytest.fixture
def bad_text(tmp_path):
    """Line 2 holds a lone surrogate escape in the question, line 3 latin-1 bytes; lines 1 and 4 are fine."""
    ok = [json.dumps(_sample(i)).encode() for i in (1, 4)]
    surrogate = json.dumps(_sample(2, "a cut emoji \ud83d here")).encode()  # json.dumps writes the escape
    assert b"\\ud83d" in surrogate
    latin1 = json.dumps(_sample(3, "caf\u00e9"), ensure_ascii=False).encode("latin-1")
    return _write_lines(tmp_path / "bad.jsonl", [ok[0], surrogate, latin1, ok[1]])


def test_jsonl_reader_names_line_and_field_of_bad_text_and_reads_on(bad_text):
    rows = list(iter_jsonl(bad_text))
    assert [i for i, _, p in rows if p is None] == [1, 4]
    p2, p3 = rows[1][2], rows[2][2]
    assert p2.line == 2 and p2.field == "prompt[0].content" and "surrogate" in str(p2) and bad_text in str(p2)
    assert p3.line == 3 and "not UTF-8" in p3.message and "b'\\xe9'" in p3.message and "iconv" in p3.hint
    with pytest.raises(DataError, match=r"bad.jsonl:2: field 'prompt\[0\].content': a lone UTF-16 surrogate"):
        list(read_samples(bad_text))
    assert [s.id for s in read_samples(bad_text, on_error="skip")] == ["s1", "s4"]


def test_data_validate_rejects_bad_text(bad_text):
    r = CliRunner().invoke(cli, ["data", "validate", bad_text])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "bad.jsonl:2: field 'prompt[0].content': a lone UTF-16 surrogate" in r.output
    assert "bad.jsonl:3: field '-': not UTF-8 text" in r.output


def test_duplicate_yaml_key_names_both_lines(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\n")
    with pytest.raises(ConfigError, match=r"c.yaml:5: duplicate key 'b.x' \(first given at line 3\)"):
        read_yaml(str(p))
    p.write_text("a: 1\nb: [1, 2]\n")  # no duplicates: read as before
    assert read_yaml(str(p))[0] == {"a": 1, "b": [1, 2]}


def test_non_utf8_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"c.yaml:2: not UTF-8 text"):
        read_yaml(str(p))


@pytest.mark.parametrize("key,value,need", [("lr", "-1e-5", "> 0"), ("warmup_ratio", "1.5", "in \\[0, 1\\)"),
                                            ("epochs", "0", "> 0")])
def test_check_refuses_out_of_range_train_values(key, value, need):
    with pytest.raises(RecipeError, match=rf"command-line override train.{key}={value}\): key 'train.{key}'=.* must be {need}"):
        check_recipe("tiny/sft", [f"train.{key}={value}"])


def test_train_check_looks_inside_data_files(tmp_path):
    good = [json.dumps(_sample(i)).encode() for i in range(3)]
    bad = json.dumps({**_sample(9), "responses": "not a list"}).encode()
    f = _write_lines(tmp_path / "d.jsonl", good + [bad])
    with pytest.raises(RecipeError, match=r"d.jsonl:4: field 'responses'"):
        check_recipe("tiny/sft", [f"data.train=[{f}]"])
    pair = {**_sample(8), "chosen": {"text": "a"}, "rejected": {"text": "b"}}
    pair.pop("responses")
    pair = json.dumps(pair).encode()
    f = _write_lines(tmp_path / "p.jsonl", [pair])
    with pytest.raises(RecipeError, match=r"p.jsonl:1: an SFT recipe trains on samples; this record is a DPO pair"):
        check_recipe("tiny/sft", [f"data.train=[{f}]"])
    empty = tmp_path / "e.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(RecipeError, match=r"e.jsonl: holds no records"):
        check_recipe("tiny/sft", [f"data.train=[{empty}]"])
    f = _write_lines(tmp_path / "ok.jsonl", good)
    assert check_recipe("tiny/sft", [f"data.train=[{f}]"]).data.train == [f]


def test_dir_lock_refuses_a_second_holder(tmp_path):
    with dir_lock(tmp_path / "out", "curate"):
        with pytest.raises(RuntimeError, match="out: another curate run is using this output directory"):
            with dir_lock(tmp_path / "out", "curate"):
                pass
    with dir_lock(tmp_path / "out", "curate"):  # released: the next run gets it
        pass


def test_seen_ids_across_the_buffer_merge():
    from mmredstar.curate.pipeline import _SeenIds

    seen = _SeenIds(buffer=8)
    assert all(seen.add(f"id{i}") for i in range(50))          # merged into the sorted array several times
    assert not any(seen.add(f"id{i}") for i in range(50))      # every one found again, buffered or merged
    assert seen.add("new") and len(seen.sorted) == 48 and len(seen.recent) == 3


# ----------------------------------------------------------------------------------------- verify
def _flat(i: int, text: str | None = None) -> dict:
    return {"id": i, "response": text or f"\\boxed{{{i}}}", "answer": str(i), "answer_type": "math"}


def test_verify_refuses_out_equal_to_input(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps(_flat(1)) + "\n")
    before = inp.read_bytes()
    r = CliRunner().invoke(cli, ["verify", str(inp), "--out", str(tmp_path / "." / "in.jsonl"), "-q"])
    assert r.exit_code == 1 and "is the input file" in r.output and inp.read_bytes() == before


def test_verify_bad_text(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [json.dumps(_flat(1)).encode(), json.dumps(_flat(2, "\\boxed{2} \ud83d")).encode(), json.dumps(_flat(3)).encode()]
    _write_lines(inp, lines)
    r = CliRunner().invoke(cli, ["verify", str(inp), "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output   # a lone surrogate does not stop the run: it is verified, written back escaped
    assert [json.loads(x)["verdict"] for x in out.read_text(encoding="utf-8").splitlines()] == ["correct"] * 3
    _write_lines(inp, lines + [b'{"id": 4, "response": "caf\xe9", "answer": "4", "answer_type": "math"}'])
    r = CliRunner().invoke(cli, ["verify", str(inp), "--out", str(tmp_path / "o2.jsonl"), "-q"])
    assert r.exit_code == 1 and "in.jsonl:4: not UTF-8" in r.output and "Traceback" not in r.output


def test_resumed_verify_reports_all_lines_and_writes_summary(tmp_path):
    inp, out, summ = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "s.json"
    inp.write_text("".join(json.dumps(_flat(i)) + "\n" for i in range(5)))
    done = [dict(_flat(i), verdict="wrong", reward=0.0, extracted="x", reason="earlier run") for i in range(2)]
    (tmp_path / "out.jsonl.partial").write_text("".join(json.dumps(d) + "\n" for d in done))
    r = CliRunner().invoke(cli, ["verify", str(inp), "--out", str(out), "-q", "--summary", str(summ)])
    assert r.exit_code == 0, r.output
    assert "verified 5 responses" in r.output
    s = json.loads(summ.read_text())
    assert s["counts"] == {"wrong": 2, "correct": 3} and s["total"] == 5


# ----------------------------------------------------------------------------------------- data convert
def test_convert_refuses_out_equal_to_source(assets, tmp_path):
    import shutil

    src = tmp_path / "test.jsonl"
    shutil.copy(assets / "math500/test.jsonl", src)
    before = src.read_bytes()
    r = CliRunner().invoke(cli, ["data", "convert", "--card", "math500", "--src", str(src), "--out", str(src)])
    assert r.exit_code == 1 and "is the source being converted" in r.output and "Traceback" not in r.output
    assert src.read_bytes() == before


def test_convert_truncated_output_is_redone_and_stale_temp_files_removed(assets, tmp_path):
    from mmredstar.data.convert import convert, sidecar_dir

    src, out = assets / "math500/test.jsonl", tmp_path / "m.jsonl"
    r1 = convert("math500", src, out, progress=False)
    full = out.read_bytes()
    assert r1.written == 3 and r1.outputs[str(out)][0] == len(full)
    out.write_bytes(full[: len(full) // 2])  # cut by hand (or a copy that stopped half-way)
    stale = [tmp_path / ".m.jsonl.abc123.tmp", tmp_path / sidecar_dir(str(out)) / ".report.json.x1.tmp"]
    for p in stale:
        p.write_text("left by a killed run")
    keep = tmp_path / ".other.jsonl.q.tmp"  # another output's temp file is not ours to remove
    keep.write_text("x")
    r2 = convert("math500", src, out, progress=False)
    assert not r2.up_to_date and out.read_bytes() == full
    assert not any(p.exists() for p in stale) and keep.exists()
    assert convert("math500", src, out, progress=False).up_to_date  # intact now: a no-op again


# ----------------------------------------------------------------------------------------- output paths
def test_output_path_under_a_file_is_one_clear_line(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps(_flat(1)) + "\n")
    (tmp_path / "afile").write_text("")
    r = CliRunner().invoke(cli, ["verify", str(inp), "--out", str(tmp_path / "afile" / "o.jsonl"), "-q"])
    assert r.exit_code == 1 and "Traceback" not in r.output and "afile is a file, not a directory" in r.output
    r = CliRunner().invoke(cli, ["train", "tiny/sft", f"output_dir={tmp_path / 'afile' / 'x'}"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output.startswith(f"error: {tmp_path / 'afile'}") and "is an existing file, not a directory" in r.output
    r = CliRunner().invoke(cli, ["train", "tiny/sft", f"output_dir={tmp_path / 'afile'}"])
    assert r.exit_code == 1 and f"error: {tmp_path / 'afile'}: File exists (an existing file is in the way" in r.output


# ----------------------------------------------------------------------------------------- curation
def test_curate_leaves_out_duplicate_ids_and_bad_images_naming_file_and_line(tmp_path):
    from PIL import Image

    from mmredstar.curate import run as curate_run
    from mmredstar.io import read_samples, write_samples
    from mmredstar.schema import ImageRef, Message, Sample

    Image.new("RGB", (8, 8), "red").save(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")

    def img(q, path):
        return Sample(prompt=[Message.make("user", 0, q)], answer="4", answer_type="math",
                      images=[ImageRef(path=str(tmp_path / path))], id=f"img-{path}")

    texts = [Sample.text(f"What is {i} + {i}?", str(2 * i), id=f"t{i}") for i in range(4)]
    dup = Sample.text("Another question entirely: 9 + 9?", "18", id="t1")   # same id as line 2
    write_samples(tmp_path / "in.jsonl", [*texts, dup, img("a", "ok.png"), img("b", "missing.png"),
                                          img("c", "broken.png")])
    res = curate_run({"out": str(tmp_path / "o"), "inputs": [{"path": str(tmp_path / "in.jsonl")}],
                      "teacher": {"kind": "scripted", "error_rate": 0.0, "no_answer_rate": 0.0}}, progress=False)
    ip = res.report["input_problems"]
    assert ip["duplicate_ids"] == 1 and ip["bad_images"] == 2
    ex = "\n".join(ip["examples"])
    assert "in.jsonl:5: id 't1' was given before in the inputs; the first is kept" in ex
    assert "in.jsonl:7: field 'images': image file not found" in ex and "in.jsonl:8: field 'images': image file is not" in ex
    assert res.report["counts"]["input"] == 8
    sft = list(read_samples(tmp_path / "o" / "sft.jsonl"))
    assert len({s.id for s in sft}) == len(sft)
    assert sorted(s.meta["prompt_id"] for s in sft) == ["img-ok.png", "t0", "t1", "t2", "t3"]
    assert next(s for s in sft if s.meta["prompt_id"] == "t1").answer == "2"   # the first t1 was kept
    r = CliRunner().invoke(cli, ["data", "validate", str(tmp_path / "o" / "sft.jsonl")])
    assert r.exit_code == 0, r.output
    assert "Inputs left out" in (tmp_path / "o" / "report.md").read_text()


# ----------------------------------------------------------------------------------------- empty inputs
def test_empty_inputs_are_reported(tmp_path, caplog):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    r = CliRunner().invoke(cli, ["data", "validate", str(empty)])
    assert r.exit_code == 1 and "empty.jsonl: field '-': holds no records" in r.output
    r = CliRunner().invoke(cli, ["verify", str(empty), "--out", str(tmp_path / "o.jsonl"), "-q"])
    assert r.exit_code == 1 and "is empty (0 bytes): nothing to verify" in r.output
    assert not (tmp_path / "o.jsonl").exists()
    from mmredstar.curate import run as curate_run

    with caplog.at_level("WARNING", logger="mmredstar.curate.pipeline"):
        res = curate_run({"out": str(tmp_path / "c"), "inputs": [{"path": str(empty)}],
                          "teacher": {"kind": "scripted"}}, progress=False)
    assert res.report["counts"]["input"] == 0 and "empty.jsonl holds no records" in caplog.text


# ----------------------------------------------------------------------------------------- GeoQA
def test_geoqa_model_typo_caught_before_any_stage(tmp_path):
    from mmredstar.config import ConfigError
    from mmredstar.workflows.geoqa import load_config

    with pytest.raises(ConfigError, match=r"key 'model': 'tiny_vml' is no preset in models/ and no directory; "
                                          r"did you mean 'tiny_vlm'\?"):
        load_config("configs/geoqa/tiny.yaml", ["model=tiny_vml"])
    out = tmp_path / "gq"
    r = CliRunner().invoke(cli, ["geoqa", "run", "configs/geoqa/tiny.yaml", "--out", str(out), "--set", "model=tiny_vml"])
    assert r.exit_code == 1 and "did you mean 'tiny_vlm'" in r.output and "Traceback" not in r.output
    assert not (out / "prepare").exists()
    assert load_config("configs/geoqa/tiny.yaml", ["model=Org/some-hub-model"]).model == "Org/some-hub-model"


def test_geoqa_stage_with_deleted_weights_is_not_finished(tmp_path):
    from mmredstar.workflows.geoqa import load_config, run_prepare, stage_state
    from mmredstar.workflows.geoqa.stages import _finish_stage, _weights

    cfg = load_config("configs/geoqa/tiny.yaml", [f"out={tmp_path / 'gq'}"])
    run_prepare(cfg)
    model = tmp_path / "gq" / "prepare" / "model.safetensors"   # a stage that recorded weights, as sft/dpo do
    model.write_bytes(b"w" * 64)
    _finish_stage(cfg, "prepare", {}, 0.0, {"weights": _weights(model.parent)})
    assert stage_state(cfg, "prepare") is not None
    model.write_bytes(b"w" * 10)   # cut short
    assert stage_state(cfg, "prepare") is None
    model.unlink()
    assert stage_state(cfg, "prepare") is None


def test_convert_skips_bad_text_rows_of_json_and_jsonl_sources_with_their_line(assets, tmp_path):
    from mmredstar.data.convert import convert

    rows = [json.loads(x) for x in (assets / "math500/test.jsonl").read_text().splitlines()]
    rows[1] = dict(rows[1], problem="cut \ud83d emoji")
    (tmp_path / "src.json").write_text(json.dumps(rows, indent=1))           # a JSON list source
    rep = convert("math500", tmp_path / "src.json", tmp_path / "a.jsonl", progress=False)
    assert rep.written == len(rows) - 1 and rep.skipped == 1
    assert "src.json:" in rep.skip_examples[0]["where"] and "surrogate" in rep.skip_examples[0]["reason"]
    lines = [json.dumps(r).encode() for r in rows]
    lines[2] = lines[2].replace(b"\"problem\": \"", b"\"problem\": \"\xf6", 1)       # latin-1 in a JSONL source
    _write_lines(tmp_path / "src.jsonl", lines)
    rep = convert("math500", tmp_path / "src.jsonl", tmp_path / "b.jsonl", progress=False)
    assert rep.skipped == 2 and {e["where"] for e in rep.skip_examples} == {"src.jsonl:2", "src.jsonl:3"}
    (tmp_path / "bad.json").write_bytes(b'[{"problem": "caf\xe9"}]')
    rep = convert("math500", tmp_path / "bad.json", tmp_path / "c.jsonl", progress=False)
    assert rep.skipped == 1 and "not UTF-8" in rep.skip_examples[0]["reason"]


# ----------------------------------------------------------------------------------------- eval score
def test_eval_score_reports_bad_text_lines_and_scores_the_rest(tmp_path):
    from mmredstar.evaluation.score import score_responses

    data = tmp_path / "hs.jsonl"
    data.write_text('{"id": "a", "problem": "What is 2+3?", "answer": "5"}\n'
                    '{"id": "b", "problem": "What is 4 times 3?", "answer": "12"}\n')
    preds = _write_lines(tmp_path / "p.jsonl", [json.dumps({"id": "a", "response": "\\boxed{5}"}).encode(),
                                                 json.dumps({"id": "b", "response": "\\boxed{12} \ud83d"}).encode(),
                                                 b'{"id": "b", "response": "caf\xe9"}'])
    r = score_responses("hs_league24", preds, data=str(data))
    assert r["n_problems"] == 2 and r["pass@1"] == pytest.approx(1 / 2)
    assert any("p.jsonl:2: field 'response': a lone UTF-16 surrogate" in p for p in r["problems"])
    assert any("p.jsonl:3: field '-': not UTF-8 text" in p for p in r["problems"])
