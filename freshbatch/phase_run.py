"""One phase of one course: merged batches so far, judging, staging, in-order merge."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from freshbatch.attempts import AttemptRecord, BatchOutcome, RetryPolicy, run_attempts
from freshbatch.batching import Batch
from freshbatch.files import dump_merged, encode_items
from freshbatch.gate import RateGate
from freshbatch.issues import ERROR, Issue, Reporter
from freshbatch.phases import PhaseDef
from freshbatch.pricing import Pricing
from freshbatch.progress import Progress
from freshbatch.prompts import Retry, build_request, system_blocks
from freshbatch.providers import Provider, Request, Usage
from freshbatch.rules.base import Checker, PhaseContext
from freshbatch.schema import check_schema
from freshbatch.status import read_checked
from freshbatch.store import PhaseStore
from freshbatch.thinking import request_params
from freshbatch.validation import load_context, make_checker
from freshbatch.workspace import Course, Escalation, Workspace

TRANSCRIPT_VERSION = 1
MAX_PROGRESS_ERRORS = 20


@dataclass(frozen=True)
class AttemptOptions:
    """What every batch's attempts share."""

    max_attempts: int = 3
    retry: RetryPolicy = RetryPolicy()
    cache_ttl: str | None = None
    thinking: str | None = None  # freshbatch.yaml / course.yaml; a phase's own setting wins
    effort: str | None = None
    escalate: Escalation | None = None  # later attempts on a stronger model
    batch_timeout: float | None = None  # wall-clock seconds for all attempts of one batch

    def model_for(self, attempt: int, model: str) -> str:
        """The model attempt `attempt` runs on: the escalation model from its from_attempt."""
        return model if self.escalate is None else self.escalate.model_for(attempt, model)


class PhaseRun:
    """One phase of one course: the merged batches so far, staging, and the batch loop."""

    def __init__(
        self,
        workspace: Workspace,
        phases: dict[int, PhaseDef],
        phase: PhaseDef,
        course: Course,
        progress: Progress,
        pricing: Pricing | None = None,
        run_id: str | None = None,
    ) -> None:
        self.phase = phase
        self.phases = phases
        self.course = course
        self.progress = progress
        self.pricing = pricing or Pricing()
        self.context: PhaseContext = load_context(workspace, phase, course, phases)
        self.plan = self.context.plan
        self.module = phase.module
        self.store = PhaseStore(course, phase.number, phase.output_file, run_id)
        self.header, self.bodies = self._load_merged()
        self.merged_doc: dict[str, Any] | None = None  # set at each merge, for later phases
        self._items: list[str] = []  # the merged body's items, encoded once each
        for body in self.bodies:
            self._items += encode_items(body[self.module.BODY_KEY])
        self._judged: dict[int, tuple[int, dict[str, Any]]] = {}
        self._reach: tuple[dict[str, Any], int] | None = None
        # a checker of merged batches 1..m, and the input document it was built on
        self._state: tuple[int, Checker, Any] | None = None
        self._state_lock = threading.Lock()
        self._warned_thinking = False
        self._sync_progress()

    # --- state from disk ------------------------------------------------------------------

    def _load_merged(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The merged file's header and batch bodies 1..m, checked seed by seed against the plan."""
        doc, merged = read_checked(self.course, self.phase, self.plan)
        if doc is None:
            return None, []
        report = Reporter(self.phase.rules, {}, None)
        checker = make_checker(self.context)
        bodies = checker.split(doc, report)
        header = {k: v for k, v in doc.items() if k != self.module.BODY_KEY}
        return header, [bodies.get(n) or checker.empty() for n in range(1, merged + 1)]

    def _sync_progress(self) -> None:
        staged = set(self.store.staged_batches())
        for batch in self.plan:
            status = (
                "merged"
                if batch.number <= len(self.bodies)
                else "staged"
                if batch.number in staged
                else None
            )
            entry = self.progress.batch(self.phase.number, batch.number)
            if status is not None:
                self.progress.set_batch_status(self.phase.number, batch.number, status)
            elif entry["status"] in ("merged", "staged", "running"):
                self.progress.set_batch_status(self.phase.number, batch.number, "pending")

    def _checker(self, before: int | None = None) -> Checker:
        """A fresh checker holding the state of merged batches 1..before-1.

        Built by cloning a kept checker advanced batch by batch, not by absorbing every
        merged batch again for each attempt.
        """
        limit = len(self.bodies) if before is None else min(before - 1, len(self.bodies))
        source = self.context.inputs.get(self.phase.input_file or "")
        with self._state_lock:
            if self._state is None or self._state[0] > limit or self._state[2] is not source:
                self._state = (0, make_checker(self.context), source)  # the input changed
            done, checker, _ = self._state
            for number in range(done, limit):
                checker.absorb(self.bodies[number], self.plan.batches[number])
            self._state = (limit, checker, source)
            return checker.clone()

    # --- judging, staging, merging --------------------------------------------------------

    def judge(
        self, batch: Batch, answer: dict[str, Any], schema_checked: bool = False
    ) -> tuple[dict[str, Any], list[Issue]]:
        """Schema, then complete (ids, flags, derived fields), then the phase's rules."""
        report = Reporter(self.phase.rules, self.course.rules, batch.number)
        if not schema_checked and check_schema(
            self.phase.batch_schema, answer, report, limit=MAX_PROGRESS_ERRORS * 2
        ):
            return answer, report.issues
        version = self._state_version(batch)
        checker = self._checker(batch.number)
        body: dict[str, Any] = self.module.complete(self.context, batch, answer, checker)
        checker.check(body, batch, report)
        if not report.has_errors:
            self._judged[batch.number] = (version, body)
        return body, report.issues

    def _state_version(self, batch: Batch) -> int:
        """What a judgement of `batch` depends on that changes during a run: the merged
        batches before it, for phases whose rules read them.

        The input is not part of it: during a run it only grows, and batch k reads the
        input's batches 1..k, which were merged (and so never change) before batch k began.
        """
        if not self.module.PhaseChecker.stateful:
            return 0
        return min(batch.number - 1, len(self.bodies))

    def _judge_for_merge(
        self, batch: Batch, staged: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Issue]]:
        """The judgement made when the answer came, if nothing it depends on changed since."""
        known = self._judged.pop(batch.number, None)
        if known is None:  # staged by an earlier run: judged from scratch
            return self.judge(batch, staged)
        if known[0] == self._state_version(batch):
            return known[1], []
        # the answer passed the schema when it came; only the batches before it moved
        return self.judge(batch, staged, schema_checked=True)

    def is_ready(self, batch: Batch) -> str | None:
        """None when the phase's input covers batches 1..k, else why not."""
        if self.phase.input_file is None:
            return None
        doc = self.context.inputs.get(self.phase.input_file)
        producer = self.phases.get(self.phase.requires or 0)
        position = self.plan.position(batch.last_seed)
        if doc is None or position is None or position >= self._input_reach(doc, producer):
            step = f"run phase{producer.number} first" if producer else "add it first"
            return (
                f"{self.phase.key} batch {batch.number} needs {self.phase.input_file} through "
                f"{batch.last_seed}; {step}"
            )
        return None

    def _input_reach(self, doc: dict[str, Any], producer: PhaseDef | None) -> int:
        """How many leading seeds of the plan the input covers (cached per input document)."""
        if self._reach is not None and self._reach[0] is doc:
            return self._reach[1]
        covered = (
            set(producer.module.merged_seed_ids(doc, self.plan.seed_ids)) if producer else set()
        )
        reach = 0
        for seed_id in self.plan.seed_ids:
            if seed_id not in covered:
                break
            reach += 1
        self._reach = (doc, reach)
        return reach

    def merge_ready(self) -> None:
        """Merge staged answers m+1, m+2, ... in order, judged again against the full state."""
        while True:
            number = len(self.bodies) + 1
            if number > len(self.plan) or not self.store.is_staged(number):
                return
            batch = self.plan.batch(number)
            staged = self.store.read_staged(number)
            body, issues = self._judge_for_merge(batch, staged) if staged is not None else ({}, [])
            if staged is None or any(i.severity == ERROR for i in issues):
                self.store.drop_staged(number)
                self.progress.set_batch_status(self.phase.number, number, "pending")
                self.progress.event(
                    "batch:invalid",
                    {
                        "phase": self.phase.number,
                        "batch": number,
                        "reason": "staged batch no longer valid",
                    },
                )
                return
            seeds = self.plan.seed_ids[: self.plan.seed_ids.index(batch.last_seed) + 1]
            doc = self.module.merge(self.context, self.header, [*self.bodies, body], seeds)
            items = self._items + encode_items(body[self.module.BODY_KEY])
            self.store.write_merged(dump_merged(doc, self.module.BODY_KEY, items))
            self._items = items
            self.merged_doc = doc
            self.bodies.append(body)
            self.header = {k: v for k, v in doc.items() if k != self.module.BODY_KEY}
            self.store.drop_staged(number)
            self.progress.batch_finished(
                self.phase.number, number, "merged", produced=self.module.describe(body)
            )

    # --- the batch loop -------------------------------------------------------------------

    def prefix_tokens_estimate(self) -> int:
        """About how many tokens the cached prefix holds (4 characters a token)."""
        return len("".join(system_blocks(self.phase, self.course))) // 4

    def start(self) -> None:
        """Clean up after a crash and merge what is already staged."""
        self.store.remove_temporary_files()
        self._drop_stale_staging()
        self.merge_ready()

    def _drop_stale_staging(self) -> None:
        for number in self.store.staged_batches():
            if number <= len(self.bodies):  # merged before a crash removed the staged copy
                self.store.drop_staged(number)

    def batch_input(self, batch: Batch) -> dict[str, Any]:
        return dict(self.module.batch_input(self.context, batch, self.bodies[: batch.number - 1]))

    def request(
        self,
        model: str,
        batch: Batch,
        batch_input: dict[str, Any],
        attempt: int,
        options: AttemptOptions,
        retry: Retry | None = None,
        on_started: Callable[[], None] | None = None,
        first_message: str | None = None,
    ) -> Request:
        """The request for one attempt of one batch."""
        params, warning = request_params(
            model, self.phase.thinking or options.thinking, self.phase.effort or options.effort
        )
        if warning is not None and not self._warned_thinking:
            self._warned_thinking = True
            self.progress.warn(self.phase.number, f"phase {self.phase.number}: {warning}")
        return build_request(
            self.phase, self.course, model, batch, len(self.plan), batch_input, attempt,
            options.max_attempts, retry, cache_ttl=options.cache_ttl, on_started=on_started,
            first_message=first_message, params=params,
        )  # fmt: skip

    def run_batch(
        self,
        provider: Provider,
        model: str,
        batch: Batch,
        options: AttemptOptions,
        gate: RateGate,
        on_started: Callable[[], None] | None = None,
    ) -> BatchOutcome:
        """Attempts for one batch (in a worker thread); a valid answer is staged."""
        number = self.phase.number
        batch_input = self.batch_input(batch)

        def build(attempt: int, retry: Retry | None) -> Request:
            chosen = options.model_for(attempt, model)
            return self.request(chosen, batch, batch_input, attempt, options, retry, on_started)

        def record(request: Request, attempt: AttemptRecord, timings: dict[str, Any]) -> None:
            escalated = request.model != model
            self.record(provider.name, request, attempt, timings, request.model,
                        escalated=escalated)  # fmt: skip

        self.progress.batch_started(number, batch.number)
        outcome = run_attempts(
            provider,
            build,
            lambda answer: self.judge(batch, answer),
            batch.number,
            options.max_attempts,
            options.retry,
            record,
            gate,
            options.batch_timeout,
        )
        self.finish(batch, outcome.body, outcome.last_issues)
        return outcome

    def finish(self, batch: Batch, answer: dict[str, Any] | None, issues: Sequence[Issue]) -> None:
        """Stage a valid answer, or mark the batch failed."""
        if answer is None:
            errors = [i.to_dict() for i in issues if i.severity == ERROR][:MAX_PROGRESS_ERRORS]
            self.progress.batch_finished(
                self.phase.number, batch.number, "failed", errors=len(issues), last_errors=errors
            )
            return
        self.store.stage(batch.number, batch.seed_ids, answer)
        self.progress.batch_finished(self.phase.number, batch.number, "staged")

    def record(
        self,
        provider_name: str,
        request: Request,
        attempt: AttemptRecord,
        timings: dict[str, Any],
        model: str,
        batch: bool = False,
        escalated: bool = False,
    ) -> None:
        """Write the attempt's transcript and update progress (tokens, cost, errors, model)."""
        answer = attempt.answer
        usage = attempt.usage
        priced = self.pricing.cost(usage, model, batch=batch, cache_ttl=request.cache_ttl)
        if priced is None:
            self.progress.cost_unknown(model)
        cost = priced or 0.0
        issues = [i.to_dict() for i in attempt.issues]
        sent = answer.sent if answer is not None else attempt.sent
        prefix = (answer.prefix_sha256 if answer is not None else None) or request.prefix_sha256
        if sent is not None:
            prefix = sent.get("system_sha256") or prefix
        self.store.write_transcript(
            request.meta.batch,
            attempt.attempt,
            {
                "schema_version": TRANSCRIPT_VERSION,
                "course": self.course.code,
                "phase": self.phase.number,
                "batch": request.meta.batch,
                "attempt": attempt.attempt,
                "provider": provider_name,
                "model": model,
                **({"escalated": True} if escalated else {}),
                "prefix_sha256": prefix,
                "request": sent if sent is not None else request.to_dict(),
                "answer": answer.to_dict() if answer else None,
                "transport_retries": attempt.transport_retries,
                **(
                    {"retry_usage": attempt.retry_usage.to_dict()}
                    if attempt.retry_usage != Usage()
                    else {}
                ),
                **({"error": attempt.error} if attempt.error else {}),
                "cost_usd": cost,
                **timings,
                "validation": {"valid": attempt.is_valid, "issues": issues},
            },
        )
        errors = sorted(issues, key=lambda i: i["severity"] != ERROR)[:MAX_PROGRESS_ERRORS]
        blocking = [i for i in errors if i["severity"] == ERROR]
        self.progress.attempt_done(
            self.phase.number, request.meta.batch, attempt.attempt, usage, cost, blocking,
            model=model, escalated=escalated,
        )  # fmt: skip
