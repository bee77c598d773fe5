"""The account's rate limits as a response's `anthropic-ratelimit-*` headers state them.

Each of requests, input tokens and output tokens per minute comes as `-limit` (the bucket's
size), `-remaining` (what is left now) and `-reset` (RFC 3339: when the bucket is full again).
The buckets refill continuously, at limit/60 per second.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

KINDS = ("requests", "input-tokens", "output-tokens")


@dataclass(frozen=True)
class Limit:
    """One bucket: its size per minute and what was left when the response was sent."""

    limit: int
    remaining: int

    @property
    def per_second(self) -> float:
        return self.limit / 60.0


@dataclass(frozen=True)
class RateLimits:
    """The buckets a response described, and when (time.monotonic) it was received."""

    buckets: Mapping[str, Limit]
    observed_at: float

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str], observed_at: float | None = None
    ) -> RateLimits | None:
        """The buckets named in `headers` (any mapping with lower-case or mixed keys)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        buckets: dict[str, Limit] = {}
        for kind in KINDS:
            limit = _int(lowered.get(f"anthropic-ratelimit-{kind}-limit"))
            remaining = _int(lowered.get(f"anthropic-ratelimit-{kind}-remaining"))
            if limit and remaining is not None:
                buckets[kind] = Limit(limit, remaining)
        if not buckets:
            return None
        return cls(buckets, time.monotonic() if observed_at is None else observed_at)

    def get(self, kind: str) -> Limit | None:
        return self.buckets.get(kind)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def parse_reset(value: str | None) -> float | None:
    """Seconds from now until an RFC 3339 `-reset` time, or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(moment.timestamp() - time.time(), 0.0)
