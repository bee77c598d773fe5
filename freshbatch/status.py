"""A course's progress for `status` and the status page: progress.json, else the files."""

from __future__ import annotations

import os
from typing import Any

from freshbatch.batching import BatchPlan
from freshbatch.errors import InputError
from freshbatch.files import shown
from freshbatch.issues import Reporter
from freshbatch.phases import PhaseDef, load_phases
from freshbatch.progress import ReadOnlyProgress, read_progress
from freshbatch.schema import check_schema
from freshbatch.store import PhaseStore, complete_batches
from freshbatch.workspace import Course, Workspace


def course_status(workspace: Workspace, code: str) -> dict[str, Any]:
    """progress.json as the runner wrote it; built from the merged files if there is none."""
    course = workspace.load_course(code)
    progress = read_progress(course.state_dir)
    if progress is not None:
        if progress.get("status") == "running" and not _is_alive(progress.get("pid")):
            progress["status"] = "idle"
            progress["stale"] = True  # the run died without saying so (killed, crashed)
        return progress
    return _from_files(course, load_phases(workspace))


def _from_files(course: Course, phases: dict[int, PhaseDef]) -> dict[str, Any]:
    plan = course.plan()
    view = ReadOnlyProgress(course.state_dir, course.code, plan, sorted(phases))
    for number, phase in sorted(phases.items()):
        merged = merged_batch_count(course, phase, plan)
        for batch in plan.batches[:merged]:
            view.set_batch_status(number, batch.number, "merged")
    view.refresh()
    return view.state


def merged_batch_count(course: Course, phase: PhaseDef, plan: BatchPlan) -> int:
    """How many leading batches the phase's merged file holds (checked as read_checked does)."""
    return read_checked(course, phase, plan)[1]


def read_checked(
    course: Course, phase: PhaseDef, plan: BatchPlan
) -> tuple[dict[str, Any] | None, int]:
    """A phase's merged file and its batch count, or InputError naming the file and the
    first problem: unreadable, not JSON, not the merged schema, seeds repeated, out of
    order, foreign or in a partial batch. A file that is not there is (None, 0)."""
    store = PhaseStore(course, phase.number, phase.output_file)
    doc = store.read_merged()
    if doc is None:
        return None, 0
    where = shown(store.merged_path)
    report = Reporter(phase.rules, {}, None)
    if check_schema(phase.merged_schema, doc, report, limit=1):
        raise InputError(f"{where}: not a valid {phase.key} file: {report.issues[0].message}")
    covered = phase.module.merged_seed_ids(doc, plan.seed_ids)
    return doc, complete_batches(covered, plan, where)


def _is_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
