"""The GeoQA pipeline CLI on the tiny config: each stage, skip-when-finished, rerun-when-config-changed,
missing upstream, config errors, and prepare from your own GeoQA files.

    .venv/bin/python -m pytest -q tests/geoqa/test_pipeline.py
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from mmredstar.curate.config import ConfigError
from mmredstar.workflows.geoqa import geoqa, load_config, stage_hash, stage_state

TINY = "configs/geoqa/tiny.yaml"


def _run(*args):
    r = CliRunner().invoke(geoqa, [str(a) for a in args], catch_exceptions=False)
    return r.exit_code, r.output


def _state(out, stage):
    return json.loads((out / stage / "stage.json").read_text())


def test_each_stage_then_skip_then_rerun_on_change(tmp_path):
    out = tmp_path / "gq"
    code, text = _run("sft", TINY, "--out", out)
    assert code == 1 and "needs stage 'curate' finished" in text and "mmredstar geoqa curate" in text

    code, text = _run("prepare", TINY, "--out", out)
    assert code == 0, text
    st = _state(out, "prepare")
    assert st["counts"] == {"train": 48, "test": 12, "skipped": 0}
    first = json.loads((out / "prepare" / "train.jsonl").read_text().splitlines()[0])
    assert first["meta"]["reference_cot"].endswith("°") and first["meta"]["prompt_template"] == "geoqa"
    assert first["source"] == "geoqa" and first["answer_type"] == "choice"

    code, text = _run("curate", TINY, "--out", out)
    assert code == 0, text
    counts = _state(out, "curate")["counts"]
    assert counts["prompts"] == 48 and counts["responses"] == 192 and counts["sft"] > 30 and counts["dpo_pairs"] > 20

    for stage in ("sft", "dpo"):
        code, text = _run(stage, TINY, "--out", out)
        assert code == 0, text
        m = _state(out, stage)["metrics"]
        assert m["steps"] == (3 if stage == "sft" else 2)
        assert (out / stage / "config.json").exists()

    code, text = _run("eval", TINY, "--out", out)
    assert code == 0, text
    assert "| untrained |" in text and "| after SFT |" in text and "| after SFT + DPO (blank images) |" in text
    summary = json.loads((out / "eval" / "summary.json").read_text())
    assert set(summary["accuracy"]) == {"base", "sft", "dpo", "dpo-blank"} and summary["items"] == 12
    for a in summary["accuracy"].values():
        assert a["n"] == 12 and 0 <= a["ci95"][0] <= a["accuracy"] <= a["ci95"][1] <= 1
    assert (out / "eval" / "report.md").exists() and (out / "eval" / "dpo-blank" / "geoqa" / "samples.jsonl").exists()

    # run: everything finished for this config -> every stage skipped
    before = {s: _state(out, s)["finished_at"] for s in ("prepare", "curate", "sft", "dpo", "eval")}
    code, text = _run("run", TINY, "--out", out)
    assert code == 0, text
    rep = json.loads((out / "report.json").read_text())
    assert all(v["skipped_now"] for v in rep["stages"].values()), rep["stages"]
    assert {s: _state(out, s)["finished_at"] for s in before} == before

    # change DPO's settings: DPO and eval run again, the stages before them do not
    code, text = _run("run", TINY, "--out", out, "--set", "dpo.overrides.train.lr=5.0e-5")
    assert code == 0, text
    rep = json.loads((out / "report.json").read_text())
    assert {k: v["skipped_now"] for k, v in rep["stages"].items()} == {
        "prepare": True, "curate": True, "sft": True, "dpo": False, "eval": False}
    assert rep["accuracy"]["dpo"]["n"] == 12


def test_stage_hashes_chain():
    cfg = load_config(TINY)
    base = {s: stage_hash(cfg, s) for s in ("prepare", "curate", "sft", "dpo", "eval")}
    changed = load_config(TINY, ["prepare.generate.seed=1"])
    assert all(stage_hash(changed, s) != base[s] for s in base)            # upstream change: every stage reruns
    changed = load_config(TINY, ["sft.overrides.train.max_steps=4"])
    assert [s for s in base if stage_hash(changed, s) != base[s]] == ["sft", "dpo", "eval"]
    changed = load_config(TINY, ["eval.batch_size=8", "threads=1", "progress=true"])
    assert [s for s in base if stage_hash(changed, s) != base[s]] == ["eval"]
    changed = load_config(TINY, ["eval.overrides.prompt='{question}'"])    # the template also shapes training data
    assert stage_hash(changed, "prepare") != base["prepare"]


def test_prepare_from_your_own_files_with_a_held_out_split(tmp_path):
    from mmredstar.synth import write_polygons

    src = write_polygons(tmp_path / "raw", {"train": 40}, seed=3)["train"]
    cfg = {"out": str(tmp_path / "gq"), "prepare": {"src": src, "held_out": 10, "template": False},
           "curate": {"teacher": {"kind": "scripted"}}}
    c = load_config(cfg)
    from mmredstar.workflows.geoqa import run_prepare

    st = run_prepare(c)
    assert st["counts"] == {"train": 30, "test": 10, "skipped": 0}
    from mmredstar.io import read_samples

    train = {s.id for s in read_samples(st["outputs"]["train"])}
    test = [s for s in read_samples(st["outputs"]["test"])]
    assert len(train) == 30 and not train & {s.id for s in test}
    assert "prompt_template" not in test[0].meta and test[0].images[0].load().size == (64, 64)
    assert stage_state(c, "prepare") is not None
    assert stage_state(load_config({**cfg, "prepare": {**cfg["prepare"], "held_out": 11}}), "prepare") is None


@pytest.mark.parametrize("data,match", [
    ({"prepare": {"src": "x.jsonl"}, "bogus": 1}, "unknown key 'bogus'"),
    ({"prepare": {}}, "give either 'generate'"),
    ({"prepare": {"src": "x", "generate": {"kind": "polygons"}}}, "give either 'generate'"),
    ({"prepare": {"generate": {"kind": "nope"}}}, "unknown dataset generator 'nope'"),
    ({"prepare": {"src": "x"}, "curate": {"out": "elsewhere"}}, "key 'curate.out': set by the pipeline"),
    ({"prepare": {"src": "x"}, "curate": {"teacher": {"kind": "scriptd"}}}, "did you mean 'scripted'"),
    ({"prepare": {"src": "x"}, "sft": {"recipe": "tiny/no_such"}}, "key 'sft'"),
    ({"prepare": {"src": "x"}, "eval": {"checkpoints": ["best"]}}, "'best' is not one of base, dpo, rl, sft, sft_continued"),
    ({"prepare": {"src": "x"}, "eval": {"bench": "nope"}}, "key 'eval.bench'"),
])
def test_config_errors(data, match):
    with pytest.raises(ConfigError, match=match):
        load_config(data)


def test_config_errors_name_the_file_and_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("out: x\nprepare:\n  src: a.jsonl\n  held_ot: 5\n")
    with pytest.raises(ConfigError, match=r"c.yaml:4: unknown key 'prepare.held_ot'; did you mean 'prepare.held_out'"):
        load_config(p)


AFTER_SFT = ["curate.select.rl.enabled=true", "curate.select.rl.min_pass_rate=-0.01",
             "rl.enabled=true", "rl.overrides.train.max_steps=2", "rl.overrides.train.batch_size=8",
             "rl.overrides.train.micro_batch_size=8", "rl.overrides.rl.max_completion_length=8",
             "rl.overrides.data.max_length=192", "rl.overrides.train.progress=false",
             "sft_continued.enabled=true", "sft_continued.overrides.data.max_length=192",
             "sft_continued.overrides.data.packing=false", "sft_continued.overrides.train.progress=false",
             "eval.checkpoints=[base,sft,sft_continued,dpo,rl]"]


def test_rl_stage_and_the_sft_continued_control(tmp_path):
    """SFT + RL and the honest control (SFT continued from the SFT model on the DPO pairs' prompts and chosen
    responses, for the DPO stage's steps and batch size) as their own rows, with paired margins."""
    from mmredstar.io import read_samples

    out = tmp_path / "gq"
    args = ["run", TINY, "--out", out] + [x for s in AFTER_SFT for x in ("--set", s)]
    code, text = _run(*args)
    assert code == 0, text
    assert "| SFT continued (control) |" in text and "| after SFT + RL |" in text and "| after SFT + DPO |" in text
    assert "dpo vs sft continued:" in text and "items won" in text and "rl vs sft continued:" in text
    rep = json.loads((out / "report.json").read_text())
    assert list(rep["stages"]) == ["prepare", "curate", "sft", "dpo", "rl", "sft_continued", "eval"]
    # the control: DPO's steps and batch size, the chosen sides of the DPO pairs as its SFT set
    assert rep["stages"]["sft_continued"]["metrics"]["steps"] == rep["stages"]["dpo"]["metrics"]["steps"] == 2
    resolved = (out / "sft_continued" / "recipe.resolved.yaml").read_text()
    assert "batch_size: 4" in resolved and str(out / "sft") in resolved
    pairs = list(read_samples(out / "curate" / "dpo.jsonl"))
    ctl = list(read_samples(out / "sft_continued.data" / "sft.jsonl"))
    assert [s.content_id() for s in ctl] == [p.prompt_id for p in pairs]
    assert [s.responses[0].text for s in ctl] == [p.chosen.text for p in pairs]
    assert all(os.path.exists(s.images[0].resolved_path()) for s in ctl)
    assert rep["stages"]["rl"]["metrics"]["steps"] == 2
    for name in ("dpo_vs_sft_continued", "rl_vs_sft_continued", "sft_vs_sft_continued"):
        m = rep["margins"][name]
        assert m["of"][1] == "sft_continued" and m["n"] == 12 and m["se_kind"] == "paired"
        assert {"points", "se", "wins", "losses"} <= set(m) and m["wins"] + m["losses"] <= 12
        acc = rep["accuracy"]
        assert abs(m["points"] - 100 * (acc[m["of"][0]]["accuracy"] - acc["sft_continued"]["accuracy"])) < 0.01
    assert rep["margins"]["trained_minus_blank_images"]["of"] == ["dpo", "dpo-blank"]
    # the control copies DPO's steps: changing them redoes DPO, the control and eval, not RL
    code, text = _run(*args, "--set", "dpo.overrides.train.max_steps=3")
    assert code == 0, text
    rep = json.loads((out / "report.json").read_text())
    assert {k for k, v in rep["stages"].items() if not v["skipped_now"]} == {"dpo", "sft_continued", "eval"}
    assert rep["stages"]["sft_continued"]["metrics"]["steps"] == 3


def test_bad_threads_is_a_config_error():
    with pytest.raises(ConfigError, match="key 'threads'.*'lots' is not a positive number of threads or 'auto'"):
        load_config(TINY, ["threads=lots"])
    assert load_config(TINY, ["threads=auto"]).threads == "auto"


def test_evaluating_a_stage_that_is_off_is_a_config_error():
    with pytest.raises(ConfigError, match="'rl' is evaluated but its stage is off"):
        load_config(TINY, ["eval.checkpoints=[base,sft,rl]"])
