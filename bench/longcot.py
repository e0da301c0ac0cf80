"""A generated long-CoT SFT set with a realistic length distribution, for the speed benchmarks.

Rows are OpenAI-style chat JSONL (the ``messages`` data card's format): a math question, and an
assistant turn with a long ``<think>`` block (computations, checks, "wait" back-tracking, LaTeX)
followed by a short boxed answer. Response lengths follow a log-normal law (median ~1,100 words,
sigma 0.7, clipped to 60..9,000 words), the shape of distilled long-CoT sets such as QwQ/DeepSeek-R1
traces: most responses a few thousand tokens, a long tail near the context limit. Deterministic per
seed. Text only, or with one generated image per row (``images=True``) for the VLM benchmarks.

    python -m bench.longcot OUT.jsonl [N] [--images]      # writes N rows (default 200)
"""

from __future__ import annotations

import json
import math
import os
import random
import sys

OPENERS = ["Let me think about this carefully.", "First, I need to understand what the problem asks.",
           "Okay, so we are given", "Let me restate the problem in my own words.", "Hmm, let me start by"]
STEPS = [
    "We have ${a} \\times {b} = {ab}$, so the product is {ab}.",
    "Adding the two parts gives ${a} + {b} = {apb}$.",
    "Wait, let me double-check that: ${a} + {b}$ is indeed {apb}, yes.",
    "So the difference is ${a} - {b} = {amb}$.",
    "Now consider the equation $x^2 - {apb}x + {ab} = 0$, whose roots are ${a}$ and ${b}$.",
    "By the Pythagorean theorem, $c^2 = {a}^2 + {b}^2 = {sq}$.",
    "Hmm, that does not look right. Let me recompute more carefully.",
    "Alternatively, we could approach this with modular arithmetic: ${ab} \\equiv {mod} \\pmod{{7}}$.",
    "Let me verify with a small case: if $n = {a}$, then $2^n = {pow}$.",
    "Therefore the ratio is $\\frac{{{a}}}{{{b}}}$, which simplifies no further.",
    "I think the key insight is that the sum telescopes: $\\sum_{{k=1}}^{{{a}}} k = {tri}$.",
    "But wait, we must not forget the boundary case where $x = 0$.",
    "So far: the area is ${ab}$ square units and the perimeter is ${per}$ units.",
    "Let me check the units and the constraints once more before moving on.",
]
QUESTIONS = ["Find the sum of all integers $n$ with $1 \\le n \\le {a}$ such that $n^2 + {b}$ is divisible by 7.",
             "A rectangle has sides {a} and {b}. What is the length of its diagonal squared?",
             "Solve for $x$: $x^2 - {apb}x + {ab} = 0$. Give the larger root.",
             "How many ways can {a} books be arranged on a shelf if {b} of them must stay together?"]


def _fill(t: str, rng: random.Random) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    return t.format(a=a, b=b, ab=a * b, apb=a + b, amb=a - b, sq=a * a + b * b, mod=(a * b) % 7,
                    pow=2 ** min(a, 30), tri=a * (a + 1) // 2, per=2 * (a + b))


def response_words(rng: random.Random, median: float = 1100, sigma: float = 0.7, lo: int = 60,
                   hi: int = 9000) -> int:
    """One response length in words: log-normal(median, sigma) clipped to [lo, hi].

    >>> response_words(random.Random(0)) > 0
    True
    """
    return int(min(hi, max(lo, math.exp(math.log(median) + sigma * rng.gauss(0, 1)))))


def make_row(i: int, rng: random.Random, *, words: int | None = None, image: str | None = None) -> dict:
    """One chat row: ``{"messages": [user, assistant], "answer", "answer_type"[, "images"]}``."""
    q = _fill(rng.choice(QUESTIONS), rng)
    target = words if words is not None else response_words(rng)
    parts, n = [rng.choice(OPENERS)], 0
    while n < target:
        s = _fill(rng.choice(STEPS), rng)
        parts.append(s)
        n += len(s.split())
        if rng.random() < 0.12:
            parts.append("\n\n")
    ans = rng.randint(1, 9999)
    think = " ".join(parts).replace(" \n\n ", "\n\n")
    row = {"id": f"longcot-{i}",
           "messages": [{"role": "user", "content": ("<image>\n" if image else "") + q},
                        {"role": "assistant", "content": f"<think>\n{think}\n</think>\n\nThe answer is $\\boxed{{{ans}}}$."}],
           "answer": str(ans), "answer_type": "math"}
    if image:
        row["images"] = [image]
    return row


def _image(path: str, rng: random.Random, size: int) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.randint(0, size - 20), rng.randint(0, size - 20)
        d.rectangle((x0, y0, x0 + rng.randint(10, size // 3), y0 + rng.randint(10, size // 3)),
                    outline=(rng.randint(0, 200), rng.randint(0, 200), rng.randint(0, 200)), width=3)
    img.save(path, format="PNG")


def write_longcot(path: str, n: int, *, seed: int = 0, images: bool = False, image_size: int = 448,
                  words: int | None = None) -> str:
    """Write ``n`` rows to ``path`` (images beside it under ``<stem>_images/``); returns ``path``.

    ``words`` fixes every response's length (the longest-sequence probes); default: the log-normal law.
    An existing file with the same parameters is kept (its first line records them)."""
    params = {"n": n, "seed": seed, "images": images, "image_size": image_size, "words": words}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            first = f.readline()
        try:
            if json.loads(first).get("_params") == params:
                return path
        except ValueError:
            pass
    rng = random.Random(seed)
    img_dir = os.path.splitext(path)[0] + "_images"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(n):
            img = None
            if images:
                os.makedirs(img_dir, exist_ok=True)
                img = os.path.join(os.path.basename(img_dir), f"{i:05d}.png")
                _image(os.path.join(os.path.dirname(os.path.abspath(path)), img), rng, image_size)
            row = make_row(i, rng, words=words, image=img)
            if i == 0:
                row["_params"] = params
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def to_samples(path: str, limit: int | None = None):
    """The rows of ``path`` converted through the ``messages`` data card: a list of ``Sample``."""
    from mmredstar.data.convert import iter_card

    return list(iter_card("messages", path, limit=limit))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(write_longcot(args[0], int(args[1]) if len(args) > 1 else 200, images="--images" in sys.argv))
