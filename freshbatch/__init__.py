"""freshbatch: run large LLM generation jobs in fresh, validated, resumable batches.

The library API behind the CLI:

    from freshbatch import find_workspace, run, validate_phase, RunOptions
    workspace = find_workspace("path/to/workspace")
    report = validate_phase(workspace, "phase3", "spa_for_eng")
    result = run(workspace, "all", "demo_ita_for_eng", RunOptions(provider="replay"))
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from freshbatch.errors import FreshbatchError, InputError, ProviderError, ValidationFailed
    from freshbatch.runner import RunOptions, RunResult, prompt_request, run
    from freshbatch.status import course_status
    from freshbatch.validation import ValidationReport, validate_phase
    from freshbatch.workspace import Workspace, find_workspace

# imported on first use, so the console script can handle Ctrl-C before the heavy imports
_HOMES = {
    "FreshbatchError": "errors",
    "InputError": "errors",
    "ProviderError": "errors",
    "ValidationFailed": "errors",
    "RunOptions": "runner",
    "RunResult": "runner",
    "prompt_request": "runner",
    "run": "runner",
    "course_status": "status",
    "ValidationReport": "validation",
    "validate_phase": "validation",
    "Workspace": "workspace",
    "find_workspace": "workspace",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'freshbatch' has no attribute {name!r}")
    return getattr(import_module(f"freshbatch.{home}"), name)


__all__ = [
    "FreshbatchError",
    "InputError",
    "ProviderError",
    "ValidationFailed",
    "RunOptions",
    "RunResult",
    "prompt_request",
    "run",
    "course_status",
    "ValidationReport",
    "validate_phase",
    "Workspace",
    "find_workspace",
]
