"""A clean `claude -p` subprocess per request: prompt on stdin, one JSON result on stdout.

Every call is a new session: no --continue or --resume, no tools, one turn, nothing saved,
no MCP servers. Success is read from the result's `is_error`, never from the exit code.
"""

from __future__ import annotations

import json
import re
from typing import Any

from freshbatch.errors import ProviderError, TransientError
from freshbatch.providers import Answer, Message, ProviderConfig, Request, Usage
from freshbatch.providers.subprocess_run import Finished, run_process

_RATE_LIMITED = re.compile(r"rate.?limit|overloaded|\b429\b|\b529\b", re.IGNORECASE)
_AUTH_FAILED = re.compile(r"authenticat|log.?in|api.?key|\b401\b", re.IGNORECASE)
_TURN_LABELS = {"assistant": "[your previous answer]", "user": "[validator feedback]"}


class ClaudeCliProvider:
    """Runs config.claude_binary once per request in print mode."""

    name = "claude-cli"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def complete(self, request: Request) -> Answer:
        """Run one fresh `claude -p` and turn its JSON result into an Answer."""
        finished = run_process(
            claude_argv(self.config.claude_binary, request),
            render_prompt(request.messages),
            self.config.timeout,
            label="claude-cli",
        )
        result = _parse_result(finished)
        if result.get("is_error") is not False:
            raise _result_error(result, finished)
        return Answer(
            text=str(result.get("result") or ""),
            stop_reason=str(result.get("stop_reason") or "end_turn"),
            model=request.model,
            usage=Usage.from_dict(result.get("usage")),
            seconds=finished.seconds,
            request_id=_optional_str(result.get("session_id")),
        )


def claude_argv(binary: str, request: Request) -> list[str]:
    """The exact argv of one clean print-mode session (no shell)."""
    return [
        binary,
        "-p",
        "--output-format",
        "json",
        "--model",
        request.model,
        "--system-prompt",
        "\n\n".join(request.system),
        "--tools",
        "",
        "--max-turns",
        "1",
        "--no-session-persistence",
        "--strict-mcp-config",
    ]


def render_prompt(messages: tuple[Message, ...]) -> str:
    """The conversation as one stdin text: the first message as is, later turns labelled."""
    if not messages:
        return ""
    parts = [messages[0].text]
    for message in messages[1:]:
        parts.append(f"{_TURN_LABELS.get(message.role, f'[{message.role}]')}\n{message.text}")
    return "\n\n".join(parts)


def _parse_result(finished: Finished) -> dict[str, Any]:
    """The JSON result object on stdout (the last JSON line if anything else came first)."""
    stdout = finished.stdout.strip()
    candidates = [stdout] + [line for line in reversed(stdout.splitlines()) if line.startswith("{")]
    for candidate in candidates:
        try:
            result = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(result, dict):
            return result
    if "unknown option" in finished.stderr:  # a claude too old for the clean-session flags
        raise ProviderError(f"claude-cli: {_excerpt(finished.last_stderr_line)}; update claude")
    raise TransientError(
        f"claude-cli: no JSON result on stdout (exit {finished.returncode}): "
        f"{_excerpt(stdout or finished.last_stderr_line or '<empty>')}"
    )


def _result_error(result: dict[str, Any], finished: Finished) -> Exception:
    """Classify a result with is_error true: rate limit and others retry, auth stops."""
    message = str(result.get("result") or result.get("subtype") or finished.last_stderr_line)
    text = f"claude-cli: {_excerpt(message or 'error')}"
    if _RATE_LIMITED.search(message):
        return TransientError(text, status=529 if "overloaded" in message.lower() else 429)
    if _AUTH_FAILED.search(message):
        return ProviderError(f"{text}; log in with `claude` or set its credentials")
    return TransientError(text)


def _excerpt(text: str, limit: int = 200) -> str:
    """One line of at most `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _optional_str(value: Any) -> str | None:
    """A string value, or None."""
    return value if isinstance(value, str) else None
