"""Disk state of a course run: lock, batch plan record, staging, in-order merge, transcripts.

The merged file always equals the phase header plus batches 1..m, written atomically
(temporary file, fsync, rename). A valid batch is first staged; it is merged only when all
earlier batches are. A crash at any instant therefore loses at most attempts in flight.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from freshbatch.batching import BatchPlan
from freshbatch.errors import InputError, LockedError
from freshbatch.files import (
    check_writable_dir,
    file_exists,
    problem,
    read_json,
    shown,
    write_atomic,
    write_json_atomic,
)
from freshbatch.workspace import Course


@contextmanager
def course_lock(course: Course) -> Iterator[None]:
    """Hold the course's run lock; a second run stops at once, touching nothing.

    A run refused before it wrote anything (InputError) leaves no lock file or state folder
    it made itself behind.
    """
    made_dir = not os.path.lexists(course.state_dir)
    path = course.state_dir / "run.lock"
    made_lock = made_dir or not os.path.lexists(path)
    try:
        course.state_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path), timeout=0)
        lock.acquire()
    except Timeout:
        raise LockedError(
            f"{shown(path)}: another freshbatch run is working on "
            f"{course.code}; wait for it to finish or stop it first"
        ) from None
    except OSError as exc:
        _remove_made(course, made_dir, False)
        where = path if course.state_dir.is_dir() else course.state_dir
        raise InputError(f"{shown(where)}: cannot create the run lock: {problem(exc)}") from None
    try:
        yield
    except InputError:
        _remove_made(course, made_dir, made_lock)
        raise
    finally:
        lock.release()


def _remove_made(course: Course, made_dir: bool, made_lock: bool) -> None:
    if made_lock:
        (course.state_dir / "run.lock").unlink(missing_ok=True)
    if made_dir:
        try:
            course.state_dir.rmdir()  # only if the refused run left it empty
        except OSError:
            pass


def new_run_id(course: Course) -> str:
    """A name for this run's transcript folder: its UTC start time, unique in the course."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    runs = course.state_dir / "transcripts"
    name, suffix = stamp, 1
    while os.path.lexists(runs / name):
        suffix += 1
        name = f"{stamp}-{suffix}"
    return name


def check_state_writable(course: Course, phases: Sequence[Any]) -> None:
    """Refuse, before any write, state or output paths the run could not write."""
    state = course.state_dir
    check_writable_dir(course.folder)
    folders = [state, state / "transcripts", state / "msgbatches"]
    for phase in phases:
        folders += [state / "staging" / f"phase{phase.number}"]
    for folder in folders:
        check_writable_dir(folder)
    for name in ("progress.json", "events.jsonl", "plan.json", "run.lock"):
        if file_exists(state / name) and not os.access(state / name, os.W_OK):
            raise InputError(f"{shown(state / name)}: cannot write: permission denied")
    for phase in phases:
        file_exists(course.output_path(phase.output_file))


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
    if not file_exists(path) or read_json(path) != _plan_record(plan):
        write_json_atomic(path, _plan_record(plan))


def check_plan_record(course: Course, plan: BatchPlan, has_merged: bool) -> None:
    """Refuse a changed batch_size or seed_range once batches were merged."""
    path = course.state_dir / "plan.json"
    record = _plan_record(plan)
    if file_exists(path) and has_merged:
        old = read_json(path)
        if not isinstance(old, dict):
            raise InputError(f"{shown(path)}: expected a JSON object; delete it to rebuild it")
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
    """How many leading batches the covered seeds hold: each seed once, in course order,
    whole batches only; anything else is refused naming the first offending seed."""
    expected = plan.seed_ids
    seen: set[str] = set()
    for index, seed_id in enumerate(covered):
        if index < len(expected) and seed_id == expected[index]:
            seen.add(seed_id)
            continue
        if seed_id in seen:
            trouble = f"{seed_id} appears twice"
        elif plan.batch_of(seed_id) is None:
            trouble = f"{seed_id} is not a seed of this course (seeds {expected[0]}-{expected[-1]})"
        else:
            trouble = f"{seed_id} is out of course order ({expected[index]} comes first)"
        raise InputError(f"{where}: {trouble}; {_WHOLE}")
    ends = {0}
    total = 0
    for batch in plan:
        total += len(batch.seed_ids)
        ends.add(total)
    if len(covered) not in ends:
        number = plan.batch_of(covered[-1]) or 0
        first = plan.batch(number).first_seed
        missing = expected[len(covered)]
        raise InputError(
            f"{where}: batch {number} is partial: it holds {first}-{covered[-1]} but not "
            f"{missing} (batch size {plan.batch_size}); {_WHOLE}"
        )
    return sum(1 for end in ends if 0 < end <= len(covered))


_WHOLE = (
    "a merged file holds whole batches 1..m, each seed once, in course order; restore it "
    "from a backup or remove it ('freshbatch validate' lists every issue)"
)


@dataclass
class PhaseStore:
    """Files of one phase of one course: merged output, staged batches, transcripts."""

    course: Course
    phase: int
    output_file: str
    run_id: str | None = None  # transcripts go to transcripts/<run_id>/phaseN/
    _staged_cache: set[int] | None = field(default=None, repr=False, compare=False)

    @property
    def merged_path(self) -> Path:
        return self.course.output_path(self.output_file)

    @property
    def staging_dir(self) -> Path:
        return self.course.state_dir / "staging" / f"phase{self.phase}"

    @property
    def transcript_dir(self) -> Path:
        runs = self.course.state_dir / "transcripts"
        return (runs / self.run_id if self.run_id else runs) / f"phase{self.phase}"

    def staged_path(self, batch: int) -> Path:
        return self.staging_dir / f"batch_{batch:03d}.json"

    def transcript_path(self, batch: int, attempt: int) -> Path:
        return self.transcript_dir / f"batch_{batch:03d}_attempt_{attempt}.json"

    def find_transcript(self, batch: int, attempt: int) -> Path | None:
        """The transcript of one attempt: this run's, else the latest earlier run's."""
        name = f"batch_{batch:03d}_attempt_{attempt}.json"
        runs = self.course.state_dir / "transcripts"
        folders = [self.transcript_dir]
        if runs.is_dir():
            folders += [p / f"phase{self.phase}" for p in sorted(runs.iterdir(), reverse=True)]
        folders.append(runs / f"phase{self.phase}")  # the layout before per-run folders
        for folder in folders:
            if (folder / name).is_file():
                return folder / name
        return None

    def read_merged(self) -> dict[str, Any] | None:
        if not file_exists(self.merged_path):
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
