"""The shared rate-limit gate (issue 4 §3): RateGate on its own, then in a concurrent run.

Unit tests compare the moment a waiter was let through with the moment the pause began
(a lower bound the gate guarantees); they never bound how long anything took.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from freshbatch.attempts import RetryPolicy, with_retries
from freshbatch.errors import ProviderError, TransientError
from freshbatch.gate import RateGate
from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.conftest import REPO
from tests.fakes.messages_api import Reply
from tests.runner_support import (
    assert_same_content,
    batch_entry,
    batch_of_request,
    event_names,
    events,
    fast,
    load,
)
from tests.throughput_support import ServerLog, read_progress, scripted, small_batches

PROGRESS_SCHEMA = json.loads(
    (REPO / "freshbatch" / "schemas" / "progress.schema.json").read_text("utf-8")
)
JOIN = 10.0  # generous: only a broken gate would make a join wait this long


class Waiters:
    """Threads calling gate.wait(); each records when it got through, or what it raised."""

    def __init__(self, gate: RateGate, count: int) -> None:
        self.released: list[float] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._wait, args=(gate,)) for _ in range(count)]
        for thread in self.threads:
            thread.start()

    def _wait(self, gate: RateGate) -> None:
        try:
            gate.wait()
        except BaseException as exc:  # noqa: B036 - recorded for the test
            with self._lock:
                self.errors.append(exc)
            return
        with self._lock:
            self.released.append(time.monotonic())

    def join(self) -> None:
        for thread in self.threads:
            thread.join(JOIN)
            assert not thread.is_alive(), "a waiter is still blocked"


def test_open_gate_lets_everyone_through_without_callbacks() -> None:
    calls: list[str] = []
    gate = RateGate(
        on_pause=lambda s, t: calls.append("pause"), on_resume=lambda: calls.append("r")
    )
    waiters = Waiters(gate, 3)
    waiters.join()
    assert len(waiters.released) == 3 and not waiters.errors
    assert calls == []


def test_pause_blocks_every_waiting_thread_until_the_time_passed() -> None:
    gate = RateGate()
    begun = time.monotonic()
    gate.pause(0.3, 429)
    waiters = Waiters(gate, 4)
    waiters.join()
    assert not waiters.errors
    assert len(waiters.released) == 4
    assert all(t >= begun + 0.3 for t in waiters.released), "a waiter passed during the pause"
    # a thread that arrives after the pause ended passes at once
    late = Waiters(gate, 1)
    late.join()
    assert len(late.released) == 1


def test_a_shorter_pause_never_shortens_a_longer_one() -> None:
    gate = RateGate()
    begun = time.monotonic()
    gate.pause(0.4, 529)
    gate.pause(0.01, 429)  # retry-after of another worker: shorter, must not reopen early
    waiters = Waiters(gate, 2)
    waiters.join()
    assert all(t >= begun + 0.4 for t in waiters.released)


def test_a_longer_pause_extends_the_current_one() -> None:
    gate = RateGate()
    gate.pause(0.05, 429)
    begun = time.monotonic()
    gate.pause(0.3, 429)
    waiters = Waiters(gate, 2)
    waiters.join()
    assert all(t >= begun + 0.3 for t in waiters.released)


def test_pause_and_resume_callbacks_fire_once_each() -> None:
    paused: list[tuple[int | None, float]] = []
    resumed: list[float] = []
    gate = RateGate(
        on_pause=lambda status, seconds: paused.append((status, seconds)),
        on_resume=lambda: resumed.append(time.monotonic()),
    )
    begun = time.monotonic()
    gate.pause(0.2, 429)
    waiters = Waiters(gate, 5)
    waiters.join()
    assert paused == [(429, 0.2)]
    assert len(resumed) == 1, f"resume reported {len(resumed)} times for one pause"
    assert resumed[0] >= begun + 0.2
    Waiters(gate, 2).join()  # open gate: no further resume
    assert len(resumed) == 1
    gate.pause(0.01, 529)
    Waiters(gate, 3).join()
    assert len(resumed) == 2 and paused[-1] == (529, 0.01)


def test_too_many_pauses_in_a_row_raise_and_shut_the_gate() -> None:
    paused: list[int | None] = []
    gate = RateGate(max_pauses=2, on_pause=lambda status, seconds: paused.append(status))
    gate.pause(0, 429)  # each pause over before the next one: three rate limits in a row
    gate.pause(0, 529)
    with pytest.raises(ProviderError, match="in a row"):
        gate.pause(0, 529)
    assert paused == [429, 529]
    waiters = Waiters(gate, 3)  # every other worker stops at its next request
    waiters.join()
    assert len(waiters.errors) == 3 and not waiters.released
    assert all(isinstance(e, ProviderError) and "in a row" in str(e) for e in waiters.errors)


def test_pauses_while_the_gate_is_closed_are_one_rate_limit() -> None:
    """429s of requests that were in flight when the gate closed extend the same pause."""
    paused: list[int | None] = []
    gate = RateGate(max_pauses=1, on_pause=lambda status, seconds: paused.append(status))
    gate.pause(60, 429)
    gate.pause(60, 429)
    gate.pause(60, 529)
    assert paused == [429, 429, 529]
    waiters = Waiters(gate, 2)
    gate.abort("test over")
    waiters.join()
    assert [str(e) for e in waiters.errors] == ["test over", "test over"]


def test_a_successful_request_resets_the_count_of_pauses() -> None:
    gate = RateGate(max_pauses=2)
    gate.pause(0, 429)
    gate.pause(0, 429)
    gate.succeeded()
    gate.pause(0, 429)
    gate.pause(0, 429)  # two in a row again: still allowed
    gate.wait()
    with pytest.raises(ProviderError):
        gate.pause(0, 429)


def test_abort_wakes_waiters_with_provider_error() -> None:
    gate = RateGate()
    gate.pause(60, 429)
    waiters = Waiters(gate, 3)
    gate.abort("the run is stopping: boom")
    waiters.join()
    assert len(waiters.errors) == 3
    assert all("boom" in str(e) for e in waiters.errors)
    with pytest.raises(ProviderError, match="boom"):
        gate.wait()


# --- with_retries and the gate ---------------------------------------------------------


def failing(*errors: Exception) -> Callable[[], str]:
    queue = list(errors)

    def action() -> str:
        if queue:
            raise queue.pop(0)
        return "ok"

    return action


def test_with_retries_pauses_the_gate_for_rate_limits_only() -> None:
    paused: list[tuple[int | None, float]] = []
    gate = RateGate(on_pause=lambda status, seconds: paused.append((status, seconds)))
    policy = RetryPolicy(base_seconds=0.01, max_seconds=0.05)
    action = failing(
        TransientError("429", retry_after=0.05, status=429),
        TransientError("500", status=500),
        TransientError("529", retry_after=0.02, status=529),
    )
    assert with_retries(action, "test", policy, gate) == ("ok", 3)
    assert paused == [(429, 0.05), (529, 0.02)], "a 500 must not close the shared gate"


def test_with_retries_gives_up_with_provider_error() -> None:
    gate = RateGate()
    policy = RetryPolicy(transport_retries=1, base_seconds=0.01, max_seconds=0.02)
    action = failing(*(TransientError("503", status=503) for _ in range(3)))
    with pytest.raises(ProviderError, match="gave up after 1 transport retries"):
        with_retries(action, "test", policy, gate)


def test_with_retries_success_resets_the_consecutive_pause_count() -> None:
    gate = RateGate(max_pauses=1)
    policy = RetryPolicy(base_seconds=0.01, max_seconds=0.02)
    for _ in range(3):  # one pause each time, then success: never two in a row
        action = failing(TransientError("429", retry_after=0.0, status=429))
        assert with_retries(action, "test", policy, gate) == ("ok", 1)
    action = failing(*(TransientError("429", retry_after=0.0, status=429) for _ in range(2)))
    with pytest.raises(ProviderError, match="in a row"):
        with_retries(action, "test", policy, gate)


# --- in a run: a 429 pauses every worker ------------------------------------------------


def test_a_429_pauses_the_other_workers_too(
    workspace: Workspace,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Concurrency 3. The 429 is answered when all three workers' requests are at the server;
    the other two responses are held until the run reported the pause. Then no request may
    reach the server before retry-after (0.3 s) has passed."""
    course = small_batches(workspace)
    folder = workspace.courses_dir / course
    paused = threading.Event()
    state: dict[str, Any] = {"sent": False, "key": None}
    base = scripted(demo_reference)
    log: ServerLog

    def respond(body: dict[str, Any]) -> Reply:
        reply = base(body)
        # log.waiting counts this request's predecessors still waiting at the server
        if not state["sent"] and log.waiting == 2:
            state["sent"] = True
            return Reply.error(429, headers={"retry-after": "0.3"})
        return reply

    def hold(key: tuple[int, int, int], status: int) -> threading.Event | None:
        return paused if state["sent"] and status == 200 and not paused.is_set() else None

    log = ServerLog(fake_api, monkeypatch, respond, delay=lambda key: 0.1)
    log.hold = hold
    statuses: dict[str, str] = {}

    def look(name: str, data: dict[str, Any]) -> None:
        if name.startswith("ratelimit:"):
            state = read_progress(folder)
            jsonschema.validate(state, PROGRESS_SCHEMA)
            statuses.setdefault(name, state["status"])
        if name == "ratelimit:pause":
            paused.set()

    # the policy's cap on a wait (max_seconds) must not cut the 0.3 s retry-after short
    options = fast(concurrency=3, retry=RetryPolicy(base_seconds=0.01, max_seconds=2.0))
    result = run(workspace, "phase1", course, options, listen=log.listener(look))
    assert result.ok
    assert state["sent"], "the 429 was never sent (three requests never waited at once)"
    rate_limited = next(m for m in log.marks if m.kind == "respond" and m.status == 429)
    window = [
        m.key for m in log.arrivals() if rate_limited.time <= m.time <= rate_limited.time + 0.25
    ]
    assert not window, f"requests reached the server during the pause: {window}"
    later = [m for m in log.arrivals() if m.seq > rate_limited.seq]
    assert len(later) >= 3, "the workers did continue after the pause"
    assert statuses == {"ratelimit:pause": "paused", "ratelimit:resume": "running"}
    names = event_names(folder)
    assert names.count("ratelimit:pause") == 1 and names.count("ratelimit:resume") == 1
    assert names.index("ratelimit:pause") < names.index("ratelimit:resume")
    pause = next(e for e in events(folder) if e["event"] == "ratelimit:pause")
    assert pause["status"] == 429 and pause["seconds"] == pytest.approx(0.3)
    assert read_progress(folder)["status"] == "completed"


def test_consecutive_529s_stop_the_run_and_a_later_run_completes(
    workspace: Workspace,
    demo: str,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = workspace.courses_dir / demo
    overloaded = [Reply.error(529, headers={"retry-after": "0.01"}) for _ in range(3)]
    log = ServerLog(fake_api, monkeypatch, scripted(demo_reference, script={(1, 1): overloaded}))
    with pytest.raises(ProviderError) as caught:
        run(workspace, "phase1", demo, fast(concurrency=2, max_consecutive_pauses=2))
    assert caught.value.exit_code == 3
    assert "in a row" in str(caught.value) and "529" in str(caught.value)
    assert len(log.arrivals()) == 3, "the run must stop at the third 529, not keep retrying"
    names = event_names(folder)
    assert names.count("ratelimit:pause") == 2
    assert read_progress(folder)["status"] == "idle", "stopped, not failed: resumable"
    assert not (folder / "seed_pairs.json").exists()
    assert batch_entry(folder, 1, 1)["status"] != "failed"
    # later: the server recovered, the run resumes and completes
    result = run(workspace, "phase1", demo, fast(concurrency=2, max_consecutive_pauses=2))
    assert result.ok
    assert_same_content(folder, demo_reference, (1,))
    assert load(folder / ".freshbatch" / "progress.json")["status"] == "completed"


def test_429s_of_requests_already_in_flight_are_one_rate_limit_not_several(
    workspace: Workspace,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Concurrency 4: the three requests in flight after the warm-up all meet the same rate
    limit and get their 429 at the same moment. That is one pause of every worker, not three
    pauses in a row: with max_consecutive_pauses=2 the run must wait and go on, not stop.
    (With the defaults, 10 pauses and --concurrency 16, one burst would stop a run.)"""
    course = small_batches(workspace)
    all_limited = threading.Event()
    limited: list[tuple[int, int]] = []
    base = scripted(demo_reference)

    def respond(body: dict[str, Any]) -> Reply:
        reply = base(body)
        phase, batch = batch_of_request(body)
        if batch in (2, 3, 4) and (phase, batch) not in limited:
            limited.append((phase, batch))
            if len(limited) == 3:
                all_limited.set()
            return Reply.error(429, headers={"retry-after": "0.1"})
        return reply

    log = ServerLog(fake_api, monkeypatch, respond)
    log.hold = lambda key, status: all_limited if status == 429 else None
    options = fast(concurrency=4, max_consecutive_pauses=2)
    result = run(workspace, "phase1", course, options, listen=log.listener())
    assert len(limited) == 3
    assert result.ok
    folder = workspace.courses_dir / course
    assert read_progress(folder)["status"] == "completed"
