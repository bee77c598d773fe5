"""Run (or resume) a phase of a course: fresh attempts per batch, staged, merged in order."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freshbatch.attempts import AttemptRecord, BatchOutcome, RetryPolicy, run_attempts, total_usage
from freshbatch.batching import Batch
from freshbatch.errors import InputError, TransientError, ValidationFailed
from freshbatch.files import shown
from freshbatch.issues import ERROR, Issue, Reporter
from freshbatch.phases import PhaseDef, load_phases, resolve_phase
from freshbatch.pricing import cost_usd
from freshbatch.progress import Progress, ReadOnlyProgress
from freshbatch.prompts import Retry, build_request
from freshbatch.providers import (
    PROVIDER_NAMES,
    Provider,
    ProviderConfig,
    Request,
    Usage,
    make_provider,
)
from freshbatch.rules.base import Checker, PhaseContext
from freshbatch.schema import check_schema
from freshbatch.status import merged_batch_count
from freshbatch.store import (
    PhaseStore,
    check_plan_record,
    complete_batches,
    course_lock,
    record_plan,
)
from freshbatch.validation import load_context, make_checker
from freshbatch.workspace import DEFAULT_MODEL, Course, Workspace

TRANSCRIPT_VERSION = 1
MAX_PROGRESS_ERRORS = 20


@dataclass(frozen=True)
class RunOptions:
    """How to run: provider and model, which batches, attempts, retries."""

    provider: str | None = None
    model: str | None = None
    batches: tuple[int, ...] | None = None
    max_attempts: int = 3
    dry_run: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    command: tuple[str, ...] = ()
    claude_binary: str = "claude"
    replay_dir: Path | None = None
    timeout: float = 600.0


@dataclass
class PhaseResult:
    phase: int
    total: int
    merged: int = 0
    ran: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    last_issues: list[Issue] = field(default_factory=list)


@dataclass
class RunResult:
    course: str
    provider: str
    model: str
    phases: list[PhaseResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.failed for p in self.phases)


def choose_provider(name: str | None) -> str:
    """--provider, else anthropic when ANTHROPIC_API_KEY is set."""
    if name is not None:
        if name not in PROVIDER_NAMES:
            raise InputError(
                f"--provider {name}: unknown (choose from {', '.join(PROVIDER_NAMES)})"
            )
        return name
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic"
    raise InputError(
        "no provider: set ANTHROPIC_API_KEY for the Anthropic API, or pass "
        "--provider (claude-cli, command, replay)"
    )


def phase_numbers(phases: dict[int, PhaseDef], name: str, workspace: Workspace) -> list[int]:
    if name == "all":
        return sorted(phases)
    return [resolve_phase(phases, name, workspace).number]


def run(
    workspace: Workspace,
    phase_name: str,
    course_code: str,
    options: RunOptions,
    listen: Callable[[Progress], None] | None = None,
) -> RunResult:
    """Run or resume one phase, or `all` phases one after another, under the course lock."""
    phases = load_phases(workspace)
    numbers = phase_numbers(phases, phase_name, workspace)
    course = workspace.load_course(course_code)
    provider_name = choose_provider(options.provider)
    model = options.model or course.model or DEFAULT_MODEL
    result = RunResult(course.code, provider_name, model)
    seeds = course.load_seeds()
    plan = course.plan(seeds)
    if options.batches and max(options.batches) > len(plan):
        raise InputError(f"--batches: {course.code} has batches 1..{len(plan)}")
    with course_lock(course):
        has_merged = any(course.output_path(p.output_file).is_file() for p in phases.values())
        check_plan_record(course, plan, has_merged)  # first: its message names the real cause
        for phase in phases.values():
            merged_batch_count(course, phase, plan)  # refuses a partial batch, writes nothing
        record_plan(course, plan)
        for store in (PhaseStore(course, n, phases[n].output_file) for n in numbers):
            store.remove_temporary_files()
        provider = make_provider(
            provider_name,
            ProviderConfig(
                course_dir=course.folder,
                timeout=options.timeout,
                command=options.command,
                claude_binary=options.claude_binary,
                replay_dir=options.replay_dir,
            ),
        )
        progress = Progress(course.state_dir, course.code, plan, numbers)
        if listen is not None:
            listen(progress)
        status = "idle"  # also after a provider error or Ctrl-C: resumable, no batch failed
        progress.start_run({"provider": provider_name, "model": model, "phases": numbers})
        try:
            for number in numbers:
                phase_run = PhaseRun(workspace, phases, phases[number], course, progress)
                outcome = phase_run.run(provider, model, options)
                result.phases.append(outcome)
                if outcome.failed:
                    break
            status = (
                "completed"
                if result.ok and _all_merged(result)
                else ("failed" if not result.ok else "idle")
            )
        finally:
            progress.end_run(status)
            close = getattr(provider, "close", None)
            if callable(close):
                close()
    return result


def _all_merged(result: RunResult) -> bool:
    return all(p.merged == p.total for p in result.phases)


class PhaseRun:
    """One phase of one course: the merged batches so far, staging, and the batch loop."""

    def __init__(
        self,
        workspace: Workspace,
        phases: dict[int, PhaseDef],
        phase: PhaseDef,
        course: Course,
        progress: Progress,
    ) -> None:
        self.phase = phase
        self.phases = phases
        self.course = course
        self.progress = progress
        self.context: PhaseContext = load_context(workspace, phase, course, phases)
        self.plan = self.context.plan
        self.module = phase.module
        self.store = PhaseStore(course, phase.number, phase.output_file)
        self.header, self.bodies = self._load_merged()
        self._paused = False
        self._sync_progress()

    # --- state from disk ------------------------------------------------------------------

    def _load_merged(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The merged file's header and batch bodies 1..m, checked seed by seed against the plan."""
        doc = self.store.read_merged()
        if doc is None:
            return None, []
        where = shown(self.store.merged_path)
        report = Reporter(self.phase.rules, {}, None)
        if check_schema(self.phase.merged_schema, doc, report, limit=1):
            raise InputError(
                f"{where}: not a valid {self.phase.key} file: {report.issues[0].message}"
            )
        covered = self.module.merged_seed_ids(doc)
        merged = complete_batches(covered, self.plan, where)
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
        """A checker holding the state of merged batches 1..before-1."""
        checker = make_checker(self.context)
        limit = len(self.bodies) if before is None else min(before - 1, len(self.bodies))
        for batch, body in zip(self.plan.batches[:limit], self.bodies[:limit], strict=True):
            checker.absorb(body, batch)
        return checker

    # --- judging, staging, merging --------------------------------------------------------

    def judge(self, batch: Batch, answer: dict[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
        """Schema, then complete (ids, flags, derived fields), then the phase's rules."""
        report = Reporter(self.phase.rules, self.course.rules, batch.number)
        if check_schema(self.phase.batch_schema, answer, report, limit=MAX_PROGRESS_ERRORS * 2):
            return answer, report.issues
        checker = self._checker(batch.number)
        body: dict[str, Any] = self.module.complete(self.context, batch, answer, checker)
        checker.check(body, batch, report)
        return body, report.issues

    def is_ready(self, batch: Batch) -> str | None:
        """None when the phase's input covers batches 1..k, else why not."""
        if self.phase.input_file is None:
            return None
        doc = self.context.inputs.get(self.phase.input_file)
        need = self.plan.seed_ids[: self.plan.seed_ids.index(batch.last_seed) + 1]
        producer = self.phases.get(self.phase.requires or 0)
        covered = set(producer.module.merged_seed_ids(doc)) if producer and doc else set()
        if doc is None or not set(need) <= covered:
            step = f"run phase{producer.number} first" if producer else "add it first"
            return (
                f"{self.phase.key} batch {batch.number} needs {self.phase.input_file} through "
                f"{batch.last_seed}; {step}"
            )
        return None

    def merge_ready(self) -> None:
        """Merge staged answers m+1, m+2, ... in order, judged again against the full state."""
        while True:
            number = len(self.bodies) + 1
            if number > len(self.plan) or number not in self.store.staged_batches():
                return
            batch = self.plan.batch(number)
            staged = self.store.read_staged(number)
            body, issues = self.judge(batch, staged) if staged is not None else ({}, [])
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
            self.store.write_merged(doc)
            self.bodies.append(body)
            self.header = {k: v for k, v in doc.items() if k != self.module.BODY_KEY}
            self.store.drop_staged(number)
            self.progress.batch_finished(
                self.phase.number, number, "merged", produced=self.module.describe(body)
            )

    # --- the batch loop -------------------------------------------------------------------

    def run(self, provider: Provider, model: str, options: RunOptions) -> PhaseResult:
        result = PhaseResult(self.phase.number, len(self.plan))
        self._drop_stale_staging()
        self.merge_ready()
        wanted = options.batches or tuple(b.number for b in self.plan)
        runs: dict[int, int] = {}
        while True:
            todo = [
                n for n in wanted if n > len(self.bodies) and n not in self.store.staged_batches()
            ]
            if not todo:
                break
            batch = self.plan.batch(todo[0])
            runs[batch.number] = runs.get(batch.number, 0) + 1
            if runs[batch.number] > 2:  # staged twice, rejected at merge twice: give up
                result.failed.append(batch.number)
                break
            reason = self.is_ready(batch)
            if reason is not None:
                raise InputError(reason)
            outcome = self.run_batch(provider, model, batch, options)
            result.ran.append(batch.number)
            result.usage = result.usage + total_usage(outcome)
            result.cost_usd = round(result.cost_usd + cost_usd(total_usage(outcome), model), 6)
            if outcome.body is None:
                result.failed.append(batch.number)
                result.last_issues = list(outcome.last_issues)
                break
            self.merge_ready()
        result.merged = len(self.bodies)
        return result

    def _drop_stale_staging(self) -> None:
        for number in self.store.staged_batches():
            if number <= len(self.bodies):  # merged before a crash removed the staged copy
                self.store.drop_staged(number)

    def run_batch(
        self, provider: Provider, model: str, batch: Batch, options: RunOptions
    ) -> BatchOutcome:
        number = self.phase.number
        earlier = self.bodies[: batch.number - 1]
        batch_input = self.module.batch_input(self.context, batch, earlier)

        def build(attempt: int, retry: Retry | None) -> Request:
            return build_request(
                self.phase,
                self.course,
                model,
                batch,
                len(self.plan),
                batch_input,
                attempt,
                options.max_attempts,
                retry,
            )

        def record(request: Request, attempt: AttemptRecord, timings: dict[str, Any]) -> None:
            self._record(provider, request, attempt, timings, model)

        self.progress.batch_started(number, batch.number)
        outcome = run_attempts(
            provider,
            build,
            lambda answer: self.judge(batch, answer),
            batch.number,
            options.max_attempts,
            options.retry,
            record,
            self._on_transient,
            self._on_resume,
        )
        if outcome.body is None:
            self.progress.batch_finished(
                number, batch.number, "failed", errors=len(outcome.last_issues)
            )
            return outcome
        self.store.stage(batch.number, batch.seed_ids, outcome.body)
        self.progress.batch_finished(number, batch.number, "staged")
        return outcome

    def _record(
        self,
        provider: Provider,
        request: Request,
        attempt: AttemptRecord,
        timings: dict[str, Any],
        model: str,
    ) -> None:
        """Write the attempt's transcript and update progress (tokens, cost, errors)."""
        answer = attempt.answer
        usage = answer.usage if answer is not None else Usage()
        cost = cost_usd(usage, model)
        issues = [i.to_dict() for i in attempt.issues]
        self.store.write_transcript(
            request.meta.batch,
            attempt.attempt,
            {
                "schema_version": TRANSCRIPT_VERSION,
                "course": self.course.code,
                "phase": self.phase.number,
                "batch": request.meta.batch,
                "attempt": attempt.attempt,
                "provider": provider.name,
                "model": model,
                "prefix_sha256": request.prefix_sha256,
                "request": request.to_dict(),
                "answer": answer.to_dict() if answer else None,
                "transport_retries": attempt.transport_retries,
                "cost_usd": cost,
                **timings,
                "validation": {"valid": attempt.is_valid, "issues": issues},
            },
        )
        errors = sorted(issues, key=lambda i: i["severity"] != ERROR)[:MAX_PROGRESS_ERRORS]
        blocking = [i for i in errors if i["severity"] == ERROR]
        self.progress.attempt_done(
            self.phase.number, request.meta.batch, attempt.attempt, usage, cost, blocking
        )

    def _on_transient(self, exc: TransientError, sleep: float) -> None:
        if exc.status in (429, 529):
            self.progress.pause(self.phase.number, exc.status, sleep)
            self._paused = True

    def _on_resume(self) -> None:
        if self._paused:
            self._paused = False
            self.progress.resume(self.phase.number)


def failed_message(result: RunResult) -> str:
    failed = next(p for p in result.phases if p.failed)
    first = next((i for i in failed.last_issues if i.severity == ERROR), None)
    detail = f": {first.message}" if first else ""
    return (
        f"{result.course}: phase {failed.phase} batch {failed.failed[0]} failed after its "
        f"attempts{detail} (transcripts in .freshbatch/transcripts/; run again to retry)"
    )


def raise_if_failed(result: RunResult) -> None:
    if not result.ok:
        raise ValidationFailed(failed_message(result))


def prompt_request(
    workspace: Workspace,
    phase_name: str,
    course_code: str,
    batch_number: int,
    model: str | None = None,
    attempt: int = 1,
) -> Request:
    """The exact first-attempt request batch K would send now (reads files, writes nothing)."""
    phases = load_phases(workspace)
    phase = resolve_phase(phases, phase_name, workspace)
    course = workspace.load_course(course_code)
    plan = course.plan()
    if not 1 <= batch_number <= len(plan):
        raise InputError(f"--batch {batch_number}: {course.code} has batches 1..{len(plan)}")
    progress = ReadOnlyProgress(course.state_dir, course.code, plan, [phase.number])
    phase_run = PhaseRun(workspace, phases, phase, course, progress)
    batch = plan.batch(batch_number)
    reason = phase_run.is_ready(batch)
    if reason is not None:
        raise InputError(reason)
    batch_input = phase.module.batch_input(
        phase_run.context, batch, phase_run.bodies[: batch_number - 1]
    )
    return build_request(
        phase,
        course,
        model or course.model or DEFAULT_MODEL,
        batch,
        len(plan),
        batch_input,
        attempt,
        RunOptions().max_attempts,
    )


def dry_run(
    workspace: Workspace, phase_name: str, course_code: str, options: RunOptions
) -> list[str]:
    """What `run` would do now, one line per batch; calls no provider and writes nothing."""
    phases = load_phases(workspace)
    course = workspace.load_course(course_code)
    plan = course.plan()
    lines = []
    for number in phase_numbers(phases, phase_name, workspace):
        phase = phases[number]
        progress = ReadOnlyProgress(course.state_dir, course.code, plan, [number])
        phase_run = PhaseRun(workspace, phases, phase, course, progress)
        staged = set(phase_run.store.staged_batches())
        for batch in plan:
            if options.batches and batch.number not in options.batches:
                continue
            state = (
                "merged"
                if batch.number <= len(phase_run.bodies)
                else "staged"
                if batch.number in staged
                else phase_run.is_ready(batch) or "would run"
            )
            lines.append(
                f"{phase.key} batch {batch.number}/{len(plan)} "
                f"{batch.first_seed}-{batch.last_seed}: {state}"
            )
    return lines
