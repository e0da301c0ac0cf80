"""Recipe keys under the names users know (TrainingArguments / TRL), ``extra_args`` checked against the installed
classes, conflicts with named keys refused, command-line overrides reported as overrides.

    .venv/bin/python -m pytest -q tests/training/test_recipe_names.py
"""

from __future__ import annotations

import pytest

from mmredstar.config import field_docs
from mmredstar.training import check_recipe, load_recipe
from mmredstar.training.config import Recipe, RecipeError, recipe_from_dict

RECIPE = """# mmredstar train {path}
method: {method}
model: tiny_text
data:
  train: [builtin:{data}]
  max_seq_length: 64
train:
  learning_rate: 2.0e-4
  num_train_epochs: 2
  per_device_train_batch_size: 2
  batch_size: 4
  lr_scheduler_type: cosine
{extra}"""


def write(tmp_path, method="sft", data="sft_text", extra="", name="r.yaml"):
    p = tmp_path / name
    p.write_text(RECIPE.format(path=p, method=method, data=data, extra=extra))
    return p


def test_trainingarguments_names_are_aliases_of_our_keys(tmp_path):
    rec = check_recipe(write(tmp_path))
    t = rec.train
    assert (t.lr, t.epochs, t.micro_batch_size, t.lr_scheduler, rec.data.max_length) == (2e-4, 2.0, 2, "cosine", 64)
    assert "learning_rate" not in rec.to_dict()["train"]  # resolved under our names
    # both names at once is an error at the alias's line
    p = write(tmp_path, extra="  lr: 1.0e-3\n")
    with pytest.raises(RecipeError, match=r"r.yaml:8: key 'train.learning_rate' is another name for 'train.lr'"):
        load_recipe(p)
    # a TrainingArguments name we do not take as a key says what to set instead
    with pytest.raises(RecipeError, match=r"gradient_accumulation_steps' is not a key here: .*set train.batch_size"):
        load_recipe(write(tmp_path, extra="  gradient_accumulation_steps: 4\n"))
    # a typo of an alias gets the did-you-mean of our key
    with pytest.raises(RecipeError, match=r"unknown key 'train.learning_rat'; did you mean 'train.lr'"):
        load_recipe(write(tmp_path, extra="  learning_rat: 1\n"))


def test_docs_give_one_name_per_field_with_the_alias_noted():
    docs = {k: d for k, _, d in field_docs(Recipe)}
    assert "learning_rate" not in docs and "train.learning_rate" not in docs
    assert "Also accepted as: learning_rate" in docs["train.lr"]
    assert "num_train_epochs" in docs["train.epochs"] and "max_seq_length" in docs["data.max_length"]


def test_extra_args_checked_against_the_installed_classes(tmp_path):
    with pytest.raises(RecipeError, match=r"r.yaml:13: key 'train.extra_args.bogus_key': not a field of "
                                          r"TrainingArguments"):
        check_recipe(write(tmp_path, extra="  extra_args: {bogus_key: 1}\n"))
    with pytest.raises(RecipeError, match=r"'train.extra_args.torch_compil': .*did you mean 'torch_compile'"):
        check_recipe(write(tmp_path, extra="  extra_args: {torch_compil: true}\n"))
    ok = check_recipe(write(tmp_path, extra="  extra_args: {torch_compile: false, adam_beta2: 0.95}\n"))
    assert ok.train.extra_args == {"torch_compile": False, "adam_beta2": 0.95}
    # DPO: TRL's DPOConfig fields are accepted, its unknown ones are not
    assert check_recipe(write(tmp_path, "dpo", "dpo_text", "  extra_args: {sync_ref_model: false}\n")).method == "dpo"
    with pytest.raises(RecipeError, match="not a field of DPOConfig"):
        check_recipe(write(tmp_path, "dpo", "dpo_text", "  extra_args: {sync_ref_modle: false}\n"))
    assert check_recipe(write(tmp_path, "grpo", "rl_text", "  extra_args: {mask_truncated_completions: true}\n"))
    with pytest.raises(RecipeError, match="method ppo runs its own training loop"):
        check_recipe(write(tmp_path, "ppo", "rl_text", "  extra_args: {adam_beta2: 0.9}\n"))


def test_extra_args_must_not_shadow_a_named_key(tmp_path):
    with pytest.raises(RecipeError, match=r"r.yaml:13: key 'train.extra_args.learning_rate': the recipe key "
                                          r"'train.lr' sets learning_rate; set 'train.lr' instead"):
        load_recipe(write(tmp_path, extra="  extra_args: {learning_rate: 0.1}\n"))
    with pytest.raises(RecipeError, match="'dpo.beta' sets beta"):
        load_recipe(write(tmp_path, "dpo", "dpo_text", "  extra_args: {beta: 0.5}\n"))
    with pytest.raises(RecipeError, match="'rl.temperature' sets temperature"):
        recipe_from_dict({"method": "grpo", "model": "tiny_text", "data": ["builtin:rl_text"],
                          "train": {"extra_args": {"temperature": 0.7}}})


def test_overrides_are_reported_as_overrides(tmp_path):
    p = write(tmp_path)
    with pytest.raises(RecipeError) as e:
        load_recipe(p, ["train.learning_rate=fast"])
    msg = str(e.value)
    assert "command-line override train.learning_rate=fast" in msg and f"{p}:" not in msg
    with pytest.raises(RecipeError, match=r"\(command-line override train.max_stpes=3\): unknown key "
                                          r"'train.max_stpes'; did you mean 'train.max_steps'"):
        load_recipe(p, ["train.max_stpes=3"])
    assert load_recipe(p, ["train.learning_rate=1e-3"]).train.lr == 1e-3
    # the keys from the file still point at their lines
    with pytest.raises(RecipeError, match=r"r.yaml:13: key 'train.extra_args.bogus'"):
        check_recipe(write(tmp_path, extra="  extra_args: {bogus: 1}\n"), ["train.max_steps=3"])


def test_an_override_by_the_other_name_replaces_the_files_key(tmp_path):
    from mmredstar.training.config import apply_overrides

    assert load_recipe("tiny/dpo", ["train.learning_rate=1e-4"]).train.lr == 1e-4  # the file says lr: ...
    rec = load_recipe("tiny/dpo")
    assert apply_overrides(rec.to_dict(), ["train.num_train_epochs=3"])["train"]["epochs"] == 3
    with pytest.raises(RecipeError, match=r"dpo.yaml \(command-line override\): data .*save_to_disk|neither"):
        check_recipe("tiny/dpo", [f"data.train=[{tmp_path}/nothing_here]"])
