"""A phase is files on disk: intelligence/<file>.md and validators/phaseN/ (phase.yaml, schemas).

phase.yaml names the Python module that holds the phase's rules and its batch logic, so a new
phase needs new files, never a change to the runner.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from freshbatch.errors import InputError
from freshbatch.files import read_json, read_text, read_yaml, shown
from freshbatch.instructions import render
from freshbatch.issues import RuleInfo
from freshbatch.workspace import SEVERITIES, Course, Workspace

_PHASE_ARG = re.compile(r"(?:phase)?(\d+)")
_PHASE_KEYS = {
    "phase",
    "name",
    "intelligence",
    "input",
    "output",
    "requires",
    "module",
    "batch_schema",
    "merged_schema",
    "max_tokens",
    "rules",
    "data",
    "estimate",
}


@dataclass(frozen=True)
class PhaseDef:
    """One phase as its phase.yaml describes it."""

    number: int
    name: str
    folder: Path
    intelligence_path: Path
    input_file: str | None
    output_file: str
    requires: int | None
    module_ref: str
    batch_schema_path: Path
    merged_schema_path: Path
    max_tokens: int
    rules: dict[str, RuleInfo]
    data: dict[str, Any] = field(default_factory=dict)
    estimate: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"phase{self.number}"

    @cached_property
    def batch_schema(self) -> dict[str, Any]:
        return _load_schema(self.batch_schema_path)

    @cached_property
    def merged_schema(self) -> dict[str, Any]:
        return _load_schema(self.merged_schema_path)

    @cached_property
    def module(self) -> ModuleType:
        return _import_module(self.module_ref, self.folder)

    def intelligence(self, course: Course | None = None) -> str:
        """The instructions with their placeholders filled from this phase.yaml (and the
        course's severities and target language, when a course is given)."""
        return render(
            read_text(self.intelligence_path),
            shown(self.intelligence_path),
            self.rules,
            self.data,
            course.target if course else None,
            course.rules if course else None,
        )


def _load_schema(path: Path) -> dict[str, Any]:
    schema = read_json(path)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InputError(f"{shown(path)}: not a valid JSON Schema: {exc.message}") from exc
    if not isinstance(schema, dict):
        raise InputError(f"{shown(path)}: a schema must be a JSON object")
    return schema


def _import_module(ref: str, folder: Path) -> ModuleType:
    if ref.endswith(".py"):
        path = folder / ref
        spec = importlib.util.spec_from_file_location(f"freshbatch_phase_{folder.name}", path)
        if spec is None or spec.loader is None or not path.is_file():
            raise InputError(f"{shown(folder / 'phase.yaml')}: module file {ref} not found")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(ref)
    except ImportError as exc:
        raise InputError(
            f"{shown(folder / 'phase.yaml')}: cannot import module {ref}: {exc}"
        ) from exc


def load_phases(workspace: Workspace) -> dict[int, PhaseDef]:
    """Every phase defined under validators/, by number."""
    phases: dict[int, PhaseDef] = {}
    if not workspace.validators_dir.is_dir():
        return phases
    for config in sorted(workspace.validators_dir.glob("*/phase.yaml")):
        phase = parse_phase(workspace, config)
        if phase.number in phases:
            raise InputError(f"{shown(config)}: phase {phase.number} is defined twice")
        phases[phase.number] = phase
    return phases


def resolve_phase(phases: dict[int, PhaseDef], text: str, workspace: Workspace) -> PhaseDef:
    """The phase named by 'phase3' or '3'."""
    match = _PHASE_ARG.fullmatch(text.strip().lower())
    if match is None or int(match.group(1)) not in phases:
        names = ", ".join(f"phase{n}" for n in sorted(phases)) or "none"
        raise InputError(
            f"unknown phase '{text}' (phases in {shown(workspace.validators_dir)}: {names})"
        )
    return phases[int(match.group(1))]


def check_course_rules(course: Course, phases: dict[int, PhaseDef]) -> None:
    """Refuse a rules: entry in course.yaml that no phase declares (a typo would do nothing)."""
    declared = {name for phase in phases.values() for name in phase.rules}
    for name in course.rules:
        if name not in declared:
            raise InputError(
                f"{shown(course.config_path)}: rules.{name} is not a rule of any phase "
                "(see the rules table in README.md or 'freshbatch rules')"
            )


def parse_phase(workspace: Workspace, config: Path) -> PhaseDef:
    raw = read_yaml(config)
    where = shown(config)
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping")
    unknown = sorted(set(map(str, raw)) - _PHASE_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key '{unknown[0]}'")
    for key in ("phase", "name", "intelligence", "output", "module", "rules"):
        if key not in raw:
            raise InputError(f"{where}: missing required key '{key}'")
    number = raw["phase"]
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InputError(f"{where}: phase must be a positive whole number")
    folder = config.parent
    return PhaseDef(
        number=number,
        name=str(raw["name"]),
        folder=folder,
        intelligence_path=workspace.intelligence_dir / str(raw["intelligence"]),
        input_file=raw.get("input"),
        output_file=str(raw["output"]),
        requires=raw.get("requires"),
        module_ref=str(raw["module"]),
        batch_schema_path=folder / str(raw.get("batch_schema", "batch.schema.json")),
        merged_schema_path=folder / str(raw.get("merged_schema", "merged.schema.json")),
        max_tokens=int(raw.get("max_tokens", 16000)),
        rules=_parse_rules(raw["rules"], where),
        data=dict(raw.get("data") or {}),
        estimate={str(k): float(v) for k, v in (raw.get("estimate") or {}).items()},
    )


def _parse_rules(raw: Any, where: str) -> dict[str, RuleInfo]:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: rules must map rule names to {{severity, checks}}")
    rules: dict[str, RuleInfo] = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or spec.get("severity") not in SEVERITIES:
            raise InputError(f"{where}: rules.{name} needs severity error, warning or off")
        rules[str(name)] = RuleInfo(str(name), str(spec["severity"]), str(spec.get("checks", "")))
    return rules
