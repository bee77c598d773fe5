"""Disk state of a course run: lock, batch plan record, staging, in-order merge, transcripts.

The merged file always equals the phase header plus batches 1..m, written atomically
(temporary file, fsync, rename). A valid batch is first staged; it is merged only when all
earlier batches are. A crash at any instant therefore loses at most attempts in flight.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from freshbatch.batching import BatchPlan
from freshbatch.errors import InputError, LockedError
from freshbatch.files import read_json, shown, write_atomic, write_json_atomic
from freshbatch.workspace import Course


@contextmanager
def course_lock(course: Course) -> Iterator[None]:
    """Hold the course's run lock; a second run stops at once, touching nothing."""
    course.state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(course.state_dir / "run.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise LockedError(
            f"{shown(course.state_dir / 'run.lock')}: another freshbatch run is working on "
            f"{course.code}; wait for it to finish or stop it first"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _plan_record(plan: BatchPlan) -> dict[str, Any]:
    return {
        "batch_size": plan.batch_size,
        "first_seed": plan.seed_ids[0],
        "last_seed": plan.seed_ids[-1],
        "seeds": len(plan.seed_ids),
    }


def record_plan(course: Course, plan: BatchPlan) -> None:
    """Remember the batch plan the merged files follow (checked by check_plan_record)."""
    path = course.state_dir / "plan.json"
    if not path.is_file() or read_json(path) != _plan_record(plan):
        write_json_atomic(path, _plan_record(plan))


def check_plan_record(course: Course, plan: BatchPlan, has_merged: bool) -> None:
    """Refuse a changed batch_size or seed_range once batches were merged."""
    path = course.state_dir / "plan.json"
    record = _plan_record(plan)
    if path.is_file() and has_merged:
        old = read_json(path)
        if old.get("batch_size") != record["batch_size"]:
            raise InputError(
                f"{shown(course.config_path)}: batch_size is {plan.batch_size} but batches were "
                f"merged with {old.get('batch_size')}; set it back to {old.get('batch_size')}"
            )
        if (old.get("first_seed"), old.get("last_seed")) != (
            record["first_seed"],
            record["last_seed"],
        ):
            raise InputError(
                f"{shown(course.config_path)}: the seeds are now {record['first_seed']}-"
                f"{record['last_seed']} but batches were merged for {old.get('first_seed')}-"
                f"{old.get('last_seed')}; restore seed_range or start a new course folder"
            )


def complete_batches(covered: Sequence[str], plan: BatchPlan, where: str) -> int:
    """How many leading batches the covered seeds hold; refuse a partial or stray batch."""
    covered_set = set(covered)
    merged = 0
    for batch in plan:
        if not set(batch.seed_ids) <= covered_set:
            break
        merged += 1
    expected = set(plan.seed_ids[: sum(len(b.seed_ids) for b in plan.batches[:merged])])
    extra = sorted(covered_set - expected)
    if extra:
        number = plan.batch_of(extra[0])
        what = f"batch {number}" if number else "no batch of this course"
        raise InputError(
            f"{where}: holds {extra[0]} ({what}) but not all of the batches before it and "
            f"that batch; merged files must hold whole batches 1..m (batch size "
            f"{plan.batch_size}); remove the partial batch or restore it"
        )
    return merged


@dataclass
class PhaseStore:
    """Files of one phase of one course: merged output, staged batches, transcripts."""

    course: Course
    phase: int
    output_file: str
    _staged_cache: set[int] | None = field(default=None, repr=False, compare=False)

    @property
    def merged_path(self) -> Path:
        return self.course.output_path(self.output_file)

    @property
    def staging_dir(self) -> Path:
        return self.course.state_dir / "staging" / f"phase{self.phase}"

    @property
    def transcript_dir(self) -> Path:
        return self.course.state_dir / "transcripts" / f"phase{self.phase}"

    def staged_path(self, batch: int) -> Path:
        return self.staging_dir / f"batch_{batch:03d}.json"

    def transcript_path(self, batch: int, attempt: int) -> Path:
        return self.transcript_dir / f"batch_{batch:03d}_attempt_{attempt}.json"

    def read_merged(self) -> dict[str, Any] | None:
        if not self.merged_path.is_file():
            return None
        doc = read_json(self.merged_path)
        if not isinstance(doc, dict):
            raise InputError(f"{shown(self.merged_path)}: expected a JSON object")
        return doc

    def write_merged(self, text: str) -> None:
        write_atomic(self.merged_path, text)

    def stage(self, batch: int, seed_ids: tuple[str, ...], body: dict[str, Any]) -> None:
        write_json_atomic(
            self.staged_path(batch), {"batch": batch, "seed_ids": list(seed_ids), "body": body}
        )
        self._staged().add(batch)

    def staged_batches(self) -> list[int]:
        return sorted(self._staged())

    def is_staged(self, batch: int) -> bool:
        return batch in self._staged()

    def _staged(self) -> set[int]:
        """The staged batch numbers: read from disk once, then kept up to date here."""
        if self._staged_cache is None:
            numbers: set[int] = set()
            if self.staging_dir.is_dir():
                for path in self.staging_dir.glob("batch_*.json"):
                    stem = path.stem.removeprefix("batch_")
                    if stem.isdigit():
                        numbers.add(int(stem))
            self._staged_cache = numbers
        return self._staged_cache

    def read_staged(self, batch: int) -> dict[str, Any] | None:
        """A staged body, or None if it is missing or unreadable (a crash can leave either)."""
        try:
            data = json.loads(self.staged_path(batch).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        body = data.get("body") if isinstance(data, dict) else None
        return body if isinstance(body, dict) else None

    def drop_staged(self, batch: int) -> None:
        self.staged_path(batch).unlink(missing_ok=True)
        self._staged().discard(batch)

    def remove_temporary_files(self) -> None:
        """Drop temporary files a killed run left behind (the real files are intact)."""
        for folder, prefix in (
            (self.merged_path.parent, f".{self.output_file}."),
            (self.staging_dir, ".batch_"),
        ):
            if folder.is_dir():
                for path in folder.glob(f"{prefix}*.tmp"):
                    path.unlink(missing_ok=True)

    def write_transcript(self, batch: int, attempt: int, transcript: dict[str, Any]) -> None:
        write_json_atomic(self.transcript_path(batch, attempt), transcript, durable=False)
