"""The one input reader (mmredstar/data/inputs.py): files, cards, builtins and named sets, each with where /
subset / limit, and the consumers that read through it (training data, evaluation data, the scorer's inputs)."""

from __future__ import annotations

import pytest

from mmredstar.config import ConfigError
from mmredstar.data.inputs import (
    InputSpec,
    as_input,
    check_input,
    input_files,
    input_name,
    iter_input,
    iter_inputs,
)
from mmredstar.io import read_samples, write_samples
from mmredstar.schema import Pair, Sample

MATH = "tests/assets/math/MATH"


def _pool(tmp_path, n=30):
    p = tmp_path / "pool.jsonl"
    write_samples(p, [Sample.text(f"q{i}", str(i), difficulty=1 + i % 9, meta={"level": f"Level {1 + i % 5}"})
                      for i in range(n)])
    return p


def test_every_kind_with_where_and_limit(tmp_path):
    pool = _pool(tmp_path)
    got = list(iter_input(InputSpec(path=str(pool), where=["difficulty>=7"], limit=4)))
    assert [s.difficulty for s in got] == [7, 8, 9, 7] and [s.question for s in got] == ["q6", "q7", "q8", "q15"]
    # builtin: the training fixtures and the labelled arithmetic problems
    sft = list(iter_input("builtin:sft_text", work_dir=str(tmp_path / "w")))
    assert len(sft) == 24 and all(len(s.responses) == 1 for s in sft)
    dpo = list(iter_input({"builtin": "dpo_text", "limit": 3}, work_dir=str(tmp_path / "w")))
    assert len(dpo) == 3 and all(isinstance(p, Pair) for p in dpo)
    ar = list(iter_input(InputSpec(builtin="arithmetic", options={"n": 50, "seed": 1}, where=["difficulty>=5"])))
    assert ar and all(s.difficulty >= 5 for s in ar) and len(ar) < 50
    # a named set given as a string (its builtin is generated)
    assert len(list(iter_input("tiny_rl_text", work_dir=str(tmp_path / "w")))) == 16
    # a card over raw files: its where, subset and limit
    hard = list(iter_input(InputSpec(card="math", src=MATH, subset="hard")))
    allm = list(iter_input(InputSpec(card="math", src=MATH)))
    assert hard and len(hard) < len(allm) and all(str(s.meta["level"]).endswith("5") for s in hard)
    assert len(list(iter_input(InputSpec(card="math", src=MATH, limit=2)))) == 2
    # a card's subset on a converted sample file
    conv = tmp_path / "math.jsonl"
    write_samples(conv, allm)
    again = list(iter_input(InputSpec(path=str(conv), card="math", subset="hard")))
    assert [s.id for s in again] == [s.id for s in hard]
    assert len(list(iter_inputs([str(pool), {"path": str(pool), "limit": 2}]))) == 32


def test_as_input_and_names():
    assert as_input("builtin:arithmetic").builtin == "arithmetic"
    assert as_input({"path": "builtin:sft_vlm"}).builtin == "sft_vlm"
    assert as_input("redstar_math_4k").set == "redstar_math_4k"
    assert input_name("builtin:sft_text") == "sft_text" and input_name("x/y/pool.jsonl.gz") == "pool"
    assert input_name(InputSpec(card="math", src="m")) == "math" and input_name({"path": "a.jsonl", "name": "n"}) == "n"
    with pytest.raises(ValueError, match="unknown keys \\['pth'\\]"):
        as_input({"pth": "a.jsonl"})


@pytest.mark.parametrize("spec,msg", [
    ({"card": "math"}, "needs 'src'"),
    ({"path": "a.jsonl", "builtin": "arithmetic"}, "exactly one of"),
    ({"path": "a.jsonl", "card": "math"}, "give either 'path'"),
    ({"builtin": "primes"}, "unknown 'primes'"),
    ({"set": "no_such_set"}, "unknown named set"),
    ({"path": "a.jsonl", "subset": "hard"}, "subsets are defined by a data card"),
    ({"path": "a.jsonl", "where": ["level ?? 3"]}, "where\\[0\\]"),
])
def test_check_input_names_the_key(spec, msg):
    with pytest.raises(ConfigError, match=msg):
        check_input(as_input(spec), "inputs[0]", lambda key: "c.yaml:3")
    check_input(as_input({"path": "a.jsonl", "card": "math", "subset": "hard"}))


def test_input_files_materialises_what_is_not_a_file_list(tmp_path):
    pool = _pool(tmp_path)
    assert input_files(str(pool)) == [str(pool)] == input_files(str(pool), work_dir=str(tmp_path / "w"))
    assert input_files(InputSpec(card="math", src=MATH)) == [MATH]     # what the markers hash
    (f,) = input_files({"path": str(pool), "where": ["difficulty<=2"]}, work_dir=str(tmp_path / "w"))
    assert f.startswith(str(tmp_path / "w" / "inputs" / "pool-")) and len(list(read_samples(f))) == 8
    assert input_files({"path": str(pool), "where": ["difficulty<=2"]}, work_dir=str(tmp_path / "w")) == [f]
    with pytest.raises(Exception, match="no records"):
        input_files({"path": str(pool), "where": ["difficulty>=20"]}, work_dir=str(tmp_path / "w"))


def test_training_reads_card_inputs_with_where_and_limit(tmp_path):
    from mmredstar.training.data import load_records, manifest, records_per_file, resolve_data

    pool = tmp_path / "sft.jsonl"
    rows = list(iter_input("builtin:sft_text", work_dir=str(tmp_path / "b")))
    for i, s in enumerate(rows):
        s.difficulty = 1 + i % 3
    write_samples(pool, rows)
    files = resolve_data([{"path": str(pool), "where": ["difficulty=2"], "limit": 5}, "builtin:sft_text"],
                         root=None, work_dir=str(tmp_path / "w"))
    recs = load_records(files, kind="sft")
    assert len(recs) == 5 + 24 and {r.difficulty for r, _, _ in recs[:5]} == {2}
    entries = manifest(files, records_per_file(recs))
    assert [e["records"] for e in entries] == [5, 24] and entries[0]["spec"] == "sft"


def test_recipe_check_accepts_input_mappings(tmp_path):
    from mmredstar.training.config import RecipeError, load_recipe
    from mmredstar.training.validate import check

    rec = load_recipe("tiny/sft", {"data.train": [{"card": "math", "src": MATH, "limit": 3}]})
    assert rec.data.train == [{"card": "math", "src": MATH, "limit": 3}]
    assert check("tiny/sft", {"data.train": [{"card": "math", "src": MATH, "limit": 3}]}).data.train
    with pytest.raises(RecipeError, match="sft.yaml:.*needs 'src'"):
        check("tiny/sft", {"data.train": [{"card": "math"}]})


def test_eval_data_and_scorer_inputs_use_the_one_reader(tmp_path):
    from mmredstar.difficulty.config import LabelledInput
    from mmredstar.difficulty.data import labelled_items
    from mmredstar.evaluation.spec import load_bench_samples, load_spec

    spec = load_spec("math500", {"where": ["difficulty>=7"]})
    got = load_bench_samples(spec, "tests/assets/math500/test.jsonl")
    assert got and all(s.difficulty >= 7 for s in got)
    pool = _pool(tmp_path)
    items = labelled_items([LabelledInput(path=str(pool), label="level", map="math_level", where=["difficulty>=5"],
                                          limit=6)])
    assert len(items) == 6 and {it.label for it in items} <= {1.0, 3.0, 5.0, 7.0, 9.0}
