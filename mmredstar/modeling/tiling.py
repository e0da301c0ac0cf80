"""InternVL image preprocessing: dynamic high-resolution tiling and normalisation.

An image is resized to the grid of ``tile_size`` tiles whose aspect ratio is closest to the image's
(among grids of ``min_tiles``..``max_tiles`` tiles; on a tie the larger grid wins when the image has
more than half its pixels), cut into those tiles, and, when it became more than one tile, followed by
a thumbnail of the whole image. This is InternVL's ``dynamic_preprocess`` rule.

    from mmredstar.modeling.tiling import tile_image, choose_grid
    tiles = tile_image(pil_image, tile_size=448, max_tiles=12)     # tensor [n, 3, 448, 448]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from einops import rearrange


def candidate_grids(min_tiles: int, max_tiles: int) -> list[tuple[int, int]]:
    """All (columns, rows) grids with min_tiles <= columns*rows <= max_tiles, fewest tiles first.

    Grids with the same tile count keep the order InternVL's reference code visits them in (a set of
    tuples built in this same order, then a stable sort by tile count), so ties break identically.

    >>> sorted(candidate_grids(1, 2))
    [(1, 1), (1, 2), (2, 1)]
    """
    grids = set((i, j) for n in range(min_tiles, max_tiles + 1) for i in range(1, n + 1)
                for j in range(1, n + 1) if min_tiles <= i * j <= max_tiles)
    return sorted(grids, key=lambda g: g[0] * g[1])


def choose_grid(width: int, height: int, *, tile_size: int = 448, min_tiles: int = 1,
                max_tiles: int = 12) -> tuple[int, int]:
    """The (columns, rows) grid for an image of ``width`` x ``height`` pixels.

    >>> choose_grid(896, 448)
    (2, 1)
    >>> choose_grid(448, 448), choose_grid(1344, 1344), choose_grid(100, 100, min_tiles=2)
    ((1, 1), (3, 3), (2, 2))
    """
    aspect = width / height
    area = width * height
    best, best_diff = (1, 1), float("inf")
    for cols, rows in candidate_grids(min_tiles, max_tiles):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and area > 0.5 * tile_size * tile_size * cols * rows:
            best = (cols, rows)
    return best


def split_tiles(image, *, tile_size: int = 448, min_tiles: int = 1, max_tiles: int = 12,
                use_thumbnail: bool = True) -> list:
    """The tiles of a ``PIL.Image`` in reading order (+ the thumbnail), as PIL images."""
    from PIL import Image

    cols, rows = choose_grid(image.width, image.height, tile_size=tile_size, min_tiles=min_tiles,
                             max_tiles=max_tiles)
    resample = Image.Resampling.BICUBIC
    resized = image.resize((cols * tile_size, rows * tile_size), resample)
    tiles = [resized.crop((c * tile_size, r * tile_size, (c + 1) * tile_size, (r + 1) * tile_size))
             for r in range(rows) for c in range(cols)]
    if use_thumbnail and len(tiles) > 1:
        tiles.append(image.resize((tile_size, tile_size), resample))
    return tiles


def normalize(tiles: Sequence, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """PIL tiles -> float tensor [n, 3, H, W], scaled to 0-1 and normalised per channel."""
    arr = np.stack([np.asarray(t.convert("RGB"), dtype=np.float32) for t in tiles]) / 255.0
    arr = (arr - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(rearrange(arr, "n h w c -> n c h w")))


def tile_image(image, *, tile_size: int = 448, min_tiles: int = 1, max_tiles: int = 12, use_thumbnail: bool = True,
               mean: Sequence[float] = (0.485, 0.456, 0.406), std: Sequence[float] = (0.229, 0.224, 0.225)
               ) -> torch.Tensor:
    """A ``PIL.Image`` -> normalised tiles [n, 3, tile_size, tile_size] (InternVL's preprocessing)."""
    tiles = split_tiles(image, tile_size=tile_size, min_tiles=min_tiles, max_tiles=max_tiles,
                        use_thumbnail=use_thumbnail)
    return normalize(tiles, mean, std)
