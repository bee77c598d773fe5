"""`run --dry-run`: what would run, calling no provider and writing nothing."""

from __future__ import annotations

import pytest

from freshbatch import cli
from freshbatch.workspace import Workspace
from tests.runner_support import snapshot


def test_dry_run_lists_every_batch_and_its_wait_and_writes_nothing(
    workspace: Workspace, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = workspace.courses_dir / demo
    before = snapshot(folder)
    code = cli.main(["--root", str(workspace.root), "run", "all", demo, "--dry-run"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0] == "phase1 batch 1/3 S0001-S0020: would run"
    assert "phase3 batch 2/3 S0021-S0040: would run once phase1 batches 1-2 are merged" in lines
    assert "phase5 batch 3/3 S0041-S0045: would run once phase3 batches 1-3 are merged" in lines
    assert len(lines) == 9
    assert snapshot(folder) == before


def test_dry_run_of_a_single_phase_names_the_missing_input(
    workspace: Workspace, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--root", str(workspace.root), "run", "phase3", demo, "--dry-run",
                     "--batches", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert out.strip() == (
        "phase3 batch 2/3 S0021-S0040: phase3 batch 2 needs seed_pairs.json through S0040; "
        "run phase1 first"
    )
