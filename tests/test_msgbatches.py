"""`run --via batches` (issue 4 §5): one Message Batch per round, against the fake server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from freshbatch import cli
from freshbatch.attempts import RetryPolicy
from freshbatch.errors import ProviderError
from freshbatch.pricing import Pricing
from freshbatch.providers import Usage
from freshbatch.runner import RunOptions, run
from freshbatch.workspace import Workspace
from tests.conftest import copy_demo
from tests.fakes.messages_api import Reply
from tests.runner_support import (
    MERGED,
    assert_same_content,
    batch_entry,
    event_names,
    fast,
    transcript,
    transcripts,
    unstamped,
    use_reference,
)
from tests.throughput_support import new_workspace, read_progress

BATCHES_PATH = "/v1/messages/batches"
QUICK = RetryPolicy(base_seconds=0.01, max_seconds=0.05)


def via_batches(**kw: Any) -> RunOptions:
    kw.setdefault("retry", QUICK)
    return RunOptions(via="batches", poll_seconds=0.01, **kw)


@pytest.fixture
def api(fake_api: Any) -> Any:
    fake_api.batch_polls_until_end = 2
    return fake_api


def created(api: Any) -> list[Any]:
    """POST /v1/messages/batches requests, in order."""
    return [r for r in api.requests if r.method == "POST" and r.path == BATCHES_PATH]


def custom_ids(api: Any) -> list[list[str]]:
    return [[item["custom_id"] for item in r.body["requests"]] for r in created(api)]


def state_file(folder: Path, phase: int) -> Path:
    return folder / ".freshbatch" / "msgbatches" / f"phase{phase}.json"


def test_run_all_via_batches_one_message_batch_per_round(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    use_reference(api, demo_reference)
    result = run(workspace, "all", demo, via_batches())
    assert result.ok
    folder = workspace.courses_dir / demo
    assert_same_content(folder, demo_reference, (1, 3, 5))
    assert custom_ids(api) == [[f"p{p}-b00{k}-a1" for k in (1, 2, 3)] for p in (1, 3, 5)], (
        "one Message Batch per phase round, deterministic custom ids"
    )
    assert api.message_requests() == [], "no single Messages API request in this mode"
    for request in created(api):
        for item in request.body["requests"]:
            system = item["params"]["system"]
            assert system[-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
            assert all("cache_control" not in block for block in system[:-1])
    # each Message Batch was polled until it ended (the fake ends it at the 2nd retrieve),
    # then its results fetched once
    for number, batch_id in enumerate(("msgbatch_1", "msgbatch_2", "msgbatch_3")):
        polls = [r for r in api.requests if r.path == f"{BATCHES_PATH}/{batch_id}"]
        results = [r for r in api.requests if r.path == f"{BATCHES_PATH}/{batch_id}/results"]
        assert len(polls) >= 2 and len(results) == 1, batch_id
        assert api.batches[batch_id].processing_status == "ended"
        if number < 2:  # the next phase's Message Batch only after this one's results
            later = created(api)[number + 1]
            assert api.requests.index(results[0]) < api.requests.index(later)
    assert not (folder / ".freshbatch" / "msgbatches" / "phase1.json").exists()
    state = read_progress(folder)
    assert state["status"] == "completed"
    assert all(b["status"] == "merged" for b in state["batches"])


def test_costs_use_the_batch_discount_and_the_1h_write(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    use_reference(api, demo_reference)
    assert run(workspace, "phase1", demo, via_batches()).ok
    folder = workspace.courses_dir / demo
    pricing = Pricing()
    total = 0.0
    for k in (1, 2, 3):
        record = transcript(folder, 1, k, 1)
        usage = Usage(**record["answer"]["usage"])
        assert record["request"]["system"][-1]["cache_control"]["ttl"] == "1h"
        assert record["model"] == "claude-sonnet-4-6"  # $3 in, $15 out, 1h write $6, read $0.30
        by_hand = (
            usage.input_tokens * 3.0
            + usage.output_tokens * 15.0
            + usage.cache_creation_input_tokens * 6.0
            + usage.cache_read_input_tokens * 0.3
        ) / 1_000_000
        expected = pricing.cost(usage, record["model"], batch=True, cache_ttl="1h")
        assert expected == pytest.approx(by_hand / 2, abs=1e-6)
        assert record["cost_usd"] == pytest.approx(by_hand / 2, abs=1e-6)
        assert batch_entry(folder, 1, k)["cost_usd"] == pytest.approx(expected, abs=1e-6)
        total += expected
    first = Usage(**transcript(folder, 1, 1, 1)["answer"]["usage"])
    assert first.cache_creation_input_tokens > 0, "the fake cached the first request's prefix"
    state = read_progress(folder)
    assert state["phases"]["phase1"]["cost_usd"] == pytest.approx(total, abs=1e-5)
    assert state["totals"]["cost_usd"] == pytest.approx(total, abs=1e-5)


def test_a_broken_batch_is_resubmitted_with_feedback_as_round_2(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path, tmp_path: Path
) -> None:
    use_reference(api, demo_reference, broken={(3, 2)})
    assert run(workspace, "all", demo, via_batches()).ok
    folder = workspace.courses_dir / demo
    assert custom_ids(api) == [
        ["p1-b001-a1", "p1-b002-a1", "p1-b003-a1"],
        ["p3-b001-a1", "p3-b002-a1", "p3-b003-a1"],
        ["p3-b002-a2"],
        ["p5-b001-a1", "p5-b002-a1", "p5-b003-a1"],
    ]
    retry = created(api)[2].body["requests"][0]["params"]
    roles = [m["role"] for m in retry["messages"]]
    assert roles == ["user", "assistant", "user"]
    first = transcript(folder, 3, 2, 1)
    assert first["validation"]["valid"] is False
    assert retry["messages"][1]["content"] == first["answer"]["text"]
    feedback = retry["messages"][2]["content"]
    assert "rejected" in feedback
    some_rule = first["validation"]["issues"][0]["rule"]
    assert f"[{some_rule}]" in feedback
    assert retry["system"] == created(api)[1].body["requests"][1]["params"]["system"]
    # each transcript keeps the request as it was sent in its Message Batch
    assert transcript(folder, 3, 2, 2)["request"] == {
        k: v for k, v in retry.items() if k in transcript(folder, 3, 2, 2)["request"]
    }
    assert batch_entry(folder, 3, 2)["attempts"] == 2
    assert transcript(folder, 3, 2, 2)["validation"]["valid"] is True
    # the same course through the Messages API gives the same merged content
    other = new_workspace(tmp_path / "messages")
    code = copy_demo(other)
    use_reference(api, demo_reference, broken={(3, 2)})
    assert run(other, "all", code, fast(concurrency=2)).ok
    for name in MERGED.values():
        mine = unstamped(folder / name)
        theirs = unstamped(other.courses_dir / code / name)
        assert mine == theirs, f"{name} differs between --via batches and messages"


def test_round_2_resends_the_first_user_message_of_attempt_1(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    """RUNNER §3: attempts 2 and 3 resend the same system and first user message.

    Phase 3 batch 2 is broken in round 1; its round-2 request must repeat the round-1 user
    message (the batch's input as it was), followed by the answer and the feedback.
    """
    use_reference(api, demo_reference, broken={(3, 2)})
    assert run(workspace, "phase1", demo, via_batches()).ok
    assert run(workspace, "phase3", demo, via_batches()).ok
    rounds = created(api)
    assert custom_ids(api)[1:] == [["p3-b001-a1", "p3-b002-a1", "p3-b003-a1"], ["p3-b002-a2"]]
    sent_first = rounds[1].body["requests"][1]["params"]["messages"][0]["content"]
    sent_retry = rounds[2].body["requests"][0]["params"]["messages"][0]["content"]
    assert sent_retry == sent_first, "round 2 rebuilt the first user message from a newer state"


def test_resume_polls_the_saved_batch_instead_of_creating_another(
    workspace: Workspace,
    demo: str,
    api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_reference(api, demo_reference)
    folder = workspace.courses_dir / demo
    original = api._batch_item

    def broken_retrieve(method: str, parts: list[str]) -> Any:
        if method == "GET" and len(parts) == 1:
            return api._error(Reply.error(500))
        return original(method, parts)

    monkeypatch.setattr(api, "_batch_item", broken_retrieve)
    options = via_batches(retry=RetryPolicy(transport_retries=1, base_seconds=0.01))
    with pytest.raises(ProviderError) as caught:
        run(workspace, "phase1", demo, options)
    assert caught.value.exit_code == 3
    assert len(created(api)) == 1
    saved = json.loads(state_file(folder, 1).read_text("utf-8"))
    assert [r["batch_id"] for r in saved["rounds"]] == ["msgbatch_1"]
    assert sorted(saved["rounds"][0]["items"]) == ["p1-b001-a1", "p1-b002-a1", "p1-b003-a1"]
    assert not (folder / "seed_pairs.json").exists()
    assert read_progress(folder)["status"] == "idle"
    # the API is reachable again: the next run polls msgbatch_1 and uses its results
    monkeypatch.setattr(api, "_batch_item", original)
    seen = len(api.requests)
    assert run(workspace, "phase1", demo, via_batches()).ok
    later = api.requests[seen:]
    assert not [r for r in later if r.method == "POST"], "the resumed run paid a second time"
    assert any(r.path == f"{BATCHES_PATH}/msgbatch_1" for r in later)
    assert any(r.path == f"{BATCHES_PATH}/msgbatch_1/results" for r in later)
    assert len(api.batches) == 1
    assert_same_content(folder, demo_reference, (1,))
    assert not state_file(folder, 1).exists()
    assert len(transcripts(folder)) == 3


def test_a_batch_invalid_for_three_rounds_fails_with_exit_1(
    workspace: Workspace,
    demo: str,
    api: Any,
    demo_reference: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = [Reply.message("no JSON here") for _ in range(3)]
    use_reference(api, demo_reference, script={(1, 2): bad})
    args = ["--root", str(workspace.root), "run", "phase1", demo, "--via", "batches"]
    code = cli.main([*args, "--poll-seconds", "0.01"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "batch 2" in err
    assert custom_ids(api) == [
        ["p1-b001-a1", "p1-b002-a1", "p1-b003-a1"],
        ["p1-b002-a2"],
        ["p1-b002-a3"],
    ]
    folder = workspace.courses_dir / demo
    assert [batch_entry(folder, 1, k)["status"] for k in (1, 2, 3)] == [
        "merged",
        "failed",
        "staged",
    ]
    assert batch_entry(folder, 1, 2)["attempts"] == 3
    assert "batch:failed" in event_names(folder)
    assert read_progress(folder)["status"] == "failed"
    # the next run starts the failed batch afresh and finishes the phase
    assert cli.main([*args, "--poll-seconds", "0.01"]) == 0
    assert custom_ids(api)[-1] == ["p1-b002-a1"]
    assert_same_content(folder, demo_reference, (1,))


def test_via_batches_with_the_replay_provider_exits_2(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = copy_demo(workspace, with_recordings=True)
    root = str(workspace.root)
    code = cli.main(["--root", root, "run", "phase1", demo, "--provider", "replay", "--via",
                     "batches"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--via batches" in err and "anthropic" in err
    assert not (workspace.courses_dir / demo / "seed_pairs.json").exists()
