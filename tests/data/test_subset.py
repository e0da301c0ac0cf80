"""Nested, seeded subsets: sizes, bands, prompts vs pairs; exact manifests; reruns; errors; bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmredstar.data.cli import data as data_cli
from mmredstar.data.subset import build_subsets, ids_hash, order_key
from mmredstar.io import read_jsonl, read_samples, write_samples
from mmredstar.levels import band
from mmredstar.schema import DataError, Response
from mmredstar.stages import sha256_file
from mmredstar.synth.arithmetic import arithmetic_problems


def sft_pool(path: Path, n_prompts: int = 60, seed: int = 0) -> Path:
    """An SFT-like file: 1-4 responses per prompt (ids <prompt>-<k>, meta.prompt_id), difficulty 1-9."""
    out = []
    for i, s in enumerate(arithmetic_problems(n_prompts, seed)):
        for k in range(1 + i % 4):
            r = Response(text=f"{s.meta['reference_cot']} ({k})", finish_reason="stop", verdict="correct")
            rec = s.__class__(**{**s.__dict__, "responses": [r], "id": f"{s.id}-{k}",
                                 "meta": {**s.meta, "prompt_id": s.id}})
            out.append(rec)
    write_samples(path, out)
    return path


def ids_of(path) -> list[str]:
    return [d["id"] for d in read_jsonl(path)]


def check_manifest(out: Path, man: dict, inputs: list[Path]):
    """Recompute every number of a manifest from the files themselves."""
    f = out / man["path"]
    recs = list(read_jsonl(f))
    assert man["records"] == len(recs)
    assert man["sha256"] == sha256_file(f)
    assert man["ids_sha256"] == ids_hash([r["id"] for r in recs])
    assert man["prompts"] == len({(r.get("meta") or {}).get("prompt_id", r["id"]) for r in recs})
    bands = Counter(str(band(r["difficulty"])) if r.get("difficulty") is not None else "unknown" for r in recs)
    assert man["counts"]["band"] == dict(bands)
    assert man["counts"]["source"] == dict(Counter(r["source"] for r in recs))
    assert man["counts"]["answer_type"] == dict(Counter(r["answer_type"] for r in recs))
    assert man["counts"]["domain"] == dict(Counter((r.get("meta") or {}).get("domain") or r["answer_type"] for r in recs))
    assert [s["path"] for s in man["sources"]] == [str(p) for p in inputs]
    for s, p in zip(man["sources"], inputs, strict=True):
        assert s["sha256"] == sha256_file(p) and s["records"] == sum(1 for _ in read_jsonl(p))
    assert json.loads((out / f"{man['name']}.manifest.json").read_text()) == man


def test_size_ladder_nested_reproducible_and_exact(tmp_path):
    pool = sft_pool(tmp_path / "pool.jsonl")
    n = sum(1 for _ in read_jsonl(pool))
    mans = build_subsets([str(pool)], tmp_path / "a", sizes="20,50,all", seed=7, progress=False)
    assert [m["name"] for m in mans] == ["20", "50", "all"] and [m["records"] for m in mans] == [20, 50, n]
    a20, a50, aall = (set(ids_of(tmp_path / "a" / f"{x}.jsonl")) for x in ("20", "50", "all"))
    assert a20 < a50 < aall and len(aall) == n
    # the k smallest sha256(seed:id): recomputed independently
    all_ids = ids_of(pool)
    assert a20 == set(sorted(all_ids, key=lambda i: order_key(7, i))[:20])
    for m in mans:
        check_manifest(tmp_path / "a", m, [pool])
        assert m["seed"] == 7 and m["rule"] == {"kind": "size", "size": None if m["name"] == "all" else int(m["name"])}
    # same seed -> same ids (another directory); records keep input order and content
    again = build_subsets([str(pool)], tmp_path / "b", sizes=[20, 50], seed=7, progress=False)
    assert [m["ids_sha256"] for m in again] == [m["ids_sha256"] for m in mans[:2]]
    src = {d["id"]: d for d in read_jsonl(pool)}
    rows = list(read_jsonl(tmp_path / "a" / "20.jsonl"))
    assert [r["id"] for r in rows] == [i for i in all_ids if i in a20]
    assert all(r == src[r["id"]] for r in rows)
    # another seed -> another draw
    other = build_subsets([str(pool)], tmp_path / "c", sizes=[20], seed=8, progress=False)
    assert other[0]["ids_sha256"] != mans[0]["ids_sha256"]


def test_choice_does_not_depend_on_file_order_or_sharding(tmp_path):
    pool = sft_pool(tmp_path / "pool.jsonl")
    rows = list(read_jsonl(pool))
    (tmp_path / "s").mkdir()
    half = len(rows) // 2
    for name, part in (("s/b.jsonl", rows[:half]), ("s/a.jsonl", rows[half:][::-1])):
        with open(tmp_path / name, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in part)
    one = build_subsets([str(pool)], tmp_path / "one", sizes=[30], seed=1, progress=False)[0]
    two = build_subsets([str(tmp_path / "s")], tmp_path / "two", sizes=[30], seed=1, progress=False)[0]
    assert set(ids_of(tmp_path / "one" / "30.jsonl")) == set(ids_of(tmp_path / "two" / "30.jsonl"))
    assert two["sources"][0]["path"].endswith("a.jsonl") and len(two["sources"]) == 2
    check_manifest(tmp_path / "two", two, [tmp_path / "s" / "a.jsonl", tmp_path / "s" / "b.jsonl"])
    assert one["counts"] == two["counts"]


def test_bands_and_bands_by_size(tmp_path):
    pool = sft_pool(tmp_path / "pool.jsonl")
    mans = build_subsets(str(pool), tmp_path / "b", bands="low=1-3,mid=4-6,high=7-9", seed=0, progress=False)
    by = {m["name"]: m for m in mans}
    all_rows = list(read_jsonl(pool))
    for name, lo, hi in (("low", 1, 3), ("mid", 4, 6), ("high", 7, 9)):
        rows = list(read_jsonl(tmp_path / "b" / f"{name}.jsonl"))
        assert rows and all(lo <= band(r["difficulty"]) <= hi for r in rows)
        assert len(rows) == sum(lo <= band(r["difficulty"]) <= hi for r in all_rows)
        check_manifest(tmp_path / "b", by[name], [pool])
    cut = build_subsets(str(pool), tmp_path / "c", bands={"low": "1-3", "high": "7-9"}, sizes="10,20", seed=0,
                        progress=False)
    assert [m["name"] for m in cut] == ["low_10", "low_20", "high_10", "high_20"]
    assert set(ids_of(tmp_path / "c" / "high_10.jsonl")) < set(ids_of(tmp_path / "c" / "high_20.jsonl")) \
        <= set(ids_of(tmp_path / "b" / "high.jsonl"))
    with pytest.raises(ValueError, match="overlap"):
        build_subsets(str(pool), tmp_path / "d", bands="a=1-5,b=5-9", progress=False)


def test_prompts_then_pairs_round_robin(tmp_path):
    pool = sft_pool(tmp_path / "pool.jsonl", n_prompts=40)
    mans = build_subsets(str(pool), tmp_path / "p", prompts=13, pairs="13,30", seed=3, progress=False)
    assert [m["name"] for m in mans] == ["prompts13_pairs13", "prompts13_pairs30"]
    small, big = (list(read_jsonl(tmp_path / "p" / f"{m['name']}.jsonl")) for m in mans)
    pid = lambda r: r["meta"]["prompt_id"]  # noqa: E731
    assert len({pid(r) for r in big}) == 13 and len(big) == 30
    assert {pid(r) for r in small} == {pid(r) for r in big} and len(small) == 13   # one record per prompt first
    assert {r["id"] for r in small} < {r["id"] for r in big}
    # the 13 prompts with the smallest prompt keys
    prompts = {pid(r) for r in read_jsonl(pool)}
    assert {pid(r) for r in big} == set(sorted(prompts, key=lambda p: order_key(3, "prompt:" + p))[:13])
    # round-robin: per prompt, min(its records, level) ... counts differ by at most one among prompts with room
    per = Counter(pid(r) for r in big)
    avail = Counter(pid(r) for r in read_jsonl(pool) if pid(r) in per)
    full = [p for p in per if per[p] < avail[p]]
    assert all(per[p] >= max(per[q] for q in per) - 1 for p in full)
    for m in mans:
        check_manifest(tmp_path / "p", m, [pool])
        assert m["rule"]["prompts"] == 13 and m["rule"]["prompts_chosen"] == 13
    with pytest.raises(ValueError, match="distinct prompts"):
        build_subsets(str(pool), tmp_path / "q", prompts=1000, pairs=5, progress=False)


def test_short_rerun_and_overwrite(tmp_path):
    pool = sft_pool(tmp_path / "pool.jsonl", n_prompts=10)
    n = sum(1 for _ in read_jsonl(pool))
    with pytest.raises(ValueError, match="allow-short"):
        build_subsets(str(pool), tmp_path / "s", sizes=[n + 5], progress=False)
    m = build_subsets(str(pool), tmp_path / "s", sizes=[n + 5], allow_short=True, progress=False)[0]
    assert m["short"] and m["records"] == n
    out = tmp_path / "s" / f"{n + 5}.jsonl"
    before = out.stat().st_mtime_ns
    again = build_subsets(str(pool), tmp_path / "s", sizes=[n + 5], allow_short=True, progress=False)[0]
    assert again == m and out.stat().st_mtime_ns == before        # up to date: nothing rewritten
    build_subsets(str(pool), tmp_path / "s", sizes=[n + 5], allow_short=True, overwrite=True, progress=False)
    assert out.stat().st_mtime_ns != before


def test_bad_records_are_reported_with_file_line_and_field(tmp_path):
    pool = sft_pool(tmp_path / "pool.jsonl", n_prompts=5)
    lines = pool.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines[:2] + ["{not json"] + lines[2:]) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:3"):
        build_subsets(str(bad), tmp_path / "x", sizes=[3], progress=False)
    d = json.loads(lines[0])
    d["difficulty"] = "hard"
    bad.write_text(json.dumps(d) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:1.*difficulty"):
        build_subsets(str(bad), tmp_path / "x", bands="low=1-3", progress=False)


def test_images_keep_pointing_at_their_files(tmp_path, assets):
    src = assets / "geoqa"
    from mmredstar.data import iter_card

    ss = list(iter_card("geoqa", str(src / "qa" / "test_questions.jsonl"), image_dir=str(src / "qa" / "images")))
    write_samples(tmp_path / "in" / "geo.jsonl", ss)
    build_subsets(str(tmp_path / "in" / "geo.jsonl"), tmp_path / "deep" / "out", sizes="all", progress=False)
    back = list(read_samples(tmp_path / "deep" / "out" / "all.jsonl"))
    assert back and all(im.load().size[0] > 0 for s in back for im in s.images)


def test_cli(tmp_path):
    pool = sft_pool(tmp_path / "pool.jsonl", n_prompts=20)
    r = CliRunner().invoke(data_cli, ["subset", str(pool), "--out", str(tmp_path / "o"), "--sizes", "10,all", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "10:" in r.output and (tmp_path / "o" / "10.manifest.json").exists()
    r = CliRunner().invoke(data_cli, ["subset", str(pool), "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code != 0 and "say what to build" in r.output
    r = CliRunner().invoke(data_cli, ["subset", str(pool), "--out", str(tmp_path / "o"), "--sizes", "ten"])
    assert r.exit_code != 0 and "size 'ten'" in r.output


MEM_SCRIPT = r"""
import sys, json
from mmredstar.data.subset import build_subsets
build_subsets(sys.argv[1], sys.argv[2], sizes=[500, 1000], bands=None, seed=0, progress=False)
print(json.dumps([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0]))
"""


def _big(path: Path, n: int) -> Path:
    pad = "x" * 400
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"r{i}", "source": "big", "prompt": [{"role": "user", "content": [
                {"type": "text", "text": f"q{i} {pad}"}]}], "answer": "1", "answer_type": "math",
                "difficulty": 1 + i % 9, "meta": {"prompt_id": f"p{i // 3}"}}) + "\n")
    return path


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc (VmHWM)")
def test_memory_is_flat_in_the_input_size(tmp_path):
    """A 10x larger input (40k vs 4k records, ~20 MB) must not need 10x the memory: nothing is held per record."""
    peaks = []
    for n in (4000, 40000):
        f = _big(tmp_path / f"big{n}.jsonl", n)
        r = subprocess.run([sys.executable, "-c", MEM_SCRIPT, str(f), str(tmp_path / f"o{n}")], capture_output=True,
                           text=True, check=True)
        peaks.append(int(r.stdout.strip().splitlines()[-1]))
    size_mb = (tmp_path / "big40000.jsonl").stat().st_size / 2 ** 20
    print(f"VmHWM {peaks[0] / 1024:.1f} MB (4k records) -> {peaks[1] / 1024:.1f} MB (40k records, {size_mb:.0f} MB)")
    assert (peaks[1] - peaks[0]) / 1024 < max(8.0, 0.25 * size_mb), (peaks, size_mb)
