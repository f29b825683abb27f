"""A loopback fake of the Anthropic API, for tests that must never reach the network.

It is a real HTTP server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1, random port, in a daemon
thread) that speaks the JSON shapes of:

- ``POST /v1/messages`` (JSON outputs via ``output_config``, forced tool calls, plain text),
- ``POST /v1/messages/count_tokens``,
- ``GET /v1/models`` and ``GET /v1/models/{id}``,
- Message Batches: create, retrieve, list, cancel, delete, and the JSONL results at the
  ``results_url`` the batch points to (on this server).

Answers are deterministic. A simulated teacher (``distribution``, default :meth:`FakeAnthropic.belief`)
says how likely each label is for a text; the answer writes that belief in whatever shape the
request's JSON schema asks for (every label's probability, or the K most likely), rounded to two
decimals as a model writes numbers. ``[[conf:0.55]]`` sets the top label's probability and
``[[votes:a,b,a]]`` makes the n-th request about the same text believe the n-th label (for
k-sample tests).

Where the client depends on it, the server does what the API does: output tokens are counted from
the text it returns (:func:`count_tokens`, about 3.5 characters a token for JSON with label
names), ``max_tokens`` is enforced (the text is cut there and ``stop_reason`` is ``max_tokens``),
the prompt cache holds only prefixes at least the model's minimum long (``MIN_CACHEABLE``; below
it both cache counters are 0, silently) and only once the response that wrote one was sent, and
every reply carries ``anthropic-ratelimit-*`` headers for input and output tokens that count down
within the minute (output charged up front from ``max_tokens``), with a 429 and ``retry-after``
past a limit.

Faults are keyed on markers in the user text, ``[[fault:NAME]]`` (every time) or
``[[fault:NAME*N]]`` (the first N requests with that text), or queued with
``server.queue_faults("529", "529")`` for the next message requests. Names:

=================  ==========================================================================
``429``            rate_limit_error with ``retry-after-ms`` (``server.retry_after_ms``)
``529`` / ``500``  overloaded_error / api_error
``hang``           never answers (until the server stops or ``hang_s`` passes)
``malformed``      200 with text that is not JSON
``unknown_label``  200 with a label outside the label set
``refusal``        200 with ``stop_reason: refusal``
``max_tokens``     200 with truncated JSON and ``stop_reason: max_tokens``
``spend_limit``    429 with ``error_code: enforced_spend_limit_reached``
``401``            authentication_error
``403``            permission_error (the key's workspace may not use the model)
``reset``          the connection is closed (a TCP reset) without a reply
``400``            invalid_request_error
=================  ==========================================================================

``[[latency:MS]]`` delays one request; ``latency_s`` delays every message request. Batch
results obey ``[[batch:errored*N]]``, ``[[batch:expired*N]]`` and ``[[batch:invalid]]``;
``server.queue_batch_create_faults("lost_reply", "reset", "529")`` fails the next batch creates.

Every request is recorded (``server.requests``), so a test can assert that no example was asked
twice (``server.asked_texts()``).

Run ``python tests/fakes/anthropic_server.py`` to serve on a free port (the URL is printed).

The fake is split in four modules: this one (:class:`FakeAnthropic`, the Messages, token-count and
models endpoints, the HTTP handler, :func:`project_with_texts` and the ``fake_anthropic`` fixture),
:mod:`fakes.anthropic_batches` (the Message Batches part) and :mod:`fakes.anthropic_limits` (the
rate-limit windows and headers), both mixins of :class:`FakeAnthropic`, and :mod:`fakes.anthropic_wire`
(the shared pieces: reply and record types, :func:`count_tokens`, the marker patterns, the
request-body readers). Tests import every name from this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import struct
import sys
import threading
import uuid
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

if __package__ in (None, ""):  # run as a script: make the ``fakes`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.anthropic_batches import BatchesMixin
from fakes.anthropic_limits import LimitsMixin
from fakes.anthropic_wire import (  # noqa: F401 - tests import these names from here
    BATCH_FAULT,
    CONF,
    CUSTOM_ID,
    DEFAULT_MODELS,
    FAULT,
    LATENCY,
    MIN_CACHEABLE,
    RESET,
    VOTES,
    Recorded,
    _error,
    _first_label,
    _iso,
    _rename_label,
    _Reply,
    _schema,
    _schema_labels,
    _tokens,
    _unwrap,
    _user_text,
    count_tokens,
    cut_to_tokens,
)


class FakeAnthropic(BatchesMixin, LimitsMixin):
    """The fake API. Use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        api_keys: tuple[str, ...] = ("test-key",),
        retry_after_ms: int = 5,
        hang_s: float = 30.0,
        batch_polls: int = 1,
        thinking_models: tuple[str, ...] = ("claude-opus-5-5",),
        no_forced_tools: tuple[str, ...] = ("claude-opus-5-5", "claude-fable-5-1", "claude-fable-5-2"),
        no_output_config: tuple[str, ...] = (),
        models: list[tuple[str, str, str]] | None = None,
        ratelimit: tuple[int, float] | None = None,
        token_limits: tuple[int, int] = (4_000_000, 800_000),
        distribution: Any = None,
        record_bodies: bool = True,
        completion: Any = None,
    ) -> None:
        self.latency_s = latency_s
        self.api_keys = set(api_keys)
        self.retry_after_ms = retry_after_ms
        self.hang_s = hang_s
        self.batch_polls = batch_polls
        self.thinking_models = set(thinking_models)
        self.no_forced_tools = set(no_forced_tools)
        self.no_output_config = set(no_output_config)
        self.models = models or list(DEFAULT_MODELS)
        #: (requests per window, window seconds): sends anthropic-ratelimit-requests-* headers
        #: and answers 429 past the limit.
        self.ratelimit = ratelimit
        #: (input tokens, output tokens) per minute: the ``anthropic-ratelimit-{input,output}-tokens-*``
        #: headers count down from these, output charged up front from ``max_tokens`` and settled
        #: with what was written, as the real API does; a request past either gets a 429.
        self.token_limits = token_limits
        #: ``distribution(text, labels, seen) -> {label: p}``: the simulated teacher's belief about a
        #: text (default: :meth:`belief`); the answer renders it in whatever shape the schema asks.
        self.distribution = distribution or self.belief
        self.record_bodies = record_bodies
        #: ``completion(text) -> str``: what the simulated teacher writes for a plain-text request
        #: (generation); default: ``"Summary: "`` and the text's first 60 characters. Its output
        #: tokens are counted from the text, and ``max_tokens`` cuts it as the real API does.
        self.completion = completion
        self.requests: list[Recorded] = []
        self.batches: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._fault_queue: deque[str] = deque()
        self._batch_create_faults: deque[str] = deque()
        self._text_counts: Counter[str] = Counter()
        self._batch_text_counts: Counter[str] = Counter()
        self._cached_prefixes: set[str] = set()
        self._window: tuple[float, int] = (0.0, 0)
        self._token_window: list[float] = [0.0, 0.0, 0.0]  # window start, input used, output used
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeAnthropic:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="fake-anthropic")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- test helpers ---------------------------------------------------------------------------
    def queue_faults(self, *names: str) -> None:
        """Make the next ``len(names)`` message requests fail with these faults, in order."""
        with self._lock:
            self._fault_queue.extend(names)

    def message_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/messages"]

    def statuses(self) -> Counter[int]:
        """How many message requests got each HTTP status."""
        return Counter(r.status for r in self.message_requests())

    def asked_texts(self) -> list[str]:
        """The user text of every message request and every batch request, in arrival order
        (a ``<text>`` wrapper around the example is removed)."""
        texts = []
        for r in self.requests:
            if r.method != "POST" or not isinstance(r.body, dict):
                continue
            if r.path == "/v1/messages":
                texts.append(_user_text(r.body))
            elif r.path == "/v1/messages/batches":
                texts += [_user_text(q.get("params", {})) for q in r.body.get("requests", [])]
        return [_unwrap(t) for t in texts]

    # -- answering ----------------------------------------------------------------------------
    def _count(self, counter: Counter[str], key: str) -> int:
        with self._lock:
            counter[key] += 1
            return counter[key]

    def _take_fault(self, text: str, seen: int) -> str | None:
        with self._lock:
            if self._fault_queue:
                return self._fault_queue.popleft()
        m = FAULT.search(text)
        if m and (m.group(2) is None or seen <= int(m.group(2))):
            return m.group(1)
        return None

    def _prefix(self, body: dict[str, Any]) -> tuple[str, bool]:
        """The text up to the last ``cache_control`` breakpoint, and whether the request marks
        one: the tools, the output format's schema (a change of ``output_config.format``
        invalidates the cache, so it belongs to the prefix) and the system prompt."""
        system = body.get("system") or []
        if isinstance(system, str):
            system = [{"type": "text", "text": system}]
        tools = json.dumps(body.get("tools")) if body.get("tools") else ""
        fmt = (body.get("output_config") or {}).get("format")
        schema = json.dumps(fmt) if fmt else ""
        sys_text = "".join(b.get("text", "") for b in system)
        marked = any(b.get("cache_control") for b in system) or bool(body.get("cache_control"))
        return tools + schema + sys_text, marked

    def cache_state(self, body: dict[str, Any]) -> str:
        """``read``, ``write`` or ``none`` for a request arriving now. A prefix is readable only
        after the response that wrote it has been sent, so requests in flight together all write,
        and a prefix under the model's minimum is never cached."""
        prefix, marked = self._prefix(body)
        model = body.get("model", "")
        if not marked or _tokens(prefix) < MIN_CACHEABLE.get(model, 1024):
            return "none"
        key = hashlib.sha256((model + prefix).encode()).hexdigest()
        with self._lock:
            return "read" if key in self._cached_prefixes else "write"

    def _cache_written(self, body: dict[str, Any]) -> None:
        prefix, _ = self._prefix(body)
        key = hashlib.sha256((body.get("model", "") + prefix).encode()).hexdigest()
        with self._lock:
            self._cached_prefixes.add(key)

    def input_tokens(self, body: dict[str, Any]) -> int:
        """Every input token of the request (what ``count_tokens`` answers)."""
        prefix, _ = self._prefix(body)
        return (_tokens(prefix) if prefix else 0) + _tokens(_user_text(body)) + 4

    def _usage(self, body: dict[str, Any], output: str, cache: str = "none") -> dict[str, Any]:
        total = self.input_tokens(body)
        prefix, _ = self._prefix(body)
        cached = _tokens(prefix) if cache != "none" else 0
        write, read = (cached, 0) if cache == "write" else (0, cached)
        return {
            "input_tokens": total - cached,
            "output_tokens": count_tokens(output),
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard",
        }

    def answer(self, body: dict[str, Any], fault: str | None, *, seen: int = 1, cache: str | None = None) -> _Reply:
        """The reply to one Messages request (also used for batch results)."""
        model = body.get("model", "")
        for banned in ("temperature", "top_p", "top_k"):
            if banned in body:
                return _Reply(400, _error("invalid_request_error", f"{banned}: not supported by this API version"))
        tool_choice = body.get("tool_choice") or {}
        forced = tool_choice.get("type") in ("any", "tool")
        if forced and model in self.no_forced_tools:
            return _Reply(400, _error("invalid_request_error",
                                      "tool_choice: forcing tool use is not compatible with thinking on this model"))
        fmt = (body.get("output_config") or {}).get("format")
        if fmt and model in self.no_output_config:
            return _Reply(400, _error("invalid_request_error",
                                      "output_config.format: structured outputs are not supported on this model"))
        if fault == "400":
            return _Reply(400, _error("invalid_request_error", "prompt is too long: 300000 tokens > 200000 maximum"))
        if fault == "401":
            return _Reply(401, _error("authentication_error", "invalid x-api-key"))
        if fault == "403":
            return _Reply(403, _error("permission_error",
                                      "Your API key does not have permission to use the specified resource."))
        if fault == "429":
            return _Reply(429, _error("rate_limit_error", "Number of request tokens has exceeded your rate limit"),
                          {"retry-after-ms": str(self.retry_after_ms), "retry-after": "0"})
        if fault == "spend_limit":
            return _Reply(429, _error("rate_limit_error", "You have reached your specified workspace API usage limits.",
                                      "enforced_spend_limit_reached"), {"x-should-retry": "false"})
        if fault == "529":
            return _Reply(529, _error("overloaded_error", "Overloaded"), {"retry-after-ms": str(self.retry_after_ms)})
        if fault == "500":
            return _Reply(500, _error("api_error", "Internal server error"), {"retry-after-ms": str(self.retry_after_ms)})

        text = _user_text(body)
        schema = _schema(body)
        labels = _schema_labels(schema)
        max_tokens = int(body.get("max_tokens") or 0)
        content: list[dict[str, Any]] = []
        if model in self.thinking_models:
            content.append({"type": "thinking", "thinking": "", "signature": "c2ln"})
        payload: Any = None
        if labels is None:
            clean = FAULT.sub("", text).strip()
            out_text = self.completion(clean) if self.completion else "Summary: " + clean[:60]
        else:
            payload = self.render(schema, labels, text, seen)
            if fault == "unknown_label":
                _rename_label(payload, "no-such-label")
            out_text = json.dumps(payload)
            if fault == "malformed":
                out_text = "Sure! The label is " + _first_label(payload)
        stop_reason = "end_turn"
        if fault == "max_tokens":
            out_text, stop_reason = out_text[: max(1, len(out_text) // 2)], "max_tokens"
        elif max_tokens and count_tokens(out_text) > max_tokens:  # generation stops at the limit
            out_text, stop_reason = cut_to_tokens(out_text, max_tokens), "max_tokens"
        if payload is not None and forced and "tools" in body and stop_reason != "max_tokens" and fault != "malformed":
            content.append({"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:20],
                            "name": body["tools"][0]["name"], "input": payload})
            stop_reason = "tool_use"
        else:
            content.append({"type": "text", "text": out_text})
        if fault == "refusal":
            content = [{"type": "text", "text": ""}]
            stop_reason, out_text = "refusal", ""
        if cache is None:
            cache = self.cache_state(body)
        message = {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": self._usage(body, out_text, cache),
        }
        if cache == "write":
            self._cache_written(body)
        return _Reply(200, message)

    def belief(self, text: str, labels: list[str], seen: int) -> dict[str, float]:
        """The default simulated teacher: the first label named in the text as a word (else one
        picked from a hash of the text) gets 0.8 (or ``[[conf:P]]``); the rest is shared out
        evenly. ``[[votes:a,b]]``: the n-th request about a text believes the n-th label."""
        votes = VOTES.search(text)
        if votes:
            choices = [v.strip() for v in votes.group(1).split(",")]
            label = choices[(seen - 1) % len(choices)]
        else:
            words = set(re.findall(r"[\w-]+", text.lower()))
            label = next((lab for lab in labels if lab.lower() in words), None)
            if label is None:
                label = labels[int(hashlib.sha256(text.encode()).hexdigest(), 16) % len(labels)]
        conf = CONF.search(text)
        top = float(conf.group(1)) if conf else 0.8
        rest = (1.0 - top) / max(1, len(labels) - 1)
        return {lab: (top if lab == label else rest) for lab in labels}

    def render(self, schema: dict[str, Any], labels: list[str], text: str, seen: int) -> dict[str, Any]:
        """The teacher's belief written in the shape ``schema`` asks for, with probabilities rounded
        to two decimals as a model writes them: a ``probabilities`` object with every label, or
        ``labels``/``probs`` arrays of the K most likely (K read from the schema's description)."""
        belief = self.distribution(_unwrap(text), labels, seen)
        ranked = sorted(labels, key=lambda lab: -belief.get(lab, 0.0))
        best = ranked[0]
        rationale = f"The text reads most like {best.replace('_', ' ')}, more than the other labels."
        props = schema.get("properties", {})
        if "probabilities" in props:
            return {"label": best, "probabilities": {lab: round(belief.get(lab, 0.0), 2) for lab in labels},
                    "rationale": rationale}
        m = re.search(r"(\d+)", props.get("labels", {}).get("description", ""))
        k = int(m.group(1)) if m else 3
        top = ranked[:k]
        return {"labels": top, "probs": [round(belief.get(lab, 0.0), 2) for lab in top], "rationale": rationale}




class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many clients connect at once; the default backlog of 5 drops SYNs
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small keep-alive replies must not wait for a delayed ACK
    server_fake: FakeAnthropic

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, reply: _Reply, rec: Recorded) -> None:
        rec.status = reply.status
        if reply.status == RESET:  # close with a TCP reset, no reply at all
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("content-type", reply.content_type)
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", "req_fake" + uuid.uuid4().hex[:12])
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self._headers_buffer.append(b"\r\n")  # end_headers without its flush: one write below
            self.wfile.write(b"".join(self._headers_buffer) + data)
            self._headers_buffer = []
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _handle(self, method: str) -> None:
        fake = self.server_fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        url = urlparse(self.path)
        rec = Recorded(method, url.path, {k.lower(): v for k, v in self.headers.items()},
                       body if fake.record_bodies else None)
        with fake._lock:
            fake.requests.append(rec)
        auth = self.headers.get("authorization", "")
        key = auth[7:] if auth.lower().startswith("bearer ") else self.headers.get("x-api-key", "")
        if key not in fake.api_keys:
            return self._send(_Reply(401, _error("authentication_error", "invalid x-api-key")), rec)
        self._send(self._route(method, url.path, parse_qs(url.query), body), rec)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> _Reply:
        fake = self.server_fake
        if method == "POST" and path == "/v1/messages":
            return self._messages(body or {})
        if method == "POST" and path == "/v1/messages/count_tokens":
            return _Reply(200, {"input_tokens": fake.input_tokens(body or {})})
        if method == "GET" and path == "/v1/models":
            data = [{"type": "model", "id": i, "display_name": n, "created_at": c, "lifecycle": "active",
                     "max_input_tokens": 200000, "max_tokens": 64000} for i, n, c in fake.models]
            return _Reply(200, {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                "last_id": data[-1]["id"] if data else None})
        m = re.fullmatch(r"/v1/models/([^/]+)", path)
        if method == "GET" and m:
            for i, n, c in fake.models:
                if i == m.group(1):
                    return _Reply(200, {"type": "model", "id": i, "display_name": n, "created_at": c,
                                        "lifecycle": "active", "max_input_tokens": 200000, "max_tokens": 64000})
            return _Reply(404, _error("not_found_error", f"model: {m.group(1)}"))
        reply = fake.route_batches(method, path, body)
        if reply is not None:
            return reply
        return _Reply(404, _error("not_found_error", f"{method} {path}"))

    def _messages(self, body: dict[str, Any]) -> _Reply:
        fake = self.server_fake
        text = _user_text(body)
        seen = fake._count(fake._text_counts, text)
        headers, within = fake._ratelimit_headers()
        if not within:
            reply = fake.answer(body, "429")
            reply.headers.update(headers)
            return reply
        reserved = int(body.get("max_tokens") or 0)
        token_headers, over = fake._charge_tokens(fake.input_tokens(body), reserved)
        headers.update(token_headers)
        if over is not None:
            return _Reply(429, _error("rate_limit_error", f"This request would exceed your rate limit of {over}"),
                          headers)
        cache = fake.cache_state(body)  # decided on arrival: a prefix being written is not yet readable
        fault = fake._take_fault(text, seen)
        delay = fake.latency_s
        m = LATENCY.search(text)
        if m:
            delay = int(m.group(1)) / 1000
        if fault == "hang":
            delay = fake.hang_s
        if fault == "reset":
            return _Reply(RESET, None)
        if delay and fake._stopping.wait(delay):
            return _Reply(503, _error("api_error", "server stopping"))
        reply = fake.answer(body, fault, seen=seen, cache=cache)
        used = reply.body["usage"]["output_tokens"] if reply.status == 200 else 0
        fake._settle_output(reserved, used)
        reply.headers.update(headers)
        return reply

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


if __name__ == "__main__":  # pragma: no cover - a manual helper and the benchmark's server
    import argparse

    parser = argparse.ArgumentParser(description="Serve the fake Anthropic API on 127.0.0.1.")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    server = FakeAnthropic(latency_s=args.latency_ms / 1000, record_bodies=False).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


def project_with_texts(path: Any, texts: list[str], *, labels: tuple[str, ...] = ("positive", "negative", "neutral"),
                       task: str = "classification", split: str = "train") -> Any:
    """A new project at ``path`` holding ``texts`` (for tests of the Claude teacher)."""
    from kdstudio.core.store import Project

    project = Project.create(path, task, labels=list(labels) if task == "classification" else [])
    with project.transaction():
        project.insert_examples([
            (text, None, None, split, "test", i + 1, hashlib.sha256(text.encode()).hexdigest())
            for i, text in enumerate(texts)
        ])
    return project


try:  # the fixture, for tests: ``from fakes.anthropic_server import fake_anthropic``
    import pytest

    @pytest.fixture
    def fake_anthropic():
        """A started :class:`FakeAnthropic` (stopped after the test)."""
        with FakeAnthropic() as server:
            yield server
except ImportError:  # pragma: no cover - pytest is only needed by tests
    pass
