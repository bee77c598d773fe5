"""A fake Anthropic Messages API server for tests that drive the real `anthropic` SDK.

Start it with ``with FakeMessagesAPI() as api:`` and point a client at ``api.url``
(``anthropic.Anthropic(api_key="test-key", base_url=api.url, max_retries=0)`` or the
``ANTHROPIC_BASE_URL`` environment variable). Replies are scripted with ``enqueue`` (FIFO),
falling back to ``responder`` and then to a 500 ``api_error``.

Endpoints:
  POST /v1/messages                     JSON Message, or SSE when the body has ``"stream": true``
  POST /v1/messages/count_tokens        ``{"input_tokens": n}`` with the same token estimate
  POST /v1/messages/batches             create a batch (``msgbatch_<n>``, ``in_progress``)
  GET  /v1/messages/batches             list batches (one page)
  GET  /v1/messages/batches/{id}        retrieve; ends on the ``batch_polls_until_end``-th call
  POST /v1/messages/batches/{id}/cancel mark ``canceling``; the next retrieve ends it as canceled
  GET  /v1/messages/batches/{id}/results JSONL results once ended

Simulated prompt cache (see ``PromptCache``): the request is flattened into ordered segments,
``system`` blocks first, then every message's content blocks (string content counts as one
text block). Every segment carrying ``cache_control`` ends a cacheable prefix, keyed by the
SHA-256 of the canonical JSON of the model plus its segments (``cache_control`` removed); the
longest prefix already cached is read, the rest up to the last breakpoint written. Tokens
are estimated as ``len(text) // 4`` (at least 1 for non-empty text; non-text blocks count
their canonical JSON).
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.ratelimits import RateLimiter

__all__ = [
    "FakeMessagesAPI",
    "PromptCache",
    "RecordedRequest",
    "Reply",
    "api_key_of",
    "estimate_tokens",
]

JSON = dict[str, Any]
Responder = Callable[[JSON], "Reply"]

DEFAULT_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

BATCHES_PATH = "/v1/messages/batches"

# What some models refuse or do by default, as Anthropic's model pages say (see the sources
# in freshbatch/models.yaml, read 2026-12-02): Sonnet 5 answers 400 to non-default sampling
# parameters and to manual extended thinking; models whose adaptive thinking is always on
# (Opus 5.5, Fable 5 and 5.1) answer 400 to thinking disabled; adaptive models think unless
# told not to, and thinking is billed as output (here: twice the answer's tokens).
MODEL_RULES: dict[str, dict[str, bool]] = {
    "claude-sonnet-5": {"thinks": True, "no_sampling": True, "no_manual_thinking": True},
    "claude-sonnet-5-5": {"thinks": True},
    "claude-opus-5-5": {"thinks": True, "always_thinks": True},
    "claude-fable-5": {"thinks": True, "always_thinks": True, "no_manual_thinking": True},
    "claude-fable-5-1": {"thinks": True, "always_thinks": True},
}
SAMPLING_DEFAULTS = {"temperature": 1.0, "top_p": None, "top_k": None}


def refused_parameter(body: JSON) -> Reply | None:
    """A 400 for a parameter the model refuses (MODEL_RULES), else None."""
    rules = MODEL_RULES.get(str(body.get("model")), {})
    thinking = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
    if rules.get("no_sampling"):
        for name, default in SAMPLING_DEFAULTS.items():
            if name in body and body[name] != default:
                return Reply.error(400, "invalid_request_error",
                                   f"{name}: not supported for this model")  # fmt: skip
    if rules.get("no_manual_thinking") and thinking.get("type") == "enabled":
        return Reply.error(400, "invalid_request_error", "thinking.type enabled: use adaptive")
    if rules.get("always_thinks") and thinking.get("type") == "disabled":
        return Reply.error(400, "invalid_request_error", "thinking cannot be disabled")
    return None


def thinking_tokens(request: JSON, reply: Reply) -> int:
    """Hidden thinking billed as output: adaptive models think unless thinking is disabled."""
    rules = MODEL_RULES.get(str(request.get("model")), {})
    thinking = request.get("thinking") if isinstance(request.get("thinking"), dict) else {}
    if not rules.get("thinks") or thinking.get("type") == "disabled":
        return 0
    return 2 * (estimate_tokens(reply.text) or 1)


MODELS_PATH = "/v1/models"
# what GET /v1/models lists by default, newest first (as the real API orders them)
LISTED_MODELS = (
    "claude-opus-4-8",
    "claude-sonnet-4-6",
    "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-1-20250805",
)


def estimate_tokens(text: str) -> int:
    """Estimate tokens as len(text)//4, at least 1 for non-empty text, 0 for empty."""
    return max(1, len(text) // 4) if text else 0


def _model_info(model: str) -> JSON:
    """One entry of GET /v1/models, shaped like the real API's ModelInfo."""
    return {
        "type": "model",
        "id": model,
        "display_name": model.replace("-", " ").title(),
        "created_at": "2025-01-01T00:00:00Z",
        "lifecycle": "active",
        "max_input_tokens": 200000,
        "max_tokens": 64000,
    }


def _canonical(value: Any) -> str:
    """Serialise JSON canonically (sorted keys, no whitespace)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _now_iso(offset: timedelta = timedelta()) -> str:
    """Return the current UTC time (plus offset) as an RFC 3339 string."""
    return (datetime.now(UTC) + offset).isoformat().replace("+00:00", "Z")


@dataclass
class Reply:
    """One scripted reply of the fake API."""

    status: int = 200
    text: str = ""
    stop_reason: str = "end_turn"
    usage: dict[str, int] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str | None = None
    error_message: str = ""
    stop_sequence: str | None = None
    delay: float = 0.0  # before any byte of the answer (time to first token)
    drop: bool = False
    stream_seconds: float = 0.0  # streamed answers: spread the events over this long

    @classmethod
    def message(cls, text: str, **kw: Any) -> Reply:
        """Build a 200 reply carrying assistant text."""
        return cls(status=200, text=text, **kw)

    @classmethod
    def error(
        cls,
        status: int,
        error_type: str | None = None,
        message: str = "",
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> Reply:
        """Build an error reply; error_type defaults from the status code."""
        etype = error_type or DEFAULT_ERROR_TYPES.get(status, "api_error")
        return cls(
            status=status,
            error_type=etype,
            error_message=message or f"fake {etype}",
            headers=dict(headers or {}),
            **kw,
        )

    @classmethod
    def dropped(cls) -> Reply:
        """Build a reply that closes the connection without any response."""
        return cls(drop=True)

    @classmethod
    def slow(cls, seconds: float, text: str = "", **kw: Any) -> Reply:
        """Build a 200 reply that is sent only after `seconds`."""
        return cls(text=text, delay=seconds, **kw)

    @property
    def is_error(self) -> bool:
        """Whether this reply is an HTTP error."""
        return self.status >= 400

    def error_body(self, request_id: str | None = None) -> JSON:
        """Return the API error envelope for this reply."""
        etype = self.error_type or DEFAULT_ERROR_TYPES.get(self.status, "api_error")
        body: JSON = {
            "type": "error",
            "error": {"type": etype, "message": self.error_message or f"fake {etype}"},
        }
        if request_id is not None:
            body["request_id"] = request_id
        return body


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake server received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes

    @property
    def api_key(self) -> str | None:
        """The credential sent: x-api-key, else the Authorization bearer token (SDK 2.x)."""
        return api_key_of(self.headers)


def api_key_of(headers: dict[str, str]) -> str | None:
    """Extract the credential from lower-cased request headers."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


@dataclass(frozen=True)
class CacheUsage:
    """Token accounting of one request against the prompt cache."""

    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


def _block_text(block: Any) -> str:
    """Return the text a content block contributes to the token estimate."""
    if isinstance(block, str):
        return block
    if isinstance(block, dict) and block.get("type") == "text":
        return str(block.get("text", ""))
    if isinstance(block, dict):
        return _canonical({k: v for k, v in block.items() if k != "cache_control"})
    return _canonical(block)


def _system_segments(system: Any) -> list[JSON]:
    """Flatten the `system` parameter into segments."""
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "block": system}]
    return [{"role": "system", "block": block} for block in system]


def _message_segments(messages: Any) -> list[JSON]:
    """Flatten `messages` into segments, one per content block."""
    segments: list[JSON] = []
    for message in messages or []:
        content = message.get("content") if isinstance(message, dict) else None
        role = message.get("role") if isinstance(message, dict) else None
        blocks = [content] if isinstance(content, str) else list(content or [])
        segments.extend({"role": role, "block": block} for block in blocks)
    return segments


def _has_cache_control(segment: JSON) -> bool:
    """Whether a segment's block carries cache_control."""
    block = segment["block"]
    return isinstance(block, dict) and block.get("cache_control") is not None


def _strip_cache_control(segment: JSON) -> JSON:
    """Return the segment with cache_control removed from its block."""
    block = segment["block"]
    if isinstance(block, dict):
        block = {k: v for k, v in block.items() if k != "cache_control"}
    return {"role": segment["role"], "block": block}


def _segments_text(segments: list[JSON]) -> str:
    """Concatenate the text of segments for token estimation."""
    return "".join(_block_text(segment["block"]) for segment in segments)


def input_token_estimate(request: JSON) -> int:
    """Estimate the input tokens of a whole request (at least 1)."""
    return max(1, estimate_tokens(_segments_text(_request_segments(request))))


class PromptCache:
    """Simulated prompt cache keyed by the SHA-256 of the cacheable prefix."""

    def __init__(self, min_cacheable_tokens: int = 0) -> None:
        """Create an empty cache; prefixes below min_cacheable_tokens are not cached."""
        self.min_cacheable_tokens = min_cacheable_tokens
        self.hits = 0
        self.misses = 0
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    @property
    def keys(self) -> frozenset[str]:
        """The prefix keys written so far."""
        with self._lock:
            return frozenset(self._keys)

    def reset(self) -> None:
        """Forget all cached prefixes and counters."""
        with self._lock:
            self._keys.clear()
            self.hits = 0
            self.misses = 0

    @staticmethod
    def split(request: JSON) -> tuple[str | None, str, str]:
        """Return (key of the longest marked prefix or None, its text, the text after it)."""
        segments = _request_segments(request)
        marks = _breakpoints(segments)
        if not marks:
            return None, "", _segments_text(segments)
        cut = marks[-1]
        return (
            _prefix_key(request, segments, cut),
            _segments_text(segments[:cut]),
            _segments_text(segments[cut:]),
        )

    def account(self, request: JSON) -> CacheUsage:
        """Record a request against the cache and return its token split.

        As the real API does, every cache breakpoint is a candidate: the longest marked prefix
        already cached is read, the tokens from there to the last breakpoint are written, and
        every marked prefix is cached for later requests.
        """
        segments = _request_segments(request)
        marks = _breakpoints(segments)
        last = marks[-1] if marks else 0
        prefix_tokens = estimate_tokens(_segments_text(segments[:last]))
        if not marks or prefix_tokens < max(self.min_cacheable_tokens, 1):
            return CacheUsage(max(1, estimate_tokens(_segments_text(segments))), 0, 0)
        keys = [(cut, _prefix_key(request, segments, cut)) for cut in marks]
        with self._lock:
            hit = max((cut for cut, key in keys if key in self._keys), default=0)
            self._keys.update(key for _, key in keys)
            if hit:
                self.hits += 1
            else:
                self.misses += 1
        read = estimate_tokens(_segments_text(segments[:hit]))
        rest = estimate_tokens(_segments_text(segments[last:]))
        return CacheUsage(rest, prefix_tokens - read, read)


BILLING_HEADER = "x-anthropic-billing-header:"


def _request_segments(request: JSON) -> list[JSON]:
    """System then message segments, without Claude Code's per-request billing block.

    Claude Code puts `x-anthropic-billing-header: cc_version=...; ...` first in `system`, with
    a suffix that changes with each prompt; the API reads it as billing metadata, not as
    prompt, so it neither counts as input nor breaks the cached prefix.
    """
    segments = _system_segments(request.get("system")) + _message_segments(request.get("messages"))
    return [s for s in segments if not _block_text(s["block"]).startswith(BILLING_HEADER)]


def _breakpoints(segments: list[JSON]) -> list[int]:
    """The prefix lengths that end at a segment carrying cache_control, shortest first."""
    return [i + 1 for i, segment in enumerate(segments) if _has_cache_control(segment)]


def _prefix_key(request: JSON, segments: list[JSON], cut: int) -> str:
    """SHA-256 of the model and the first `cut` segments without their cache_control."""
    prefix = [_strip_cache_control(segment) for segment in segments[:cut]]
    return hashlib.sha256(_canonical([request.get("model"), prefix]).encode()).hexdigest()


@dataclass
class Batch:
    """Server-side state of one Message Batch."""

    id: str
    requests: list[JSON]
    created_at: str
    expires_at: str
    polls: int = 0
    processing_status: str = "in_progress"
    ended_at: str | None = None
    cancel_initiated_at: str | None = None
    results: list[JSON] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Return request_counts as the API reports them."""
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if self.processing_status != "ended":
            counts["processing"] = len(self.requests)
            return counts
        for result in self.results:
            counts[result["result"]["type"]] += 1
        return counts


@dataclass
class Outcome:
    """What the HTTP layer should send for one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    events: list[bytes] | None = None
    delay: float = 0.0
    drop: bool = False
    stream_seconds: float = 0.0  # spread the SSE events over this long (generation time)
    on_done: Callable[[], None] | None = None  # called once the answer is written (or dropped)


def _json_outcome(status: int, body: Any, headers: dict[str, str] | None = None) -> Outcome:
    """Build an outcome with a JSON body."""
    merged = {"content-type": "application/json", **(headers or {})}
    return Outcome(status=status, headers=merged, body=json.dumps(body).encode())


def _sse(event: str, data: JSON) -> bytes:
    """Encode one Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(text: str, size: int) -> Iterator[str]:
    """Split text into pieces of at most size characters."""
    for start in range(0, len(text), max(size, 1)):
        yield text[start : start + max(size, 1)]


def stream_events(message: JSON, chunk_chars: int = 8) -> list[bytes]:
    """Encode a finished Message as the SSE event sequence of the real API."""
    usage = message["usage"]
    start_message = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": min(1, usage.get("output_tokens", 1))},
    }
    text = message["content"][0]["text"] if message["content"] else ""
    events = [
        _sse("message_start", {"type": "message_start", "message": start_message}),
        _sse("content_block_start", _block_start(0)),
        _sse("ping", {"type": "ping"}),
    ]
    events += [
        _sse("content_block_delta", _text_delta(0, piece)) for piece in _chunks(text, chunk_chars)
    ]
    events += [
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse("message_delta", _message_delta(message)),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return events


def _block_start(index: int) -> JSON:
    """Return a content_block_start event for an empty text block."""
    return {
        "type": "content_block_start",
        "index": index,
        "content_block": {"type": "text", "text": ""},
    }


def _text_delta(index: int, text: str) -> JSON:
    """Return a content_block_delta event with a text_delta."""
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "text_delta", "text": text},
    }


def _message_delta(message: JSON) -> JSON:
    """Return the message_delta event carrying stop_reason and cumulative usage."""
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    return {"type": "message_delta", "delta": delta, "usage": dict(message["usage"])}


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 request handler delegating to the FakeMessagesAPI."""

    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _Server

    def setup(self) -> None:
        """Register the connection so stop() can close it."""
        super().setup()
        self.server.app._track(self.connection, add=True)

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            self.server.app._track(self.connection, add=False)

    def do_GET(self) -> None:  # noqa: N802
        """Serve GET."""
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        """Serve POST."""
        self._serve()

    def do_DELETE(self) -> None:  # noqa: N802
        """Serve DELETE."""
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Stay silent."""

    def _read_body(self) -> bytes:
        """Read the request body per Content-Length."""
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        """Dispatch the request to the app and write its outcome."""
        raw = self._read_body()
        headers = {key.lower(): value for key, value in self.headers.items()}
        app = self.server.app
        outcome = app.dispatch(self.command, self.path, headers, raw)
        if outcome.delay and app._stopping.wait(outcome.delay):
            outcome = Outcome(drop=True)
        try:
            if outcome.drop:
                self.close_connection = True
                return
            self._write(outcome)
        finally:
            if outcome.on_done is not None:
                outcome.on_done()

    def _write(self, outcome: Outcome) -> None:
        """Write status, headers and body (chunked for SSE)."""
        self.send_response(outcome.status)
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        if outcome.events is None:
            self.send_header("content-length", str(len(outcome.body)))
            self.end_headers()
            self.wfile.write(outcome.body)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        pause = outcome.stream_seconds / max(len(outcome.events), 1)
        for event in outcome.events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
            if pause:
                time.sleep(pause)
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its app and never prints errors."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, app: FakeMessagesAPI) -> None:
        """Bind 127.0.0.1 on an ephemeral port."""
        self.app = app
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record handler exceptions (e.g. broken pipes after client timeouts) silently."""
        self.app.handler_errors.append(sys.exc_info()[1])


class FakeMessagesAPI:
    """A scriptable in-process stand-in for the Anthropic Messages API.

    Settable attributes: ``responder`` (called under the server lock, so calls are serialised),
    ``unknown_models``, ``listed_models`` (GET /v1/models), ``expected_api_key`` (401 on
    mismatch), ``batch_polls_until_end``, ``stream_chunk_chars`` and
    ``cache.min_cacheable_tokens``.
    """

    def __init__(self, *, batch_polls_until_end: int = 1, stream_chunk_chars: int = 8) -> None:
        """Configure the fake; call start() or use it as a context manager."""
        self.responder: Responder | None = None
        self.rate_limiter: RateLimiter | None = None  # tests.fakes.ratelimits: 429s, headers
        self.unknown_models: set[str] = set()
        self.listed_models: list[str] = list(LISTED_MODELS)
        self.expected_api_key: str | None = None
        self.batch_polls_until_end = batch_polls_until_end
        self.stream_chunk_chars = stream_chunk_chars
        self.cache = PromptCache()
        self.batches: dict[str, Batch] = {}
        self.handler_errors: list[BaseException | None] = []
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._counter = 0
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # lifecycle -------------------------------------------------------------

    def start(self) -> FakeMessagesAPI:
        """Start serving in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server(self)
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release the port."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()
        httpd.shutdown()
        self._close_connections()
        httpd.server_close()
        thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeMessagesAPI:
        """Start on enter."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on exit."""
        self.stop()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        """Add or remove a live client connection."""
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _close_connections(self) -> None:
        """Shut down live keep-alive connections so handler threads exit."""
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # scripting -------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        """Append scripted replies (FIFO)."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """Number of scripted replies not yet used."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget scripted replies, recorded requests, batches and the prompt cache."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self.batches.clear()
        self.cache.reset()

    def message_requests(self) -> list[RecordedRequest]:
        """The POST /v1/messages requests received so far."""
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/messages"]

    def _next_id(self, prefix: str) -> str:
        """Return a unique id with the given prefix."""
        with self._lock:
            self._counter += 1
            return f"{prefix}{self._counter:06d}"

    def _next_reply(self, request: JSON) -> Reply:
        """Pop the next scripted reply, else ask the responder, else a 500."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self.responder is not None:
                return self.responder(request)
        return Reply.error(500, "api_error", "FakeMessagesAPI: no scripted reply and no responder")

    # dispatch --------------------------------------------------------------

    def dispatch(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Outcome:
        """Record a request and compute the outcome to send."""
        parts = urlsplit(target)
        body = self._parse_body(raw)
        with self._lock:
            self._requests.append(
                RecordedRequest(method, parts.path, parts.query, headers, body, raw)
            )
        request_id = self._next_id("req_fake_")
        path = parts.path.rstrip("/")
        outcome = (
            self._authenticate(headers)
            or self._models(method, path, parts.query)
            or self._route(method, path, body)
        )
        outcome.headers.setdefault("request-id", request_id)
        return outcome

    def _authenticate(self, headers: dict[str, str]) -> Outcome | None:
        """Answer 401 when expected_api_key is set and the request's key differs."""
        if self.expected_api_key is None or api_key_of(headers) == self.expected_api_key:
            return None
        return self._error(Reply.error(401, "authentication_error", "invalid x-api-key"))

    @staticmethod
    def _parse_body(raw: bytes) -> Any:
        """Decode a JSON body; None when empty, the raw text when not JSON."""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _route(self, method: str, path: str, body: Any) -> Outcome:
        """Route a request to its endpoint."""
        if (method, path) == ("POST", "/v1/messages"):
            return self._create_message(body)
        if (method, path) == ("POST", "/v1/messages/count_tokens"):
            return self._count_tokens(body)
        if path == BATCHES_PATH:
            return self._batches_collection(method, body)
        if path.startswith(BATCHES_PATH + "/"):
            return self._batch_item(method, path[len(BATCHES_PATH) + 1 :].split("/"))
        return self._error(Reply.error(404, "not_found_error", f"Not found: {method} {path}"))

    def _error(self, reply: Reply) -> Outcome:
        """Build the outcome of an error reply."""
        outcome = _json_outcome(reply.status, reply.error_body(), reply.headers)
        outcome.delay = reply.delay
        return outcome

    # messages --------------------------------------------------------------

    def _validate(self, body: Any) -> Reply | None:
        """Return an error reply for an invalid or unknown-model request, else None."""
        if not isinstance(body, dict):
            return Reply.error(400, "invalid_request_error", "request body must be a JSON object")
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return Reply.error(400, "invalid_request_error", f"{name}: Field required")
        if body["model"] in self.unknown_models:
            return Reply.error(404, "not_found_error", f"model: {body['model']}")
        return refused_parameter(body)

    def _create_message(self, body: Any) -> Outcome:
        """Answer POST /v1/messages with JSON or SSE."""
        invalid = self._validate(body)
        if invalid is not None:
            return self._error(invalid)
        admission = None
        if self.rate_limiter is not None:  # before a reply is taken: a 429 uses none
            admission, limits = self.rate_limiter.admit(
                int(body["max_tokens"]), input_token_estimate(body)
            )
            if admission is None:
                return self._error(Reply.error(429, "rate_limit_error", "rate limited", limits))
        reply = self._next_reply(body)
        if (reply.drop or reply.is_error) and self.rate_limiter and admission:
            self.rate_limiter.finish(admission, 0)  # nothing generated: the reservation back
        if reply.drop:
            return Outcome(drop=True, delay=reply.delay)
        if reply.is_error:
            return self._error(reply)
        outcome_hook: Callable[[], None] | None = None
        if self.rate_limiter is not None and admission is not None:
            limiter, spent, taken = self.rate_limiter, self._output_tokens(body, reply), admission
            limits = limiter.charge(spent)
            outcome_hook = lambda: limiter.finish(taken, spent)  # noqa: E731
            reply = replace(reply, headers={**limits, **reply.headers})
        outcome = self._message_outcome(body, reply)
        outcome.on_done = outcome_hook
        return outcome

    @staticmethod
    def _output_tokens(request: JSON, reply: Reply) -> int:
        """The output tokens a reply uses: all of max_tokens on a max_tokens stop."""
        if reply.usage and "output_tokens" in reply.usage:
            return int(reply.usage["output_tokens"])
        if reply.stop_reason == "max_tokens":
            return int(request.get("max_tokens") or 1)
        return estimate_tokens(reply.text) or 1

    def _message_outcome(self, body: JSON, reply: Reply) -> Outcome:
        """The 200 answer to a message request: JSON, or SSE when the body asks to stream."""
        message = self.build_message(body, reply)
        if body.get("stream"):
            headers = {
                "content-type": "text/event-stream",
                "cache-control": "no-cache",
                **reply.headers,
            }
            events = stream_events(message, self.stream_chunk_chars)
            return Outcome(
                headers=headers, events=events, delay=reply.delay,
                stream_seconds=reply.stream_seconds,
            )  # fmt: skip
        outcome = _json_outcome(200, message, reply.headers)
        outcome.delay = reply.delay
        return outcome

    def build_message(self, request: JSON, reply: Reply) -> JSON:
        """Build the Message object for a 200 reply, accounting the prompt cache."""
        cached = self.cache.account(request)
        usage: dict[str, Any] = {
            "input_tokens": cached.input_tokens,
            # a max_tokens stop used the whole budget, as the real API reports it
            "output_tokens": self._output_tokens(request, reply) + thinking_tokens(request, reply),
            "cache_creation_input_tokens": cached.cache_creation_input_tokens,
            "cache_read_input_tokens": cached.cache_read_input_tokens,
            **(reply.usage or {}),
        }
        return {
            "id": self._next_id("msg_fake_"),
            "type": "message",
            "role": "assistant",
            "model": request.get("model"),
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence,
            "usage": usage,
        }

    def _models(self, method: str, path: str, query: str) -> Outcome | None:
        """Answer GET /v1/models (a page, as the real API: limit, after_id, before_id) and
        GET /v1/models/{id}; None for any other request."""
        if method != "GET" or not (path == MODELS_PATH or path.startswith(MODELS_PATH + "/")):
            return None
        listed = [m for m in self.listed_models if m not in self.unknown_models]
        if path != MODELS_PATH:
            model = path[len(MODELS_PATH) + 1 :]
            if model not in listed:
                return self._error(Reply.error(404, "not_found_error", f"model: {model}"))
            return _json_outcome(200, _model_info(model))
        params = dict(parse_qsl(query))
        limit = int(params.get("limit", 20))
        start = listed.index(params["after_id"]) + 1 if params.get("after_id") in listed else 0
        end = listed.index(params["before_id"]) if params.get("before_id") in listed else None
        window = listed[start:end]
        page = window[-limit:] if "before_id" in params else window[:limit]
        body = {
            "data": [_model_info(m) for m in page],
            "has_more": len(page) < len(window),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }
        return _json_outcome(200, body)

    def _count_tokens(self, body: Any) -> Outcome:
        """Answer POST /v1/messages/count_tokens."""
        if not isinstance(body, dict) or "messages" not in body:
            return self._error(
                Reply.error(400, "invalid_request_error", "messages: Field required")
            )
        return _json_outcome(200, {"input_tokens": input_token_estimate(body)})

    # batches ---------------------------------------------------------------

    def _batches_collection(self, method: str, body: Any) -> Outcome:
        """Answer POST (create) and GET (list) on /v1/messages/batches."""
        if method == "POST":
            return self._create_batch(body)
        if method == "GET":
            with self._lock:
                data = [self.batch_json(b) for b in reversed(self.batches.values())]
            page = {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
            return _json_outcome(200, page)
        return self._error(Reply.error(405, "invalid_request_error", "method not allowed"))

    def _create_batch(self, body: Any) -> Outcome:
        """Create a batch from {"requests": [{"custom_id", "params"}]}."""
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return self._error(
                Reply.error(400, "invalid_request_error", "requests: Field required")
            )
        ids = [r.get("custom_id") for r in requests if isinstance(r, dict)]
        if len(ids) != len(requests) or len(set(ids)) != len(ids) or None in ids:
            return self._error(
                Reply.error(400, "invalid_request_error", "custom_id must be unique")
            )
        with self._lock:
            batch_number = len(self.batches) + 1
            batch = Batch(
                id=f"msgbatch_{batch_number}",
                requests=requests,
                created_at=_now_iso(),
                expires_at=_now_iso(timedelta(hours=24)),
            )
            self.batches[batch.id] = batch
            return _json_outcome(200, self.batch_json(batch))

    def _batch_item(self, method: str, parts: list[str]) -> Outcome:
        """Answer retrieve, results and cancel for one batch."""
        with self._lock:
            batch = self.batches.get(parts[0])
        if batch is None:
            return self._error(Reply.error(404, "not_found_error", f"batch {parts[0]} not found"))
        action = (method, "/".join(parts[1:]))
        if action == ("GET", ""):
            return _json_outcome(200, self.batch_json(self._poll(batch)))
        if action == ("GET", "results"):
            return self._batch_results(batch)
        if action == ("POST", "cancel"):
            return _json_outcome(200, self.batch_json(self._cancel(batch)))
        return self._error(Reply.error(404, "not_found_error", f"Not found: {method} {parts}"))

    def _poll(self, batch: Batch) -> Batch:
        """Count a retrieve and end the batch once enough polls happened."""
        with self._lock:
            if batch.processing_status == "ended":
                return batch
            batch.polls += 1
            if batch.processing_status == "canceling":
                self._end_batch(batch, canceled=True)
            elif batch.polls >= self.batch_polls_until_end:
                self._end_batch(batch, canceled=False)
            return batch

    def _cancel(self, batch: Batch) -> Batch:
        """Initiate cancellation of an in-progress batch."""
        with self._lock:
            if batch.processing_status == "in_progress":
                batch.processing_status = "canceling"
                batch.cancel_initiated_at = _now_iso()
            return batch

    def _end_batch(self, batch: Batch, *, canceled: bool) -> None:
        """Answer every request of the batch and mark it ended."""
        batch.results = [self._batch_result(item, canceled) for item in batch.requests]
        batch.processing_status = "ended"
        batch.ended_at = _now_iso()

    def _batch_result(self, item: JSON, canceled: bool) -> JSON:
        """Answer one batch request like a normal message."""
        custom_id = item.get("custom_id")
        if canceled:
            return {"custom_id": custom_id, "result": {"type": "canceled"}}
        params = item.get("params") or {}
        reply = self._validate(params) or self._next_reply(params)
        if reply.drop:
            reply = Reply.error(500, "api_error", "dropped")
        if reply.is_error:
            error = reply.error_body(request_id=self._next_id("req_fake_"))
            return {"custom_id": custom_id, "result": {"type": "errored", "error": error}}
        message = self.build_message(params, replace(reply, delay=0.0))
        message["usage"]["service_tier"] = "batch"
        return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}

    def _batch_results(self, batch: Batch) -> Outcome:
        """Answer GET results as JSONL once the batch ended."""
        with self._lock:
            if batch.processing_status != "ended":
                return self._error(Reply.error(404, "not_found_error", "batch has not ended"))
            lines = "".join(json.dumps(result) + "\n" for result in batch.results)
        return Outcome(headers={"content-type": "application/x-jsonl"}, body=lines.encode())

    def batch_json(self, batch: Batch) -> JSON:
        """Return the MessageBatch object for a batch."""
        ended = batch.processing_status == "ended"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.processing_status,
            "request_counts": batch.counts(),
            "created_at": batch.created_at,
            "expires_at": batch.expires_at,
            "ended_at": batch.ended_at,
            "archived_at": None,
            "cancel_initiated_at": batch.cancel_initiated_at,
            "results_url": f"{self.url}{BATCHES_PATH}/{batch.id}/results" if ended else None,
        }
