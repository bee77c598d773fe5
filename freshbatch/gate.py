"""The shared rate-limit gate: a 429 or 529 pauses every worker until retry-after passed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from freshbatch.errors import ProviderError
from freshbatch.pacing import Cost, Pacer, Ticket
from freshbatch.ratelimits import RateLimits


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
        pacer: Pacer | None = None,
    ) -> None:
        self.max_pauses = max_pauses
        self.pacer = pacer
        self._pause_began = -1.0
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

    def pause(self, seconds: float, status: int | None, started: float | None = None) -> None:
        """Close the gate for everyone for `seconds` (extends, never shortens, a pause).

        A rate limit met by a request that started before the latest pause began is the
        same rate limit, not another one: it neither counts nor extends the pause."""
        with self._condition:
            now = time.monotonic()
            if started is not None and started < self._pause_began:
                return  # in flight when the pause began: its worker just waits at the gate
            if self._until <= now:  # 429s of requests already in flight during
                self._pauses += 1  # a pause are the same rate limit, not another one
                self._pause_began = now
            if self._pauses > self.max_pauses:
                self._aborted = (
                    f"rate limited {self._pauses - 1} times in a row (last: HTTP {status}); "
                    "stopping so the run can be resumed later"
                )
                self._condition.notify_all()
                raise ProviderError(self._aborted)
            self._until = max(self._until, now + seconds)
            self._paused = True
        if self.pacer is not None:
            self.pacer.paused()
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
        if self.pacer is not None:
            self.pacer.wake()

    # --- pacing (a no-op without a pacer) -------------------------------------------------

    def admit(self, cost: Cost | None) -> Ticket | None:
        """Wait until the pacer lets a request of this cost start (None: not paced)."""
        if self.pacer is None or cost is None:
            return None
        return self.pacer.acquire(cost, self._raise_if_aborted)

    def settle(
        self, ticket: Ticket | None, used: dict[str, int] | None, limits: RateLimits | None
    ) -> None:
        """A paced request ended: what it used (None if it failed) and the headers seen."""
        if self.pacer is not None and ticket is not None:
            self.pacer.release(ticket, used, limits)
        elif self.pacer is not None and limits is not None:
            self.pacer.observe(limits)

    def fit_max_tokens(self, max_tokens: int) -> int:
        return self.pacer.fit_max_tokens(max_tokens) if self.pacer is not None else max_tokens

    def _raise_if_aborted(self) -> None:
        if self._aborted is not None:
            raise ProviderError(self._aborted)
