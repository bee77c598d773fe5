"""Run one child process with stdin, a hard timeout, and no stray descendants left behind."""

from __future__ import annotations

import errno
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from freshbatch.errors import ProviderError, TransientError


@dataclass(frozen=True)
class Finished:
    """What a child process left: exit code, decoded output, wall time."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def last_stderr_line(self) -> str:
        """The last non-blank stderr line, or "" (usually the one that says what went wrong)."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run_process(
    argv: Sequence[str],
    stdin: str,
    timeout: float,
    *,
    label: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Finished:
    """Run argv (no shell) in its own process group, feeding stdin as UTF-8.

    `env` replaces the environment when given; `cwd` is the child's working directory.

    On timeout, or if the caller is interrupted, the whole group is killed with SIGKILL
    and reaped, so no grandchild outlives the attempt. A timeout raises TransientError;
    a program that cannot be started raises ProviderError.
    """
    started = time.monotonic()
    process = _spawn(argv, label, env, cwd)
    try:
        out, err = process.communicate(stdin.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise TransientError(f"{label} timed out after {timeout:g}s") from None
    except BaseException:
        _kill_group(process)
        raise
    return Finished(process.returncode, _decode(out), _decode(err), time.monotonic() - started)


def run_streaming(
    argv: Sequence[str],
    stdin: str,
    timeout: float,
    *,
    label: str,
    stop: Callable[[str], bool],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[Finished, bool]:
    """Like run_process, but reads stdout line by line as it comes; `stop(line)` true kills
    the whole group at once. Returns what was read and whether `stop` ended the child."""
    started = time.monotonic()
    process = _spawn(argv, label, env, cwd)
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[bytes] = []
    threads = [
        threading.Thread(target=_feed, args=(process, stdin), daemon=True),
        threading.Thread(target=_read_lines, args=(process, lines), daemon=True),
        threading.Thread(target=_read_all, args=(process, errors), daemon=True),
    ]
    for thread in threads:
        thread.start()
    out: list[str] = []
    try:
        stopped = _follow(process, lines, out, stop, started + timeout)
    except subprocess.TimeoutExpired:
        _kill_and_reap(process)
        raise TransientError(f"{label} timed out after {timeout:g}s") from None
    except BaseException:
        _kill_and_reap(process)
        raise
    finally:
        for thread in threads[1:]:
            thread.join(timeout=5)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    seconds = time.monotonic() - started
    return Finished(process.wait(), "".join(out), _decode(b"".join(errors)), seconds), stopped


def _follow(
    process: subprocess.Popen[bytes],
    lines: queue.Queue[str | None],
    out: list[str],
    stop: Callable[[str], bool],
    deadline: float,
) -> bool:
    """Collect stdout lines until the child ends (False) or `stop` asks to kill it (True)."""
    for line in _lines_until(lines, deadline):
        out.append(line)
        if stop(line):
            _kill_and_reap(process)
            return True
    process.wait(timeout=max(deadline - time.monotonic(), 0.01))
    return False


def _lines_until(lines: queue.Queue[str | None], deadline: float) -> Iterator[str]:
    """Lines from the reader until it ends; TimeoutExpired once the deadline has passed."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise subprocess.TimeoutExpired("child", 0)
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            raise subprocess.TimeoutExpired("child", 0) from None
        if line is None:
            return
        yield line


def _feed(process: subprocess.Popen[bytes], stdin: str) -> None:
    """Write stdin and close it (a thread: a child may write before it has read it all)."""
    assert process.stdin is not None
    try:
        process.stdin.write(stdin.encode("utf-8"))
        process.stdin.close()
    except OSError:  # the child is gone or closed its stdin: it will say why on stdout
        pass


def _read_lines(process: subprocess.Popen[bytes], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    try:
        for raw in process.stdout:
            lines.put(_decode(raw))
    except (OSError, ValueError):  # closed under us when the group is killed
        pass
    lines.put(None)


def _read_all(process: subprocess.Popen[bytes], into: list[bytes]) -> None:
    assert process.stderr is not None
    try:
        into.append(process.stderr.read())
    except (OSError, ValueError):
        pass


def _spawn(
    argv: Sequence[str], label: str, env: Mapping[str, str] | None, cwd: Path | None
) -> subprocess.Popen[bytes]:
    """Start the child in a new session, or raise ProviderError naming the program."""
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=None if env is None else dict(env),
            cwd=cwd,
        )
    except FileNotFoundError:
        raise ProviderError(f"{label}: program {argv[0]!r} not found; check its path") from None
    except PermissionError:
        raise ProviderError(f"{label}: program {argv[0]!r} is not executable") from None
    except OSError as exc:
        if exc.errno == errno.E2BIG:
            raise ProviderError(f"{label}: arguments too long for {argv[0]!r}") from None
        raise ProviderError(f"{label}: cannot run {argv[0]!r}: {exc.strerror}") from exc


def _kill_and_reap(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group and reap the child (reader threads own the pipes)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group, then reap the child and close its pipes."""
    try:
        os.killpg(process.pid, signal.SIGKILL)  # pgid == pid: start_new_session=True
    except ProcessLookupError:
        pass
    try:
        process.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a descendant left the group and holds our pipes
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()


def _decode(data: bytes | None) -> str:
    """Decode child output as UTF-8, never failing on a stray byte."""
    return (data or b"").decode("utf-8", errors="replace")
