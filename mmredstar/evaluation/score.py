"""Score responses produced elsewhere (another harness, an API batch job) against a benchmark's answers.

    mmredstar eval score --bench aime24 --responses outputs.jsonl --out runs/scored
    mmredstar eval score --bench geoqa --data data/geoqa_test.jsonl --responses preds.jsonl --label my-vlm

The responses file is JSONL, one object per item::

    {"id": "60", "response": "... so the answer is \\\\boxed{204}."}
    {"id": "3f2a9c0e1b7d4a55", "responses": ["first sample ...", "second sample ..."]}     # n > 1

``id`` is either the dataset's own id (``meta.orig_id``, as each data card assigns it: AIME ``id``, MATH-500
``unique_id``, MathVista ``pid``, GeoQA ``question_id``, OlympiadBench ``id``, College Math
``<data_source>/<question_number>``; see the card's ``ids`` key) or mmredstar's sample ``id``. Optional
``finish_reason`` (or ``finish_reasons``) marks truncated responses. Nothing is dropped silently: lines
whose id the benchmark does not have are listed as ``unknown_ids``, malformed lines and repeated ids as
``problems`` (file:line: field), and benchmark items with no response as ``missing`` (scored as wrong,
so pass@1 is over the whole benchmark; ``pass@1_answered`` is over the answered items).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..io import iter_jsonl, write_json, write_jsonl
from ..schema import Problem, Response, Sample
from ..verify import verification_mode
from .metrics import aggregate
from .runner import ModelEntry, _item_record
from .spec import BenchSpec, load_bench_samples, load_spec


def id_index(samples: list[Sample]) -> dict[str, Sample]:
    """Map both ``Sample.id`` and ``meta.orig_id`` to the sample; an id naming two different samples is an error."""
    idx: dict[str, Sample] = {}
    for s in samples:
        for key in {s.id, str((s.meta or {}).get("orig_id"))} - {"None", ""}:
            other = idx.get(key)
            if other is not None and other.id != s.id:
                raise ValueError(f"id {key!r} names two benchmark items ({other.id}, {s.id}); use the sample ids")
            idx[key] = s
    return idx


def read_responses(path: str | os.PathLike) -> tuple[list[tuple[int, str, list[str], list]], list[Problem]]:
    """(line, id, texts, finish reasons) per line, and the problems of lines that cannot be used."""
    path = os.fspath(path)
    rows, problems = [], []
    # the shared reader: malformed JSON, non-UTF-8 bytes and lone surrogates are problems of their line
    for ln, d, prob in iter_jsonl(path):
        if prob is not None:
            problems.append(prob)
            continue
        if not isinstance(d, dict) or d.get("id") is None:
            problems.append(Problem(path, ln, "id", "missing", 'each line needs "id" (sample id or dataset id)'))
            continue
        if "responses" in d:
            texts = d["responses"]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or not texts:
                problems.append(Problem(path, ln, "responses", "expected a non-empty list of strings"))
                continue
        elif isinstance(d.get("response"), str):
            texts = [d["response"]]
        else:
            problems.append(Problem(path, ln, "response", "missing or not a string",
                                    'give "response": "..." or "responses": ["...", ...]'))
            continue
        fr = d.get("finish_reasons") or [d.get("finish_reason")] * len(texts)
        rows.append((ln, str(d["id"]), texts, list(fr)[:len(texts)] + [None] * (len(texts) - len(fr))))
    return rows, problems


def score_responses(bench: str | BenchSpec, responses: str | os.PathLike, *, data: str | os.PathLike | None = None,
                    out: str | os.PathLike | None = None, label: str | None = None) -> dict:
    """Score a responses file against a benchmark; returns the result (and writes it under ``out`` when given:
    ``OUT/<label>/<bench>/samples.jsonl``, ``result.json``, ``OUT/report.{json,md,png}``)."""
    spec = load_spec(bench)
    samples = load_bench_samples(spec, data)
    idx = id_index(samples)
    rows, problems = read_responses(responses)
    label = label or Path(responses).stem
    got: dict[str, tuple[int, list[str], list]] = {}
    unknown: list[str] = []
    for ln, rid, texts, fr in rows:
        s = idx.get(rid)
        if s is None:
            unknown.append(rid)
            continue
        if s.id in got:
            problems.append(Problem(os.fspath(responses), ln, "id",
                                    f"item {rid!r} already has responses (line {got[s.id][0]}); this line is ignored"))
            continue
        got[s.id] = (ln, texts, fr)
    items = []
    for s in samples:
        if s.id in got:
            _, texts, fr = got[s.id]
            rs = [Response(text=t, finish_reason=f if f in ("stop", "length", "error") else None)
                  for t, f in zip(texts, fr, strict=True)]
            items.append(_item_record(s, s, rs, spec))
        else:
            items.append({"id": s.id, "orig_id": (s.meta or {}).get("orig_id"), "answer": s.answer,
                          "answer_type": s.answer_type, "responses": [], "correct": 0, "n": 0})
    res = aggregate(items, spec.metrics)
    answered = [it for it in items if it["responses"]]
    res["pass@1_answered"] = aggregate(answered, ["pass@1"])["pass@1"] if answered else None
    result = {"model": os.fspath(responses), "label": label, "bench": spec.name, "backend": "outside",
              "data": spec.data_path(data), "metrics": spec.metrics,
              "verification": verification_mode(spec.verify), **res,
              "n_unknown": len(unknown), "unknown_ids": unknown[:100],
              "problems": [str(p) for p in problems][:100], "n_problems": len(problems)}
    if out is not None:
        from .report import write_report

        d = Path(out) / ModelEntry(model=label, label=label).label / spec.name
        d.mkdir(parents=True, exist_ok=True)
        write_jsonl(d / "samples.jsonl", items)
        write_json(d / "result.json", result)
        write_report(out, [result], title=f"Scored: {label}")
    return result
