"""The one resume mechanism (mmredstar/stages.py): fingerprints, file hashes, the stage marker, and the
steps that use it (GeoQA stages redone when a file they name or read changes; subsets; mixtures)."""

from __future__ import annotations

import doctest
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import mmredstar.stages as stages
from mmredstar.stages import Marker, asset_sha256, canonical_json, file_hashes, fingerprint, sha256_file


def test_doctests():
    assert doctest.testmod(stages).failed == 0


def test_fingerprint_is_stable_and_sees_every_field():
    @dataclass
    class Cfg:
        lr: float = 1e-5
        files: list = field(default_factory=lambda: [Path("a.jsonl")])
        tags: set = field(default_factory=lambda: {"b", "a"})

    a = fingerprint(Cfg())
    assert a == fingerprint(Cfg(tags={"a", "b"})) == fingerprint({"tags": ["a", "b"], "lr": 1e-5, "files": ["a.jsonl"]})
    assert a != fingerprint(Cfg(lr=2e-5)) and a != fingerprint(Cfg(files=[Path("b.jsonl")]))
    assert len(a) == 64 and fingerprint(Cfg(), 16) == a[:16]
    assert canonical_json({"x": (1, 2)}) == '{"x": [1, 2]}'


def test_file_hashes_files_dirs_missing(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text("x")
    (tmp_path / "f.txt").write_bytes(b"abc")
    h = file_hashes([tmp_path / "f.txt", tmp_path / "d", tmp_path / "nope"])
    assert h[str(tmp_path / "f.txt")] == sha256_file(tmp_path / "f.txt") == \
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert h[str(tmp_path / "nope")] is None
    before = h[str(tmp_path / "d")]
    (tmp_path / "d" / "x.txt").write_text("y")
    assert file_hashes([tmp_path / "d"])[str(tmp_path / "d")] != before


def test_marker_redo_when_output_changes_or_goes_missing(tmp_path):
    out, inp = tmp_path / "out.jsonl", tmp_path / "in.jsonl"
    inp.write_text("1\n")
    out.write_text("2\n")
    m = Marker(tmp_path / "m" / "stage.json")
    st = m.mark("fp", [inp], {"out": out}, counts={"n": 1})
    assert json.loads(m.path.read_text()) == st and st["inputs"] == {str(inp): sha256_file(inp)}
    assert m.check("fp", [inp]) == st
    assert m.check("fp", {str(inp): sha256_file(inp)}) == st           # hashes computed already
    assert m.check("fp", [inp, tmp_path / "other"]) is None            # another input set
    out.write_text("tampered\n")
    assert m.check("fp", [inp]) is None
    assert m.check("fp", [inp], hash_outputs=False) is not None        # exists is enough when asked
    out.unlink()
    assert m.check("fp", [inp], hash_outputs=False) is None
    m.clear()
    assert m.read() is None and m.check("fp") is None
    m.path.write_text("{not json")
    assert m.check("fp") is None                                       # a torn marker is "not done"


def test_asset_sha256_follows_the_file(tmp_path):
    rec = tmp_path / "my_sft.yaml"
    shutil.copy(Path("train/tiny/sft.yaml"), rec)
    a = asset_sha256("train", str(rec))
    assert a == sha256_file(rec) and asset_sha256("train", "tiny/sft") == a
    rec.write_text(rec.read_text() + "\n# edited\n")
    assert asset_sha256("train", str(rec)) != a
    assert asset_sha256("models", "Qwen/Qwen2.5-7B-Instruct") is None and asset_sha256("models", None) is None


def test_geoqa_stage_redone_when_recipe_file_or_output_changes(tmp_path):
    from mmredstar.io import read_jsonl
    from mmredstar.workflows.geoqa import load_config, run_prepare, stage_hash, stage_state

    rec = tmp_path / "sft.yaml"
    shutil.copy(Path("train/tiny/sft.yaml"), rec)
    ov = [f"out={tmp_path / 'gq'}", f"sft.recipe={rec}", "prepare.generate.splits={train: 8, test: 4}"]
    cfg = load_config("configs/geoqa/tiny.yaml", ov)
    h = {s: stage_hash(cfg, s) for s in ("prepare", "curate", "sft", "dpo")}
    rec.write_text(rec.read_text() + "\n# a comment is an edit too\n")
    cfg2 = load_config("configs/geoqa/tiny.yaml", ov)
    assert [s for s in h if stage_hash(cfg2, s) != h[s]] == ["sft", "dpo"]

    st = run_prepare(cfg2)
    assert stage_state(cfg2, "prepare")["counts"] == st["counts"]
    test = Path(st["outputs"]["test"])
    rows = list(read_jsonl(test))
    test.write_text("".join(json.dumps(r) + "\n" for r in rows[:-1]))    # an output edited by hand
    assert stage_state(cfg2, "prepare") is None
    test.unlink()
    assert stage_state(cfg2, "prepare") is None


def test_subsets_and_mixture_manifests_are_markers(tmp_path):
    from mmredstar.data.mixture import draw_mixture
    from mmredstar.data.subset import build_subsets
    from mmredstar.io import write_samples
    from mmredstar.schema import Sample

    pool = tmp_path / "pool.jsonl"
    write_samples(pool, [Sample.text(f"q{i}", str(i), difficulty=1 + i % 9) for i in range(40)])
    mans = build_subsets(str(pool), tmp_path / "s", sizes="10,all", progress=False)
    idx = Marker(tmp_path / "s" / "subsets.json").read()
    assert idx["subsets"] == mans and set(idx["outputs"]) == {"10", "all"}
    assert idx["output_sha256"][str(tmp_path / "s" / "10.jsonl")] == mans[0]["sha256"]
    (tmp_path / "s" / "10.jsonl").write_text("")                   # damaged: rebuilt on the next call
    again = build_subsets(str(pool), tmp_path / "s", sizes="10,all", progress=False)
    assert [m["ids_sha256"] for m in again] == [m["ids_sha256"] for m in mans]
    assert sha256_file(tmp_path / "s" / "10.jsonl") == mans[0]["sha256"]

    man = draw_mixture([{"path": str(pool), "count": 5}], tmp_path / "m.jsonl", seed=1)
    assert Marker(tmp_path / "m.jsonl.manifest.json").check(man["fingerprint"], {str(pool): sha256_file(pool)}) == man
    with open(pool, "a") as f:
        f.write(json.dumps(Sample.text("extra", "0").to_dict()) + "\n")
    man2 = draw_mixture([{"path": str(pool), "count": 5}], tmp_path / "m.jsonl", seed=1)
    assert man2["fingerprint"] != man["fingerprint"] and man2["sources"][0]["available"] == 41
