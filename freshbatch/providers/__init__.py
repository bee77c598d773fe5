"""Providers turn one Request into one Answer. Each is one file and one registry entry.

A provider translates its own failures at its boundary: TransientError when a retry may
fix it (429, 529, 5xx, timeouts, dropped connections), ProviderError when not (bad key,
unknown model, missing binary). No other module names a provider.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from freshbatch.ratelimits import RateLimits


@dataclass(frozen=True)
class Message:
    role: str  # "user" or "assistant"
    text: str


@dataclass(frozen=True)
class RequestMeta:
    """Which attempt of which batch a request is; replay and transcripts key on it."""

    course: str
    phase: int
    batch: int
    attempt: int


@dataclass(frozen=True)
class Request:
    """One fresh session: system blocks (cache breakpoint after the last) and messages."""

    model: str
    system: tuple[str, ...]
    messages: tuple[Message, ...]
    max_tokens: int
    meta: RequestMeta
    cache_ttl: str | None = None  # None: the API default (5 minutes); "1h" for long jobs
    # output tokens the phase expects (phase.yaml estimate), until answers were observed
    expected_output: int | None = field(default=None, compare=False)
    # further body parameters in the form the model accepts (thinking, output_config)
    params: Mapping[str, Any] = field(default_factory=dict)
    # called once the response has started (the prompt cache is written by then)
    on_started: Callable[[], None] | None = field(default=None, compare=False, repr=False)
    # seconds left of the batch's --batch-timeout: caps the provider's own per-request timeout
    timeout: float | None = field(default=None, compare=False)

    def timeout_within(self, configured: float) -> float:
        """The provider's per-request timeout, cut to what is left of the batch's."""
        return configured if self.timeout is None else max(min(configured, self.timeout), 0.001)

    def notify_started(self) -> None:
        if self.on_started is not None:
            self.on_started()

    @property
    def prefix_sha256(self) -> str:
        """SHA-256 of the cached prefix: the system blocks, byte for byte, as sent."""
        return hashlib.sha256(
            json.dumps(list(self.system), ensure_ascii=False).encode()
        ).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The request as the Messages API receives it (never holds credentials)."""
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text} for text in self.system]
        if blocks:
            control: dict[str, Any] = {"type": "ephemeral"}
            if self.cache_ttl:
                control["ttl"] = self.cache_ttl
            blocks[-1]["cache_control"] = control
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": blocks,
            "messages": [{"role": m.role, "content": m.text} for m in self.messages],
            **self.params,
        }


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (
            self.input_tokens,
            self.output_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        data = data or {}
        return cls(*(int(data.get(name) or 0) for name in cls.__dataclass_fields__))


_NOT_ANSWER = frozenset({"sent", "prefix_sha256", "limits"})  # kept beside it in transcripts


@dataclass(frozen=True)
class Answer:
    """What came back: the text, why it stopped, what it cost, how long it took."""

    text: str
    stop_reason: str
    model: str
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    first_token_seconds: float | None = None
    request_id: str | None = None
    # what really ran when it is not the Messages API request itself (claude-cli: argv,
    # variables set, stdin, version, the CLI's JSON result); the transcript's "request"
    sent: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    prefix_sha256: str | None = None  # SHA-256 of the system bytes sent, when not the request's
    limits: RateLimits | None = field(default=None, compare=False, repr=False)  # its headers

    @property
    def is_truncated(self) -> bool:
        return self.stop_reason == "max_tokens"

    def to_dict(self) -> dict[str, Any]:
        # field by field: `sent` (a CLI's whole stdin and result) is not copied to be dropped
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_ANSWER}
        data["usage"] = self.usage.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        return cls(
            text=str(data.get("text", "")),
            stop_reason=str(data.get("stop_reason") or "end_turn"),
            model=str(data.get("model") or ""),
            usage=Usage.from_dict(data.get("usage")),
            seconds=float(data.get("seconds") or 0.0),
            first_token_seconds=data.get("first_token_seconds"),
            request_id=data.get("request_id"),
        )


@dataclass(frozen=True)
class ProviderConfig:
    """Settings a provider may read; each provider uses the ones it needs."""

    course_dir: Path
    timeout: float = 600.0
    base_url: str | None = None  # anthropic: else $ANTHROPIC_BASE_URL
    api_key: str | None = field(default=None, repr=False)  # anthropic: else $ANTHROPIC_API_KEY
    command: tuple[str, ...] = ()  # command: argv, no shell
    claude_binary: str = "claude"  # claude-cli
    replay_dir: Path | None = None  # replay: default <course>/recordings
    stream: bool = True  # anthropic: stream answers (long answers need it)


class Provider(Protocol):
    name: str

    def complete(self, request: Request) -> Answer: ...


def prepare_provider(provider: Provider) -> dict[str, Any]:
    """Once per run, before any request: a provider's own checks and what it reports about
    itself for progress.json's run info (claude-cli: its version). Optional for providers."""
    prepare = getattr(provider, "prepare", None)
    return dict(prepare()) if callable(prepare) else {}


ProviderFactory = Callable[[ProviderConfig], Provider]


def _registry() -> dict[str, ProviderFactory]:
    from freshbatch.providers.anthropic import AnthropicProvider
    from freshbatch.providers.claude_cli import ClaudeCliProvider
    from freshbatch.providers.command import CommandProvider
    from freshbatch.providers.replay import ReplayProvider

    return {
        "anthropic": AnthropicProvider,
        "claude-cli": ClaudeCliProvider,
        "command": CommandProvider,
        "replay": ReplayProvider,
    }


PROVIDER_NAMES = ("anthropic", "claude-cli", "command", "replay")


def make_provider(name: str, config: ProviderConfig) -> Provider:
    """Build the named provider (imports lazily: nothing happens at import time)."""
    return _registry()[name](config)
