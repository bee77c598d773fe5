"""freshbatch: run large LLM generation jobs in fresh, validated, resumable batches.

The library API behind the CLI:

    from freshbatch import find_workspace, run, validate_phase, RunOptions
    workspace = find_workspace("path/to/workspace")
    report = validate_phase(workspace, "phase3", "spa_for_eng")
    result = run(workspace, "all", "demo_ita_for_eng", RunOptions(provider="replay"))
"""

from freshbatch.errors import FreshbatchError, InputError, ProviderError, ValidationFailed
from freshbatch.runner import RunOptions, RunResult, prompt_request, run
from freshbatch.status import course_status
from freshbatch.validation import ValidationReport, validate_phase
from freshbatch.workspace import Workspace, find_workspace

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
