"""The anthropic provider, driving the real SDK against the local fake Messages API."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from freshbatch.errors import ProviderError, TransientError
from freshbatch.providers import Message, ProviderConfig, Request, RequestMeta, make_provider
from freshbatch.providers.anthropic import AnthropicProvider, sse_data
from tests.fakes.messages_api import FakeMessagesAPI, Reply, estimate_tokens

KEY = "sk-test-0123456789"
MODEL = "claude-test-model"
FRAMING = "You write one batch of a language course."
INTELLIGENCE = "Phase 1 intelligence. " * 40
MakeProvider = Callable[..., AnthropicProvider]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMessagesAPI]:
    """A running fake API that the environment points the provider at."""
    with FakeMessagesAPI() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        yield server


@pytest.fixture
def make(tmp_path: Path) -> Iterator[MakeProvider]:
    """Build providers from ProviderConfig settings; close them all after the test."""
    made: list[AnthropicProvider] = []

    def build(**settings: Any) -> AnthropicProvider:
        provider = AnthropicProvider(ProviderConfig(course_dir=tmp_path, **settings))
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def request(batch: int = 1, *, model: str = MODEL, **kw: Any) -> Request:
    """A one-turn request for a batch of phase 1."""
    return Request(
        model=model,
        system=(FRAMING, INTELLIGENCE),
        messages=(Message("user", f"Batch {batch}: translate the seeds."),),
        max_tokens=2000,
        meta=RequestMeta("demo", 1, batch, 1),
        **kw,
    )


@pytest.mark.parametrize("stream", [True, False])
def test_answer_with_usage_and_cache(
    api: FakeMessagesAPI, make: MakeProvider, stream: bool
) -> None:
    """Text, stop reason, model, usage (cache write then read), timings and request id."""
    api.enqueue(Reply.message('{"translations": {}}'), Reply.message("second"))
    provider = make(stream=stream)
    first = provider.complete(request(1))
    second = provider.complete(request(2))
    assert first.text == '{"translations": {}}'
    assert (first.stop_reason, first.model) == ("end_turn", MODEL)
    prefix = estimate_tokens(FRAMING + INTELLIGENCE)
    assert first.usage.cache_creation_input_tokens == prefix
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.input_tokens == estimate_tokens("Batch 1: translate the seeds.")
    assert first.usage.output_tokens == estimate_tokens('{"translations": {}}')
    assert (second.text, second.usage.cache_read_input_tokens) == ("second", prefix)
    assert second.usage.cache_creation_input_tokens == 0
    assert first.request_id is not None and first.request_id.startswith("req_")
    assert first.seconds > 0
    if stream:
        assert first.first_token_seconds is not None
        assert 0 < first.first_token_seconds <= first.seconds
    else:
        assert first.first_token_seconds is None


def test_long_answer_in_small_deltas(api: FakeMessagesAPI, make: MakeProvider) -> None:
    """Many small text deltas (as the API sends them), multi-byte text cut mid-character."""
    text = '{"t": "perché 你好\\n\\"fine\\""}' * 200
    api.stream_chunk_chars = 3
    api.enqueue(Reply.message(text))
    answer = make().complete(request(1))
    assert answer.text == text
    assert answer.stop_reason == "end_turn"
    assert answer.usage.output_tokens == estimate_tokens(text)


SSE = (
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'  # CRLF line ends
    b': a comment\nid: 7\nretry: 10\ndata:{"b":\n'  # data split over two lines
    b"data: 2}\n\n"
    b"event: ping\n\n"  # an event without data yields nothing
    b'data: {"c": "\\r\\n"}\r\r'  # lone CR line ends
    b'data: ["last, no blank line"]'
)
SSE_DATA = [b'{"a": 1}', b'{"b":\n2}', b'{"c": "\\r\\n"}', b'["last, no blank line"]']


def test_sse_data_whole() -> None:
    assert list(sse_data([SSE])) == SSE_DATA


def test_sse_data_in_any_pieces() -> None:
    """The same events however the bytes are cut: every one-cut and two-cut split, bytewise."""
    bytewise = [SSE[i : i + 1] for i in range(len(SSE))]
    assert list(sse_data(bytewise)) == SSE_DATA
    for i in range(1, len(SSE)):
        assert list(sse_data([SSE[:i], SSE[i:]])) == SSE_DATA, f"cut at {i}"
        for j in range(i + 1, len(SSE), 7):
            pieces = [SSE[:i], SSE[i:j], SSE[j:]]
            assert list(sse_data(pieces)) == SSE_DATA, f"cut at {i} and {j}"


@pytest.mark.parametrize("stream", [True, False])
def test_what_the_server_received(api: FakeMessagesAPI, make: MakeProvider, stream: bool) -> None:
    """System blocks with cache_control on the last only, messages, model, max_tokens, key."""
    api.enqueue(Reply.message("ok"))
    make(stream=stream).complete(request(3))
    (received,) = api.message_requests()
    body = received.body
    assert body["system"] == [
        {"type": "text", "text": FRAMING},
        {"type": "text", "text": INTELLIGENCE, "cache_control": {"type": "ephemeral"}},
    ]
    assert body["messages"] == [{"role": "user", "content": "Batch 3: translate the seeds."}]
    assert (body["model"], body["max_tokens"]) == (MODEL, 2000)
    assert body.get("stream", False) is stream
    assert "temperature" not in body
    assert received.api_key == KEY
    assert received.headers["x-stainless-retry-count"] == "0"


def test_cached_prefix_identical_across_batches(api: FakeMessagesAPI, make: MakeProvider) -> None:
    """Batches of one phase send byte-identical system blocks, and a 1h TTL when asked."""
    api.responder = lambda body: Reply.message("ok")
    provider = make()
    for batch in (1, 2):
        provider.complete(request(batch, cache_ttl="1h"))
    first, second = (r.body for r in api.message_requests())
    assert first["system"] == second["system"]
    assert first["system"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert (api.cache.misses, api.cache.hits) == (1, 1)


@pytest.mark.parametrize("stream", [True, False])
def test_max_tokens_stop_reason(api: FakeMessagesAPI, make: MakeProvider, stream: bool) -> None:
    """A truncated answer keeps stop_reason max_tokens."""
    api.enqueue(Reply.message('{"transl', stop_reason="max_tokens"))
    answer = make(stream=stream).complete(request())
    assert answer.stop_reason == "max_tokens" and answer.is_truncated


def retry_errors() -> list[Any]:
    """Transient HTTP errors and the retry_after each should report."""
    return [
        pytest.param(Reply.error(429, headers={"retry-after": "7"}), 429, 7.0, id="429"),
        pytest.param(Reply.error(429, headers={"retry-after-ms": "1500"}), 429, 1.5, id="429-ms"),
        pytest.param(Reply.error(529), 529, None, id="529"),
        pytest.param(Reply.error(500), 500, None, id="500"),
        pytest.param(Reply.error(503, "api_error", headers={"retry-after": "2"}), 503, 2.0),
    ]


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(("reply", "status", "retry_after"), retry_errors())
def test_transient_http_errors(
    api: FakeMessagesAPI,
    make: MakeProvider,
    stream: bool,
    reply: Reply,
    status: int,
    retry_after: float | None,
) -> None:
    """429/529/5xx become TransientError with status and retry_after, after one request."""
    api.enqueue(reply)
    with pytest.raises(TransientError) as info:
        make(stream=stream).complete(request())
    assert info.value.status == status
    if retry_after is None:
        assert info.value.retry_after is None
    else:
        assert info.value.retry_after == pytest.approx(retry_after, abs=2.0)
    assert len(api.message_requests()) == 1


def test_retry_after_http_date(api: FakeMessagesAPI, make: MakeProvider) -> None:
    """retry-after may be an HTTP date: it becomes the seconds until then."""
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    api.enqueue(Reply.error(429, headers={"retry-after": date}))
    with pytest.raises(TransientError) as info:
        make().complete(request())
    assert info.value.retry_after == pytest.approx(30.0, abs=2.0)


@pytest.mark.parametrize("stream", [True, False])
def test_dropped_connection(api: FakeMessagesAPI, make: MakeProvider, stream: bool) -> None:
    """A connection closed without a response is transient, and the next call works."""
    api.enqueue(Reply.dropped(), Reply.message("after"))
    provider = make(stream=stream)
    with pytest.raises(TransientError, match="connection"):
        provider.complete(request())
    assert len(api.message_requests()) == 1
    assert provider.complete(request()).text == "after"


@pytest.mark.parametrize("stream", [True, False])
def test_timeout(api: FakeMessagesAPI, make: MakeProvider, stream: bool) -> None:
    """A reply slower than config.timeout is a transient timeout."""
    api.enqueue(Reply.slow(3.0, "late"))
    with pytest.raises(TransientError, match="timed out after 0.3s"):
        make(stream=stream, timeout=0.3).complete(request())
    assert len(api.message_requests()) == 1


class BrokenStreamAPI(FakeMessagesAPI):
    """Answers streams with 200, a little text, then an error event or nothing more."""

    error_event: bytes | None = None

    def _create_message(self, body: Any) -> Any:
        outcome = super()._create_message(body)
        if outcome.events:
            outcome.events = outcome.events[:4] + ([self.error_event] if self.error_event else [])
        return outcome


@pytest.mark.parametrize("error", [True, False], ids=["error-event", "cut-short"])
def test_stream_failing_midway(
    monkeypatch: pytest.MonkeyPatch, make: MakeProvider, error: bool
) -> None:
    """A 200 stream that breaks off (error event, or no message_stop) is transient."""
    server = BrokenStreamAPI()
    with server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        if error:
            server.error_event = (
                b'event: error\ndata: {"type": "error", "error": '
                b'{"type": "overloaded_error", "message": "Overloaded"}}\n\n'
            )
        server.enqueue(Reply.message("a long answer that will not arrive whole"))
        with pytest.raises(TransientError, match="overloaded" if error else "message_stop"):
            make().complete(request())
        assert len(server.message_requests()) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_credentials_refused(api: FakeMessagesAPI, make: MakeProvider, status: int) -> None:
    """401/403 stop the run; the message is one line and never holds the key."""
    api.enqueue(Reply.error(status, message=f"invalid x-api-key {KEY}\nsecond line"))
    with pytest.raises(ProviderError) as info:
        make().complete(request())
    message = str(info.value)
    assert KEY not in message and "\n" not in message
    assert str(status) in message and info.value.exit_code == 3
    assert len(api.message_requests()) == 1


def test_wrong_key_from_server(api: FakeMessagesAPI, make: MakeProvider) -> None:
    """A key the server does not accept is a ProviderError naming authentication."""
    api.expected_api_key = "sk-other"
    with pytest.raises(ProviderError, match="authentication"):
        make(stream=False).complete(request())


def test_unknown_model(api: FakeMessagesAPI, make: MakeProvider) -> None:
    """A 404 for the model says which model was not found."""
    api.unknown_models.add("claude-nope")
    with pytest.raises(ProviderError, match="model 'claude-nope' not found"):
        make().complete(request(model="claude-nope"))


def test_bad_request(api: FakeMessagesAPI, make: MakeProvider) -> None:
    """A 400 is not retried."""
    api.enqueue(Reply.error(400, message="max_tokens: too large"))
    with pytest.raises(ProviderError, match="max_tokens: too large"):
        make().complete(request())


def test_missing_key(monkeypatch: pytest.MonkeyPatch, make: MakeProvider) -> None:
    """Without a key, construction succeeds and complete() raises ProviderError."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    provider = make()
    with pytest.raises(ProviderError, match="ANTHROPIC_API_KEY is not set"):
        provider.complete(request())


def test_config_overrides_environment(api: FakeMessagesAPI, make: MakeProvider) -> None:
    """config.api_key and config.base_url win over the environment and stay out of repr."""
    with FakeMessagesAPI() as other:
        other.enqueue(Reply.message("from config"))
        provider = make(api_key="sk-config-key", base_url=other.url)
        assert provider.complete(request()).text == "from config"
        assert other.message_requests()[0].api_key == "sk-config-key"
        assert "sk-config-key" not in repr(provider) + repr(provider.config)
    assert api.message_requests() == []


def test_registry_builds_anthropic(tmp_path: Path) -> None:
    """make_provider("anthropic", ...) builds this provider without touching the network."""
    provider = make_provider("anthropic", ProviderConfig(course_dir=tmp_path))
    assert isinstance(provider, AnthropicProvider) and provider.name == "anthropic"
