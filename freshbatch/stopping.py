"""Stop signals: Ctrl-C, SIGTERM and SIGHUP all stop a run the same way (state kept).

The first signal raises Interrupted in the main thread; a second one while the run is
stopping is ignored, so the clean-up (progress.json `idle`) finishes; a third ends the
process at once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from freshbatch.errors import Interrupted

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
_received: list[int] = []


def _handle(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    if len(_received) == 1:
        raise Interrupted(signum, signal.Signals(signum).name)
    if len(_received) >= 3:
        os._exit(128 + signum)


def install() -> dict[int, Any]:
    """Route the stop signals to Interrupted; returns the handlers they had (main thread only)."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, _handle)
    return previous


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Stop signals raise Interrupted inside the block; the old handlers come back after it."""
    previous = install()
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if previous and all(h is not _handle for h in previous.values()):
            _received.clear()  # the outermost block: the next run starts afresh


def interrupted(exc: KeyboardInterrupt) -> tuple[str, int]:
    """The one line and the exit code for a stop: 130 for Ctrl-C, 143 SIGTERM, 129 SIGHUP."""
    if isinstance(exc, Interrupted) and exc.signum != signal.SIGINT:
        name = signal.Signals(exc.signum).name
        return f"stopped by {name}; state kept, run again to resume", exc.exit_code
    return "interrupted; state kept, run again to resume", 130
