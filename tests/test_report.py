"""The run report and its drift figures, checked against figures worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from freshbatch import cli
from freshbatch.report import course_report, percentile
from freshbatch.report_render import render_html, render_markdown
from freshbatch.runner import run
from freshbatch.validation import validate_phase
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, copy_demo
from tests.fakes.messages_api import Reply
from tests.runner_support import fast, phase1_answer, use_reference


def phase_of(report: dict[str, Any], number: int) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in report["phases"] if p["phase"] == number)
    return found


@pytest.fixture
def replayed(workspace: Workspace) -> Workspace:
    """The demo after a replay of its recordings: phase 3 batch 2 and phase 5 batch 3 took
    two attempts (tiling-exact, then vocabulary-gate on the first)."""
    copy_demo(workspace, with_recordings=True)
    assert run(workspace, "all", DEMO, fast(provider="replay")).ok
    return workspace


def test_report_of_a_replayed_demo(replayed: Workspace) -> None:
    report = course_report(replayed, DEMO)
    assert [p["phase"] for p in report["phases"]] == [1, 3, 5]
    three = phase_of(report, 3)
    assert (three["completed"], three["partial"], three["failed"], three["pending"]) == (3, 0, 0, 0)
    assert three["success_rate"] == 1.0
    assert three["first_attempt_pass_rate"] == round(2 / 3, 4)
    assert three["attempts"] == 4  # 1 + 2 + 1
    assert three["retry_rules"] == [{"rule": "tiling-exact", "attempts": 1}]
    assert three["wall_seconds"]["batches"] == 3
    assert three["cost_usd"] > 0 and three["tokens"]["output"] > 0
    rows = three["drift"]["batches"]
    assert [r["attempts"] for r in rows] == [1, 2, 1]
    assert [r["first_attempt_valid"] for r in rows] == [True, False, True]
    assert rows[1]["first_errors_per_seed"] == 0.05  # one tiling-exact error over 20 seeds
    assert rows[1]["first_errors_by_rule"] == {"tiling-exact": 1}
    assert [r["merged_errors_per_seed"] for r in rows] == [0.0, 0.0, 0.0]
    assert three["drift"]["size_unit"] == "LEGOs per seed"
    five = phase_of(report, 5)["drift"]["batches"]
    assert five[2]["first_errors_per_seed"] == 0.2  # one vocabulary-gate error over 5 seeds
    assert (
        "first-attempt errors per seed 0.00 → 0.20 (worse)"
        in phase_of(report, 5)["drift"]["verdict"]
    )


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0.9) == 9.0
    assert percentile([4.0], 0.9) == 4.0
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0


def test_report_lists_a_failed_batch_with_its_errors(
    workspace: Workspace, demo: str, demo_reference: Path, fake_api: Any
) -> None:
    bad = Reply.message(phase1_answer(demo_reference, 2, drop=("S0030",)))
    use_reference(fake_api, demo_reference, script={(1, 2): [bad, bad]})
    result = run(workspace, "phase1", demo, fast(provider="anthropic", max_attempts=2))
    assert not result.ok
    one = phase_of(course_report(workspace, demo), 1)
    assert (one["completed"], one["failed"]) == (1, 1)
    assert one["success_rate"] == 0.5
    assert one["first_attempt_pass_rate"] == 0.5
    failed = one["failed_batches"]
    assert [(f["batch"], f["attempts"]) for f in failed] == [(2, 2)]
    assert any("S0030" in e["message"] for e in failed[0]["last_errors"])
    assert one["retry_rules"][0]["attempts"] == 2
    assert "failed: batch 2" in render_markdown(course_report(workspace, demo))


@pytest.mark.realdata
def test_report_on_the_real_spa_course_from_its_merged_files(
    workspace: Workspace, spa_course: str
) -> None:
    report = course_report(workspace, spa_course)
    for number in (1, 3, 5):
        phase = phase_of(report, number)
        assert phase["completed"] == 34 and phase["first_attempt_pass_rate"] is None
        rows = phase["drift"]["batches"]
        assert len(rows) == 34 and all(r["merged"] for r in rows)
        errors = sum(round(r["merged_errors_per_seed"] * r["seeds"]) for r in rows)
        assert errors == validate_phase(workspace, str(number), spa_course).stats["errors"]
    verdict = phase_of(report, 3)["drift"]["verdict"]
    assert verdict.startswith("phase3, first third vs last third")
    assert "merged errors per seed" in verdict and "LEGOs per seed" in verdict


def test_report_command_formats(replayed: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    root = ["--root", str(replayed.root), "report", DEMO]
    assert cli.main([*root, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["course"] == DEMO
    assert cli.main([*root, "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert page.count('<svg class="drift-chart"') == 3 and "<script" not in page
    assert 'data-figure="first_errors_per_seed"' in page
    assert cli.main(root) == 0
    text = capsys.readouterr().out
    assert "## phase3" in text and "first-attempt pass rate 67%" in text


def test_run_ends_with_the_short_report(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_demo(workspace, with_recordings=True)
    argv = ["--root", str(workspace.root), "run", "phase1", DEMO, "--provider", "replay"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "phase1:" in out and "success rate 100%, first-attempt pass rate 100%" in out


def test_report_of_a_course_with_nothing_yet(workspace: Workspace, demo: str) -> None:
    report = course_report(workspace, demo)
    assert report["phases"] == []
    assert "Nothing to report" in render_html(report)
