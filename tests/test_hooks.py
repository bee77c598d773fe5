"""Hooks: real subprocesses on chosen events, off the workers' path."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from freshbatch import cli
from freshbatch.errors import InputError
from freshbatch.hooks import REDACTED, parse_hooks, payload
from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, REPO, TEST_KEY, copy_demo
from tests.runner_support import assert_same_content, events, fast

RECORD = str(REPO / "tests" / "fakes" / "hook_record.py")


def received(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def write_settings(workspace: Workspace, hooks: list[dict[str, Any]]) -> None:
    (workspace.root / "freshbatch.yaml").write_text(yaml.safe_dump({"hooks": hooks}), "utf-8")


@pytest.fixture
def replay_demo(workspace: Workspace) -> Path:
    copy_demo(workspace, with_recordings=True)
    return workspace.courses_dir / DEMO


def test_hooks_receive_each_chosen_event_once(
    workspace: Workspace, replay_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEY)
    out = tmp_path / "events.txt"
    on = ["run:start", "batch:merged", "run:end"]
    write_settings(workspace, [{"on": on, "run": [sys.executable, RECORD, str(out)]}])
    assert run(workspace, "phase1", DEMO, fast(provider="replay")).ok
    got = received(out)
    assert [e["event"] for e in got] == ["run:start", *["batch:merged"] * 3, "run:end"]
    assert sorted(e["batch"] for e in got if e["event"] == "batch:merged") == [1, 2, 3]
    assert got[-1]["status"] == "completed"
    assert all(e["course"] == DEMO and e["env_event"] == e["event"] for e in got)
    assert not any(e["saw_api_key"] for e in got)
    assert TEST_KEY not in out.read_text("utf-8")


def test_failing_and_hanging_hooks_change_nothing(
    workspace: Workspace, replay_demo: Path, demo_reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "events.txt"
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    fail = [sys.executable, "-c", "import sys; sys.exit('no route to the chat server')"]
    write_settings(
        workspace,
        [
            {"on": "batch:merged", "run": hang, "timeout": 0.3},
            {"on": ["batch:merged"], "run": fail},
            {"on": "run:end", "run": f"'{sys.executable}' '{RECORD}' '{out}'", "shell": True},
        ],
    )
    assert run(workspace, "all", DEMO, fast(provider="replay")).ok
    assert_same_content(replay_demo, demo_reference, (1, 3, 5))
    failures = [e for e in events(replay_demo) if e["event"] == "hook:failed"]
    reasons = {(f["on"], f["reason"].split(":")[0].split(" after")[0]) for f in failures}
    assert reasons == {("batch:merged", "timed out"), ("batch:merged", "exit status 1")}
    assert len(failures) == 2 * 9  # 3 phases of 3 batches, two failing hooks each
    assert any("no route to the chat server" in f["reason"] for f in failures)
    assert [e["event"] for e in received(out)] == ["run:end"]  # the shell hook ran after


def test_notify_runs_on_run_end(workspace: Workspace, replay_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "notified.txt"
    notify = f"{sys.executable} {RECORD} {out}"
    argv = ["--root", str(workspace.root), "run", "phase1", DEMO, "--provider", "replay"]
    assert cli.main([*argv, "--notify", notify]) == 0
    got = received(out)
    assert [(e["event"], e["status"]) for e in got] == [("run:end", "completed")]


def test_payload_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-0123456789")
    key_shaped = "-".join(
        ["sk", "ant", "api03", "x" * 22]
    )  # built here: no key-shaped text on disk
    data = {"message": f"401 for {key_shaped} and tok-0123456789"}
    text = payload("c", "batch:failed", {"errors": [data]}).decode()
    assert "tok-0123456789" not in text and key_shaped not in text
    assert text.count(REDACTED) == 2


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ([{"on": "batch:done", "run": "x"}], "unknown event 'batch:done'"),
        ([{"on": "run:end", "run": "x", "when": 1}], "unknown key 'when'"),
        ([{"on": "run:end"}], "run must be"),
        ([{"on": "run:end", "run": "x", "timeout": 0}], "timeout must be"),
        ({"on": "run:end"}, "hooks must be a list"),
    ],
)
def test_bad_hooks_are_refused(raw: Any, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        parse_hooks(raw, "freshbatch.yaml")


def test_course_yaml_takes_hooks(workspace: Workspace, replay_demo: Path) -> None:
    config = yaml.safe_load((replay_demo / "course.yaml").read_text("utf-8"))
    config["hooks"] = [{"on": "*", "run": ["true"]}]
    (replay_demo / "course.yaml").write_text(yaml.safe_dump(config), "utf-8")
    hook = workspace.load_course(DEMO).hooks[0]
    assert hook.wants("batch:merged") and not hook.wants("hook:failed")
