"""The command provider, running a fake program with `sys.executable`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from freshbatch.errors import ProviderError, TransientError
from freshbatch.providers import Message, ProviderConfig, Request, RequestMeta, make_provider
from freshbatch.providers.command import CommandProvider

FAKE = str(Path(__file__).parent / "fakes" / "fake_command.py")


def provider(tmp_path: Path, *argv: str, timeout: float = 30.0) -> CommandProvider:
    """A command provider running the fake with the given arguments."""
    config = ProviderConfig(tmp_path, command=(sys.executable, FAKE, *argv), timeout=timeout)
    return CommandProvider(config)


def request() -> Request:
    """Attempt 2 of phase 3 batch 7."""
    return Request(
        model="claude-test-model",
        system=("Framing.", "Intelligence."),
        messages=(Message("user", "Batch 7"), Message("assistant", "{}"), Message("user", "Fix")),
        max_tokens=500,
        meta=RequestMeta("demo", 3, 7, 2),
    )


def test_request_on_stdin_and_answer_parsed(tmp_path: Path) -> None:
    """The program gets request and meta as JSON; its JSON answer becomes the Answer."""
    received = tmp_path / "received.json"
    answer = provider(tmp_path, "ok", str(received)).complete(request())
    sent = json.loads(received.read_text("utf-8"))
    assert sent == {
        "request": request().to_dict(),
        "meta": {"course": "demo", "phase": 3, "batch": 7, "attempt": 2},
    }
    assert json.loads(answer.text) == {"batch": 7, "attempt": 2}
    assert (answer.stop_reason, answer.model) == ("end_turn", "local-model")
    assert answer.usage.as_tuple() == (3, 4, 0, 0)
    assert answer.seconds > 0


def test_exit_75_is_transient(tmp_path: Path) -> None:
    """EX_TEMPFAIL asks for a retry."""
    with pytest.raises(TransientError, match="exited with 75: upstream busy"):
        provider(tmp_path, "tempfail").complete(request())


def test_other_exit_is_fatal_with_last_stderr_line(tmp_path: Path) -> None:
    """Any other non-zero exit stops the run, quoting the last stderr line."""
    with pytest.raises(ProviderError, match="exited with 2: bad configuration: no model$"):
        provider(tmp_path, "fatal").complete(request())


@pytest.mark.parametrize("mode", ["garbage", "notext"])
def test_invalid_stdout(tmp_path: Path, mode: str) -> None:
    """Stdout that is not an answer object explains the expected format."""
    with pytest.raises(ProviderError, match='expected one JSON object {"text"'):
        provider(tmp_path, mode).complete(request())


def test_timeout_is_transient(tmp_path: Path) -> None:
    """A program that runs past the timeout is killed; the error is transient."""
    config = ProviderConfig(
        tmp_path, command=(sys.executable, "-c", "import time; time.sleep(30)"), timeout=0.5
    )
    with pytest.raises(TransientError, match="command timed out after 0.5s"):
        CommandProvider(config).complete(request())


def test_missing_program(tmp_path: Path) -> None:
    """A program that does not exist is a ProviderError naming it."""
    config = ProviderConfig(tmp_path, command=(str(tmp_path / "nope"), "x"))
    with pytest.raises(ProviderError, match="nope"):
        CommandProvider(config).complete(request())


def test_empty_command(tmp_path: Path) -> None:
    """The provider refuses to exist without a command."""
    with pytest.raises(ProviderError, match="command provider needs --command"):
        make_provider("command", ProviderConfig(tmp_path))
