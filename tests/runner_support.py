"""Helpers shared by the runner tests (test_runner_*.py); not a test module itself."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from freshbatch.attempts import RetryPolicy
from freshbatch.runner import RunOptions, run
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, REPO, copy_demo, reference_responder
from tests.fakes.messages_api import Reply

EPOCH = "1700000000"
FAST = RetryPolicy(base_seconds=0.01, max_seconds=0.05)
MERGED = {1: "seed_pairs.json", 3: "lego_pairs.json", 5: "lego_baskets.json"}
STAMPS = ("generated", "generated_at")
# phase 1 seeds of the demo: 45 seeds, batches of 20
BATCH_SEEDS = {
    1: [f"S{i:04d}" for i in range(1, 21)],
    2: [f"S{i:04d}" for i in range(21, 41)],
    3: [f"S{i:04d}" for i in range(41, 46)],
}
_HEADER = re.compile(r"Phase (\d+) .*? batch (\d+) of (\d+)")


def fast(**kw: Any) -> RunOptions:
    """RunOptions with quick transport backoff."""
    kw.setdefault("retry", FAST)
    return RunOptions(**kw)


def batch_of_request(body: dict[str, Any]) -> tuple[int, int]:
    """(phase, batch) of a Messages API request body, read from its batch header."""
    found = _HEADER.search(body["messages"][0]["content"])
    assert found, "the first user message must carry the batch header"
    return int(found.group(1)), int(found.group(2))


def message_bodies(api: Any) -> list[dict[str, Any]]:
    return [r.body for r in api.message_requests()]


def requested(api: Any) -> list[tuple[int, int]]:
    """(phase, batch) of every POST /v1/messages the fake server received, in order."""
    return [batch_of_request(body) for body in message_bodies(api)]


class ScriptedResponder:
    """Per-batch scripted replies first (FIFO per (phase, batch)), then the reference model."""

    def __init__(
        self,
        folder: Path,
        script: dict[tuple[int, int], list[Reply]] | None = None,
        broken: set[tuple[int, int]] | None = None,
    ) -> None:
        self.base = reference_responder(folder, broken)
        self.script = {k: list(v) for k, v in (script or {}).items()}

    def __call__(self, body: dict[str, Any]) -> Reply:
        queue = self.script.get(batch_of_request(body))
        if queue:
            return queue.pop(0)
        reply: Reply = self.base(body)
        return reply


def use_reference(api: Any, folder: Path, **kw: Any) -> ScriptedResponder:
    """Answer from the reference course; whole answers per SSE chunk (fast streaming)."""
    api.stream_chunk_chars = 1 << 20
    responder = ScriptedResponder(folder, **kw)
    api.responder = responder
    return responder


def phase1_answer(
    reference: Path, batch: int, drop: tuple[str, ...] = (), add: tuple[str, ...] = ()
) -> str:
    """A phase-1 answer for one demo batch from the reference, optionally with wrong ids."""
    translations = json.loads((reference / "seed_pairs.json").read_text("utf-8"))["translations"]
    ids = [s for s in BATCH_SEEDS[batch] if s not in drop] + list(add)
    return json.dumps({"translations": {s: translations[s] for s in ids}}, ensure_ascii=False)


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def unstamped(path: Path) -> Any:
    """A merged file's JSON without its time stamp."""
    doc = load(path)
    for name in STAMPS:
        doc.pop(name, None)
    return doc


def assert_same_content(course_dir: Path, reference: Path, phases: tuple[int, ...]) -> None:
    for phase in phases:
        name = MERGED[phase]
        assert (course_dir / name).is_file(), f"{name} was not written"
        assert unstamped(course_dir / name) == unstamped(reference / name), f"{name} differs"


def events(course_dir: Path) -> list[dict[str, Any]]:
    path = course_dir / ".freshbatch" / "events.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def event_names(course_dir: Path) -> list[str]:
    return [e["event"] for e in events(course_dir)]


def progress(course_dir: Path) -> dict[str, Any]:
    state: dict[str, Any] = load(course_dir / ".freshbatch" / "progress.json")
    return state


def batch_entry(course_dir: Path, phase: int, batch: int) -> dict[str, Any]:
    entries = [
        b for b in progress(course_dir)["batches"] if b["phase"] == phase and b["batch"] == batch
    ]
    assert len(entries) == 1, f"progress.json must list phase {phase} batch {batch} once"
    entry: dict[str, Any] = entries[0]
    return entry


def run_folders(course_dir: Path) -> list[Path]:
    """The per-run transcript folders, oldest first."""
    root = course_dir / ".freshbatch" / "transcripts"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def transcript(course_dir: Path, phase: int, batch: int, attempt: int) -> dict[str, Any]:
    """One attempt's transcript from the latest run that made one."""
    name = f"batch_{batch:03d}_attempt_{attempt}.json"
    for folder in reversed(run_folders(course_dir)):
        if (folder / f"phase{phase}" / name).is_file():
            data: dict[str, Any] = load(folder / f"phase{phase}" / name)
            return data
    raise AssertionError(f"no transcript of phase {phase} batch {batch} attempt {attempt}")


def transcripts(course_dir: Path) -> list[Path]:
    return sorted((course_dir / ".freshbatch" / "transcripts").rglob("*.json"))


def staged(course_dir: Path, phase: int) -> list[str]:
    folder = course_dir / ".freshbatch" / "staging" / f"phase{phase}"
    return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder (names relative, hidden ones too) with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def merged_ids(workspace: Workspace, phase: int, doc: dict[str, Any]) -> list[str]:
    from freshbatch.phases import load_phases

    seed_ids = workspace.load_course(DEMO).plan().seed_ids
    return list(load_phases(workspace)[phase].module.merged_seed_ids(doc, seed_ids))


_PINNED: dict[str, dict[str, bytes]] = {}


def pinned_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The three merged files of an uninterrupted replay of the demo, SOURCE_DATE_EPOCH pinned."""
    if "files" not in _PINNED:
        root = tmp_path_factory.mktemp("pinned")
        for name in ("intelligence", "validators"):
            shutil.copytree(REPO / name, root / name)
        (root / "courses").mkdir()
        workspace = Workspace(root)
        copy_demo(workspace, with_recordings=True)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
            assert run(workspace, "all", DEMO, RunOptions(provider="replay")).ok
        folder = workspace.courses_dir / DEMO
        _PINNED["files"] = {name: (folder / name).read_bytes() for name in MERGED.values()}
    return _PINNED["files"]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
