"""Fixtures for the modeling tests: tiny models built from presets, images of several aspect ratios."""

from __future__ import annotations

import math

import pytest
import torch

torch.set_num_threads(2)


def polygon_image(sides: int = 5, size=(64, 64), color=(200, 30, 30)):
    """A filled regular polygon on white (PIL)."""
    from PIL import Image, ImageDraw

    w, h = size
    r = min(w, h) * 0.4
    img = Image.new("RGB", size, "white")
    pts = [(w / 2 + r * math.cos(2 * math.pi * k / sides), h / 2 + r * math.sin(2 * math.pi * k / sides))
           for k in range(sides)]
    ImageDraw.Draw(img).polygon(pts, fill=color)
    return img


@pytest.fixture
def make_image():
    return polygon_image


@pytest.fixture(scope="module")
def tiny_text():
    from mmredstar.modeling import load_model

    return load_model("tiny_text", seed=0)


@pytest.fixture(scope="module")
def tiny_vlm():
    from mmredstar.modeling import load_model

    return load_model("tiny_vlm", seed=0, max_tiles=4)
