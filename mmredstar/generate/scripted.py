"""The scripted teacher: long chain-of-thought written from the reference, with controllable failures.

For the demo and tests (no model needed). Teacher config (YAML ``teacher:``)::

    teacher: {kind: scripted, error_rate: 0.3, no_answer_rate: 0.1, think: true, pad_to_chars: 2000}

Each response is deterministic given (sampling seed, sample id, response index), so reruns, resumes
and any number of workers give the same text. What a response is:

- written from ``sample.meta["reference_cot"]`` when present (a reference chain of thought that states
  the value and ends with the final answer on its last line), else composed from the reference
  answer (and the choices' values for choice questions); code samples need a reference program
  (``meta.reference_solution`` / ``meta.solutions[0]`` / the sample's first response), else every
  response is a wrong program;
- *wrong* with probability ``error_rate`` (a number, or ``{"1-3": 0.1, "7-10": 0.6}`` by difficulty
  band): the stated value and the final answer are replaced plausibly (another choice's value and
  letter; a perturbed number);
- *without an answer* with probability ``no_answer_rate``: the final answer line is left out;
- optionally *repetitive* (``repeat_rate``) or *cut off* (``length_rate``, ``finish_reason: length``) so
  that rule filters have something to drop;
- wrapped as ``<think>...</think>`` + summary (``think``), padded with reflective filler to about
  ``pad_to_chars`` characters to look like long CoT.

``response.meta["scripted"]`` records what was intended (``correct``, ``wrong``, ``no_answer``,
``repetitive``, ``truncated``): tests compare it with the verifier's verdict.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ..levels import band, parse_schedule
from ..schema import Response, Sample
from . import SamplingParams, Teacher, gen_record, sample_seed

FILLER = [
    "Wait, let me re-read the question to make sure I have not missed a condition.",
    "Let me double-check the previous step before going on.",
    "Hmm, is there another way to see this? Let me think about the figure again.",
    "I should verify that the relation I used really holds here.",
    "Let me restate what is known and what is asked, to keep things clear.",
    "Alternatively, I could approach this from the other side and compare.",
    "That seems consistent so far; let me continue carefully.",
    "Let me slow down and check each quantity once more.",
]
HESITATION = "I am not fully confident in this, so I will stop here without committing to a final choice."


@dataclass
class ScriptedConfig:
    error_rate: float | dict = 0.2
    """Probability that a response is wrong: a number, or by difficulty band ``{"1-3": 0.1, "7-10": 0.6}``
    (prompts with unknown difficulty use ``default_error_rate``)."""
    default_error_rate: float = 0.2
    """Error rate for prompts whose difficulty falls in no band of ``error_rate``."""
    no_answer_rate: float = 0.05
    """Probability that a response gives no final answer in the required format."""
    repeat_rate: float = 0.0
    """Probability of a degenerate, repetitive response (for rule filters)."""
    length_rate: float = 0.0
    """Probability of a response cut off mid-way (``finish_reason: length``, no final answer)."""
    think: bool = True
    """Wrap the reasoning in ``<think>...</think>`` followed by the final line (QwQ-style)."""
    pad_to_chars: int = 0
    """Pad the reasoning with reflective filler sentences to about this many characters."""
    model: str = "scripted"
    """Name recorded as ``gen.model``."""


# ----------------------------------------------------------------------------------------- helpers
def _band_rate(rate: float | dict, difficulty: float | None, default: float) -> float:
    if not isinstance(rate, dict):
        return float(rate)
    if difficulty is None:
        return default
    b = band(difficulty)
    for lo, hi, v in parse_schedule(rate, value=float):
        if lo <= b <= hi:
            return v
    return default


_NUM = re.compile(r"-?\d+(?:\.\d+)?")


def perturb(answer: str, rng: random.Random) -> str:
    """A plausible wrong answer: a nearby number, a changed fraction, else a changed string.

    >>> import random
    >>> perturb("12", random.Random(0)) != "12", perturb("\\\\frac{3}{4}", random.Random(0)) != "\\\\frac{3}{4}"
    (True, True)
    """
    a = (answer or "").strip()
    m = _NUM.search(a)
    if m:
        x = m.group(0)
        if "." in x:
            new = f"{float(x) * rng.choice([0.5, 1.5, 2.0]) + rng.choice([0.5, 1.0]):g}"
        else:
            new = str(int(x) + rng.choice([-3, -2, -1, 1, 2, 3, int(x) or 5]))
        if new == x:
            new = str(int(float(x)) + 7)
        return a[:m.start()] + new + a[m.end():]
    return (a + "+1") if a else "1"


def _letter_idx(sample: Sample) -> int | None:
    if sample.answer_type != "choice" or not sample.choices or not sample.answer:
        return None
    i = ord(sample.answer.strip().upper()[0]) - ord("A")
    return i if 0 <= i < len(sample.choices) else None


def _replace_value(text: str, old: str, new: str) -> str:
    if not old:
        return text
    if _NUM.fullmatch(old.strip()):
        return re.sub(rf"(?<![\d.]){re.escape(old.strip())}(?![\d])", new, text)
    return text.replace(old, new)


def _replace_last_token(line: str, old: str, new: str) -> str:
    ms = list(re.finditer(rf"(?<![A-Za-z0-9]){re.escape(old)}(?![A-Za-z0-9])", line))
    if not ms:  # the line names no letter (it states the value, already replaced)
        return line
    m = ms[-1]
    return line[:m.start()] + new + line[m.end():]


def _pad(lines: list[str], target: int, rng: random.Random) -> list[str]:
    """Insert filler sentences at random places after the first line until about ``target`` characters."""
    if target <= 0 or not lines:
        return lines
    out = list(lines)
    total = sum(len(x) + 1 for x in out)
    while total < target:
        s = rng.choice(FILLER)
        out.insert(rng.randint(1, len(out)), s)
        total += len(s) + 1
    return out


# ----------------------------------------------------------------------------------------- writing
def _compose(sample: Sample, outcome: str, rng: random.Random) -> tuple[list[str], str]:
    """(reasoning lines, final line) for a sample without a reference CoT."""
    q = " ".join(sample.question.split())
    lines = [f"Let me work through this problem step by step. The question: {q[:400]}"]
    idx = _letter_idx(sample)
    if sample.answer_type == "choice" and idx is not None:
        letters = sample.choice_letters
        lines.append("The options are " + "; ".join(f"{L}: {c}" for L, c in zip(letters, sample.choices, strict=True)) + ".")
        if outcome == "wrong":
            j = rng.choice([k for k in range(len(letters)) if k != idx])
        else:
            j = idx
        value, letter = sample.choices[j], letters[j]
        lines += ["I will use the relations given in the figure and the statement.",
                  f"Carrying the computation through, the quantity asked for comes out as {value}.",
                  f"Checking against the options, {value} is option {letter}."]
        final = f"So the value is {value}, and the answer is \\boxed{{{letter}}}."
    elif sample.answer_type == "code":
        code = _reference_code(sample)
        if outcome == "wrong" or code is None:
            code = "import sys\nprint(0)"
        lines += ["I will read the input, compute the result and print it.",
                  "Let me think about edge cases: empty input and large values."]
        final = f"```python\n{code}\n```"
    else:
        ans = sample.answer or ""
        value = perturb(ans, rng) if outcome == "wrong" else ans
        lines += ["Let me set up the relations between the given quantities.",
                  "Solving them step by step and simplifying the result.",
                  f"This gives {value}."]
        final = f"The final answer is \\boxed{{{value}}}."
    return lines, final


def _reference_code(sample: Sample) -> str | None:
    m = sample.meta or {}
    for k in ("reference_solution", "reference_code"):
        if isinstance(m.get(k), str):
            return m[k]
    sols = m.get("solutions")
    if isinstance(sols, list) and sols and isinstance(sols[0], str):
        return sols[0]
    if sample.responses:  # a reference solution carried as the sample's response (data convert --option response=...)
        t = sample.responses[0].text
        blocks = re.findall(r"```(?:python|py)?\n(.*?)```", t, re.S)
        return blocks[-1].rstrip() if blocks else t
    return None


def _from_reference_cot(sample: Sample, cot: str, outcome: str, rng: random.Random) -> tuple[list[str], str]:
    lines = [x for x in cot.strip().splitlines() if x.strip()]
    body, final = lines[:-1], lines[-1] if lines else ""
    if outcome != "wrong":
        return body, final
    idx = _letter_idx(sample)
    if idx is not None:
        letters = sample.choice_letters
        j = rng.choice([k for k in range(len(letters)) if k != idx])
        old_v, new_v, old_a, new_a = sample.choices[idx], sample.choices[j], letters[idx], letters[j]
    else:
        old_v = old_a = (sample.answer or "").strip()
        new_v = new_a = perturb(old_v, rng)
    body = [_replace_value(x, old_v, new_v) for x in body]
    final = _replace_value(final, old_v, new_v)
    final = _replace_last_token(final, old_a, new_a) if old_a != old_v else final
    return body, final


def write_response(sample: Sample, index: int, seed: int, cfg: ScriptedConfig) -> tuple[str, str, str]:
    """(text, finish_reason, intended outcome) of response ``index`` for ``sample``; deterministic."""
    rng = random.Random(sample_seed(seed, sample.id, index))
    err = _band_rate(cfg.error_rate, sample.difficulty, cfg.default_error_rate)
    u = rng.random()
    cuts = [("no_answer", cfg.no_answer_rate), ("repetitive", cfg.repeat_rate), ("truncated", cfg.length_rate),
            ("wrong", err)]
    outcome, acc = "correct", 0.0
    for name, p in cuts:
        acc += max(0.0, float(p))
        if u < acc:
            outcome = name
            break
    if outcome == "correct" and sample.answer_type == "code" and _reference_code(sample) is None:
        outcome = "wrong"  # no reference program to write from: what it writes cannot pass the tests
    cot = (sample.meta or {}).get("reference_cot")
    base = "wrong" if outcome == "wrong" else "correct"
    if isinstance(cot, str) and cot.strip():
        body, final = _from_reference_cot(sample, cot, base, rng)
    else:
        body, final = _compose(sample, base, rng)
    body = _pad(body, cfg.pad_to_chars, rng)
    finish = "stop"
    if outcome == "no_answer":
        final = HESITATION
    elif outcome == "repetitive":
        unit = body[-1] if body else "Let me check again."
        body = body[:2] + [unit] * 40
        final = HESITATION
    elif outcome == "truncated":
        text = "\n".join(body)
        cut = max(1, int(len(text) * rng.uniform(0.3, 0.8)))
        return (("<think>\n" if cfg.think else "") + text[:cut]), "length", outcome
    reasoning = "\n".join(body)
    if cfg.think:
        text = f"<think>\n{reasoning}\n</think>\n\n{final}"
    else:
        text = f"{reasoning}\n{final}"
    return text, finish, outcome


class ScriptedTeacher(Teacher):
    kind = "scripted"
    Config = ScriptedConfig

    def generate(self, samples: list[Sample], n: list[int], params: SamplingParams) -> list[list[Response]]:
        out = []
        for s, k in zip(samples, n, strict=True):
            rs = []
            for j in range(k):
                text, finish, outcome = write_response(s, j, params.seed, self.config)
                gen = gen_record(self.kind, self.config.model, k, j, params, sample_seed(params.seed, s.id, j))
                rs.append(Response(text=text, finish_reason=finish, gen=gen, meta={"scripted": outcome}))
                self.count("responses")
            out.append(rs)
        self.count("requests", len(samples))
        return out
