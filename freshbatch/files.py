"""Reading and atomically writing JSON and YAML files, with one-line errors."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from freshbatch.errors import InputError

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def shown(path: Path) -> str:
    """The path as a user would type it: relative to the current folder where possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_text(path: Path) -> str:
    """A UTF-8 file's text, or InputError naming the file and the problem."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{shown(path)}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{shown(path)}: cannot read: {exc}") from exc


def read_json(path: Path) -> Any:
    """Parse a JSON file, or raise InputError naming the file and the problem."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{shown(path)}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, or raise InputError naming the file and the problem."""
    text = read_text(path)
    try:
        return yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{shown(path)}: invalid YAML{where}: {problem}") from exc


def dump_json(data: Any, encoded: dict[str, str] | None = None) -> str:
    """The JSON layout of state files: one top-level key per line, each value compact.

    Readable enough, and fast: json's indenting encoder is pure Python, the compact one is C.
    `encoded` gives the JSON text of some top-level values, already encoded by the caller.
    """
    if isinstance(data, dict) and data:
        given = encoded or {}
        lines = (
            f"  {json.dumps(key, ensure_ascii=False)}: "
            f"{given[key] if key in given else json.dumps(value, ensure_ascii=False)}"
            for key, value in data.items()
        )
        return "{\n" + ",\n".join(lines) + "\n}\n"
    return json.dumps(data, ensure_ascii=False) + "\n"


def encode_items(part: list[Any] | dict[str, Any]) -> list[str]:
    """Each item of a merged file's body on one line, indented for dump_merged (C-fast)."""
    if isinstance(part, list):
        return ["    " + json.dumps(item, ensure_ascii=False) for item in part]
    return [
        "    " + json.dumps(key, ensure_ascii=False) + ": " + json.dumps(value, ensure_ascii=False)
        for key, value in part.items()
    ]


def dump_merged(doc: dict[str, Any], body_key: str, items: list[str]) -> str:
    """A merged file: header fields pretty-printed, then the body one item per line.

    `items` are the body's items already encoded by encode_items, so a merge encodes only
    its new batch (json's pure-Python indenting encoder took seconds on a full course).
    """
    lines = ["{"]
    keys = [k for k in doc if k != body_key]
    for key in keys:
        value = json.dumps(doc[key], ensure_ascii=False, indent=2).replace("\n", "\n  ")
        lines.append(f"  {json.dumps(key)}: {value},")
    opening, closing = ("[", "]") if isinstance(doc[body_key], list) else ("{", "}")
    if not items:
        lines.append(f"  {json.dumps(body_key)}: {opening}{closing}")
    else:
        lines.append(f"  {json.dumps(body_key)}: {opening}")
        lines.append(",\n".join(items))
        lines.append(f"  {closing}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str, durable: bool = True) -> None:
    """Write text so readers see the old file or the new one, never a part (tmp, rename).

    durable: fsync the file and its folder too, so the new file survives a power loss (merged
    files and staged batches); progress and transcripts skip it, a crash loses nothing there.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except FileNotFoundError:  # the folder is made on the first write only
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def write_json_atomic(path: Path, data: Any, durable: bool = True) -> None:
    write_atomic(path, dump_json(data), durable)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
