"""Filled regular polygons with a four-choice angle-sum question, in GeoQA's LLM-era JSONL format.

    .venv/bin/python -m mmredstar.synth.polygons data/polygons --train 3000 --test 300 --seed 0

Each item is a 64x64 PNG of one filled regular polygon (3, 4, 5 or 6 sides; random colour, size,
rotation and position on a white background, anti-aliased) and the question "What is the sum of the
interior angles of the polygon in the figure?" with the choices in a FIXED order (A: 180°, B: 360°,
C: 540°, D: 720°; the answer is (n-2) x 180°). The number of sides is only in the picture, so a model
that ignores it cannot beat 25%. Sides are balanced (item i has ``SIDES[i % 4]`` before shuffling by the
seed), so 25% is also what always picking one answer gets.

Written per split (``<split>_questions.jsonl`` + ``images/<split>/<id>.png``), one JSON object per line,
the layout of G-LLaVA / R1-V GeoQA files with the answer inline::

    {"question_id": 0, "image": "images/test/0.png",
     "text": "\\nFirst perform reasoning, then finally select the question from the choices ... Question:What is
              the sum of the interior angles of the polygon in the figure?\\nChoices:\\nA:180°\\nB:360°\\nC:540°\\nD:720°",
     "answer": "C", "sides": 5,
     "reference_cot": "The interior angles of the polygon in the figure sum to 540°: it has 5 sides, and
                       (5-2) × 180° = 540°.\\nAnswer: 540°"}

Convert with the ``geoqa`` data card (``mmredstar data convert --card geoqa --src DIR/test_questions.jsonl``).
Generation is deterministic in (seed, split, item) and fast (~1 ms per item); a rerun with the same
arguments finds ``dataset.json`` and does nothing.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Mapping

from ..io import atomic_write, write_json

SIDES = (3, 4, 5, 6)
QUESTION = "What is the sum of the interior angles of the polygon in the figure?"
CHOICES = ("180°", "360°", "540°", "720°")
INSTRUCTION = ("\nFirst perform reasoning, then finally select the question from the choices in the following "
               "format: Answer: xxx.\nQuestion:")
VERSION = 3
"""Bumped when the drawing or the record layout changes (part of ``dataset.json``)."""
PALETTE = [(200, 30, 30), (30, 90, 200), (20, 140, 60), (120, 40, 160), (220, 110, 0), (0, 130, 140),
           (60, 60, 60), (170, 20, 110)]
"""Fill colours: all dark or saturated enough to stand out on white."""


def angle_sum(sides: int) -> int:
    """Sum of the interior angles of a polygon with ``sides`` sides, in degrees.

    >>> [angle_sum(n) for n in (3, 4, 5, 6)]
    [180, 360, 540, 720]
    """
    return (sides - 2) * 180


def reference_cot(sides: int) -> str:
    """The worked solution the scripted teacher writes from: the value read off the figure first, then why,
    then 'Answer: value'. The scripted teacher's wrong answers swap the value, so a wrong response differs
    from a right one where the figure is read (what DPO pairs then contrast).

    >>> print(reference_cot(4))
    The interior angles of the polygon in the figure sum to 360°: it has 4 sides, and (4-2) × 180° = 360°.
    Answer: 360°
    """
    s = angle_sum(sides)
    return (f"The interior angles of the polygon in the figure sum to {s}°: it has {sides} sides, and "
            f"({sides}-2) × 180° = {s}°.\nAnswer: {s}°")


def draw_polygon(sides: int, rng: random.Random, size: int = 64, scale: int = 4):
    """A ``PIL.Image`` (RGB, ``size`` x ``size``) of one filled regular polygon on white."""
    from PIL import Image, ImageDraw

    big = size * scale
    img = Image.new("RGB", (big, big), (255, 255, 255))
    d = ImageDraw.Draw(img)
    r = rng.uniform(0.30, 0.44) * size
    margin = size / 2 - r - 1
    cx = size / 2 + rng.uniform(-margin, margin)
    cy = size / 2 + rng.uniform(-margin, margin)
    rot = rng.uniform(0, 2 * math.pi)
    pts = [((cx + r * math.cos(rot + 2 * math.pi * k / sides)) * scale,
            (cy + r * math.sin(rot + 2 * math.pi * k / sides)) * scale) for k in range(sides)]
    d.polygon(pts, fill=rng.choice(PALETTE))
    return img.resize((size, size), Image.LANCZOS)


def polygon_record(qid: int, sides: int, image_rel: str) -> dict:
    """One LLM-era GeoQA record (see the module docstring)."""
    text = INSTRUCTION + QUESTION + "\nChoices:\n" + "\n".join(f"{chr(65 + i)}:{c}" for i, c in enumerate(CHOICES))
    return {"question_id": qid, "image": image_rel, "text": text, "answer": chr(65 + SIDES.index(sides)),
            "sides": sides, "reference_cot": reference_cot(sides)}


def write_polygons(out_dir: str | os.PathLike, splits: Mapping[str, int], *, seed: int = 0, image_size: int = 64,
                   progress: bool = False) -> dict[str, str]:
    """Write each split (``{"train": 3000, "test": 300}``) under ``out_dir``; returns ``{split: questions file}``.

    Question ids are unique over all splits (train first, in the order given). Idempotent: when
    ``out_dir/dataset.json`` records the same arguments the files are not rewritten."""
    from tqdm.auto import tqdm

    out_dir = os.fspath(out_dir)
    want = {"generator": "polygons", "version": VERSION, "splits": {k: int(v) for k, v in splits.items()},
            "seed": int(seed), "image_size": int(image_size)}
    files = {s: os.path.join(out_dir, f"{s}_questions.jsonl") for s in splits}
    manifest = os.path.join(out_dir, "dataset.json")
    if os.path.exists(manifest) and all(os.path.exists(f) for f in files.values()):
        with open(manifest, encoding="utf-8") as f:
            if json.load(f) == want:
                return files
    qid = 0
    for split, n in splits.items():
        img_dir = os.path.join(out_dir, "images", split)
        os.makedirs(img_dir, exist_ok=True)
        order = [SIDES[i % len(SIDES)] for i in range(int(n))]
        random.Random(f"polygons|{seed}|{split}|order").shuffle(order)
        with atomic_write(files[split]) as fh:
            for i in tqdm(range(int(n)), desc=f"polygons {split}", disable=not progress, unit="img"):
                rng = random.Random(f"polygons|{seed}|{split}|{i}")
                rel = f"images/{split}/{qid}.png"
                draw_polygon(order[i], rng, size=image_size).save(os.path.join(out_dir, rel), optimize=False)
                fh.write(json.dumps(polygon_record(qid, order[i], rel), ensure_ascii=False) + "\n")
                qid += 1
    write_json(manifest, want)
    return files


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description="Write the polygon angle-sum dataset in GeoQA LLM-era JSONL format.")
    p.add_argument("out_dir")
    p.add_argument("--train", type=int, default=3000)
    p.add_argument("--test", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=64)
    a = p.parse_args(argv)
    files = write_polygons(a.out_dir, {"train": a.train, "test": a.test}, seed=a.seed, image_size=a.image_size,
                           progress=True)
    for s, f in files.items():
        print(f"{s}: {f}")


if __name__ == "__main__":
    main()
