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
    config = {
        "code": code,
        "target": target,
        "known": known,
        "target_name": target_name,
        "known_name": known_name,
        **settings,
    }
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


DEMO = "demo_ita_for_eng"
TEST_KEY = "test-only-fake-key-0123456789abcdefghij"  # not a real key, nor shaped like one


def copy_demo(workspace: Workspace, with_recordings: bool = False) -> str:
    """Copy the shipped demo course (seeds and course.yaml) into the workspace."""
    folder = workspace.courses_dir / DEMO
    shutil.copytree(
        REPO / "courses" / DEMO,
        folder,
        ignore=None if with_recordings else shutil.ignore_patterns("recordings"),
    )
    for name in ("seed_pairs.json", "lego_pairs.json", "lego_baskets.json", ".freshbatch"):
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return DEMO


@pytest.fixture(scope="session")
def demo_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo course's three merged files, made once by replaying its recordings."""
    from freshbatch.runner import RunOptions, run

    root = tmp_path_factory.mktemp("reference")
    for name in ("intelligence", "validators"):
        shutil.copytree(REPO / name, root / name)
    (root / "courses").mkdir()
    workspace = Workspace(root)
    copy_demo(workspace, with_recordings=True)
    result = run(workspace, "all", DEMO, RunOptions(provider="replay"))
    assert result.ok, "the demo recordings must replay cleanly"
    return workspace.courses_dir / DEMO


@pytest.fixture
def demo(workspace: Workspace) -> str:
    """A fresh copy of the demo course, without outputs or recordings."""
    return copy_demo(workspace)


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fake Messages API on 127.0.0.1, with the real SDK pointed at it."""
    from tests.fakes.messages_api import FakeMessagesAPI

    with FakeMessagesAPI() as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEY)
        yield api


def reference_responder(folder: Path, broken: set[tuple[int, int]] | None = None) -> Any:
    """A FakeMessagesAPI responder answering from reference course files."""
    from tests.fakes.messages_api import Reply
    from tests.fakes.reference_model import ReferenceModel

    model = ReferenceModel(folder, broken)
    return lambda body: Reply.message(model.answer(body))
