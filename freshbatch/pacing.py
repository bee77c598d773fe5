"""Pacing from the rate-limit headers: requests start only when the account's buckets can
take them, so a limited run draws few 429s instead of bursts of them.

The pacer keeps its own copy of each bucket the headers describe (requests, input tokens,
output tokens per minute), refilled at limit/60 per second. A request reserves what it is
expected to use before it starts: one request; its phase's observed input tokens; for output
either its whole `max_tokens` (where the API reserves max_tokens when a request starts) or
its phase's observed output (where the API charges what was generated). When it ends, the
reservation is settled against what it really used. Each response's headers then bring the
copy down to what the server says is left (less what was reserved since the headers were
read), never up: the server also sees other runs on the same account, so runs that share
one account back off from each other's use.

After a rate-limit pause, workers come back one at a time: the number allowed in flight
starts at 1 and grows by one every RAMP_SECONDS, up to the run's concurrency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from freshbatch.ratelimits import RateLimits

OUTPUT_CHARGES = ("reserve", "actual")
RAMP_SECONDS = 0.5  # after a pause, one more worker may start every half second
HEADROOM = 1.0  # "actual" charging: start once the bucket holds the expected output


@dataclass
class _Bucket:
    limit: int
    level: float
    updated: float

    def refill(self, now: float) -> None:
        self.level = min(float(self.limit), self.level + self.limit / 60.0 * (now - self.updated))
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` fits (a request larger than the bucket waits for it full)."""
        wanted = min(amount, float(self.limit))
        missing = wanted - self.level
        return 0.0 if missing <= 0 else missing / (self.limit / 60.0)


@dataclass(frozen=True)
class Cost:
    """What one request is expected to take from each bucket."""

    key: str  # what observations are kept by (a phase)
    max_tokens: int
    expected_output: int | None = None  # before any answer was observed (phase estimate)


@dataclass
class Ticket:
    """A started request: what it reserved, when, and (once settled) what it used."""

    cost: Cost
    started: float
    reserved: dict[str, float] = field(default_factory=dict)
    used: dict[str, int] | None = None
    settled: float | None = None


@dataclass
class _Observed:
    count: int = 0
    output: int = 0
    input: int = 0


class Pacer:
    """Admits requests within the buckets the headers describe; shared by all workers."""

    def __init__(
        self,
        concurrency: int,
        output_charge: str = "reserve",
        on_change: Callable[[dict[str, Any]], None] = lambda info: None,
        on_cap: Callable[[int, int], None] = lambda max_tokens, limit: None,
    ) -> None:
        if output_charge not in OUTPUT_CHARGES:
            raise ValueError(f"output_charge must be one of {OUTPUT_CHARGES}")
        self.concurrency = max(1, concurrency)
        self.allowed = self.concurrency
        self.output_charge = output_charge
        self.in_flight: list[Ticket] = []
        self._settled: list[Ticket] = []  # ended in the last two minutes, for _sync
        self.buckets: dict[str, _Bucket] = {}
        self.reason = "no limits seen yet"
        self._ramp_from = -3600.0
        self._observed: dict[str, _Observed] = {}
        self._on_change = on_change
        self._on_cap = on_cap
        self._capped = False
        self._condition = threading.Condition()

    # --- what a request may send and reserve --------------------------------------------

    def fit_max_tokens(self, max_tokens: int) -> int:
        """max_tokens, capped at the output bucket's size (it could never be reserved)."""
        with self._condition:
            bucket = self.buckets.get("output-tokens")
            if bucket is None or max_tokens <= bucket.limit:
                return max_tokens
            capped, first = bucket.limit, not self._capped
            self._capped = True
        if first:
            self._on_cap(max_tokens, capped)
        return capped

    def _expected(self, cost: Cost) -> dict[str, float]:
        seen = self._observed.get(cost.key)
        output = float(cost.max_tokens)
        if self.output_charge == "actual":
            first = cost.expected_output or cost.max_tokens / 4.0
            output = seen.output / seen.count if seen and seen.count else first
        return {
            "requests": 1.0,
            "input-tokens": seen.input / seen.count if seen and seen.count else 0.0,
            "output-tokens": output,
        }

    # --- admission ----------------------------------------------------------------------

    def acquire(self, cost: Cost, abort: Callable[[], None] = lambda: None) -> Ticket:
        """Block until the request fits within the buckets and the allowed concurrency."""
        with self._condition:
            while True:
                abort()
                wait = self._wait_seconds(cost)
                if wait <= 0:
                    ticket = Ticket(cost, time.monotonic(), self._expected(cost))
                    for kind, amount in ticket.reserved.items():
                        if kind in self.buckets:
                            self.buckets[kind].level -= amount
                    self.in_flight.append(ticket)
                    info = self._info()
                    break
                self._condition.wait(min(wait, 1.0))
        self._on_change(info)
        return ticket

    def _wait_seconds(self, cost: Cost) -> float:
        now = time.monotonic()
        self.allowed = min(self.concurrency, 1 + int((now - self._ramp_from) / RAMP_SECONDS))
        if len(self.in_flight) >= self.allowed:
            self.reason = f"{len(self.in_flight)} in flight, {self.allowed} allowed after a pause"
            return RAMP_SECONDS
        waits = {}
        for kind, amount in self._expected(cost).items():
            bucket = self.buckets.get(kind)
            if bucket is not None:
                bucket.refill(now)
                # an estimate of what the answer will use: keep a margin for a longer one
                margin = (
                    HEADROOM if kind == "output-tokens" and self.output_charge == "actual" else 1
                )
                waits[kind] = bucket.wait_for(amount * margin)
        kind, wait = max(waits.items(), key=lambda item: item[1], default=("", 0.0))
        if wait > 0:
            bucket = self.buckets[kind]
            self.reason = f"{kind}: {max(int(bucket.level), 0)} of {bucket.limit}/min left"
        elif self.buckets:
            self.reason = "within the limits"
        return wait

    def release(
        self, ticket: Ticket, used: dict[str, int] | None, limits: RateLimits | None
    ) -> None:
        """A request ended: settle what it reserved, learn from it, sync the headers."""
        with self._condition:
            if ticket in self.in_flight:
                self.in_flight.remove(ticket)
            now = time.monotonic()
            ticket.used, ticket.settled = used, now
            self._settled = [t for t in self._settled if now - (t.settled or now) < 120.0]
            self._settled.append(ticket)
            if used is not None:
                self._learn(ticket.cost.key, used)
                for kind, amount in used.items():
                    bucket = self.buckets.get(kind)
                    if bucket is not None:
                        bucket.refill(now)
                        bucket.level += ticket.reserved.get(kind, 0.0) - amount
                        bucket.level = min(bucket.level, float(bucket.limit))
            else:
                self._refund(ticket, now)
            if limits is not None:
                self._sync(limits, now)
            info = self._info()
            self._condition.notify_all()
        self._on_change(info)

    def observe(self, limits: RateLimits) -> None:
        """Headers seen outside a paced request: sync the buckets to them."""
        with self._condition:
            self._sync(limits, time.monotonic())
            self._condition.notify_all()

    def paused(self) -> None:
        """A rate-limit pause began: workers come back one at a time after it, one more
        every RAMP_SECONDS."""
        with self._condition:
            self._ramp_from = time.monotonic()
            self.allowed = 1
            self._condition.notify_all()

    def wake(self) -> None:
        with self._condition:
            self._condition.notify_all()

    def _learn(self, key: str, used: dict[str, int]) -> None:
        seen = self._observed.setdefault(key, _Observed())
        seen.count += 1
        seen.output += used.get("output-tokens", 0)
        seen.input += used.get("input-tokens", 0)

    def _refund(self, ticket: Ticket, now: float) -> None:
        """A request that failed before it generated anything gives its reservation back."""
        for kind, amount in ticket.reserved.items():
            bucket = self.buckets.get(kind)
            if bucket is not None and kind != "requests":
                bucket.refill(now)
                bucket.level = min(float(bucket.limit), bucket.level + amount)

    def _sync(self, limits: RateLimits, now: float) -> None:
        """Bring each bucket down to what the server holds now (never up).

        The headers were read when a response started; since then, requests this run
        started took from the server's bucket, and requests that ended gave back what
        their reservation did not use: both are replayed onto the header's figure."""
        seen = limits.observed_at
        for kind, limit in limits.buckets.items():
            server = limit.remaining + limit.per_second * max(now - seen, 0.0)
            for ticket in self.in_flight:
                if ticket.started > seen:
                    server -= ticket.reserved.get(kind, 0.0)
            for ticket in self._settled:
                if (ticket.settled or 0.0) <= seen:
                    continue
                server += self._since_header(ticket, kind, ticket.started > seen)
            bucket = self.buckets.get(kind)
            if bucket is None or bucket.limit != limit.limit:
                bucket = self.buckets[kind] = _Bucket(limit.limit, float(limit.limit), now)
            bucket.refill(now)
            bucket.level = min(bucket.level, server)

    def _since_header(self, ticket: Ticket, kind: str, started_after: bool) -> float:
        """What a request settled after the header changed in the server's bucket since."""
        used = float((ticket.used or {}).get(kind, 0))
        reserved = ticket.reserved.get(kind, 0.0)
        if ticket.used is None:  # refused or failed: the server kept nothing of it
            return 0.0
        if started_after:  # the header knew nothing of it: it took what it used
            return -used
        if kind == "output-tokens" and self.output_charge == "reserve":
            return reserved - used  # the header counted the reservation; the rest came back
        return 0.0

    def _info(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "concurrency": self.concurrency,
            "in_flight": len(self.in_flight),
            "reason": self.reason,
            "output_charge": self.output_charge,
            "limits": {
                kind: {"limit": b.limit, "available": max(int(b.level), 0)}
                for kind, b in self.buckets.items()
            },
        }
