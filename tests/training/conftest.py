"""Fixtures for the training tests: tiny models from presets, built-in data, small thread counts."""

import pytest
import torch

torch.set_num_threads(1)  # tiny models: one thread is fastest and robust to a busy shared CPU


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("train_fixtures"))


@pytest.fixture(scope="session")
def records(fixture_dir):
    """name -> [(record, file, line)] for every built-in set."""
    from mmredstar.synth.builtins import BUILTIN_SETS
    from mmredstar.training.data import load_records, resolve_data

    kinds = {"sft": "sft", "dpo": "dpo", "rl": "rl"}
    out = {}
    for name in BUILTIN_SETS:
        files = resolve_data([f"builtin:{name}"], root=None, work_dir=fixture_dir)
        out[name] = load_records(files, kind=kinds[name.split("_")[0]])
    return out


def snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def moved(before: dict, model) -> float:
    """Largest absolute change of any weight."""
    after = model.state_dict()
    return max(float((after[k] - v).abs().max()) for k, v in before.items())
