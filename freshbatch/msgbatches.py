"""`run --via batches`: each round is one Message Batch holding every batch still to do.

Custom ids are deterministic (`p3-b007-a2`: phase, batch, attempt). The Message Batch id is
saved (.freshbatch/msgbatches/phaseN.json) before any polling, so a resumed run polls the
same Message Batch instead of paying twice. Results are judged as usual; the failures go
into the next round with their feedback, for at most max_attempts rounds. Requests carry a
1-hour cache TTL: a Message Batch may take longer than the 5-minute default. Phases run
one after another in this mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from freshbatch.attempts import AttemptRecord, judge_answer, with_retries
from freshbatch.batching import Batch
from freshbatch.clock import now_iso
from freshbatch.errors import InputError
from freshbatch.files import read_json, write_json_atomic
from freshbatch.gate import RateGate
from freshbatch.issues import ERROR, Issue
from freshbatch.phase_run import AttemptOptions, PhaseRun
from freshbatch.prompts import Retry
from freshbatch.providers import Answer, Provider, Request
from freshbatch.scheduler import PhaseResult

ONE_HOUR = "1h"


class BatchProvider(Protocol):
    name: str

    def submit_batch(self, requests: list[tuple[str, Request]]) -> str: ...
    def batch_status(self, batch_id: str) -> str: ...
    def batch_results(self, batch_id: str) -> dict[str, Answer | str]: ...


def custom_id(phase: int, batch: int, attempt: int) -> str:
    return f"p{phase}-b{batch:03d}-a{attempt}"


@dataclass
class MessageBatchRun:
    """Runs one phase round by round through Message Batches."""

    phase_run: PhaseRun
    provider: Provider
    model: str
    options: AttemptOptions
    gate: RateGate
    poll_seconds: float = 30.0
    wanted: tuple[int, ...] | None = None
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not getattr(self.provider, "supports_batches", False):
            raise InputError(
                f"--via batches needs the anthropic provider, not {self.provider.name}"
            )
        self.options = AttemptOptions(self.options.max_attempts, self.options.retry, ONE_HOUR)
        number = self.phase_run.phase.number
        self.state_path = self.phase_run.course.state_dir / "msgbatches" / f"phase{number}.json"
        self.result = PhaseResult(number, len(self.phase_run.plan))

    @property
    def batch_provider(self) -> BatchProvider:
        return self.provider  # type: ignore[return-value]

    def run(self) -> PhaseResult:
        self.phase_run.start()
        state = self._load_state()
        while True:
            current = state["rounds"][-1] if state["rounds"] else None
            if current is None or current["status"] == "processed":
                current = self._submit_round(state)
                if current is None:
                    break
            self._wait_until_ended(current["batch_id"])
            self._process(current)
            current["status"] = "processed"
            write_json_atomic(self.state_path, state)
            self.phase_run.merge_ready()
            if self.result.failed:
                break
        self.state_path.unlink(missing_ok=True)  # the next run starts afresh
        self.result.merged = len(self.phase_run.bodies)
        return self.result

    def _load_state(self) -> dict[str, Any]:
        if self.state_path.is_file():
            state = read_json(self.state_path)
            if isinstance(state, dict) and isinstance(state.get("rounds"), list):
                return state
        return {"rounds": []}

    def _todo(self) -> list[Batch]:
        phase_run = self.phase_run
        staged = set(phase_run.store.staged_batches())
        return [
            batch
            for batch in phase_run.plan
            if batch.number > len(phase_run.bodies)
            and batch.number not in staged
            and (not self.wanted or batch.number in self.wanted)
            and phase_run.is_ready(batch) is None
        ]

    def _submit_round(self, state: dict[str, Any]) -> dict[str, Any] | None:
        """Build and submit the next round; its id is saved before anything else happens."""
        done: dict[int, dict[str, Any]] = {}  # batch -> its latest item in this run
        for round_ in state["rounds"]:
            for item in round_["items"].values():
                done[item["batch"]] = item
        requests: list[tuple[str, Request]] = []
        items: dict[str, dict[str, Any]] = {}
        for batch in self._todo():
            attempt = done[batch.number]["attempt"] + 1 if batch.number in done else 1
            if attempt > self.options.max_attempts:
                self.result.failed.append(batch.number)
                continue
            request = self._request(batch, attempt)
            cid = custom_id(self.phase_run.phase.number, batch.number, attempt)
            requests.append((cid, request))
            items[cid] = {"batch": batch.number, "attempt": attempt}
        if not requests or self.result.failed:
            return None
        batch_id, _ = with_retries(
            lambda: self.batch_provider.submit_batch(requests), "anthropic", self.options.retry,
            self.gate,
        )  # fmt: skip
        round_ = {"round": len(state["rounds"]) + 1, "batch_id": batch_id, "items": items,
                  "status": "submitted", "submitted_at": now_iso()}  # fmt: skip
        state["rounds"].append(round_)
        write_json_atomic(self.state_path, state)
        for item in items.values():
            self.phase_run.progress.batch_started(self.phase_run.phase.number, item["batch"])
        return round_

    def _request(self, batch: Batch, attempt: int) -> Request:
        """The request of one attempt; a retry resends attempt 1's first user turn as it was
        and carries the previous attempt's answer and issues, all from the transcripts."""
        retry = self._retry_from_transcript(batch.number, attempt - 1) if attempt > 1 else None
        first = self._first_message(batch.number) if attempt > 1 else None
        batch_input = {} if first else self.phase_run.batch_input(batch)
        model = self.options.model_for(attempt, self.model)
        return self.phase_run.request(
            model, batch, batch_input, attempt, self.options, retry, first_message=first
        )

    def _first_message(self, batch: int) -> str | None:
        path = self.phase_run.store.find_transcript(batch, 1)
        if path is None:
            return None
        messages = read_json(path).get("request", {}).get("messages", [])
        return str(messages[0]["content"]) if messages else None

    def _retry_from_transcript(self, batch: int, attempt: int) -> Retry | None:
        path = self.phase_run.store.find_transcript(batch, attempt)
        if path is None:
            return None
        transcript = read_json(path)
        answer = (transcript.get("answer") or {}).get("text", "")
        issues = tuple(
            Issue(
                i["severity"],
                i["rule"],
                i["message"],
                i.get("batch"),
                i.get("seed_id"),
                i.get("lego_id"),
            )  # fmt: skip
            for i in transcript.get("validation", {}).get("issues", [])
        )
        return Retry(answer, issues)

    def _wait_until_ended(self, batch_id: str) -> None:
        while True:
            status, _ = with_retries(
                lambda: self.batch_provider.batch_status(batch_id), "anthropic",
                self.options.retry, self.gate,
            )  # fmt: skip
            if status == "ended":
                return
            self.sleep(self.poll_seconds)

    def _process(self, round_: dict[str, Any]) -> None:
        """Judge every result of an ended round; stage the valid ones."""
        results, _ = with_retries(
            lambda: self.batch_provider.batch_results(round_["batch_id"]), "anthropic",
            self.options.retry, self.gate,
        )  # fmt: skip
        phase_run = self.phase_run
        for cid, item in sorted(round_["items"].items()):
            batch = phase_run.plan.batch(item["batch"])
            request = self._request(batch, item["attempt"])
            found = results.get(cid, "missing from the results")
            if isinstance(found, Answer):
                body, issues = judge_answer(found, batch.number, partial(phase_run.judge, batch))
                record = AttemptRecord(item["attempt"], found, tuple(issues), 0)
            else:
                body = None
                issues = [Issue(ERROR, "answer-missing", f"the request {found}", batch.number)]
                record = AttemptRecord(item["attempt"], None, tuple(issues), 0)
            phase_run.record(self.provider.name, request, record, {"finished_at": now_iso()},
                             request.model, batch=True,
                             escalated=request.model != self.model)  # fmt: skip
            self.result.ran.append(batch.number)
            if record.is_valid and body is not None:
                phase_run.finish(batch, body, issues)
            elif item["attempt"] >= self.options.max_attempts:
                phase_run.finish(batch, None, issues)
                self.result.failed.append(batch.number)
                self.result.last_issues = list(issues)
