"""A phase is files on disk: intelligence/<file>.md and validators/phaseN/ (phase.yaml, schemas).

phase.yaml names the Python module that holds the phase's rules and its batch logic, so a new
phase needs new files, never a change to the runner. Every file is looked up in the workspace
first, then among the built-in phases (freshbatch/builtin.py): a workspace overrides them file
by file, and can add phases of its own.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from freshbatch.builtin import builtin_root
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
    "thinking",
    "effort",
}


@dataclass(frozen=True)
class PhaseDef:
    """One phase as its phase.yaml describes it."""

    number: int
    name: str
    folder: str  # the folder name under validators/, e.g. "phase3"
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
    module_path: Path | None = None  # a module given as a .py file beside phase.yaml
    thinking: str | None = None  # off | adaptive: this phase's own setting (freshbatch.yaml's else)
    effort: str | None = None
    sources: tuple[tuple[str, str], ...] = ()  # (file, "built-in" or "workspace <path>")

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
        return _import_module(self.module_ref, self.module_path, self.folder)

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

    def describe_sources(self) -> str:
        """Where each of the phase's files comes from, on one line."""
        parts = ", ".join(f"{name} {origin}" for name, origin in self.sources)
        return f"{self.key} files: {parts}"


def _load_schema(path: Path) -> dict[str, Any]:
    schema = read_json(path)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InputError(f"{shown(path)}: not a valid JSON Schema: {exc.message}") from exc
    if not isinstance(schema, dict):
        raise InputError(f"{shown(path)}: a schema must be a JSON object")
    return schema


def _import_module(ref: str, path: Path | None, folder: str) -> ModuleType:
    if path is not None:
        spec = importlib.util.spec_from_file_location(f"freshbatch_phase_{folder}", path)
        if spec is None or spec.loader is None or not path.is_file():
            raise InputError(f"{shown(path)}: module file {ref} not found")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(ref)
    except ImportError as exc:
        raise InputError(
            f"validators/{folder}/phase.yaml: cannot import module {ref}: {exc}"
        ) from exc


def locate(workspace: Workspace, relative: str) -> tuple[Path, str]:
    """A phase file: the workspace's own if it has one, else the built-in one.

    Returns the path and where it comes from: "built-in" or "workspace <the file as shown>".
    Where neither exists, the workspace path, so the error names the file to write.
    """
    own, builtin = workspace.root / relative, builtin_root() / relative
    if os.path.lexists(own) and not _same_file(own, builtin):
        return own, f"workspace {shown(own)}"
    if builtin.is_file():
        return builtin, "built-in"
    return own, f"workspace {shown(own)}"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and a.samefile(b)
    except OSError:
        return False


def _phase_folders(workspace: Workspace) -> list[str]:
    """Folder names under validators/ that hold a phase.yaml, built-in or the workspace's."""
    names: set[str] = set()
    for base in (builtin_root(), workspace.root):
        folder = base / "validators"
        if folder.is_dir():
            names.update(p.parent.name for p in folder.glob("*/phase.yaml"))
    return sorted(names)


def load_phases(workspace: Workspace) -> dict[int, PhaseDef]:
    """Every phase, by number: the built-in ones and the workspace's, file by file."""
    phases: dict[int, PhaseDef] = {}
    for name in _phase_folders(workspace):
        phase = parse_phase(workspace, name)
        if phase.number in phases:
            first = phases[phase.number].folder
            raise InputError(
                f"validators/{name}/phase.yaml: phase {phase.number} is defined twice "
                f"(validators/{first}/ defines it too)"
            )
        phases[phase.number] = phase
    return phases


def resolve_phase(phases: dict[int, PhaseDef], text: str, workspace: Workspace) -> PhaseDef:
    """The phase named by 'phase3' or '3'."""
    match = _PHASE_ARG.fullmatch(text.strip().lower())
    if match is None or int(match.group(1)) not in phases:
        names = ", ".join(f"phase{n}" for n in sorted(phases)) or "none"
        raise InputError(f"unknown phase '{text}' (phases: {names})")
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


def parse_phase(workspace: Workspace, name: str) -> PhaseDef:
    """validators/<name>/phase.yaml, checked, with every file it names located."""
    config, config_from = locate(workspace, f"validators/{name}/phase.yaml")
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
    files = {
        "phase.yaml": (config, config_from),
        "intelligence": locate(workspace, f"intelligence/{raw['intelligence']}"),
        "batch_schema": _beside(workspace, name, raw.get("batch_schema", "batch.schema.json")),
        "merged_schema": _beside(workspace, name, raw.get("merged_schema", "merged.schema.json")),
    }
    module_ref = str(raw["module"])
    if module_ref.endswith(".py"):
        files["module"] = _beside(workspace, name, module_ref)
    return PhaseDef(
        number=number,
        name=str(raw["name"]),
        folder=name,
        intelligence_path=files["intelligence"][0],
        input_file=raw.get("input"),
        output_file=str(raw["output"]),
        requires=raw.get("requires"),
        module_ref=module_ref,
        batch_schema_path=files["batch_schema"][0],
        merged_schema_path=files["merged_schema"][0],
        max_tokens=int(raw.get("max_tokens", 16000)),
        rules=_parse_rules(raw["rules"], where),
        data=dict(raw.get("data") or {}),
        estimate={str(k): float(v) for k, v in (raw.get("estimate") or {}).items()},
        thinking=_phase_choice(raw, "thinking", ("off", "adaptive"), where),
        effort=_phase_choice(raw, "effort", ("low", "medium", "high", "xhigh", "max"), where),
        module_path=files["module"][0] if "module" in files else None,
        sources=tuple((path.name, origin) for path, origin in files.values()),
    )


def _beside(workspace: Workspace, name: str, file: Any) -> tuple[Path, str]:
    return locate(workspace, f"validators/{name}/{file}")


def _parse_rules(raw: Any, where: str) -> dict[str, RuleInfo]:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: rules must map rule names to {{severity, checks}}")
    rules: dict[str, RuleInfo] = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or spec.get("severity") not in SEVERITIES:
            raise InputError(f"{where}: rules.{name} needs severity error, warning or off")
        rules[str(name)] = RuleInfo(str(name), str(spec["severity"]), str(spec.get("checks", "")))
    return rules


def _phase_choice(
    raw: dict[str, Any], key: str, allowed: tuple[str, ...], where: str
) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if value is False and key == "thinking":
        value = "off"  # YAML reads a bare `off` as false
    if value not in allowed:
        raise InputError(f"{where}: {key} is {value!r}; use one of {', '.join(allowed)}")
    return str(value)
