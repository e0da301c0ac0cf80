import io
import json

import pytest
from PIL import Image

from mmredstar.io import (
    SampleWriter,
    count_records,
    from_hf_dataset,
    read_samples,
    to_hf_dataset,
    validate_file,
    write_parquet,
    write_samples,
)
from mmredstar.schema import CodeTests, DataError, ImageRef, Message, Pair, Response, Sample


def _png(color=(255, 0, 0), size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _samples(tmp_path):
    img_dir = tmp_path / "src" / "images"
    img_dir.mkdir(parents=True)
    (img_dir / "a.png").write_bytes(_png())
    root = str(tmp_path / "src")
    s1 = Sample.with_images("Find x.", [ImageRef(path="images/a.png", root=root)], "B", "choice",
                            choices=["1", "2", "3", "4"], source="geoqa", split="train", difficulty=3.0,
                            meta={"k": [1, 2]}, provenance={"file": "x.json", "line": 3})
    s1.responses.append(Response("think... Answer: B", finish_reason="stop", completion_tokens=5,
                                 gen={"teacher": "t", "temperature": 1.0, "n": 2}, verdict="correct", reward=1.0,
                                 extracted="B"))
    s2 = Sample(prompt=[Message.make("system", "be brief"), Message.make("user", "hi ", 0, " and ", 1)],
                images=[ImageRef(bytes=_png((0, 0, 255))), ImageRef(bytes=_png((0, 255, 0), (4, 4)))],
                answer="\\frac{1}{2}", answer_type="math")
    s3 = Sample.text("Print the sum.", None, "code", tests=CodeTests(["1 2\n"], ["3\n"]), source="taco")
    s4 = Sample.text("f(x)?", None, "code", tests=CodeTests([[1, 2]], [3], fn_name="add"))
    p = Pair.from_sample(s1, Response("good \\boxed{B}", verdict="correct", reward=1.0),
                         Response("bad", verdict="no_answer", reward=-1.0), rule="random")
    return [s1, s2, s3, s4, p]


def test_ids_are_content_derived_and_stable(tmp_path):
    a = Sample.text("What is 1+1?", "2")
    b = Sample.text("What is 1+1?", "2", difficulty=5, meta={"x": 1})
    c = Sample.text("What is 1+2?", "3")
    assert a.id == b.id != c.id
    assert len(a.id) == 16
    # the same image bytes give the same id whatever the object
    i1 = Sample.with_images("q", [ImageRef(bytes=_png())], "1")
    i2 = Sample.with_images("q", [ImageRef(bytes=_png())], "1")
    assert i1.id == i2.id


def test_jsonl_round_trip_is_lossless(tmp_path):
    ss = _samples(tmp_path)
    out = tmp_path / "out" / "s.jsonl"
    assert write_samples(out, ss) == 5
    back = list(read_samples(out))
    assert [type(x) for x in back] == [type(x) for x in ss]
    assert [x.to_dict() for x in back] == [x.to_dict(out_dir=str(out.parent)) for x in ss]
    # the relative image path was rewritten so it still opens from the new place
    assert back[0].images[0].path == "../src/images/a.png"
    assert back[0].images[0].load().size == (8, 6)
    assert back[1].images[1].load().size == (4, 4)
    assert isinstance(back[4], Pair) and back[4].rejected.reward == -1.0 and back[4].meta["rule"] == "random"


def test_gzip_and_shards(tmp_path):
    ss = _samples(tmp_path)
    with SampleWriter(tmp_path / "sh" / "part", shard_size=2) as w:
        w.write_all(ss)
    assert [p.rsplit("/", 1)[1] for p in w.shards] == ["part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]
    assert count_records(tmp_path / "sh") == 5
    assert [x.id for x in read_samples(tmp_path / "sh")] == [x.id for x in ss]
    write_samples(tmp_path / "z.jsonl.gz", ss)
    gz = [x.to_dict(out_dir=str(tmp_path)) for x in read_samples(tmp_path / "z.jsonl.gz")]
    assert gz == [x.to_dict(out_dir=str(tmp_path)) for x in read_samples(tmp_path / "sh")]


def test_parquet_and_hf_round_trip(tmp_path):
    ss = _samples(tmp_path)
    pq = tmp_path / "pq" / "s.parquet"
    write_parquet(pq, ss, batch_size=2)
    back = list(read_samples(pq))
    ref = _write(tmp_path, ss)
    assert [x.to_dict(out_dir=str(tmp_path)) for x in back] == [x.to_dict(out_dir=str(tmp_path))
                                                                for x in read_samples(ref)]
    ds = to_hf_dataset(ss)
    assert len(ds) == 5
    hf_back = list(from_hf_dataset(ds))
    assert [x.id for x in hf_back] == [x.id for x in ss]
    # images were embedded: the same pixels, no path needed
    assert hf_back[0].images[0].load().tobytes() == ss[0].images[0].load().tobytes()
    assert hf_back[3].tests.fn_name == "add" and isinstance(hf_back[4], Pair)


def _write(tmp_path, ss):
    p = tmp_path / "ref" / "s.jsonl"
    write_samples(p, ss)
    return p


def test_atomic_writer_leaves_nothing_on_crash(tmp_path):
    out = tmp_path / "o.jsonl"
    with pytest.raises(RuntimeError):
        with SampleWriter(out) as w:
            w.write(Sample.text("a", "1"))
            raise RuntimeError("boom")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_validation_reports_every_problem_with_line_and_field(tmp_path):
    good = Sample.text("q", "1").to_dict()
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "answer_type": "maths"}),
        json.dumps({**good, "answer": 5}),
        json.dumps({**good, "prompt": [{"role": "user", "content": [{"type": "image", "index": 0}]}]}),
        json.dumps({**good, "images": [{"path": "missing.png"}],
                    "prompt": [{"role": "user", "content": [{"type": "image", "index": 0}]}]}),
        json.dumps({**good, "answer_type": "choice", "answer": "E", "choices": ["a", "b"]}),
        json.dumps({**good, "responses": [{"text": 3, "verdict": "maybe"}]}),
    ]
    f = tmp_path / "bad.jsonl"
    f.write_text("\n".join(lines) + "\n")
    n, problems = validate_file(f)
    assert n == 8
    where = {(p.line, p.field) for p in problems}
    assert (2, "-") in where
    assert (3, "answer_type") in where
    assert (4, "answer") in where
    assert (5, "prompt[0].content[0].index") in where
    assert (6, "images[0].path") in where
    assert (7, "answer") in where
    assert {(8, "responses[0].text"), (8, "responses[0].verdict")} <= where
    assert 1 not in {p.line for p in problems}
    msg = str(next(p for p in problems if p.line == 4))
    assert "bad.jsonl:4" in msg and "'answer'" in msg and 'write it as a string' in msg
    # reading stops at the first problem with the same location
    with pytest.raises(DataError, match="bad.jsonl:2"):
        list(read_samples(f))
    assert len(list(read_samples(f, on_error="skip"))) == 2  # line 6 only fails when images are opened


def test_embedded_image_bytes_that_do_not_decode(tmp_path):
    d = Sample.with_images("q", [ImageRef(bytes=b"not an image")], "1").to_dict()
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps(d) + "\n")
    _, problems = validate_file(f)
    assert [p.field for p in problems] == ["images[0].bytes"]
    d["images"][0]["bytes"] = "%%%"
    f.write_text(json.dumps(d) + "\n")
    _, problems = validate_file(f)
    assert "base64" in problems[0].message


def test_streaming_reader_is_lazy(tmp_path):
    # a reader over a huge file yields the first record without reading the rest
    f = tmp_path / "big.jsonl"
    line = json.dumps(Sample.text("q", "1").to_dict()) + "\n"
    with open(f, "w") as fh:
        fh.write(line)
        fh.write("{broken\n" * 10)
    it = read_samples(f)
    assert next(it).answer == "1"


def test_cli_validate_and_stats(tmp_path):
    from click.testing import CliRunner

    from mmredstar.cli import cli

    ss = _samples(tmp_path)
    f = tmp_path / "ok" / "s.jsonl"
    write_samples(f, ss)
    r = CliRunner().invoke(cli, ["data", "validate", str(f)])
    assert r.exit_code == 0, r.output
    assert "5 record(s) valid" in r.output
    r = CliRunner().invoke(cli, ["data", "stats", "--json", str(f)])
    st = json.loads(r.output)
    assert st["records"] == 5 and st["answer_type"] == {"choice": 2, "code": 2, "math": 1} and st["pairs"] == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1]\n" + json.dumps({"prompt": []}) + "\n")
    r = CliRunner().invoke(cli, ["data", "validate", str(bad)])
    assert r.exit_code == 1
    assert "bad.jsonl:1" in r.output and "bad.jsonl:2: field 'answer_type'" in r.output
    assert "bad.jsonl:2: field 'prompt'" in r.output
