"""Built-in phases and a workspace's own files: which one wins, and what rules/prompt say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from freshbatch import cli
from freshbatch.builtin import builtin_root
from freshbatch.phases import load_phases
from freshbatch.runner import prompt_request
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, REPO, copy_demo

MERGED = ("seed_pairs.json", "lego_pairs.json", "lego_baskets.json")
CUSTOM = "Our own phase 3 instructions. " * 200


def bare_workspace(root: Path, reference: Path) -> Workspace:
    """A workspace with only courses/: the demo course and its merged files, no phase files."""
    (root / "courses").mkdir(parents=True)
    workspace = Workspace(root)
    copy_demo(workspace)
    for name in MERGED:
        shutil.copyfile(reference / name, workspace.courses_dir / DEMO / name)
    return workspace


def prefix_hashes(workspace: Workspace) -> dict[int, str]:
    return {n: prompt_request(workspace, f"phase{n}", DEMO, 1).prefix_sha256 for n in (1, 3, 5)}


def test_a_checkout_reads_the_repository_folders_as_the_built_in_phases() -> None:
    assert builtin_root() == REPO


def test_a_workspace_without_phase_files_uses_the_built_in_ones(
    tmp_path: Path, demo_reference: Path, workspace: Workspace
) -> None:
    bare = bare_workspace(tmp_path / "bare", demo_reference)
    phases = load_phases(bare)
    assert sorted(phases) == [1, 3, 5]
    assert all(origin == "built-in" for p in phases.values() for _, origin in p.sources)
    # the fixture's workspace holds copies of the same files: the same prefix, byte for byte
    copy_demo(workspace)
    for name in MERGED:
        shutil.copyfile(demo_reference / name, workspace.courses_dir / DEMO / name)
    assert prefix_hashes(bare) == prefix_hashes(workspace)


def test_a_workspace_phase3_intelligence_replaces_the_built_in_one_only(
    tmp_path: Path, demo_reference: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = bare_workspace(tmp_path / "bare", demo_reference)
    before = prefix_hashes(bare)
    (bare.root / "intelligence").mkdir()
    (bare.root / "intelligence" / "phase3.md").write_text(CUSTOM, "utf-8")
    after = prefix_hashes(bare)
    assert after[3] != before[3]
    assert after[1] == before[1] and after[5] == before[5]
    assert prompt_request(bare, "phase3", DEMO, 1).system[1] == CUSTOM
    phases = load_phases(bare)
    assert dict(phases[3].sources)["phase3.md"].startswith("workspace ")
    assert dict(phases[3].sources)["phase.yaml"] == "built-in"
    assert all(o == "built-in" for n in (1, 5) for _, o in phases[n].sources)

    assert cli.main(["--root", str(bare.root), "rules", "3"]) == 0
    out = capsys.readouterr().out
    assert "phase3 files: phase.yaml built-in, phase3.md workspace " in out
    assert cli.main(["--root", str(bare.root), "prompt", "3", DEMO, "--batch", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["prefix_sha256"] == after[3]
    assert printed["files"]["phase3.md"].endswith("intelligence/phase3.md")
    assert printed["files"]["batch.schema.json"] == "built-in"
    assert cli.main(["--root", str(bare.root), "prompt", "1", DEMO, "--batch", "1", "--text"]) == 0
    assert capsys.readouterr().out.startswith("===== phase1 files: phase.yaml built-in")


def test_one_workspace_schema_overrides_the_built_in_file_and_nothing_else(
    tmp_path: Path, demo_reference: Path
) -> None:
    bare = bare_workspace(tmp_path / "bare", demo_reference)
    folder = bare.root / "validators" / "phase1"
    folder.mkdir(parents=True)
    schema = json.loads((REPO / "validators/phase1/batch.schema.json").read_text("utf-8"))
    schema["description"] = "our own"
    (folder / "batch.schema.json").write_text(json.dumps(schema), "utf-8")
    phase = load_phases(bare)[1]
    assert phase.batch_schema["description"] == "our own"
    sources = dict(phase.sources)
    assert sources["batch.schema.json"].startswith("workspace ")
    assert sources["phase.yaml"] == sources["merged.schema.json"] == "built-in"


def test_a_workspace_phase_yaml_that_clashes_with_a_built_in_phase_is_refused(
    tmp_path: Path, demo_reference: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = bare_workspace(tmp_path / "bare", demo_reference)
    (bare.root / "validators" / "p3").mkdir(parents=True)
    shutil.copyfile(REPO / "validators/phase3/phase.yaml", bare.root / "validators/p3/phase.yaml")
    assert cli.main(["--root", str(bare.root), "rules"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "phase 3 is defined twice" in err[0]
