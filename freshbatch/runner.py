"""Run (or resume) phases of a course: the library entry points behind `freshbatch run`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from freshbatch.attempts import RetryPolicy
from freshbatch.batching import BatchPlan
from freshbatch.errors import InputError, ValidationFailed, WriteError
from freshbatch.files import file_exists
from freshbatch.gate import RateGate
from freshbatch.hooks import Hook, HookRunner
from freshbatch.issues import ERROR
from freshbatch.msgbatches import MessageBatchRun
from freshbatch.pacing import Pacer
from freshbatch.phase_run import AttemptOptions, PhaseRun
from freshbatch.phases import PhaseDef, load_phases, resolve_phase
from freshbatch.pricing import Pricing
from freshbatch.progress import Progress, ReadOnlyProgress
from freshbatch.prompts import build_request
from freshbatch.providers import (
    PROVIDER_NAMES,
    Provider,
    ProviderConfig,
    Request,
    make_provider,
    prepare_provider,
)
from freshbatch.scheduler import PhaseResult, Scheduler, propagate
from freshbatch.status import merged_batch_count
from freshbatch.store import (
    PhaseStore,
    check_plan_record,
    check_state_writable,
    course_lock,
    new_run_id,
    record_plan,
)
from freshbatch.thinking import request_params
from freshbatch.workspace import DEFAULT_MODEL, Course, Escalation, Settings, Workspace

__all__ = ["PhaseResult", "RunOptions", "RunResult", "run", "dry_run", "prompt_request"]


@dataclass(frozen=True)
class RunOptions:
    """How to run: provider and model, which batches, attempts, retries, concurrency."""

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
    concurrency: int | None = None  # None: the workspace default (freshbatch.yaml), else 1
    max_consecutive_pauses: int | None = None  # None: freshbatch.yaml, else 10
    cache_ttl: str | None = None
    via: str = "messages"  # or "batches": Message Batches, round by round
    poll_seconds: float = 30.0
    on_failure: str = "stop"  # stop (finish in flight), fail-fast or keep-going
    hooks: tuple[Hook, ...] = ()  # beside freshbatch.yaml's and course.yaml's (--notify)
    escalate_model: str | None = None  # over course.yaml's and freshbatch.yaml's escalate:
    escalate_from: int | None = None  # None: the escalate: setting's from_attempt, else 3
    batch_timeout: float | None = None  # wall-clock seconds for all attempts of one batch


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
    """Run or resume one phase, or `all` phases pipelined batch by batch, under the lock."""
    phases = load_phases(workspace)
    numbers = phase_numbers(phases, phase_name, workspace)
    course = workspace.load_course(course_code)
    provider_name = choose_provider(options.provider)
    model = options.model or course.model or workspace.settings().model or DEFAULT_MODEL
    concurrency = options.concurrency or workspace.settings().concurrency
    result = RunResult(course.code, provider_name, model)
    plan = course.plan()
    if options.batches and max(options.batches) > len(plan):
        raise InputError(f"--batches: {course.code} has batches 1..{len(plan)}")
    check_state_writable(course, list(phases.values()))  # before the lock file is made
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
    provider_info = prepare_provider(provider)  # e.g. a CLI too old: exit 3, nothing written
    with course_lock(course):
        runs, progress = _prepare(workspace, phases, numbers, course, plan, options.batches)
        record_plan(course, plan)  # the first write: everything above only read and checked
        if listen is not None:
            listen(progress)
        settings = workspace.settings()
        hooks = HookRunner(settings.hooks + course.hooks + options.hooks, course.code,
                           str(course.folder), progress.event)  # fmt: skip
        progress.listen(hooks.on_event)
        pacer = Pacer(
            concurrency,
            settings.output_charge,
            on_change=progress.set_pacing,
            on_cap=lambda wanted, limit: progress.warn(
                0,
                f"the account's output limit is {limit} tokens per minute, below a phase's "
                f"max_tokens {wanted}: requests ask for at most {limit}",
            ),
        )
        gate = RateGate(
            options.max_consecutive_pauses or settings.max_consecutive_pauses,
            on_pause=lambda status, seconds: progress.pause(status, seconds),
            on_resume=progress.resume,
            pacer=pacer,
        )
        status = "idle"  # also after a provider error or Ctrl-C: resumable, no batch failed
        progress.start_run(
            {
                "id": runs[numbers[0]].store.run_id,
                "provider": provider_name,
                "model": model,
                "phases": numbers,
                "concurrency": concurrency,
                **provider_info,
            }  # fmt: skip
        )
        failing = True
        try:
            result.phases = _run_phases(runs, provider, model, progress, gate, options,
                                        concurrency, settings)  # fmt: skip
            failing = False
            if not result.ok:
                status = "failed"
            elif all(p.merged == p.total for p in result.phases):
                status = "completed"
        finally:
            _end(progress, status, failing)
            hooks.close()  # run:end's hooks (--notify) still run, then the lock goes
            close = getattr(provider, "close", None)
            if callable(close):
                close()
    return result


def _prepare(
    workspace: Workspace,
    phases: dict[int, PhaseDef],
    numbers: list[int],
    course: Course,
    plan: BatchPlan,
    wanted: tuple[int, ...] | None,
) -> tuple[dict[int, PhaseRun], Progress]:
    """Read and check everything the run needs before its first write (InputError if not):
    the state folders, the plan record, every phase's merged file, the phases' files."""
    has_merged = any(file_exists(course.output_path(p.output_file)) for p in phases.values())
    check_plan_record(course, plan, has_merged)  # first: its message names the real cause
    progress = Progress(course.state_dir, course.code, plan, sorted(phases))
    pricing = Pricing.with_overrides(workspace.settings().prices)
    run_id = new_run_id(course)
    runs = {
        n: PhaseRun(workspace, phases, phases[n], course, progress, pricing, run_id)
        for n in numbers
    }
    for number, phase in phases.items():
        if number not in runs:  # not run now: its counts still come from its files
            sync_from_files(progress, course, phase, plan)
    for phase_run in runs.values():
        _check_can_start(phase_run, numbers, wanted)
        phase_run.phase.intelligence(course)
        phase_run.phase.batch_schema  # noqa: B018 (loaded and checked now, not mid-run)
    return runs, progress


def _check_can_start(
    phase_run: PhaseRun, numbers: list[int], wanted: tuple[int, ...] | None
) -> None:
    """Refuse now, not after writing, a phase whose next batch waits for an input that no
    phase of this run will make (readiness only grows with the batch number)."""
    if phase_run.phase.requires in numbers:
        return  # pipelined: the input comes during the run
    store, merged = phase_run.store, len(phase_run.bodies)
    if store.is_staged(merged + 1):
        return  # a staged batch merges first
    for batch in phase_run.plan.batches[merged:]:
        if (wanted and batch.number not in wanted) or store.is_staged(batch.number):
            continue
        reason = phase_run.is_ready(batch)
        if reason is not None:
            raise InputError(reason)
        return


def sync_from_files(progress: Progress, course: Course, phase: PhaseDef, plan: BatchPlan) -> None:
    """A phase's batch states from its merged file and staging folder."""
    merged = merged_batch_count(course, phase, plan)
    staged = set(PhaseStore(course, phase.number, phase.output_file).staged_batches())
    for batch in plan:
        status = (
            "merged"
            if batch.number <= merged
            else "staged"
            if batch.number in staged
            else "pending"
        )
        progress.set_batch_status(phase.number, batch.number, status)


def choose_escalation(options: RunOptions, course: Course, settings: Settings) -> Escalation | None:
    """--escalate-model, else course.yaml's escalate:, else freshbatch.yaml's (or none)."""
    chosen = course.escalate or settings.escalate
    if options.escalate_model is not None:
        chosen = Escalation(options.escalate_model, chosen.from_attempt if chosen else 3)
    if options.escalate_from is not None:
        if chosen is None:
            raise InputError(
                "--escalate-from needs a model to escalate to: pass --escalate-model M or set "
                "escalate: {model: M} in course.yaml or freshbatch.yaml"
            )
        chosen = Escalation(chosen.model, options.escalate_from)
    return chosen


def _end(progress: Progress, status: str, failing: bool) -> None:
    """progress.json's last word; a write failure there must not hide the run's own error."""
    try:
        progress.end_run(status)
    except WriteError:
        if not failing:
            raise


def _run_phases(
    runs: dict[int, PhaseRun], provider: Provider, model: str, progress: Progress,
    gate: RateGate, options: RunOptions, concurrency: int, settings: Settings,
) -> list[PhaseResult]:  # fmt: skip
    course = next(iter(runs.values())).course
    attempt_options = AttemptOptions(
        options.max_attempts, options.retry, options.cache_ttl,
        thinking=course.thinking or settings.thinking, effort=course.effort or settings.effort,
        escalate=choose_escalation(options, course, settings),
        batch_timeout=options.batch_timeout,
    )  # fmt: skip
    if options.via == "batches":
        return _run_message_batches(runs, provider, model, attempt_options, gate, options)
    scheduler = Scheduler(
        runs, provider, model, attempt_options, progress, gate, concurrency, options.batches,
        options.on_failure,
    )  # fmt: skip
    return scheduler.run()


def _run_message_batches(
    runs: dict[int, PhaseRun], provider: Provider, model: str, options: AttemptOptions,
    gate: RateGate, run_options: RunOptions,
) -> list[PhaseResult]:  # fmt: skip
    """Phases one after another, each round by round through Message Batches."""
    results: list[PhaseResult] = []
    for phase_run in runs.values():
        if results and (results[-1].failed or results[-1].merged < results[-1].total):
            phase_run.start()  # an earlier phase is not complete: this one waits
            results.append(PhaseResult(phase_run.phase.number, len(phase_run.plan),
                                       merged=len(phase_run.bodies)))  # fmt: skip
            continue
        for upstream in runs.values():
            propagate(upstream, [phase_run])
        run = MessageBatchRun(phase_run, provider, model, options, gate,
                              run_options.poll_seconds, run_options.batches)  # fmt: skip
        results.append(run.run())
    return results


def failed_message(result: RunResult) -> str:
    failed = next(p for p in result.phases if p.failed)
    first = next((i for i in failed.last_issues if i.severity == ERROR), None)
    detail = f": {first.message}" if first else ""
    return (
        f"{result.course}: phase {failed.phase} batch {failed.failed[0]} failed after its "
        f"attempts{detail} (transcripts in .freshbatch/transcripts/<run_id>/; run again to retry)"
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
    earlier = phase_run.bodies[: batch_number - 1]
    batch_input = phase.module.batch_input(phase_run.context, batch, earlier)
    chosen = model or course.model or workspace.settings().model or DEFAULT_MODEL
    settings = workspace.settings()
    params, _ = request_params(
        chosen,
        phase.thinking or course.thinking or settings.thinking,
        phase.effort or course.effort or settings.effort,
    )
    return build_request(
        phase, course, chosen, batch, len(plan), batch_input, attempt, RunOptions().max_attempts,
        params=params,
    )  # fmt: skip


def dry_run(
    workspace: Workspace, phase_name: str, course_code: str, options: RunOptions
) -> list[str]:
    """What `run` would do now, one line per batch; calls no provider and writes nothing."""
    phases = load_phases(workspace)
    course = workspace.load_course(course_code)
    plan = course.plan()
    lines = []
    numbers = phase_numbers(phases, phase_name, workspace)
    for number in numbers:
        phase = phases[number]
        progress = ReadOnlyProgress(course.state_dir, course.code, plan, [number])
        phase_run = PhaseRun(workspace, phases, phase, course, progress)
        staged = set(phase_run.store.staged_batches())
        for batch in plan:
            if options.batches and batch.number not in options.batches:
                continue
            if batch.number <= len(phase_run.bodies):
                state = "merged"
            elif batch.number in staged:
                state = "staged"
            elif phase_run.is_ready(batch) is None:
                state = "would run"
            elif phase.requires in numbers:
                state = f"would run once phase{phase.requires} batches 1-{batch.number} are merged"
            else:
                state = phase_run.is_ready(batch) or ""
            lines.append(
                f"{phase.key} batch {batch.number}/{len(plan)} "
                f"{batch.first_seed}-{batch.last_seed}: {state}"
            )
    return lines
