"""Export sample sets to other tools' formats: the RL engines people scale on (verl, OpenRLHF) and the chat /
preference layouts of TRL, ShareGPT, LLaMA-Factory and ms-swift.

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
  * ``trl-sft`` / ``trl-dpo`` (JSONL, JSON or Parquet with ``images`` as ``Image`` features), ``sharegpt``,
    ``llamafactory`` (sharegpt formatting + its ``dataset_info.json`` entry), ``swift`` (JSONL / JSON): an SFT
    set gives one row per response, a DPO set one row per pair, an RL set prompt-only rows; every row carries
    ``id``, ``answer``, ``answer_type`` (and ``choices``), so the card of the same name reads it back into the
    same samples. Images: paths relative to the output's folder (``images="path"``) or ``embed`` (base64 data
    URLs; bytes in Parquet). An empty set gives an empty file: ``datasets.load_dataset`` refuses files without
    rows, so load an empty ``.parquet`` export with ``datasets.Dataset(pyarrow.parquet.read_table(path))``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterable

from ..io import atomic_write, read_samples
from ..registry import lookup
from ..schema import Pair, Sample
from .convert import image_out_dir
from .rows import _sniff_ext

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


# ----------------------------------------------------------------------------------------- chat tools' formats
IMAGE_MODES = ("path", "embed")


class _Images:
    """Image values for an export: a path relative to the output's folder (``path``: embedded bytes are written
    to ``<out stem>_images/`` first) or the image itself (``embed``: a base64 data URL in JSON, bytes in Parquet)."""

    def __init__(self, out: str, mode: str, parquet: bool = False):
        if mode not in IMAGE_MODES:
            raise ValueError(f"images={mode!r}: use one of {list(IMAGE_MODES)}")
        self.out_dir = os.path.dirname(os.path.abspath(out))
        self.img_dir = image_out_dir(out)
        self.mode, self.parquet = mode, parquet

    def value(self, im):
        if self.mode == "embed":
            b = im.read_bytes()
            if self.parquet:
                return {"bytes": b, "path": None}
            return f"data:image/{_sniff_ext(b)};base64,{base64.b64encode(b).decode('ascii')}"
        p = im.resolved_path()
        if p is None:  # embedded in our record: give it a file beside the export
            os.makedirs(self.img_dir, exist_ok=True)
            p = os.path.join(self.img_dir, f"{hashlib.sha256(im.bytes).hexdigest()[:16]}.{_sniff_ext(im.bytes)}")
            if not os.path.exists(p):
                with atomic_write(p, "wb") as f:
                    f.write(im.bytes)
        rel = os.path.relpath(os.path.abspath(p), self.out_dir).replace(os.sep, "/")
        return {"bytes": None, "path": os.path.abspath(p)} if self.parquet else rel


def _turn_text(m) -> str:
    return "".join(p.text or "" if p.type == "text" else IMAGE_PLACEHOLDER for p in m.content)


def _trl_content(m, parts: bool):
    if not parts:
        return _turn_text(m)
    return [{"type": "text", "text": p.text or ""} if p.type == "text" else {"type": "image"} for p in m.content]


def _kind(samples: list[Sample], fmt: str) -> str:
    """``pairs`` (every record a Pair), ``responses`` (every sample has a response) or ``prompts`` (none has)."""
    if not samples:
        return "pairs" if fmt == "trl-dpo" else "responses"
    pairs = [isinstance(s, Pair) for s in samples]
    if any(pairs) and not all(pairs):
        raise ValueError(f"{fmt}: the set mixes preference pairs and samples (record {samples[pairs.index(False)].id!r} "
                         "is not a pair); export DPO and SFT sets separately")
    if all(pairs):
        return "pairs"
    with_resp = [bool(s.responses) for s in samples]
    if any(with_resp) and not all(with_resp):
        raise ValueError(f"{fmt}: sample {samples[with_resp.index(False)].id!r} has no response while others do; an SFT "
                         "export needs a response in every row (an RL set: none)")
    return "responses" if all(with_resp) else "prompts"


def _extras(s: Sample) -> dict:
    """The reference our readers take back (answer, answer type, choices) and the record id."""
    return {"id": s.id, "answer": s.answer if s.answer is not None else "", "answer_type": s.answer_type,
            "choices": list(s.choices) if s.choices else None}


def _rows_trl(samples: list[Sample], out: str, images: str, fmt: str) -> list[dict]:
    kind = _kind(samples, fmt)
    if fmt == "trl-dpo" and kind != "pairs":
        raise ValueError(f"trl-dpo exports preference pairs; {samples[0].id!r} is a sample (use --format trl-sft)")
    if fmt == "trl-sft" and kind == "pairs":
        raise ValueError(f"trl-sft exports samples; {samples[0].id!r} is a preference pair (use --format trl-dpo)")
    parts = any(s.images for s in samples)
    im = _Images(out, images, parquet=out.endswith(".parquet"))
    rows = []
    for s in samples:
        prompt = [{"role": m.role, "content": _trl_content(m, parts)} for m in s.prompt]
        base = {"images": [im.value(x) for x in s.images]} if parts else {}
        if kind == "pairs":
            row = {"prompt": prompt, "chosen": [{"role": "assistant", "content": _reply(s.chosen.text, parts)}],
                   "rejected": [{"role": "assistant", "content": _reply(s.rejected.text, parts)}]}
            rows.append({**row, **base, **_extras(s)})
        elif kind == "prompts":
            rows.append({"prompt": prompt, **base, **_extras(s)})
        else:
            for r in s.responses:
                msgs = prompt + [{"role": "assistant", "content": _reply(r.text, parts)}]
                rows.append({"messages": msgs, **base, **_extras(s)})
    return rows


def _reply(text: str, parts: bool):
    return [{"type": "text", "text": text}] if parts else text


def _sharegpt_turns(s: Sample) -> tuple[str | None, list[dict]]:
    system = "\n".join(_turn_text(m) for m in s.prompt if m.role == "system") or None
    role = {"user": "human", "assistant": "gpt"}
    return system, [{"from": role[m.role], "value": _turn_text(m)} for m in s.prompt if m.role != "system"]


def _rows_sharegpt(samples: list[Sample], out: str, images: str, fmt: str) -> list[dict]:
    kind = _kind(samples, fmt)
    im = _Images(out, images)
    rows = []
    for s in samples:
        system, conv = _sharegpt_turns(s)
        base = {"system": system or "", "images": [im.value(x) for x in s.images], **_extras(s)}
        if kind == "pairs":
            rows.append({"conversations": conv, "chosen": {"from": "gpt", "value": s.chosen.text},
                         "rejected": {"from": "gpt", "value": s.rejected.text}, **base})
        elif kind == "prompts":
            rows.append({"conversations": conv, **base})
        else:
            for r in s.responses:
                rows.append({"conversations": conv + [{"from": "gpt", "value": r.text}], **base})
    return rows


def _rows_swift(samples: list[Sample], out: str, images: str, fmt: str) -> list[dict]:
    kind = _kind(samples, fmt)
    im = _Images(out, images)
    rows = []
    for s in samples:
        msgs = [{"role": m.role, "content": _turn_text(m)} for m in s.prompt]
        base = {"images": [im.value(x) for x in s.images], **_extras(s)}
        if kind == "pairs":
            rows.append({"messages": msgs + [{"role": "assistant", "content": s.chosen.text}],
                         "rejected_response": s.rejected.text, **base})
        elif kind == "prompts":
            rows.append({"messages": msgs, **base})
        else:
            for r in s.responses:
                rows.append({"messages": msgs + [{"role": "assistant", "content": r.text}], **base})
    return rows


def _write_rows(rows: list[dict], out: str) -> int:
    """JSONL (``.jsonl``) or one JSON list (``.json``), atomically."""
    with atomic_write(out) as f:
        if out.endswith(".json"):
            json.dump(rows, f, ensure_ascii=False, indent=1)
            f.write("\n")
        else:
            for r in rows:
                f.write(json.dumps({k: v for k, v in r.items() if v is not None}, ensure_ascii=False) + "\n")
    return len(rows)


def _write_trl_parquet(rows: list[dict], out: str, fmt: str) -> int:
    """Parquet through ``datasets`` (its features kept in the file: ``images`` load as ``Image``)."""
    import datasets

    turn = [{"role": datasets.Value("string"), "content": datasets.Value("string")}]
    feats = {"id": datasets.Value("string"), "answer": datasets.Value("string"),
             "answer_type": datasets.Value("string"), "choices": datasets.List(datasets.Value("string"))}
    if rows and "images" in rows[0]:
        feats["images"] = datasets.List(datasets.Image())
    if rows:
        ds = datasets.Dataset.from_list(rows)
        if "images" in rows[0]:
            ds = ds.cast_column("images", feats["images"])
    else:  # an empty set keeps its columns: a valid, loadable empty dataset
        cols = ({"prompt": turn, "chosen": turn, "rejected": turn} if fmt == "trl-dpo" else {"messages": turn})
        ds = datasets.Dataset.from_dict({k: [] for k in [*cols, *feats]}, features=datasets.Features({**cols, **feats}))
    with atomic_write(out, "wb") as f:
        ds.to_parquet(f)
    return len(rows)


def _chat_writer(rows_fn, fmt: str, parquet: bool = False):
    def writer(samples: Iterable[Sample], out: str, *, images: str = "path") -> int:
        samples = list(samples)
        rows = rows_fn(samples, out, images, fmt)
        if out.endswith(".parquet"):
            if not parquet:
                raise ValueError(f"{fmt}: write .jsonl or .json (Parquet is offered for trl-sft and trl-dpo)")
            return _write_trl_parquet(rows, out, fmt)
        return _write_rows(rows, out)

    return writer


write_trl_sft = _chat_writer(_rows_trl, "trl-sft", parquet=True)
write_trl_sft.__doc__ = ("TRL SFT data: messages (conversational; image parts + images when the set has images), or "
                         "prompt-only rows for an RL set; answer, answer_type, choices, id columns.")
write_trl_dpo = _chat_writer(_rows_trl, "trl-dpo", parquet=True)
write_trl_dpo.__doc__ = "TRL preference data: prompt, chosen, rejected (conversational), images; answer, id columns."
write_sharegpt = _chat_writer(_rows_sharegpt, "sharegpt")
write_sharegpt.__doc__ = "ShareGPT: conversations (from/value, <image> placeholders), system, images; pairs: chosen/rejected."
write_swift = _chat_writer(_rows_swift, "swift")
write_swift.__doc__ = "ms-swift: messages (<image> tags), images; pairs: rejected_response."


def write_llamafactory(samples: Iterable[Sample], out: str, *, images: str = "path") -> int:
    """LLaMA-Factory: a sharegpt-format file and its entry (named after the file) in dataset_info.json beside it."""
    from ..io import write_json

    samples = list(samples)
    n = _chat_writer(_rows_sharegpt, "llamafactory")(samples, out, images=images)
    info_path = os.path.join(os.path.dirname(os.path.abspath(out)), "dataset_info.json")
    info = {}
    if os.path.exists(info_path):
        with open(info_path, encoding="utf-8") as f:
            info = json.load(f)
    ranking = bool(samples) and isinstance(samples[0], Pair)
    columns = {"messages": "conversations", "system": "system", "images": "images"}
    if ranking:
        columns.update(chosen="chosen", rejected="rejected")
    name = os.path.basename(out).rsplit(".", 1)[0]
    info[name] = {"file_name": os.path.basename(out), "formatting": "sharegpt", "ranking": ranking,
                  "columns": columns, "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                                               "assistant_tag": "gpt", "system_tag": "system"}}
    write_json(info_path, info)
    return n


FORMATS.update({
    "trl-sft": write_trl_sft,
    "trl-dpo": write_trl_dpo,
    "sharegpt": write_sharegpt,
    "llamafactory": write_llamafactory,
    "swift": write_swift,
})


def export(src, out: str | os.PathLike, format: str, *, image_root: str | None = None,
           images: str | None = None) -> int:
    """Read sample records from ``src`` (files, directories, globs) and write them to ``out`` in ``format``.

    ``images``: ``path`` (relative to ``out``'s folder) or ``embed``, for the formats that offer the choice."""
    writer = lookup(format, FORMATS, "export format", example="pkg.module:writer")
    if images is None:
        return writer(read_samples(src, image_root=image_root), os.fspath(out))
    import inspect

    if "images" not in inspect.signature(writer).parameters:
        raise ValueError(f"export format {format!r} does not take an images mode (it decides how images are stored)")
    return writer(read_samples(src, image_root=image_root), os.fspath(out), images=images)
