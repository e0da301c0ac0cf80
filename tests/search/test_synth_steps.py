"""The generated multi-step arithmetic: every reference step runs and the last printed value is the answer."""

from mmredstar.synth.steps import STEP_END, join_steps, run_steps, step_problems


def test_reference_steps_compute_the_answer():
    ss = step_problems(40, seed=3)
    assert len({s.question for s in ss}) == 40
    assert {s.meta["level"] for s in ss} == {"Level 1", "Level 2", "Level 3", "Level 4"}
    for s in ss:
        steps = s.meta["reference_steps"]
        level = int(s.meta["level"][-1])
        assert len(steps) == level + 1 and s.difficulty == 2 * level - 1
        assert run_steps(steps) == s.answer
        # every prefix of the steps runs too (what the search checks step by step)
        for k in range(1, len(steps)):
            run_steps(steps[:k])
        assert s.meta["reference_cot"] == join_steps(steps) and s.meta["reference_cot"].count(STEP_END) == level


def test_deterministic():
    assert [s.to_dict() for s in step_problems(10, seed=1)] == [s.to_dict() for s in step_problems(10, seed=1)]
