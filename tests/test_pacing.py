"""Pacing from the rate-limit headers: the Pacer alone, then whole runs against a fake API
whose token buckets answer 429 with real headers (tests/fakes/ratelimits.py).

No test bounds how long anything took; counts of 429s, pauses and requests are compared.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from freshbatch.attempts import RetryPolicy
from freshbatch.gate import RateGate
from freshbatch.pacing import Cost, Pacer
from freshbatch.ratelimits import RateLimits
from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.fakes.messages_api import Reply
from tests.fakes.ratelimits import RateLimiter
from tests.runner_support import FAST, event_names, events, fast, load, use_reference
from tests.throughput_support import small_batches, write_settings

COST = Cost("phase1", 1000)


def limits(remaining: int, limit: int = 6000, at: float | None = None) -> RateLimits:
    headers = {
        "anthropic-ratelimit-output-tokens-limit": str(limit),
        "anthropic-ratelimit-output-tokens-remaining": str(remaining),
    }
    return RateLimits.from_headers(headers, at)  # type: ignore[return-value]


# --- the Pacer alone -------------------------------------------------------------------


def test_headers_parse_per_bucket() -> None:
    parsed = RateLimits.from_headers(
        {
            "Anthropic-RateLimit-Requests-Limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-output-tokens-limit": "8000",
            "anthropic-ratelimit-output-tokens-remaining": "x",
        }
    )
    assert parsed is not None and set(parsed.buckets) == {"requests"}
    assert parsed.buckets["requests"].remaining == 49
    assert RateLimits.from_headers({"content-type": "application/json"}) is None


def test_unknown_limits_admit_at_once_then_headers_hold_requests_back() -> None:
    pacer = Pacer(4, output_charge="reserve")
    first = pacer.acquire(COST)  # nothing known yet
    pacer.release(first, {"output-tokens": 100}, None)
    pacer.observe(limits(remaining=0, limit=60000))  # another run emptied the bucket
    assert pacer.buckets["output-tokens"].level < COST.max_tokens
    released: list[float] = []

    def second() -> None:
        pacer.release(pacer.acquire(COST), {"output-tokens": 10}, None)
        released.append(time.monotonic())

    thread = threading.Thread(target=second)
    began = time.monotonic()
    thread.start()
    thread.join(30)
    # 1000 tokens at 60000/min refill take 1 s: the request waited for them (a lower bound)
    assert released and released[0] - began >= 0.9


def test_headers_bring_the_copy_down_never_up() -> None:
    pacer = Pacer(4, output_charge="actual")
    ticket = pacer.acquire(COST)
    pacer.release(ticket, {"output-tokens": 100}, limits(remaining=3000))
    level = pacer.buckets["output-tokens"].level
    assert 2990 <= level <= 3100
    other = pacer.acquire(Cost("phase1", 400))
    pacer.release(other, {"output-tokens": 100}, limits(remaining=6000))  # says "more"
    assert pacer.buckets["output-tokens"].level <= level + 100


def test_a_reservation_settled_after_its_header_comes_back() -> None:
    """Reserve mode: the header, read as the response began, counted all of max_tokens."""
    pacer = Pacer(4, output_charge="reserve")
    pacer.release(pacer.acquire(COST), {"output-tokens": 10}, limits(remaining=6000))
    ticket = pacer.acquire(COST)
    seen = time.monotonic()
    pacer.release(ticket, {"output-tokens": 100}, limits(remaining=5000, at=seen))
    assert pacer.buckets["output-tokens"].level >= 5800  # 5000 + the 900 not used


def test_after_a_pause_workers_come_back_one_at_a_time() -> None:
    pacer = Pacer(4)
    pacer.paused()
    first = pacer.acquire(COST)
    blocked = threading.Event()

    def second() -> None:
        pacer.acquire(COST)
        blocked.set()

    threading.Thread(target=second, daemon=True).start()
    assert not blocked.wait(0.5)  # one allowed in flight
    pacer.release(first, {"output-tokens": 5}, None)
    assert blocked.wait(5)
    assert pacer.allowed == 2


def test_max_tokens_capped_at_the_output_limit_with_one_warning() -> None:
    warned: list[tuple[int, int]] = []
    pacer = Pacer(2, on_cap=lambda wanted, limit: warned.append((wanted, limit)))
    assert pacer.fit_max_tokens(32000) == 32000  # no limit known yet
    pacer.observe(limits(remaining=100, limit=16000))
    assert pacer.fit_max_tokens(32000) == 16000
    assert pacer.fit_max_tokens(32000) == 16000
    assert pacer.fit_max_tokens(8000) == 8000
    assert warned == [(32000, 16000)]


def test_a_429_of_a_request_in_flight_before_the_pause_adds_no_pause() -> None:
    pauses: list[float] = []
    gate = RateGate(max_pauses=1, on_pause=lambda status, seconds: pauses.append(seconds))
    before = time.monotonic()
    time.sleep(0.01)
    gate.pause(0.05, 429, started=time.monotonic())
    for _ in range(5):
        gate.pause(0.05, 429, started=before)  # in flight when the pause began
    assert len(pauses) == 1  # max_pauses=1 would have stopped a second counted pause


# --- whole runs against a limited fake -------------------------------------------------


@pytest.fixture
def course(workspace: Workspace) -> str:
    return small_batches(workspace, batch_size=3)  # 15 batches


def set_max_tokens(workspace: Workspace, phase: int, value: int) -> None:
    path = workspace.root / "validators" / f"phase{phase}" / "phase.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    data["max_tokens"] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")


def test_a_paced_run_draws_few_429s(
    workspace: Workspace, course: str, fake_api: Any, demo_reference: Path
) -> None:
    """Output bucket much smaller than the run, concurrency 8: it finishes with few 429s;
    with the pacer off, the same run meets the empty bucket with every worker at once and
    does not finish (checked by hand, 2026-12-02)."""
    use_reference(fake_api, demo_reference)
    limiter = RateLimiter(output_tokens_per_minute=6000, output_charge="actual", initial=0.05)
    fake_api.rate_limiter = limiter
    write_settings(workspace, {"output_charge": "actual", "concurrency": 8})
    result = run(workspace, "phase1", course, fast())
    assert result.ok
    assert limiter.refused <= 3
    state = load(workspace.courses_dir / course / ".freshbatch" / "progress.json")
    pacing = state["pacing"]
    assert pacing["limits"]["output-tokens"]["limit"] == 6000
    assert pacing["concurrency"] == 8 and pacing["output_charge"] == "actual"


def test_a_rate_limited_run_outlasts_the_transport_retry_cap(
    workspace: Workspace, course: str, fake_api: Any, demo_reference: Path
) -> None:
    """Seven 429s for one request, with only two transport retries allowed: it goes on."""
    use_reference(fake_api, demo_reference)
    fake_api.enqueue(*[Reply.error(429, headers={"retry-after": "0"})] * 7)
    policy = RetryPolicy(transport_retries=2, base_seconds=0.01, max_seconds=0.02)
    result = run(workspace, "phase1", course, fast(retry=policy, batches=(1,)))
    assert result.ok
    assert event_names(workspace.courses_dir / course).count("ratelimit:pause") == 7


def test_only_pauses_in_a_row_stop_a_rate_limited_run(
    workspace: Workspace, course: str, fake_api: Any, demo_reference: Path
) -> None:
    use_reference(fake_api, demo_reference)
    fake_api.enqueue(*[Reply.error(429, headers={"retry-after": "0"})] * 20)
    result_code = None
    try:
        run(workspace, "phase1", course, fast(batches=(1,), max_consecutive_pauses=4))
    except Exception as exc:  # noqa: BLE001 - the ProviderError the CLI turns into exit 3
        result_code = getattr(exc, "exit_code", None)
        assert "rate limited 4 times in a row" in str(exc)
    assert result_code == 3
    assert event_names(workspace.courses_dir / course).count("ratelimit:pause") == 4


def test_in_flight_429s_make_one_pause(
    workspace: Workspace, course: str, fake_api: Any, demo_reference: Path
) -> None:
    """Four workers meet a 429 together: one pause, not four."""
    use_reference(fake_api, demo_reference)
    gate = threading.Barrier(4)
    served = {"n": 0}
    lock = threading.Lock()
    base = fake_api.responder

    def responder(body: dict[str, Any]) -> Reply:
        with lock:
            served["n"] += 1
            first = served["n"] <= 5
        if first and served["n"] > 1:  # after the warm-up, four at once get 429
            return Reply.error(429, headers={"retry-after": "1"})
        reply: Reply = base(body)
        return reply

    del gate
    fake_api.responder = responder
    write_settings(workspace, {"concurrency": 4})
    result = run(workspace, "phase1", course, fast())
    assert result.ok
    assert event_names(workspace.courses_dir / course).count("ratelimit:pause") <= 2


def test_max_tokens_above_the_output_limit_is_capped_so_the_run_gets_through(
    workspace: Workspace, course: str, fake_api: Any, demo_reference: Path
) -> None:
    """Reserve mode, max_tokens 8000 against a 3000/min bucket: capped at 3000, one warning."""
    use_reference(fake_api, demo_reference)
    fake_api.rate_limiter = RateLimiter(output_tokens_per_minute=3000, output_charge="reserve")
    result = run(workspace, "phase1", course, fast(batches=(1, 2)))
    assert result.ok
    sent = [r.body["max_tokens"] for r in fake_api.message_requests()]
    assert sent[0] == 8000 and set(sent[1:]) == {3000}  # the first 429 showed the limit
    folder = workspace.courses_dir / course
    warnings = [e for e in events(folder) if e["event"] == "run:warning"]
    assert len(warnings) == 1 and "3000" in warnings[0]["message"]
    # once the limit is known, plan says so beforehand for every phase still to run
    from freshbatch.planning import plan_phase

    plan = plan_phase(workspace, "all", course)
    said = " ".join(plan.warnings)
    assert "phase1: max_tokens 8000" in said and "phase3: max_tokens 32000" in said


def test_two_runs_on_one_account_both_finish(
    workspace: Workspace, fake_api: Any, demo_reference: Path, tmp_path: Path
) -> None:
    """Two courses at once against one bucket that reserves max_tokens (as Anthropic's API
    does): each run paces from the shared headers, so neither stampedes the other."""
    from tests.throughput_support import new_workspace

    other = new_workspace(tmp_path / "other")
    first, second = small_batches(workspace, 3), small_batches(other, 3)
    use_reference(fake_api, demo_reference)
    limiter = RateLimiter(output_tokens_per_minute=30000, output_charge="reserve", initial=0.05)
    fake_api.rate_limiter = limiter
    for ws in (workspace, other):
        write_settings(ws, {"concurrency": 6})
        set_max_tokens(ws, 1, 400)  # answers here are about 90 tokens
    results: list[bool] = []
    threads = [
        threading.Thread(
            target=lambda ws=ws, code=code: results.append(
                run(ws, "phase1", code, fast(retry=FAST)).ok
            )
        )
        for ws, code in ((workspace, first), (other, second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == [True, True]
    assert limiter.refused <= 20  # usually 1-3; with the pacer off, one run does not finish
