"""JSON Schema checks, turned into issues that name the seed or LEGO they concern."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from freshbatch.fastschema import Check, compile_schema
from freshbatch.issues import Reporter

_SEED = re.compile(r"S\d{4}")
_LEGO = re.compile(r"S\d{4}L\d{2}")
_cache: dict[int, tuple[dict[str, Any], Draft202012Validator, Check | None]] = {}


def _validators(schema: dict[str, Any]) -> tuple[Draft202012Validator, Check | None]:
    cached = _cache.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, Draft202012Validator(schema), compile_schema(schema))
        _cache[id(schema)] = cached
    return cached[1], cached[2]


def check_schema(schema: dict[str, Any], doc: Any, report: Reporter, limit: int = 200) -> int:
    """Report schema violations (at most `limit`); returns how many there were."""
    validator, fast = _validators(schema)
    if fast is not None and fast(doc):
        return 0
    errors = sorted(
        (e for e in validator.iter_errors(doc) if not _is_redundant(e)),
        key=lambda e: list(map(str, e.path)),
    )
    for error in errors[:limit]:
        where, seed_id, lego_id = _locate(doc, list(error.path))
        report.add("schema", f"{where}: {_message(error)}", seed_id=seed_id, lego_id=lego_id)
    if len(errors) > limit:
        report.add("schema", f"... and {len(errors) - limit} more schema errors")
    return len(errors)


def _is_redundant(error: ValidationError) -> bool:
    """An empty string breaks minLength and the no-surrounding-spaces pattern: say it once."""
    return error.validator == "pattern" and error.instance == ""


def _message(error: ValidationError) -> str:
    if error.validator == "pattern" and "(?![\\s\\S])" in str(error.validator_value):
        return f"{error.instance!r} has spaces at the start or end"
    if (
        error.validator == "not"
        and isinstance(error.schema, dict)
        and "description" in error.schema
    ):
        return str(error.schema["description"])
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unexpected field")
    return error.message


def _locate(doc: Any, path: Sequence[Any]) -> tuple[str, str | None, str | None]:
    """A readable location like 'S0004 legos[2].lego.known', with the seed and LEGO ids."""
    parts: list[str] = []
    seed_id: str | None = None
    lego_id: str | None = None
    node = doc
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
        if isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append(("." if parts else "") + str(step))
        if isinstance(step, str) and _LEGO.fullmatch(step):
            lego_id, seed_id = step, step[:5]
        elif isinstance(step, str) and _SEED.fullmatch(step):
            seed_id = step
        if isinstance(node, dict):
            if isinstance(node.get("seed_id"), str):
                seed_id = node["seed_id"]
            if isinstance(node.get("id"), str) and _LEGO.fullmatch(node["id"]):
                lego_id = node["id"]
    text = "".join(parts) or "(top level)"
    return (f"{seed_id} {text}" if seed_id and seed_id not in text else text), seed_id, lego_id
