"""Export RL prompt sets to the data formats of the RL engines people scale on (verl, OpenRLHF).

    mmredstar data export --src rl.jsonl --out rl.parquet --format verl       # verl's RL parquet
    mmredstar data export --src rl.jsonl --out rl_openrlhf.jsonl --format openrlhf

    from mmredstar.data.export import export, FORMATS
    export("rl.jsonl", "rl.parquet", "verl")        # -> number of rows written

``FORMATS`` maps a format name to its writer ``writer(samples, out) -> int`` (its docstring's first line
describes it; a name not listed may be a dotted path ``pkg.module:writer``)
that streams samples into ``out`` atomically (the file appears complete or not at all; an empty set gives
a valid, empty file). Every row keeps the whole record (without responses) so that our reward plug-ins
(``mmredstar.engines``) rebuild the exact sample -- answer type, choices, code tests -- and score the
engine's responses with the same verifier as our own trainers.

Formats:
  * ``verl``: Parquet with verl's RL columns (verl docs, "Prepare Data for Post-Training"):
    ``data_source`` (our ``source``; the ``data_source`` verl passes to ``compute_score``), ``prompt``
    (chat messages ``[{role, content}]``, images as ``<image>`` placeholders), ``ability`` (the answer
    type), ``reward_model`` (``{style: "rule", ground_truth: answer}``), ``extra_info`` (``{split, index,
    id, sample}``, ``sample`` the record as JSON) and, when any record has images, ``images``
    (``[{bytes, path}]``, the form verl's multimodal loader reads).
  * ``openrlhf``: JSONL with ``input`` (chat messages; train with ``--input_key input
    --apply_chat_template``), ``label`` (the record as JSON: what ``--label_key label`` hands the reward
    function) and ``datasource``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable

from ..io import atomic_write, read_samples
from ..registry import lookup
from ..schema import Sample

IMAGE_PLACEHOLDER = "<image>"


def reference_json(s: Sample) -> str:
    """The record without its responses, as JSON: what the engines' reward plug-ins rebuild the sample from."""
    d = s.to_dict()
    d["responses"] = []
    d.pop("chosen", None)
    d.pop("rejected", None)
    return json.dumps(d, ensure_ascii=False)


def chat_messages(s: Sample) -> list[dict]:
    """The prompt as plain chat messages (``content`` a string, each image part as ``<image>``)."""
    out = []
    for m in s.prompt:
        text = "".join(p.text or "" if p.type == "text" else IMAGE_PLACEHOLDER for p in m.content)
        out.append({"role": m.role, "content": text})
    return out


# ----------------------------------------------------------------------------------------- verl
def _verl_schema(with_images: bool):
    import pyarrow as pa

    fields = [
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        ("extra_info", pa.struct([("split", pa.string()), ("index", pa.int64()), ("id", pa.string()),
                                  ("sample", pa.string())])),
    ]
    if with_images:
        fields.append(("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))))
    return pa.schema(fields)


def _verl_row(s: Sample, index: int, with_images: bool) -> dict:
    row = {
        "data_source": s.source,
        "prompt": chat_messages(s),
        "ability": s.answer_type,
        "reward_model": {"style": "rule", "ground_truth": s.answer if s.answer is not None else ""},
        "extra_info": {"split": s.split, "index": index, "id": s.id, "sample": reference_json(s)},
    }
    if with_images:
        row["images"] = [{"bytes": im.read_bytes(), "path": None} for im in s.images]
    return row


def write_verl(samples: Iterable[Sample], out: str, batch_size: int = 1000) -> int:
    """verl RL parquet: data_source, prompt, ability, reward_model, extra_info (+ images, embedded as bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    samples = list(samples)  # one pass decides whether the image column exists; prompt sets are small
    with_images = any(s.images for s in samples)
    schema = _verl_schema(with_images)
    with atomic_write(out, "wb") as f:
        w = pq.ParquetWriter(f, schema)
        for i in range(0, max(len(samples), 1), batch_size):
            rows = [_verl_row(s, i + j, with_images) for j, s in enumerate(samples[i:i + batch_size])]
            w.write_table(pa.Table.from_pylist(rows, schema=schema))
        w.close()
    return len(samples)


# ----------------------------------------------------------------------------------------- OpenRLHF
def write_openrlhf(samples: Iterable[Sample], out: str) -> int:
    """OpenRLHF prompt JSONL: input (chat messages), label (the record as JSON), datasource."""
    n = 0
    with atomic_write(out) as f:
        for s in samples:
            f.write(json.dumps({"input": chat_messages(s), "label": reference_json(s), "datasource": s.source},
                               ensure_ascii=False) + "\n")
            n += 1
    return n


FORMATS: dict[str, Callable[[Iterable[Sample], str], int]] = {
    "verl": write_verl,
    "openrlhf": write_openrlhf,
}


def export(src, out: str | os.PathLike, format: str, *, image_root: str | None = None) -> int:
    """Read sample records from ``src`` (files, directories, globs) and write them to ``out`` in ``format``."""
    writer = lookup(format, FORMATS, "export format", example="pkg.module:writer")
    return writer(read_samples(src, image_root=image_root), os.fspath(out))
