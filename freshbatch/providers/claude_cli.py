"""A clean `claude -p` session per attempt: Claude Code's CLI, isolated, one request, one answer.

Each attempt runs the CLI once in an empty temporary working directory, with the system prompt
in a file (`--system-prompt-file`: exact bytes, no argv size limit) and the prompt on stdin.
With ANTHROPIC_API_KEY set it runs in bare mode (`--bare`: no hooks, plugins, MCP, memory or
CLAUDE.md; API-key auth only) with a temporary HOME, so nothing of the user's `~/.claude`
is read or written. Without a key (a Claude subscription login) it keeps HOME, where the
login lives, and loads no settings file (`--setting-sources ""`), no auto-memory, no MCP.
Either way: no tools, no slash commands, no thinking, no telemetry, the phase's max_tokens,
and no retries inside the CLI (freshbatch's own retries and rate-limit gate decide).

Flags and variables were checked against the installed CLI's `--help` and its behaviour
against tests/fakes/messages_api.py (Claude Code 2.1.332, 2026-12-02); see README.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freshbatch.errors import ProviderError, TransientError
from freshbatch.providers import Answer, Message, ProviderConfig, Request, Usage
from freshbatch.providers.subprocess_run import Finished, run_process, run_streaming

MIN_VERSION = (2, 1, 282)  # the oldest release seen to count its own continuations in num_turns
TESTED_VERSION = "2.1.332"
_TURN_LABELS = {"assistant": "[your previous answer]", "user": "[validator feedback]"}
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_TRUNCATED = re.compile(r"exceeded the \d+ output token maximum", re.IGNORECASE)
FATAL_STATUSES = frozenset({400, 401, 403, 404, 413})
RATE_LIMITS = frozenset({429, 529})

# Set for every call, whichever the auth: the phase's limit, no thinking, no retries of the
# CLI's own, and no traffic but the Messages API (telemetry, error reports, update checks).
PRIVACY_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
}
SESSION_ENV = {
    "CLAUDE_CODE_DISABLE_THINKING": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",
    "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
    **PRIVACY_ENV,
}

# Set by a Claude Code that runs freshbatch (from its Bash tool, say): the child would take
# itself for a nested session of that one, so they are not passed on.
NESTED_SESSION_ENV = frozenset({"CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_CODE_SSE_PORT"})


@dataclass(frozen=True)
class Invocation:
    """One CLI call: argv (no secrets), the variables freshbatch sets, where it runs."""

    argv: list[str]
    env_set: dict[str, str]
    cwd: Path
    mode: str  # "api-key" (bare) or "subscription"

    def environment(self) -> dict[str, str]:
        """The child's whole environment: the caller's, with freshbatch's variables on top."""
        env = {k: v for k, v in os.environ.items() if k not in NESTED_SESSION_ENV}
        env.update(self.env_set)
        return env


class ClaudeCliProvider:
    """Runs config.claude_binary once per request in print mode, isolated."""

    name = "claude-cli"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._version: str | None = None
        self._lock = threading.Lock()

    def prepare(self) -> dict[str, Any]:
        """`claude --version` once per run: refuse a CLI too old for the flags used."""
        return {"claude_version": self.version()}

    def version(self) -> str:
        """The installed CLI's version, checked once against MIN_VERSION."""
        with self._lock:
            if self._version is None:
                self._version = check_version(self.config.claude_binary, self.config.timeout)
            return self._version

    def complete(self, request: Request) -> Answer:
        """Run one fresh, isolated `claude -p` and turn its JSON result into an Answer."""
        version = self.version()
        system = "\n\n".join(request.system)
        prompt = render_prompt(request.messages)
        with tempfile.TemporaryDirectory(prefix="freshbatch-claude-") as scratch:
            invocation = build_invocation(self.config.claude_binary, request, Path(scratch))
            Path(invocation.argv[invocation.argv.index("--system-prompt-file") + 1]).write_text(
                system, encoding="utf-8"
            )
            stream = Stream()
            finished, stopped = run_streaming(
                invocation.argv,
                prompt,
                request.timeout_within(self.config.timeout),
                label="claude-cli",
                stop=stream.read,
                env=invocation.environment(),
                cwd=invocation.cwd,
            )
        sent = describe_sent(invocation, system, prompt, version, request)
        if stopped:
            result = stream.cut_off(request.max_tokens)
        else:
            result = stream.result or parse_result(finished)
        sent["result"] = result
        return answer_from_result(result, finished, request, sent)


class Stream:
    """Reads the CLI's stream-json events; stops it as soon as it continues a cut-off answer.

    With no tools there is no reason for a second turn but one: the answer hit max_tokens and
    the CLI feeds itself a "continue" user turn (it does so up to 3 times, and no flag turns
    that off). The first `user` event is that moment: freshbatch kills the process before the
    continuation is generated, so a truncated attempt costs one turn, not four.
    """

    def __init__(self) -> None:
        self.result: dict[str, Any] | None = None
        self.first_turn: dict[str, Any] | None = None

    def read(self, line: str) -> bool:
        """Take one stdout line; True when the CLI must be stopped."""
        try:
            event = json.loads(line)
        except ValueError:
            return False
        if not isinstance(event, dict):
            return False
        kind = event.get("type")
        if kind == "result":
            self.result = event
        elif kind == "assistant" and self.first_turn is None:
            message = event.get("message")
            self.first_turn = message if isinstance(message, dict) else {}
        elif kind == "user" and self.first_turn is not None:
            return True
        return False

    def cut_off(self, max_tokens: int) -> dict[str, Any]:
        """The result of a stopped continuation: the first turn hit max_tokens.

        Its usage is the first turn's: input and cache tokens as the API reported them when
        the message started, and max_tokens output tokens (what a max_tokens stop uses up).
        """
        turn = self.first_turn or {}
        usage = dict(turn.get("usage") or {})
        usage["output_tokens"] = max_tokens
        blocks = turn.get("content") or []
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict))
        return {
            "type": "result",
            "subtype": "stopped_by_freshbatch",
            "is_error": True,
            "num_turns": 2,
            "stop_reason": "max_tokens",
            "result": text,
            "usage": usage,
            "note": "the answer hit max_tokens; the CLI's own continuation was stopped",
        }


def build_invocation(binary: str, request: Request, scratch: Path) -> Invocation:
    """The argv and variables of one clean print-mode session inside `scratch`."""
    workdir = scratch / "work"
    workdir.mkdir()
    if os.sep in binary or (os.altsep and os.altsep in binary):
        binary = os.path.abspath(binary)  # the session runs elsewhere: a relative path is ours
    argv = [
        binary, "-p", "--output-format", "stream-json", "--verbose", "--model", request.model,
        "--system-prompt-file", str(scratch / "system.txt"),
        "--tools", "", "--max-turns", "1", "--no-session-persistence",
        "--strict-mcp-config", "--disable-slash-commands",
    ]  # fmt: skip
    env = {**SESSION_ENV, "CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(request.max_tokens)}
    if os.environ.get("ANTHROPIC_API_KEY"):
        home = scratch / "home"
        home.mkdir()
        argv.insert(2, "--bare")
        env["HOME"] = str(home)
        return Invocation(argv, env, workdir, "api-key")
    argv[2:2] = ["--setting-sources", ""]
    return Invocation(argv, env, workdir, "subscription")


def describe_sent(
    invocation: Invocation, system: str, prompt: str, version: str, request: Request
) -> dict[str, Any]:
    """What really ran, for the transcript: no secrets, scratch paths shown as such."""
    return {
        "transport": "claude-cli",
        "claude_version": version,
        "auth": invocation.mode,
        "argv": invocation.argv,
        "env_set": invocation.env_set,
        "stdin": prompt,
        "system": system,
        "system_sha256": hashlib.sha256(system.encode("utf-8")).hexdigest(),
        "max_tokens": request.max_tokens,
    }


def answer_from_result(
    result: dict[str, Any], finished: Finished, request: Request, sent: dict[str, Any]
) -> Answer:
    """An Answer, a truncated Answer, or the error the result stands for."""
    usage = Usage.from_dict(result.get("usage"))
    message = str(result.get("result") or result.get("subtype") or finished.last_stderr_line)
    truncated = (
        int(result.get("num_turns") or 1) > 1  # the CLI continued a cut-off answer by itself
        or result.get("stop_reason") == "max_tokens"
        or bool(_TRUNCATED.search(message))
    )
    if result.get("is_error") is not False and not truncated:
        raise result_error(result, message, usage, sent)
    return Answer(
        text=str(result.get("result") or "") if not truncated else "",
        stop_reason="max_tokens" if truncated else str(result.get("stop_reason") or "end_turn"),
        model=request.model,
        usage=usage,
        seconds=finished.seconds,
        request_id=result["session_id"] if isinstance(result.get("session_id"), str) else None,
        sent=sent,
        prefix_sha256=sent["system_sha256"],
    )


def result_error(
    result: dict[str, Any], message: str, usage: Usage, sent: dict[str, Any]
) -> Exception:
    """Classify an is_error result by its api_error_status, never by its wording."""
    status = result.get("api_error_status")
    kind = result.get("api_error_type")
    detail = f"claude-cli: {excerpt(message or 'error')}"
    if isinstance(status, int) and status in FATAL_STATUSES:
        hint = {401: "; check ANTHROPIC_API_KEY or log in with `claude`", 403: "; check the "
                "account's access", 404: "; check --model"}.get(status, "")  # fmt: skip
        return ProviderError(
            f"claude-cli: HTTP {status} {kind or ''}: {excerpt(message)}{hint}".replace("  ", " "),
            usage=usage,
            sent=sent,
        )
    if isinstance(status, int) and status in RATE_LIMITS:
        return TransientError(detail, status=status, usage=usage)
    if isinstance(status, int) and 400 <= status < 500:
        return ProviderError(f"claude-cli: HTTP {status}: {excerpt(message)}", usage=usage,
                             sent=sent)  # fmt: skip
    return TransientError(detail, status=status if isinstance(status, int) else None, usage=usage)


def check_version(binary: str, timeout: float) -> str:
    """Run `claude --version`; a release older than MIN_VERSION is a one-line ProviderError."""
    finished = run_process([binary, "--version"], "", min(timeout, 60.0), label="claude-cli")
    found = _VERSION.search(finished.stdout)
    if finished.returncode != 0 or found is None:
        shown = excerpt(finished.stdout.strip() or finished.last_stderr_line or "<empty>")
        raise ProviderError(f"claude-cli: `{binary} --version` gave no version: {shown}")
    version = tuple(int(part) for part in found.groups())
    needed = ".".join(map(str, MIN_VERSION))
    if version < MIN_VERSION:
        raise ProviderError(
            f"claude-cli: Claude Code {found.group(0)} is too old; freshbatch needs {needed} "
            "or newer (npm install -g @anthropic-ai/claude-code)"
        )
    return found.group(0)


def render_prompt(messages: tuple[Message, ...]) -> str:
    """The conversation as one stdin text: the first message as is, later turns labelled."""
    if not messages:
        return ""
    parts = [messages[0].text]
    for message in messages[1:]:
        parts.append(f"{_TURN_LABELS.get(message.role, f'[{message.role}]')}\n{message.text}")
    return "\n\n".join(parts)


def parse_result(finished: Finished) -> dict[str, Any]:
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
        raise ProviderError(f"claude-cli: {excerpt(finished.last_stderr_line)}; update claude")
    raise TransientError(
        f"claude-cli: no JSON result on stdout (exit {finished.returncode}): "
        f"{excerpt(stdout or finished.last_stderr_line or '<empty>')}"
    )


def excerpt(text: str, limit: int = 200) -> str:
    """One line of at most `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
