"""Run one child process with stdin, a hard timeout, and no stray descendants left behind."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
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
