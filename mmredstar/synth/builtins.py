"""Built-in training fixtures: small, deterministic SFT / DPO / RL sets, text and with images.

The tiny recipes (``train/tiny/*.yaml``) and the training tests train on these. They are generated
(no files in the repository), written once per run into ``OUTPUT_DIR/data/`` and hashed into the
data manifest like any other file. Each set is memorisable by a tiny model in a few dozen steps.

    python -m mmredstar.synth.builtins OUT_DIR          # write every built-in set under OUT_DIR

Sets (name -> what it holds):
  sft_text   arithmetic questions with a short think block and a boxed answer (one response each)
  sft_vlm    64x64 images of a filled shape; "what colour is the shape?" (choice), answer stated then lettered
  dpo_text   the sft_text prompts with (correct, wrong) responses
  dpo_vlm    the sft_vlm prompts with (correct, wrong) responses
  rl_text    the sft_text prompts without responses (RL prompts, ``meta.pass_rate`` 0.5)
  rl_vlm     the sft_vlm prompts without responses
  sft_arith  256 multi-step arithmetic problems, levels 1-3 (``synth.arithmetic``), each with a
             step-by-step think block and a boxed answer: verifiable long-CoT data for a real small
             model (the smollm2 recipes); ``held_out_arith(n)`` gives disjoint test problems
  dpo_arith  128 of them as (correct, wrong-final-step) pairs
  rl_arith   64 of them as RL prompts
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable

from mmredstar.io import atomic_write, write_samples
from mmredstar.schema import ImageRef, Pair, Response, Sample

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (235, 200, 20)}
SHAPES = ("square", "disc", "triangle")


def _arith(n: int, seed: int) -> list[tuple[Sample, str, str]]:
    """(prompt sample, correct response, wrong response) for ``n`` addition questions."""
    rng = random.Random(seed)
    out = []
    seen = set()
    while len(out) < n:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        if (a, b) in seen:
            continue
        seen.add((a, b))
        c = a + b
        wrong = c + rng.choice([-2, -1, 1, 2])
        s = Sample.text(f"What is {a} + {b}?", str(c), "math", source="builtin", split="train")
        good = f"<think>{a} + {b} = {c}.</think>\nThe answer is \\boxed{{{c}}}."
        bad = f"<think>{a} + {b} = {wrong}.</think>\nThe answer is \\boxed{{{wrong}}}."
        out.append((s, good, bad))
    return out


def shape_image(colour: str, shape: str, size: int = 64, jitter: int = 0):
    """A ``size`` x ``size`` RGB PIL image: a filled ``shape`` in ``colour`` on white."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(img)
    m = size // 6 + jitter
    box = (m, m, size - 1 - m, size - 1 - m)
    rgb = COLOURS[colour]
    if shape == "square":
        d.rectangle(box, fill=rgb)
    elif shape == "disc":
        d.ellipse(box, fill=rgb)
    else:
        d.polygon([(size // 2, m), (size - 1 - m, size - 1 - m), (m, size - 1 - m)], fill=rgb)
    return img


def _colours(n: int, seed: int, image_dir: str) -> list[tuple[Sample, str, str]]:
    """(prompt sample with one image, correct response, wrong response) for ``n`` colour questions."""
    rng = random.Random(seed)
    names = list(COLOURS)
    os.makedirs(image_dir, exist_ok=True)
    out = []
    for i in range(n):
        colour = names[i % len(names)]
        shape = SHAPES[(i // len(names)) % len(SHAPES)]
        jitter = rng.randint(0, 3)
        fname = f"shape_{i:03d}.png"
        path = os.path.join(image_dir, fname)
        if not os.path.exists(path):
            with atomic_write(path, "wb") as f:  # several ranks may write the same set at once
                shape_image(colour, shape, 64, jitter).save(f, format="PNG", optimize=False)
        letter = chr(ord("A") + names.index(colour))
        wrong = names[(names.index(colour) + 1 + rng.randint(0, 2)) % len(names)]
        wletter = chr(ord("A") + names.index(wrong))
        img = ImageRef(path=os.path.join(os.path.basename(image_dir), fname), root=os.path.dirname(image_dir))
        s = Sample.with_images("What colour is the shape?", [img], letter, "choice", choices=names,
                               source="builtin", split="train")
        good = f"<think>The {shape} is {colour}.</think>\nAnswer: {letter}"
        bad = f"<think>The {shape} is {wrong}.</think>\nAnswer: {wletter}"
        out.append((s, good, bad))
    return out


ARITH_LEVELS = (1, 2, 3)


def _arith_cot(s: Sample) -> str:
    """A think block with the worked steps, then the boxed answer."""
    steps = s.meta["reference_cot"].rsplit("\n", 1)[0]
    return f"<think>\n{steps}\n</think>\n\nThe final answer is \\boxed{{{s.answer}}}."


def _arith_levels(n: int, seed: int = 0) -> list[tuple[Sample, str, str]]:
    """(prompt, correct long-CoT response, wrong one) for ``n`` multi-step arithmetic problems."""
    from mmredstar.synth.arithmetic import arithmetic_problems

    rng = random.Random(seed)
    out = []
    for s in arithmetic_problems(n, seed=seed, levels=ARITH_LEVELS):
        good = _arith_cot(s)
        wrong = str(int(s.answer) + rng.choice([-10, -2, -1, 1, 2, 10]))
        bad = good.replace(f"= {s.answer}.", f"= {wrong}.").replace(f"\\boxed{{{s.answer}}}", f"\\boxed{{{wrong}}}")
        s.meta = {k: v for k, v in s.meta.items() if k != "reference_cot"}
        out.append((s, good, bad))
    return out


ARITH_PROMPT = "{question}"
"""The prompt the arithmetic sets train on: the bare question, no instruction (the chat template adds the
turns). Evaluate what they taught with the same prompt (``arith_spec``): an instruction the model never saw in
training, such as math500's "put your final answer within \\boxed{}", makes a fine-tuned small model copy an
empty ``\\boxed{}``."""


def arith_spec(max_new_tokens: int = 64, description: str = "held-out generated arithmetic, boxed answers, pass@1") -> dict:
    """The benchmark spec (plain data for ``mmredstar.evaluation.spec.spec_from_dict``) of held-out arithmetic
    problems (``held_out_arith`` or ``synth.arithmetic``): the training prompt ``ARITH_PROMPT``, greedy, pass@1.

    >>> arith_spec(128)["prompt"], arith_spec(128)["max_new_tokens"]
    ('{question}', 128)
    """
    return {"description": description,
            "card": {"name": "arith_levels", "answer_type": "math", "columns": {"question": "question", "answer": "answer"}},
            "prompt": ARITH_PROMPT, "max_new_tokens": int(max_new_tokens), "temperature": 0.0, "metrics": ["pass@1"]}


def held_out_arith(n: int, seed: int = 1) -> list[Sample]:
    """``n`` arithmetic problems of the ``*_arith`` levels none of whose questions is in ``sft_arith``
    (``split: test``): the held-out set for evaluating what the recipes learned."""
    from mmredstar.synth.arithmetic import arithmetic_problems

    seen = {s.question for s, _, _ in _arith_levels(256)}
    pool = [s for s in arithmetic_problems(2 * n + 64, seed=seed, levels=ARITH_LEVELS, split="test")
            if s.question not in seen]
    if len(pool) < n:
        raise ValueError(f"held_out_arith: only {len(pool)} disjoint problems; ask for fewer")
    return pool[:n]


def _sft(items) -> list[Sample]:
    out = []
    for s, good, _ in items:
        s.responses = [Response(text=good, finish_reason="stop", verdict="correct", reward=1.0)]
        out.append(s)
    return out


def _dpo(items) -> list[Pair]:
    return [Pair.from_sample(s, Response(text=good, finish_reason="stop", verdict="correct", reward=1.0),
                             Response(text=bad, finish_reason="stop", verdict="wrong", reward=0.0))
            for s, good, bad in items]


def _rl(items) -> list[Sample]:
    out = []
    for s, _, _ in items:
        s.meta = {**s.meta, "pass_rate": 0.5}
        out.append(s)
    return out


def _build(name: str, out_dir: str) -> list[Sample]:
    images = os.path.join(out_dir, "images")
    makers: dict[str, Callable[[], list]] = {
        "sft_text": lambda: _sft(_arith(24, 0)),
        "sft_vlm": lambda: _sft(_colours(24, 1, images)),
        "dpo_text": lambda: _dpo(_arith(24, 0)),
        "dpo_vlm": lambda: _dpo(_colours(24, 1, images)),
        "rl_text": lambda: _rl(_arith(16, 0)),
        "rl_vlm": lambda: _rl(_colours(16, 1, images)),
        "sft_arith": lambda: _sft(_arith_levels(256)),
        "dpo_arith": lambda: _dpo(_arith_levels(256)[:128]),
        "rl_arith": lambda: _rl(_arith_levels(256)[:64]),
    }
    if name not in makers:
        raise KeyError(f"unknown built-in set {name!r}; known: {sorted(makers)}")
    return makers[name]()


BUILTIN_SETS = ("sft_text", "sft_vlm", "dpo_text", "dpo_vlm", "rl_text", "rl_vlm", "sft_arith", "dpo_arith",
                "rl_arith")


def write_builtin(name: str, out_dir: str) -> str:
    """Write the built-in set ``name`` to ``out_dir/<name>.jsonl`` (images under ``out_dir/images``); return the path.

    Deterministic: the same bytes every time, so the manifest hash is stable. An existing file is kept."""
    path = os.path.join(out_dir, f"{name}.jsonl")
    if os.path.exists(path):
        return path
    os.makedirs(out_dir, exist_ok=True)
    write_samples(path, _build(name, os.path.abspath(out_dir)))
    return path


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "fixtures"
    for n in BUILTIN_SETS:
        print(write_builtin(n, target))
