"""Export of RL prompt sets to verl's parquet and OpenRLHF's JSONL: columns, round trips, empty sets, errors."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mmredstar.data.cli import data as data_cli
from mmredstar.data.export import FORMATS, export
from mmredstar.io import read_jsonl, read_samples, write_samples
from mmredstar.schema import CodeTests, Sample
from mmredstar.synth.builtins import write_builtin


def _mixed(tmp_path):
    rows = [Sample.text("What is 2+3?", "5", source="arith", split="train"),
            Sample.text("Pick the prime.", "B", "choice", choices=["4", "5", "6"], source="mcq"),
            Sample.text("Print the input doubled.", None, "code", tests=CodeTests(["2\n"], ["4\n"]), source="code",
                        system="You are careful.")]
    p = tmp_path / "rl.jsonl"
    write_samples(p, rows)
    return p, rows


def test_verl_parquet_columns_and_round_trip(tmp_path):
    src, rows = _mixed(tmp_path)
    out = tmp_path / "rl.parquet"
    assert export(src, out, "verl") == 3
    t = pq.read_table(out)
    assert t.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    got = t.to_pylist()
    assert got[0]["data_source"] == "arith"
    assert got[0]["prompt"] == [{"role": "user", "content": "What is 2+3?"}]
    assert got[0]["ability"] == "math"
    assert got[0]["reward_model"] == {"style": "rule", "ground_truth": "5"}
    assert got[0]["extra_info"]["index"] == 0 and got[0]["extra_info"]["split"] == "train"
    assert got[2]["prompt"][0] == {"role": "system", "content": "You are careful."}
    assert got[2]["reward_model"]["ground_truth"] == ""
    for row, s in zip(got, rows, strict=True):  # the whole record comes back (choices, tests, id)
        back = Sample.from_dict(json.loads(row["extra_info"]["sample"]))
        assert back == s and row["extra_info"]["id"] == s.id


def test_openrlhf_jsonl_round_trip(tmp_path):
    src, rows = _mixed(tmp_path)
    out = tmp_path / "rl_openrlhf.jsonl"
    assert export(src, out, "openrlhf") == 3
    got = list(read_jsonl(out))
    assert set(got[0]) == {"input", "label", "datasource"}
    assert got[1]["input"] == [{"role": "user", "content": "Pick the prime."}]
    assert [Sample.from_dict(json.loads(g["label"])) for g in got] == rows


def test_images_are_embedded_for_verl(tmp_path):
    src = write_builtin("rl_vlm", str(tmp_path / "vlm"))
    samples = list(read_samples(src))
    out = tmp_path / "vlm.parquet"
    assert export(src, out, "verl") == len(samples) == 16
    got = pq.read_table(out).to_pylist()
    assert "<image>" in got[0]["prompt"][-1]["content"]
    assert got[0]["images"][0]["bytes"] == samples[0].images[0].read_bytes()
    assert got[0]["images"][0]["bytes"][:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_empty_set_is_a_valid_file(tmp_path, fmt):
    src = tmp_path / "empty.jsonl"
    src.write_text("")
    out = tmp_path / f"out.{fmt}"
    assert export(src, out, fmt) == 0
    if fmt == "verl":
        assert pq.read_table(out).num_rows == 0
    else:
        assert out.read_text() == ""


def test_cli_and_errors(tmp_path):
    src, _ = _mixed(tmp_path)
    r = CliRunner().invoke(data_cli, ["export", "--src", str(src), "--out", str(tmp_path / "o.parquet"), "--format", "verl"])
    assert r.exit_code == 0, r.output
    assert "wrote 3 row(s)" in r.output
    r = CliRunner().invoke(data_cli, ["export", "--src", str(src), "--out", str(tmp_path / "o"), "--format", "verll"])
    assert r.exit_code != 0 and "did you mean 'verl'" in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": 3}\n')
    r = CliRunner().invoke(data_cli, ["export", "--src", str(bad), "--out", str(tmp_path / "b.jsonl"), "--format", "openrlhf"])
    assert r.exit_code != 0 and "bad.jsonl" in r.output and ":1" in r.output
    assert not (tmp_path / "b.jsonl").exists()  # nothing half-written
