"""Answers from recorded transcripts, for the demo course and for tests.

A recording is `<replay_dir>/phase{P}/batch_{KKK}_attempt_{A}.json` holding {"answer": {...}}
in Answer.to_dict() shape; replay_dir defaults to `<course>/recordings`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from freshbatch.errors import ProviderError
from freshbatch.files import shown
from freshbatch.providers import Answer, ProviderConfig, Request, RequestMeta


class ReplayProvider:
    """Looks up the recorded answer of the same phase, batch and attempt."""

    name = "replay"

    def __init__(self, config: ProviderConfig) -> None:
        self.directory = config.replay_dir or config.course_dir / "recordings"

    def complete(self, request: Request) -> Answer:
        """Return the recorded answer (with seconds=0), or ProviderError if there is none."""
        meta = request.meta
        path = recording_path(self.directory, meta)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProviderError(
                f"no recorded answer for phase {meta.phase} batch {meta.batch} "
                f"attempt {meta.attempt} in {shown(self.directory)}"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProviderError(f"{shown(path)}: cannot read recording: {exc}") from exc
        return replace(Answer.from_dict(_answer_object(text, path)), seconds=0.0)


def recording_path(directory: Path, meta: RequestMeta) -> Path:
    """Where the recording of one attempt lives."""
    return directory / f"phase{meta.phase}" / f"batch_{meta.batch:03d}_attempt_{meta.attempt}.json"


def _answer_object(text: str, path: Path) -> dict[str, object]:
    """The "answer" object of a recording, or ProviderError naming the file."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProviderError(
            f"{shown(path)}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    answer = data.get("answer") if isinstance(data, dict) else None
    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
        raise ProviderError(f'{shown(path)}: expected an object with an "answer" holding "text"')
    return answer
