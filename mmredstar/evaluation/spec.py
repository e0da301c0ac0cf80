"""Benchmark specs: ``eval/<name>.yaml`` as a typed config, the data it reads, and the prompt it sends.

    .venv/bin/mmredstar eval list                 # every spec, with where its data comes from
    .venv/bin/mmredstar eval show aime24

    from mmredstar.evaluation.spec import load_spec, load_bench_samples, render_prompt
    spec = load_spec("aime24")                      # a bare name under eval/, or a path
    samples = load_bench_samples(spec)              # converted through the spec's data card
    prompt = render_prompt(samples[0], spec)        # the template applied, images kept in place

Every YAML key is a field of ``BenchSpec`` (documented once, below). Loading checks every key and type;
a problem is reported as ``file:line: key 'x': ...`` with a did-you-mean.

Where the data comes from: ``data`` (a path relative to the repository root, i.e. the folder holding
``eval/``, e.g. ``../shared/benchmarks/qwen2.5-math/aime24.jsonl``), or ``--data PATH`` / ``data=`` in
Python, which wins. Either may be the public release's own file (converted through ``card``) or a file
already in mmredstar's sample schema (e.g. written by ``mmredstar data convert``), which is read as is.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..assets import REPO_ROOT, AssetError, list_assets, resolve
from ..config import ConfigError, build_dataclass, read_yaml, to_plain, where
from ..data import load_card
from ..data.convert import ConvertReport
from ..data.inputs import InputSpec, iter_input
from ..data.where import parse_where
from ..io import iter_raw_records
from ..schema import Message, Part, Sample
from .metrics import parse_metric

TEMPLATE_KEY = "{question}"


@dataclass
class BenchSpec:
    """One benchmark: its data, prompt, verification, sampling and metrics."""

    description: str = ""
    """What the benchmark is (one line for people; shown by ``mmredstar eval list``)."""
    card: str | dict = ""
    """The data card that reads the source: a card name (``data_cards/<name>.md``, e.g. ``aime24``) or an
    inline card mapping (same keys as a card's front matter) for local files without a shipped card."""
    data: str | None = None
    """Default source path, relative to the repository root (or absolute); ``--data`` overrides it.
    ``None``: the user must pass ``--data``."""
    get_data: str = ""
    """How to obtain the data when it is missing (printed in the error)."""
    split: str | None = None
    """Split recorded on the samples (default: the card's)."""
    subset: str | None = None
    """A subset the card defines (e.g. ``geometry`` for MathVista, ``hard`` for MATH)."""
    where: list[str] = field(default_factory=list)
    """Extra row filters (``mmredstar.data.where`` syntax, e.g. ``'task="geometry problem solving"'``)."""
    options: dict = field(default_factory=dict)
    """Card adapter options (as ``mmredstar data convert --option``)."""
    image_dir: str | None = None
    """Directory image paths are resolved against (relative to the source's folder)."""
    expected: int | None = None
    """Number of items the full benchmark has (checked by tests on the real file; ``--limit`` runs fewer)."""
    prompt: str | dict = "{question}"
    """Prompt template with ``{question}`` (the sample's question text, choices included). A mapping picks a
    template per answer type: ``{default: ..., choice: ...}``."""
    system: str | None = None
    """System prompt added to samples that have none (``None``: the model's default)."""
    verifier: str = "auto"
    """``auto``: ``mmredstar.verify.verify_response`` picks the verifier by each sample's ``answer_type``
    (math, numeric, choice, code); the only scoring function there is."""
    verify: dict = field(default_factory=dict)
    """Options passed to ``verify_response`` (e.g. ``{think: any}``)."""
    n: int = 1
    """Samples per prompt (``--n`` overrides)."""
    max_new_tokens: int = 4096
    """Maximum new tokens per response."""
    temperature: float = 0.0
    """Sampling temperature (0 = greedy)."""
    top_p: float = 1.0
    """Nucleus sampling mass (used when ``temperature`` > 0)."""
    seed: int = 0
    """Sampling seed."""
    metrics: list[str] = field(default_factory=lambda: ["pass@1"])
    """Metrics to report: ``pass@1`` (mean over the n samples), ``pass@K`` (unbiased), ``maj@K``."""
    paper: str = ""
    """What the RedStar paper reports on this benchmark (for people)."""

    # runtime only (not YAML keys)
    name: str = field(default="", metadata={"runtime": True})
    path: str | None = field(default=None, metadata={"runtime": True})

    def to_dict(self) -> dict:
        return to_plain(self)

    def template_for(self, answer_type: str) -> str:
        """The prompt template for a sample of ``answer_type``."""
        if isinstance(self.prompt, str):
            return self.prompt
        return self.prompt.get(answer_type, self.prompt.get("default", TEMPLATE_KEY))

    def data_path(self, data: str | os.PathLike | None = None) -> str | None:
        """The source path: ``data`` when given, else the spec's default resolved against the repository root."""
        if data is not None:
            return os.fspath(data)
        if self.data is None:
            return None
        p = Path(os.path.expanduser(self.data))
        return str(p if p.is_absolute() else (REPO_ROOT / p))


class SpecError(ConfigError):
    """A benchmark spec is wrong; the message names the file, line and key."""


def _check(spec: BenchSpec, where) -> None:
    if not spec.card:
        raise SpecError(f"{where('card')}: key 'card': name the data card (e.g. 'card: aime24') or give one inline")
    try:
        card = load_card(spec.card)
    except (ValueError, TypeError) as e:
        raise SpecError(f"{where('card')}: key 'card': {e}") from None
    if spec.subset is not None:
        try:
            card.subset_filters(spec.subset)
        except ValueError as e:
            raise SpecError(f"{where('subset')}: key 'subset': {e}") from None

    for i, w in enumerate(spec.where):
        try:
            parse_where(w)
        except ValueError as e:
            raise SpecError(f"{where(f'where[{i}]')}: key 'where[{i}]': {e}") from None
    templates = [spec.prompt] if isinstance(spec.prompt, str) else list(spec.prompt.values())
    for t in templates:
        if not isinstance(t, str) or TEMPLATE_KEY not in t:
            raise SpecError(f"{where('prompt')}: key 'prompt': every template must be a string containing "
                            f"{TEMPLATE_KEY} (got {t!r})")
    if isinstance(spec.prompt, dict):
        from ..schema import ANSWER_TYPES

        bad = [k for k in spec.prompt if k not in (*ANSWER_TYPES, "default")]
        if bad:
            raise SpecError(f"{where('prompt')}: key 'prompt.{bad[0]}': not an answer type; use "
                            f"{list(ANSWER_TYPES) + ['default']}")
    if spec.verifier != "auto":
        raise SpecError(f"{where('verifier')}: key 'verifier': only 'auto' (the shared verifier, by each "
                        "sample's answer_type) is supported")
    for k in ("n", "max_new_tokens"):
        if getattr(spec, k) < 1:
            raise SpecError(f"{where(k)}: key '{k}': must be at least 1")
    if spec.temperature < 0 or not 0 < spec.top_p <= 1:
        raise SpecError(f"{where('temperature')}: key 'temperature'/'top_p': need temperature >= 0 and 0 < top_p <= 1")
    if not spec.metrics:
        raise SpecError(f"{where('metrics')}: key 'metrics': list at least one metric, e.g. [pass@1]")
    for i, m in enumerate(spec.metrics):
        try:
            parse_metric(m)
        except ValueError as e:
            raise SpecError(f"{where(f'metrics[{i}]')}: key 'metrics[{i}]': {e}") from None


def spec_from_dict(data: dict, *, name: str = "custom", file: str = "<spec>", lines: dict | None = None) -> BenchSpec:
    """Build and check a ``BenchSpec`` from plain data."""
    lines = lines or {}
    spec = build_dataclass(BenchSpec, dict(data), file=file, lines=lines, error=SpecError)
    spec.name, spec.path = name, (file if file != "<spec>" else None)
    _check(spec, lambda key: where(file, lines, key))
    return spec


def load_spec(name_or_path: str | os.PathLike | BenchSpec, overrides: dict | None = None) -> BenchSpec:
    """A checked ``BenchSpec`` from a bare name (``eval/<name>.yaml``) or a YAML path; ``overrides`` sets keys."""
    if isinstance(name_or_path, BenchSpec):
        if not overrides:
            return name_or_path
        return spec_from_dict({**name_or_path.to_dict(), **overrides}, name=name_or_path.name,
                              file=name_or_path.path or "<spec>")
    try:
        path = resolve("eval", name_or_path)
    except AssetError as e:
        raise SpecError(str(e)) from None
    data, file, lines = read_yaml(path, kind="eval", error=SpecError)
    if overrides:
        data = {**data, **overrides}
    return spec_from_dict(data, name=Path(path).stem, file=file, lines=lines)


def list_specs() -> list[str]:
    """Names of the shipped benchmark specs."""
    return list_assets("eval")


# ----------------------------------------------------------------------------------------- data
def is_sample_file(path: str) -> bool:
    """Does ``path`` hold records in mmredstar's sample schema (first record has ``prompt`` and ``answer_type``)?"""
    if not os.path.isfile(path) or not path.endswith((".jsonl", ".jsonl.gz", ".parquet")):
        return False

    try:
        for _, _, d, prob in iter_raw_records(path):
            return prob is None and isinstance(d, dict) and "prompt" in d and "answer_type" in d
    except Exception:
        return False
    return False


def load_bench_samples(spec: BenchSpec, data: str | os.PathLike | None = None, *, limit: int | None = None,
                       progress: bool = False) -> list[Sample]:
    """The benchmark's samples (in source order): the source converted through the spec's card (subset, where,
    options), or a sample file read as is. ``limit`` keeps the first N. Missing data raises a ``FileNotFoundError``
    that says where the spec looked and how to get the file."""
    src = spec.data_path(data)
    if src is None or not os.path.exists(src):
        how = f" {spec.get_data}" if spec.get_data else ""
        looked = f"no file at {src}" if src else "the spec names no default data"
        raise FileNotFoundError(f"benchmark '{spec.name}': {looked}; pass --data PATH (the source file in the "
                                f"format of card {_card_name(spec)!r}, or a converted sample file).{how}")
    if is_sample_file(src):   # a converted sample file: the spec's where and the card's subset still apply
        inp = InputSpec(path=src, card=spec.card, subset=spec.subset, where=list(spec.where or ()), limit=limit)
    else:
        inp = InputSpec(card=spec.card, src=src, split=spec.split, where=list(spec.where or ()), subset=spec.subset,
                        limit=limit, image_dir=spec.image_dir, options=dict(spec.options or {}))
    report = ConvertReport(card=_card_name(spec), src=src)
    out = list(iter_input(inp, report=report))
    if report.skipped:
        import warnings

        warnings.warn(f"benchmark '{spec.name}': {report.skipped} row(s) of {src} could not be converted and are "
                      f"not scored:\n{report.summary()}", stacklevel=2)
    return out


def _card_name(spec: BenchSpec) -> str:
    return spec.card if isinstance(spec.card, str) else str(spec.card.get("name", "inline"))


# ----------------------------------------------------------------------------------------- prompts
def render_prompt(sample: Sample, spec: BenchSpec) -> Sample:
    """A copy of ``sample`` whose last user turn is the spec's template applied to the question text.

    Image parts stay where they were; text before ``{question}`` goes before the first text part and text
    after it after the last one. Idempotent: a sample already rendered with this spec (``meta.prompt_template``)
    is returned unchanged, so data prepared with the template is not templated twice.

    >>> s = Sample.text("What is 1+1?", "2")
    >>> spec = BenchSpec(card="aime24", prompt="{question}\\nPut the answer in \\\\boxed{}.", name="demo")
    >>> r = render_prompt(s, spec)
    >>> r.question, r.id == s.id, render_prompt(r, spec).question == r.question
    ('What is 1+1?\\nPut the answer in \\\\boxed{}.', True, True)
    """
    if (sample.meta or {}).get("prompt_template") == spec.name:
        return sample
    template = spec.template_for(sample.answer_type)
    pre, _, post = template.partition(TEMPLATE_KEY)
    prompt = [Message(m.role, [Part(p.type, p.text, p.index) for p in m.content]) for m in sample.prompt]
    user = [i for i, m in enumerate(prompt) if m.role == "user"]
    if user:
        msg = prompt[user[-1]]
        texts = [j for j, p in enumerate(msg.content) if p.type == "text"]
        if not texts:
            msg.content.append(Part("text", text=""))
            texts = [len(msg.content) - 1]
        first, last = msg.content[texts[0]], msg.content[texts[-1]]
        first.text = pre + (first.text or "")
        last.text = (last.text or "") + post
    if spec.system and not any(m.role == "system" for m in prompt):
        prompt.insert(0, Message.make("system", spec.system))
    out = dataclasses.replace(sample, prompt=prompt, meta={**(sample.meta or {}), "prompt_template": spec.name},
                              responses=[])
    for a, b in zip(out.images, sample.images, strict=True):
        a.root = b.root
    return out


def describe(spec: BenchSpec) -> dict[str, Any]:
    """A few facts for ``mmredstar eval list``."""
    src = spec.data_path()
    return {"name": spec.name, "card": _card_name(spec), "data": spec.data or "(--data required)",
            "data_present": bool(src and os.path.exists(src)), "n": spec.n, "max_new_tokens": spec.max_new_tokens,
            "temperature": spec.temperature, "metrics": spec.metrics, "expected": spec.expected,
            "description": spec.description}
