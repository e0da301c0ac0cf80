"""The replay teacher: responses already on disk, matched to the samples being curated.

    teacher: {kind: replay, path: data/openthoughts_math.jsonl, match: auto}

Layouts read (``format: auto`` detects each row's layout):

- ``samples``: our own files (samples with ``responses``), e.g. an earlier run's ``units/`` or ``sft.jsonl``;
- ``rows``: released long-CoT sets with one problem per row: the question in ``problem`` / ``question`` /
  ``prompt`` / ``instruction`` / ``query`` / ``input``, the response(s) in ``response`` / ``generation`` /
  ``solution`` / ``output`` / ``completion`` / ``deepseek_solution`` or a list in ``generations`` /
  ``responses`` / ``outputs`` (override with ``question_field`` / ``response_field``);
- ``sharegpt``: ``{"conversations": [{"from": "human", "value": ...}, {"from": "gpt", "value": ...}]}``;
- ``messages``: ``{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}``.

Files: JSONL (.gz), JSON (a list of rows) and Parquet. Matching (``match``): ``id`` (the row's id
against ``Sample.id`` or ``meta.orig_id``), ``question`` (normalised question text: case, whitespace
and ``<image>`` tokens folded), or ``auto`` (id first, then question). A sample gets up to ``n`` of
its matches, in file order; ``stats()`` counts matched, unmatched and short prompts, and the report
counts prompts left without responses. The index is held in memory (a response set's size).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from ..io import expand_paths, iter_jsonl
from ..schema import DataError, Problem, Response, Sample
from . import SamplingParams, Teacher

QUESTION_KEYS = ("problem", "question", "prompt", "instruction", "query", "input", "Question", "Problem")
RESPONSE_KEYS = ("response", "generation", "solution", "output", "completion", "deepseek_solution",
                 "reasoning", "answer_cot", "Response")
RESPONSE_LIST_KEYS = ("generations", "responses", "outputs", "completions")
ID_KEYS = ("id", "problem_id", "question_id", "uid", "idx", "index")


@dataclass
class ReplayConfig:
    path: str | list[str] = ""
    """Response files, directories or globs."""
    format: str = "auto"
    """``auto`` | ``samples`` | ``rows`` | ``sharegpt`` | ``messages`` (see the module docstring)."""
    match: str = "auto"
    """``auto`` (id, then question text) | ``id`` | ``question``."""
    question_field: str | None = None
    """Column holding the question (``rows`` layout), when not one of the usual names."""
    response_field: str | None = None
    """Column holding the response (a string or a list of strings), when not one of the usual names."""
    id_field: str | None = None
    """Column holding the row id, when not one of the usual names."""
    model: str = "replay"
    """Name recorded as ``gen.model`` when the rows do not name their model."""


def normalize_question(text: str) -> str:
    """Case, whitespace and ``<image>`` placeholders folded: the question-text match key.

    >>> normalize_question("<image>\\n  What is  2+2? ")
    'what is 2+2?'
    """
    text = re.sub(r"<image(?:_\d+)?>", " ", text or "")
    return " ".join(text.lower().split())


def _content_text(c) -> str:
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "".join(p.get("text", "") for p in c if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _iter_rows(path: str):
    """(line or row number, dict or None, problem) over one file of plain rows."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        i = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1000):
            for r in batch.to_pylist():
                i += 1
                yield i, r, None
    elif path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        for i, r in enumerate(data if isinstance(data, list) else [data], 1):
            yield i, r, None
    else:
        yield from iter_jsonl(path)


class ReplayTeacher(Teacher):
    kind = "replay"
    Config = ReplayConfig

    def __init__(self, config):
        super().__init__(config)
        self._by_id: dict[str, list[dict]] | None = None
        self._by_q: dict[str, list[dict]] = {}

    def fingerprint(self) -> dict:
        fp = super().fingerprint()
        files = expand_paths(self.config.path) if self.config.path else []
        fp["files"] = [(os.path.basename(p), os.path.getsize(p), int(os.path.getmtime(p))) for p in files]
        return fp

    # -- index ------------------------------------------------------------------------------------
    def _parse_row(self, r: dict, where: str) -> tuple[list[str], str | None, list[dict]]:
        """(ids, question, responses) of one row."""
        c, fmt = self.config, self.config.format
        if not isinstance(r, dict):
            raise DataError(Problem(where.rsplit(":", 1)[0], None, "-", f"expected a JSON object per row, got {type(r).__name__}"))
        ids = []
        id_keys = [c.id_field] if c.id_field else list(ID_KEYS)
        for k in id_keys:
            if r.get(k) is not None and not isinstance(r.get(k), (dict, list)):
                ids.append(str(r[k]))
                break
        if isinstance(r.get("meta"), dict) and r["meta"].get("orig_id") is not None:
            ids.append(str(r["meta"]["orig_id"]))
        if fmt == "samples" or (fmt == "auto" and "prompt" in r and "answer_type" in r):
            q = ""
            for m in reversed(r.get("prompt") or []):
                if isinstance(m, dict) and m.get("role") == "user":
                    q = _content_text(m.get("content"))
                    break
            resps = [x for x in (r.get("responses") or []) if isinstance(x, dict) and isinstance(x.get("text"), str)]
            if not resps and isinstance(r.get("chosen"), dict):
                resps = [r["chosen"]]
            return ids, q, [dict(x) for x in resps]
        if fmt == "sharegpt" or (fmt == "auto" and isinstance(r.get("conversations"), list)):
            conv = r.get("conversations") or []
            return ids, *self._dialog([(m.get("from"), m.get("value")) for m in conv if isinstance(m, dict)],
                                      ("human", "user"), ("gpt", "assistant"), r)
        if fmt == "messages" or (fmt == "auto" and isinstance(r.get("messages"), list)):
            msgs = r.get("messages") or []
            return ids, *self._dialog([(m.get("role"), _content_text(m.get("content"))) for m in msgs if isinstance(m, dict)],
                                      ("user",), ("assistant",), r)
        qk = [c.question_field] if c.question_field else list(QUESTION_KEYS)
        q = next((r[k] for k in qk if isinstance(r.get(k), str)), None)
        texts: list[str] = []
        rk = [c.response_field] if c.response_field else list(RESPONSE_LIST_KEYS) + list(RESPONSE_KEYS)
        for k in rk:
            v = r.get(k)
            if isinstance(v, list) and all(isinstance(x, str) for x in v) and v:
                texts = list(v)
                break
            if isinstance(v, str) and v.strip():
                texts = [v]
                break
        model = r.get("model") or r.get("generator") or r.get("model_name")
        resps = [{"text": t, "gen": {"model": model} if isinstance(model, str) else {}} for t in texts]
        return ids, q, resps

    def _dialog(self, turns, user_roles, asst_roles, row):
        q, resps = None, []
        for role, text in turns:
            if role in user_roles:
                q, resps = text, []
            elif role in asst_roles and q is not None and isinstance(text, str):
                resps.append({"text": text})
        return q, resps

    def _load(self) -> None:
        if self._by_id is not None:
            return
        if not self.config.path:
            raise ValueError("replay teacher: set 'path' to the response files")
        self._by_id = {}
        for path in expand_paths(self.config.path):
            for line, r, prob in _iter_rows(path):
                if prob is not None:
                    raise DataError(prob)
                where = f"{path}:{line}"
                ids, q, resps = self._parse_row(r, where)
                if not resps:
                    self.count("rows_without_responses")
                    continue
                for x in resps:
                    x.setdefault("meta", {})
                    x["meta"] = {**(x.get("meta") or {}), "replay_from": f"{os.path.basename(path)}:{line}"}
                for i in ids:
                    self._by_id.setdefault(i, []).extend(resps)
                if q:
                    self._by_q.setdefault(normalize_question(q), []).extend(resps)
                self.count("rows")

    # -- matching ---------------------------------------------------------------------------------
    def matches(self, s: Sample) -> list[dict]:
        """The stored responses for one sample (by id, then by question text, per ``match``)."""
        self._load()
        m = self.config.match
        if m in ("auto", "id"):
            for key in (s.id, str(s.meta.get("orig_id")) if s.meta.get("orig_id") is not None else None):
                if key is not None and key in self._by_id:
                    return self._by_id[key]
        if m in ("auto", "question"):
            return self._by_q.get(normalize_question(s.question), [])
        return []

    def generate(self, samples: list[Sample], n: list[int], params: SamplingParams) -> list[list[Response]]:
        out = []
        for s, k in zip(samples, n, strict=True):
            found = self.matches(s)
            if not found:
                self.count("unmatched")
            elif len(found) < k:
                self.count("short")
            if found:
                self.count("matched")
            rs = []
            for j, d in enumerate(found[:k]):
                gen = dict(d.get("gen") or {})
                gen.update({"teacher": self.kind, "model": gen.get("model") or self.config.model, "n": k, "index": j})
                fr = d.get("finish_reason")
                rs.append(Response(text=d["text"], finish_reason=fr if fr in ("stop", "length", "error") else None,
                                   prompt_tokens=d.get("prompt_tokens"), completion_tokens=d.get("completion_tokens"),
                                   gen=gen, meta=dict(d.get("meta") or {})))
            out.append(rs)
        return out
