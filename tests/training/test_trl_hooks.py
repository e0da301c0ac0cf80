"""The RL trainer overrides private TRL methods (training/rl.py TRL_HOOKS): they must exist in the installed TRL."""

from __future__ import annotations

import importlib.metadata

from mmredstar.training.rl import TRL_HOOKS, missing_trl_hooks


def test_the_private_trl_methods_we_override_exist():
    problems = missing_trl_hooks()
    assert not problems, (f"trl {importlib.metadata.version('trl')} changed the private GRPOTrainer API that "
                          f"mmredstar/training/rl.py overrides: {problems}; adapt MMGRPOTrainer (and TRL_HOOKS) or "
                          "narrow the trl range in pyproject.toml")


def test_the_check_would_catch_a_rename(monkeypatch):
    import trl

    monkeypatch.delattr(trl.GRPOTrainer, "_calculate_rewards")
    assert missing_trl_hooks() == ["trl.GRPOTrainer._calculate_rewards does not exist"]
    assert set(TRL_HOOKS) >= {"_tokenize_prompts", "_generate_and_score_completions"}
