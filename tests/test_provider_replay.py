"""The replay provider: answers from recorded transcripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from freshbatch.errors import ProviderError
from freshbatch.providers import (
    Answer,
    Message,
    ProviderConfig,
    Request,
    RequestMeta,
    Usage,
    make_provider,
)
from freshbatch.providers.replay import ReplayProvider

RECORDED = Answer(
    text='{"translations": {}}',
    stop_reason="end_turn",
    model="claude-recorded",
    usage=Usage(10, 20, 30, 40),
    seconds=12.5,
    first_token_seconds=1.5,
    request_id="req_1",
)


def request(phase: int = 1, batch: int = 2, attempt: int = 1) -> Request:
    """A request for the given attempt."""
    return Request(
        model="claude-test-model",
        system=("S",),
        messages=(Message("user", "U"),),
        max_tokens=10,
        meta=RequestMeta("demo", phase, batch, attempt),
    )


def record(folder: Path, phase: int, batch: int, attempt: int, text: str) -> Path:
    """Write a recording file."""
    path = folder / f"phase{phase}" / f"batch_{batch:03d}_attempt_{attempt}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_found_in_course_recordings(tmp_path: Path) -> None:
    """By default recordings live in <course>/recordings; seconds become 0."""
    record(tmp_path / "recordings", 3, 2, 1, json.dumps({"answer": RECORDED.to_dict()}))
    answer = make_provider("replay", ProviderConfig(tmp_path)).complete(request(phase=3))
    assert answer.text == RECORDED.text
    assert answer.usage == RECORDED.usage
    assert (answer.model, answer.stop_reason, answer.seconds) == ("claude-recorded", "end_turn", 0)


def test_replay_dir_and_attempt(tmp_path: Path) -> None:
    """config.replay_dir wins, and each attempt has its own file."""
    folder = tmp_path / "elsewhere"
    record(folder, 1, 12, 2, json.dumps({"answer": {"text": "second try"}, "request": {}}))
    provider = ReplayProvider(ProviderConfig(tmp_path, replay_dir=folder))
    answer = provider.complete(request(batch=12, attempt=2))
    assert (answer.text, answer.stop_reason, answer.usage) == ("second try", "end_turn", Usage())


def test_missing(tmp_path: Path) -> None:
    """No recording is a ProviderError naming phase, batch, attempt and folder."""
    with pytest.raises(ProviderError) as info:
        ReplayProvider(ProviderConfig(tmp_path)).complete(request(batch=5, attempt=3))
    assert str(info.value).startswith("no recorded answer for phase 1 batch 5 attempt 3 in ")
    assert str(info.value).endswith("recordings")


@pytest.mark.parametrize("text", ['{"answer": ', '{"no_answer": {}}', "[1, 2]"])
def test_invalid_recording(tmp_path: Path, text: str) -> None:
    """An unreadable recording is a ProviderError naming the file."""
    record(tmp_path / "recordings", 1, 2, 1, text)
    with pytest.raises(ProviderError, match="batch_002_attempt_1.json"):
        ReplayProvider(ProviderConfig(tmp_path)).complete(request())
