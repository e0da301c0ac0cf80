"""Training data: names resolve (built-in, named sets, paths), records are checked for the method with
errors naming file, line and field, and the manifest hashes what was read.

    .venv/bin/python -m pytest -q tests/training/test_data.py
"""

import json

import pytest

from mmredstar.schema import DataError
from mmredstar.stages import sha256_file
from mmredstar.training.data import load_records, manifest, records_per_file, resolve_data


def test_builtin_sets_are_deterministic(tmp_path):
    a = resolve_data(["builtin:sft_vlm", "tiny_dpo_text"], root=None, work_dir=str(tmp_path / "a"))
    b = resolve_data(["builtin:sft_vlm", "tiny_dpo_text"], root=None, work_dir=str(tmp_path / "b"))
    assert [sha256_file(f.path) for f in a] == [sha256_file(f.path) for f in b]
    assert a[1].set_name == "tiny_dpo_text"
    recs = load_records(a[:1], kind="sft")
    assert len(recs) == 24 and recs[0][0].images[0].load().size == (64, 64)


def test_named_set_not_on_disk_says_how_to_make_it(tmp_path):
    with pytest.raises(DataError) as e:
        resolve_data(["redstar_math_4k"], root=str(tmp_path), work_dir=str(tmp_path / "w"))
    msg = str(e.value)
    assert "redstar_math_4k" in msg and "mmredstar curate" in msg and "MMREDSTAR_DATA" in msg


def test_named_set_resolves_under_data_root(tmp_path, records):
    (tmp_path / "redstar").mkdir()
    src = records["sft_text"][0][1]
    target = tmp_path / "redstar" / "math_sft_4k.jsonl"
    target.write_text(open(src).read())
    files = resolve_data(["redstar_math_4k"], root=str(tmp_path), work_dir=str(tmp_path / "w"))
    assert [f.path for f in files] == [str(target)]
    recs = load_records(files, kind="sft", limit=5)
    (entry,) = manifest(files, records_per_file(recs))
    assert entry["records"] == 5 and entry["set"] == "redstar_math_4k" and entry["sha256"] == sha256_file(target)


def test_wrong_records_for_the_method_name_file_and_line(tmp_path, records):
    sft_file = records["sft_text"][0][1]
    lines = open(sft_file).read().splitlines()
    bad = json.loads(lines[2])
    bad["responses"] = bad["responses"] * 2
    p = tmp_path / "two.jsonl"
    p.write_text("\n".join([lines[0], lines[1], json.dumps(bad)]) + "\n")
    files = resolve_data([str(p)], root=None, work_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"two.jsonl:3: field 'responses': an SFT sample needs exactly one"):
        load_records(files, kind="sft")
    with pytest.raises(DataError, match=r"two.jsonl:1: field 'chosen': a DPO file holds pairs"):
        load_records(files, kind="dpo")
    dpo = resolve_data(["builtin:dpo_text"], root=None, work_dir=str(tmp_path))
    with pytest.raises(DataError, match="this is a DPO pair"):
        load_records(dpo, kind="sft")
    with pytest.raises(DataError, match="named set"):
        resolve_data(["no_such_file.jsonl"], root=None, work_dir=str(tmp_path))
