"""The fixture course of the bad-input tests, and a snapshot that tells every byte apart."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
from pathlib import Path

import yaml

from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, REPO, copy_demo
from tests.runner_support import fast

BATCH_SIZE = 5  # the demo's 45 seeds: 9 batches


def build_course(root: Path, reference: Path) -> Path:
    """A workspace whose demo course has batches 1-3 of every phase merged, phase 1 batch 5
    staged, and run state (progress, events, plan, transcripts) from two runs."""
    for name in ("intelligence", "validators"):
        shutil.copytree(REPO / name, root / name)
    (root / "courses").mkdir()
    workspace = Workspace(root)
    copy_demo(workspace)
    folder = workspace.courses_dir / DEMO
    config = yaml.safe_load((folder / "course.yaml").read_text("utf-8"))
    config["batch_size"] = BATCH_SIZE
    (folder / "course.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    model = (sys.executable, str(REPO / "tests" / "fakes" / "reference_model.py"), str(reference))
    assert run(
        workspace, "all", DEMO, fast(provider="command", command=model, batches=(1, 2, 3))
    ).ok
    assert run(workspace, "phase1", DEMO, fast(provider="command", command=model, batches=(5,))).ok
    return folder


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under folder: files by SHA-256 and mode, links by target, folders by mode."""
    found: dict[str, str] = {}
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(top) / name
            info = path.lstat()
            key = str(path.relative_to(folder))
            if stat.S_ISLNK(info.st_mode):
                found[key] = "link " + os.readlink(path)
            elif stat.S_ISDIR(info.st_mode):
                found[key] = f"dir {info.st_mode:o}"
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[key] = f"file {info.st_mode:o} {digest}"
    return found
