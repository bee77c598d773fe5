"""Validate a phase's merged file (or one batch of it) with the phase's schema and rules."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freshbatch.errors import InputError
from freshbatch.files import file_exists, read_json, shown
from freshbatch.issues import ERROR, Issue, Reporter, RuleInfo
from freshbatch.phases import PhaseDef, check_course_rules, load_phases, resolve_phase
from freshbatch.rules.base import Checker, PhaseContext
from freshbatch.schema import check_schema
from freshbatch.workspace import Course, Workspace

_SCHEMA_RULE = RuleInfo("schema", ERROR, "an input file matches its phase's merged schema")


@dataclass
class ValidationReport:
    """The result of `freshbatch validate`: `valid` is true exactly when no issue is an error."""

    phase: int
    course: str
    file: str
    issues: list[Issue]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not any(i.severity == ERROR for i in self.issues)

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "course": self.course,
            "file": self.file,
            "valid": self.valid,
            "stats": self.stats,
            "issues": [i.to_dict() for i in self.issues],
        }


def load_context(
    workspace: Workspace, phase: PhaseDef, course: Course, phases: dict[int, PhaseDef] | None = None
) -> PhaseContext:
    """The course's seeds, plan and the phase's input file (checked against its own schema)."""
    phases = load_phases(workspace) if phases is None else phases
    check_course_rules(course, phases)
    seeds = tuple(course.load_seeds())
    inputs: dict[str, Any] = {}
    if phase.input_file:
        path = course.output_path(phase.input_file)
        if file_exists(path):
            inputs[phase.input_file] = _read_input(path, phases)
    return PhaseContext(phase, course, seeds, course.plan(list(seeds)), inputs)


def _read_input(path: Path, phases: dict[int, PhaseDef]) -> Any:
    doc = read_json(path)
    for producer in phases.values():
        if producer.output_file == path.name:
            probe = Reporter({"schema": _SCHEMA_RULE}, {}, None)
            if check_schema(producer.merged_schema, doc, probe, limit=1):
                raise InputError(
                    f"{shown(path)}: not a valid {producer.key} file: {probe.issues[0].message}"
                )
    return doc


def make_checker(context: PhaseContext) -> Checker:
    checker_class = getattr(context.phase.module, "PhaseChecker", None)
    if checker_class is None:
        raise InputError(f"{context.phase.module_ref}: a phase module must define PhaseChecker")
    checker: Checker = checker_class(context)
    return checker


def validate_doc(
    context: PhaseContext, doc: Any, only_batch: int | None = None
) -> tuple[list[Issue], dict[str, Any]]:
    """Check a merged document batch by batch; batches before `only_batch` are absorbed only."""
    phase, course = context.phase, context.course
    top = Reporter(phase.rules, course.rules, None)
    if check_schema(phase.merged_schema, doc, top):
        return top.issues, {"rules_checked": False}
    checker = make_checker(context)
    bodies = checker.split(doc, top)
    last = max(bodies, default=0) if only_batch is None else only_batch
    issues = list(top.issues)
    for batch in context.plan.batches[:last]:
        body = bodies.get(batch.number, checker.empty())
        if only_batch is not None and batch.number < only_batch:
            checker.absorb(body, batch)
            continue
        report = Reporter(phase.rules, course.rules, batch.number)
        checker.check(body, batch, report)
        issues.extend(report.issues)
    stats = {
        "batches_checked": last if only_batch is None else 1,
        "batches_planned": len(context.plan),
        **checker.stats(),
    }
    return issues, stats


def validate_phase(
    workspace: Workspace,
    phase_name: str,
    course_code: str,
    file: Path | None = None,
    batch: int | None = None,
) -> ValidationReport:
    """Validate a phase's output for a course: the merged file, or `file` in its format."""
    phases = load_phases(workspace)
    phase = resolve_phase(phases, phase_name, workspace)
    course = workspace.load_course(course_code)
    context = load_context(workspace, phase, course, phases)
    if batch is not None and not 1 <= batch <= len(context.plan):
        raise InputError(f"--batch {batch}: {course.code} has batches 1..{len(context.plan)}")
    path = file if file is not None else course.output_path(phase.output_file)
    doc = read_json(path)
    issues, stats = validate_doc(context, doc, batch)
    counts = Counter(f"{i.severity}s" for i in issues)
    stats = {
        **stats,
        "errors": counts["errors"],
        "warnings": counts["warnings"],
        "by_rule": dict(sorted(Counter(i.rule for i in issues).items())),
    }
    return ValidationReport(phase.number, course.code, shown(path), issues, stats)
