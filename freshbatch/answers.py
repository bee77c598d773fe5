"""Strict parsing of a model's answer: one JSON object, bare or in a single ```json fence."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"\A```(?:json|JSON)?[ \t]*\n(?P<body>.*?)\n?```\Z", re.DOTALL)


class AnswerFormatError(ValueError):
    """The answer is not exactly one JSON object; the message says what to fix."""


def parse_answer(text: str) -> dict[str, Any]:
    """Parse the answer strictly; raise AnswerFormatError with a message fit for the model."""
    stripped = text.strip()
    if not stripped:
        raise AnswerFormatError("the answer was empty; answer with one JSON object")
    fence = _FENCE.match(stripped)
    if stripped.startswith("```") and fence is None:
        raise AnswerFormatError(
            "the answer opens a ``` fence but is not exactly one fenced "
            "JSON block; give one ```json block and nothing else"
        )
    body = fence.group("body") if fence else stripped
    if "```" in body:
        raise AnswerFormatError("the answer holds more than one fenced block; give one JSON object")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise AnswerFormatError(
            f"the answer is not valid JSON ({exc.msg} at {where}); "
            "answer with one JSON object and nothing else"
        ) from exc
    if not isinstance(value, dict):
        raise AnswerFormatError(f"the answer is a JSON {type(value).__name__}, not one object")
    return value
