"""Time stamps. File headers honour SOURCE_DATE_EPOCH, so runs can be byte-reproducible."""

from __future__ import annotations

import os
from datetime import UTC, datetime


def now_iso() -> str:
    """The current UTC time, ISO 8601 with a Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def stamp_iso() -> str:
    """The time stamp written into merged files: $SOURCE_DATE_EPOCH when set, else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return now_iso()
