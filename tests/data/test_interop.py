"""Other tools' data: TRL, ShareGPT, LLaMA-Factory, ms-swift layouts, ``save_to_disk`` directories and
``hf:ID[:config][@split]`` sources convert through their cards; training and curation name the convert command.

    .venv/bin/python -m pytest -q tests/data/test_interop.py
"""

from __future__ import annotations

import json
import shutil

import pytest

from mmredstar.data import ConvertReport, convert, iter_card
from mmredstar.data.sources import parse_hf
from mmredstar.io import read_samples
from mmredstar.schema import DataError, Pair, validate_record


def conv(card, src, **kw):
    rep = ConvertReport(card=str(card), src=str(src))
    samples = list(iter_card(card, src, report=rep, **kw))
    for s in samples:
        assert validate_record(s.to_dict()) == [], s.to_dict()
    return samples, rep


def turns(s):
    return [(m.role, [p.text if p.type == "text" else "<img>" for p in m.content]) for m in s.prompt]


def test_trl_sft_and_prompt_completion(assets):
    (a, b), rep = conv("trl", assets / "trl/sft_conversational.jsonl")
    assert turns(a) == [("system", ["Think step by step."]),
                        ("user", ["<img>", "What is the sum of the angles of this triangle?"])]
    assert a.responses[0].text == "They add up to 180 degrees." and a.images[0].load().size == (48, 48)
    assert b.responses[0].text == "4" and not b.images
    (s, c, p), rep = conv("trl", assets / "trl/prompt_completion.jsonl")
    assert (turns(s), s.responses[0].text) == ([("user", ["What is 3*3?"])], "9")
    assert (turns(c), c.responses[0].text) == ([("user", ["What color is the sky?"])], "Blue.")
    assert turns(p) == [("user", ["Name a prime."])] and p.responses == [] and p.meta["layout"] == "trl-prompt-only"


def test_trl_preference_standard_conversational_implicit(assets):
    pairs, rep = conv("trl", assets / "trl/preference.jsonl")
    assert all(isinstance(p, Pair) for p in pairs) and len(pairs) == 3
    std, img, implicit = pairs
    assert (turns(std), std.chosen.text, std.rejected.text) == ([("user", ["What is 1+1?"])], "2", "3")
    assert img.chosen.text == "180 degrees." and img.rejected.text == "360 degrees." and len(img.images) == 1
    assert turns(implicit) == [("user", ["Is 7 prime?"])] and (implicit.chosen.text, implicit.rejected.text) == ("Yes.", "No.")
    # the plain-text row is skipped with its reason, not dropped silently
    assert rep.skipped == 1 and rep.skip_examples[0]["line"] == 4 and rep.skip_examples[0]["field"] == "text"


def test_sharegpt_keeps_the_top_level_system(assets):
    (a, b), _ = conv("sharegpt", assets / "sharegpt/sharegpt.json")
    assert turns(a) == [("system", ["You are a geometry tutor."]), ("user", ["<img>", "What shape is this?"])]
    assert turns(b)[0] == ("system", ["Answer briefly."]) and b.responses[0].text == "3"
    # the generic messages card reads the same field
    (m, _), _ = conv("messages", assets / "sharegpt/sharegpt.json")
    assert turns(m)[0] == ("system", ["You are a geometry tutor."])


def test_llamafactory_directory_with_dataset_info(assets, caplog):
    samples, rep = conv("llamafactory", assets / "llamafactory")
    assert rep.skipped == 0 and len(samples) == 5  # the hub entry and dataset_info.json itself are not rows
    alp, alp_img, rank, chat, chat_rank = samples
    assert turns(alp) == [("system", ["Be exact."]), ("user", ["Hi"]), ("assistant", ["Hello! Ask me a sum."]),
                          ("user", ["Add the numbers.\n2 and 5"])]
    assert alp.responses[0].text == "7" and alp.meta["dataset"] == "my_alpaca"
    assert alp_img.images[0].load().size == (48, 48) and alp_img.responses[0].text == "180 degrees."
    assert isinstance(rank, Pair) and (rank.chosen.text, rank.rejected.text) == ("3", "12")
    # custom columns (sys, pictures) and tags (role/content, user/assistant) from dataset_info.json
    assert turns(chat) == [("system", ["You are terse."]), ("user", ["<img>", "How many sides?"])]
    assert chat.responses[0].text == "Three." and len(chat.images) == 1
    assert isinstance(chat_rank, Pair) and chat_rank.chosen.text == "No, 9 = 3*3." and chat_rank.rejected.text == "Yes."
    # the hub entry is named in a warning, not skipped silently
    import logging

    with caplog.at_level(logging.WARNING, logger="mmredstar.data.sources"):
        list(iter_card("llamafactory", assets / "llamafactory", limit=1))
    assert "entry 'remote' is not a local file (someone/some_dataset)" in caplog.text
    assert "--src hf:someone/some_dataset" in caplog.text
    # one file beside its dataset_info.json uses that file's entry
    (c,), _ = conv("llamafactory", assets / "llamafactory/chat.json")
    assert turns(c)[0] == ("system", ["You are terse."])


def test_swift_messages_and_rejected_response(assets):
    (dpo, sft, old), rep = conv("swift", assets / "swift")
    assert isinstance(dpo, Pair) and dpo.chosen.text == "One line crosses the other two."
    assert dpo.rejected.text == "None of them." and turns(dpo) == [("user", ["<img>", "How many lines cross?"])]
    assert turns(sft)[0] == ("system", ["You are a helpful assistant."]) and len(sft.images) == 1
    assert turns(old) == [("system", ["Math tutor."]), ("user", ["What is 2+2?"]), ("assistant", ["4"]),
                          ("user", ["And 4+4?"])] and old.responses[0].text == "8"


def _png(kind=0):
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (24, 16), "white")
    ImageDraw.Draw(img).line([(0, 0), (23, 15 - kind)], fill="black")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_save_to_disk_dataset_and_dataset_dict(tmp_path):
    import datasets
    from PIL import Image

    rows = [{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"Q{i}?"}]}],
             "chosen": [{"role": "assistant", "content": f"right {i}"}],
             "rejected": [{"role": "assistant", "content": f"wrong {i}"}],
             "images": [Image.open(__import__("io").BytesIO(_png(i)))]} for i in range(3)]
    feats = datasets.Features({
        "prompt": datasets.List({"role": datasets.Value("string"), "content": datasets.List(
            {"type": datasets.Value("string"), "text": datasets.Value("string")})}),
        "chosen": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
        "rejected": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
        "images": datasets.List(datasets.Image())})
    ds = datasets.Dataset.from_list(rows, features=feats)
    ds.save_to_disk(str(tmp_path / "prefs"))
    out = tmp_path / "out" / "prefs.jsonl"
    rep = convert("trl", tmp_path / "prefs", out, progress=False)
    assert (rep.rows, rep.written, rep.skipped) == (3, 3, 0)
    got = list(read_samples(out))
    assert [p.chosen.text for p in got] == ["right 0", "right 1", "right 2"]
    assert got[1].images[0].load().size == (24, 16)  # image bytes became files beside the output
    assert convert("trl", tmp_path / "prefs", out, progress=False).up_to_date
    # a DatasetDict: every split, recorded on its samples
    datasets.DatasetDict({"train": ds.select([0, 1]), "test": ds.select([2])}).save_to_disk(str(tmp_path / "dd"))
    samples, rep = conv("trl", tmp_path / "dd")
    assert sorted(s.split for s in samples) == ["test", "train", "train"]


def test_hf_source_through_load_dataset_on_a_local_directory(tmp_path, assets):
    d = tmp_path / "my_hub_dataset"
    (d / "data").mkdir(parents=True)
    shutil.copy(assets / "trl/prompt_completion.jsonl", d / "data" / "train.jsonl")
    shutil.copy(assets / "trl/prompt_completion.jsonl", d / "data" / "test.jsonl")
    samples, rep = conv("trl", f"hf:{d}@test")
    assert len(samples) == 3 and samples[0].responses[0].text == "9" and samples[0].split == "test"
    both, _ = conv("trl", f"hf:{d}")  # no split: every split
    assert len(both) == 6
    assert parse_hf("hf:AI-MO/aimo-validation-aime") == ("AI-MO/aimo-validation-aime", None, None)
    assert parse_hf("hf:openai/gsm8k:main@test") == ("openai/gsm8k", "main", "test")
    with pytest.raises(ValueError, match="load_dataset"):
        list(iter_card("trl", f"hf:{tmp_path}/does_not_exist@train"))


def test_training_and_curation_name_the_convert_command(tmp_path, assets):
    import datasets

    from mmredstar.data.inputs import InputSpec, iter_input
    from mmredstar.training import check_recipe
    from mmredstar.training.config import RecipeError
    from mmredstar.training.data import load_records, resolve_data

    src = str(assets / "trl/sft_conversational.jsonl")
    cmd = f"mmredstar data convert --card trl --src {src} --out {src[:-len('.jsonl')]}.samples.jsonl"
    with pytest.raises(DataError) as e:
        load_records(resolve_data([src], root=None, work_dir=str(tmp_path)), kind="sft")
    assert cmd in str(e.value) and "sft_conversational.jsonl:1" in str(e.value)
    with pytest.raises(DataError, match="--card trl"):
        list(iter_input(InputSpec(path=src)))
    swift_src = str(assets / "swift/dpo.jsonl")
    with pytest.raises(DataError, match="--card swift"):
        list(read_samples(swift_src))
    # a save_to_disk directory is not "ok" at --check, and training names the command
    datasets.Dataset.from_list([{"messages": [{"role": "user", "content": "hi"}]}]).save_to_disk(str(tmp_path / "sv"))
    with pytest.raises(RecipeError, match=r"save_to_disk directory.*data convert --card trl --src .*sv"):
        check_recipe("tiny/sft", {"data.train": [str(tmp_path / "sv")]})
    with pytest.raises(DataError, match="save_to_disk"):
        resolve_data([str(tmp_path / "sv")], root=None, work_dir=str(tmp_path))
    with pytest.raises(RecipeError, match="--card trl"):
        check_recipe("tiny/sft", {"data.train": [src]})
    # a LLaMA-Factory data directory: its index is not read as rows; its files name their convert command
    with pytest.raises(RecipeError, match=r"alpaca.json:1: .*LLaMA-Factory alpaca row.*--card llamafactory --src "):
        check_recipe("tiny/sft", {"data.train": [str(assets / "llamafactory")]})
    # the converted file trains: records load as SFT samples
    out = tmp_path / "conv.jsonl"
    convert("trl", src, out, progress=False)
    recs = load_records(resolve_data([str(out)], root=None, work_dir=str(tmp_path)), kind="sft")
    assert len(recs) == 2 and json.loads(out.read_text().splitlines()[0])["responses"][0]["text"]


def test_split_option_wins_over_the_split_name(tmp_path, assets):
    import datasets

    rows = [{"prompt": "What is 2+2?", "completion": "4"}]
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "dd"))
    (s,), _ = conv("trl", tmp_path / "dd")
    assert s.split == "test" and s.provenance["file"] == "dd[test]"
    (s,), _ = conv("trl", tmp_path / "dd", split="validation")
    assert s.split == "validation"


def test_the_messages_card_reads_every_chat_layout(assets):
    """The generic card detects the layout: no preference is dropped and no row is read as something else."""
    pairs, rep = conv("messages", assets / "trl/preference.jsonl")
    assert [p.chosen.text for p in pairs] == ["2", "180 degrees.", "Yes."] and rep.skipped == 1
    (dpo, sft, old), _ = conv("messages", assets / "swift")
    assert isinstance(dpo, Pair) and dpo.rejected.text == "None of them." and old.responses[0].text == "8"
    (alp, *_), _ = conv("messages", assets / "llamafactory/alpaca.json")
    assert turns(alp)[-1] == ("user", ["Add the numbers.\n2 and 5"]) and alp.responses[0].text == "7"


def test_check_names_the_convert_command_for_a_hub_dataset():
    from mmredstar.training import check_recipe
    from mmredstar.training.config import RecipeError

    with pytest.raises(RecipeError, match=r"convert it first: mmredstar data convert --card CARD --src "
                                          r"hf:someone/set@train --out data/someone_set_train.jsonl"):
        check_recipe("tiny/sft", {"data.train": ["hf:someone/set@train"]})
