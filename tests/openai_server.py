"""A tiny OpenAI-compatible chat-completions server for tests (stdlib ``http.server``, one real process).

    python tests/openai_server.py --port-file /tmp/port --log /tmp/requests.jsonl \\
        --card geoqa --src tests/assets/geoqa/qa/test_questions.jsonl --image-dir tests/assets/geoqa/qa/images

``POST /v1/chat/completions`` answers with scripted long chain-of-thought: the question is looked up
(normalised text) among the given samples and answered by ``mmredstar.generate.scripted``
(deterministic per request seed and choice index); an unknown question gets a reply without an answer.
``GET /v1/models`` lists the model. Every request is logged as one JSON line (status, n, seed, the
question's hash, each image's MIME type and whether its base64 PNG/JPEG decodes) so tests can count
requests and check what arrived. Fault injection: ``--fail-first K`` (the first K attempts of every
distinct request get 500 / 429 alternately, 429 with ``Retry-After: 0``), ``--slow-first K
--slow-seconds S`` (the first K attempts sleep S seconds: client timeouts), ``--delay S`` (every
request), ``--refuse-n`` (400 for ``n > 1``), ``--max-n M`` (at most M choices), ``--reasoning``
(thinking in ``reasoning_content``). A difficulty-rating prompt ("Rate the difficulty ...") is answered
with a 1-10 score fixed by the prompt's hash, in one of several formats (``scripted_difficulty``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _qhash(text: str) -> str:
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()[:16]


DIFFICULTY_FORMATS = ["Difficulty: {d}", "I would rate this {d}/10.", "**{d}**", '{{"difficulty": {d}}}',
                      "<think>Maybe 2/10? No, harder.</think>\nFinal difficulty score: {d}"]


def scripted_difficulty(question: str) -> tuple[int, str]:
    """(difficulty 1-10, the reply stating it) for a difficulty-rating prompt: fixed by the question's hash."""
    h = int(_qhash(question), 16)
    d = 1 + h % 10
    return d, DIFFICULTY_FORMATS[(h // 10) % len(DIFFICULTY_FORMATS)].format(d=d)


def check_image_url(url: str) -> dict:
    """{"mime", "ok", "bytes"} for a data URL: ok when the base64 decodes to an image PIL can verify."""
    m = re.fullmatch(r"data:(image/[a-z+.-]+);base64,(.*)", url or "", re.S)
    if not m:
        return {"mime": None, "ok": False, "error": "not a base64 data URL"}
    try:
        raw = base64.b64decode(m.group(2), validate=True)
    except (binascii.Error, ValueError):
        return {"mime": m.group(1), "ok": False, "error": "bad base64"}
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as im:
            fmt = im.format
            im.verify()
    except Exception as e:  # noqa: BLE001
        return {"mime": m.group(1), "ok": False, "error": f"not an image: {e}"}
    return {"mime": m.group(1), "ok": True, "format": fmt, "bytes": len(raw)}


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.attempts: dict[str, int] = {}
        self.samples: dict[str, object] = {}
        from mmredstar.generate.scripted import ScriptedConfig

        self.scripted = ScriptedConfig(error_rate=args.error_rate, no_answer_rate=args.no_answer_rate,
                                       think=True, pad_to_chars=args.pad_to_chars)
        if args.card:
            from mmredstar.data import iter_card

            for src in args.src:
                for s in iter_card(args.card, src, image_dir=args.image_dir):
                    self.samples[_qhash(s.question)] = s
        for path in args.samples or []:
            from mmredstar.io import read_samples

            for s in read_samples(path):
                self.samples[_qhash(s.question)] = s
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None

    def write_log(self, d: dict) -> None:
        if self.log:
            with self.lock:
                self.log.write(json.dumps(d) + "\n")
                self.log.flush()


def make_handler(state: State):
    args = state.args

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def _send(self, status: int, obj: dict, headers: dict | None = None):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self):
            if self.path.rstrip("/").endswith("/models"):
                return self._send(200, {"object": "list", "data": [{"id": args.model, "object": "model"}]})
            self._send(404, {"error": {"message": "not found"}})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._send(404, {"error": {"message": f"unknown path {self.path}"}})
            try:
                body = json.loads(raw)
            except ValueError:
                return self._send(400, {"error": {"message": "body is not JSON"}})
            msgs = body.get("messages") or []
            question, images = "", []
            for m in msgs:
                c = m.get("content")
                if isinstance(c, list):
                    for p in c:
                        if p.get("type") == "image_url":
                            images.append(check_image_url((p.get("image_url") or {}).get("url", "")))
                if m.get("role") == "user":
                    question = c if isinstance(c, str) else "".join(p.get("text", "") for p in c if p.get("type") == "text")
            n, seed = int(body.get("n") or 1), body.get("seed")
            key = hashlib.sha256(raw).hexdigest()
            with state.lock:
                attempt = state.attempts.get(key, 0)
                state.attempts[key] = attempt + 1
            entry = {"t": time.time(), "pid": os.getpid(), "question": _qhash(question), "n": n, "seed": seed,
                     "model": body.get("model"), "images": images, "attempt": attempt,
                     "temperature": body.get("temperature"), "max_tokens": body.get("max_tokens"),
                     "auth": self.headers.get("Authorization")}
            if args.delay:
                time.sleep(args.delay)
            if attempt < args.slow_first:
                time.sleep(args.slow_seconds)
            if attempt < args.fail_first:
                status = 500 if attempt % 2 == 0 else 429
                state.write_log({**entry, "status": status})
                return self._send(status, {"error": {"message": "injected failure"}},
                                  {"Retry-After": "0"} if status == 429 else None)
            if args.refuse_n and n > 1:
                state.write_log({**entry, "status": 400})
                return self._send(400, {"error": {"message": "n > 1 is not supported", "param": "n"}})
            if body.get("model") != args.model:
                state.write_log({**entry, "status": 404})
                return self._send(404, {"error": {"message": f"model {body.get('model')!r} does not exist"}})
            sample = state.samples.get(_qhash(question))
            choices = []
            from mmredstar.generate.scripted import write_response

            for j in range(min(n, args.max_n) if args.max_n else n):
                if "Rate the difficulty" in question:
                    text, finish = scripted_difficulty(question)[1], "stop"
                elif sample is not None:
                    text, finish, _ = write_response(sample, j, int(seed or 0), state.scripted)
                else:
                    text, finish = "I do not recognise this problem, so I cannot answer it.", "stop"
                msg = {"role": "assistant", "content": text}
                m = re.fullmatch(r"<think>\n(.*)\n</think>\n\n(.*)", text, re.S)
                if args.reasoning and m:
                    msg = {"role": "assistant", "content": m.group(2), "reasoning_content": m.group(1)}
                choices.append({"index": j, "message": msg, "finish_reason": finish})
            completion = sum(len(c["message"]["content"].split()) for c in choices)
            state.write_log({**entry, "status": 200})
            self._send(200, {"id": "chatcmpl-" + key[:12], "object": "chat.completion", "created": int(time.time()),
                             "model": args.model, "choices": choices,
                             "usage": {"prompt_tokens": len(question.split()), "completion_tokens": completion,
                                       "total_tokens": len(question.split()) + completion}})

    return Handler


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the bound port here (atomically) once serving")
    ap.add_argument("--log", help="append one JSON line per request")
    ap.add_argument("--model", default="scripted-qwq")
    ap.add_argument("--card"), ap.add_argument("--src", action="append", default=[])
    ap.add_argument("--image-dir"), ap.add_argument("--samples", action="append")
    ap.add_argument("--error-rate", type=float, default=0.3)
    ap.add_argument("--no-answer-rate", type=float, default=0.1)
    ap.add_argument("--pad-to-chars", type=int, default=0)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--slow-first", type=int, default=0)
    ap.add_argument("--slow-seconds", type=float, default=0.0)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--refuse-n", action="store_true")
    ap.add_argument("--max-n", type=int, default=0)
    ap.add_argument("--reasoning", action="store_true")
    args = ap.parse_args(argv)
    state = State(args)
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    print(f"serving on http://127.0.0.1:{port}/v1", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
