"""Chat messages for server and engine teachers, built once from a ``Sample``.

The OpenAI teacher sends images as base64 data URLs in ``image_url`` parts; the vLLM teacher renders
the same messages with image placeholders and hands the images to the engine as ``multi_modal_data``.
Both use :func:`chat_messages`, so a prompt looks the same to every backend.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

from ..schema import ImageRef, Sample

_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif",
          b"RIFF": "image/webp"}


def image_mime(data: bytes) -> str | None:
    """The MIME type of PNG / JPEG / GIF / WebP bytes, else ``None``.

    >>> image_mime(b"\\x89PNG\\r\\n\\x1a\\n...."), image_mime(b"nope")
    ('image/png', None)
    """
    for magic, mime in _MAGIC.items():
        if data.startswith(magic):
            if mime == "image/webp" and data[8:12] != b"WEBP":
                continue
            return mime
    return None


def data_url(image: ImageRef) -> str:
    """A ``data:image/...;base64,...`` URL of an image (PNG/JPEG/GIF/WebP sent as is, others re-encoded as PNG)."""
    raw = image.read_bytes()
    mime = image_mime(raw)
    if mime is None:
        buf = io.BytesIO()
        image.load().save(buf, format="PNG")
        raw, mime = buf.getvalue(), "image/png"
    return f"data:{mime};base64," + base64.b64encode(raw).decode("ascii")


def openai_image_part(image: ImageRef) -> dict:
    return {"type": "image_url", "image_url": {"url": data_url(image)}}


def chat_messages(sample: Sample, *, system: str | None = None,
                  image_part: Callable[[ImageRef], Any] = openai_image_part,
                  text_only_as_string: bool = True) -> list[dict]:
    """OpenAI-style messages for a sample: text parts and ``image_part(image)`` in prompt order.

    A message without images gets plain string content (accepted by every server). ``system`` is
    prepended unless the sample already has a system message.

    >>> from mmredstar.schema import Sample
    >>> chat_messages(Sample.text("What is 1+1?", "2"), system="Think step by step.")
    [{'role': 'system', 'content': 'Think step by step.'}, {'role': 'user', 'content': 'What is 1+1?'}]
    """
    out: list[dict] = []
    if system and not any(m.role == "system" for m in sample.prompt):
        out.append({"role": "system", "content": system})
    for m in sample.prompt:
        has_images = any(p.type == "image" for p in m.content)
        if not has_images and text_only_as_string:
            out.append({"role": m.role, "content": m.text})
            continue
        parts = []
        for p in m.content:
            if p.type == "text":
                if p.text:
                    parts.append({"type": "text", "text": p.text})
            else:
                parts.append(image_part(sample.images[p.index]))
        out.append({"role": m.role, "content": parts})
    return out


def question_text(messages: list[dict]) -> str:
    """The text of the last user message of OpenAI-style messages (string or parts)."""
    for m in reversed(messages):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            return "".join(p.get("text", "") for p in c or [] if isinstance(p, dict) and p.get("type") == "text")
    return ""
