"""The OpenAI-compatible teacher: any chat-completions server (vLLM serve, SGLang, TGI, hosted APIs).

    # vllm serve Qwen/QwQ-32B --port 8000      (or: python -m sglang.launch_server --model ... --port 8000)
    teacher: {kind: openai, base_url: "http://localhost:8000/v1", model: Qwen/QwQ-32B, concurrency: 64}
    # one server per GPU group (or per node): requests spread over them, a dead one is skipped
    teacher: {kind: openai, base_url: ["http://node1:8000/v1", "http://node2:8000/v1"], model: Qwen/QwQ-32B}

How it talks to the server:

- async (httpx) with at most ``concurrency`` requests in flight per ``generate`` call (one work unit);
- ``n`` samples per request; when the server refuses ``n > 1`` (400/422) it falls back to ``n``
  single requests (seeds ``seed_j`` per sample and index) and remembers that for the run; when it
  returns fewer choices than asked, the rest are asked for one by one;
- retries with exponential backoff and jitter on 408/409/429/5xx, timeouts and connection errors
  (``Retry-After`` is honoured), up to ``max_retries``; then a ``TeacherError`` stops the unit (finished
  units stay on disk; the rerun continues);
- several servers: ``base_url`` may be a list (or a comma-separated string); requests go round-robin
  over the endpoints that are up; one that fails (connection error, timeout, 5xx/429) is marked down for
  ``failover_cooldown`` seconds and the request goes straight to the next live one (counted as
  ``failovers``, not as a retry); only when every endpoint is down does backoff start; per-endpoint
  successes are in ``stats()["endpoints"]``;
- images as base64 ``data:`` URLs in ``image_url`` parts (``messages.chat_messages``);
- a separate ``reasoning_content`` (vLLM/SGLang reasoning parsers) is joined back as
  ``<think>...</think>`` before the answer, so verifiers and filters see the whole response;
- usage: ``prompt_tokens`` always; ``completion_tokens`` per response when the request had one choice
  (with ``n > 1`` servers report only the total, kept in ``meta.usage``).

The API key is read from the environment variable named by ``api_key_env`` (never from the config).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from dataclasses import dataclass, field

from ..schema import Response, Sample
from . import SamplingParams, Teacher, TeacherError, gen_record, sample_seed
from .messages import chat_messages

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
FINISH_MAP = {"stop": "stop", "length": "length", "eos": "stop", "stop_sequence": "stop", "abort": "error",
              "error": "error", "content_filter": "error"}


@dataclass
class OpenAIConfig:
    base_url: str | list[str] = "http://localhost:8000/v1"
    """The server's OpenAI API root (requests go to ``{base_url}/chat/completions``); a list (or a
    comma-separated string) of roots serving the same model spreads requests over them round-robin and
    fails over when one dies."""
    model: str = ""
    """The served model name (as the server lists it in ``/v1/models``)."""
    api_key_env: str | None = "OPENAI_API_KEY"
    """Environment variable holding the API key (sent as a Bearer token when set); local servers need none."""
    system: str | None = None
    """A system prompt added to samples that have none (e.g. QwQ's "think step by step")."""
    concurrency: int = 32
    """Requests in flight at once per work unit (the server batches them)."""
    timeout: float = 600.0
    """Seconds a request may take (long CoT at 16k tokens takes minutes)."""
    connect_timeout: float = 10.0
    """Seconds to connect."""
    max_retries: int = 6
    """Retries of one request on 429/5xx/timeouts before the unit fails."""
    backoff: float = 1.0
    """First retry delay in seconds; doubles each retry (with jitter), capped by ``backoff_max``."""
    backoff_max: float = 60.0
    """Longest retry delay in seconds."""
    n_per_request: bool = True
    """Ask for all samples of a prompt in one request (``n``); false: one request per sample."""
    extra_body: dict = field(default_factory=dict)
    """Extra request fields (server-specific, e.g. ``{chat_template_kwargs: {enable_thinking: true}}``)."""
    failover_cooldown: float = 30.0
    """Seconds an endpoint that failed is skipped (several ``base_url``s) before it is tried again."""
    reasoning: str = "think_tags"
    """A separate ``reasoning_content`` is kept as ``<think>...</think>`` before the answer (``think_tags``)
    or dropped (``drop``)."""


def endpoints(base_url) -> list[str]:
    """The API roots of a ``base_url`` option: one string, a comma/space-separated string, or a list.

    >>> endpoints("http://a:1/v1, http://b:2/v1/")
    ['http://a:1/v1', 'http://b:2/v1']
    """
    items = base_url if isinstance(base_url, (list, tuple)) else str(base_url).replace(",", " ").split()
    out = [str(u).strip().rstrip("/") for u in items if str(u).strip()]
    if not out:
        raise TeacherError("openai teacher: 'base_url' is empty; give the server's API root, e.g. http://localhost:8000/v1")
    return out


class _Refused(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status, self.body = status, body


def run_coroutine(coro):
    """Run a coroutine to completion from sync code (in a helper thread when a loop is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}

    def target():
        try:
            box["v"] = asyncio.run(coro)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            box["e"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box["v"]


class OpenAITeacher(Teacher):
    kind = "openai"
    Config = OpenAIConfig
    VOLATILE = ("base_url", "api_key_env", "concurrency", "timeout", "connect_timeout", "max_retries", "backoff",
                "backoff_max", "n_per_request", "failover_cooldown")

    def __init__(self, config):
        super().__init__(config)
        self._n_ok: bool | None = None if config.n_per_request else False
        self._jitter = random.Random()
        self.urls = [u.rstrip("/") + "/chat/completions" for u in endpoints(config.base_url)]
        self._down_until = [0.0] * len(self.urls)
        self._next = 0
        self.endpoint_ok = [0] * len(self.urls)

    @property
    def url(self) -> str:
        return self.urls[0] if len(self.urls) == 1 else "[" + ", ".join(self.urls) + "]"

    def _pick(self) -> int:
        """The next endpoint that is up, round-robin; when all are down, the one back soonest."""
        now, k = time.monotonic(), len(self.urls)
        for _ in range(k):
            i = self._next % k
            self._next += 1
            if self._down_until[i] <= now:
                return i
        return min(range(k), key=lambda i: self._down_until[i])

    def _mark_down(self, i: int) -> bool:
        """Mark endpoint ``i`` down; True when another endpoint is up (fail over without waiting)."""
        if len(self.urls) == 1:
            return False
        now = time.monotonic()
        self._down_until[i] = now + self.config.failover_cooldown
        return any(d <= now for j, d in enumerate(self._down_until) if j != i)

    def stats(self) -> dict:
        d = super().stats()
        if len(self.urls) > 1:
            d["endpoints"] = {u: n for u, n in zip(self.urls, self.endpoint_ok, strict=True)}
        return d

    def _headers(self) -> dict:
        h = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env) if self.config.api_key_env else None
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    def _body(self, messages, n, seed, params: SamplingParams) -> dict:
        body = {"model": self.config.model, "messages": messages, "n": n, "temperature": params.temperature,
                "top_p": params.top_p, "max_tokens": params.max_tokens, "seed": seed}
        if params.stop:
            body["stop"] = params.stop
        if messages and messages[-1].get("role") == "assistant":  # an assistant prefix to continue (vLLM/SGLang)
            body.update(add_generation_prompt=False, continue_final_message=True)
        body.update(params.extra)
        body.update(self.config.extra_body)
        return body

    async def _post(self, client, body: dict) -> dict:
        import httpx

        attempt = 0
        while True:
            retry_after = None
            i = self._pick()
            url = self.urls[i]
            try:
                r = await client.post(url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                err = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                self.count("timeouts" if isinstance(e, httpx.TimeoutException) else "connection_errors")
            else:
                if r.status_code == 200:
                    try:
                        data = r.json()
                        if isinstance(data, dict) and isinstance(data.get("choices"), list):
                            self.count("requests_ok")
                            self.endpoint_ok[i] += 1
                            self._down_until[i] = 0.0
                            return data
                        err = f"malformed response (no 'choices'): {r.text[:200]}"
                    except ValueError:
                        err = f"malformed JSON response: {r.text[:200]}"
                    self.count("malformed")
                elif r.status_code in RETRY_STATUS:
                    err = f"HTTP {r.status_code}: {r.text[:200]}"
                    self.count(f"http_{r.status_code}")
                    ra = r.headers.get("retry-after")
                    try:
                        retry_after = float(ra) if ra else None
                    except ValueError:
                        retry_after = None
                else:
                    self.count(f"http_{r.status_code}")
                    raise _Refused(r.status_code, r.text)
            if self._mark_down(i):
                self.count("failovers")
                continue
            attempt += 1
            if attempt > self.config.max_retries:
                raise TeacherError(f"{self.url}: gave up after {self.config.max_retries} retries; last error ({url}): "
                                   f"{err}. Check the server (is it up, overloaded?), then rerun: finished units are kept.")
            self.count("retries")
            delay = min(self.config.backoff_max, self.config.backoff * 2 ** (attempt - 1))
            delay = retry_after if retry_after is not None else delay * (0.5 + 0.5 * self._jitter.random())
            await asyncio.sleep(min(delay, self.config.backoff_max))

    def _response(self, choice: dict, data: dict, k: int, j: int, seed: int, params: SamplingParams,
                  single: bool) -> Response:
        msg = choice.get("message") or {}
        text = msg.get("content") or ""
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        if reasoning and self.config.reasoning == "think_tags" and "<think>" not in text:
            text = f"<think>\n{reasoning}\n</think>\n\n{text}"
        raw_finish = choice.get("finish_reason")
        usage = data.get("usage") or {}
        meta = {}
        if raw_finish not in (None, "stop", "length"):
            meta["finish_reason_raw"] = raw_finish
        if not single and usage:
            meta["usage"] = usage
        return Response(
            text=text, finish_reason=FINISH_MAP.get(raw_finish, "stop" if raw_finish else None),
            prompt_tokens=usage.get("prompt_tokens") if isinstance(usage.get("prompt_tokens"), int) else None,
            completion_tokens=usage.get("completion_tokens") if single and isinstance(usage.get("completion_tokens"), int) else None,
            gen=gen_record(self.kind, self.config.model or data.get("model"), k, j, params, seed), meta=meta)

    async def _single(self, client, sem, messages, k, j, seed, params) -> Response:
        async with sem:
            data = await self._request(client, self._body(messages, 1, seed, params))
        return self._response(data["choices"][0], data, k, j, seed, params, single=True)

    async def _request(self, client, body):
        try:
            return await self._post(client, body)
        except _Refused as e:
            raise TeacherError(f"{self.url} refused the request ({e}); check 'model' ({self.config.model!r}) and the "
                               "sampling options") from None

    async def _one(self, client, sem, probe, s: Sample, k: int, params: SamplingParams) -> list[Response]:
        if k <= 0:
            return []
        messages = chat_messages(s, system=self.config.system)
        seed0 = sample_seed(params.seed, s.id)
        rs: list[Response] = []
        if k > 1 and self._n_ok is not False:
            try:
                if self._n_ok is None:  # the first request with n > 1 finds out whether the server takes it
                    async with probe:
                        if self._n_ok is not False:
                            async with sem:
                                data = await self._post(client, self._body(messages, k, seed0, params))
                        else:
                            raise _Refused(400, "n > 1 refused earlier")
                else:
                    async with sem:
                        data = await self._post(client, self._body(messages, k, seed0, params))
            except _Refused as e:
                if e.status not in (400, 422):
                    raise TeacherError(f"{self.url} refused the request ({e})") from None
                if self._n_ok is None:
                    self.count("n_refused")
                self._n_ok = False
            else:
                self._n_ok = True
                choices = sorted(data["choices"], key=lambda c: c.get("index", 0))[:k]
                single = len(choices) == 1
                rs = [self._response(c, data, k, j, seed0, params, single) for j, c in enumerate(choices)]
                if len(rs) < k:
                    self.count("short_n")
        rest = range(len(rs), k)
        if rest:
            more = await asyncio.gather(*[self._single(client, sem, messages, k, j, sample_seed(params.seed, s.id, j),
                                                       params) for j in rest])
            rs.extend(more)
        return rs

    async def _agenerate(self, samples, n, params) -> list[list[Response]]:
        import httpx

        c = self.config
        limits = httpx.Limits(max_connections=c.concurrency, max_keepalive_connections=c.concurrency)
        timeout = httpx.Timeout(c.timeout, connect=c.connect_timeout)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=self._headers()) as client:
            sem, probe = asyncio.Semaphore(c.concurrency), asyncio.Lock()
            return list(await asyncio.gather(*[self._one(client, sem, probe, s, k, params) for s, k in zip(samples, n, strict=True)]))

    def generate(self, samples: list[Sample], n: list[int], params: SamplingParams) -> list[list[Response]]:
        if not self.config.model:
            raise TeacherError("openai teacher: set 'model' to the served model name (see GET {base_url}/models)")
        return run_coroutine(self._agenerate(samples, n, params))
