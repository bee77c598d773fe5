"""The phase instructions as the model reads them: intelligence/*.md with its placeholders
filled from the phase's own phase.yaml, so what the model is told and what is checked come
from one source. Pure: text and values in, text out.

Placeholders (anything else in double braces is refused):
  {{rules}}            the table of every rule of the phase with its severity for this course
  {{rule:NAME}}        the `checks` text of one rule in phase.yaml
  {{severity:NAME}}    that rule's severity for this course (error, warning or off)
  {{function_words}}   the target language's lone-function-word list (data.function_words)

The result depends on the phase and the course only, never on a batch, so the system prompt
stays byte-identical across a phase's batches and the prompt cache keeps hitting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from freshbatch.errors import InputError
from freshbatch.issues import RuleInfo

_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)(?::([a-z0-9-]+))?\}\}")
_ANY_BRACES = re.compile(r"\{\{[^{}]*\}\}")

# Rules the runner applies to every phase before the phase's own rules (see attempts.py).
RUNNER_RULES = (
    RuleInfo(
        "answer-json",
        "error",
        "the answer is one JSON object, bare or in a single ```json fence, nothing else",
    ),
    RuleInfo(
        "answer-truncated",
        "error",
        "the answer stopped before the output token limit; an answer cut off there is "
        "rejected whole (write compactly: no commentary, no extra fields)",
    ),
)


def render(
    text: str,
    where: str,
    rules: Mapping[str, RuleInfo],
    data: Mapping[str, Any],
    target: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """Fill the placeholders of one intelligence file; `where` names it in errors."""
    overrides = overrides or {}

    def severity(info: RuleInfo) -> str:
        return overrides.get(info.name, info.severity)

    def fill(match: re.Match[str]) -> str:
        name, arg = match.group(1), match.group(2)
        if name == "rules" and arg is None:
            return _rules_table([*RUNNER_RULES, *rules.values()], severity)
        if name in ("rule", "severity") and arg is not None:
            info = rules.get(arg) or next((r for r in RUNNER_RULES if r.name == arg), None)
            if info is None:
                raise InputError(f"{where}: {match.group()} names no rule of this phase")
            return info.checks if name == "rule" else severity(info)
        if name == "function_words" and arg is None:
            return _function_words(data.get("function_words") or {}, target)
        raise InputError(f"{where}: unknown placeholder {match.group()}")

    filled = _PLACEHOLDER.sub(fill, text)
    leftover = _ANY_BRACES.search(filled)
    if leftover:
        raise InputError(f"{where}: unknown placeholder {leftover.group()}")
    return filled


def _rules_table(rules: list[RuleInfo], severity: Any) -> str:
    lines = ["| rule (as named in feedback) | severity | what is checked |", "|---|---|---|"]
    for info in rules:
        level = severity(info)
        if level != "off":
            lines.append(f"| `{info.name}` | {level} | {info.checks} |")
    return "\n".join(lines)


def _function_words(lists: Mapping[str, Any], target: str | None) -> str:
    if target is None:  # no course: every list (used by `freshbatch rules` and tests)
        return "; ".join(
            f"{lang}: " + " ".join(f"`{w}`" for w in words) for lang, words in lists.items()
        )
    words = lists.get(target)
    if not words:
        return f"(no list for `{target}`: this rule does not fire; still follow §8.4)"
    return " ".join(f"`{w}`" for w in words)
