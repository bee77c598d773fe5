"""A course's run report: per phase, how the batches went, from progress.json, the
transcripts and the merged files (whichever exist), with the drift figures per batch."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from freshbatch.clock import now_iso
from freshbatch.drift import drift_figures
from freshbatch.issues import ERROR
from freshbatch.phases import PhaseDef, load_phases
from freshbatch.progress import read_progress
from freshbatch.providers import Usage
from freshbatch.status import read_checked
from freshbatch.workspace import Course, Workspace

TOP_RULES = 5
LAST_ERRORS = 3
_TOKENS = ("input", "output", "cache_read", "cache_write")


def course_report(workspace: Workspace, code: str) -> dict[str, Any]:
    """The report of every phase that has a merged file, transcripts or progress entries."""
    course = workspace.load_course(code)
    phases = load_phases(workspace)
    progress = read_progress(course.state_dir) or {}
    entries: dict[int, dict[int, dict[str, Any]]] = {}
    for entry in progress.get("batches", []):
        entries.setdefault(entry["phase"], {})[entry["batch"]] = entry
    reports = []
    for number, phase in sorted(phases.items()):
        report = phase_report(workspace, course, phase, entries.get(number, {}))
        if report is not None:
            reports.append(report)
    return {
        "course": course.code,
        "generated_at": now_iso(),
        "status": progress.get("status"),
        "run": progress.get("run"),
        "phases": reports,
    }


def course_drift(workspace: Workspace, code: str) -> dict[str, Any]:
    """The drift figures of every phase, for the status page's chart."""
    report = course_report(workspace, code)
    return {
        "course": report["course"],
        "phases": [{"phase": p["phase"], "key": p["key"], **p["drift"]} for p in report["phases"]],
    }


def phase_report(
    workspace: Workspace, course: Course, phase: PhaseDef, entries: dict[int, dict[str, Any]]
) -> dict[str, Any] | None:
    """One phase's figures, or None when nothing of it exists yet."""
    plan = course.plan()
    doc, merged = read_checked(course, phase, plan)
    transcripts = batch_transcripts(course.state_dir, phase.number)
    ran = [e for e in entries.values() if e.get("attempts") or e["status"] != "pending"]
    if doc is None and not transcripts and not ran:
        return None
    status = {b.number: entries.get(b.number, {}).get("status", "pending") for b in plan}
    for batch in plan.batches[:merged]:
        status[batch.number] = "merged"
    counts = Counter(status.values())
    partial = counts["staged"] + counts["running"]
    finished = merged + partial + counts["failed"]
    firsts = [t[0] for t in transcripts.values() if t and t[0].get("attempt") == 1]
    attempts = [len(t) for t in transcripts.values()]
    attempts_total = sum(e.get("attempts", 0) for e in entries.values()) or sum(attempts) or None
    return {
        "phase": phase.number,
        "key": phase.key,
        "batches": len(plan),
        "completed": merged,
        "partial": partial,
        "failed": counts["failed"],
        "pending": len(plan) - finished,
        "success_rate": _ratio(merged + partial, finished),
        "first_attempt_pass_rate": _ratio(sum(_is_valid(t) for t in firsts), len(firsts)),
        "attempts": attempts_total,
        "wall_seconds": _wall(transcripts, entries),
        **_spend(transcripts, entries),
        "failed_batches": _failed(plan, status, entries, transcripts),
        "retry_rules": _retry_rules(transcripts),
        "drift": drift_figures(workspace, course, phase, plan, doc, merged, transcripts),
    }


def batch_transcripts(state_dir: Path, phase: int) -> dict[int, list[dict[str, Any]]]:
    """Each batch's attempts (in order), all from the latest run that ran the batch."""
    root = state_dir / "transcripts"
    if not root.is_dir():
        return {}
    folders = [p / f"phase{phase}" for p in sorted(root.iterdir()) if p.is_dir()]
    found: dict[int, list[dict[str, Any]]] = {}
    for folder in [root / f"phase{phase}", *folders]:  # oldest first: later runs replace
        if not folder.is_dir():
            continue
        runs: dict[int, list[tuple[int, Path]]] = {}
        for path in folder.glob("batch_*_attempt_*.json"):
            parts = path.stem.split("_")
            if len(parts) == 4 and parts[1].isdigit() and parts[3].isdigit():
                runs.setdefault(int(parts[1]), []).append((int(parts[3]), path))
        for batch, paths in runs.items():
            attempts = [_read(path) for _, path in sorted(paths)]
            found[batch] = [a for a in attempts if a is not None]
    return dict(sorted(found.items()))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _is_valid(transcript: dict[str, Any]) -> bool:
    return bool((transcript.get("validation") or {}).get("valid"))


def issues_of(transcript: dict[str, Any]) -> list[dict[str, Any]]:
    issues = (transcript.get("validation") or {}).get("issues") or []
    return [i for i in issues if isinstance(i, dict)]


def _seconds(start: Any, end: Any) -> float | None:
    try:
        return (
            datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
        ).total_seconds()
    except ValueError:
        return None


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with `share` of them at or below it."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def _wall(
    transcripts: dict[int, list[dict[str, Any]]], entries: dict[int, dict[str, Any]]
) -> dict[str, float] | None:
    """Seconds per batch, first attempt's start to last attempt's end (else progress's)."""
    times = []
    for batch in set(transcripts) | set(entries):
        attempts = transcripts.get(batch) or []
        entry = entries.get(batch, {})
        seconds = (
            _seconds(attempts[0].get("started_at"), attempts[-1].get("finished_at"))
            if attempts
            else _seconds(entry.get("started_at"), entry.get("finished_at"))
            if entry.get("started_at") and entry.get("finished_at")
            else None
        )
        if seconds is not None:
            times.append(seconds)
    if not times:
        return None
    return {
        "median": round(statistics.median(times), 3),
        "p90": round(percentile(times, 0.9), 3),
        "batches": len(times),
    }


def _spend(
    transcripts: dict[int, list[dict[str, Any]]], entries: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """Tokens and cost, escalated attempts' cost apart: progress.json's (kept across runs),
    else the transcripts' sum."""
    tokens = dict.fromkeys(_TOKENS, 0)
    cost = escalation = 0.0
    if any(e.get("attempts") for e in entries.values()):
        for entry in entries.values():
            for name in _TOKENS:
                tokens[name] += (entry.get("tokens") or {}).get(name, 0)
            cost += entry.get("cost_usd") or 0.0
            escalation += entry.get("escalation_cost_usd") or 0.0
        return _spent(tokens, cost, escalation)
    if not transcripts:
        return {"tokens": None, "cost_usd": None, "escalation_cost_usd": None}
    for attempts in transcripts.values():
        for attempt in attempts:
            usage = Usage.from_dict((attempt.get("answer") or {}).get("usage"))
            tokens["input"] += usage.input_tokens
            tokens["output"] += usage.output_tokens
            tokens["cache_read"] += usage.cache_read_input_tokens
            tokens["cache_write"] += usage.cache_creation_input_tokens
            cost += attempt.get("cost_usd") or 0.0
            if attempt.get("escalated"):
                escalation += attempt.get("cost_usd") or 0.0
    return _spent(tokens, cost, escalation)


def _spent(tokens: dict[str, int], cost: float, escalation: float) -> dict[str, Any]:
    return {
        "tokens": tokens,
        "cost_usd": round(cost, 6),
        "escalation_cost_usd": round(escalation, 6),  # part of cost_usd
    }


def _failed(
    plan: Any,
    status: dict[int, str],
    entries: dict[int, dict[str, Any]],
    transcripts: dict[int, list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    failed = []
    for batch in plan:
        if status[batch.number] != "failed":
            continue
        entry = entries.get(batch.number, {})
        attempts = transcripts.get(batch.number) or []
        errors = entry.get("last_errors") or (
            [i for i in issues_of(attempts[-1]) if i.get("severity") == ERROR] if attempts else []
        )
        failed.append(
            {
                "batch": batch.number,
                "first_seed": batch.first_seed,
                "last_seed": batch.last_seed,
                "attempts": entry.get("attempts") or len(attempts),
                "last_errors": errors[:LAST_ERRORS],
            }
        )
    return failed


def _retry_rules(transcripts: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rules whose errors made attempts fail (so caused a retry, or the batch's failure)."""
    counts: Counter[str] = Counter()
    for attempts in transcripts.values():
        for attempt in attempts:
            if not _is_valid(attempt):
                counts.update({i["rule"] for i in issues_of(attempt) if i.get("severity") == ERROR})
    return [{"rule": r, "attempts": n} for r, n in counts.most_common(TOP_RULES)]
