"""Error types, each carrying the exit code the CLI returns for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from freshbatch.providers import Usage
    from freshbatch.ratelimits import RateLimits


class FreshbatchError(Exception):
    """A failure the user must see: one line, naming the file or object and the fix."""

    exit_code = 1


class ValidationFailed(FreshbatchError):
    """A batch or an output file broke an error-severity rule."""

    exit_code = 1


class InputError(FreshbatchError):
    """Bad flags, a bad course.yaml, an unreadable input file, a changed batch plan."""

    exit_code = 2


class LockedError(InputError):
    """Another run holds the course lock."""


class WriteError(FreshbatchError):
    """The run's files cannot be written (disk full, a folder made read-only mid-run)."""

    exit_code = 3


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP: stop like Ctrl-C, exit 128 + the signal number."""

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(name)
        self.signum = signum
        self.exit_code = 128 + signum


class ProviderError(FreshbatchError):
    """A provider failure no retry can fix: credentials, unknown model, missing binary.

    `usage` is what the failed call(s) still cost (a CLI may bill turns before it fails);
    `sent` describes what really ran, for the transcript.
    """

    exit_code = 3

    def __init__(
        self, message: str, *, usage: Usage | None = None, sent: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.usage = usage
        self.sent = sent


class TransientError(Exception):
    """A provider fault that a retry may fix (429, 529, 5xx, timeout, dropped connection)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        usage: Usage | None = None,
        limits: RateLimits | None = None,
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        self.usage = usage  # what the failed call still cost, when the provider knows
        self.limits = limits  # the rate-limit headers of the failed response, if any
