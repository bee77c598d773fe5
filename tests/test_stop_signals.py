"""SIGTERM, SIGHUP and Ctrl-C stop a run cleanly (state kept, progress idle, one line).

The run is a subprocess (the driver and `command` provider of test_runner_crash.py); after
the stop, a rerun in-process must end with merged files byte-identical to a clean run's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import DEMO, REPO
from tests.runner_support import pinned_reference, progress, wait_for
from tests.test_runner_crash import SUBPROCESS_TIMEOUT, Setup, assert_identical, setup

__all__ = ["setup"]  # the fixture, re-used

DRIVER = textwrap.dedent("""\
    # freshbatch's console entry with a stop hook: none, or a signal sent during the merge
    import os, signal, sys
    mode, argv = sys.argv[1], sys.argv[2:]
    sys.argv = ["freshbatch", *argv]
    if mode.startswith("merge-"):
        import freshbatch.store as store
        real_merged = store.PhaseStore.write_merged
        def write_merged(self, text):
            real_merged(self, text)
            if self.phase == 3 and '"seed_id": "S0021"' in text:
                os.kill(os.getpid(), getattr(signal, mode.removeprefix("merge-")))
        store.PhaseStore.write_merged = write_merged
    from freshbatch.entry import main_entry
    main_entry()
""")

STARTUP = textwrap.dedent("""\
    # Ctrl-C arrives while freshbatch is still importing its modules
    import os, signal, sys
    class Interrupting:
        def find_spec(self, name, path=None, target=None):
            if name == "freshbatch.runner":
                os.kill(os.getpid(), signal.SIGINT)
            return None
    sys.meta_path.insert(0, Interrupting())
    sys.argv = ["freshbatch", *sys.argv[1:]]
    from freshbatch.entry import main_entry
    main_entry()
""")


def stop_mid_attempt(setup: Setup, signum: int) -> tuple[int, str]:
    setup.driver.write_text(DRIVER, "utf-8")
    setup.hang.write_text(json.dumps({"at": [3, 2], "marker": str(setup.marker)}), "utf-8")
    proc = setup.start("none")
    try:
        wait_for(setup.marker.exists, SUBPROCESS_TIMEOUT, "the attempt of phase 3 batch 2")
        os.kill(proc.pid, signum)  # the runner only, as `kill` would
        return setup.finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        try:
            os.kill(int(setup.marker.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError, FileNotFoundError):
            pass


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)],
    ids=["SIGTERM", "SIGHUP", "SIGINT"],
)
def test_stop_mid_run_keeps_state_and_resumes(
    setup: Setup, signum: int, code: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    got, err = stop_mid_attempt(setup, signum)
    assert got == code, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    state = progress(setup.folder)
    assert state["status"] == "idle" and state["pid"] is None
    assert not [b for b in state["batches"] if b["status"] == "running"]
    assert (setup.folder / "seed_pairs.json").is_file(), "merged batches are kept"
    setup.rerun()
    assert_identical(setup.folder, pinned_reference(tmp_path_factory))


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_stop_during_a_merge_keeps_state_and_resumes(
    setup: Setup, name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    setup.driver.write_text(DRIVER, "utf-8")
    got, err = setup.finish(setup.start(f"merge-{name}"))
    assert got == 128 + getattr(signal, name), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert progress(setup.folder)["status"] == "idle"
    setup.rerun()
    assert_identical(setup.folder, pinned_reference(tmp_path_factory))


def test_ctrl_c_during_start_up_prints_one_line(setup: Setup, tmp_path: Path) -> None:
    driver = tmp_path / "startup.py"
    driver.write_text(STARTUP, "utf-8")
    done = subprocess.run(
        [sys.executable, str(driver), "--root", str(setup.workspace.root), "run", "all", DEMO,
         "--provider", "replay"],
        cwd=REPO, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 130, done.stderr
    assert done.stderr.splitlines() == ["interrupted; state kept, run again to resume"]
    assert not (setup.folder / ".freshbatch").exists(), "nothing was written"
