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


def test_trainable_layers_freeze_all_but_the_last_blocks():
    from mmredstar.modeling import load_model
    from mmredstar.modeling.ppm import ProcessPreferenceModel
    from mmredstar.training.ppm import trainable_to_last

    lm, _ = load_model("tiny_text")
    m = ProcessPreferenceModel(lm)
    dec = lm.get_decoder()
    total = sum(p.numel() for p in m.parameters())
    head = sum(p.numel() for p in m.head.parameters())
    last = sum(p.numel() for p in dec.layers[-1].parameters()) + sum(p.numel() for p in dec.norm.parameters())
    assert trainable_to_last(m, 1) == head + last
    assert not any(p.requires_grad for p in dec.layers[0].parameters())
    assert not dec.embed_tokens.weight.requires_grad
    assert all(p.requires_grad for p in dec.layers[-1].parameters())
    assert trainable_to_last(m, 0) == head                     # a linear probe on the frozen backbone
    assert trainable_to_last(ProcessPreferenceModel(lm), -1) == 65                       # -1 leaves it as it was
    fresh = ProcessPreferenceModel(load_model("tiny_text")[0])
    assert trainable_to_last(fresh, -1) == trainable_to_last(fresh, None) == total


def test_validation_split_keeps_each_problem_on_one_side():
    from mmredstar.schema import Pair, Sample
    from mmredstar.training.ppm import split_validation

    pairs = [Pair.from_sample(Sample.text(f"Compute {i} + 1.", str(i + 1), "math"), Response(text=f"x = {i} + 1"),
                              Response(text=f"x = {i} - {j}"), problem_id=f"p{i}") for i in range(20) for j in range(3)]
    fit, val = split_validation(pairs, 0.25, seed=0)
    assert len(fit) + len(val) == 60 and len(val) == 15          # 5 of the 20 problems, all 3 pairs of each
    assert not {p.meta["problem_id"] for p in fit} & {p.meta["problem_id"] for p in val}
    assert split_validation(pairs, 0.25, seed=0)[1] == val       # seeded, reproducible
    assert split_validation(pairs, 0.0)[1] == []


def test_ppm_validation_keeps_the_best_weights_and_stops_early(tmp_path):
    from mmredstar.modeling.ppm import load_ppm
    from mmredstar.training.ppm import pair_rows, pairwise_accuracy, split_validation

    out = tmp_path / "ppm"
    run("rstar/tiny_ppm", {"output_dir": str(out), "train.max_steps": 400, "train.progress": False,
                           "train.batch_size": 8, "ppm.val_share": 0.25, "ppm.val_every": 5, "ppm.patience": 3,
                           "ppm.trainable_layers": 1})
    m = json.load(open(out / "metrics.json"))
    val = m["series"]["val"]
    assert m["val_pairs"] == 6 and m["train_pairs"] == 18
    assert m["stopped_step"] < 400 and m["steps"] == m["stopped_step"]        # it stopped early
    assert [s for s, _, _ in val][-1] == m["stopped_step"] and len(val) - 1 - [s for s, _, _ in val].index(m["best_step"]) == 3
    best = max(val, key=lambda x: (x[1], -x[2]))
    assert best[0] == m["best_step"] and abs(best[1] - m["val_pairwise_accuracy"]) < 1e-6
    # the saved PPM holds the best step's weights: it scores the validation pairs as that check did
    model, proc = load_ppm(str(out))
    pairs = list(read_samples(str(out / "data" / "dpo_text.jsonl")))
    _, vp = split_validation(pairs, 0.25, seed=0)
    assert pairwise_accuracy(model, proc, pair_rows(proc, vp, 192)) == m["val_pairwise_accuracy"]


def test_step_logprob_score_is_the_backbones_step_likelihood_plus_the_head(tmp_path):
    import torch

    from mmredstar.modeling import load_model
    from mmredstar.modeling.ppm import ProcessPreferenceModel, batch_rows, encode_scored

    lm, proc = load_model("tiny_text")
    s = step_problems(1)[0]
    ids, start = encode_scored(proc, s, ["x = 1 + 2", "x = x - 1"])
    assert proc.tokenizer.decode(ids[start:]) == "x = x - 1"
    cut, cstart = encode_scored(proc, s, ["x = 1 + 2", "x = x - 1"], max_length=8)
    assert cut == ids[-8:] and cut[cstart:] == ids[start:]
    m = ProcessPreferenceModel(lm, step_logprob=True).eval()
    rows = [(ids, start), encode_scored(proc, s, ["x = 7"])]
    x, mask, st = batch_rows(rows, proc.pad_token_id, "cpu")
    with torch.no_grad():
        got = m(x, mask, st)
        head_only = ProcessPreferenceModel.forward(m, x, mask, torch.full_like(st, x.shape[1]))   # no step tokens
        for i, (r, b) in enumerate(rows):
            logits = lm(input_ids=torch.tensor([r])).logits[0]
            lp = torch.log_softmax(logits.float(), -1)[torch.arange(b - 1, len(r) - 1), torch.tensor(r[b:])].sum()
            assert abs(float(got[i] - head_only[i]) - float(lp)) < 1e-4
    m.logprob_weight.data.fill_(0.5)
    m.save(str(tmp_path / "p"), proc)
    scorer = PPMScorer(str(tmp_path / "p"))
    assert scorer.model.step_logprob and float(scorer.model.logprob_weight.detach()) == 0.5
    with torch.no_grad():
        want = m(x, mask, st).tolist()
    assert all(abs(a - b) < 1e-5 for a, b in zip(scorer.raw([(s, ["x = 1 + 2", "x = x - 1"]), (s, ["x = 7"])]), want,
                                                strict=True))


def test_step_mean_pool_reads_the_mean_of_the_step_tokens_states(tmp_path):
    """``ppm.pool: step_mean``: the value head reads the mean of the hidden states of the step's own tokens (not
    the problem's, not the padding's); the choice survives save / load; an unknown pool is refused."""
    import torch

    from mmredstar.modeling import load_model
    from mmredstar.modeling.ppm import ProcessPreferenceModel, batch_rows, encode_scored

    lm, proc = load_model("tiny_text")
    s = step_problems(1)[0]
    rows = [encode_scored(proc, s, ["x = 1 + 2", "x = x - 1"]), encode_scored(proc, s, ["x = 7"])]
    m = ProcessPreferenceModel(lm, pool="step_mean").eval()
    x, mask, st = batch_rows(rows, proc.pad_token_id, "cpu")
    with torch.no_grad():
        got = m(x, mask, st)
        for i, (r, b) in enumerate(rows):
            h = lm(input_ids=torch.tensor([r]), output_hidden_states=True).hidden_states[-1][0]
            assert abs(float(got[i]) - float(m.head(h[b:].mean(0)))) < 1e-4
        last = ProcessPreferenceModel.forward(ProcessPreferenceModel(lm), x, mask, st)   # another head: differs
    assert not torch.allclose(got, last)
    m.save(str(tmp_path / "p"), proc)
    scorer = PPMScorer(str(tmp_path / "p"))
    assert scorer.model.pool == "step_mean"
    assert all(abs(a - b) < 1e-5 for a, b in zip(scorer.raw([(s, ["x = 1 + 2", "x = x - 1"]), (s, ["x = 7"])]),
                                                got.tolist(), strict=True))
    with pytest.raises(ValueError, match="pool 'mean'"):
        ProcessPreferenceModel(lm, pool="mean")
    with pytest.raises(ValueError, match="step_start"):
        m(x, mask)


def test_include_greedy_makes_the_first_sample_the_greedy_one():
    """``include_greedy``: response 0 of each prompt is the policy's temperature-0 one, the other n - 1 sampled."""
    probs = step_problems(3, seed=4)
    base = CodeStepsTeacher(CodeStepsConfig(model="tiny_text"))
    greedy = base.generate(probs, [1] * 3, SamplingParams(temperature=0.0, max_tokens=12, seed=0))
    sampled = base.generate(probs, [3] * 3, SamplingParams(temperature=1.0, max_tokens=12, seed=0))
    mixed = CodeStepsTeacher(CodeStepsConfig(model="tiny_text", include_greedy=True)).generate(
        probs, [3] * 3, SamplingParams(temperature=1.0, max_tokens=12, seed=0))
    for g, m in zip(greedy, mixed, strict=True):
        assert len(m) == 3
        assert m[0].text == g[0].text and m[0].gen["temperature"] == 0.0
        assert [r.gen["temperature"] for r in m[1:]] == [1.0, 1.0]
    # the untrained policy's samples differ from its greedy output, so the option changed what was generated
    assert any(s[0].text != g[0].text for g, s in zip(greedy, sampled, strict=True))
