"""SFT trajectories and PPM pairs selected from real search trees."""

from mmredstar.io import read_samples, write_samples
from mmredstar.search.mcts import MCTSConfig, read_trees, run_mcts
from mmredstar.search.select import ppm_pairs, sft_samples, trajectories
from mmredstar.synth.steps import STEP_END, run_steps, step_problems
from tests.search.test_mcts import teacher


def test_sft_and_pairs_from_trees(tmp_path):
    probs = step_problems(8, seed=4)
    cfg = MCTSConfig(teacher=teacher(p_hostile=0.05, p_right=0.5), k=3, rollouts=8, max_depth=6, batch_problems=8)
    trees = read_trees(run_mcts(cfg, str(tmp_path), samples=probs))
    sft = sft_samples(trees, per_problem=2)
    solved = {t["id"] for t in trees if t["solved"]}
    assert sft and {s.id for s in sft} <= solved and all(len(s.responses) == 1 for s in sft)
    by_id = {s.id: s for s in probs}
    for s in sft:
        steps = s.responses[0].text.split(STEP_END + "\n")
        assert run_steps(steps) == by_id[s.id].answer            # every SFT trajectory really computes the answer
    for t in trees:                                                # ranked by mean step Q
        qs = [q for q, _ in trajectories(t)]
        assert qs == sorted(qs, reverse=True)
    pairs = ppm_pairs(trees, per_node=2)
    assert len(pairs) >= 5
    for p in pairs:
        assert p.chosen.meta["q"] > 0 > p.rejected.meta["q"] and p.chosen.text != p.rejected.text
        assert p.prompt[-1].role == "assistant" or p.meta["level"] == "1"
    assert len({p.meta["level"] for p in pairs}) >= 2
    write_samples(str(tmp_path / "pairs.jsonl"), pairs)             # valid schema records, round-trip
    back = list(read_samples(str(tmp_path / "pairs.jsonl")))
    assert [b.id for b in back] == [p.id for p in pairs]
    write_samples(str(tmp_path / "sft.jsonl"), sft)
    assert len(list(read_samples(str(tmp_path / "sft.jsonl")))) == len(sft)


def test_candidate_steps_drop_cut_off_empty_and_repeated():
    from mmredstar.schema import Response
    from mmredstar.search.steps import candidate_steps

    rs = [Response(text="\nx = 1<end_of_step>\n", finish_reason="stop"), Response(text="x = 1<end_of_step>"),
          Response(text="y = 2", finish_reason="length"), Response(text=" \n"), Response(text=None),
          Response(text="y = 3<end_of_step>")]
    assert candidate_steps(rs) == ["x = 1<end_of_step>", "y = 3<end_of_step>"]
