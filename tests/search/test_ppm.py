"""The PPM: a recipe with ``method: ppm`` trains a scalar head with the pairwise loss; the saved PPM scores steps;
the PPM-guided step beam search backend runs candidates in the sandbox and answers from the best path."""

import json
import os
from dataclasses import dataclass

import pytest

from mmredstar.evaluation.search import CodeStepsConfig, CodeStepsTeacher, PPMSearchConfig, PPMSearchTeacher
from mmredstar.generate import SamplingParams, Teacher
from mmredstar.io import read_samples
from mmredstar.modeling.ppm import PPMScorer, encode_step
from mmredstar.schema import Response
from mmredstar.synth.steps import step_problems
from mmredstar.training import run
from mmredstar.verify import verify_response
from tests.search.test_mcts import teacher


@pytest.fixture(scope="module")
def ppm_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppm") / "ppm"
    run("rstar/tiny_ppm", {"output_dir": str(out), "train.max_steps": 60, "train.progress": False,
                           "train.batch_size": 8})
    return str(out)


def test_ppm_recipe_learns_the_ranking(ppm_dir):
    m = json.load(open(os.path.join(ppm_dir, "metrics.json")))
    assert m["method"] == "ppm" and m["steps"] == 60
    assert m["last_loss"] < 0.5 * m["first_loss"]
    assert m["train_pairwise_accuracy"] >= 0.9
    # the saved PPM scores the same as training measured: chosen above rejected
    scorer = PPMScorer(ppm_dir)
    pairs = list(read_samples(os.path.join(ppm_dir, "data", "dpo_text.jsonl")))
    good = scorer.score([(p, [p.chosen.text]) for p in pairs])
    bad = scorer.score([(p, [p.rejected.text]) for p in pairs])
    assert sum(g > b for g, b in zip(good, bad, strict=True)) / len(pairs) >= 0.9
    assert all(-1 <= x <= 1 for x in good + bad)


def test_encode_step_matches_generation_view():
    from mmredstar.modeling import load_model
    from mmredstar.search.steps import with_prefix

    _, proc = load_model("tiny_text")
    s = step_problems(1)[0]
    a = encode_step(proc, s, ["x = 1 + 2", "x = x - 1"])
    b = encode_step(proc, with_prefix(s, ["x = 1 + 2"], "t"), ["x = x - 1"])
    assert a == b
    assert proc.tokenizer.decode(a).endswith("x = 1 + 2<end_of_step>\nx = x - 1")


def test_ppm_search_and_code_steps_backends(ppm_dir):
    probs = step_problems(6, seed=8)
    t = PPMSearchTeacher(PPMSearchConfig(policy=teacher(p_hostile=0.2), ppm=ppm_dir, k=3, beam=2, max_depth=6))
    outs = t.generate(probs, [1] * len(probs), SamplingParams(temperature=1.0, seed=0))
    for rs in outs:
        assert len(rs) == 1
        r = rs[0]
        assert r.meta["generated_steps"] >= 3 and r.gen["k"] == 3
        assert "while True" not in r.text and "10 ** 10" not in r.text
        if r.text:
            assert "\\boxed{" in r.text
    right = sum(verify_response(s, rs[0].text).verdict == "correct" for s, rs in zip(probs, outs, strict=True))
    assert right >= 1
    # whole trajectories: the reference trajectory scores correct, one printing a wrong value wrong
    cs = CodeStepsTeacher(CodeStepsConfig(policy={"kind": "tests.search.test_ppm:TrajectoryTeacher"}))
    res = cs.generate(probs, [2] * len(probs), SamplingParams())
    for s, (a, b) in zip(probs, res, strict=True):
        assert verify_response(s, a.text).verdict == "correct" and verify_response(s, b.text).verdict == "wrong"


@dataclass
class NoOptions:
    pass


class TrajectoryTeacher(Teacher):
    """Whole trajectories: the reference, then the reference printing x + 1."""

    kind = "trajectory"
    Config = NoOptions

    def generate(self, samples, n, params):
        return [[Response(text=s.meta["reference_cot"], finish_reason="stop"),
                 Response(text=s.meta["reference_cot"].replace("print(x)", "print(x + 1)"), finish_reason="stop")][:k]
                for s, k in zip(samples, n, strict=True)]
