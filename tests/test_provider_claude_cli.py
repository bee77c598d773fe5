"""The claude-cli provider, running an executable fake `claude`."""

from __future__ import annotations

import json
import os
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
    """With an API key: bare mode, system prompt from a file, prompt on stdin, an empty cwd."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-only-not-a-key")
    monkeypatch.setenv("FAKE_CLAUDE_TEXT", '{"translations": {}}')
    answer = provider(claude, tmp_path).complete(request())
    (call,) = calls(log)
    argv = call["argv"]
    system_file = argv[argv.index("--system-prompt-file") + 1]
    assert argv[1:] == [
        "-p", "--bare", "--output-format", "stream-json", "--verbose", "--model", MODEL,
        "--system-prompt-file", system_file,
        "--tools", "", "--max-turns", "1", "--no-session-persistence", "--strict-mcp-config",
        "--disable-slash-commands",
    ]  # fmt: skip
    assert not {"--continue", "-c", "--resume", "-r", "--system-prompt"} & set(argv)
    assert call["system"] == "Framing for phase 1.\n\nThe phase intelligence."
    assert call["stdin"] == FIRST
    assert Path(call["cwd"]).name == "work" and not Path(call["cwd"]).exists()  # removed after
    assert call["home"] != str(Path.home()) and not Path(system_file).exists()
    assert call["env"]["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "1000"
    for name in ("CLAUDE_CODE_DISABLE_THINKING", "CLAUDE_CODE_MAX_RETRIES",
                 "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY"):  # fmt: skip
        assert call["env"][name] in ("0", "1")
    assert answer.text == '{"translations": {}}'
    assert (answer.stop_reason, answer.model) == ("end_turn", MODEL)
    assert answer.usage.as_tuple() == (12, 34, 56, 78)
    assert answer.request_id == "fake-session-0001"
    sent = answer.sent or {}
    assert sent["argv"] == argv and sent["stdin"] == FIRST and sent["claude_version"] == "2.1.332"
    assert sent["auth"] == "api-key" and "ANTHROPIC_API_KEY" not in sent["env_set"]
    assert "test-only-not-a-key" not in json.dumps(sent)
    assert answer.prefix_sha256 == sent["system_sha256"]


def test_subscription_mode_loads_no_settings(
    claude: str, log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an API key: the user's HOME (the login), no setting sources, no bare mode."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    provider(claude, tmp_path).complete(request())
    (call,) = calls(log)
    argv = call["argv"]
    assert "--bare" not in argv
    assert argv[argv.index("--setting-sources") + 1] == ""
    assert call["home"] == os.environ.get("HOME")
    assert call["env"]["CLAUDE_CODE_DISABLE_AUTO_MEMORY"] == "1"


def test_version_checked_once(
    claude: str, log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prepare() reports the version; a too old CLI is one ProviderError naming both versions."""
    cli = provider(claude, tmp_path)
    assert cli.prepare() == {"claude_version": "2.1.332"}
    monkeypatch.setenv("FAKE_CLAUDE_VERSION", "2.0.1 (Claude Code)")
    assert cli.prepare() == {"claude_version": "2.1.332"}  # once per provider, i.e. per run
    with pytest.raises(ProviderError, match=r"Claude Code 2\.0\.1 is too old; .* needs 2\.1\."):
        provider(claude, tmp_path).prepare()
    assert not log.exists()  # --version starts no session


def test_relative_binary_path_is_the_callers(
    claude: str, log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--claude-binary bin/claude means the caller's bin/, though the session runs elsewhere."""
    monkeypatch.chdir(Path(claude).parent.parent)
    answer = provider("bin/claude", tmp_path).complete(request())
    assert answer.text == '{"ok": true}'
    assert calls(log)[0]["argv"][0] == claude


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
    ("mode", "error", "match", "status"),
    [
        ("error", TransientError, "Something odd happened", None),
        ("ratelimit", TransientError, "429", 429),
        ("overloaded", TransientError, "529", 529),
        ("server", TransientError, "500", None),
        ("auth", ProviderError, "HTTP 401 authentication_error", None),
        ("notfound", ProviderError, "HTTP 404 not_found_error.*check --model", None),
        ("garbage", TransientError, "no JSON result.*this is not json", None),
        ("old", ProviderError, "unknown option '--no-session-persistence'; update claude", None),
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
    status: int | None,
) -> None:
    """Classified by api_error_status: 4xx stop, 429/529 are rate limits, the rest retry."""
    monkeypatch.setenv("FAKE_CLAUDE_MODE", mode)
    with pytest.raises(error, match=match) as caught:
        provider(claude, tmp_path).complete(request())
    if status is not None:
        assert getattr(caught.value, "status", None) == status
    if mode not in ("garbage", "old"):
        assert caught.value.usage.as_tuple() == (12, 34, 56, 78)  # type: ignore[attr-defined]


def test_a_give_up_result_is_a_truncated_answer(
    claude: str, log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's "exceeded the output token maximum" result: stop_reason max_tokens, its usage."""
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "truncated")
    answer = provider(claude, tmp_path).complete(request())
    assert answer.is_truncated and answer.text == ""
    assert answer.usage.as_tuple() == (12, 34, 56, 78)


def test_the_clis_own_continuation_is_stopped_at_once(
    claude: str, log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A continuation turn kills the CLI (the fake would sleep 60 s): a truncated answer whose
    usage is the first turn's input and cache tokens, and max_tokens output tokens."""
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "continued")
    started = time.monotonic()
    answer = provider(claude, tmp_path).complete(request())
    assert time.monotonic() - started < 30  # not the fake's 60 s: the process was killed
    assert answer.is_truncated
    assert answer.usage.as_tuple() == (12, 1000, 56, 78)
    assert (answer.sent or {})["result"]["subtype"] == "stopped_by_freshbatch"
    assert not is_running(calls(log)[0]["pid"])


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
