"""After a run, the files tell the truth: modes, progress status and counts, transcripts."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from freshbatch import files
from freshbatch.errors import ProviderError
from freshbatch.runner import RunOptions, run
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, copy_demo
from tests.fakes.messages_api import Reply
from tests.runner_support import fast, progress, run_folders


@pytest.fixture
def replay_demo(workspace: Workspace) -> Path:
    copy_demo(workspace, with_recordings=True)
    return workspace.courses_dir / DEMO


def test_outputs_and_state_get_the_umask(
    workspace: Workspace, replay_demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "_umask", [])
    old = os.umask(0o027)
    try:
        assert run(workspace, "all", DEMO, RunOptions(provider="replay")).ok
    finally:
        os.umask(old)
        files._umask.clear()
    for rel in ("seed_pairs.json", "lego_baskets.json", ".freshbatch/progress.json",
                ".freshbatch/plan.json"):  # fmt: skip
        assert stat.S_IMODE((replay_demo / rel).stat().st_mode) == 0o640, rel


def test_progress_counts_every_phase_from_its_files(
    workspace: Workspace, replay_demo: Path
) -> None:
    assert run(workspace, "phase1", DEMO, RunOptions(provider="replay")).ok
    assert run(workspace, "phase3", DEMO, RunOptions(provider="replay")).ok
    phases = progress(replay_demo)["phases"]
    assert (phases["phase1"]["merged"], phases["phase3"]["merged"]) == (3, 3)
    assert phases["phase5"]["pending"] == 3


def test_each_run_keeps_its_transcripts_apart(workspace: Workspace, replay_demo: Path) -> None:
    assert run(workspace, "phase1", DEMO, RunOptions(provider="replay", batches=(1,))).ok
    assert run(workspace, "phase1", DEMO, RunOptions(provider="replay")).ok
    first, second = run_folders(replay_demo)
    assert sorted(p.name for p in (first / "phase1").iterdir()) == ["batch_001_attempt_1.json"]
    assert "batch_001_attempt_1.json" not in [p.name for p in (second / "phase1").iterdir()]
    assert progress(replay_demo)["run"]["id"] == second.name


def test_a_stop_on_rate_limits_leaves_progress_idle(
    workspace: Workspace, fake_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_demo(workspace)
    fake_api.responder = lambda body: Reply.error(429, headers={"retry-after": "0.01"})
    with pytest.raises(ProviderError):
        run(workspace, "phase1", DEMO, fast(provider="anthropic", concurrency=3,
                                            max_consecutive_pauses=2))  # fmt: skip
    state = progress(workspace.courses_dir / DEMO)
    assert state["status"] == "idle"
    assert not [b for b in state["batches"] if b["status"] == "running"]
