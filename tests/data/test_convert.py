"""``mmredstar data convert``: files written, rows skipped with their reasons, reruns, crashes, corrupt input.

    .venv/bin/python -m pytest -q tests/data/test_convert.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mmredstar.data import Card, Skip, convert
from mmredstar.io import read_samples, validate_file


def cli(*args, cwd=None):
    """Run the real command line in a subprocess."""
    return subprocess.run([sys.executable, "-m", "mmredstar.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_cli_convert_writes_valid_samples_and_round_trips(assets, tmp_path):
    out = tmp_path / "geo" / "geoqa_test.jsonl"
    r = cli("data", "convert", "--card", "geoqa", "--src", str(assets / "geoqa/original/test.pk"), "--out", str(out),
            "--quiet")
    assert r.returncode == 0, r.stderr
    assert "3 sample(s) written from 3 row(s)" in r.stdout
    # images written beside the output, paths relative to it; the file validates, images included
    assert sorted(os.listdir(tmp_path / "geo" / "geoqa_test_images")) == ["geoqa_0.png", "geoqa_1.png", "geoqa_2.png"]
    n, problems = validate_file(str(out), check_images=True)
    assert (n, problems) == (3, [])
    back = list(read_samples(str(out)))
    assert back[0].images[0].path == "geoqa_test_images/geoqa_0.png" and back[0].images[0].load().size == (48, 48)
    # lossless: what was read back is what the adapter built (image paths as seen from the output)
    from mmredstar.data import iter_card

    built = list(iter_card("geoqa", assets / "geoqa/original/test.pk", image_out=str(tmp_path / "geo" / "geoqa_test_images")))
    assert [s.to_dict(out_dir=str(out.parent)) for s in built] == [s.to_dict() for s in back]
    rep = json.loads((tmp_path / "geo" / "geoqa_test.jsonl.convert" / "report.json").read_text())
    assert rep["written"] == 3 and rep["skipped"] == 0
    v = cli("data", "validate", str(out))
    assert v.returncode == 0 and "ok: 3 record(s) valid" in v.stdout


def test_image_paths_are_rewritten_relative_to_the_output(assets, tmp_path):
    out = tmp_path / "deep" / "g3k.jsonl"
    convert("geometry3k", assets / "geometry3k/test", out, progress=False)
    back = list(read_samples(str(out)))
    assert back[0].images[0].load().size == (48, 48)
    assert not os.path.isabs(json.loads(out.read_text().splitlines()[0])["images"][0]["path"])


def test_corrupt_file_names_lines_and_fields_and_keeps_valid_rows(assets, tmp_path):
    out = tmp_path / "aime.jsonl"
    r = cli("data", "convert", "--card", "aime24", "--src", str(assets / "corrupt/aime_bad.jsonl"), "--out", str(out),
            "--quiet")
    assert r.returncode == 1  # rows were skipped and --allow-skips was not given
    assert "2 sample(s) written from 5 row(s)" in r.stdout and "3 SKIPPED" in r.stdout
    assert "aime_bad.jsonl:2: field '-': malformed JSON" in r.stdout
    assert "aime_bad.jsonl:3: field 'answer': missing reference answer" in r.stdout
    assert "aime_bad.jsonl:4: field 'problem': expected text, got list" in r.stdout
    assert "--allow-skips" in r.stderr
    kept = list(read_samples(str(out)))
    assert [s.meta["orig_id"] for s in kept] == ["1", "5"] and kept[1].answer == "5"
    skipped = [json.loads(x) for x in (tmp_path / "aime.jsonl.convert" / "skipped.jsonl").read_text().splitlines()]
    assert [(s["line"], s["field"]) for s in skipped] == [(2, "-"), (3, "answer"), (4, "problem")]
    assert skipped[1]["row"] == {"id": 3, "problem": "No answer here."}
    r2 = cli("data", "convert", "--card", "aime24", "--src", str(assets / "corrupt/aime_bad.jsonl"), "--out",
             str(tmp_path / "aime2.jsonl"), "--allow-skips", "--quiet")
    assert r2.returncode == 0


def test_corrupt_json_dict_names_lines_and_keys(assets, tmp_path):
    rep = convert("mathvista", assets / "corrupt/mathvista_bad.json", tmp_path / "mv.jsonl", progress=False)
    assert rep.written == 1 and rep.skipped == 2
    wheres = [e["where"] for e in rep.skip_examples]
    assert wheres == ["mathvista_bad.json:2 (key '7')", "mathvista_bad.json:35 (key '9')"]
    assert rep.skip_examples[0]["field"] == "answer" and rep.skip_examples[1]["field"] == "question_type"


def test_malformed_json_file_reports_the_line(tmp_path):
    src = tmp_path / "broken.json"
    src.write_text('[\n  {"problem": "1+1?", "answer": "2"},\n  {"problem": "2+2?", "answer": }\n]\n')
    rep = convert("aime24", src, tmp_path / "o.jsonl", progress=False)
    assert rep.written == 1 and rep.skipped == 1
    assert rep.skip_examples[0]["where"] == "broken.json:3" and "malformed JSON" in rep.skip_examples[0]["reason"]


def test_rerun_is_a_no_op_and_overwrite_redoes(assets, tmp_path):
    out = tmp_path / "m.jsonl"
    r1 = convert("math500", assets / "math500/test.jsonl", out, progress=False)
    mtime = os.stat(out).st_mtime_ns
    r2 = convert("math500", assets / "math500/test.jsonl", out, progress=False)
    assert r2.up_to_date and r2.written == r1.written == 3 and os.stat(out).st_mtime_ns == mtime
    r3 = convert("math500", assets / "math500/test.jsonl", out, subset="hard", progress=False)
    assert not r3.up_to_date and r3.written == 1  # different parameters: redone
    r4 = convert("math500", assets / "math500/test.jsonl", out, subset="hard", overwrite=True, progress=False)
    assert not r4.up_to_date and r4.written == 1
    r = cli("data", "convert", "--card", "math500", "--src", str(assets / "math500/test.jsonl"), "--out", str(out),
            "--subset", "hard", "--quiet")
    assert r.returncode == 0 and "up to date" in r.stdout


def test_a_crash_leaves_the_previous_output_intact(assets, tmp_path):
    src = assets / "amc23/test.jsonl"
    out = tmp_path / "amc.jsonl"
    convert("amc23", src, out, progress=False)
    before = out.read_bytes()

    def boom(row, ctx):
        if ctx.seq == 1:
            raise RuntimeError("killed mid-way")
        return row

    card = Card(name="amc23", columns={"question": "problem", "answer": "answer", "id": "id"}, adapter=boom)
    with pytest.raises(RuntimeError):
        convert(card, src, out, overwrite=True, progress=False)
    assert out.read_bytes() == before  # the finished file was not replaced by a partial one
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_parquet_output_and_shards(assets, tmp_path):
    out = tmp_path / "mv.parquet"
    rep = convert("mathvista", assets / "mathvista/testmini-00000-of-00001.parquet", out, progress=False)
    assert rep.written == 2
    back = list(read_samples(str(out)))
    assert [s.answer for s in back] == ["B", "1"]
    assert back[0].images[0].load().size == (48, 48)  # written as files beside the output, read back
    assert (tmp_path / "mv_images").is_dir()
    shards = convert("olympiadbench", assets / "olympiadbench/test.jsonl", tmp_path / "ob", shard_size=1,
                     progress=False)
    assert shards.written == 2
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith("ob-")) == ["ob-00000.jsonl", "ob-00001.jsonl"]


def test_limit_split_where_options_from_cli(assets, tmp_path):
    out = tmp_path / "t.jsonl"
    r = cli("data", "convert", "--card", "taco", "--src", str(assets / "taco/test.jsonl"), "--out", str(out),
            "--split", "train", "--where", "difficulty>=5", "--limit", "5", "--allow-skips", "--quiet",
            "--option", f"spj_file={assets / 'taco/spj.jsonl'}")
    assert r.returncode == 0, r.stderr
    got = list(read_samples(str(out)))
    assert len(got) == 1 and got[0].split == "train" and got[0].tests.fn_name == "largest"
    assert got[0].meta["special_judge"] is True
    bad = cli("data", "convert", "--card", "taco", "--src", str(assets / "taco/test.jsonl"), "--out", str(out),
              "--where", "difficulty >> 5")
    assert bad.returncode != 0 and "bad filter" in bad.stderr


def test_duplicates_keep_unique_ids_or_dedupe(tmp_path):
    src = tmp_path / "d.jsonl"
    src.write_text('{"problem": "1+1?", "answer": "2"}\n{"problem": "1+1?", "answer": "2"}\n{"problem": "2+2?", "answer": "4"}\n')
    out = tmp_path / "d_out.jsonl"
    rep = convert("amc23", src, out, progress=False)
    ids = [s.id for s in read_samples(str(out))]
    assert rep.written == 3 and rep.duplicates == 1 and len(set(ids)) == 3 and ids[1] == ids[0] + "-2"
    assert validate_file(str(out))[1] == []
    rep2 = convert("amc23", src, tmp_path / "d2.jsonl", dedupe=True, progress=False)
    assert rep2.written == 2 and rep2.filtered == 1


def test_unsafe_pickle_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    p = tmp_path / "evil.pk"
    p.write_bytes(pickle.dumps([Evil()]))
    r = cli("data", "convert", "--card", "geoqa", "--src", str(p), "--out", str(tmp_path / "e.jsonl"))
    assert r.returncode != 0 and "refusing to load" in r.stderr and "pwned" not in r.stdout
    assert "Traceback" not in r.stderr


def test_missing_source_and_unknown_card(tmp_path):
    r = cli("data", "convert", "--card", "geoqa", "--src", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl"))
    assert r.returncode != 0 and "file not found" in r.stderr
    r = cli("data", "convert", "--card", "nosuch", "--src", str(tmp_path), "--out", str(tmp_path / "o.jsonl"))
    assert r.returncode != 0 and "unknown data_cards asset" in r.stderr


def test_skip_from_a_hook_in_strict_mode_raises_with_location(assets):
    from mmredstar.data import iter_card
    from mmredstar.schema import DataError

    def hook(row, ctx):
        raise Skip("problem", "not today", "try tomorrow")

    card = Card(name="x", columns={"question": "problem", "answer": "answer"}, adapter=hook)
    with pytest.raises(DataError, match=r"test.jsonl:1: field 'problem': not today \(try tomorrow\)"):
        list(iter_card(card, assets / "amc23/test.jsonl", strict=True))


def test_json_layouts_one_record_dict_of_records_and_list(tmp_path):
    from mmredstar.data.sources import iter_file

    one = tmp_path / "one.json"  # a single record whose first value happens to be an object
    one.write_text(json.dumps({"metadata": {"task": "t"}, "problem": "1+1?", "answer": "2"}, indent=2))
    rows = list(iter_file(str(one)))
    assert len(rows) == 1 and rows[0].single and rows[0].data["answer"] == "2"
    many = tmp_path / "many.json"
    many.write_text('{\n "a": {"problem": "1+1?"},\n "b": {"problem": "2+2?"}\n}\n')
    assert [(r.key, r.line) for r in iter_file(str(many))] == [("a", 2), ("b", 3)]
    lst = tmp_path / "list.json"
    lst.write_text('[\n{"x": 1},\n\n{"x": 2}]')
    assert [(r.index, r.line) for r in iter_file(str(lst))] == [(0, 2), (1, 4)]
