"""Toy reward factories for the RL tests (``rl.reward: tests.training.rewards:NAME``).

A random-init tiny model almost never earns the rule reward, so learning is shown on a reward it can
move in seconds; the rule-reward path is exercised separately.
"""


def low_token_share(threshold: int = 640):
    """Reward = share of completion tokens with id < ``threshold`` (about 0.5 for a random tiny model).

    Raising it needs the policy to move probability mass to half of the vocabulary: visible in a few
    steps, and in the direction of the reward only if the policy-gradient update has the right sign."""

    def reward(prompts=None, completions=None, completion_ids=None, **_):
        return [sum(1 for t in ids if t < threshold) / max(1, len(ids)) for ids in completion_ids]

    reward.__name__ = "low_token_share"
    return reward


def answer_parity():
    """Reward 1 when the prompt's reference answer is even, else 0: the same for every response to a prompt.

    GRPO's per-group advantages are then all zero (nothing to learn); REINFORCE++'s global ones are not."""

    def reward(prompts=None, completions=None, answer=None, **_):
        return [1.0 if int(a) % 2 == 0 else 0.0 for a in answer]

    reward.__name__ = "answer_parity"
    return reward
