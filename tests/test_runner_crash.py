"""Crash and resume (RUNNER §4): a run killed with SIGKILL at several points, then rerun.

The killed run is a subprocess (a small driver script calling freshbatch.cli.main) using the
`command` provider: a wrapper program that logs each call and answers from the demo reference.
After the kill, a rerun in-process must finish with merged files byte-identical to an
uninterrupted run's, and must not request again a batch that was staged before the kill.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, REPO, copy_demo
from tests.runner_support import (
    BATCH_SEEDS,
    EPOCH,
    MERGED,
    fast,
    load,
    merged_ids,
    pinned_reference,
    progress,
    staged,
    wait_for,
)

SUBPROCESS_TIMEOUT = 60

MODEL = textwrap.dedent("""\
    # command provider program: log the call, maybe hang (kill point a), answer from the reference
    import json, os, sys, time
    from pathlib import Path
    log, hang, reference, repo = sys.argv[1:5]
    sys.path.insert(0, repo)
    payload = json.loads(sys.stdin.read())
    meta = payload["meta"]
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"{meta['phase']} {meta['batch']} {meta['attempt']}\\n")
    if os.path.exists(hang):
        spec = json.loads(Path(hang).read_text())
        if [meta["phase"], meta["batch"]] == spec["at"] and not os.path.exists(spec["marker"]):
            Path(spec["marker"]).write_text(str(os.getpid()))
            parent, deadline = os.getppid(), time.monotonic() + 20
            while os.getppid() == parent and time.monotonic() < deadline:
                time.sleep(0.05)  # until the runner is killed (then we are orphaned)
            sys.exit(75)
    from tests.fakes.reference_model import ReferenceModel
    text = ReferenceModel(Path(reference), {(3, 2)}).answer(payload["request"])
    json.dump({"text": text, "stop_reason": "end_turn",
               "usage": {"input_tokens": 100, "output_tokens": len(text) // 4}}, sys.stdout)
""")

DRIVER = textwrap.dedent("""\
    # runs freshbatch.cli.main with a kill hook: none, stage (b), merged (d) or write (c)
    import os, signal, sys
    mode, argv = sys.argv[1], sys.argv[2:]
    import freshbatch.files as files
    import freshbatch.store as store
    if mode == "stage":
        real_stage = store.PhaseStore.stage
        def stage(self, batch, seed_ids, body):
            real_stage(self, batch, seed_ids, body)
            if self.phase == 3 and batch == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        store.PhaseStore.stage = stage
    elif mode == "merged":  # after the merged file holds batch 2, before its staged copy goes
        real_merged = store.PhaseStore.write_merged
        def write_merged(self, text):
            real_merged(self, text)
            if self.phase == 3 and '"seed_id": "S0021"' in text:
                os.kill(os.getpid(), signal.SIGKILL)
        store.PhaseStore.write_merged = write_merged
    elif mode == "write":
        # the real write_atomic runs; when it writes lego_pairs.json for the merge of batch 2,
        # the file object it opens writes half the text, syncs it, and the process dies
        real_write, real_fdopen = files.write_atomic, os.fdopen
        armed = []
        class Dying:
            def __init__(self, handle):
                self.handle = handle
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return self.handle.__exit__(*exc)
            def write(self, text):
                self.handle.write(text[: len(text) // 2])
                self.handle.flush()
                os.fsync(self.handle.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
            def __getattr__(self, name):
                return getattr(self.handle, name)
        def fdopen(fd, *args, **kwargs):
            handle = real_fdopen(fd, *args, **kwargs)
            return Dying(handle) if armed else handle
        def write_atomic(path, text, *rest, **kw):
            if path.name == "lego_pairs.json" and '"S0021"' in text:  # the merge of batch 2
                armed.append(path)
            real_write(path, text, *rest, **kw)
        files.write_atomic = write_atomic
        store.write_atomic = write_atomic  # store calls it directly for merged files
        os.fdopen = fdopen
    from freshbatch import cli
    sys.exit(cli.main(argv))
""")


class Setup:
    def __init__(self, tmp_path: Path, workspace: Workspace, reference: Path) -> None:
        self.workspace = workspace
        self.folder = workspace.courses_dir / DEMO
        self.log = tmp_path / "calls.log"
        self.hang = tmp_path / "hang.json"
        self.marker = tmp_path / "hanging.pid"
        self.model = tmp_path / "model.py"
        self.driver = tmp_path / "driver.py"
        self.stderr = tmp_path / "stderr.txt"
        self.model.write_text(MODEL, "utf-8")
        self.driver.write_text(DRIVER, "utf-8")
        self.command = (
            sys.executable,
            str(self.model),
            str(self.log),
            str(self.hang),
            str(reference),
            str(REPO),
        )

    def calls(self) -> list[tuple[int, int, int]]:
        if not self.log.is_file():
            return []
        return [
            tuple(int(x) for x in line.split())  # type: ignore[misc]
            for line in self.log.read_text("utf-8").splitlines()
        ]

    def start(self, mode: str) -> subprocess.Popen[bytes]:
        argv = [
            "--root",
            str(self.workspace.root),
            "run",
            "all",
            DEMO,
            "--provider",
            "command",
            "--command",
            shlex.join(self.command),
        ]
        env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
        with self.stderr.open("wb") as err:  # a file, not a pipe: the run never blocks on it
            return subprocess.Popen(
                [sys.executable, str(self.driver), mode, *argv],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    def finish(self, proc: subprocess.Popen[bytes]) -> tuple[int, str]:
        """Wait for the run (killing its group on timeout); return its code and stderr."""
        try:
            proc.wait(timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        return proc.returncode, self.stderr.read_text("utf-8", "replace")

    def rerun(self) -> None:
        result = run(self.workspace, "all", DEMO, fast(provider="command", command=self.command))
        assert result.ok


@pytest.fixture
def setup(
    tmp_path: Path, workspace: Workspace, demo_reference: Path, monkeypatch: pytest.MonkeyPatch
) -> Setup:
    copy_demo(workspace)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    return Setup(tmp_path, workspace, demo_reference)


def assert_identical(folder: Path, expected: dict[str, bytes]) -> None:
    for name in MERGED.values():
        assert (folder / name).read_bytes() == expected[name], f"{name} differs from a clean run"


def lego_pairs_ids(setup: Setup) -> list[str]:
    return merged_ids(setup.workspace, 3, load(setup.folder / "lego_pairs.json"))


def test_uninterrupted_subprocess_run_matches_the_reference(
    setup: Setup, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The driver and the wrapper alone (no kill) give the clean result: the baseline holds."""
    code, err = setup.finish(setup.start("none"))
    assert code == 0, err
    assert_identical(setup.folder, pinned_reference(tmp_path_factory))
    assert len(setup.calls()) == 10  # 9 batches, phase 3 batch 2 twice


def test_kill_during_an_attempt(setup: Setup, tmp_path_factory: pytest.TempPathFactory) -> None:
    setup.hang.write_text(json.dumps({"at": [3, 2], "marker": str(setup.marker)}), "utf-8")
    proc = setup.start("none")
    try:
        wait_for(setup.marker.exists, SUBPROCESS_TIMEOUT, "the attempt of phase 3 batch 2")
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its process group
        code, _ = setup.finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if setup.marker.exists():  # the hanging provider program runs in its own session
            try:
                os.kill(int(setup.marker.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    assert code == -signal.SIGKILL
    before = setup.calls()
    assert before[-1] == (3, 2, 1)
    assert lego_pairs_ids(setup) == BATCH_SEEDS[1]
    progress(setup.folder)  # parses: never half-written
    setup.rerun()
    again = setup.calls()[len(before) :]
    assert again == [(3, 2, 1), (3, 2, 2), (3, 3, 1), (5, 1, 1), (5, 2, 1), (5, 3, 1)], (
        "only the attempt in flight is lost; merged batches are not requested again"
    )
    assert_identical(setup.folder, pinned_reference(tmp_path_factory))
    assert progress(setup.folder)["status"] == "completed"


def test_kill_between_staging_and_merge(
    setup: Setup, tmp_path_factory: pytest.TempPathFactory
) -> None:
    code, err = setup.finish(setup.start("stage"))
    assert code == -signal.SIGKILL, err
    before = setup.calls()
    assert before[-1] == (3, 2, 2)
    assert staged(setup.folder, 3) == ["batch_002.json"]
    assert lego_pairs_ids(setup) == BATCH_SEEDS[1]
    setup.rerun()
    again = setup.calls()[len(before) :]
    assert not [c for c in again if c[:2] == (3, 2)], "a staged batch is never generated twice"
    assert again == [(3, 3, 1), (5, 1, 1), (5, 2, 1), (5, 3, 1)]
    assert staged(setup.folder, 3) == []
    assert_identical(setup.folder, pinned_reference(tmp_path_factory))


def test_kill_after_merge_before_the_staged_copy_is_dropped(
    setup: Setup, tmp_path_factory: pytest.TempPathFactory
) -> None:
    code, err = setup.finish(setup.start("merged"))
    assert code == -signal.SIGKILL, err
    assert staged(setup.folder, 3) == ["batch_002.json"]
    assert lego_pairs_ids(setup) == BATCH_SEEDS[1] + BATCH_SEEDS[2]
    before = setup.calls()
    setup.rerun()
    again = setup.calls()[len(before) :]
    assert again == [(3, 3, 1), (5, 1, 1), (5, 2, 1), (5, 3, 1)]
    assert staged(setup.folder, 3) == []
    # never merged twice: each seed once, and byte for byte the clean result
    assert_identical(setup.folder, pinned_reference(tmp_path_factory))


def test_interrupt_exits_130_and_keeps_state(
    setup: Setup,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from freshbatch import cli
    from freshbatch.store import PhaseStore

    real_stage = PhaseStore.stage

    def stage(self: PhaseStore, batch: int, seed_ids: Any, body: Any) -> None:
        real_stage(self, batch, seed_ids, body)
        if (self.phase, batch) == (3, 2):
            raise KeyboardInterrupt

    monkeypatch.setattr(PhaseStore, "stage", stage)
    argv = [
        "--root",
        str(setup.workspace.root),
        "run",
        "all",
        DEMO,
        "--provider",
        "command",
        "--command",
        shlex.join(setup.command),
    ]
    assert cli.main(argv) == 130
    assert "interrupted" in capsys.readouterr().err
    assert progress(setup.folder)["status"] != "running"
    assert staged(setup.folder, 3) == ["batch_002.json"]
    monkeypatch.setattr(PhaseStore, "stage", real_stage)
    before = setup.calls()
    setup.rerun()
    assert not [c for c in setup.calls()[len(before) :] if c[:2] == (3, 2)]
    assert_identical(setup.folder, pinned_reference(tmp_path_factory))


def test_kill_while_writing_the_merged_file(
    setup: Setup, tmp_path_factory: pytest.TempPathFactory
) -> None:
    code, err = setup.finish(setup.start("write"))
    assert code == -signal.SIGKILL, err
    leftovers = list(setup.folder.glob(".lego_pairs.json.*.tmp"))
    assert leftovers, "the kill must have happened in the middle of writing lego_pairs.json"
    with pytest.raises(ValueError):
        json.loads(leftovers[0].read_text("utf-8"))
    # the merged file on disk is still the previous complete version: batch 1 exactly
    assert lego_pairs_ids(setup) == BATCH_SEEDS[1]
    before = setup.calls()
    assert before[-1] == (3, 2, 2)
    setup.rerun()
    again = setup.calls()[len(before) :]
    assert not [c for c in again if c[:2] == (3, 2)], "batch 2 was staged: not requested again"
    assert_identical(setup.folder, pinned_reference(tmp_path_factory))


def test_status_after_a_kill_does_not_claim_running(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    from freshbatch import cli

    code, _ = setup.finish(setup.start("stage"))
    assert code == -signal.SIGKILL
    assert cli.main(["--root", str(setup.workspace.root), "status", DEMO, "--json"]) == 0
    shown: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert shown["status"] != "running", "the killed run is gone; status must not say running"
    assert [b["status"] for b in shown["batches"] if b["phase"] == 3][:1] == ["merged"]
