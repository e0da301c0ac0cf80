"""``mmredstar verify IN.jsonl --out OUT.jsonl``: score responses with the rule reward.

Each input line is either a flat record with ``response``, ``answer``, ``answer_type`` and where
needed ``choices`` / ``tests`` (optional ``finish_reason``, ``meta``), written back with ``verdict``,
``reward``, ``extracted`` and ``reason`` added; or a full sample record with ``responses``, written
back with every response verified in place (so curation files can be re-verified). A bad line never
stops the run: it is written with verdict ``error`` and the reason. Output is streamed to
``OUT.partial`` and renamed when complete; a rerun after a crash resumes after the last written line.

    mmredstar verify responses.jsonl --out scored.jsonl --workers 4
    mmredstar verify cases.jsonl --out scored.jsonl --mode lenient --opt tuple_order=strict

Each output line (and ``meta.math_mode`` of responses verified in place) and the ``--summary`` record the
math mode used; the summary and the closing message also state the code sandbox's isolation.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter, deque

import click

from ..io import iter_jsonl, write_json
from ..schema import CodeTests, DataError, Message, Sample, Verdict, validate_record
from . import verification_mode, verify_many
from .exec.sandbox import describe

MODES = ("strict", "lenient", "math_verify")
"""--mode: how math answers are judged (``mmredstar.verify.math``): ``strict`` (default; exact references
exact, decimals within rel. 1e-4), ``lenient`` (roundings of exact values pass), ``math_verify`` (math-verify's
own verdict). ``--fast`` turns the sympy fallback off; ``--opt key=value`` sets single options."""


def error_verdict(sample: Sample, text: str, finish_reason=None, **_) -> Verdict:
    """Verifier for input lines that could not be read: an error verdict carrying the reason."""
    return Verdict("error", -1.0, None, sample.meta.get("error", "bad input line"))


def _bad(reason: str) -> Sample:
    return Sample(prompt=[], answer_type="text", answer="", id="bad",
                  meta={"verifier": "mmredstar.verify.cli:error_verdict", "error": reason})


def flat_sample(d: dict, where: str) -> Sample:
    """The Sample a flat ``{response, answer, answer_type, ...}`` line stands for (raises ValueError)."""
    at = d.get("answer_type")
    if at not in ("math", "numeric", "choice", "code", "text"):
        raise ValueError(f"{where}: field 'answer_type': {at!r} is not one of math, numeric, choice, code, text")
    if not isinstance(d.get("response"), str):
        raise ValueError(f"{where}: field 'response': expected a string, got {type(d.get('response')).__name__}")
    tests = d.get("tests")
    if isinstance(tests, str):
        try:
            tests = json.loads(tests)
        except ValueError as e:
            raise ValueError(f"{where}: field 'tests': not valid JSON ({e})") from None
    if at == "code":
        if not isinstance(tests, dict) or not isinstance(tests.get("inputs"), list) or \
                not isinstance(tests.get("outputs"), list):
            raise ValueError(f"{where}: field 'tests': code answers need {{inputs: [...], outputs: [...]}}")
        if len(tests["inputs"]) != len(tests["outputs"]):
            raise ValueError(f"{where}: field 'tests': {len(tests['inputs'])} inputs but {len(tests['outputs'])} outputs")
    elif d.get("answer") is None:
        raise ValueError(f"{where}: field 'answer': missing reference answer")
    if at == "choice" and not isinstance(d.get("choices"), list):
        raise ValueError(f"{where}: field 'choices': a choice answer needs the list of choices")
    q = d.get("question") or d.get("prompt") or ""
    meta = d.get("meta") if isinstance(d.get("meta"), dict) else {}
    return Sample(prompt=[Message.make("user", q if isinstance(q, str) else json.dumps(q))], answer_type=at,
                  answer=None if d.get("answer") is None else str(d["answer"]), choices=d.get("choices"),
                  tests=CodeTests(tests["inputs"], tests["outputs"], tests.get("fn_name")) if isinstance(tests, dict) else None,
                  meta=dict(meta), id=str(d.get("id") or "line"))


def _parse_opts(opts: tuple[str, ...]) -> dict:
    out = {}
    for o in opts:
        if "=" not in o:
            raise click.BadParameter(f"--opt {o!r}: expected key=value")
        k, v = o.split("=", 1)
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def _resume_point(partial: str) -> int:
    """Complete lines already in ``partial`` (a torn last line is cut off)."""
    if not os.path.exists(partial):
        return 0
    with open(partial, "rb+") as f:
        data = f.read()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            f.seek(keep)
            f.truncate()
    return data[:keep].count(b"\n")


def check_paths(inp: str, out: str) -> None:
    """Refuse, with what to do, an output that would overwrite the input or cannot be written."""
    if os.path.exists(out) and os.path.samefile(inp, out) or os.path.realpath(inp) == os.path.realpath(out):
        raise ValueError(f"--out {out} is the input file: write the verdicts elsewhere (the input would be lost)")
    if os.path.isdir(out):
        raise ValueError(f"--out {out} is a directory: give a file name, e.g. {os.path.join(out, 'scored.jsonl')}")
    parent = os.path.dirname(os.path.abspath(out))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise ValueError(f"--out {out}: {parent} is a file, not a directory")
    if not os.path.isdir(parent):
        raise ValueError(f"--out {out}: the directory {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: the directory {parent} is not writable by this user")
    if os.path.getsize(inp) == 0:
        raise ValueError(f"{inp} is empty (0 bytes): nothing to verify")
    if not inp.endswith(".gz"):
        with open(inp, "rb") as f:
            for n, raw in enumerate(f, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ValueError(f"{inp}:{n}: not UTF-8 ({e.reason} at column {e.start + 1}); re-encode the "
                                     "file as UTF-8 (e.g. iconv -f latin1 -t utf-8 IN > IN.utf8.jsonl)") from None


def _line_text(line: dict) -> str:
    """One output line; a lone surrogate (e.g. ``"\\ud83d"`` in the input) is written \\u-escaped."""
    s = json.dumps(line, ensure_ascii=False)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = json.dumps(line)
    return s + "\n"


def _counts_of(partial: str, n: int) -> Counter:
    """Verdict counts of the first ``n`` lines already written (a resumed run reports all lines)."""
    c: Counter = Counter()
    for k, (_, d, _) in enumerate(iter_jsonl(partial, lone_surrogates=True)):
        if k >= n:
            break
        if isinstance(d, dict) and "verdict" in d:
            c[d["verdict"]] += 1
        elif isinstance(d, dict):
            for r in d.get("responses") or []:
                if isinstance(r, dict) and r.get("verdict"):
                    c[r["verdict"]] += 1
    return c


def run_verify(inp: str, out: str, *, workers: int = 0, options: dict | None = None, progress: bool = True,
               force: bool = False) -> Counter:
    """Verify every line of ``inp`` into ``out`` (see the module docstring); returns verdict counts (of
    every line, the resumed ones included). Raises ValueError for an output it must not or cannot write."""
    from tqdm import tqdm

    check_paths(inp, out)
    options = dict(options or {})
    mode = verification_mode(options)["math_mode"]
    partial = out + ".partial"
    if force and os.path.exists(partial):
        os.unlink(partial)
    done = _resume_point(partial)
    counts: Counter = _counts_of(partial, done) if done else Counter()
    pending: deque = deque()      # (kind, record, n) in input order

    def triples():
        for lineno, d, prob in iter_jsonl(inp, lone_surrogates=True):  # written back escaped
            if lineno <= done_lines[0]:
                continue
            where = f"{inp}:{lineno}"
            if prob is not None:
                pending.append(("bad", {"line": lineno}, 1))
                yield _bad(str(prob)), "", None
                continue
            if not isinstance(d, dict):
                pending.append(("bad", {"line": lineno}, 1))
                yield _bad(f"{where}: expected a JSON object"), "", None
                continue
            if "response" not in d and isinstance(d.get("responses"), list):
                probs = validate_record(d, file=inp, line=lineno)
                if probs:
                    pending.append(("bad", dict(d), 1))
                    yield _bad(str(DataError(probs))), "", None
                    continue
                s = Sample.from_dict(d, file=inp, line=lineno)
                pending.append(("sample", s, len(s.responses)))
                for r in s.responses:
                    yield s, r.text, r.finish_reason
                continue
            try:
                s = flat_sample(d, where)
            except ValueError as e:
                pending.append(("bad", dict(d), 1))
                yield _bad(str(e)), "", None
                continue
            pending.append(("flat", d, 1))
            yield s, d["response"], d.get("finish_reason")

    # count only lines that hold something, the way iter_jsonl numbers them
    done_lines = [0]
    if done:
        n = 0
        for lineno, _, _ in iter_jsonl(inp):
            n += 1
            if n == done:
                done_lines[0] = lineno
                break
    total = sum(1 for _ in iter_jsonl(inp)) if progress else None
    bar = tqdm(total=total, initial=done, desc="verify", unit="line", disable=not progress, file=sys.stderr)
    verdicts = verify_many(triples(), workers=workers, **options)
    with open(partial, "a", encoding="utf-8") as f:
        def flush_empty():
            # samples without responses get no verdicts: write them through when they reach the head
            while pending and pending[0][0] == "sample" and pending[0][2] == 0:
                f.write(_line_text(pending.popleft()[1].to_dict()))
                bar.update(1)

        for v in verdicts:
            flush_empty()
            kind, rec, n = pending.popleft()
            if kind == "sample":
                got = [v] + [next(verdicts) for _ in range(n - 1)]
                for r, vv in zip(rec.responses, got, strict=False):
                    vv.apply(r)
                    if rec.answer_type in ("math", "numeric"):
                        r.meta["math_mode"] = rec.meta.get("math_mode") or mode
                    counts[vv.verdict] += 1
                line = rec.to_dict()
            else:
                line = dict(rec)
                line.update(verdict=v.verdict, reward=v.reward, extracted=v.extracted, reason=v.reason)
                if line.get("answer_type") in ("math", "numeric"):
                    meta = line.get("meta") if isinstance(line.get("meta"), dict) else {}
                    line["math_mode"] = meta.get("math_mode") or mode
                counts[v.verdict] += 1
            f.write(_line_text(line))
            f.flush()
            bar.update(1)
        flush_empty()
        f.flush()
        os.fsync(f.fileno())
    bar.close()
    os.replace(partial, out)
    return counts


@click.command("verify")
@click.argument("inp", metavar="IN.jsonl", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Output JSONL.")
@click.option("--workers", "-w", default=0, show_default=True, help="Worker processes (0: in this process).")
@click.option("--mode", type=click.Choice(MODES), default="strict", show_default=True,
              help="How math answers are judged: strict (exact references exact; decimals rel. 1e-4), lenient "
                   "(roundings of exact values pass), math_verify (math-verify's own verdict).")
@click.option("--fast", is_flag=True, help="No sympy fallback (undecided math answers are wrong).")
@click.option("--opt", "opts", multiple=True, metavar="KEY=VALUE",
              help="Verifier option, e.g. --opt tuple_order=strict --opt timeout=10 --opt tolerance=0.01 (repeatable).")
@click.option("--summary", type=click.Path(dir_okay=False), default=None, help="Also write the counts as JSON.")
@click.option("--force", is_flag=True, help="Start over instead of resuming OUT.partial.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def verify(inp, out, workers, mode, fast, opts, summary, force, quiet):
    """Score responses (math, choice, code, text) and write verdict, reward, extracted and reason."""
    options = {"math_mode": mode, **({"sympy": False} if fast else {}), **_parse_opts(opts)}
    try:
        counts = run_verify(inp, out, workers=workers, options=options, progress=not quiet, force=force)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    total = sum(counts.values())
    click.echo(f"verified {total} responses -> {out} (math mode {verification_mode(options)['math_mode']})")
    for k in ("correct", "wrong", "no_answer", "error"):
        n = counts.get(k, 0)
        click.echo(f"  {k:<10} {n:>8}  {n / total:6.1%}" if total else f"  {k:<10} {n:>8}")
    sandbox = describe()
    click.echo(f"  code sandbox: {sandbox.get('summary') or sandbox.get('isolation')}")
    if summary:
        write_json(summary, {"input": inp, "output": out, "verification": verification_mode(options),
                             "options": options, "sandbox": sandbox, "counts": dict(counts), "total": total})
