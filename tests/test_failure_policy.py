"""Failure policies: --fail-fast stops at once, --keep-going merges up to the gap."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.fakes.messages_api import Reply
from tests.runner_support import (
    batch_entry,
    batch_of_request,
    fast,
    phase1_answer,
    requested,
    staged,
    use_reference,
)


def test_keep_going_merges_up_to_the_gap_and_the_next_run_redoes_only_it(
    workspace: Workspace, demo: str, demo_reference: Path, fake_api: Any
) -> None:
    bad = Reply.message(phase1_answer(demo_reference, 2, drop=("S0030",)))
    use_reference(fake_api, demo_reference, script={(1, 2): [bad, bad]})
    options = fast(provider="anthropic", max_attempts=2, on_failure="keep-going")
    result = run(workspace, "phase1", demo, options)
    assert not result.ok and result.phases[0].failed == [2]
    folder = workspace.courses_dir / demo
    assert result.phases[0].merged == 1
    assert staged(folder, 1) == ["batch_003.json"]  # generated after the failure, waiting
    assert batch_entry(folder, 1, 2)["status"] == "failed"
    before = len(requested(fake_api))
    assert run(workspace, "phase1", demo, fast(provider="anthropic")).ok
    assert requested(fake_api)[before:] == [(1, 2)]


def test_fail_fast_returns_without_waiting_for_attempts_in_flight(
    workspace: Workspace, demo: str, demo_reference: Path, fake_api: Any
) -> None:
    bad = Reply.message(phase1_answer(demo_reference, 1, drop=("S0005",)))
    answer = use_reference(fake_api, demo_reference, script={(1, 1): [bad, bad]})
    release = threading.Event()

    def held(body: dict[str, Any]) -> Reply:
        if batch_of_request(body) != (1, 1):
            release.wait(60)  # batches 2 and 3 stay in flight until the test ends
        return answer(body)

    fake_api.responder = held
    options = fast(provider="anthropic", max_attempts=2, concurrency=3, on_failure="fail-fast")
    try:
        result = run(workspace, "phase1", demo, options)
        assert not result.ok and result.phases[0].failed == [1]
        assert result.phases[0].merged == 0
        assert batch_entry(workspace.courses_dir / demo, 1, 1)["status"] == "failed"
    finally:
        release.set()
