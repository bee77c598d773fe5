"""The Messages API through the real `anthropic` SDK, one request per complete() call.

The SDK's own retries are off (max_retries=0): freshbatch retries TransientError itself.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from freshbatch.errors import ProviderError, TransientError
from freshbatch.providers import Answer, ProviderConfig, Request, Usage
from freshbatch.ratelimits import RateLimits

if TYPE_CHECKING:
    import anthropic
    import httpx2
    from anthropic.types import Message

_FATAL_STATUSES = {
    400: "bad request",
    401: "authentication failed",
    402: "payment required",
    403: "permission denied",
    413: "request too large",
}


class AnthropicProvider:
    """Sends each request to the Messages API; streams the answer unless config.stream is off."""

    name = "anthropic"

    def __init__(self, config: ProviderConfig) -> None:
        import anthropic  # noqa: F401  (about 2.5 s: paid here, at start-up, not by batch 1)

        self.config = config
        self._client: anthropic.Anthropic | None = None
        self._key = ""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AnthropicProvider(stream={self.config.stream}, timeout={self.config.timeout:g})"

    def complete(self, request: Request) -> Answer:
        """Send one fresh request and return its answer, translating SDK failures."""
        import anthropic
        import httpx2

        client = self._connect()
        try:
            if self.config.stream:
                return self._stream(client, request)
            return self._create(client, request)
        except anthropic.APIStatusError as exc:
            # not chained: the SDK's message quotes the response body, which may echo the key
            raise self._status_error(exc, request.model) from None
        except anthropic.APIConnectionError as exc:
            timed_out = isinstance(exc, anthropic.APITimeoutError)
            what = f"timed out after {self.config.timeout:g}s" if timed_out else "connection failed"
            raise TransientError(f"anthropic: {what}") from exc
        except httpx2.TransportError as exc:  # raised while reading a stream already under way
            raise TransientError(f"anthropic: stream broke off: {type(exc).__name__}") from exc

    # --- Message Batches ----------------------------------------------------------------

    supports_batches = True

    def submit_batch(self, requests: list[tuple[str, Request]]) -> str:
        """Create one Message Batch of (custom_id, request); returns its id."""
        items = [{"custom_id": cid, "params": _params(request)} for cid, request in requests]
        batch = self._call(lambda client: client.messages.batches.create(requests=items))
        return str(batch.id)

    def batch_status(self, batch_id: str) -> str:
        """The batch's processing_status: in_progress, canceling or ended."""
        batch = self._call(lambda client: client.messages.batches.retrieve(batch_id))
        return str(batch.processing_status)

    def batch_results(self, batch_id: str) -> dict[str, Answer | str]:
        """custom_id -> Answer for succeeded requests, or a one-line reason for the others."""

        def fetch(client: anthropic.Anthropic) -> dict[str, Answer | str]:
            found: dict[str, Answer | str] = {}
            for item in client.messages.batches.results(batch_id):
                result = item.result
                if result.type == "succeeded":
                    found[item.custom_id] = _answer(result.message, 0.0, None, None)
                elif result.type == "errored":
                    error = getattr(result.error, "error", None)
                    detail = getattr(error, "message", "") or getattr(error, "type", "")
                    found[item.custom_id] = _redact(f"errored: {detail}", self._key)
                else:
                    found[item.custom_id] = str(result.type)
            return found

        results: dict[str, Answer | str] = self._call(fetch)
        return results

    def _call(self, action: Any) -> Any:
        """Run one SDK call, translating its failures like complete() does."""
        import anthropic
        import httpx2

        client = self._connect()
        try:
            return action(client)
        except anthropic.APIStatusError as exc:
            raise self._status_error(exc, "") from None
        except anthropic.APIConnectionError as exc:
            raise TransientError("anthropic: connection failed or timed out") from exc
        except httpx2.TransportError as exc:
            raise TransientError(f"anthropic: transfer broke off: {type(exc).__name__}") from exc

    def close(self) -> None:
        """Close the HTTP connection pool (a later complete() opens a new one)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _connect(self) -> anthropic.Anthropic:
        """Build the SDK client on first use; nothing touches the network before."""
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> anthropic.Anthropic:
        """Make the client from config, else ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL."""
        import anthropic

        key = self.config.api_key or os.environ.get("ANTHROPIC_API_KEY", "")
        if not key:
            raise ProviderError(
                "ANTHROPIC_API_KEY is not set; export it, or choose another --provider "
                "(claude-cli, command, replay)"
            )
        self._key = key
        base_url = self.config.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        return anthropic.Anthropic(
            api_key=key, base_url=base_url, timeout=self.config.timeout, max_retries=0
        )

    def _create(self, client: anthropic.Anthropic, request: Request) -> Answer:
        """One non-streamed request."""
        started = time.monotonic()
        raw = client.messages.with_raw_response.create(
            **_params(request), timeout=request.timeout_within(self.config.timeout)
        )
        message: Message = raw.parse()
        answer = _answer(message, time.monotonic() - started, None, message._request_id)
        return replace(answer, limits=RateLimits.from_headers(raw.headers))

    def _stream(self, client: anthropic.Anthropic, request: Request) -> Answer:
        """One streamed request, its server-sent events read as plain JSON.

        The SDK sends the request, checks the status and maps errors; the events are split
        from the raw bytes and parsed here with json.loads, because building a typed object
        for each of the thousands of text deltas of a long answer costs more CPU than the
        rest of a batch attempt. What remains costs per event, in httpx and the socket reads.
        """
        started = time.monotonic()
        params = {**_params(request), "stream": True,
                  "timeout": request.timeout_within(self.config.timeout)}  # fmt: skip
        with client.messages.with_streaming_response.create(**params) as response:
            request.notify_started()  # status 200 and headers are in: the cache is written
            limits = RateLimits.from_headers(response.headers)
            state = _StreamState(request.model)
            for data in sse_data(response.iter_bytes()):
                state.take(json.loads(data), started)
            request_id = response.headers.get("request-id")
        if not state.stopped:
            raise TransientError("anthropic: stream ended before message_stop")
        return replace(state.answer(time.monotonic() - started, request_id), limits=limits)

    def _status_error(self, exc: anthropic.APIStatusError, model: str) -> Exception:
        """Translate an HTTP error (or an error event inside a 200 stream)."""
        status = exc.status_code
        detail = _redact(f"{status} {exc.type or 'error'}: {exc.api_message or ''}", self._key)
        if status == 404:
            return ProviderError(f"anthropic: model {model!r} not found ({detail}); check --model")
        if status in _FATAL_STATUSES:
            return ProviderError(f"anthropic: {_FATAL_STATUSES[status]} ({detail})")
        if status < 400:  # an error event inside a 200 stream (e.g. overloaded_error)
            return TransientError(f"anthropic: stream failed ({detail})")
        if status in (408, 409, 429) or status >= 500:
            headers = exc.response.headers
            return TransientError(
                f"anthropic: {detail}",
                retry_after=parse_retry_after(headers),
                status=status,
                limits=RateLimits.from_headers(headers),
            )
        return ProviderError(f"anthropic: request refused ({detail})")


class _StreamState:
    """What the events of one streamed message add up to."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.parts: list[str] = []
        self.usage: dict[str, int] = {}
        self.stop_reason: str | None = None
        self.first: float | None = None
        self.stopped = False

    def take(self, event: dict[str, Any], started: float) -> None:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                if self.first is None:
                    self.first = time.monotonic() - started
                self.parts.append(delta.get("text", ""))
        elif kind == "message_start":
            message = event.get("message") or {}
            self.model = message.get("model") or self.model
            self.usage.update({k: v for k, v in (message.get("usage") or {}).items()
                               if isinstance(v, int)})  # fmt: skip
        elif kind == "message_delta":
            self.stop_reason = (event.get("delta") or {}).get("stop_reason") or self.stop_reason
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items()
                               if isinstance(v, int)})  # fmt: skip
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            error = event.get("error") or {}
            raise TransientError(
                f"anthropic: stream failed ({error.get('type', 'error')}: "
                f"{str(error.get('message', ''))[:200]})"
            )

    def answer(self, seconds: float, request_id: str | None) -> Answer:
        return Answer(
            text="".join(self.parts),
            stop_reason=self.stop_reason or "end_turn",
            model=self.model,
            usage=Usage.from_dict(self.usage),
            seconds=seconds,
            first_token_seconds=self.first,
            request_id=request_id,
        )


def sse_data(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The data of each server-sent event in a byte stream, as bytes (WHATWG rules).

    Lines end with LF, CRLF or CR; an event's `data:` lines are joined with LF and the event
    ends at a blank line; other fields (`event:`, `id:`, `retry:`) and comments are skipped.
    """
    pending = b""
    data: list[bytes] = []
    for chunk in _lf_lines(chunks):
        lines = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
        pending = lines.pop()
        for line in lines:
            if not line:
                if data:
                    yield data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
    if pending.startswith(b"data:"):
        value = pending[5:]
        data.append(value[1:] if value.startswith(b" ") else value)
    if data:  # the stream ended without the final blank line
        yield b"\n".join(data)


def _lf_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks with CRLF and lone CR line ends turned into LF (a CRLF may span chunks)."""
    held_cr = False
    for chunk in chunks:
        if held_cr:
            chunk, held_cr = b"\r" + chunk, False
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):  # perhaps the first half of a CRLF
                chunk, held_cr = chunk[:-1], True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        yield chunk
    if held_cr:
        yield b"\n"


def _params(request: Request) -> dict[str, Any]:
    """The request body as SDK keyword arguments (no empty system list)."""
    params = request.to_dict()
    if not params["system"]:
        del params["system"]
    return params


def _answer(
    message: Message, seconds: float, first: float | None, request_id: str | None
) -> Answer:
    """Turn an SDK Message into an Answer."""
    text = "".join(block.text for block in message.content if block.type == "text")
    usage = message.usage
    return Answer(
        text=text,
        stop_reason=message.stop_reason or "end_turn",
        model=message.model,
        usage=Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
            cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        ),
        seconds=seconds,
        first_token_seconds=first,
        request_id=request_id,
    )


def parse_retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds to wait from `retry-after-ms`, else `retry-after` (seconds or an HTTP date)."""
    milliseconds = _float(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return max(milliseconds / 1000, 0.0)
    value = headers.get("retry-after")
    seconds = _float(value)
    if seconds is not None:
        return max(seconds, 0.0)
    parsed = email.utils.parsedate_tz(value) if value else None
    if parsed is None:
        return None
    return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)


def _float(value: str | None) -> float | None:
    """Parse a header value as a float, or None."""
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _redact(text: str, key: str) -> str:
    """One line, at most 300 characters, with the API key (if any) blanked out."""
    if key:
        text = text.replace(key, "[redacted]")
    line = " ".join(text.split())
    return line if len(line) <= 300 else line[:297] + "..."
