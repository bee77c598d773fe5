"""One batch: up to N fresh attempts, each judged by the validators, with feedback between.

Two retry loops, kept apart: inside an attempt, tenacity retries transport faults
(TransientError) and honours retry-after; those retries never use up an attempt. Across
attempts, each new request carries the previous answer and the validator's issues.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type

from freshbatch.answers import AnswerFormatError, parse_answer
from freshbatch.clock import now_iso
from freshbatch.errors import ProviderError, TransientError
from freshbatch.gate import RateGate
from freshbatch.issues import ERROR, Issue
from freshbatch.pacing import Cost
from freshbatch.prompts import Retry
from freshbatch.providers import Answer, Provider, Request, Usage

T = TypeVar("T")
RATE_LIMITS = (429, 529)
Judge = Callable[[dict[str, Any]], tuple[dict[str, Any], list[Issue]]]
BuildRequest = Callable[[int, Retry | None], Request]


@dataclass(frozen=True)
class RetryPolicy:
    """Transport retries inside one attempt: how many, and the backoff without retry-after."""

    transport_retries: int = 8
    base_seconds: float = 2.0
    max_seconds: float = 120.0


@dataclass(frozen=True)
class AttemptRecord:
    attempt: int
    answer: Answer | None
    issues: tuple[Issue, ...]
    transport_retries: int
    retry_usage: Usage = Usage()  # what this attempt's failed transport tries still cost
    error: str | None = None  # the provider error that ended the run during this attempt
    sent: dict[str, Any] | None = None  # what the failed call really ran (claude-cli)

    @property
    def is_valid(self) -> bool:
        return self.answer is not None and not any(i.severity == ERROR for i in self.issues)

    @property
    def usage(self) -> Usage:
        """Everything this attempt cost: the answer and any failed tries before it."""
        answer = self.answer.usage if self.answer is not None else Usage()
        return answer + self.retry_usage


@dataclass(frozen=True)
class BatchOutcome:
    """The end of a batch: the valid answer (parsed, as the model wrote it) or None.

    The answer, not the completed body, is staged: derived facts (ids, new flags, final
    LEGOs) are computed again at merge time from every batch merged before it.
    """

    body: dict[str, Any] | None
    attempts: tuple[AttemptRecord, ...]
    stopped: Issue | None = None  # why no further attempt ran (batch-timeout)

    @property
    def last_issues(self) -> tuple[Issue, ...]:
        last = self.attempts[-1].issues if self.attempts else ()
        return last if self.stopped is None or self.stopped in last else (self.stopped, *last)


class BatchTimeout(Exception):
    """The batch's attempts used up their --batch-timeout (ends the batch, not the run)."""


def judge_answer(
    answer: Answer, batch: int, judge: Judge
) -> tuple[dict[str, Any] | None, list[Issue]]:
    """Strict parse, then the phase's schema and rules; returns the parsed answer and issues."""
    if answer.is_truncated:
        return None, [
            Issue(
                ERROR,
                "answer-truncated",
                "the answer was cut off at the output "
                "token limit (stop_reason max_tokens); give the complete batch, "
                "more compactly: no commentary, no extra fields",
                batch,
            )
        ]
    try:
        doc = parse_answer(answer.text)
    except AnswerFormatError as exc:
        return None, [Issue(ERROR, "answer-json", str(exc), batch)]
    _, issues = judge(doc)
    return doc, issues


def wait_seconds(policy: RetryPolicy, state: RetryCallState) -> float:
    """retry-after when the server gave one, else exponential backoff with jitter."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, TransientError) and exc.retry_after is not None:
        return min(max(exc.retry_after, 0.0), policy.max_seconds)
    backoff: float = policy.base_seconds * 2.0 ** (state.attempt_number - 1)
    return min(backoff, policy.max_seconds) * random.uniform(0.5, 1.0)


class Spend:
    """What failed provider calls still cost (their usage), summed across transport retries."""

    def __init__(self) -> None:
        self.usage = Usage()

    def add(self, exc: BaseException) -> None:
        usage = getattr(exc, "usage", None)
        if isinstance(usage, Usage):
            self.usage = self.usage + usage


def with_retries(
    action: Callable[[], T],
    label: str,
    policy: RetryPolicy,
    gate: RateGate,
    spend: Spend | None = None,
    cost: Cost | None = None,
) -> tuple[T, int]:
    """action() with transport retries; returns its result and how many retries it took.

    Rate limits (429, 529) close the shared gate, so every worker waits out retry-after,
    and never count against `policy.transport_retries`: a rate-limited run goes on until
    the gate sees too many pauses in a row with no answer between them. Other transport
    faults back off in this worker only. With a `cost`, each try first waits for the gate's
    pacer to admit it. The usage failed calls report is added to `spend`, and carried by
    the ProviderError when the retries give up.
    """
    retries = 0
    spend = spend if spend is not None else Spend()
    started: list[float] = [0.0]

    def tracked() -> T:
        ticket = gate.admit(cost)
        started[0] = ticket.started if ticket is not None else time.monotonic()
        try:
            result = action()
        except (TransientError, ProviderError) as exc:
            spend.add(exc)
            gate.settle(ticket, None, getattr(exc, "limits", None))
            raise
        except BaseException:
            gate.settle(ticket, None, None)
            raise
        gate.settle(ticket, _used(result), getattr(result, "limits", None))
        return result

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.status in RATE_LIMITS:
            return 0.0  # the gate does the waiting, for every worker
        return wait_seconds(policy, state)

    def before_sleep(state: RetryCallState) -> None:
        nonlocal retries
        retries += 1
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.status in RATE_LIMITS:
            gate.pause(wait_seconds(policy, state), exc.status, started=started[0])

    faults = _FaultCount(policy.transport_retries)
    retrying = Retrying(
        retry=retry_if_exception_type(TransientError),
        stop=faults.stop,
        wait=wait,
        before=lambda state: gate.wait(),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        result = retrying(tracked)
    except TransientError as exc:
        raise ProviderError(
            f"{label}: gave up after {retries} transport retries: {exc}; "
            "the run can be resumed later",
            usage=spend.usage,
        ) from exc
    except ProviderError as exc:
        exc.usage = spend.usage
        raise
    gate.succeeded()
    return result, retries


class _FaultCount:
    """tenacity stop: after `limit` retries of faults other than rate limits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.status in RATE_LIMITS:
            return False
        self.count += 1
        return self.count > self.limit


def _used(result: object) -> dict[str, int] | None:
    """What an Answer took from the account's buckets (None for other results)."""
    if not isinstance(result, Answer):
        return None
    usage = result.usage
    return {
        "requests": 1,
        "input-tokens": usage.input_tokens + usage.cache_creation_input_tokens,
        "output-tokens": usage.output_tokens,
    }


def call_provider(
    provider: Provider,
    request: Request,
    policy: RetryPolicy,
    gate: RateGate,
    spend: Spend | None = None,
    deadline: float | None = None,
) -> tuple[Answer, int]:
    """provider.complete with transport retries and pacing (see with_retries).

    Each try sends max_tokens capped at the account's output limit, once the headers have
    shown it (a larger reservation could never be made). With a `deadline` (monotonic),
    each try's timeout is cut to the time left, and BatchTimeout is raised once none is."""
    cost = Cost(f"phase{request.meta.phase}", request.max_tokens, request.expected_output)

    def send() -> Answer:
        fitted = gate.fit_max_tokens(request.max_tokens)
        sent = request if fitted == request.max_tokens else replace(request, max_tokens=fitted)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BatchTimeout()
            sent = replace(sent, timeout=left)
        return provider.complete(sent)

    answer, retries = with_retries(send, provider.name, policy, gate, spend, cost)
    request.notify_started()
    return answer, retries


class Timings:
    """When an attempt started, and its wall time and provider CPU once done."""

    def __init__(self) -> None:
        self.started, self.clock, self.cpu = now_iso(), time.monotonic(), time.thread_time()

    def done(self) -> dict[str, Any]:
        return {
            "started_at": self.started,
            "finished_at": now_iso(),
            "seconds": round(time.monotonic() - self.clock, 3),
            # this thread's CPU inside the provider call (SDK, HTTP, stream), retries too
            "provider_cpu_seconds": round(time.thread_time() - self.cpu, 4),
        }


def run_attempts(
    provider: Provider,
    build: BuildRequest,
    judge: Judge,
    batch: int,
    max_attempts: int,
    policy: RetryPolicy,
    record: Callable[[Request, AttemptRecord, dict[str, Any]], None],
    gate: RateGate,
    batch_timeout: float | None = None,
) -> BatchOutcome:
    """Attempts 1..max_attempts, each a fresh request; stops at the first valid answer,
    or once the attempts together took `batch_timeout` seconds (the batch fails)."""
    records: list[AttemptRecord] = []
    retry: Retry | None = None
    deadline = None if batch_timeout is None else time.monotonic() + batch_timeout
    for attempt in range(1, max_attempts + 1):
        if deadline is not None and time.monotonic() >= deadline:
            return BatchOutcome(None, tuple(records), timed_out(batch, batch_timeout))
        request = build(attempt, retry)
        timings = Timings()
        spend = Spend()
        try:
            answer, retries = call_provider(provider, request, policy, gate, spend, deadline)
        except BatchTimeout:
            issue = timed_out(batch, batch_timeout)
            cut = AttemptRecord(attempt, None, (issue,), 0, spend.usage, issue.message)
            records.append(cut)
            record(request, cut, timings.done())
            return BatchOutcome(None, tuple(records), issue)
        except ProviderError as exc:
            if spend.usage != Usage() or exc.sent is not None:  # paid for, or worth a look
                failed = AttemptRecord(attempt, None, (), 0, spend.usage, str(exc), exc.sent)
                record(request, failed, timings.done())
            raise
        times = timings.done()
        body, issues = judge_answer(answer, batch, judge)
        result = AttemptRecord(attempt, answer, tuple(issues), retries, spend.usage)
        records.append(result)
        record(request, result, times)
        if result.is_valid and body is not None:
            return BatchOutcome(body, tuple(records))
        retry = Retry(answer.text, tuple(issues))
    return BatchOutcome(None, tuple(records))


def timed_out(batch: int, seconds: float | None) -> Issue:
    return Issue(
        ERROR,
        "batch-timeout",
        f"batch {batch}: its attempts took longer than --batch-timeout {seconds:g}s; "
        "raise it, or run again to retry the batch",
        batch,
    )


def total_usage(outcome: BatchOutcome) -> Usage:
    usage = Usage()
    for attempt in outcome.attempts:
        usage = usage + attempt.usage
    return usage
