"""InternVL dynamic tiling: grid choice (aspect-ratio match, min/max tiles, tie rule), thumbnail, normalisation.

Expected grids are worked out by hand from InternVL's rule: the grid with the closest aspect ratio; on
a tie, the larger grid wins only if the image has more than half of that grid's pixels.

    .venv/bin/python -m pytest -q tests/modeling/test_tiling.py
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from mmredstar.modeling.tiling import choose_grid, split_tiles, tile_image

CASES = [  # (width, height, min_tiles, max_tiles) -> (columns, rows), tiles incl. thumbnail
    ((448, 448, 1, 12), (1, 1), 1),
    ((896, 448, 1, 12), (2, 1), 3),
    ((448, 896, 1, 12), (1, 2), 3),
    ((1344, 1344, 1, 12), (3, 3), 10),   # exact ratio 1: larger square grids win, the image is big enough
    ((100, 100, 1, 12), (1, 1), 1),      # ratio 1 but small: stays one tile
    ((1000, 200, 1, 12), (5, 1), 6),
    ((500, 300, 1, 12), (3, 2), 7),      # 1.667 -> 3:2 (1.5) is closest; 5:3 would need 15 tiles
    ((560, 448, 1, 12), (4, 3), 13),     # 1.25: 1:1 and 3:2 tie at 0.25, 4:3 is closer still
    ((100, 100, 2, 12), (2, 2), 5),      # min_tiles 2 forbids 1x1
    ((3000, 100, 1, 6), (6, 1), 7),      # max_tiles caps the grid
    ((1000, 200, 1, 1), (1, 1), 1),      # max_tiles 1: whole image resized, no thumbnail
]


@pytest.mark.parametrize("args,grid,n", CASES)
def test_grid_rule(args, grid, n):
    w, h, lo, hi = args
    assert choose_grid(w, h, tile_size=448, min_tiles=lo, max_tiles=hi) == grid
    tiles = split_tiles(Image.new("RGB", (w, h)), tile_size=448, min_tiles=lo, max_tiles=hi, use_thumbnail=True)
    assert len(tiles) == n and all(t.size == (448, 448) for t in tiles)


def test_no_thumbnail_when_disabled():
    tiles = split_tiles(Image.new("RGB", (896, 448)), tile_size=448, max_tiles=12, use_thumbnail=False)
    assert len(tiles) == 2


def test_tiles_in_reading_order_and_normalised():
    img = Image.new("RGB", (128, 64), (255, 0, 0))
    img.paste((0, 0, 255), (64, 0, 128, 64))           # left red, right blue
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    t = tile_image(img, tile_size=64, max_tiles=4, use_thumbnail=True, mean=mean, std=std)
    assert t.shape == (3, 3, 64, 64) and t.dtype == torch.float32
    red = torch.tensor([2.0, -2.0, -2.0])                # (1 - .5) / .25, (0 - .5) / .25
    assert torch.allclose(t[0, :, 32, 32], red)           # first tile: left half
    assert torch.allclose(t[1, :, 32, 32], red.flip(0))   # second tile: right half (blue)
    assert torch.allclose(t[2, :, 32, 10], red) and torch.allclose(t[2, :, 32, 54], red.flip(0))  # thumbnail
