"""Helpers for the throughput tests (scheduler, gate, cache, pricing, plan, Message Batches).

`ServerLog` records, on one timeline shared with the run's progress events, when every
POST /v1/messages arrived at the fake server and when its response started, and how many
requests were at the server at once (arrived, response not started yet: such a request is
certainly still in flight at the client). Only orderings are compared, never durations.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from freshbatch.progress import Progress
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, REPO, copy_demo
from tests.fakes import messages_api
from tests.fakes.messages_api import Reply
from tests.runner_support import ScriptedResponder

Key = tuple[int, int, int]  # phase, batch, attempt


def attempt_of(body: dict[str, Any]) -> int:
    return 1 + sum(1 for m in body["messages"] if m["role"] == "assistant")


def key_of(body: dict[str, Any]) -> Key:
    from tests.runner_support import batch_of_request

    phase, batch = batch_of_request(body)
    return phase, batch, attempt_of(body)


@dataclass
class Mark:
    seq: int
    time: float
    kind: str  # "arrive", "respond", or a progress event name
    key: Key | None = None
    status: int = 200
    data: dict[str, Any] = field(default_factory=dict)


class ServerLog:
    """Wraps the fake server's responder and response writer to record a timeline.

    `delay(key)` gives a reply's delay in seconds (the server waits outside its lock);
    `hold(key, status)`, asked when the response is about to be written, may return an
    Event the response then waits for.
    """

    def __init__(
        self,
        api: Any,
        monkeypatch: pytest.MonkeyPatch,
        base: Callable[[dict[str, Any]], Reply],
        delay: Callable[[Key], float] | None = None,
    ) -> None:
        self.api = api
        self.base = base
        self.delay = delay or (lambda key: 0.0)
        self.hold: Callable[[Key, int], threading.Event | None] = lambda key, status: None
        self.marks: list[Mark] = []
        self.waiting = 0  # arrived, response not started
        self.max_waiting = 0
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._local = threading.local()
        api.stream_chunk_chars = 1 << 20
        api.responder = self._respond
        original = messages_api._Handler._write
        log = self

        def write(handler: Any, outcome: Any) -> None:
            key = getattr(log._local, "key", None)
            if key is not None:
                log._local.key = None
                event = log.hold(key, outcome.status)
                if event is not None:
                    event.wait(10)
                with log._lock:
                    log.waiting -= 1
                log.mark("respond", key, status=outcome.status)
            original(handler, outcome)

        monkeypatch.setattr(messages_api._Handler, "_write", write)

    def _respond(self, body: dict[str, Any]) -> Reply:
        key = key_of(body)
        reply = self.base(body)
        with self._lock:
            self.waiting += 1
            self.max_waiting = max(self.max_waiting, self.waiting)
        self.mark("arrive", key)
        self._local.key = key
        delay = self.delay(key)
        return dataclasses.replace(reply, delay=delay) if delay else reply

    def mark(self, kind: str, key: Key | None = None, **kw: Any) -> Mark:
        with self._lock:
            item = Mark(next(self._seq), time.monotonic(), kind, key, **kw)
            self.marks.append(item)
            return item

    def listener(self, on_event: Callable[[str, dict[str, Any]], None] | None = None) -> Any:
        """A `listen=` argument for run(): puts every progress event on the timeline."""

        def attach(progress: Progress) -> None:
            def hear(name: str, data: dict[str, Any]) -> None:
                self.mark(name, data=dict(data))
                if on_event is not None:
                    on_event(name, data)

            progress.listen(hear)

        return attach

    # --- queries ------------------------------------------------------------------------

    def arrivals(self, phase: int | None = None) -> list[Mark]:
        return [
            m
            for m in self.marks
            if m.kind == "arrive" and (phase is None or (m.key and m.key[0] == phase))
        ]

    def first(self, kind: str, **match: Any) -> Mark:
        for m in self.marks:
            if m.kind == kind and all(m.data.get(k) == v for k, v in match.items()):
                return m
        raise AssertionError(f"no {kind} event matching {match}")

    def responded(self, key: Key) -> Mark:
        for m in self.marks:
            if m.kind == "respond" and m.key == key:
                return m
        raise AssertionError(f"no response was written for {key}")

    def arrived(self, key: Key) -> Mark:
        for m in self.marks:
            if m.kind == "arrive" and m.key == key:
                return m
        raise AssertionError(f"no request arrived for {key}")


def scripted(reference: Path, **kw: Any) -> ScriptedResponder:
    return ScriptedResponder(reference, **kw)


def small_batches(workspace: Workspace, batch_size: int = 5, code: str = DEMO) -> str:
    """The demo course with smaller batches (45 seeds, 5 a batch: 9 batches)."""
    copy_demo(workspace)
    path = workspace.courses_dir / code / "course.yaml"
    config = yaml.safe_load(path.read_text("utf-8"))
    config["batch_size"] = batch_size
    path.write_text(yaml.safe_dump(config), "utf-8")
    return code


def new_workspace(root: Path) -> Workspace:
    """Another fresh workspace (the repository's phases, an empty courses/)."""
    root.mkdir(parents=True)
    shutil.copytree(REPO / "intelligence", root / "intelligence")
    shutil.copytree(REPO / "validators", root / "validators")
    (root / "courses").mkdir()
    return Workspace(root)


def write_settings(workspace: Workspace, settings: dict[str, Any]) -> Path:
    path = workspace.root / "freshbatch.yaml"
    path.write_text(yaml.safe_dump(settings), "utf-8")
    return path


def read_progress(course_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (course_dir / ".freshbatch" / "progress.json").read_text("utf-8")
    )
    return data
