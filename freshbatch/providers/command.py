"""Any program as a provider: request JSON on stdin, one answer object on stdout.

stdin:  {"request": <Request.to_dict()>, "meta": {"course", "phase", "batch", "attempt"}}
stdout: {"text": "...", "stop_reason"?: "...", "usage"?: {...}, "model"?: "..."}
Exit 75 (EX_TEMPFAIL) asks for a retry; any other non-zero exit stops the run.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from freshbatch.errors import ProviderError, TransientError
from freshbatch.providers import Answer, ProviderConfig, Request, Usage
from freshbatch.providers.subprocess_run import Finished, run_process

EX_TEMPFAIL = 75
EXPECTED = (
    'one JSON object {"text": "...", "stop_reason"?: "...", "usage"?: {...}, "model"?: "..."}'
)


class CommandProvider:
    """Runs config.command (argv, no shell) once per request."""

    name = "command"

    def __init__(self, config: ProviderConfig) -> None:
        if not config.command:
            raise ProviderError("command provider needs --command (the program and its arguments)")
        self.config = config

    def complete(self, request: Request) -> Answer:
        """Run the program on one request and read its answer."""
        payload = {"request": request.to_dict(), "meta": asdict(request.meta)}
        finished = run_process(
            self.config.command,
            json.dumps(payload, ensure_ascii=False),
            request.timeout_within(self.config.timeout),
            label="command",
        )
        _check_exit(finished, self.config.command[0])
        data = _parse_answer(finished.stdout, self.config.command[0])
        return Answer(
            text=data["text"],
            stop_reason=str(data.get("stop_reason") or "end_turn"),
            model=str(data.get("model") or request.model),
            usage=Usage.from_dict(data.get("usage")),
            seconds=finished.seconds,
        )


def _check_exit(finished: Finished, program: str) -> None:
    """Raise for a non-zero exit: 75 is worth a retry, anything else is not."""
    if finished.returncode == 0:
        return
    reason = finished.last_stderr_line or "no message on stderr"
    message = f"command {program!r} exited with {finished.returncode}: {reason}"
    if finished.returncode == EX_TEMPFAIL:
        raise TransientError(message)
    raise ProviderError(message)


def _parse_answer(stdout: str, program: str) -> dict[str, Any]:
    """The answer object, or ProviderError saying what was expected."""
    try:
        data = json.loads(stdout)
    except ValueError:
        data = None
    usage = data.get("usage") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("text"), str)
        or not isinstance(usage, dict | None)
    ):
        excerpt = " ".join(stdout.split())[:80] or "<empty>"
        raise ProviderError(f"command {program!r} printed {excerpt!r}; expected {EXPECTED}")
    return data
