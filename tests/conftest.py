"""Shared fixtures. Tests never download anything: tiny models and tokenizers are built locally."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "assets"
SHARED = Path(os.environ.get("MMREDSTAR_SHARED", REPO.parent / "shared"))


@pytest.fixture
def assets() -> Path:
    return ASSETS


@pytest.fixture
def shared() -> Path:
    """The ../shared folder (benchmarks, conformance); tests using it skip where it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    return SHARED


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except Exception:
        has_gpu = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
