"""Rate limits for the fake Messages API: token buckets that answer 429 with real headers.

Each limit is a bucket that holds at most `limit` and refills continuously at limit/60 per
second (the API's per-minute limits work that way). Every response carries
`anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining,reset}` for the
buckets that are set (reset: RFC 3339 time at which the bucket is full again); a refused
request gets 429 `rate_limit_error` with `retry-after` (whole seconds until it would fit).

Output tokens are charged one of two ways (`output_charge`):
  reserve  max_tokens is taken when the request starts (a request whose max_tokens exceeds
           the bucket's limit never gets through); what was not used is given back when it
           ends.
  actual   the request starts while the bucket holds any tokens; its real output is taken
           (here at once: the fake knows the answer in advance), so the bucket may go below 0.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass
class Bucket:
    """A per-minute limit: `level` tokens now, refilled at limit/60 per second."""

    limit: int
    level: float
    updated: float

    def refill(self, now: float) -> None:
        self.level = min(float(self.limit), self.level + self.limit / 60.0 * (now - self.updated))
        self.updated = now

    def seconds_until(self, amount: float, now: float) -> float:
        self.refill(now)
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing / (self.limit / 60.0)

    def headers(self, name: str, now: float) -> dict[str, str]:
        self.refill(now)
        full_in = max(self.limit - self.level, 0.0) / (self.limit / 60.0)
        reset = datetime.now(UTC) + timedelta(seconds=full_in)
        prefix = f"anthropic-ratelimit-{name}"
        return {
            f"{prefix}-limit": str(self.limit),
            f"{prefix}-remaining": str(max(int(self.level), 0)),
            f"{prefix}-reset": reset.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class Admission:
    """A request let through: what it reserved, for `finish`."""

    reserved_output: int


class RateLimiter:
    """The buckets of one account; thread-safe; shared by every connection of the fake.

    `initial` is how full the buckets start (1: full, as for an account at rest)."""

    def __init__(
        self,
        *,
        requests_per_minute: int | None = None,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        output_charge: str = "reserve",
        clock: Callable[[], float] = time.monotonic,
        initial: float = 1.0,
    ) -> None:
        if output_charge not in ("reserve", "actual"):
            raise ValueError("output_charge is reserve or actual")
        self.clock = clock
        self.output_charge = output_charge
        now = clock()
        self.buckets: dict[str, Bucket] = {
            name: Bucket(limit, float(limit) * initial, now)
            for name, limit in (
                ("requests", requests_per_minute),
                ("input-tokens", input_tokens_per_minute),
                ("output-tokens", output_tokens_per_minute),
            )
            if limit
        }
        self.refused = 0
        self.admitted = 0
        self._lock = threading.Lock()

    def admit(self, max_tokens: int, input_tokens: int) -> tuple[Admission | None, dict[str, str]]:
        """Let a request through (its charge taken) or refuse it; headers either way.

        With `actual` charging, call `charge` once the answer's output is known."""
        with self._lock:
            now = self.clock()
            needs = {"requests": 1.0, "input-tokens": float(input_tokens)}
            output = self.buckets.get("output-tokens")
            if output is not None:
                needs["output-tokens"] = (
                    float(max_tokens) if self.output_charge == "reserve" else 1.0
                )
            waits = [
                self._wait(self.buckets[name], amount, now)
                for name, amount in needs.items()
                if name in self.buckets
            ]
            wait = max(waits, default=0.0)
            if wait > 0:
                self.refused += 1
                headers = self._headers(now)
                headers["retry-after"] = str(max(1, math.ceil(wait)) if math.isfinite(wait) else 60)
                return None, headers
            for name, amount in needs.items():
                if name in self.buckets and name != "output-tokens":
                    self.buckets[name].level -= amount
            reserved = 0
            if output is not None and self.output_charge == "reserve":
                reserved = max_tokens
                output.level -= reserved
            self.admitted += 1
            return Admission(reserved), self._headers(now)

    def charge(self, output_tokens: int) -> dict[str, str]:
        """`actual` charging: take an admitted request's real output; the headers after it."""
        with self._lock:
            now = self.clock()
            bucket = self.buckets.get("output-tokens")
            if bucket is not None and self.output_charge == "actual":
                bucket.refill(now)
                bucket.level -= output_tokens
            return self._headers(now)

    def finish(self, admission: Admission, output_tokens: int) -> None:
        """A request ended: give back what a reservation did not use."""
        if self.output_charge != "reserve" or "output-tokens" not in self.buckets:
            return
        with self._lock:
            bucket = self.buckets["output-tokens"]
            bucket.refill(self.clock())
            bucket.level = min(
                float(bucket.limit),
                bucket.level + max(admission.reserved_output - output_tokens, 0),
            )

    def _wait(self, bucket: Bucket, amount: float, now: float) -> float:
        if amount > bucket.limit:
            return math.inf  # never fits: the request can never get through
        return bucket.seconds_until(amount, now)

    def _headers(self, now: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, bucket in self.buckets.items():
            headers.update(bucket.headers(name, now))
        return headers
