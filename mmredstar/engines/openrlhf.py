"""OpenRLHF's custom reward function: ``reward_func(queries, prompts, labels, **kwargs)``.

    mmredstar data export --src rl.jsonl --out rl_openrlhf.jsonl --format openrlhf
    python -m openrlhf.cli.train_ppo_ray --prompt_data rl_openrlhf.jsonl --input_key input --apply_chat_template \\
        --label_key label --remote_rm_url $(python -c 'import mmredstar.engines.openrlhf as m; print(m.__file__)') \\
        --advantage_estimator reinforce ...

``queries`` are prompt + response texts, ``prompts`` the prompt texts, ``labels`` the ``label`` column (our export:
the record as JSON; a bare answer works too). Returns ``{"rewards", "scores", "extra_logs"}`` as OpenRLHF expects:
``rewards`` the rule reward (1 / 0 / -1) for the advantages, ``scores`` in [0, 1] (1 = verified) for dynamic
filtering, ``extra_logs`` the share verified and the share without a valid answer.
"""

from __future__ import annotations

from mmredstar.engines import sample_from_reference, score


def response_of(query: str, prompt: str) -> str:
    """The response part of an OpenRLHF query (prompt + response)."""
    if isinstance(prompt, str) and prompt and query.startswith(prompt):
        return query[len(prompt):]
    return query


def reward_func(queries, prompts, labels, **kwargs) -> dict:
    import torch

    rewards = []
    for q, p, lab in zip(queries, prompts, labels, strict=True):
        rewards.append(score(sample_from_reference(lab), response_of(q, p))["score"])
    r = torch.tensor(rewards, dtype=torch.float32)
    n = max(len(rewards), 1)
    return {"rewards": r, "scores": (r > 0).float(),
            "extra_logs": {"verified": torch.tensor(sum(x > 0 for x in rewards) / n),
                           "no_answer": torch.tensor(sum(x < 0 for x in rewards) / n)}}
