"""Drift made visible: per batch, figures a user can compare along the course.

From the transcripts, the first attempt's pass and its errors and warnings per seed by rule;
from the merged file (checked again with the phase's rules), its errors and warnings per seed
by rule and the output size per seed; and the attempts. The verdict compares the last third
of the batches with the first.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from freshbatch.batching import BatchPlan
from freshbatch.errors import InputError
from freshbatch.issues import ERROR, Issue, Reporter
from freshbatch.phases import PhaseDef
from freshbatch.validation import load_context, make_checker, validate_doc
from freshbatch.workspace import Course, Workspace

# (figure key, how the verdict names it): the figures compared first third to last third
VERDICT_FIGURES = (
    ("first_errors_per_seed", "first-attempt errors per seed"),
    ("merged_errors_per_seed", "merged errors per seed"),
    ("merged_warnings_per_seed", "merged warnings per seed"),
)


def drift_figures(
    workspace: Workspace,
    course: Course,
    phase: PhaseDef,
    plan: BatchPlan,
    doc: dict[str, Any] | None,
    merged: int,
    transcripts: dict[int, list[dict[str, Any]]],
) -> dict[str, Any]:
    """{"size_unit", "batches": [one row per batch], "verdict"} for one phase."""
    merged_issues, sizes, unit = _merged_figures(workspace, course, phase, doc, merged)
    rows = []
    for batch in plan:
        seeds = len(batch.seed_ids)
        attempts = transcripts.get(batch.number) or []
        first = attempts[0] if attempts and attempts[0].get("attempt") == 1 else None
        row: dict[str, Any] = {
            "batch": batch.number,
            "first_seed": batch.first_seed,
            "last_seed": batch.last_seed,
            "seeds": seeds,
            "attempts": len(attempts) or None,
            "first_attempt_valid": None,
            "merged": batch.number <= merged,
        }
        if first is not None:
            issues = [
                i
                for i in (first.get("validation") or {}).get("issues") or []
                if isinstance(i, dict)
            ]
            row["first_attempt_valid"] = bool((first.get("validation") or {}).get("valid"))
            row.update(_per_seed("first", issues, seeds))
        if batch.number <= merged and merged_issues is not None:
            issues = [i.to_dict() for i in merged_issues.get(batch.number, [])]
            row.update(_per_seed("merged", issues, seeds))
            row["size"] = sizes.get(batch.number)
        rows.append(row)
    return {"size_unit": unit, "batches": rows, "verdict": verdict(phase.key, rows, unit)}


def _per_seed(prefix: str, issues: list[dict[str, Any]], seeds: int) -> dict[str, Any]:
    errors = [i for i in issues if i.get("severity") == ERROR]
    warnings = [i for i in issues if i.get("severity") != ERROR]
    return {
        f"{prefix}_errors_per_seed": round(len(errors) / seeds, 4),
        f"{prefix}_warnings_per_seed": round(len(warnings) / seeds, 4),
        f"{prefix}_errors_by_rule": dict(
            sorted(Counter(str(i.get("rule")) for i in errors).items())
        ),
        f"{prefix}_warnings_by_rule": dict(
            sorted(Counter(str(i.get("rule")) for i in warnings).items())
        ),
    }


def _merged_figures(
    workspace: Workspace, course: Course, phase: PhaseDef, doc: dict[str, Any] | None, merged: int
) -> tuple[dict[int, list[Issue]] | None, dict[int, float], str | None]:
    """The merged file's issues by batch (its rules run again) and its size per batch."""
    if doc is None or not merged:
        return None, {}, None
    try:
        context = load_context(workspace, phase, course)
        issues, _ = validate_doc(context, doc)
    except InputError:
        return None, {}, None  # e.g. its input file is gone: no rules to run
    by_batch: dict[int, list[Issue]] = {}
    for issue in issues:
        if issue.batch is not None:
            by_batch.setdefault(issue.batch, []).append(issue)
    sizes: dict[int, float] = {}
    unit = None
    measure = getattr(phase.module, "measure", None)
    if callable(measure):
        checker = make_checker(context)
        bodies = checker.split(doc, Reporter(phase.rules, course.rules, None))
        for number, body in bodies.items():
            found = measure(body)
            if found is not None:
                unit, value = found
                sizes[number] = round(float(value), 3)
    return by_batch, sizes, unit


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def verdict(key: str, rows: list[dict[str, Any]], unit: str | None) -> str | None:
    """One line: each figure's mean over the first third of the batches that have it,
    then over the last third (e.g. "first-attempt errors per seed 0.40 → 1.10")."""
    parts = []
    figures = [*VERDICT_FIGURES, *((("size", unit),) if unit else ())]
    for figure, name in figures:
        having = [r for r in rows if r.get(figure) is not None]
        if len(having) < 3:
            continue
        third = len(having) // 3
        first, last = _mean(having[:third], figure), _mean(having[-third:], figure)
        if first is None or last is None:
            continue
        parts.append(f"{name} {first:.2f} → {last:.2f}{_trend(figure, first, last)}")
    if not parts:
        return None
    return f"{key}, first third vs last third of the batches: " + "; ".join(parts)


def _trend(figure: str, first: float, last: float) -> str:
    """A word for the error figures: drifting when the last third is clearly worse."""
    if figure == "size":
        return ""
    if last > first * 1.5 and last - first >= 0.1:
        return " (worse)"
    if first > last * 1.5 and first - last >= 0.1:
        return " (better)"
    return ""
