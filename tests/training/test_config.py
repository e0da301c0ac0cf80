"""Recipe loading: typed keys, file:line errors with did-you-mean, dotted overrides, the resolved dump.

    .venv/bin/python -m pytest -q tests/training/test_config.py
"""

import textwrap

import pytest
import yaml

from mmredstar.training.config import RecipeError, dump_recipe, load_recipe, parse_override


def _write(tmp_path, text, name="r.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return p


def test_load_tiny_recipe_with_overrides():
    rec = load_recipe("tiny/sft", ["train.lr=1e-5", "data.max_length=2048", "model=tiny_vlm", "data.packing=true"])
    assert rec.train.lr == 1e-5 and isinstance(rec.train.lr, float)
    assert rec.data.max_length == 2048
    assert rec.model.name == "tiny_vlm"
    assert rec.data.packing is True
    assert rec.name == "tiny/sft"


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    p = _write(tmp_path, """
        # mmredstar train r.yaml
        method: sft
        model: tiny_text
        data: [builtin:sft_text]
        train:
          lr: 1.0e-4
          max_stpes: 3
        """)
    with pytest.raises(RecipeError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert f"{p}:7" in msg and "train.max_stpes" in msg and "did you mean 'train.max_steps'" in msg


def test_bad_type_names_key_and_line(tmp_path):
    p = _write(tmp_path, """
        # mmredstar train r.yaml
        method: sft
        model: tiny_text
        data:
          train: [builtin:sft_text]
          max_length: lots
        """)
    with pytest.raises(RecipeError) as e:
        load_recipe(p)
    assert f"{p}:6" in str(e.value) and "data.max_length" in str(e.value) and "integer" in str(e.value)


def test_bad_method_and_missing_model(tmp_path):
    p = _write(tmp_path, "method: ppo2\nmodel: tiny_text\ndata: [x]\n")
    with pytest.raises(RecipeError, match="ppo2"):
        load_recipe(p)
    p = _write(tmp_path, "method: sft\ndata: [x]\n", "m.yaml")
    with pytest.raises(RecipeError, match="'model' is missing"):
        load_recipe(p)


def test_override_unknown_key_suggests():
    with pytest.raises(RecipeError, match="did you mean 'train.batch_size'"):
        load_recipe("tiny/sft", ["train.batchsize=4"])


def test_sequence_parallel_needs_deepspeed():
    with pytest.raises(RecipeError, match="needs DeepSpeed"):
        load_recipe("tiny/sft", ["train.sequence_parallel=2"])


def test_resolved_dump_round_trips(tmp_path):
    rec = load_recipe("tiny/dpo", ["dpo.beta=0.5"])
    text = dump_recipe(rec)
    p = tmp_path / "resolved.yaml"
    p.write_text(text)
    again = load_recipe(p)
    assert again.to_dict() == rec.to_dict()
    assert yaml.safe_load(text)["dpo"]["beta"] == 0.5


def test_parse_override_values():
    assert parse_override("model.rope_scaling={rope_type: linear, factor: 4.0}") == (
        "model.rope_scaling", {"rope_type": "linear", "factor": 4.0})
    with pytest.raises(RecipeError):
        parse_override("train.lr")
