"""The one record family that flows through every stage: Sample, Response, Pair.

A ``Sample`` is a prompt (chat messages whose content interleaves text and image parts), its
images, a reference answer and the ``answer_type`` that picks the verifier. Teacher outputs are
``Response`` records attached to the sample; a DPO preference pair is a ``Pair``: the sample's
prompt fields plus ``chosen`` and ``rejected`` responses.

JSON form of a sample (one JSONL line)::

    {"id": "3f2a...", "source": "geoqa", "split": "train",
     "prompt": [{"role": "user", "content": [{"type": "image", "index": 0},
                                              {"type": "text", "text": "Find angle ABC."}]}],
     "images": [{"path": "images/12.png"}],            # relative to the dataset root
     "answer": "B", "answer_type": "choice", "choices": ["30°", "40°", "50°", "60°"],
     "tests": null, "difficulty": 4.0, "meta": {...}, "provenance": {...}, "responses": []}

Validation never stops at the first problem: ``validate_record`` returns every ``Problem``
(file, line, field, message, what to do); ``Sample.from_dict`` raises ``DataError`` with all of them.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import io
import json
import os
import re
import typing
from dataclasses import dataclass, field
from typing import Any

ANSWER_TYPES = ("math", "numeric", "choice", "code", "text")
"""``math``: LaTeX/symbolic answer checked for equivalence; ``numeric``: a number with tolerance;
``choice``: a letter among ``choices``; ``code``: a program run against ``tests``; ``text``: exact
string match after normalisation (short-answer sets)."""

ROLES = ("system", "user", "assistant")
VERDICTS = ("correct", "wrong", "no_answer", "error")
FINISH_REASONS = ("stop", "length", "error", None)


# ----------------------------------------------------------------------------------------- errors
@dataclass
class Problem:
    """One thing wrong with one record, located precisely."""

    file: str | None
    line: int | None
    field: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        loc = self.file or "<record>"
        if self.line is not None:
            loc += f":{self.line}"
        s = f"{loc}: field '{self.field}': {self.message}"
        return s + (f" ({self.hint})" if self.hint else "")


class DataError(ValueError):
    """Raised for invalid data; ``problems`` lists everything found, each with file/line/field."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(None, None, "-", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        head = str(self.problems[0]) if self.problems else "invalid data"
        more = f" (+{len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
        super().__init__(head + more)


# ----------------------------------------------------------------------------------------- images
@dataclass
class ImageRef:
    """An image: a path relative to a dataset root, or embedded bytes (or both).

    ``root`` is runtime-only (not serialised): the directory relative paths are resolved against.
    Readers set it to the directory of the file they read; writers rewrite ``path`` so that it
    still points to the same file from the output's directory.
    """

    path: str | None = None
    bytes: bytes | None = None
    root: str | None = field(default=None, compare=False, repr=False)

    def resolved_path(self) -> str | None:
        if self.path is None:
            return None
        if os.path.isabs(self.path) or self.root is None:
            return self.path
        return os.path.join(self.root, self.path)

    def read_bytes(self) -> bytes:
        if self.bytes is not None:
            return self.bytes
        p = self.resolved_path()
        if p is None:
            raise DataError("image has neither 'path' nor 'bytes'")
        with open(p, "rb") as f:
            return f.read()

    def load(self):
        """Open as an RGB ``PIL.Image``."""
        from PIL import Image

        if self.bytes is not None:
            img = Image.open(io.BytesIO(self.bytes))
        else:
            p = self.resolved_path()
            if p is None:
                raise DataError("image has neither 'path' nor 'bytes'")
            img = Image.open(p)
        img.load()
        return img.convert("RGB")

    def digest(self) -> str:
        """Content key for ids: the bytes' hash when embedded, else the relative path."""
        if self.bytes is not None:
            return "sha256:" + hashlib.sha256(self.bytes).hexdigest()
        return "path:" + (self.path or "")

    def to_dict(self, out_dir: str | None = None) -> dict:
        d: dict[str, Any] = {}
        if self.path is not None:
            path = self.path
            if out_dir is not None and self.root is not None and not os.path.isabs(path):
                full = os.path.join(self.root, path)
                path = os.path.relpath(full, out_dir)
            d["path"] = path
        if self.bytes is not None:
            d["bytes"] = base64.b64encode(self.bytes).decode("ascii")
        return d

    @classmethod
    def from_image(cls, image, format: str = "PNG") -> ImageRef:
        """Embed a ``PIL.Image``."""
        buf = io.BytesIO()
        image.save(buf, format=format)
        return cls(bytes=buf.getvalue())


# ----------------------------------------------------------------------------------------- messages
@dataclass
class Part:
    """One piece of message content: ``{"type": "text", "text": ...}`` or ``{"type": "image", "index": i}``."""

    type: str
    text: str | None = None
    index: int | None = None

    def to_dict(self) -> dict:
        if self.type == "text":
            return {"type": "text", "text": self.text}
        return {"type": "image", "index": self.index}


@dataclass
class Message:
    role: str
    content: list[Part]

    @classmethod
    def make(cls, role: str, *content: str | int | Part) -> Message:
        """``Message.make("user", 0, "What is x?")``: ints are image indices, strings are text."""
        parts = []
        for c in content:
            if isinstance(c, Part):
                parts.append(c)
            elif isinstance(c, int):
                parts.append(Part("image", index=c))
            else:
                parts.append(Part("text", text=str(c)))
        return cls(role, parts)

    @property
    def text(self) -> str:
        """The text parts joined (image parts dropped)."""
        return "".join(p.text or "" for p in self.content if p.type == "text")

    def image_indices(self) -> list[int]:
        return [p.index for p in self.content if p.type == "image"]  # type: ignore[misc]

    def to_dict(self) -> dict:
        return {"role": self.role, "content": [p.to_dict() for p in self.content]}


# ----------------------------------------------------------------------------------------- code tests
@dataclass
class CodeTests:
    """TACO/APPS-style tests. Standard-input tests: ``fn_name`` is None and each input/output is the
    full stdin/stdout text. Call-based tests: ``fn_name`` names the function (or ``Solution`` method)
    and each input is the list of positional arguments, each output the expected return value."""

    inputs: list[Any]
    outputs: list[Any]
    fn_name: str | None = None
    starter_code: str | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"inputs": self.inputs, "outputs": self.outputs}
        if self.fn_name is not None:
            d["fn_name"] = self.fn_name
        if self.starter_code:
            d["starter_code"] = self.starter_code
        return d

    def __len__(self) -> int:
        return len(self.inputs)


# ----------------------------------------------------------------------------------------- responses
@dataclass
class Response:
    """One model output for a sample, with how it was made and how it was judged.

    ``gen`` holds the generation parameters (teacher, n, temperature, top_p, max_tokens, seed).
    ``verdict`` is correct / wrong / no_answer / error; ``reward`` the rule reward (1 / 0 / -1);
    ``extracted`` the answer the verifier read; ``reason`` why it was judged or dropped so.
    """

    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    gen: dict = field(default_factory=dict)
    verdict: str | None = None
    reward: float | None = None
    extracted: str | None = None
    reason: str | None = None
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"text": self.text}
        for k in ("finish_reason", "prompt_tokens", "completion_tokens", "verdict", "reward", "extracted", "reason"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.gen:
            d["gen"] = self.gen
        if self.meta:
            d["meta"] = self.meta
        return d

    @property
    def key(self) -> str:
        """Content hash of the text (dedupe key)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


@dataclass
class Verdict:
    """What a verifier says of one response: ``verdict`` (correct / wrong / no_answer / error), the rule
    ``reward`` (1 / 0 / -1; error scores -1), the ``extracted`` answer and the ``reason``."""

    verdict: str
    reward: float
    extracted: str | None = None
    reason: str | None = None

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"

    def apply(self, r: Response) -> Response:
        """Record this verdict on a response (in place) and return it."""
        r.verdict, r.reward, r.extracted, r.reason = self.verdict, self.reward, self.extracted, self.reason
        return r


# ----------------------------------------------------------------------------------------- samples
@dataclass
class Sample:
    """One prompt with its reference; the unit of every stage. See the module docstring."""

    prompt: list[Message]
    answer_type: str
    answer: str | None = None
    images: list[ImageRef] = field(default_factory=list)
    choices: list[str] | None = None
    tests: CodeTests | None = None
    source: str = "custom"
    split: str | None = None
    difficulty: float | None = None
    meta: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    responses: list[Response] = field(default_factory=list)
    id: str = ""

    def __post_init__(self):
        if not self.id:
            self.id = self.content_id()

    # -- identity ---------------------------------------------------------------------------------
    def content_id(self) -> str:
        """A stable id derived from the content: source, prompt, images, answer, choices, tests.

        Unchanged by responses, difficulty, split, metadata or where the file lives."""
        key = {
            "source": self.source,
            "prompt": [m.to_dict() for m in self.prompt],
            "images": [im.digest() for im in self.images],
            "answer": self.answer,
            "answer_type": self.answer_type,
            "choices": self.choices,
            "tests": self.tests.to_dict() if self.tests else None,
        }
        blob = json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    # -- conveniences -----------------------------------------------------------------------------
    @classmethod
    def text(cls, question: str, answer: str | None, answer_type: str = "math", *, system: str | None = None,
             **kw) -> Sample:
        """A one-turn text sample."""
        prompt = ([Message.make("system", system)] if system else []) + [Message.make("user", question)]
        return cls(prompt=prompt, answer=answer, answer_type=answer_type, **kw)

    @classmethod
    def with_images(cls, question: str, images: list[ImageRef], answer: str | None, answer_type: str = "math",
                    **kw) -> Sample:
        """A one-turn sample with all images before the question (the InternVL convention)."""
        prompt = [Message.make("user", *range(len(images)), question)]
        return cls(prompt=prompt, images=list(images), answer=answer, answer_type=answer_type, **kw)

    @property
    def question(self) -> str:
        """The text of the last user message."""
        for m in reversed(self.prompt):
            if m.role == "user":
                return m.text
        return ""

    @property
    def choice_letters(self) -> list[str]:
        return [chr(ord("A") + i) for i in range(len(self.choices or []))]

    def without_responses(self) -> Sample:
        d = self.to_dict()
        d["responses"] = []
        s = Sample.from_dict(d)
        for a, b in zip(s.images, self.images, strict=False):
            a.root = b.root
        return s

    # -- serialisation ----------------------------------------------------------------------------
    def to_dict(self, out_dir: str | None = None) -> dict:
        d: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "split": self.split,
            "prompt": [m.to_dict() for m in self.prompt],
            "images": [im.to_dict(out_dir) for im in self.images],
            "answer": self.answer,
            "answer_type": self.answer_type,
            "choices": self.choices,
            "tests": self.tests.to_dict() if self.tests else None,
            "difficulty": self.difficulty,
            "meta": self.meta,
            "provenance": self.provenance,
            "responses": [r.to_dict() for r in self.responses],
        }
        return d

    @classmethod
    def from_dict(cls, d: dict, *, file: str | None = None, line: int | None = None,
                  root: str | None = None) -> Sample:
        problems = validate_record(d, file=file, line=line)
        if problems:
            raise DataError(problems)
        return _build(cls, d, root)


@dataclass
class Pair(Sample):
    """A preference pair: the prompt fields of a sample plus a chosen and a rejected response.

    Both responses answer the same prompt with the same images."""

    chosen: Response | None = None
    rejected: Response | None = None

    def __post_init__(self):
        if not self.id:
            base = self.content_id()
            c = self.chosen.key if self.chosen else ""
            r = self.rejected.key if self.rejected else ""
            self.id = hashlib.sha256(f"{base}|{c}|{r}".encode()).hexdigest()[:16]

    @property
    def prompt_id(self) -> str:
        return self.content_id()

    def to_dict(self, out_dir: str | None = None) -> dict:
        d = super().to_dict(out_dir)
        d["chosen"] = self.chosen.to_dict() if self.chosen else None
        d["rejected"] = self.rejected.to_dict() if self.rejected else None
        return d

    @classmethod
    def from_sample(cls, sample: Sample, chosen: Response, rejected: Response, **meta) -> Pair:
        d = sample.to_dict()
        d.pop("id")
        d["responses"] = []
        d["chosen"] = chosen.to_dict()
        d["rejected"] = rejected.to_dict()
        if meta:
            d["meta"] = {**d["meta"], **meta}
        p = _build(cls, d, None)
        for a, b in zip(p.images, sample.images, strict=False):
            a.root = b.root
        return p


def record_from_dict(d: dict, *, file: str | None = None, line: int | None = None,
                     root: str | None = None) -> Sample:
    """Build a ``Pair`` when the record has ``chosen``/``rejected``, else a ``Sample``."""
    cls = Pair if isinstance(d, dict) and ("chosen" in d or "rejected" in d) else Sample
    return cls.from_dict(d, file=file, line=line, root=root)


# ----------------------------------------------------------------------------------------- validation
def _keys(cls) -> frozenset[str]:
    """The JSON keys of a record dataclass: its fields, less those that are not serialised (``compare=False``,
    e.g. ``ImageRef.root``). A new field is one edit: the dataclass."""
    return frozenset(f.name for f in dataclasses.fields(cls) if f.compare)


@functools.cache
def _typed(cls, tp: type) -> tuple[str, ...]:
    """The fields of ``cls`` annotated ``tp`` or ``tp | None`` (in field order).

    >>> _typed(Response, int), _typed(Response, dict)
    (('prompt_tokens', 'completion_tokens'), ('gen', 'meta'))
    """
    hints = typing.get_type_hints(cls)
    return tuple(f.name for f in dataclasses.fields(cls) if f.compare
                 and (hints[f.name] is tp or set(typing.get_args(hints[f.name])) == {tp, type(None)}))


_SAMPLE_KEYS = _keys(Pair)            # a Sample's fields plus chosen / rejected
_RESPONSE_KEYS = _keys(Response)
_IMAGE_KEYS = _keys(ImageRef)
_TESTS_KEYS = _keys(CodeTests)


def _type_name(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number", bool: "boolean",
            type(None): "null"}.get(type(v), type(v).__name__)


def foreign_layout(d: Any) -> tuple[str, str] | None:
    """(data card, what it is) when a row is in another tool's layout rather than our schema (ours always
    has ``answer_type``): TRL, ShareGPT, LLaMA-Factory or ms-swift. ``None`` otherwise."""
    if not isinstance(d, dict) or "answer_type" in d:
        return None
    if "messages" in d:
        if "rejected_response" in d:
            return "swift", "an ms-swift DPO row (messages + rejected_response)"
        return "trl", "a chat row in TRL's conversational layout (messages)"
    if "conversations" in d:
        return "sharegpt", "a ShareGPT row (conversations)"
    if "instruction" in d:
        return "llamafactory", "a LLaMA-Factory alpaca row (instruction / input / output)"
    if "query" in d and "response" in d:
        return "swift", "an ms-swift row (query / response)"
    if "chosen" in d and "rejected" in d and not isinstance(d.get("chosen"), dict):
        return "trl", "a preference row in TRL's layout (prompt / chosen / rejected)"
    if "prompt" in d and ("completion" in d or isinstance(d["prompt"], str)):
        return "trl", "a row in TRL's prompt-completion layout"
    return None


def convert_command(card: str, src: str | None) -> str:
    """The ``mmredstar data convert`` command that turns ``src`` (another tool's layout) into samples."""
    src = src or "FILE"
    if src.startswith("hf:"):  # a hub id: the samples go under data/, named after it
        return f"mmredstar data convert --card {card} --src {src} --out data/{re.sub(r'[^A-Za-z0-9_.-]+', '_', src[3:]).strip('_')}.jsonl"
    stem = src[:-len(".gz")] if src.endswith(".gz") else src
    for suf in (".jsonl", ".json", ".parquet"):
        if stem.endswith(suf):
            stem = stem[: -len(suf)]
            break
    return f"mmredstar data convert --card {card} --src {src} --out {stem.rstrip('/')}.samples.jsonl"


def validate_record(d: Any, *, file: str | None = None, line: int | None = None,
                    root: str | None = None, check_images: bool = False) -> list[Problem]:
    """Every problem with one JSON record; empty list when it is a valid Sample or Pair.

    With ``check_images`` image paths are opened (relative to ``root``) and must decode. A row in another
    tool's layout (``foreign_layout``) gives one problem whose hint is the command that converts the file."""
    P: list[Problem] = []

    def bad(fld: str, msg: str, hint: str = ""):
        P.append(Problem(file, line, fld, msg, hint))

    if not isinstance(d, dict):
        bad("-", f"expected a JSON object, got {_type_name(d)}", "each line must be one sample object")
        return P
    foreign = foreign_layout(d)
    if foreign is not None:
        card, what = foreign
        fld = next(k for k in ("messages", "conversations", "instruction", "query", "chosen", "prompt") if k in d)
        bad(fld, f"{what}, not an mmredstar sample record", f"convert the file first: {convert_command(card, file)}")
        return P
    unknown = sorted(set(d) - _SAMPLE_KEYS)
    if unknown:
        bad(unknown[0], f"unknown field(s) {unknown}", f"allowed fields: {sorted(_SAMPLE_KEYS)}; put extra data in 'meta'")

    def opt(fld, types, tname):
        if fld in d and d[fld] is not None and not isinstance(d[fld], types):
            bad(fld, f"expected {tname}, got {_type_name(d[fld])}")
            return False
        return True

    # answer_type
    at = d.get("answer_type")
    if at is None:
        bad("answer_type", "missing", f"set one of {list(ANSWER_TYPES)}")
    elif not isinstance(at, str) or at not in ANSWER_TYPES:
        bad("answer_type", f"unknown value {at!r}", f"use one of {list(ANSWER_TYPES)}")
    for fld in _typed(Sample, str):
        if fld not in ("answer", "answer_type"):          # checked above / below with their own hints
            opt(fld, str, "string")
    if "answer" in d and d["answer"] is not None and not isinstance(d["answer"], str):
        if isinstance(d["answer"], (int, float)) and not isinstance(d["answer"], bool):
            bad("answer", f"expected string, got {_type_name(d['answer'])} {d['answer']!r}",
                f'write it as a string: "{d["answer"]}"')
        else:
            bad("answer", f"expected string, got {_type_name(d['answer'])}")
    if "difficulty" in d and d["difficulty"] is not None and (
            isinstance(d["difficulty"], bool) or not isinstance(d["difficulty"], (int, float))):
        bad("difficulty", f"expected number, got {_type_name(d['difficulty'])}", "a number on the 1-10 scale")
    for fld in _typed(Sample, dict):
        opt(fld, dict, "object")

    # images
    images = d.get("images") or []
    n_images = 0
    if not isinstance(images, list):
        bad("images", f"expected array, got {_type_name(images)}")
    else:
        n_images = len(images)
        for i, im in enumerate(images):
            f = f"images[{i}]"
            if not isinstance(im, dict):
                bad(f, f"expected object with 'path' or 'bytes', got {_type_name(im)}")
                continue
            extra = set(im) - _IMAGE_KEYS
            if extra:
                bad(f, f"unknown keys {sorted(extra)}", "an image is {'path': ...} or {'bytes': base64}")
            path, b64 = im.get("path"), im.get("bytes")
            if path is None and b64 is None:
                bad(f, "neither 'path' nor 'bytes' given")
            if path is not None and not isinstance(path, str):
                bad(f + ".path", f"expected string, got {_type_name(path)}")
            if b64 is not None:
                if not isinstance(b64, str):
                    bad(f + ".bytes", f"expected base64 string, got {_type_name(b64)}")
                    continue
                try:
                    raw = base64.b64decode(b64, validate=True)
                except Exception:
                    bad(f + ".bytes", "not valid base64")
                    continue
                if check_images and not _decodes(raw):
                    bad(f + ".bytes", "embedded bytes are not a readable image")
            elif check_images and isinstance(path, str):
                full = path if os.path.isabs(path) or root is None else os.path.join(root, path)
                if not os.path.exists(full):
                    bad(f + ".path", f"image file not found: {full}",
                        "fix the path (it is relative to the data file's directory) or pass --image-root")
                elif not _decodes_file(full):
                    bad(f + ".path", f"image file is not a readable image: {full}")

    # prompt
    prompt = d.get("prompt")
    used_images: set[int] = set()
    if prompt is None:
        bad("prompt", "missing", "a list of messages [{'role': 'user', 'content': ...}]")
    elif not isinstance(prompt, list) or not prompt:
        bad("prompt", f"expected a non-empty array of messages, got {_type_name(prompt)}")
    else:
        for i, m in enumerate(prompt):
            f = f"prompt[{i}]"
            if not isinstance(m, dict):
                bad(f, f"expected message object, got {_type_name(m)}")
                continue
            if m.get("role") not in ROLES:
                bad(f + ".role", f"unknown role {m.get('role')!r}", f"use one of {list(ROLES)}")
            c = m.get("content")
            if isinstance(c, str):
                continue
            if not isinstance(c, list):
                bad(f + ".content", f"expected string or array of parts, got {_type_name(c)}")
                continue
            for j, part in enumerate(c):
                pf = f"{f}.content[{j}]"
                if not isinstance(part, dict):
                    bad(pf, f"expected part object, got {_type_name(part)}")
                elif part.get("type") == "text":
                    if not isinstance(part.get("text"), str):
                        bad(pf + ".text", f"expected string, got {_type_name(part.get('text'))}")
                elif part.get("type") == "image":
                    idx = part.get("index")
                    if idx is None:
                        idx = sum(1 for q in c[:j] if isinstance(q, dict) and q.get("type") == "image")
                    if isinstance(idx, bool) or not isinstance(idx, int) or not (0 <= idx < max(n_images, 0)):
                        bad(pf + ".index", f"image index {idx!r} out of range: the sample has {n_images} image(s)",
                            "add the image to 'images' or fix the index")
                    else:
                        used_images.add(idx)
                else:
                    bad(pf + ".type", f"unknown part type {part.get('type')!r}", "use 'text' or 'image'")
    if isinstance(images, list) and n_images and prompt and isinstance(prompt, list):
        unused = sorted(set(range(n_images)) - used_images)
        if unused and all(isinstance(m, dict) and isinstance(m.get("content"), list) for m in prompt):
            bad("images", f"image(s) {unused} are not referenced by any image part in 'prompt'",
                "add {'type': 'image', 'index': i} where the image belongs")

    # choices
    ch = d.get("choices")
    if ch is not None:
        if not isinstance(ch, list) or not all(isinstance(x, str) for x in ch):
            bad("choices", "expected an array of strings", 'e.g. ["30°", "40°", "50°", "60°"]')
        elif len(ch) < 2 or len(ch) > 26:
            bad("choices", f"expected 2-26 choices, got {len(ch)}")
    if at == "choice":
        if not ch:
            bad("choices", "required when answer_type is 'choice'")
        ans = d.get("answer")
        if isinstance(ans, str) and isinstance(ch, list) and ch:
            letters = [chr(ord("A") + i) for i in range(len(ch))]
            if ans.strip().upper() not in letters:
                bad("answer", f"choice answer {ans!r} is not one of the letters {letters}",
                    "store the letter of the correct choice")

    # tests
    t = d.get("tests")
    if t is not None:
        if not isinstance(t, dict):
            bad("tests", f"expected object {{inputs, outputs, fn_name?}}, got {_type_name(t)}")
        else:
            ins, outs = t.get("inputs"), t.get("outputs")
            if not isinstance(ins, list) or not isinstance(outs, list):
                bad("tests", "'inputs' and 'outputs' must both be arrays")
            elif len(ins) != len(outs):
                bad("tests", f"{len(ins)} inputs but {len(outs)} outputs", "one expected output per input")
            elif not ins:
                bad("tests", "no test cases")
            extra = set(t) - _TESTS_KEYS
            if extra:
                bad("tests", f"unknown keys {sorted(extra)}")
            if t.get("fn_name") is not None and not isinstance(t.get("fn_name"), str):
                bad("tests.fn_name", f"expected string, got {_type_name(t.get('fn_name'))}")
    if at == "code" and t is None:
        bad("tests", "required when answer_type is 'code'", "TACO-style {inputs, outputs, fn_name?}")
    if at in ("math", "numeric", "choice", "text") and d.get("answer") is None and not d.get("chosen"):
        bad("answer", f"missing reference answer for answer_type {at!r}",
            "set 'answer' (use answer_type 'text' with an empty string if there is none)")

    # responses
    def check_response(r, f):
        if not isinstance(r, dict):
            bad(f, f"expected response object, got {_type_name(r)}")
            return
        if not isinstance(r.get("text"), str):
            bad(f + ".text", f"expected string, got {_type_name(r.get('text'))}")
        extra = set(r) - _RESPONSE_KEYS
        if extra:
            bad(f, f"unknown keys {sorted(extra)}", f"allowed: {sorted(_RESPONSE_KEYS)}; use 'meta'")
        if r.get("verdict") is not None and r.get("verdict") not in VERDICTS:
            bad(f + ".verdict", f"unknown verdict {r.get('verdict')!r}", f"use one of {list(VERDICTS)}")
        if r.get("finish_reason") not in FINISH_REASONS:
            bad(f + ".finish_reason", f"unknown finish reason {r.get('finish_reason')!r}",
                "use 'stop', 'length' or 'error'")
        rw = r.get("reward")
        if rw is not None and (isinstance(rw, bool) or not isinstance(rw, (int, float))):
            bad(f + ".reward", f"expected number, got {_type_name(rw)}")
        for k in _typed(Response, int):
            v = r.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                bad(f + "." + k, f"expected integer, got {_type_name(v)}")
        for k in _typed(Response, dict):
            if r.get(k) is not None and not isinstance(r.get(k), dict):
                bad(f + "." + k, f"expected object, got {_type_name(r.get(k))}")

    rs = d.get("responses")
    if rs is not None:
        if not isinstance(rs, list):
            bad("responses", f"expected array, got {_type_name(rs)}")
        else:
            for i, r in enumerate(rs):
                check_response(r, f"responses[{i}]")
    if "chosen" in d or "rejected" in d:
        for k in ("chosen", "rejected"):
            if d.get(k) is None:
                bad(k, "missing", "a preference pair needs both 'chosen' and 'rejected'")
            else:
                check_response(d[k], k)
    return P


def _decodes(raw: bytes) -> bool:
    try:
        from PIL import Image

        Image.open(io.BytesIO(raw)).verify()
        return True
    except Exception:
        return False


def _decodes_file(path: str) -> bool:
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:
        return False


def unreadable_image(im: ImageRef) -> str | None:
    """Why an image of a loaded sample cannot be used (missing file, not a decodable image), or None."""
    if im.bytes is not None:
        return None if _decodes(im.bytes) else "embedded image bytes are not a readable image"
    path = im.resolved_path()
    if path is None:
        return "an image with neither a path nor bytes"
    if not os.path.exists(path):
        return f"image file not found: {path}"
    return None if _decodes_file(path) else f"image file is not a readable image: {path}"


# ----------------------------------------------------------------------------------------- building
def _build_response(r: dict) -> Response:
    return Response(
        text=r["text"], finish_reason=r.get("finish_reason"), prompt_tokens=r.get("prompt_tokens"),
        completion_tokens=r.get("completion_tokens"), gen=dict(r.get("gen") or {}), verdict=r.get("verdict"),
        reward=None if r.get("reward") is None else float(r["reward"]), extracted=r.get("extracted"),
        reason=r.get("reason"), meta=dict(r.get("meta") or {}),
    )


def _build(cls, d: dict, root: str | None):
    prompt = []
    for m in d["prompt"]:
        c = m["content"]
        if isinstance(c, str):
            parts = [Part("text", text=c)]
        else:
            parts, k = [], 0
            for p in c:
                if p["type"] == "text":
                    parts.append(Part("text", text=p["text"]))
                else:
                    idx = p.get("index")
                    parts.append(Part("image", index=k if idx is None else idx))
                    k += 1
        prompt.append(Message(m["role"], parts))
    images = [ImageRef(path=im.get("path"), bytes=base64.b64decode(im["bytes"]) if im.get("bytes") else None,
                       root=root) for im in (d.get("images") or [])]
    t = d.get("tests")
    tests = CodeTests(list(t["inputs"]), list(t["outputs"]), t.get("fn_name"), t.get("starter_code")) if t else None
    kw = dict(
        prompt=prompt, answer_type=d["answer_type"], answer=d.get("answer"), images=images,
        choices=list(d["choices"]) if d.get("choices") is not None else None, tests=tests,
        source=d.get("source") or "custom", split=d.get("split"),
        difficulty=None if d.get("difficulty") is None else float(d["difficulty"]),
        meta=dict(d.get("meta") or {}), provenance=dict(d.get("provenance") or {}),
        responses=[_build_response(r) for r in (d.get("responses") or [])], id=d.get("id") or "",
    )
    if cls is Pair:
        kw["chosen"] = _build_response(d["chosen"]) if d.get("chosen") else None
        kw["rejected"] = _build_response(d["rejected"]) if d.get("rejected") else None
    return cls(**kw)
