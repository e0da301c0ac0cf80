"""Row hooks for what a card's column map cannot say, one per dataset family, looked up in ``ADAPTERS``.

A hook is ``hook(row: dict, ctx: RowContext) -> dict``: it reads the raw row and returns it with
``_``-prefixed keys that the generic mapper uses as they are (see ``mmredstar.data.rows``), or
raises ``Skip(field, message, hint)``. Everything else (plain columns, meta, ids, difficulty) stays
in the card. A user's own hook is named in a card as ``adapter: "pkg.module:function"``.

- ``mathvista``: multi_choice -> ``choice`` (answer text -> letter); free_form -> ``numeric`` (integer,
  float; ``precision``/``unit`` kept in meta) or ``math`` (list); ``metadata`` flattened into meta.
- ``geoqa``: the LLM-era question/answer JSONL (question text with "Choices: A:.. B:..", answer letter,
  index, value or a separate answers file joined on ``question_id``) and the original release
  (``.pk``/JSON records with ``English problem``, ``choices``, ``label``, ``image`` array written as PNG).
- ``geometry3k``: Inter-GPS per-problem ``data.json`` + ``img_diagram.png``; also the HF layout
  (``images`` + ``problem`` with ``<image>`` + ``answer``).
- ``olympiadbench``: ``final_answer`` list joined; ``context`` prepended; ``image_1..5``.
- ``taco``: ``input_output`` JSON -> ``CodeTests`` (stdin/stdout or ``fn_name`` call-based), starter
  code, difficulty label, ``tags``/``skill_types`` parsed, optional special-judge file.
- ``messages``: generic chat / ShareGPT with images: last assistant turn -> the response.
- ``trl``, ``sharegpt``, ``llamafactory``, ``swift``: the chat and preference layouts of TRL, ShareGPT,
  LLaMA-Factory (alpaca / sharegpt with ``dataset_info.json``) and ms-swift (``rejected_response``);
  a preference row becomes a ``Pair`` (``_chosen`` / ``_rejected``).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from ..io import iter_jsonl, read_jsonl
from ..schema import CodeTests, Message, Part, Response
from .rows import RowContext, Skip, _jsonable
from .sources import llamafactory_entry
from .text import choice_letter, get_path, scalar_to_str, split_choices, strip_instruction, strip_math_delims


def _first(row: dict, *keys: str) -> tuple[Any, str | None]:
    for k in keys:
        v = get_path(row, k)
        if v is not None and not (isinstance(v, str) and not v.strip()):
            return v, k
    return None, None


# ----------------------------------------------------------------------------------------- MathVista
MATHVISTA_FREE_FORM = {"integer": "numeric", "float": "numeric", "list": "math", "text": "text"}


def mathvista(row: dict, ctx: RowContext) -> dict:
    """MathVista (``testmini.json`` dict of pid -> record, or the HF parquet with ``decoded_image``)."""
    qt = row.get("question_type")
    meta: dict[str, Any] = {"question_type": qt, "mathvista_answer_type": row.get("answer_type")}
    for k in ("precision", "unit", "query"):
        if row.get(k) is not None:
            meta[k] = row[k]
    md = row.get("metadata") or {}
    if isinstance(md, dict):
        meta.update({k: v for k, v in md.items() if v is not None})
    if qt == "multi_choice":
        choices = row.get("choices")
        if not choices:
            raise Skip("choices", "a multi_choice question without choices")
        choices = [scalar_to_str(c) or "" for c in choices]
        letter = choice_letter(row.get("answer"), choices, "text")
        if letter is None:
            raise Skip("answer", f"answer {row.get('answer')!r} is not one of the choices {choices}")
        meta["answer_text"] = row.get("answer")
        row.update(_answer_type="choice", _answer=letter, _choices=choices)
    elif qt == "free_form":
        at = MATHVISTA_FREE_FORM.get(row.get("answer_type"))
        if at is None:
            raise Skip("answer_type", f"unknown free_form answer_type {row.get('answer_type')!r}",
                       f"expected one of {list(MATHVISTA_FREE_FORM)}")
        row.update(_answer_type=at, _choices=None)
    else:
        raise Skip("question_type", f"unknown question_type {qt!r}", "expected multi_choice or free_form")
    row["_meta"] = meta
    return row


# ----------------------------------------------------------------------------------------- GeoQA
GEOQA_EN_KEYS = ("English problem", "English_problem", "english_problem", "English Problem")


def _number(s: Any) -> float | None:
    m = re.search(r"-?\d+(?:\.\d+)?", str(s)) if s is not None else None
    return float(m.group(0)) if m else None


def _letter_by_value(answer: Any, choices: list[str]) -> str | None:
    """The choice whose number equals a numeric answer (R1-V-style ground truth 40 vs choice "40°")."""
    a = _number(answer)
    if a is None:
        return None
    hits = [i for i, c in enumerate(choices) if _number(c) is not None and abs(_number(c) - a) < 1e-6]
    return "ABCDEFGHIJ"[hits[0]] if len(hits) == 1 else None


def _answers_file(ctx: RowContext) -> dict | None:
    """question_id -> answer from a separate answers file (G-LLaVA ``test_answers.jsonl``), cached."""
    path = ctx.opt("answers_file")
    raw = ctx.raw
    if not path:
        base = os.path.basename(raw.path)
        if "question" not in base:
            return None
        cand = os.path.join(raw.row_dir, base.replace("questions", "answers").replace("question", "answer"))
        if cand == raw.path or not os.path.exists(cand):
            return None
        path = cand
    cache = ctx.options.setdefault("_answers_cache", {})
    if path not in cache:
        table = {}
        for _, d, prob in iter_jsonl(path):
            if prob is not None:
                raise Skip("answers_file", f"{prob.file}:{prob.line}: {prob.message}")
            qid = d.get("question_id", d.get("id"))
            table[str(qid)] = d.get("text", d.get("answer"))
        cache[path] = table
    return cache[path]


def geoqa(row: dict, ctx: RowContext) -> dict:
    """GeoQA in both the original and the LLM-era layouts (detected per row)."""
    if any(k in row for k in GEOQA_EN_KEYS) or ("label" in row and "image" in row and not isinstance(row["image"], str)):
        return _geoqa_original(row, ctx)
    if "conversations" in row or "messages" in row:
        raise Skip("conversations", "this row is a chat transcript, not a question/answer record",
                   "convert it with --card messages")
    return _geoqa_qa(row, ctx)


def _geoqa_original(row: dict, ctx: RowContext) -> dict:
    lang = str(ctx.opt("language", "en")).lower()
    if lang == "zh":
        text, key = _first(row, "subject", "Chinese problem", "chinese_problem")
        if text is None:
            raise Skip("subject", "missing the Chinese problem text", "original GeoQA records keep it in 'subject'")
    else:
        text, key = _first(row, *GEOQA_EN_KEYS)
        if text is None:
            present = sorted(k for k in row if isinstance(k, str))
            raise Skip("English problem", "missing the English problem text",
                       f"original GeoQA records have 'English problem'; this one has {present[:12]}; "
                       "pass --option language=zh to use the Chinese 'subject'")
    choices = row.get("choices")
    if not isinstance(choices, (list, tuple)) or len(choices) < 2:
        raise Skip("choices", f"expected a list of choices, got {choices!r}"[:200])
    choices = [scalar_to_str(c) or "" for c in choices]
    if row.get("label") is None:
        raise Skip("label", "missing the index of the correct choice")
    letter = choice_letter(row["label"], choices, "auto")
    if letter is None:
        raise Skip("label", f"label {row['label']!r} is not an index or letter of the {len(choices)} choices")
    img = row.get("image")
    if img is None and ctx.raw.single:  # GeoQA+ json-image_files: <id>.json beside <id>.png
        stem = os.path.splitext(os.path.basename(ctx.raw.path))[0]
        for ext in (".png", ".jpg", ".jpeg"):
            if os.path.exists(os.path.join(ctx.raw.row_dir, stem + ext)):
                img = stem + ext
                break
    if img is None:
        raise Skip("image", "missing the diagram", "original GeoQA records carry it as an image array "
                   "(or, one problem per JSON file, as a PNG with the same name)")
    orig_id = row.get("id", ctx.seq)
    name = f"geoqa_{scalar_to_str(orig_id)}"
    if isinstance(img, str):
        images = ctx.images_from_value(img)
    else:
        images = ctx.images_from_value(img, name=name)
    extra = {}
    for k, v in row.items():
        if k in ("image", "choices", key) or not isinstance(k, str) or k.startswith("_"):
            continue
        extra[k] = _jsonable(v)
    row.update(_question=str(text).strip(), _choices=choices, _answer=letter, _answer_type="choice",
               _images=images, _id=orig_id, _meta={"geoqa": extra, "layout": "original"})
    return row


def _geoqa_qa(row: dict, ctx: RowContext) -> dict:
    text, tkey = _first(row, "question", "text", "problem", "prompt", "query")
    if text is None:
        raise Skip("question", "missing the question text", "LLM-era GeoQA rows have 'question' (or 'text'/'problem')")
    text = str(text)
    choices = row.get("choices") or row.get("options")
    if isinstance(choices, dict):
        choices = [choices[k] for k in sorted(choices)]
    if isinstance(choices, str):
        try:
            choices = json.loads(choices)
        except json.JSONDecodeError:
            choices = None
    stem = text
    if choices:
        choices = [scalar_to_str(c) or "" for c in choices]
    else:
        stem, choices = split_choices(text)
    stem = strip_instruction(stem)
    answer, akey = _first(row, "answer", "label", "ground_truth", "gt", "gt_answer", "solution_answer")
    if answer is None:
        table = _answers_file(ctx)
        qid = row.get("question_id", row.get("id"))
        if table is not None and str(qid) in table:
            answer, akey = table[str(qid)], "answers_file"
    if answer is None:
        raise Skip("answer", "missing the answer",
                   "give 'answer' (letter or value), or the answers file with --option answers_file=PATH")
    meta: dict[str, Any] = {"layout": "qa"}
    if stem != text:
        meta["raw_question"] = text
    if choices:
        letter = choice_letter(answer, choices, "auto") or _letter_by_value(answer, choices)
        if letter is None:
            raise Skip(akey or "answer", f"answer {answer!r} matches none of the choices {choices}")
        if akey != "answers_file" and str(answer).strip().upper() != letter:
            meta["answer_value"] = scalar_to_str(answer)
        row.update(_answer=letter, _answer_type="choice", _choices=choices)
    else:
        ans = scalar_to_str(answer)
        row.update(_answer=ans, _answer_type="numeric" if _number(ans) is not None and re.fullmatch(
            r"\s*-?\d+(?:\.\d+)?\s*", ans or "") else "math", _choices=None)
    img, _ = _first(row, "image", "image_path", "images", "img", "image_file")
    images = ctx.images_from_value(img) if img is not None else []
    rid, _ = _first(row, "question_id", "id", "pid", "qid")
    row.update(_question=stem, _images=images, _meta=meta)
    if rid is not None:
        row["_id"] = rid
    return row


# ----------------------------------------------------------------------------------------- Geometry3K
G3K_META = ("problem_type_graph", "problem_type_goal", "precise_value", "rough_value", "unit", "annotat_text",
            "compact_text", "comment", "source", "data_type", "choices_precise_value")


def geometry3k(row: dict, ctx: RowContext) -> dict:
    """Inter-GPS ``<split>/<id>/data.json`` + ``img_diagram.png``, or the HF ``images``/``problem``/``answer`` rows."""
    if "problem_text" in row:
        text = row.get("problem_text") or row.get("compact_text") or row.get("annotat_text")
        if not text:
            raise Skip("problem_text", "missing the problem text")
        choices = row.get("choices")
        if not isinstance(choices, list) or len(choices) < 2:
            raise Skip("choices", f"expected a list of 4 choices, got {choices!r}")
        choices = [scalar_to_str(c) or "" for c in choices]
        letter = choice_letter(row.get("answer"), choices, "auto")
        if letter is None:
            raise Skip("answer", f"answer {row.get('answer')!r} is not a letter of the {len(choices)} choices")
        img_name = ctx.opt("image_name", "img_diagram.png")
        img_path = os.path.join(ctx.raw.row_dir, img_name)
        if not os.path.exists(img_path):
            pngs = sorted(f for f in os.listdir(ctx.raw.row_dir) if f.lower().endswith((".png", ".jpg")))
            img_path = os.path.join(ctx.raw.row_dir, pngs[0]) if pngs else img_path
        rel = os.path.relpath(img_path, ctx.raw.row_dir)
        images = ctx.images_from_value(rel)
        meta = {k: row[k] for k in G3K_META if row.get(k) not in (None, "", [])}
        meta["layout"] = "intergps"
        rid = row.get("id", os.path.basename(ctx.raw.row_dir))
        split = row.get("data_type")
        row.update(_question=str(text).strip(), _choices=choices, _answer=letter, _answer_type="choice",
                   _images=images, _meta=meta, _id=rid)
        if split:
            row["_split"] = {"val": "validation"}.get(split, split)
        return row
    if "problem" in row:
        images = ctx.images_from_value(row.get("images") if row.get("images") is not None else row.get("image"))
        text = str(row["problem"])
        stem, choices = split_choices(text)
        ans = row.get("answer")
        if ans is None:
            raise Skip("answer", "missing the answer")
        meta = {"layout": "hf"}
        if choices:
            letter = choice_letter(ans, choices, "auto") or _letter_by_value(ans, choices)
            if letter is None:
                raise Skip("answer", f"answer {ans!r} matches none of the choices {choices}")
            row.update(_question=stem, _choices=choices, _answer=letter, _answer_type="choice")
        else:
            row.update(_question=text, _answer=scalar_to_str(ans), _answer_type="math", _choices=None)
        row.update(_images=images, _meta=meta)
        return row
    raise Skip("problem_text", "neither an Inter-GPS data.json ('problem_text') nor an HF row ('problem')")


# ----------------------------------------------------------------------------------------- OlympiadBench
def olympiadbench(row: dict, ctx: RowContext) -> dict:
    """OlympiadBench (the Qwen2.5-Math JSONL or the HF ``Hothan/OlympiadBench`` parquet)."""
    fa = row.get("final_answer")
    if isinstance(fa, str):
        try:
            fa = json.loads(fa)
        except json.JSONDecodeError:
            fa = [fa]
    if hasattr(fa, "tolist"):
        fa = fa.tolist()
    if not fa or not any(str(x).strip() for x in fa):
        raise Skip("final_answer", "missing the final answer")

    answer = ", ".join(strip_math_delims(str(x)) for x in fa if str(x).strip())
    q = row.get("question")
    if not q:
        raise Skip("question", "missing the problem text")
    ctxt = row.get("context")
    text = f"{ctxt.strip()}\n\n{q.strip()}" if isinstance(ctxt, str) and ctxt.strip() else q.strip()
    images = []
    for k in range(1, 6):
        v = row.get(f"image_{k}")
        if v is not None:
            images += ctx.images_from_value(v, name=f"olympiadbench_{row.get('id')}_{k}")
    row.update(_question=text, _answer=answer, _images=images)
    return row


# ----------------------------------------------------------------------------------------- TACO
def _load_json_field(row: dict, key: str) -> Any:
    v = row.get(key)
    if isinstance(v, str):
        if not v.strip():
            return None
        try:
            return json.loads(v)
        except json.JSONDecodeError as e:
            raise Skip(key, f"not valid JSON ({e.msg} at column {e.colno})") from None
    return v


def _spj_table(ctx: RowContext) -> dict | None:
    path = ctx.opt("spj_file")
    if not path:
        return None
    cache = ctx.options.setdefault("_spj_cache", {})
    if path not in cache:
        table = {}
        for d in read_jsonl(path):
            table[int(d["idx"])] = d
        cache[path] = table
    return cache[path]


def taco(row: dict, ctx: RowContext) -> dict:
    """TACO (``BAAI/TACO`` rows): tests from ``input_output``; starter code appended to the problem."""
    io = _load_json_field(row, "input_output")
    if not isinstance(io, dict):
        raise Skip("input_output", "no test cases", "TACO rows carry {\"inputs\": [...], \"outputs\": [...]}")
    ins, outs = io.get("inputs"), io.get("outputs")
    if not isinstance(ins, list) or not isinstance(outs, list) or not ins:
        raise Skip("input_output", "no test cases (empty or missing 'inputs'/'outputs')")
    if len(ins) != len(outs):
        raise Skip("input_output", f"{len(ins)} inputs but {len(outs)} outputs")
    fn = io.get("fn_name") or None
    starter = row.get("starter_code") or None
    q = row.get("question")
    if not isinstance(q, str) or not q.strip():
        raise Skip("question", "missing the problem text")
    text = q.strip()
    if starter and str(starter).strip():
        text += "\n\nUse this starter code:\n```python\n" + str(starter).rstrip() + "\n```"
    sols = _load_json_field(row, "solutions")
    meta: dict[str, Any] = {"n_solutions": len(sols) if isinstance(sols, list) else 0,
                            "test_type": "call" if fn else "stdin"}
    for k in ("tags", "skill_types", "raw_tags"):
        v = row.get(k)
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        if v:
            meta[k] = v
    spj = _spj_table(ctx)
    if spj is not None and ctx.seq in spj:
        meta["special_judge"] = bool(spj[ctx.seq].get("special_judge"))
        meta["spj_case"] = spj[ctx.seq].get("case")
    row.update(_question=text, _answer=None, _answer_type="code",
               _tests=CodeTests(list(ins), list(outs), fn, starter), _meta=meta)
    return row

# ----------------------------------------------------------------------------------------- chat formats
ROLE_MAP = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "model": "assistant",
            "bot": "assistant", "chatgpt": "assistant", "system": "system"}
TOOL_ROLES = ("observation", "function_call", "function", "tool", "ipython")


def _turns(turns: Any, tkey: str, *, role_tag: str | None = None, content_tag: str | None = None,
           roles: dict | None = None) -> list[tuple[str, Any]]:
    """(role, content) of each turn; ``role``/``content`` or ``from``/``value`` (or the given tags)."""
    if not isinstance(turns, list):
        raise Skip(tkey, f"expected a list of turns, got {type(turns).__name__}")
    roles = roles or ROLE_MAP
    out = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            raise Skip(f"{tkey}[{i}]", f"expected a turn object, got {type(t).__name__}")
        role_raw = t.get(role_tag) if role_tag else t.get("role", t.get("from"))
        role = roles.get(str(role_raw).lower()) if role_raw is not None else None
        if role is None:
            if str(role_raw).lower() in TOOL_ROLES:
                raise Skip(f"{tkey}[{i}].role", f"tool turn {role_raw!r}: tool calls are not supported",
                           "drop tool-use rows before converting")
            raise Skip(f"{tkey}[{i}].role", f"unknown role {role_raw!r}", f"use one of {sorted(roles)}")
        content = t.get(content_tag) if content_tag else t.get("content", t.get("value"))
        if content is None:
            raise Skip(f"{tkey}[{i}].content", "missing content")
        out.append((role, content))
    return out


def _content_text(content: Any, fld: str) -> str:
    """The text of a response turn's content (a string or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    if isinstance(content, dict) and ("content" in content or "value" in content):
        return _content_text(content.get("content", content.get("value")), fld)
    raise Skip(fld, f"expected text, a list of parts or a turn, got {type(content).__name__}")


def _reply(v: Any, fld: str) -> str:
    """A response given as a string, one assistant turn ({role, content} / {from, value}) or a list of
    turns (TRL's conversational completion / chosen: the assistant turns' text)."""
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return _content_text(v, fld)
    if isinstance(v, list) and v and all(isinstance(t, dict) and ("role" in t or "from" in t) for t in v):
        turns = _turns(v, fld)
        texts = [_content_text(c, fld) for r, c in turns if r == "assistant"]
        if not texts:
            raise Skip(fld, "no assistant turn in the response")
        return "\n".join(texts)
    raise Skip(fld, f"expected a response text or assistant turn(s), got {type(v).__name__}")


def _row_images(row: dict, ctx: RowContext, *keys: str):
    imgs_v, _ = _first(row, *(keys or ("images", "image", "image_path", "image_paths")))
    return ctx.images_from_value(imgs_v) if imgs_v is not None else []


def chat_row(row: dict, ctx: RowContext, turns: list[tuple[str, Any]], *, tkey: str = "messages",
             images: list | None = None, system: str | None = None, response: str | None = None,
             chosen: str | None = None, rejected: str | None = None, layout: str = "messages") -> dict:
    """The row with ``_prompt`` (and ``_responses`` or ``_chosen``/``_rejected``) built from chat turns.

    Without an explicit ``response``/``chosen``, a final assistant turn becomes the response (SFT target);
    ``<image>`` placeholders or image parts place the images, else they go before the first user text."""
    images = images or []
    norm = list(turns)
    if response is None and chosen is None and norm and norm[-1][0] == "assistant":
        response = _content_text(norm.pop()[1], tkey)
    if system and not any(r == "system" for r, _ in norm):
        norm.insert(0, ("system", system))
    if not norm:
        raise Skip(tkey, "no prompt turns before the assistant's answer")
    n_placeholders = sum(c.count("<image>") if isinstance(c, str) else
                         sum(1 for p in c if isinstance(p, dict) and p.get("type") in ("image", "image_url"))
                         if isinstance(c, list) else 0 for _, c in norm)
    if n_placeholders and n_placeholders != len(images):
        raise Skip("images", f"{n_placeholders} image placeholder(s) in the turns but {len(images)} image(s)",
                   "each <image> (or image part) needs one entry in 'images'")
    users = [i for i, (r, _) in enumerate(norm) if r == "user"]
    if not users:
        raise Skip(tkey, "no user turn")
    prompt: list[Message] = []
    k = 0
    for i, (role, content) in enumerate(norm):
        parts: list[Part] = []
        if not n_placeholders and images and i == users[0]:
            parts += [Part("image", index=j) for j in range(len(images))]
        if isinstance(content, str):
            pieces = content.split("<image>")
            for j, piece in enumerate(pieces):
                if piece.strip():
                    parts.append(Part("text", text=piece.strip("\n")))
                if j < len(pieces) - 1:
                    parts.append(Part("image", index=k))
                    k += 1
        elif isinstance(content, list):
            for p in content:
                if isinstance(p, dict) and p.get("type") == "text":
                    parts.append(Part("text", text=str(p.get("text", ""))))
                elif isinstance(p, dict) and p.get("type") in ("image", "image_url"):
                    parts.append(Part("image", index=k))
                    k += 1
        else:
            raise Skip(f"{tkey}[{i}].content", f"expected text or a list of parts, got {type(content).__name__}")
        prompt.append(Message(role, parts))
    answer, _ = _first(row, "answer", "final_answer", "ground_truth")
    out = dict(row)
    out.update(_prompt=prompt, _images=images, _answer_type=row.get("answer_type") or ctx.card.answer_type,
               _answer=scalar_to_str(answer) if answer is not None else "", _meta={"layout": layout})
    if isinstance(row.get("choices"), list) and row["choices"]:  # our exports carry a choice question's options
        out["_choices"] = [scalar_to_str(c) or "" for c in row["choices"]]
    origin = {"origin": "dataset"}
    if chosen is not None or rejected is not None:
        if chosen is None or rejected is None:
            raise Skip("chosen" if chosen is None else "rejected", "a preference row needs both chosen and rejected")
        out["_chosen"] = Response(text=chosen, finish_reason="stop", meta=origin)
        out["_rejected"] = Response(text=rejected, finish_reason="stop", meta=dict(origin))
    elif response is not None:
        out["_responses"] = [Response(text=response, finish_reason="stop", meta=origin)]
    return out


def messages(row: dict, ctx: RowContext) -> dict:
    """Generic chat / ShareGPT rows: ``messages``/``conversations`` with ``role``/``content`` or
    ``from``/``value``; a top-level ``system``; images from ``images``/``image``; ``<image>``
    placeholders place them. The last assistant turn becomes the sample's response (an SFT target);
    earlier turns the prompt. Preference rows (``chosen``/``rejected`` turns) become pairs. Rows in the
    other tools' layouts go to their readers (TRL ``prompt``/``chosen``, ms-swift ``rejected_response`` /
    ``query``, LLaMA-Factory alpaca ``instruction``), so this one card reads every chat layout."""
    turns, tkey = _first(row, "messages", "conversations", "conversation", "dialog")
    if row.get("rejected_response") is not None or (turns is None and row.get("query") is not None):
        return swift(row, ctx)  # ms-swift's preference / query-response rows: never read as plain chat
    if turns is None and (row.get("prompt") is not None or row.get("chosen") is not None):
        return trl(row, ctx)
    if turns is None and row.get("instruction") is not None:
        return llamafactory(row, ctx)
    if not isinstance(turns, list) or not turns:
        raise Skip("messages", "missing the chat turns", "rows need 'messages' or 'conversations': a list of turns")
    norm = _turns(turns, tkey)
    chosen = _reply(row["chosen"], "chosen") if row.get("chosen") is not None else None
    rejected = _reply(row["rejected"], "rejected") if row.get("rejected") is not None else None
    system = row.get("system") if isinstance(row.get("system"), str) and row["system"].strip() else None
    return chat_row(row, ctx, norm, tkey=tkey, images=_row_images(row, ctx), system=system, chosen=chosen,
                    rejected=rejected, layout="sharegpt" if tkey == "conversations" else "messages")


def _common_prefix(a: list[tuple[str, Any]], b: list[tuple[str, Any]]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def trl(row: dict, ctx: RowContext) -> dict:
    """TRL's dataset layouts (https://huggingface.co/docs/trl/dataset_formats), standard or conversational:
    ``messages`` (language modelling), ``prompt`` + ``completion`` (SFT), ``prompt`` + ``chosen`` +
    ``rejected`` (preference; without ``prompt`` the shared turns of chosen and rejected are the prompt),
    ``prompt`` alone (prompt-only, e.g. GRPO); images from ``images`` / ``image``."""
    images = _row_images(row, ctx)
    system = row.get("system") if isinstance(row.get("system"), str) else None
    if row.get("messages") is not None and row.get("prompt") is None:
        return messages(row, ctx)
    if row.get("chosen") is not None and row.get("rejected") is not None:
        prompt = row.get("prompt")
        if prompt is None:  # implicit prompt: conversational chosen/rejected share the prompt turns
            if not (isinstance(row["chosen"], list) and isinstance(row["rejected"], list)):
                raise Skip("prompt", "a standard (text) preference row without 'prompt'",
                           "an implicit prompt needs conversational chosen/rejected (lists of turns)")
            c, r = _turns(row["chosen"], "chosen"), _turns(row["rejected"], "rejected")
            n = _common_prefix(c, r)
            if n == 0 or n >= min(len(c), len(r)):
                raise Skip("chosen", "chosen and rejected share no prompt turns (or no reply follows them)")
            turns = c[:n]
            chosen = _reply([{"role": x, "content": y} for x, y in c[n:]], "chosen")
            rejected = _reply([{"role": x, "content": y} for x, y in r[n:]], "rejected")
            return chat_row(row, ctx, turns, tkey="chosen", images=images, system=system, chosen=chosen,
                            rejected=rejected, layout="trl-preference")
        turns = [("user", prompt)] if isinstance(prompt, str) else _turns(prompt, "prompt")
        return chat_row(row, ctx, turns, tkey="prompt", images=images, system=system,
                        chosen=_reply(row["chosen"], "chosen"), rejected=_reply(row["rejected"], "rejected"),
                        layout="trl-preference")
    prompt = row.get("prompt")
    if prompt is not None:
        turns = [("user", prompt)] if isinstance(prompt, str) else _turns(prompt, "prompt")
        comp = row.get("completion")
        response = _reply(comp, "completion") if comp is not None else None
        return chat_row(row, ctx, turns, tkey="prompt", images=images, system=system, response=response,
                        layout="trl-prompt-completion" if comp is not None else "trl-prompt-only")
    if isinstance(row.get("text"), str):
        raise Skip("text", "a language-modelling row (plain 'text') has no prompt / response split",
                   "give 'prompt' + 'completion' or 'messages' rows")
    raise Skip("prompt", "not a TRL row: no 'messages', 'prompt' (+ 'completion'), or 'chosen' + 'rejected'",
               f"present columns: {sorted(k for k in row if isinstance(k, str))[:15]}")


def swift(row: dict, ctx: RowContext) -> dict:
    """ms-swift's layout: ``messages`` (role/content, ``<image>`` placeholders) + ``images``; a
    ``rejected_response`` makes a DPO pair with the last assistant turn as chosen; the older
    ``query`` / ``response`` / ``history`` / ``system`` columns are read too."""
    images = _row_images(row, ctx)
    if row.get("messages") is not None:
        turns = _turns(row["messages"], "messages")
    elif row.get("query") is not None:
        turns = []
        for i, h in enumerate(row.get("history") or []):
            if not (isinstance(h, (list, tuple)) and len(h) == 2):
                raise Skip(f"history[{i}]", "expected a [query, response] pair")
            turns += [("user", h[0]), ("assistant", h[1])]
        turns.append(("user", row["query"]))
        if row.get("response") is not None:
            turns.append(("assistant", row["response"]))
    else:
        raise Skip("messages", "missing the chat turns", "ms-swift rows need 'messages' (or 'query'/'response')")
    system = row.get("system") if isinstance(row.get("system"), str) else None
    rej = row.get("rejected_response")
    if rej is not None:
        if not turns or turns[-1][0] != "assistant":
            raise Skip("messages", "a row with 'rejected_response' needs a final assistant turn (the chosen reply)")
        chosen = _content_text(turns.pop()[1], "messages")
        return chat_row(row, ctx, turns, images=images, system=system, chosen=chosen,
                        rejected=_reply(rej, "rejected_response"), layout="swift-dpo")
    return chat_row(row, ctx, turns, images=images, system=system, layout="swift")


def sharegpt(row: dict, ctx: RowContext) -> dict:
    """ShareGPT / LLaVA: ``conversations`` of ``from``/``value`` turns, a top-level ``system``, images
    (``image`` / ``images``); LLaMA-Factory's preference variant with ``chosen`` / ``rejected`` turns."""
    return messages(row, ctx)


LF_DEFAULT_COLUMNS = {
    "alpaca": {"prompt": "instruction", "query": "input", "response": "output", "history": None, "system": None,
               "images": "images", "chosen": "chosen", "rejected": "rejected"},
    "sharegpt": {"messages": "conversations", "system": "system", "images": "images", "chosen": "chosen",
                 "rejected": "rejected"},
}
LF_DEFAULT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                   "system_tag": "system", "observation_tag": "observation", "function_tag": "function_call"}


def llamafactory(row: dict, ctx: RowContext) -> dict:
    """LLaMA-Factory's dataset layouts (data/README.md there): ``alpaca`` (instruction / input / output,
    system, history of [query, response] pairs, images; ranking rows with chosen / rejected texts) and
    ``sharegpt`` (conversations with its role tags, system, images; ranking rows with chosen / rejected
    turns). A ``dataset_info.json`` beside the data (or in the ``--src`` directory) gives each file's
    formatting, ``columns`` and ``tags``; without one the layout is read from the row's columns."""
    entry = llamafactory_entry(ctx.raw.path, ctx.raw.root) or {}
    out = _llamafactory(row, ctx, entry)
    if entry.get("name"):
        out["_meta"] = {**out.get("_meta", {}), "dataset": entry["name"]}
    return out


def _llamafactory(row: dict, ctx: RowContext, entry: dict) -> dict:
    formatting = entry.get("formatting") or ctx.opt("formatting") or (
        "sharegpt" if any(k in row for k in ("conversations", "messages")) else "alpaca")
    if formatting not in LF_DEFAULT_COLUMNS:
        raise Skip("formatting", f"unknown LLaMA-Factory formatting {formatting!r}", "use alpaca or sharegpt")
    cols = {**LF_DEFAULT_COLUMNS[formatting], **(entry.get("columns") or {})}
    if formatting == "sharegpt" and "messages" not in (entry.get("columns") or {}) and "conversations" not in row:
        cols["messages"] = "messages"
    images = _row_images(row, ctx, cols["images"]) if cols.get("images") else []
    system = row.get(cols["system"]) if cols.get("system") else None
    system = system if isinstance(system, str) and system.strip() else None
    ranking = bool(entry.get("ranking")) or (row.get(cols.get("chosen") or "") is not None
                                             and row.get(cols.get("rejected") or "") is not None)
    if formatting == "alpaca":
        instr = row.get(cols["prompt"]) if cols.get("prompt") else None
        if not isinstance(instr, str) or not instr.strip():
            raise Skip(str(cols.get("prompt")), "missing the instruction text")
        query = row.get(cols["query"]) if cols.get("query") else None
        text = instr + ("\n" + query if isinstance(query, str) and query.strip() else "")
        turns: list[tuple[str, Any]] = []
        for i, h in enumerate((row.get(cols["history"]) if cols.get("history") else None) or []):
            if not (isinstance(h, (list, tuple)) and len(h) == 2):
                raise Skip(f"{cols['history']}[{i}]", "expected a [query, response] pair")
            turns += [("user", h[0]), ("assistant", h[1])]
        turns.append(("user", text))
        if ranking:
            return chat_row(row, ctx, turns, tkey=cols["prompt"], images=images, system=system,
                            chosen=_reply(row.get(cols["chosen"]), cols["chosen"]),
                            rejected=_reply(row.get(cols["rejected"]), cols["rejected"]), layout="llamafactory-alpaca")
        out = row.get(cols["response"]) if cols.get("response") else None
        response = _reply(out, cols["response"]) if out is not None else None
        if isinstance(out, list) and out and isinstance(out[0], str):  # ranking-style [chosen, rejected] output
            raise Skip(cols["response"], "a list of outputs", "mark the dataset 'ranking: true' in dataset_info.json")
        return chat_row(row, ctx, turns, tkey=cols["prompt"], images=images, system=system, response=response,
                        layout="llamafactory-alpaca")
    tags = {**LF_DEFAULT_TAGS, **(entry.get("tags") or {})}
    roles = {str(tags["user_tag"]).lower(): "user", str(tags["assistant_tag"]).lower(): "assistant",
             str(tags["system_tag"]).lower(): "system"}
    tcol = cols["messages"]
    turns_v = row.get(tcol)
    if not isinstance(turns_v, list) or not turns_v:
        raise Skip(tcol, "missing the chat turns", f"the dataset's 'messages' column is {tcol!r}")
    if "role" in turns_v[0] and tags["role_tag"] == "from" and "from" not in turns_v[0]:
        tags.update(role_tag="role", content_tag="content")  # OpenAI-style turns under sharegpt formatting
        roles.update(ROLE_MAP)
    turns = _turns(turns_v, tcol, role_tag=tags["role_tag"], content_tag=tags["content_tag"], roles=roles)

    def reply(c):
        v = row.get(c)
        if isinstance(v, dict):
            return _content_text(v.get(tags["content_tag"], v.get("content", v.get("value"))), c)
        return _reply(v, c)

    if ranking:
        return chat_row(row, ctx, turns, tkey=tcol, images=images, system=system, chosen=reply(cols["chosen"]),
                        rejected=reply(cols["rejected"]), layout="llamafactory-sharegpt")
    return chat_row(row, ctx, turns, tkey=tcol, images=images, system=system, layout="llamafactory-sharegpt")


ADAPTERS = {
    "mathvista": mathvista,
    "geoqa": geoqa,
    "geometry3k": geometry3k,
    "olympiadbench": olympiadbench,
    "taco": taco,
    "messages": messages,
    "trl": trl,
    "sharegpt": sharegpt,
    "llamafactory": llamafactory,
    "swift": swift,
}
"""Built-in row hooks by name (a card's ``adapter:``)."""
