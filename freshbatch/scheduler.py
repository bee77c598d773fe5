"""Runs the batches of one or more phases with N attempts in flight.

- Pipelining: a phase's batch k is ready once its input covers batches 1..k; when an
  upstream batch merges, later phases see it at once. Earlier phases go first.
- Warm-up: per phase, the first request runs alone until its response has started (the
  prompt cache is written by then); the others fan out after it and read the cache.
- Merges happen here, in the scheduling thread, strictly in batch order.
Workers are daemon threads, so Ctrl-C ends the run at once; in-flight attempts are lost,
merged and staged batches are kept.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from freshbatch.attempts import BatchOutcome, total_usage
from freshbatch.batching import Batch
from freshbatch.errors import InputError
from freshbatch.gate import RateGate
from freshbatch.issues import Issue
from freshbatch.phase_run import AttemptOptions, PhaseRun
from freshbatch.progress import Progress
from freshbatch.providers import Provider, Usage

CACHING_PROVIDERS = ("anthropic",)
MAX_RUNS_PER_BATCH = 2  # a staged answer rejected at merge time is generated once more


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
class _Done:
    phase: int
    batch: int
    outcome: BatchOutcome | None = None
    error: BaseException | None = None


class Scheduler:
    """Feeds ready batches to at most `concurrency` worker threads; merges in order."""

    def __init__(
        self,
        runs: dict[int, PhaseRun],
        provider: Provider,
        model: str,
        options: AttemptOptions,
        progress: Progress,
        gate: RateGate,
        concurrency: int = 1,
        wanted: tuple[int, ...] | None = None,
        on_failure: str = "stop",
    ) -> None:
        self.runs = runs
        self.provider = provider
        self.model = model
        self.options = options
        self.progress = progress
        self.gate = gate
        self.concurrency = max(1, concurrency)
        self.wanted = wanted
        self.results = {n: PhaseResult(n, len(r.plan)) for n, r in runs.items()}
        self._done: queue.Queue[_Done | tuple[str, int]] = queue.Queue()
        self._in_flight: set[tuple[int, int]] = set()
        self._warm: dict[int, bool] = dict.fromkeys(runs, False)
        self._warming: dict[int, int] = {}  # phase -> its warm-up batch, until checked
        self._runs_per_batch: dict[tuple[int, int], int] = {}
        self._stopping = False
        self.on_failure = on_failure  # stop (finish in flight) | fail-fast | keep-going
        self._abandon = False

    def run(self) -> list[PhaseResult]:
        for phase_run in self.runs.values():
            phase_run.start()
            self._propagate(phase_run)
        while True:
            if not self._stopping:
                self._submit_ready()
            if not self._in_flight or self._abandon:
                break  # fail-fast leaves the attempts in flight behind (daemon threads)
            self._handle(self._done.get())
        if not any(r.failed for r in self.results.values()):
            self._check_nothing_left()
        for number, phase_run in self.runs.items():
            self.results[number].merged = len(phase_run.bodies)
        return list(self.results.values())

    # --- choosing work ------------------------------------------------------------------

    def _candidates(self) -> list[tuple[int, Batch]]:
        """Batches not merged, staged, in flight or failed, earlier phases first."""
        found = []
        for number, phase_run in sorted(self.runs.items()):
            staged = set(phase_run.store.staged_batches())
            failed = set(self.results[number].failed)
            for batch in phase_run.plan:
                if self.wanted and batch.number not in self.wanted:
                    continue
                key = (number, batch.number)
                if (batch.number <= len(phase_run.bodies) or batch.number in staged
                        or key in self._in_flight or batch.number in failed):  # fmt: skip
                    continue
                found.append((number, batch))
        return found

    def _submit_ready(self) -> None:
        for number, batch in self._candidates():
            if len(self._in_flight) >= self.concurrency:
                return
            if not self._warm[number] and number in self._warming:
                continue  # this phase's first request has not started yet
            phase_run = self.runs[number]
            if phase_run.is_ready(batch) is not None:
                continue
            key = (number, batch.number)
            self._runs_per_batch[key] = self._runs_per_batch.get(key, 0) + 1
            if self._runs_per_batch[key] > MAX_RUNS_PER_BATCH:
                self.results[number].failed.append(batch.number)
                self._stopping = True
                return
            if not self._warm[number]:
                self._warming[number] = batch.number
            self._start(phase_run, batch)

    def _start(self, phase_run: PhaseRun, batch: Batch) -> None:
        number = phase_run.phase.number
        self._in_flight.add((number, batch.number))
        started = _Once(lambda: self._done.put(("started", number)))

        def work() -> None:
            try:
                outcome = phase_run.run_batch(
                    self.provider, self.model, batch, self.options, self.gate, started
                )
                self._done.put(_Done(number, batch.number, outcome=outcome))
            except BaseException as exc:  # reported to the scheduling thread
                self._done.put(_Done(number, batch.number, error=exc))

        threading.Thread(
            target=work, name=f"phase{number}-batch{batch.number}", daemon=True
        ).start()

    # --- results ------------------------------------------------------------------------

    def _handle(self, item: _Done | tuple[str, int]) -> None:
        if isinstance(item, tuple):
            self._warm[item[1]] = True
            return
        self._in_flight.discard((item.phase, item.batch))
        self._warm[item.phase] = True
        if item.error is not None:
            self._stopping = True
            reason = str(item.error) or type(item.error).__name__
            self.gate.abort(f"the run is stopping: {reason}")
            raise item.error
        assert item.outcome is not None
        self._account(item.phase, item.batch, item.outcome)
        if self._warming.get(item.phase) == item.batch and item.outcome.attempts:
            self._check_cache(item.phase, item.outcome)
        if item.outcome.body is None:
            self.results[item.phase].failed.append(item.batch)
            self.results[item.phase].last_issues = list(item.outcome.last_issues)
            self._on_failed()
            return
        phase_run = self.runs[item.phase]
        before = len(phase_run.bodies)
        phase_run.merge_ready()
        if len(phase_run.bodies) > before:
            self._propagate(phase_run)

    def _on_failed(self) -> None:
        """A batch used all its attempts: what happens next is the run's failure policy."""
        if self.on_failure == "keep-going":
            return  # later batches still run and stage; merging stops at the gap
        self._stopping = True
        if self.on_failure == "fail-fast":
            self._abandon = True
            self.gate.abort("the run is stopping: a batch failed (--fail-fast)")

    def _account(self, phase: int, batch: int, outcome: BatchOutcome) -> None:
        result = self.results[phase]
        usage = total_usage(outcome)
        result.ran.append(batch)
        result.usage = result.usage + usage
        pricing = self.runs[phase].pricing
        cost = pricing.cost(usage, self.model, cache_ttl=self.options.cache_ttl) or 0.0
        result.cost_usd = round(result.cost_usd + cost, 6)

    def _propagate(self, upstream: PhaseRun) -> None:
        propagate(upstream, self.runs.values())

    def _check_cache(self, phase: int, outcome: BatchOutcome) -> None:
        """After a phase's warm-up request: was the prefix cached, and can it be?"""
        del self._warming[phase]
        answer = outcome.attempts[0].answer
        if answer is None or self.provider.name not in CACHING_PROVIDERS:
            return
        usage = answer.usage
        prefix = self.runs[phase].prefix_tokens_estimate()
        minimum = self.runs[phase].pricing.min_cache_tokens(self.model)
        if minimum is not None and prefix < minimum:
            self.progress.warn(
                phase,
                f"phase {phase}: the cached prefix is about {prefix} tokens, shorter than the "
                f"{minimum} that {self.model} caches at least; nothing is cached and every "
                "batch pays for the instructions in full",
            )
        elif usage.cache_creation_input_tokens + usage.cache_read_input_tokens == 0:
            self.progress.warn(
                phase,
                f"phase {phase}: the first request wrote no prompt cache "
                "(cache_creation_input_tokens is 0); every batch pays for the instructions in full",
            )

    def _check_nothing_left(self) -> None:
        """Stop with a clear reason when batches remain that can never become ready."""
        if self._stopping:
            return
        for number, batch in self._candidates():
            reason = self.runs[number].is_ready(batch)
            if reason is not None:
                raise InputError(reason)


def propagate(upstream: PhaseRun, runs: Iterable[PhaseRun]) -> None:
    """Give later phases the newly merged file of `upstream` as their input."""
    if upstream.merged_doc is None:
        return
    for phase_run in runs:
        if phase_run.phase.input_file == upstream.phase.output_file:
            phase_run.context.inputs[upstream.phase.output_file] = upstream.merged_doc


class _Once:
    """A callable that calls `func` the first time only (thread-safe)."""

    def __init__(self, func: Callable[[], None]) -> None:
        self._func = func
        self._lock = threading.Lock()
        self._called = False

    def __call__(self) -> None:
        with self._lock:
            if self._called:
                return
            self._called = True
        self._func()
