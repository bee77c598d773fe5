"""Builds the request for one attempt of one batch (RUNNER §3). Pure: values in, values out.

Layout, for the prompt cache and against drift:
  system[0]  fixed framing for the phase and course, and the batch answer's JSON Schema
  system[1]  the full phase intelligence                       <- cache breakpoint
  user       batch header, the batch's input as JSON, the output contract
  assistant  (attempts 2-3) the previous answer
  user       (attempts 2-3) the validator's issues, asking for the complete corrected batch
Nothing that differs between batches appears in the system blocks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from freshbatch.batching import Batch
from freshbatch.issues import ERROR, Issue
from freshbatch.phases import PhaseDef
from freshbatch.providers import Message, Request, RequestMeta
from freshbatch.workspace import Course

MAX_FEEDBACK_ERRORS = 40
MAX_FEEDBACK_WARNINGS = 10


@dataclass(frozen=True)
class Retry:
    """What attempt N+1 is told about attempt N: its raw answer and the issues found."""

    answer_text: str
    issues: tuple[Issue, ...]


def system_blocks(phase: PhaseDef, course: Course) -> tuple[str, str]:
    """The cached prefix: identical for every batch of one phase of one course."""
    schema = json.dumps(phase.batch_schema, ensure_ascii=False, separators=(",", ":"))
    framing = (
        f"You are generating phase {phase.number} ({phase.name}) of the language course "
        f"{course.code}: {course.target_name} (ISO 639-3 '{course.target}') for speakers of "
        f"{course.known_name} ('{course.known}'). The target language is {course.target_name}; "
        f"the known language is {course.known_name}.\n"
        "Each request is one batch of seeds in a fresh session. Follow the phase instructions "
        "below exactly; a program validates every answer and rejects any rule it breaks.\n"
        "Answer with exactly one JSON object, bare or in a single ```json fence, and nothing "
        f"else. It must match this JSON Schema:\n{schema}"
    )
    return framing, phase.intelligence(course)


def first_user_message(
    phase: PhaseDef, course: Course, batch: Batch, total: int, batch_input: dict[str, Any]
) -> str:
    """The batch header, the batch's input as JSON and the output contract."""
    header = (
        f"Phase {phase.number} ({phase.name}) — batch {batch.number} of {total} — seeds "
        f"{batch.first_seed} to {batch.last_seed} ({len(batch.seed_ids)} seeds) — "
        f"{course.target_name} ({course.target}) for {course.known_name} ({course.known}) speakers."
    )
    data = dump_input(batch_input)
    return (
        f"{header}\n\nInput:\n```json\n{data}\n```\n\n"
        f"Return the complete answer for these {len(batch.seed_ids)} seeds now: one JSON object "
        "as the instructions' output contract and the schema above define, bare or in a single "
        "```json fence, with nothing before or after it."
    )


def dump_input(data: dict[str, Any]) -> str:
    """The batch input as JSON: the batch's seeds one per line, each other key on one line."""
    parts = []
    for key, value in data.items():
        name = json.dumps(key, ensure_ascii=False)
        if key == "seeds" and isinstance(value, list) and value:
            items = ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in value)
            parts.append(f" {name}: [\n{items}\n ]")
        else:
            parts.append(f" {name}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}"


def feedback_message(issues: Sequence[Issue], attempt: int, max_attempts: int) -> str:
    """The retry turn: the validator's issues, errors first, capped, asking for the full batch."""
    errors = [i for i in issues if i.severity == ERROR]
    warnings = [i for i in issues if i.severity != ERROR]
    lines = [
        f"The validator rejected your answer (attempt {attempt} of {max_attempts}). Fix every "
        "error below and answer again with the COMPLETE corrected batch — every seed, not only "
        "the changed parts — as one JSON object.",
        "",
        f"Errors ({len(errors)}):",
        *(_line(i) for i in errors[:MAX_FEEDBACK_ERRORS]),
    ]
    if len(errors) > MAX_FEEDBACK_ERRORS:
        lines.append(f"... and {len(errors) - MAX_FEEDBACK_ERRORS} more errors of the kinds above")
    if warnings:
        lines += ["", f"Warnings ({len(warnings)}; fix them too where you can):"]
        lines += [_line(i) for i in warnings[:MAX_FEEDBACK_WARNINGS]]
        if len(warnings) > MAX_FEEDBACK_WARNINGS:
            lines.append(f"... and {len(warnings) - MAX_FEEDBACK_WARNINGS} more warnings")
    return "\n".join(lines)


def _line(issue: Issue) -> str:
    return f"- [{issue.rule}] {issue.message}"


def build_request(
    phase: PhaseDef,
    course: Course,
    model: str,
    batch: Batch,
    total: int,
    batch_input: dict[str, Any],
    attempt: int,
    max_attempts: int,
    retry: Retry | None = None,
    cache_ttl: str | None = None,
    on_started: Callable[[], None] | None = None,
    first_message: str | None = None,
    params: dict[str, Any] | None = None,
) -> Request:
    """The request for one attempt: a fresh session, with the previous answer on retries.

    first_message: the first user turn exactly as attempt 1 sent it (retries resend it).
    """
    first = first_message or first_user_message(phase, course, batch, total, batch_input)
    messages = [Message("user", first)]
    if retry is not None:
        messages.append(Message("assistant", retry.answer_text or "(empty answer)"))
        messages.append(Message("user", feedback_message(retry.issues, attempt - 1, max_attempts)))
    return Request(
        model=model,
        system=system_blocks(phase, course),
        messages=tuple(messages),
        max_tokens=phase.max_tokens,
        meta=RequestMeta(course.code, phase.number, batch.number, attempt),
        cache_ttl=cache_ttl,
        on_started=on_started,
        expected_output=round(phase.estimate.get("output_per_seed", 0) * len(batch.seed_ids))
        or None,
        params=dict(params or {}),
    )
