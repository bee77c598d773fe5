"""The runner's disk state (RUNNER §2, §4): lock, batch plan, merged files, staging, resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

import freshbatch.progress
from freshbatch import cli
from freshbatch.runner import run
from freshbatch.store import course_lock
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, copy_demo
from tests.runner_support import (
    BATCH_SEEDS,
    MERGED,
    assert_same_content,
    batch_entry,
    fast,
    load,
    merged_ids,
    requested,
    snapshot,
    staged,
    use_reference,
)


@pytest.fixture
def api(fake_api: Any, demo_reference: Path) -> Any:
    use_reference(fake_api, demo_reference)
    return fake_api


def run_cli(workspace: Workspace, *args: str) -> int:
    return cli.main(["--root", str(workspace.root), "run", *args])


@pytest.fixture
def replay_course(workspace: Workspace) -> Path:
    """The demo with its recordings, phase 1 already merged by replay."""
    copy_demo(workspace, with_recordings=True)
    assert run(workspace, "phase1", DEMO, fast(provider="replay")).ok
    return workspace.courses_dir / DEMO


def test_second_run_stops_at_the_lock_touching_nothing(
    workspace: Workspace, replay_course: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    course = workspace.load_course(DEMO)
    with course_lock(course):
        before = snapshot(replay_course)
        assert run_cli(workspace, "phase3", DEMO, "--provider", "replay") == 2
        after = snapshot(replay_course)
    err = capsys.readouterr().err
    assert "another freshbatch run" in err and DEMO in err
    assert after == before, "a locked-out run must not change any file"
    # once the lock is free the same command works
    assert run_cli(workspace, "phase3", DEMO, "--provider", "replay") == 0
    assert (replay_course / "lego_pairs.json").is_file()


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("batch_size", 10, ("batch_size", "20", "10")),
        ("seed_range", [1, 40], ("S0040", "S0045")),
    ],
)
def test_changed_batch_plan_after_a_merge_is_refused(
    workspace: Workspace,
    replay_course: Path,
    capsys: pytest.CaptureFixture[str],
    setting: str,
    value: Any,
    named: tuple[str, ...],
) -> None:
    config = replay_course / "course.yaml"
    data = yaml.safe_load(config.read_text("utf-8"))
    assert data["batch_size"] == 20 and "seed_range" not in data
    data[setting] = value
    config.write_text(yaml.safe_dump(data), "utf-8")
    before = snapshot(replay_course)
    assert run_cli(workspace, "phase3", DEMO, "--provider", "replay") == 2
    err = capsys.readouterr().err
    assert "course.yaml" in err
    for text in named:
        assert text in err
    assert snapshot(replay_course) == before


def test_merged_file_holding_part_of_a_batch_is_refused(
    workspace: Workspace, demo_reference: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_demo(workspace, with_recordings=True)
    folder = workspace.courses_dir / DEMO
    doc = load(demo_reference / "seed_pairs.json")
    keep = [f"S{i:04d}" for i in range(1, 31)]  # batch 1 and half of batch 2
    doc["translations"] = {k: v for k, v in doc["translations"].items() if k in keep}
    doc["total_seeds"] = len(keep)
    (folder / "seed_pairs.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2), "utf-8")
    before = (folder / "seed_pairs.json").read_bytes()
    assert run_cli(workspace, "phase1", DEMO, "--provider", "replay") == 2
    err = capsys.readouterr().err
    assert "seed_pairs.json" in err and "S0021" in err
    assert (folder / "seed_pairs.json").read_bytes() == before
    assert not (folder / "lego_pairs.json").exists()
    assert staged(folder, 1) == []
    assert not (folder / ".freshbatch" / "transcripts").exists(), "nothing may be requested"
    assert not (folder / ".freshbatch" / "progress.json").exists(), "nor any state written"
    assert not (folder / ".freshbatch" / "plan.json").exists()


def test_temporary_files_a_killed_run_left_are_removed(
    workspace: Workspace, demo: str, api: Any
) -> None:
    folder = workspace.courses_dir / demo
    (folder / ".seed_pairs.json.abc123.tmp").write_text('{"half": ', "utf-8")
    (folder / ".freshbatch" / "staging" / "phase1").mkdir(parents=True)
    (folder / ".freshbatch" / "staging" / "phase1" / ".batch_002.json.x.tmp").write_text("{")
    assert run(workspace, "phase1", demo, fast()).ok
    assert sorted(p.name for p in folder.glob(".*.tmp")) == []
    assert list((folder / ".freshbatch" / "staging").rglob("*.tmp")) == []


def test_resume_finds_merged_batches_in_the_merged_file(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    assert run(workspace, "phase1", demo, fast(batches=(1, 2))).ok
    assert requested(api) == [(1, 1), (1, 2)]
    folder = workspace.courses_dir / demo
    assert list(load(folder / "seed_pairs.json")["translations"]) == BATCH_SEEDS[1] + BATCH_SEEDS[2]
    shutil.rmtree(folder / ".freshbatch")  # progress.json, plan record, staging: all gone
    api.reset()
    result = run(workspace, "phase1", demo, fast())
    assert result.ok
    assert requested(api) == [(1, 3)], "merged batches must not be requested again"
    assert_same_content(folder, demo_reference, (1,))
    assert batch_entry(folder, 1, 1)["status"] == "merged"


def test_batches_option_runs_one_batch_which_waits_staged(
    workspace: Workspace, demo: str, api: Any
) -> None:
    result = run(workspace, "phase1", demo, fast(batches=(2,)))
    assert result.ok
    assert requested(api) == [(1, 2)]
    folder = workspace.courses_dir / demo
    assert not (folder / "seed_pairs.json").exists(), "batch 2 may not merge before batch 1"
    assert staged(folder, 1) == ["batch_002.json"]
    assert batch_entry(folder, 1, 2)["status"] == "staged"
    assert batch_entry(folder, 1, 1)["status"] == "pending"


def test_staged_batch_is_merged_later_without_a_new_request(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    assert run(workspace, "phase1", demo, fast(batches=(2,))).ok
    api.reset()
    assert run(workspace, "phase1", demo, fast()).ok
    assert requested(api) == [(1, 1), (1, 3)], "the staged batch 2 is never generated twice"
    folder = workspace.courses_dir / demo
    assert staged(folder, 1) == []
    assert_same_content(folder, demo_reference, (1,))
    assert [batch_entry(folder, 1, n)["status"] for n in (1, 2, 3)] == ["merged"] * 3


def test_staged_batch_is_validated_again_before_merge(
    workspace: Workspace, demo: str, api: Any, demo_reference: Path
) -> None:
    assert run(workspace, "phase1", demo, fast(batches=(2,))).ok
    folder = workspace.courses_dir / demo
    path = folder / ".freshbatch" / "staging" / "phase1" / "batch_002.json"
    data = load(path)
    data["body"]["translations"].pop("S0025")  # spoiled on disk: must not be merged
    path.write_text(json.dumps(data), "utf-8")
    api.reset()
    assert run(workspace, "phase1", demo, fast()).ok
    assert requested(api) == [(1, 1), (1, 2), (1, 3)]
    assert_same_content(folder, demo_reference, (1,))


def test_merged_file_always_holds_whole_batches_1_to_m(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    use_reference(fake_api, demo_reference, broken={(3, 2)})
    folder = workspace.courses_dir / demo
    plan = workspace.load_course(demo).plan()
    ends = {b.number: plan.seed_ids.index(b.last_seed) + 1 for b in plan}
    merges: list[tuple[int, int]] = []
    checked = [0]

    def check_files(name: str, data: dict[str, Any]) -> None:
        for phase, file in MERGED.items():
            path = folder / file
            if not path.exists():
                continue
            doc = load(path)  # parses: never a half-written file
            ids = merged_ids(workspace, phase, doc)
            assert len(ids) in (0, *ends.values()), f"{file} holds part of a batch after {name}"
            assert ids == list(plan.seed_ids[: len(ids)]), f"{file} is not batches 1..m"
            assert doc.get("total_seeds", len(ids)) == len(ids), f"{file}: header out of step"
            checked[0] += 1
        if name == "batch:merged":
            merges.append((data["phase"], data["batch"]))
            ids = merged_ids(workspace, data["phase"], load(folder / MERGED[data["phase"]]))
            assert ids == list(plan.seed_ids[: ends[data["batch"]]])

    def check_progress(name: str, data: dict[str, Any]) -> None:
        names.append(name)
        state = load(folder / ".freshbatch" / "progress.json")  # parses after every event
        errors = sorted(e.message for e in schema.iter_errors(state))
        assert not errors, f"progress.json after {name} breaks its schema: {errors[:3]}"

    def listen(progress: Any) -> None:
        progress.listen(check_files)
        progress.listen(check_progress)

    schema = Draft202012Validator(
        json.loads(
            (
                Path(freshbatch.progress.__file__).parent / "schemas" / "progress.schema.json"
            ).read_text("utf-8")
        )
    )
    names: list[str] = []
    result = run(workspace, "all", demo, fast(), listen=listen)
    assert result.ok
    assert merges == [(p, b) for p in (1, 3, 5) for b in (1, 2, 3)]
    assert checked[0] > 9
    assert_same_content(folder, demo_reference, (1, 3, 5))
    assert names[0] == "run:start" and names[-1] == "run:end"
    assert {"batch:start", "batch:attempt", "batch:invalid", "batch:staged", "batch:merged"} <= set(
        names
    )
    state = load(folder / ".freshbatch" / "progress.json")
    assert state["status"] == "completed"
    for phase in (1, 3, 5):
        counts = state["phases"][f"phase{phase}"]
        assert (counts["merged"], counts["pending"], counts["failed"]) == (3, 0, 0)
    assert state["phases"]["phase3"]["attempts"] == 4
