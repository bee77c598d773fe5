"""--batch-timeout: a batch whose attempts together take longer fails (rule batch-timeout),
for every provider; the run then goes on per the failure policy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from freshbatch import cli
from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.fakes.messages_api import Reply
from tests.runner_support import (
    BATCH_SEEDS,
    batch_entry,
    fast,
    load,
    phase1_answer,
    requested,
    transcript,
    use_reference,
)

FAKE = str(Path(__file__).parent / "fakes" / "fake_command.py")


def test_a_slow_command_fails_its_batch_at_the_batch_timeout(
    workspace: Workspace, demo: str, capsys: Any
) -> None:
    # each attempt would take 30 s: the first is cut off when the batch's second is up
    command = f"{sys.executable} {FAKE} slow:30"
    argv = ["--root", str(workspace.root), "run", "phase1", demo, "--provider", "command",
            "--command", command, "--batch-timeout", "1"]  # fmt: skip
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "batch 1 failed" in err and "--batch-timeout 1s" in err
    folder = workspace.courses_dir / demo
    entry = batch_entry(folder, 1, 1)
    assert entry["status"] == "failed"
    assert [e["rule"] for e in entry["last_errors"]] == ["batch-timeout"]
    cut = transcript(folder, 1, 1, 1)
    assert cut["validation"]["valid"] is False and "batch-timeout" in cut["error"]
    assert batch_entry(folder, 1, 2)["status"] == "pending", "the default policy stops"


def test_keep_going_runs_the_later_batches_and_the_next_run_redoes_the_slow_one(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    slow = Reply.slow(3, phase1_answer(demo_reference, 1))
    use_reference(fake_api, demo_reference, script={(1, 1): [slow]})
    options = fast(provider="anthropic", batch_timeout=0.5, on_failure="keep-going")
    result = run(workspace, "phase1", demo, options)
    assert not result.ok
    (phase,) = result.phases
    assert phase.failed == [1]
    assert phase.last_issues[0].rule == "batch-timeout"
    folder = workspace.courses_dir / demo
    assert batch_entry(folder, 1, 1)["last_errors"][0]["rule"] == "batch-timeout"
    assert {batch_entry(folder, 1, n)["status"] for n in (2, 3)} == {"staged"}
    assert requested(fake_api).count((1, 1)) == 1, "no attempt starts after the deadline"

    fake_api.reset()
    assert run(workspace, "phase1", demo, fast(provider="anthropic", batch_timeout=60)).ok
    assert requested(fake_api) == [(1, 1)]
    merged = load(folder / "seed_pairs.json")["translations"]
    assert list(merged) == [s for n in (1, 2, 3) for s in BATCH_SEEDS[n]]
