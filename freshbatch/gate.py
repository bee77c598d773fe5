"""The shared rate-limit gate: a 429 or 529 pauses every worker until retry-after passed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from freshbatch.errors import ProviderError


class RateGate:
    """Workers pass through wait() before each request; pause() closes the gate for all.

    After `max_pauses` pauses in a row with no successful request between them, the run
    stops (ProviderError, exit 3) so it can be resumed later instead of spinning.
    """

    def __init__(
        self,
        max_pauses: int = 10,
        on_pause: Callable[[int | None, float], None] = lambda status, seconds: None,
        on_resume: Callable[[], None] = lambda: None,
    ) -> None:
        self.max_pauses = max_pauses
        self._on_pause = on_pause
        self._on_resume = on_resume
        self._condition = threading.Condition()
        self._until = 0.0
        self._paused = False
        self._pauses = 0
        self._aborted: str | None = None

    def wait(self) -> None:
        """Block while the gate is closed; the first worker through reports the resume."""
        with self._condition:
            while True:
                if self._aborted is not None:
                    raise ProviderError(self._aborted)
                remaining = self._until - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            resumed, self._paused = self._paused, False
        if resumed:
            self._on_resume()

    def pause(self, seconds: float, status: int | None) -> None:
        """Close the gate for everyone for `seconds` (extends, never shortens, a pause)."""
        with self._condition:
            if self._until <= time.monotonic():  # 429s of requests already in flight during
                self._pauses += 1  # a pause are the same rate limit, not another one
            if self._pauses > self.max_pauses:
                self._aborted = (
                    f"rate limited {self._pauses - 1} times in a row (last: HTTP {status}); "
                    "stopping so the run can be resumed later"
                )
                self._condition.notify_all()
                raise ProviderError(self._aborted)
            self._until = max(self._until, time.monotonic() + seconds)
            self._paused = True
        self._on_pause(status, seconds)

    def succeeded(self) -> None:
        """A request went through: the count of pauses in a row starts again."""
        with self._condition:
            self._pauses = 0

    def abort(self, reason: str) -> None:
        """Wake every waiting worker with ProviderError (the run is stopping)."""
        with self._condition:
            self._aborted = reason
            self._condition.notify_all()
