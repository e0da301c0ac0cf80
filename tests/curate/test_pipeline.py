"""The curation pipeline end to end: the shipped GeoQA config, every teacher kind, caching and resume,
kill -9 and resume (a real subprocess), difficulty selection, errors, bounded memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mmredstar.curate import run
from mmredstar.data import iter_card
from mmredstar.generate import SamplingParams, build_teacher
from mmredstar.generate.scripted import ScriptedConfig, ScriptedTeacher
from mmredstar.io import read_jsonl, read_samples, validate_file, write_samples
from mmredstar.schema import DataError, Pair, Sample

REPO = Path(__file__).resolve().parents[2]
GEOQA_CONFIG = REPO / "configs" / "curate" / "geoqa_fixture.yaml"
OUT_FILES = ("sft.jsonl", "dpo.jsonl", "rl.jsonl", "rejected.jsonl", "decontaminated.jsonl", "report.json")


class CountingScripted(ScriptedTeacher):
    """The real scripted teacher, counting how often it is asked (to prove cached units are not re-queried)."""

    def __init__(self, config):
        super().__init__(config)
        self.calls, self.prompts = 0, 0

    def generate(self, samples, n, params):
        self.calls += 1
        self.prompts += len(samples)
        return super().generate(samples, n, params)


def geoqa_config(geoqa_dir: Path, out: Path, **over) -> dict:
    cfg = {"out": str(out),
           "inputs": [{"card": "geoqa", "src": str(geoqa_dir), "image_dir": str(geoqa_dir.parent / "images")}],
           "teacher": {"kind": "scripted", "error_rate": 0.35, "no_answer_rate": 0.1},
           "schedule": {"1-10": 4}, "default_n": 4, "unit_size": 3,
           "select": {"dpo": {"max_pairs_per_prompt": 2}}}
    cfg.update(over)
    return cfg


def check_outputs(out: Path, *, expect_all: bool = True) -> dict:
    """Every output validates (images included), the numbers add up, and the records mean what they say."""
    rep = json.loads((out / "report.json").read_text())
    c = rep["counts"]
    for f in ("sft", "dpo", "rl", "rejected", "decontaminated"):
        n, problems = validate_file(out / f"{f}.jsonl", check_images=True)
        assert problems == [], problems[:3]
    sft, dpo = list(read_samples(out / "sft.jsonl")), list(read_samples(out / "dpo.jsonl"))
    rl, rej = list(read_samples(out / "rl.jsonl")), list(read_samples(out / "rejected.jsonl"))
    assert (len(sft), len(dpo), len(rl), len(rej)) == (c["sft"], c["dpo_pairs"], c["rl_prompts"], c["rejected"])
    assert c["sft"] + c["rejected"] == c["responses"]          # every response is accounted for, once
    assert c["input"] == c["decontaminated"] + c["out_of_range"] + c["prompts"]
    for f in (sft, dpo, rl, rej):
        assert len({s.id for s in f}) == len(f)                 # no duplicates
    assert all(len(s.responses) == 1 and s.responses[0].verdict == "correct" for s in sft)
    assert all(isinstance(p, Pair) and p.chosen.verdict == "correct" and p.rejected.verdict != "correct" for p in dpo)
    assert all(s.responses == [] and 0 < s.meta["pass_rate"] < 1 for s in rl)
    assert all(len(s.responses) == 1 and s.responses[0].reason for s in rej)
    by_prompt = {s.meta["prompt_id"]: s for s in sft + rej}
    for p in dpo:                                             # same prompt and images as the chosen's sample
        src = by_prompt[p.meta["prompt_id"]]
        assert p.prompt == src.prompt and [i.path for i in p.images] == [i.path for i in src.images]
    for s in sft + rej:
        assert s.responses[0].gen["n"] >= 1 and "temperature" in s.responses[0].gen or s.responses[0].gen["teacher"] == "replay"
    for f in ("report.md", "funnel.png", "pass_rate_by_difficulty.png", "lengths.png"):
        assert (out / f).stat().st_size > 0
    if expect_all:
        assert c["sft"] > 0 and c["dpo_pairs"] > 0 and c["rl_prompts"] > 0
    return rep


def test_shipped_geoqa_config_scripted_and_cached_rerun(tmp_path):
    out = tmp_path / "run"
    res = run(str(GEOQA_CONFIG), [f"out={out}"], progress=False)
    rep = check_outputs(out)
    c = rep["counts"]
    assert c["input"] == 5 and c["decontaminated"] == 2 and c["prompts"] == 3 and c["responses"] == 24
    assert rep["decontamination"] == {"geoqa_plus_fixture": 2}
    dec = list(read_samples(out / "decontaminated.jsonl"))
    assert all(s.meta["decontamination"]["benchmark"] == "geoqa_plus_fixture" for s in dec)
    assert res.run["units"]["teacher_queried"] == 2 and res.run["units"]["teacher_cached"] == 0
    files = {f: (out / f).read_bytes() for f in OUT_FILES}

    # identical rerun: already complete, nothing done
    t = CountingScripted(ScriptedConfig(**{k: v for k, v in yaml.safe_load(GEOQA_CONFIG.read_text())["teacher"].items()
                                           if k != "kind"}))
    assert run(str(GEOQA_CONFIG), [f"out={out}"], teacher=t, progress=False).run["status"] == "up to date"
    # a run that has to go through the units again (the completion marker is gone): zero teacher calls, same bytes
    (out / "state.json").unlink()
    res2 = run(str(GEOQA_CONFIG), [f"out={out}"], teacher=t, progress=False)
    assert t.calls == 0 and res2.run["units"]["teacher_cached"] == 2 and res2.run["units"]["judged_cached"] == 2
    assert {f: (out / f).read_bytes() for f in OUT_FILES} == files
    # new filters: responses are judged again, the teacher still is not asked
    res3 = run(str(GEOQA_CONFIG), [f"out={out}", "filters=[answer_format, {length: {max_chars: 1620}}]"], teacher=t,
               progress=False)
    assert t.calls == 0 and res3.run["units"]["judged_cached"] == 0
    assert res3.report["counts"]["filtered"] > 0 and any(k.startswith("filter: length") for k in res3.report["drop_reasons"])
    check_outputs(out)
    runs = list(read_jsonl(out / "runs.jsonl"))
    assert [r["status"] for r in runs] == ["complete", "complete", "complete"]
    # --fresh asks the teacher again
    run(str(GEOQA_CONFIG), [f"out={out}"], teacher=t, fresh=True, progress=False)
    assert t.calls == 2 and t.prompts == 3


def test_workers_do_not_change_the_output(tmp_path, geoqa_dir):
    a = run(geoqa_config(geoqa_dir, tmp_path / "w1", unit_size=1, workers=1), progress=False)
    b = run(geoqa_config(geoqa_dir, tmp_path / "w3", unit_size=1, workers=3), progress=False)
    for f in OUT_FILES:
        assert (Path(a.out) / f).read_bytes() == (Path(b.out) / f).read_bytes(), f
    check_outputs(Path(a.out))


def test_openai_teacher_through_the_pipeline(tmp_path, geoqa_dir, start_server):
    srv = start_server("--card", "geoqa", "--src", str(geoqa_dir), "--image-dir", str(geoqa_dir.parent / "images"),
                       "--error-rate", "0.35")
    cfg = geoqa_config(geoqa_dir, tmp_path / "o", teacher={"kind": "openai", "base_url": srv.url, "model": "scripted-qwq"})
    res = run(cfg, progress=False)
    rep = check_outputs(tmp_path / "o")
    assert rep["counts"]["prompts"] == 12 and rep["counts"]["responses"] == 48
    reqs = srv.requests()
    assert len(reqs) == 12 and all(r["images"][0]["ok"] for r in reqs)
    assert rep["lengths"]["correct"]["tokens"]["count"] == 0       # n>1 requests: per-response tokens unknown
    assert res.run["units"]["teacher_queried"] == 4


def test_transformers_teacher_through_the_pipeline(tmp_path, geoqa_dir):
    import torch

    torch.set_num_threads(2)
    cfg = geoqa_config(geoqa_dir, tmp_path / "t", teacher={"kind": "transformers", "model": "tiny_vlm"},
                       schedule={"1-10": 2}, default_n=2, sampling={"max_tokens": 6, "temperature": 1.0}, limit=4)
    res = run(cfg, progress=False)
    rep = check_outputs(tmp_path / "t", expect_all=False)      # a random tiny model answers nothing right
    assert rep["counts"]["prompts"] == 4 and rep["counts"]["responses"] == 8
    assert rep["lengths"]["no_answer"]["tokens"]["count"] + rep["lengths"]["wrong"]["tokens"]["count"] == 8
    for f in ("sft.jsonl", "dpo.jsonl", "rl.jsonl"):
        assert (tmp_path / "t" / f).exists()
    assert res.run["units"]["teacher_queried"] == 2


def test_replay_teacher_through_the_pipeline(tmp_path, geoqa_dir):
    """A released long-CoT set in ShareGPT layout, matched by question text; unmatched prompts are reported."""
    ss = list(iter_card("geoqa", str(geoqa_dir), image_dir=str(geoqa_dir.parent / "images")))
    made = build_teacher({"kind": "scripted", "error_rate": 0.4}).generate(ss[:10], [4] * 10, SamplingParams())
    rows = [{"conversations": [{"from": "human", "value": "<image>\n" + s.question}, {"from": "gpt", "value": r.text}]}
            for s, rs in zip(ss, made, strict=False) for r in rs]
    (tmp_path / "released.json").write_text(json.dumps(rows))
    cfg = geoqa_config(geoqa_dir, tmp_path / "r", teacher={"kind": "replay", "path": str(tmp_path / "released.json")})
    res = run(cfg, progress=False)
    rep = check_outputs(tmp_path / "r")
    assert rep["counts"]["prompts"] == 12 and rep["counts"]["responses"] == 40
    assert rep["prompts_without_responses"] == 2
    assert "2 prompt(s) got no response" in (tmp_path / "r" / "report.md").read_text()
    runs = list(read_jsonl(tmp_path / "r" / "runs.jsonl"))
    assert runs[-1]["teacher"]["unmatched"] == 2
    assert res.run["status"] == "complete"


def test_difficulty_range_and_schedule(tmp_path):
    ss = [Sample.text(f"Problem number {i}: compute {i} + {i}.", str(2 * i), "math", difficulty=float(1 + i % 10))
          for i in range(30)] + [Sample.text("No label here: 5 + 5?", "10", "math")]
    write_samples(tmp_path / "in.jsonl", ss)
    cfg = {"out": str(tmp_path / "d"), "inputs": [{"path": str(tmp_path / "in.jsonl")}],
           "teacher": {"kind": "scripted", "error_rate": {"1-5": 0.0, "6-10": 0.5}, "no_answer_rate": 0.0},
           "difficulty": {"range": [4, 9]}, "schedule": {"4-6": 2, "7-9": 6}, "unit_size": 4}
    rep = run(cfg, progress=False).report
    assert rep["counts"]["out_of_range"] == 13                  # bands 1-3 and 10 (12) and the unlabelled one
    assert rep["counts"]["prompts"] == 18
    assert rep["samples_per_prompt"] == {"2": 9, "6": 9}
    rows = {r["band"]: r for r in rep["pass_rate_by_difficulty"]}
    assert set(rows) == {"4", "5", "6", "7", "8", "9"} and rows["4"]["pass_rate"] == 1.0
    assert rows["8"]["responses"] == 18 and rows["8"]["pass_rate"] < 1.0
    rep2 = run({**cfg, "out": str(tmp_path / "d2"), "difficulty": {"range": [4, 9], "keep_unknown": True,
                                                                    "default": None}}, progress=False).report
    assert rep2["counts"]["prompts"] == 19 and rep2["difficulty"]["unknown"] == 1


def test_scorer_difficulty_is_cached_per_unit(tmp_path, geoqa_dir, start_server):
    from openai_server import scripted_difficulty

    srv = start_server("--card", "geoqa", "--src", str(geoqa_dir))
    scorer = {"teacher": {"kind": "openai", "base_url": srv.url, "model": "scripted-qwq"}}
    cfg = geoqa_config(geoqa_dir, tmp_path / "s", difficulty={"source": "scorer", "params": scorer, "range": [3, 8]},
                       schedule={"3-5": 2, "6-8": 5})
    res = run(cfg, progress=False)
    n_scored = len(srv.requests())
    assert n_scored == 12 and res.run["units"]["difficulty_queried"] == 4
    kept = [s for s in read_samples(tmp_path / "s" / "sft.jsonl")] + list(read_samples(tmp_path / "s" / "rejected.jsonl"))
    from mmredstar.difficulty.sources import build_source

    src = build_source("scorer", scorer)
    for s in kept:
        assert 3 <= s.difficulty <= 8
        assert s.meta["difficulty_scores"] == [s.difficulty]
        assert s.responses[0].gen["n"] == (2 if s.difficulty <= 5 else 5)
    (tmp_path / "s" / "state.json").unlink()
    res2 = run(cfg, progress=False)
    assert len(srv.requests()) == n_scored and res2.run["units"]["difficulty_cached"] == 4
    expected_out = sum(not 3 <= scripted_difficulty(src.prompt(s).question)[0] <= 8
                       for s in iter_card("geoqa", str(geoqa_dir), image_dir=str(geoqa_dir.parent / "images")))
    assert res2.report["counts"]["out_of_range"] == expected_out


def test_bad_input_names_file_and_line(tmp_path):
    good = Sample.text("q", "1").to_dict()
    bad = dict(good, answer_type="maths")
    (tmp_path / "in.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"in.jsonl:2: field 'answer_type'"):
        run({"out": str(tmp_path / "o"), "inputs": [{"path": str(tmp_path / "in.jsonl")}]}, progress=False)
    runs = list(read_jsonl(tmp_path / "o" / "runs.jsonl"))
    assert runs[-1]["status"] == "failed" and "in.jsonl:2" in runs[-1]["error"]
    assert not (tmp_path / "o" / "sft.jsonl").exists() and not list((tmp_path / "o").glob(".*.tmp"))


def test_teacher_failure_keeps_finished_units(tmp_path, geoqa_dir, start_server):
    srv = start_server("--card", "geoqa", "--src", str(geoqa_dir), "--image-dir", str(geoqa_dir.parent / "images"))
    cfg = geoqa_config(geoqa_dir, tmp_path / "f", teacher={"kind": "openai", "base_url": srv.url, "model": "scripted-qwq",
                                                           "max_retries": 1, "backoff": 0.01, "concurrency": 1})
    cfg["limit"] = 6
    run(cfg, progress=False)
    srv.stop()                                                  # the server goes away
    cfg2 = dict(cfg, limit=None)
    from mmredstar.generate import TeacherError

    with pytest.raises(TeacherError, match="gave up after 1 retries"):
        run(cfg2, progress=False)
    assert len(list((tmp_path / "f" / "units" / "teacher").glob("*.jsonl"))) == 2
    srv2 = start_server("--card", "geoqa", "--src", str(geoqa_dir), "--image-dir", str(geoqa_dir.parent / "images"))
    cfg3 = dict(cfg2, teacher={**cfg2["teacher"], "base_url": srv2.url})   # the address is not part of the unit key
    res = run(cfg3, progress=False)
    assert res.run["units"]["teacher_cached"] == 2 and res.run["units"]["teacher_queried"] == 2
    assert len(srv2.requests()) == 6


# ----------------------------------------------------------------------------------------- kill -9 and resume
def _write_cfg(path: Path, cfg: dict) -> Path:
    path.write_text("# test config\n" + yaml.safe_dump(cfg))
    return path


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path, start_server, geoqa_factory):
    qfile = geoqa_factory(tmp_path / "geoqa", 30, seed=5)
    args = ("--card", "geoqa", "--src", str(qfile), "--image-dir", str(qfile.parent / "images"), "--delay", "0.15",
            "--pad-to-chars", "800")
    srv = start_server(*args)
    base = geoqa_config(qfile, tmp_path / "ref", teacher={"kind": "openai", "base_url": srv.url, "model": "scripted-qwq",
                                                          "concurrency": 1},
                        unit_size=2, schedule={"1-10": 3}, default_n=3)
    # the reference: one uninterrupted run
    run(base, progress=False)
    ref_requests = len(srv.requests())
    assert ref_requests == 30

    srv2 = start_server(*args)
    cfg = _write_cfg(tmp_path / "kill.yaml", dict(base, out=str(tmp_path / "killed"),
                                                   teacher={**base["teacher"], "base_url": srv2.url}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "mmredstar.cli", "curate", str(cfg), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    units = tmp_path / "killed" / "units" / "teacher"
    deadline = time.time() + 120
    while len(list(units.glob("*.jsonl"))) < 4:
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.time() < deadline, "no units written in time"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    finished = sorted(units.glob("*.jsonl"))
    done_questions = {conftest_qhash(s.question) for f in finished for s in read_samples(f)}
    assert 8 <= len(done_questions) < 30
    assert not (tmp_path / "killed" / "sft.jsonl").exists()        # outputs appear only when complete
    before = len(srv2.requests())

    # resume: the same command
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(finished)} reused from an earlier run" in out.stdout
    resumed = srv2.requests()[before:]
    assert not {r["question"] for r in resumed} & done_questions            # no finished unit re-queried
    assert len(resumed) == 30 - len(done_questions)                          # and nothing else asked twice
    assert not list((tmp_path / "killed").glob(".*.tmp")) and not list(units.glob(".*.tmp"))
    for f in OUT_FILES:                                                      # same bytes as the uninterrupted run
        assert (tmp_path / "killed" / f).read_bytes() == (tmp_path / "ref" / f).read_bytes(), f
    check_outputs(tmp_path / "killed")


def conftest_qhash(question: str) -> str:
    from openai_server import _qhash

    return _qhash(question)


# ----------------------------------------------------------------------------------------- memory
MEMORY_SCRIPT = r"""
import json, sys
from mmredstar.curate import run
from mmredstar.io import write_samples
from mmredstar.schema import Sample

def hwm_kb():  # peak RSS of this process image (VmHWM; unlike ru_maxrss it does not inherit the parent's)
    return int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM")).split()[1])

out, pad, sizes = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3:]]
for n in sizes:
    write_samples(f"{out}{n}.jsonl", (Sample.text(f"Compute {i} + {i % 97}.", str(i + i % 97), "math") for i in range(n)))
for n in sizes:
    res = run({"out": f"{out}{n}", "inputs": [{"path": f"{out}{n}.jsonl"}], "unit_size": 200, "schedule": {"1-10": 2},
               "default_n": 2, "teacher": {"kind": "scripted", "error_rate": 0.3, "no_answer_rate": 0.1,
                                           "pad_to_chars": pad}}, progress=False)
    print(json.dumps({"prompts": n, "responses": res.report["counts"]["responses"], "peak_kb": hwm_kb()}), flush=True)
"""


def _peaks(tmp_path: Path, pad: int, *sizes: int) -> list[dict]:
    """Run the pipeline on inputs of the given sizes, in this order, in one fresh process; peak RSS after each."""
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path / "m"), str(pad), *map(str, sizes)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=3000)
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(x) for x in out.stdout.strip().splitlines()]


def test_memory_does_not_grow_with_the_input(tmp_path):
    """After 2,000 prompts (bounded caches warm), 8,000 (16,000 responses of ~1.5 kB: 24 MB of text) raise the
    peak by < 8 MB: nothing is kept per prompt."""
    small, big = _peaks(tmp_path, 1500, 2000, 8000)
    assert big["responses"] == 16_000
    growth_mb = (big["peak_kb"] - small["peak_kb"]) / 1024
    assert growth_mb < 8, f"peak memory grew by {growth_mb:.1f} MB from 2,000 to 8,000 prompts"


@pytest.mark.slow
def test_memory_bounded_at_200k_prompts(tmp_path):
    """200,000 prompts (400,000 responses) through the whole pipeline: the peak stays as after 10,000 (minutes)."""
    small, big = _peaks(tmp_path, 0, 10_000, 200_000)
    assert big["responses"] == 400_000
    growth_mb = (big["peak_kb"] - small["peak_kb"]) / 1024
    print(f"peak RSS after 10k prompts {small['peak_kb'] / 1024:.0f} MB, after 200k prompts {big['peak_kb'] / 1024:.0f} MB")
    assert growth_mb < 20, f"peak memory grew by {growth_mb:.1f} MB from 10k to 200k prompts"


def test_cli_check_and_errors(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ok = subprocess.run([sys.executable, "-m", "mmredstar.cli", "curate", str(GEOQA_CONFIG), "--check"],
                        capture_output=True, text=True, env=env, cwd=REPO)
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("out: x\ninputs: [{path: a.jsonl}]\nselect:\n  dpo:\n    pairng: all\n")
    r = subprocess.run([sys.executable, "-m", "mmredstar.cli", "curate", str(bad)], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "bad.yaml:5: unknown key 'select.dpo.pairng'; did you mean 'select.dpo.pairing'?" in r.stderr
    keys = subprocess.run([sys.executable, "-m", "mmredstar.cli", "curate", "--keys"], capture_output=True, text=True,
                          env=env)
    assert "select.dpo.pairing (str)" in keys.stdout and "teacher (dict)" in keys.stdout
    assert "teacher.base_url (str | list[str])" in keys.stdout and "difficulty.params.votes (int)" in keys.stdout
    assert "\n    \n" not in keys.stdout                        # every key has its documentation

