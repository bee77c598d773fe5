"""Shared fixtures: isolated workspaces in tmp_path, course builders, the real SSi data."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from freshbatch.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
SHARED_SSI = REPO.parent / "shared" / "data" / "ssi"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's ANTHROPIC_* or FRESHBATCH_* settings."""
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "FRESHBATCH_")):
            monkeypatch.delenv(name)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh workspace: the repository's intelligence/ and validators/, an empty courses/."""
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copytree(REPO / "intelligence", root / "intelligence")
    shutil.copytree(REPO / "validators", root / "validators")
    (root / "courses").mkdir()
    return Workspace(root)


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def make_course(
    workspace: Workspace,
    code: str,
    sources: list[str] | None = None,
    *,
    target: str = "spa",
    known: str = "eng",
    target_name: str = "Spanish",
    known_name: str = "English",
    files: dict[str, Any] | None = None,
    **settings: Any,
) -> Path:
    """Write courses/<code>/ with canonical seeds from `sources` and the given output files."""
    folder = workspace.courses_dir / code
    folder.mkdir(parents=True)
    if sources is not None:
        seeds = [
            {"seed_id": f"S{i:04d}", "canonical_id": f"C{i:04d}", "source": text}
            for i, text in enumerate(sources, 1)
        ]
        write_json(folder / "seeds.json", seeds)
        settings.setdefault("seeds", "seeds.json")
    config = {"code": code, "target": target, "known": known, "target_name": target_name,
              "known_name": known_name, **settings}  # fmt: skip
    (folder / "course.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    for name, data in (files or {}).items():
        write_json(folder / name, data)
    return folder


@pytest.fixture
def spa_course(workspace: Workspace) -> Iterator[str]:
    """The real 668-seed spa_for_eng course, linked (never copied) from ../shared."""
    if not SHARED_SSI.is_dir():
        pytest.skip("../shared/data/ssi is not present on this machine")
    folder = workspace.courses_dir / "spa_for_eng"
    make_course(workspace, "spa_for_eng", seeds=str(SHARED_SSI / "canonical_seeds.json"))
    for name in ("seed_pairs.json", "lego_pairs.json", "lego_baskets.json"):
        (folder / name).symlink_to(SHARED_SSI / "spa_for_eng" / name)
    yield "spa_for_eng"
