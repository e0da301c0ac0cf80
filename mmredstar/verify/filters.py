"""Rule filters for teacher responses: each returns (keep, reason).

``FILTERS`` maps a name to ``f(response: Response, sample: Sample, **params) -> (keep, reason)``;
``run_filters(response, sample, spec)`` applies a YAML list such as::

    filters:
      - truncation: {}
      - think_format: {required: true}
      - repetition: {ngram_size: 10, max_ratio: 0.5}
      - degenerate_ending: {min_repeats: 3}
      - language: {target: en, max_share: 0.05}
      - answer_format: {require: boxed}
      - code_complete: {}
      - length: {max_chars: 60000}

and stops at the first filter that drops the response; its reason reads ``"name: why"``. A name
with a colon (``"my_pkg.filters:no_apologies"``) imports a user's filter.

    python -c "from mmredstar.verify.filters import repetition_penalty; print(repetition_penalty('a a a a', 2))"

>>> repetition_penalty("this this this this this", ngram_size=2, max_penalty=-1.0)
-0.75
>>> script_share("The answer is 5. 答案是五", target="en") > 0.3
True
"""

from __future__ import annotations

import ast
import re

from ..schema import Response, Sample
from .choice import extract_choice
from .code import extract_code
from .extract import extract_answer, extract_text_answer, find_boxes, math_spans, strip_think


# ----------------------------------------------------------------------------------------- measures
def repetition_penalty(text: str, ngram_size: int, max_penalty: float = -1.0) -> float:
    """open-r1's n-gram repetition penalty: ``(1 - unique/total) * max_penalty`` over the n-grams of
    lower-cased whitespace tokens; 0 when there are fewer tokens than ``ngram_size``."""
    words = text.lower().split()
    if len(words) < ngram_size or not words:
        return 0.0
    grams = list(zip(*[words[i:] for i in range(ngram_size)], strict=False))
    if not grams:
        return 0.0
    return (1 - len(set(grams)) / len(grams)) * max_penalty


def repeated_ratio(text: str, ngram_size: int) -> float:
    """Share of repeated n-grams: ``1 - unique/total`` (0 = no repetition, near 1 = a loop)."""
    return -repetition_penalty(text, ngram_size, -1.0) + 0.0


def repeated_tail(text: str, max_unit: int = 400, window: int = 6000) -> tuple[int, int]:
    """(unit length, repeats) of the longest-covering block that repeats back-to-back at the very end.

    >>> repeated_tail("answer: ha ha ha ha ha ")       # " ha" five times
    (3, 5)
    """
    t = text[-window:].rstrip()
    best = (0, 0)
    best_cover = 0
    n = len(t)
    for unit in range(1, min(max_unit, n // 2) + 1):
        reps = 1
        while n - (reps + 1) * unit >= 0 and t[n - (reps + 1) * unit:n - reps * unit] == t[n - unit:]:
            reps += 1
        if reps >= 2 and reps * unit > best_cover:
            best, best_cover = (unit, reps), reps * unit
    return best


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_OTHER_SCRIPTS = re.compile(r"[\u0400-\u04ff\u0590-\u05ff\u0600-\u06ff\u0900-\u097f\u0e00-\u0e7f]")
_LATIN_WORD = re.compile(r"(?<![A-Za-z\\])[A-Za-z]{2,}")


def _prose(text: str) -> str:
    """Text without code blocks, math spans and LaTeX commands (what a language check should read)."""
    t = re.sub(r"```.*?(```|\Z)", " ", text, flags=re.S)
    spans = math_spans(t)
    for s, e, _, _ in reversed(spans):
        t = t[:s] + " " + t[e:]
    return re.sub(r"\\[a-zA-Z]+", " ", t)


def script_share(text: str, target: str = "en") -> float:
    """Share of the prose written in another language than ``target`` ("en" or "zh"), by script.

    Units: one CJK character, one Latin word, one character of another script. Deterministic (no
    model): Latin words count as English, CJK characters as Chinese/Japanese/Korean.
    """
    prose = _prose(text)
    cjk = len(_CJK.findall(prose))
    latin = len(_LATIN_WORD.findall(prose))
    other = len(_OTHER_SCRIPTS.findall(prose))
    total = cjk + latin + other
    if total == 0:
        return 0.0
    if target == "en":
        return (cjk + other) / total
    if target == "zh":
        return (latin + other) / total
    raise ValueError(f"unknown target language {target!r}: use 'en' or 'zh'")


# ----------------------------------------------------------------------------------------- filters
def truncation(response: Response, sample: Sample, **_) -> tuple[bool, str | None]:
    """Drop responses cut off by the length limit (``finish_reason == "length"``)."""
    if response.finish_reason == "length":
        return False, "truncated (finish_reason=length)"
    return True, None


def think_format(response: Response, sample: Sample, required: bool = True, **_) -> tuple[bool, str | None]:
    """``<think>...</think>`` well-formed (one block, opened first, non-empty) with an answer after it."""
    t = response.text
    opens, closes = t.count("<think>"), t.count("</think>")
    if opens == 0 and closes == 0:
        return (False, "no <think> block") if required else (True, None)
    if opens > 1 or closes > 1:
        return False, f"{opens} <think> and {closes} </think> tags (expected one block)"
    if closes == 0:
        return False, "<think> is never closed"
    if opens == 1 and t.index("<think>") > t.index("</think>"):
        return False, "</think> before <think>"
    if opens == 1 and t[:t.index("<think>")].strip():
        return False, "text before <think>"
    inner = t.split("</think>", 1)[0].replace("<think>", "")
    if not inner.strip():
        return False, "empty thinking"
    if not t.split("</think>", 1)[1].strip():
        return False, "nothing after </think>"
    return True, None


def repetition(response: Response, sample: Sample, ngram_size: int = 10, max_ratio: float = 0.5,
               **_) -> tuple[bool, str | None]:
    """Drop responses whose share of repeated n-grams exceeds ``max_ratio`` (see ``repeated_ratio``)."""
    r = repeated_ratio(response.text, ngram_size)
    if r > max_ratio:
        return False, f"{r:.2f} of {ngram_size}-grams repeated (max {max_ratio})"
    return True, None


def degenerate_ending(response: Response, sample: Sample, min_repeats: int = 3, min_chars: int = 30,
                      max_unit: int = 400, **_) -> tuple[bool, str | None]:
    """Drop responses that end in a loop: a block repeated ``min_repeats``+ times back-to-back at the
    end, covering at least ``min_chars`` characters."""
    unit, reps = repeated_tail(response.text, max_unit=max_unit)
    if reps >= min_repeats and unit * reps >= min_chars:
        return False, f"ends with a {unit}-character block repeated {reps} times"
    return True, None


def language(response: Response, sample: Sample, target: str = "en", max_share: float = 0.05,
             **_) -> tuple[bool, str | None]:
    """Drop responses with more than ``max_share`` of their prose in another language than ``target``."""
    share = script_share(response.text, target)
    if share > max_share:
        return False, f"{share:.1%} of the prose is not {target} (max {max_share:.0%})"
    return True, None


def answer_format(response: Response, sample: Sample, require: str = "any", think: str = "after",
                  **_) -> tuple[bool, str | None]:
    """Drop responses without an answer in the format their answer_type needs.

    ``require``: "any" (the verifier can read an answer) or "boxed" (math: a ``\\boxed{}`` after the
    thinking)."""
    at = sample.answer_type
    text = response.text
    if at == "code":
        ok = extract_code(text, think=think) is not None
        return (True, None) if ok else (False, "no complete code block")
    if require == "boxed" and at in ("math", "numeric", "choice"):
        if not find_boxes(strip_think(text, think)):
            return False, "no \\boxed{} answer"
        return True, None
    if at == "choice":
        ok = extract_choice(text, sample.choices, think=think) is not None
    elif at == "text":
        ok = extract_text_answer(text, think) is not None
    else:
        ok = extract_answer(text, think=think) is not None
    return (True, None) if ok else (False, f"no {at} answer found")


def code_complete(response: Response, sample: Sample, language: str = "python", think: str = "after",
                  **_) -> tuple[bool, str | None]:
    """Drop incomplete or unparseable code: unbalanced ``` fences, a last block that does not parse."""
    body = strip_think(response.text, think)
    fences = re.findall(r"^\s*```", body, flags=re.M)
    if sample.answer_type != "code" and not fences:
        return True, None
    if len(fences) % 2:
        return False, "unbalanced ``` fences (incomplete code block)"
    blocks = re.findall(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", body, flags=re.S)
    if not blocks:
        return False, "no code block"
    lang, code = blocks[-1]
    if language == "python" and lang.lower() in ("", "python", "py", "python3"):
        try:
            ast.parse(code)
        except SyntaxError as e:
            return False, f"code does not parse: {e.msg} (line {e.lineno})"
    return True, None


def length(response: Response, sample: Sample, min_chars: int | None = None, max_chars: int | None = None,
           min_tokens: int | None = None, max_tokens: int | None = None, **_) -> tuple[bool, str | None]:
    """Length bounds in characters or tokens (``completion_tokens`` when recorded, else words)."""
    n = len(response.text)
    if min_chars is not None and n < min_chars:
        return False, f"{n} characters < {min_chars}"
    if max_chars is not None and n > max_chars:
        return False, f"{n} characters > {max_chars}"
    if min_tokens is not None or max_tokens is not None:
        toks = response.completion_tokens if response.completion_tokens is not None else len(response.text.split())
        if min_tokens is not None and toks < min_tokens:
            return False, f"{toks} tokens < {min_tokens}"
        if max_tokens is not None and toks > max_tokens:
            return False, f"{toks} tokens > {max_tokens}"
    return True, None


FILTERS = {
    "truncation": truncation,
    "think_format": think_format,
    "repetition": repetition,
    "degenerate_ending": degenerate_ending,
    "language": language,
    "answer_format": answer_format,
    "code_complete": code_complete,
    "length": length,
}
"""name -> ``f(response, sample, **params) -> (keep, reason)``."""


def resolve_filter(name: str):
    """A filter from ``FILTERS`` or a ``"package.module:function"`` path."""
    from mmredstar.registry import lookup

    return lookup(name, FILTERS, "filter")


def parse_spec(spec) -> list[tuple[str, dict]]:
    """Normalise a filter spec: a list of names or ``{name: params}`` (or one mapping of them)."""
    if spec is None:
        return []
    if isinstance(spec, dict):
        spec = [{k: v} for k, v in spec.items()]
    out = []
    for i, item in enumerate(spec):
        if isinstance(item, str):
            out.append((item, {}))
        elif isinstance(item, dict) and len(item) == 1:
            (name, params), = item.items()
            if params is not None and not isinstance(params, dict):
                raise ValueError(f"filters[{i}].{name}: parameters must be a mapping, got {params!r}")
            out.append((name, dict(params or {})))
        else:
            raise ValueError(f"filters[{i}]: expected a filter name or {{name: params}}, got {item!r}")
    for name, _ in out:
        resolve_filter(name)
    return out


def run_filters(response: Response, sample: Sample, spec) -> tuple[bool, str | None]:
    """Apply the filters of ``spec`` in order; (False, "name: reason") at the first drop, else (True, None)."""
    for name, params in parse_spec(spec):
        keep, reason = resolve_filter(name)(response, sample, **params)
        if not keep:
            return False, f"{name}: {reason}"
    return True, None
