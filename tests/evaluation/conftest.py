"""Fixtures for evaluation tests: a small generated GeoQA-format set, and a math file in the hs_league24 layout."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def polygons(tmp_path) -> Path:
    """12 polygon items in GeoQA's LLM-era JSONL format (``test_questions.jsonl`` + PNGs)."""
    from mmredstar.synth import write_polygons

    return Path(write_polygons(tmp_path / "polygons", {"test": 12}, seed=1)["test"])


@pytest.fixture
def math_file(tmp_path) -> Path:
    """Three arithmetic problems in the hs_league24 local-file layout (id, problem, answer)."""
    p = tmp_path / "hs.jsonl"
    p.write_text('{"id": "a", "problem": "What is 2+3?", "answer": "5"}\n'
                 '{"id": "b", "problem": "What is 4 times 3?", "answer": "12"}\n'
                 '{"id": "c", "problem": "What is half of 1?", "answer": "\\\\frac{1}{2}"}\n')
    return p
