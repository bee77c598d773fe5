"""The runner against provider faults (RUNNER §4, §7): the real SDK against the fake server.

Scripted error replies come first; the reference model answers once they are used up.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from freshbatch import cli
from freshbatch.attempts import RetryPolicy
from freshbatch.runner import RunOptions, run
from freshbatch.workspace import Workspace
from tests.conftest import TEST_KEY
from tests.fakes.messages_api import Reply
from tests.runner_support import (
    BATCH_SEEDS,
    assert_same_content,
    batch_entry,
    event_names,
    events,
    fast,
    load,
    message_bodies,
    phase1_answer,
    progress,
    requested,
    run_folders,
    snapshot,
    staged,
    transcript,
    use_reference,
)


@pytest.fixture
def api(fake_api: Any, demo_reference: Path) -> Any:
    use_reference(fake_api, demo_reference)
    return fake_api


def course_dir(workspace: Workspace, code: str) -> Path:
    return workspace.courses_dir / code


def run_cli(workspace: Workspace, *args: str) -> int:
    return cli.main(["--root", str(workspace.root), "run", *args])


# --- transport faults: retried inside the attempt, never using up an attempt --------------


def assert_retried_once(api: Any, folder: Path, reference: Path) -> None:
    """Batch 1 took one transport retry and one attempt; the phase merged completely."""
    assert requested(api) == [(1, 1), (1, 1), (1, 2), (1, 3)]
    first, second = message_bodies(api)[:2]
    assert first == second, "the retried request must be the same request"
    assert_same_content(folder, reference, (1,))
    entry = batch_entry(folder, 1, 1)
    assert (entry["status"], entry["attempts"]) == ("merged", 1)
    assert transcript(folder, 1, 1, 1)["transport_retries"] == 1
    (run_folder,) = run_folders(folder)
    assert not (run_folder / "phase1" / "batch_001_attempt_2.json").exists()


def test_429_with_retry_after_pauses_and_resumes(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    # retry-after differs from the policy's own backoff (base 0.01 s): the pause must follow it
    api.enqueue(Reply.error(429, headers={"retry-after": "0.03"}))
    folder = course_dir(workspace, demo)
    seen: dict[str, str] = {}

    def status_at(name: str, data: dict[str, Any]) -> None:
        if name.startswith("ratelimit:"):
            seen[name] = load(folder / ".freshbatch" / "progress.json")["status"]

    result = run(workspace, "phase1", demo, fast(), listen=lambda p: p.listen(status_at))
    assert result.ok
    assert seen == {"ratelimit:pause": "paused", "ratelimit:resume": "running"}
    assert_retried_once(api, folder, demo_reference)
    names = event_names(folder)
    assert "ratelimit:pause" in names and "ratelimit:resume" in names
    assert names.index("ratelimit:pause") < names.index("ratelimit:resume")
    pause = next(e for e in events(folder) if e["event"] == "ratelimit:pause")
    assert pause["seconds"] == pytest.approx(0.03), "retry-after must set the pause"
    # freshbatch retries, not the SDK: every request is the SDK's first try
    retry_counts = {r.headers.get("x-stainless-retry-count") for r in api.message_requests()}
    assert retry_counts <= {None, "0"}


def test_529_overloaded_is_retried(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    api.enqueue(Reply.error(529))
    assert run(workspace, "phase1", demo, fast()).ok
    folder = course_dir(workspace, demo)
    assert_retried_once(api, folder, demo_reference)
    assert "ratelimit:pause" in event_names(folder)


def test_500_is_retried(workspace: Workspace, demo: str, api: Any, demo_reference: Path) -> None:
    api.enqueue(Reply.error(500))
    assert run(workspace, "phase1", demo, fast()).ok
    assert_retried_once(api, course_dir(workspace, demo), demo_reference)


def test_dropped_connection_is_retried(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    api.enqueue(Reply.dropped())
    assert run(workspace, "phase1", demo, fast()).ok
    assert_retried_once(api, course_dir(workspace, demo), demo_reference)


def test_timeout_is_retried(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    api.enqueue(Reply.slow(5.0, text="{}"))
    started = time.monotonic()
    assert run(workspace, "phase1", demo, fast(timeout=0.3)).ok
    assert time.monotonic() - started < 4.0, "the request must time out, not wait for the reply"
    assert_retried_once(api, course_dir(workspace, demo), demo_reference)


# --- invalid answers: a new attempt with the previous answer and the validator's issues ---


def assert_feedback_retry(api: Any, folder: Path, first_text: str, rule: str) -> dict[str, Any]:
    """Attempt 1 invalid with `rule`, attempt 2 valid and built as RUNNER §3.3 says."""
    assert requested(api)[:2] == [(1, 1), (1, 1)]
    one, two = transcript(folder, 1, 1, 1), transcript(folder, 1, 1, 2)
    assert one["validation"]["valid"] is False
    assert rule in {i["rule"] for i in one["validation"]["issues"]}
    assert two["validation"]["valid"] is True
    first, second = message_bodies(api)[:2]
    assert second["system"] == first["system"]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][0] == first["messages"][0]
    assert second["messages"][1]["content"] == first_text
    feedback = second["messages"][2]["content"]
    assert rule in feedback
    entry = batch_entry(folder, 1, 1)
    assert (entry["status"], entry["attempts"]) == ("merged", 2)
    assert "batch:invalid" in event_names(folder)
    return second


def test_truncated_answer_is_a_failed_attempt(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    text = phase1_answer(demo_reference, 1)  # valid JSON, yet cut off: must not be accepted
    api.enqueue(Reply.message(text, stop_reason="max_tokens"))
    assert run(workspace, "phase1", demo, fast()).ok
    folder = course_dir(workspace, demo)
    second = assert_feedback_retry(api, folder, text, "answer-truncated")
    assert (
        "max_tokens" in second["messages"][2]["content"]
        or "cut off" in second["messages"][2]["content"]
    )
    assert transcript(folder, 1, 1, 1)["answer"]["stop_reason"] == "max_tokens"
    assert_same_content(folder, demo_reference, (1,))


def test_invalid_json_answer_is_retried_with_feedback(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    text = '{"translations": {"S0001": '
    api.enqueue(Reply.message(text))
    assert run(workspace, "phase1", demo, fast()).ok
    folder = course_dir(workspace, demo)
    second = assert_feedback_retry(api, folder, text, "answer-json")
    assert "JSON" in second["messages"][2]["content"]
    assert_same_content(folder, demo_reference, (1,))


def test_wrong_and_missing_seed_ids_are_retried(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    text = phase1_answer(demo_reference, 1, drop=("S0003",), add=("S0021",))
    api.enqueue(Reply.message(text))
    assert run(workspace, "phase1", demo, fast()).ok
    folder = course_dir(workspace, demo)
    second = assert_feedback_retry(api, folder, text, "seed-ids")
    issues = transcript(folder, 1, 1, 1)["validation"]["issues"]
    named = {i["seed_id"] for i in issues if i["rule"] == "seed-ids"}
    assert named == {"S0003", "S0021"}
    feedback = second["messages"][2]["content"]
    assert "S0003" in feedback and "S0021" in feedback
    assert_same_content(folder, demo_reference, (1,))


# --- a batch that stays invalid -------------------------------------------------------------


def test_batch_failing_three_attempts_then_next_run_starts_it_afresh(
    workspace: Workspace,
    demo: str,
    api: Any,
    demo_reference: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    responder = use_reference(
        api, demo_reference, script={(1, 2): [Reply.message("not json at all")] * 3}
    )
    folder = course_dir(workspace, demo)
    assert run_cli(workspace, "phase1", demo) == 1
    err = capsys.readouterr().err
    assert "batch 2" in err
    assert requested(api)[:4] == [(1, 1), (1, 2), (1, 2), (1, 2)]
    state = progress(folder)
    assert state["status"] == "failed"
    entry = batch_entry(folder, 1, 2)
    assert entry["status"] == "failed"
    assert entry["attempts"] == 3
    assert entry["last_errors"] and entry["last_errors"][0]["rule"] == "answer-json"
    assert "batch_002.json" not in staged(folder, 1)
    merged = load(folder / "seed_pairs.json")
    assert list(merged["translations"]) == BATCH_SEEDS[1], "only batch 1 may be merged"
    for attempt in (1, 2, 3):
        assert transcript(folder, 1, 2, attempt)["validation"]["valid"] is False

    # the next run starts batch 2 afresh (no earlier conversation) and succeeds
    assert responder.script[(1, 2)] == []
    api.reset()
    result = run(workspace, "phase1", demo, fast())
    assert result.ok
    assert requested(api)[0] == (1, 2) and (1, 1) not in requested(api)
    assert len(message_bodies(api)[0]["messages"]) == 1, "a failed batch starts afresh"
    entry = batch_entry(folder, 1, 2)
    assert (entry["status"], entry["attempts"]) == ("merged", 1)
    assert progress(folder)["status"] == "completed"
    assert_same_content(folder, demo_reference, (1,))


# --- fatal provider errors: exit 3 at once ----------------------------------------------------


def test_401_stops_at_once_without_showing_the_key(
    workspace: Workspace, demo: str, api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # a server that echoes the key in its error message must not make freshbatch print it
    api.enqueue(Reply.error(401, message=f"invalid x-api-key: {TEST_KEY}"))
    assert run_cli(workspace, "phase1", demo) == 3
    assert len(api.message_requests()) == 1
    err = capsys.readouterr().err
    assert "authentication" in err.lower()
    assert TEST_KEY not in err
    assert TEST_KEY[-12:] not in err
    for name, data in snapshot(course_dir(workspace, demo)).items():
        assert TEST_KEY.encode() not in data, name


def test_unknown_model_stops_with_exit_3(
    workspace: Workspace, demo: str, api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    api.unknown_models = {"claude-nonexistent-9"}
    assert run_cli(workspace, "phase1", demo, "--model", "claude-nonexistent-9") == 3
    assert len(api.message_requests()) == 1
    err = capsys.readouterr().err
    assert "claude-nonexistent-9" in err


def test_too_many_transport_retries_exit_3_and_stay_resumable(
    workspace: Workspace,
    demo: str,
    api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = RetryPolicy(transport_retries=2, base_seconds=0.01, max_seconds=0.05)
    monkeypatch.setattr(cli, "RunOptions", functools.partial(RunOptions, retry=policy))
    api.enqueue(*[Reply.error(500)] * 4)
    assert run_cli(workspace, "phase1", demo) == 3
    assert len(api.message_requests()) == 3, "one request and two transport retries"
    err = capsys.readouterr().err
    assert "retr" in err.lower()
    folder = course_dir(workspace, demo)
    assert not (folder / "seed_pairs.json").exists()
    assert batch_entry(folder, 1, 1)["status"] != "running"
    assert progress(folder)["status"] != "running"
    # resumable: a later run (one 500 still queued) merges everything
    assert api.pending == 1
    assert run(workspace, "phase1", demo, fast()).ok
    assert_same_content(folder, demo_reference, (1,))
    assert progress(folder)["status"] == "completed"


def test_no_provider_and_no_key_is_bad_usage(
    workspace: Workspace, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(workspace, "phase1", demo) == 2
    err = capsys.readouterr().err
    assert "ANTHROPIC_API_KEY" in err and "--provider" in err
    assert not (course_dir(workspace, demo) / ".freshbatch").exists()


def test_transcript_answer_matches_what_the_server_sent(
    workspace: Workspace, demo: str, api: Any
) -> None:
    """Sanity for the helpers above: transcripts hold the request the server received."""
    assert run(workspace, "phase1", demo, fast()).ok
    folder = course_dir(workspace, demo)
    sent = message_bodies(api)[0]
    kept = transcript(folder, 1, 1, 1)["request"]
    assert {k: v for k, v in sent.items() if k != "stream"} == kept
    assert json.loads(transcript(folder, 1, 1, 1)["answer"]["text"])["translations"]
