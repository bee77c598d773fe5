"""Reading and atomically writing JSON and YAML files, with one-line errors."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml

from freshbatch.errors import InputError, WriteError

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


MAX_INPUT_BYTES = 200 * 1024 * 1024  # far above a full course's largest file (~10 MB)
_umask: list[int] = []
_umask_lock = threading.Lock()


def shown(path: Path | str) -> str:
    """The path as a user would type it: relative to the current folder where possible.

    Never resolves symlinks: a loop must still be namable.
    """
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute, os.getcwd())
    except (OSError, ValueError):
        return absolute
    return absolute if relative.startswith("..") else relative


def problem(exc: OSError) -> str:
    """An OSError as a few words, without the path the caller names itself."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno == errno.ENOTDIR:
        return "a file stands where a folder belongs"
    if exc.errno == errno.EISDIR:
        return "is a folder, not a file"
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or type(exc).__name__


def file_exists(path: Path) -> bool:
    """True for a regular file, False when nothing is there; InputError for anything else.

    Path.is_file() says False for a symlink loop, a dangling link or an unreadable folder,
    which would make a merged file look absent; here those are refused instead.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.lexists(path):
            raise InputError(f"{shown(path)}: a symlink to a file that does not exist") from None
        return False
    except OSError as exc:
        raise InputError(f"{shown(path)}: cannot read: {problem(exc)}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{shown(path)}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise InputError(f"{shown(path)}: not a regular file")
    return True


def check_writable_dir(folder: Path) -> None:
    """Refuse a folder the run could not create or write in, before anything is written."""
    current = folder
    while True:
        try:
            mode = os.stat(current).st_mode
        except FileNotFoundError:
            if os.path.lexists(current):
                raise InputError(f"{shown(current)}: a symlink to nothing") from None
            current = current.parent
            continue
        except OSError as exc:
            raise InputError(f"{shown(current)}: cannot use: {problem(exc)}") from None
        if not stat.S_ISDIR(mode):
            raise InputError(f"{shown(current)}: a file stands where a folder belongs")
        if not os.access(current, os.W_OK | os.X_OK):
            raise InputError(f"{shown(current)}: cannot write here: permission denied")
        return


def read_text(path: Path) -> str:
    """A UTF-8 file's text, or InputError naming the file and the problem."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise InputError(f"{shown(path)}: a symlink to a file that does not exist") from None
        raise InputError(f"{shown(path)}: file not found") from None
    except OSError as exc:
        raise InputError(f"{shown(path)}: cannot read: {problem(exc)}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"{shown(path)}: larger than {MAX_INPUT_BYTES // 2**20} MB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{shown(path)}: not UTF-8 text (byte {exc.start})") from None


def read_json(path: Path) -> Any:
    """Parse a JSON file, or raise InputError naming the file and the problem."""
    text = read_text(path)
    if text.startswith("\ufeff"):
        raise InputError(f"{shown(path)}: starts with a byte order mark; save it as UTF-8 without")
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
        fd, tmp = _temporary(path)
    except OSError as exc:
        raise WriteError(f"{shown(path)}: cannot write: {problem(exc)}") from None
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; outputs get the user's umask
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise WriteError(f"{shown(path)}: cannot write: {problem(exc)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def _temporary(path: Path) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except FileNotFoundError:  # the folder is made on the first write only
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def append_text(path: Path, text: str) -> None:
    """Append to a log file (events.jsonl), or WriteError naming it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise WriteError(f"{shown(path)}: cannot write: {problem(exc)}") from None


def umask() -> int:
    """The process umask, read once (os.umask can only be read by setting it)."""
    with _umask_lock:
        if not _umask:
            _umask.append(_read_umask())
        return _umask[0]


def _read_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


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
