"""What an adapter hook sees for one raw row (``RowContext``), how it rejects a row (``Skip``), and images.

A hook is ``hook(row: dict, ctx: RowContext) -> dict``: it returns the row, possibly with extra keys
the column map cannot express (``_question``, ``_answer``, ``_answer_type``, ``_choices``,
``_images`` (list of ``ImageRef``), ``_prompt`` (list of ``Message``), ``_tests`` (``CodeTests``),
``_responses``, ``_chosen`` / ``_rejected`` (``Response``: the row becomes a ``Pair``), ``_meta`` (dict merged into ``Sample.meta``), ``_id``, ``_split``, ``_difficulty``).
To reject a row it raises ``Skip(field, message, hint)``; conversion reports the row's file, line
and field and goes on with the next row.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..schema import ImageRef
from .sources import RawRow


class Skip(Exception):
    """Raised by an adapter for a row it cannot convert; names the source field and what to do."""

    def __init__(self, field: str, message: str, hint: str = ""):
        self.field, self.message, self.hint = field, message, hint
        super().__init__(f"field '{field}': {message}" + (f" ({hint})" if hint else ""))


@dataclass
class RowContext:
    """Where a row came from and the services an adapter may use (saving images, counting warnings)."""

    card: Any
    raw: RawRow
    options: dict = field(default_factory=dict)
    image_dir: str | None = None        # base directory for relative image paths (None: the row's directory)
    image_out: str | None = None        # where decoded image arrays are written (None: embed the bytes)
    warnings: Counter = field(default_factory=Counter)
    seq: int = 0                        # 0-based position of the row in the whole source

    def warn(self, kind: str, n: int = 1) -> None:
        self.warnings[kind] += n

    def opt(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    # -- images ------------------------------------------------------------------------------------
    def image_from_path(self, p: str) -> ImageRef:
        """An image named by a path in the data: relative to ``image_dir`` (if set) else the row's file."""
        base = self.image_dir or self.raw.row_dir
        full = p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))
        if not os.path.exists(full):
            self.warn("missing image")
        root = self.raw.root
        rel = os.path.relpath(full, root)
        return ImageRef(path=rel.replace(os.sep, "/"), root=root)

    def image_from_bytes(self, data: bytes, name: str | None = None, ext: str = "png") -> ImageRef:
        """Embedded image bytes: written to ``image_out`` when set (stable name), else kept embedded."""
        if self.image_out is None:
            return ImageRef(bytes=data)
        os.makedirs(self.image_out, exist_ok=True)
        stem = _safe_name(name) if name else hashlib.sha256(data).hexdigest()[:16]
        path = os.path.join(self.image_out, f"{stem}.{ext}")
        if not (os.path.exists(path) and _same_bytes(path, data)):
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        out_dir = os.path.dirname(self.image_out)
        return ImageRef(path=os.path.relpath(path, out_dir).replace(os.sep, "/"), root=out_dir)

    def image_from_array(self, arr: Any, name: str | None = None) -> ImageRef:
        """A numpy image array (H x W grey, H x W x 3/4 colour; uint8 or 0-1 floats) as a PNG."""
        return self.image_from_bytes(array_to_png(arr), name, "png")

    def images_from_value(self, v: Any, name: str | None = None) -> list[ImageRef]:
        """Images from a data value: a path, a list of paths, an HF ``Image`` struct {bytes, path},
        raw bytes, a base64 data URL, or a numpy array."""
        if v is None:
            return []
        if isinstance(v, (list, tuple)):
            out: list[ImageRef] = []
            for i, x in enumerate(v):
                out += self.images_from_value(x, f"{name}_{i}" if name else None)
            return out
        if isinstance(v, str):
            if v.startswith("data:image/"):
                head, _, b64 = v.partition(",")
                ext = head[len("data:image/"):].split(";")[0] or "png"
                return [self.image_from_bytes(base64.b64decode(b64), name, ext)]
            return [self.image_from_path(v)] if v.strip() else []
        if isinstance(v, (bytes, bytearray)):
            return [self.image_from_bytes(bytes(v), name, _sniff_ext(bytes(v)))]
        if isinstance(v, dict):
            b = v.get("bytes")
            if b:
                return [self.image_from_bytes(bytes(b), name, _sniff_ext(bytes(b)))]
            p = v.get("path") or v.get("image") or v.get("url")
            return self.images_from_value(p, name) if p else []
        if hasattr(v, "shape"):
            return [self.image_from_array(v, name)]
        raise Skip("images", f"cannot read an image from a {type(v).__name__}",
                   "give a path, a list of paths, {bytes, path} or base64 data")


def array_to_png(arr: Any) -> bytes:
    """PNG bytes of an image array (deterministic for equal input)."""
    import numpy as np
    from PIL import Image

    a = np.asarray(arr)
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and float(a.max()) <= 1.0:
            a = a * 255.0
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.transpose(a, (1, 2, 0))  # CHW -> HWC
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise Skip("image", f"image array has shape {a.shape}", "expected H x W or H x W x C")
    img = Image.fromarray(a)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _sniff_ext(b: bytes) -> str:
    if b[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if b[:3] == b"\xff\xd8\xff":
        return "jpg"
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        return "webp"
    if b[:3] == b"GIF":
        return "gif"
    return "bin"


def _same_bytes(path: str, data: bytes) -> bool:
    try:
        if os.path.getsize(path) != len(data):
            return False
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False


def _safe_name(s: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(s))
    return keep.strip("._") or "image"


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        if getattr(v, "ndim", 0) == 0:
            return v.item()
        if v.size <= 64:
            return v.tolist()
        return f"<array shape={tuple(v.shape)} dtype={v.dtype}>"
    if hasattr(v, "item"):
        try:
            return v.item()
        except Exception:
            pass
    return str(v)


# ----------------------------------------------------------------------------------------- many rows
