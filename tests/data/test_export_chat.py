"""Exports to TRL (SFT, DPO), ShareGPT, LLaMA-Factory and ms-swift: each round-trips through our reading side
(the card of the same name), the TRL files go through TRL's own dataset preparation, empty sets are valid.

    .venv/bin/python -m pytest -q tests/data/test_export_chat.py
"""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from mmredstar.data import iter_card
from mmredstar.data.cli import data as data_cli
from mmredstar.data.export import FORMATS, export
from mmredstar.io import read_samples, write_samples
from mmredstar.schema import Pair
from mmredstar.synth.builtins import write_builtin

CARD = {"trl-sft": "trl", "trl-dpo": "trl", "sharegpt": "sharegpt", "llamafactory": "llamafactory", "swift": "swift"}


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    d = tmp_path_factory.mktemp("sets")
    return {n: write_builtin(n, str(d)) for n in ("sft_text", "sft_vlm", "dpo_text", "dpo_vlm", "rl_text", "rl_vlm")}


def same(orig, back):
    """What an export must keep: prompt turns (image places), images' bytes, targets, reference, id."""
    assert len(back) == len(orig)
    for s, t in zip(orig, back, strict=True):
        assert [m.to_dict() for m in t.prompt] == [m.to_dict() for m in s.prompt]
        assert [im.read_bytes() for im in t.images] == [im.read_bytes() for im in s.images]
        assert (t.answer, t.answer_type, t.choices) == (s.answer, s.answer_type, s.choices)
        assert t.meta["orig_id"] == s.id
        if isinstance(s, Pair):
            assert isinstance(t, Pair) and (t.chosen.text, t.rejected.text) == (s.chosen.text, s.rejected.text)
        else:
            assert [r.text for r in t.responses] == [r.text for r in s.responses]


@pytest.mark.parametrize("fmt", ["trl-sft", "trl-dpo", "sharegpt", "llamafactory", "swift"])
@pytest.mark.parametrize("images", ["path", "embed"])
def test_round_trip_through_the_reading_side(tmp_path, sets, fmt, images):
    names = ["dpo_text", "dpo_vlm"] if fmt == "trl-dpo" else (
        ["sft_text", "sft_vlm", "rl_vlm"] if fmt == "trl-sft" else ["sft_vlm", "dpo_vlm", "rl_text"])
    for name in names:
        orig = list(read_samples(sets[name]))
        out = tmp_path / name / f"{name}.jsonl"
        assert export(sets[name], out, fmt, images=images) == len(orig)
        back = list(iter_card(CARD[fmt], out))
        same(orig, back)
        first = json.loads(out.read_text().splitlines()[0])
        if orig[0].images:
            v = first["images"][0]
            if images == "embed":
                assert v.startswith("data:image/png;base64,")
            else:  # a path relative to the export's folder
                assert not v.startswith("data:") and (out.parent / v).is_file()
    if fmt == "llamafactory":  # the entry that makes the file a LLaMA-Factory dataset
        info = json.loads((tmp_path / "dpo_vlm" / "dataset_info.json").read_text())
        assert info["dpo_vlm"]["ranking"] is True and info["dpo_vlm"]["formatting"] == "sharegpt"
        back = list(iter_card("llamafactory", tmp_path / "dpo_vlm"))  # the whole directory, read by its index
        assert len(back) == 24 and all(isinstance(p, Pair) for p in back)


def test_trl_exports_go_through_trls_own_dataset_preparation(tmp_path, sets):
    import datasets
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from mmredstar.modeling import load_model

    model, proc = load_model("tiny_text")
    tok = proc.tokenizer
    export(sets["sft_text"], tmp_path / "sft.jsonl", "trl-sft")
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "sft.jsonl"), split="train")
    args = SFTConfig(output_dir=str(tmp_path / "o1"), report_to="none", use_cpu=True, max_length=256,
                     dataset_num_proc=None)
    tr = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    row = tr.train_dataset[0]
    text = tok.decode(row["input_ids"])
    first = next(iter(read_samples(sets["sft_text"])))
    assert first.question.strip() in text and first.responses[0].text.strip()[:40] in text
    export(sets["dpo_text"], tmp_path / "dpo.parquet", "trl-dpo")
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "dpo.parquet"), split="train")
    args = DPOConfig(output_dir=str(tmp_path / "o2"), report_to="none", use_cpu=True, max_length=256,
                     dataset_num_proc=None)
    tr = DPOTrainer(model=model, ref_model=copy.deepcopy(model), args=args, train_dataset=ds, processing_class=tok)
    row = tr.train_dataset[0]
    pair = next(iter(read_samples(sets["dpo_text"])))
    assert {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(row), sorted(row)  # TRL tokenized the pair
    assert pair.question.strip() in tok.decode(row["prompt_ids"])
    assert pair.chosen.text.strip() in tok.decode(row["chosen_ids"])
    assert pair.rejected.text.strip() in tok.decode(row["rejected_ids"])


def test_trl_parquet_keeps_images_as_image_features(tmp_path, sets):
    import datasets

    export(sets["sft_vlm"], tmp_path / "vlm.parquet", "trl-sft", images="embed")
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "vlm.parquet"), split="train")
    assert isinstance(ds.features["images"].feature, datasets.Image)
    img = ds[0]["images"][0]
    assert img.size == next(iter(read_samples(sets["sft_vlm"]))).images[0].load().size
    assert ds[0]["messages"][0]["content"][0] == {"type": "image", "text": None}


def test_empty_sets_are_valid_files(tmp_path):
    import datasets

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for fmt in ("trl-sft", "trl-dpo", "sharegpt", "llamafactory", "swift"):
        assert export(empty, tmp_path / f"{fmt}.jsonl", fmt) == 0
        assert (tmp_path / f"{fmt}.jsonl").read_text() == ""
        assert list(iter_card(CARD[fmt], tmp_path / f"{fmt}.jsonl")) == []
    # datasets.load_dataset refuses a file without rows (any format); the Parquet export keeps the columns, and
    # datasets.Dataset(pyarrow.parquet.read_table(path)) loads it as an empty dataset (what the README says to use)
    import pyarrow.parquet as pq

    for fmt, col in (("trl-sft", "messages"), ("trl-dpo", "chosen")):
        export(empty, tmp_path / f"{fmt}.parquet", fmt)
        with pytest.raises(ValueError):
            datasets.load_dataset("parquet", data_files=str(tmp_path / f"{fmt}.parquet"), split="train")
        ds = datasets.Dataset(pq.read_table(tmp_path / f"{fmt}.parquet"))
        assert len(ds) == 0 and col in ds.column_names and "answer" in ds.column_names


def test_wrong_set_for_the_format_and_cli(tmp_path, sets):
    with pytest.raises(ValueError, match="trl-dpo exports preference pairs"):
        export(sets["sft_text"], tmp_path / "x.jsonl", "trl-dpo")
    with pytest.raises(ValueError, match="use --format trl-dpo"):
        export(sets["dpo_text"], tmp_path / "x.jsonl", "trl-sft")
    mixed = tmp_path / "mixed.jsonl"
    write_samples(mixed, list(read_samples(sets["sft_text"]))[:2] + list(read_samples(sets["rl_text"]))[:1])
    with pytest.raises(ValueError, match="has no response while others do"):
        export(mixed, tmp_path / "x.jsonl", "swift")
    with pytest.raises(ValueError, match="does not take an images mode"):
        export(sets["rl_text"], tmp_path / "x.parquet", "verl", images="embed")
    assert set(CARD) <= set(FORMATS)
    r = CliRunner().invoke(data_cli, ["export", "--src", sets["sft_vlm"], "--out", str(tmp_path / "c" / "sg.json"),
                                      "--format", "sharegpt", "--images", "embed"])
    assert r.exit_code == 0, r.output
    assert "wrote 24 row(s)" in r.output
    rows = json.loads((tmp_path / "c" / "sg.json").read_text())
    assert rows[0]["conversations"][0]["from"] == "human" and rows[0]["images"][0].startswith("data:image/png")


def test_embedded_images_get_files_beside_a_path_export(tmp_path, sets):
    from mmredstar.schema import ImageRef

    s = next(iter(read_samples(sets["sft_vlm"])))
    raw = s.images[0].read_bytes()
    s.images = [ImageRef(bytes=raw)]
    src = tmp_path / "emb.jsonl"
    write_samples(src, [s], embed_images=True)
    out = tmp_path / "x" / "swift.jsonl"
    export(src, out, "swift", images="path")
    rel = json.loads(out.read_text())["images"][0]
    assert rel.startswith("swift_images/") and (out.parent / rel).read_bytes() == raw
    (back,) = iter_card("swift", out)
    assert back.images[0].read_bytes() == raw
