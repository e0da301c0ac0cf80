"""Synthetic multimodal datasets in real public formats, for the demo and tests.

    mmredstar geoqa prepare configs/geoqa/demo.yaml      # uses it through the pipeline config

    from mmredstar.synth import write_polygons
    files = write_polygons("data/polygons", {"train": 3000, "test": 300}, seed=0)

``polygons``: filled regular polygons (3-6 sides) on 64x64 PNGs with one fixed four-choice question
("What is the sum of the interior angles of the polygon in the figure?"), written as GeoQA's LLM-era
question JSONL (``question_id``, ``image``, ``text`` with ``Choices:\\nA:...``, ``answer`` letter) plus a
``reference_cot`` column (a short worked solution that states the value). The figure carries the answer:
without it the best a model can do is guess (25%).
"""

import importlib

from mmredstar.registry import lookup

GENERATORS = {"polygons": "mmredstar.synth.polygons:write_polygons"}
"""Dataset generators by name (``prepare.generate.kind`` in a GeoQA pipeline config)."""

__all__ = ["GENERATORS", "QUESTION", "SIDES", "draw_polygon", "polygon_record", "write_polygons", "generator"]


def generator(kind: str):
    """The generator function of ``kind`` (a ``GENERATORS`` name or ``pkg.module:function``)."""
    return lookup(kind, GENERATORS, "dataset generator")


def __getattr__(name: str):  # lazy, so ``python -m mmredstar.synth.polygons`` imports the module once
    if name in ("QUESTION", "SIDES", "draw_polygon", "polygon_record", "write_polygons"):
        return getattr(importlib.import_module("mmredstar.synth.polygons"), name)
    raise AttributeError(f"module 'mmredstar.synth' has no attribute {name!r}")
