"""Tests of the fake Messages API server, driven by the real `anthropic` SDK."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.fakes.messages_api import FakeMessagesAPI, Reply, estimate_tokens

MODEL = "claude-test-model"


@pytest.fixture
def api() -> Iterator[FakeMessagesAPI]:
    """A running fake server, stopped after the test."""
    with FakeMessagesAPI() as server:
        yield server


@pytest.fixture
def client(api: FakeMessagesAPI) -> Iterator[anthropic.Anthropic]:
    """A real SDK client pointed at the fake server, without retries."""
    with anthropic.Anthropic(api_key="test-key", base_url=api.url, max_retries=0) as sdk:
        yield sdk


def _ask(client: anthropic.Anthropic, text: str = "Hello", **kw: Any) -> anthropic.types.Message:
    """Send a one-turn message with the test model."""
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
    }
    params.update(kw)
    message: anthropic.types.Message = client.messages.create(**params)
    return message


def _cached_request(question: str) -> dict[str, Any]:
    """Build request params whose system prompt carries a cache_control breakpoint."""
    system = [{"type": "text", "text": "S" * 400, "cache_control": {"type": "ephemeral"}}]
    return {
        "model": MODEL,
        "max_tokens": 64,
        "system": system,
        "messages": [{"role": "user", "content": question}],
    }


def test_plain_message(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """A scripted reply arrives as a parsed Message with usage and stop_reason."""
    api.enqueue(Reply.message("Hello there, friend!"))
    message = _ask(client, "Hi" * 20)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello there, friend!"
    assert message.stop_reason == "end_turn"
    assert message.model == MODEL
    assert message.usage.input_tokens == estimate_tokens("Hi" * 20)
    assert message.usage.output_tokens == estimate_tokens("Hello there, friend!")
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0
    assert message.id.startswith("msg_")


def test_request_id_header(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """Every response carries a request-id header that the SDK exposes."""
    api.enqueue(Reply.message("ok"))
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
    )
    assert raw.request_id is not None and raw.request_id.startswith("req_")
    assert raw.parse().content[0].text == "ok"  # type: ignore[union-attr]


def test_explicit_usage_overrides(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """Reply.usage replaces the computed counts."""
    api.enqueue(Reply.message("x", usage={"input_tokens": 7, "output_tokens": 9}))
    usage = _ask(client).usage
    assert (usage.input_tokens, usage.output_tokens) == (7, 9)


def test_streaming(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """messages.stream yields the full text in pieces and the final usage."""
    text = "The quick brown fox jumps over the lazy dog."
    api.enqueue(Reply.message(text))
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Tell me"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1
    assert "".join(pieces) == text
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == estimate_tokens(text)
    assert final.usage.input_tokens == estimate_tokens("Tell me")
    assert api.message_requests()[-1].body["stream"] is True


def test_streaming_raw_events(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """The raw SSE event order matches the real API."""
    api.enqueue(Reply.message("abc", stop_reason="max_tokens"))
    stream = client.messages.create(
        model=MODEL, max_tokens=1, messages=[{"role": "user", "content": "x"}], stream=True
    )
    with stream:
        kinds = [event.type for event in stream]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_max_tokens_stop_reason(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """A max_tokens stop reason is reported as such."""
    api.enqueue(Reply.message("truncated", stop_reason="max_tokens"))
    assert _ask(client, max_tokens=2).stop_reason == "max_tokens"


def test_rate_limit_with_retry_after(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """429 surfaces as RateLimitError with the retry-after header."""
    api.enqueue(Reply.error(429, "rate_limit_error", "slow down", headers={"retry-after": "7"}))
    with pytest.raises(anthropic.RateLimitError) as info:
        _ask(client)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.type == "rate_limit_error"
    assert info.value.api_message == "slow down"
    assert info.value.request_id is not None


def test_sdk_retries_after_retry_after(api: FakeMessagesAPI) -> None:
    """With retries enabled the SDK honours retry-after and gets the next reply."""
    api.enqueue(Reply.error(429, headers={"retry-after": "0.01"}), Reply.message("second"))
    with anthropic.Anthropic(api_key="test-key", base_url=api.url, max_retries=1) as sdk:
        assert _ask(sdk).content[0].text == "second"  # type: ignore[union-attr]
    assert len(api.message_requests()) == 2
    assert api.message_requests()[1].headers["x-stainless-retry-count"] == "1"


def test_overloaded_529(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """529 maps to OverloadedError, a subclass of InternalServerError."""
    api.enqueue(Reply.error(529))
    with pytest.raises(anthropic.OverloadedError) as info:
        _ask(client)
    assert isinstance(info.value, anthropic.InternalServerError)
    assert info.value.status_code == 529
    assert info.value.type == "overloaded_error"


def test_internal_server_error(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """500 maps to InternalServerError."""
    api.enqueue(Reply.error(500, "api_error"))
    with pytest.raises(anthropic.InternalServerError) as info:
        _ask(client)
    assert info.value.status_code == 500


def test_unscripted_request_is_500(client: anthropic.Anthropic) -> None:
    """Without a queue or responder the fake answers 500."""
    with pytest.raises(anthropic.InternalServerError):
        _ask(client)


def test_authentication_error(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """401 maps to AuthenticationError."""
    api.enqueue(Reply.error(401, "authentication_error", "invalid x-api-key"))
    with pytest.raises(anthropic.AuthenticationError):
        _ask(client)


def test_expected_api_key(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """With expected_api_key set, a wrong key gets 401 and the right one passes."""
    api.expected_api_key = "other-key"
    api.enqueue(Reply.message("ok"))
    with pytest.raises(anthropic.AuthenticationError):
        _ask(client)
    api.expected_api_key = "test-key"
    assert _ask(client).content[0].text == "ok"  # type: ignore[union-attr]


def test_dropped_connection(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """A dropped connection surfaces as APIConnectionError (not a timeout)."""
    api.enqueue(Reply.dropped(), Reply.message("after"))
    with pytest.raises(anthropic.APIConnectionError) as info:
        _ask(client)
    assert not isinstance(info.value, anthropic.APITimeoutError)
    assert _ask(client).content[0].text == "after"  # type: ignore[union-attr]


def test_slow_reply_times_out(api: FakeMessagesAPI) -> None:
    """A reply slower than the client timeout raises APITimeoutError."""
    api.enqueue(Reply.slow(3.0, "late"))
    with anthropic.Anthropic(api_key="k", base_url=api.url, max_retries=0, timeout=0.2) as sdk:
        with pytest.raises(anthropic.APITimeoutError):
            _ask(sdk)


def test_slow_reply_within_timeout(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """A short delay still answers normally."""
    api.enqueue(Reply.slow(0.05, "eventually"))
    assert _ask(client).content[0].text == "eventually"  # type: ignore[union-attr]


def test_prompt_cache_write_then_read(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """Two requests sharing a cache_control prefix write then read the cache."""
    api.responder = lambda request: Reply.message("answer")
    first = client.messages.create(**_cached_request("What is one?"))
    second = client.messages.create(**_cached_request("And two, please?"))
    prefix_tokens = estimate_tokens("S" * 400)
    assert first.usage.cache_creation_input_tokens == prefix_tokens
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.input_tokens == estimate_tokens("What is one?")
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.cache_read_input_tokens == prefix_tokens
    assert second.usage.input_tokens == estimate_tokens("And two, please?")
    assert (api.cache.misses, api.cache.hits) == (1, 1)


def test_prompt_cache_differs_by_prefix(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """A changed prefix misses; requests without cache_control do not touch the cache."""
    api.responder = lambda request: Reply.message("answer")
    client.messages.create(**_cached_request("q"))
    changed = _cached_request("q")
    changed["system"][0]["text"] = "T" * 400
    assert client.messages.create(**changed).usage.cache_creation_input_tokens == 100
    _ask(client)
    assert (api.cache.misses, api.cache.hits) == (2, 0)
    assert len(api.cache.keys) == 2


def test_prompt_cache_in_stream(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """Streamed final usage reports cache reads too."""
    api.responder = lambda request: Reply.message("streamed answer")
    client.messages.create(**_cached_request("a"))
    with client.messages.stream(**_cached_request("b")) as stream:
        usage = stream.get_final_message().usage
    assert usage.cache_read_input_tokens == 100
    assert usage.output_tokens == estimate_tokens("streamed answer")


def test_recorded_requests(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """Bodies and lower-cased headers (including the API key) are recorded."""
    api.enqueue(Reply.message("ok"))
    _ask(client, "record me", stop_sequences=["END"], extra_body={"temperature": 0.0})
    (recorded,) = api.requests
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.body["messages"] == [{"role": "user", "content": "record me"}]
    assert recorded.body["model"] == MODEL
    assert recorded.body["stop_sequences"] == ["END"]
    assert recorded.body["temperature"] == 0.0
    assert recorded.api_key == "test-key"
    assert recorded.headers["authorization"] == "Bearer test-key"  # SDK 2.x: no x-api-key
    assert "anthropic-version" in recorded.headers
    assert all(key == key.lower() for key in recorded.headers)


def test_responder_sees_request(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """The responder gets the request JSON when the queue is empty."""
    api.enqueue(Reply.message("queued"))
    api.responder = lambda request: Reply.message("echo:" + request["messages"][0]["content"])
    assert _ask(client, "a").content[0].text == "queued"  # type: ignore[union-attr]
    assert _ask(client, "b").content[0].text == "echo:b"  # type: ignore[union-attr]


def test_unknown_model(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """A model in unknown_models answers 404 without consuming the queue."""
    api.unknown_models.add("claude-nope")
    api.enqueue(Reply.message("kept"))
    with pytest.raises(anthropic.NotFoundError) as info:
        _ask(client, model="claude-nope")
    assert info.value.type == "not_found_error"
    assert api.pending == 1


def test_concurrent_requests(api: FakeMessagesAPI) -> None:
    """Concurrent clients are answered and recorded."""
    api.responder = lambda request: Reply.message(request["messages"][0]["content"].upper())
    results: dict[int, str] = {}

    def worker(n: int) -> None:
        """Send one request."""
        with anthropic.Anthropic(api_key="k", base_url=api.url, max_retries=0) as sdk:
            results[n] = _ask(sdk, f"msg{n}").content[0].text  # type: ignore[union-attr]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == {n: f"MSG{n}" for n in range(8)}
    assert len(api.requests) == 8


def test_count_tokens(api: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    """count_tokens uses the same estimate."""
    counted = client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "x" * 40}]
    )
    assert counted.input_tokens == 10


def test_batches_round_trip(client: anthropic.Anthropic, api: FakeMessagesAPI) -> None:
    """Batches create, retrieve (ending after polls) and results parse in the SDK."""
    api.batch_polls_until_end = 2
    api.enqueue(Reply.message("first"), Reply.error(529, "overloaded_error"))
    requests: Any = [
        {
            "custom_id": f"r{n}",
            "params": {
                "model": MODEL,
                "max_tokens": 8,
                "messages": [{"role": "user", "content": f"q{n}"}],
            },
        }
        for n in range(2)
    ]
    batch = client.messages.batches.create(requests=requests)
    assert batch.id == "msgbatch_1" and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 2 and batch.results_url is None
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (1, 1)
    results = {item.custom_id: item.result for item in client.messages.batches.results(batch.id)}
    assert results["r0"].type == "succeeded"
    assert results["r0"].message.content[0].text == "first"  # type: ignore[union-attr]
    assert results["r1"].type == "errored"
    assert results["r1"].error.error.type == "overloaded_error"
    assert [b.id for b in client.messages.batches.list()] == ["msgbatch_1"]


def test_batch_cancel(client: anthropic.Anthropic, api: FakeMessagesAPI) -> None:
    """A canceled batch ends with canceled results."""
    api.batch_polls_until_end = 5
    params: Any = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "q"}]}
    batch = client.messages.batches.create(requests=[{"custom_id": "only", "params": params}])
    assert client.messages.batches.cancel(batch.id).processing_status == "canceling"
    assert client.messages.batches.retrieve(batch.id).request_counts.canceled == 1
    assert [r.result.type for r in client.messages.batches.results(batch.id)] == ["canceled"]


def test_stop_releases_port_and_connections() -> None:
    """stop() returns promptly even with an open keep-alive connection, and frees the port."""
    server = FakeMessagesAPI().start()
    server.enqueue(Reply.message("ok"))
    port = int(server.url.rsplit(":", 1)[1])
    with anthropic.Anthropic(api_key="k", base_url=server.url, max_retries=0) as sdk:
        _ask(sdk)
        server.stop()
    server.stop()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
