"""The claude-cli provider, running an executable fake `claude`."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from freshbatch.errors import ProviderError, TransientError
from freshbatch.providers import Message, ProviderConfig, Request, RequestMeta, make_provider
from freshbatch.providers.claude_cli import ClaudeCliProvider, render_prompt

FAKE = Path(__file__).parent / "fakes" / "fake_claude.py"
MODEL = "claude-test-model"
SYSTEM = ("Framing for phase 1.", "The phase intelligence.")
FIRST = "Batch 1 of 3: translate these seeds."


@pytest.fixture
def claude(tmp_path: Path) -> str:
    """An executable copy of the fake (the copy's mode does not depend on the checkout)."""
    binary = tmp_path / "bin" / "claude"
    binary.parent.mkdir()
    shutil.copy(FAKE, binary)
    binary.chmod(0o755)
    return str(binary)


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file the fake appends its calls to."""
    path = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_CLAUDE_LOG", str(path))
    return path


def calls(log: Path) -> list[dict[str, Any]]:
    """Every call the fake recorded."""
    return [json.loads(line) for line in log.read_text("utf-8").splitlines()]


def provider(claude: str, tmp_path: Path, timeout: float = 30.0) -> ClaudeCliProvider:
    """A claude-cli provider running the fake."""
    return ClaudeCliProvider(ProviderConfig(tmp_path, claude_binary=claude, timeout=timeout))


def request(*messages: Message) -> Request:
    """A request of phase 1 batch 1; one user message unless given."""
    return Request(
        model=MODEL,
        system=SYSTEM,
        messages=messages or (Message("user", FIRST),),
        max_tokens=1000,
        meta=RequestMeta("demo", 1, 1, len(messages) // 2 + 1),
    )


def test_clean_session_argv_and_stdin(
    claude: str, log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One print-mode session: clean flags, system prompt in argv, prompt on stdin."""
    monkeypatch.setenv("FAKE_CLAUDE_TEXT", '{"translations": {}}')
    answer = provider(claude, tmp_path).complete(request())
    (call,) = calls(log)
    assert call["argv"][1:] == [
        "-p", "--output-format", "json", "--model", MODEL,
        "--system-prompt", "Framing for phase 1.\n\nThe phase intelligence.",
        "--tools", "", "--max-turns", "1", "--no-session-persistence", "--strict-mcp-config",
    ]  # fmt: skip
    assert not {"--continue", "-c", "--resume", "-r"} & set(call["argv"])
    assert call["stdin"] == FIRST
    assert answer.text == '{"translations": {}}'
    assert (answer.stop_reason, answer.model) == ("end_turn", MODEL)
    assert answer.usage.as_tuple() == (12, 34, 56, 78)
    assert answer.request_id == "fake-session-0001"


def test_new_process_per_request(claude: str, log: Path, tmp_path: Path) -> None:
    """Two requests run two separate processes."""
    cli = provider(claude, tmp_path)
    cli.complete(request())
    cli.complete(request())
    first, second = calls(log)
    assert first["pid"] != second["pid"]


def test_retry_turns_rendered_on_stdin(claude: str, log: Path, tmp_path: Path) -> None:
    """Attempt 2 sends the first message, the previous answer and the feedback, labelled."""
    turns = (
        Message("user", FIRST),
        Message("assistant", '{"translations": []}'),
        Message("user", "Fix: translations must be an object."),
    )
    provider(claude, tmp_path).complete(request(*turns))
    stdin = calls(log)[0]["stdin"]
    assert stdin == render_prompt(turns)
    assert stdin.index(FIRST) < stdin.index("[your previous answer]\n{")
    assert stdin.index('{"translations": []}') < stdin.index("[validator feedback]\nFix:")


@pytest.mark.parametrize(
    ("mode", "error", "match"),
    [
        ("error", TransientError, "Something odd happened"),
        ("ratelimit", TransientError, "rate limit"),
        ("auth", ProviderError, "Invalid API key"),
        ("garbage", TransientError, "no JSON result.*this is not json"),
        ("old", ProviderError, "unknown option '--no-session-persistence'; update claude"),
    ],
)
def test_error_results(
    claude: str,
    log: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    error: type[Exception],
    match: str,
) -> None:
    """is_error true fails even with exit 0; auth and a too-old claude stop, the rest retry."""
    monkeypatch.setenv("FAKE_CLAUDE_MODE", mode)
    with pytest.raises(error, match=match):
        provider(claude, tmp_path).complete(request())


def test_exit_code_alone_is_not_failure(
    claude: str, log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 1 with is_error false is a success."""
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "exit1_ok")
    monkeypatch.setenv("FAKE_CLAUDE_TEXT", "fine")
    assert provider(claude, tmp_path).complete(request()).text == "fine"


def is_running(pid: int) -> bool:
    """Whether pid is a live process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_timeout_kills_process_group(
    claude: str, log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On timeout the fake and its grandchild are killed and the error is transient."""
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "sleep")
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"claude-cli timed out after 1s"):
        provider(claude, tmp_path, timeout=1.0).complete(request())
    assert time.monotonic() - started < 10
    (call,) = calls(log)
    deadline = time.monotonic() + 5
    while is_running(call["grandchild"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_running(call["grandchild"])
    assert not is_running(call["pid"])


def test_missing_binary(tmp_path: Path) -> None:
    """A binary that does not exist is a ProviderError naming it."""
    missing = str(tmp_path / "no-such-claude")
    with pytest.raises(ProviderError, match="no-such-claude"):
        provider(missing, tmp_path).complete(request())


def test_registry_builds_claude_cli(tmp_path: Path) -> None:
    """make_provider("claude-cli", ...) builds this provider."""
    built = make_provider("claude-cli", ProviderConfig(course_dir=tmp_path))
    assert isinstance(built, ClaudeCliProvider) and built.name == "claude-cli"
