"""Progress: progress.json always equals the state in memory, however it is changed.

progress.json is built from per-batch encodings kept between writes, so every way a batch
entry can change must drop its kept encoding; each write is compared with a full encoding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from freshbatch.batching import plan_batches
from freshbatch.files import dump_json
from freshbatch.progress import Progress
from freshbatch.providers import Usage

SEEDS = [f"S{n:04d}" for n in range(1, 46)]  # 3 batches: 20, 20, 5


def make(folder: Path) -> Progress:
    return Progress(folder, "demo", plan_batches(SEEDS, 20), [1, 3])


def on_disk(progress: Progress) -> str:
    return progress.path.read_text("utf-8")


def test_every_write_equals_a_full_encoding(tmp_path: Path) -> None:
    progress = make(tmp_path)
    written: list[tuple[str, str, str]] = []

    def compare(name: str, data: dict[str, Any]) -> None:
        written.append((name, on_disk(progress), dump_json(progress.state)))

    progress.listen(compare)
    progress.start_run({"provider": "replay"})
    progress.batch_started(1, 1)
    progress.attempt_done(1, 1, 1, Usage(10, 20, 30, 0), 0.5, [{"message": "bad", "rule": "x"}])
    progress.attempt_done(1, 1, 2, Usage(1, 2, 0, 30), 0.25, [])
    progress.batch_finished(1, 1, "staged")
    progress.batch_finished(1, 1, "merged", produced="20 seeds")
    progress.batch_started(3, 1)
    progress.set_batch_status(1, 2, "staged")
    progress.pause(429, 1.5)
    progress.resume()
    progress.warn(3, "no cache")
    progress.end_run("idle")  # the running phase 3 batch 1 goes back to pending
    names = [name for name, _, _ in written]
    assert names[:4] == ["run:start", "batch:start", "batch:attempt", "batch:invalid"]
    assert names[-1] == "run:end"
    for name, disk, full in written:
        assert disk == full, f"progress.json after {name} is not the state in memory"
    final = json.loads(on_disk(progress))
    entry = next(b for b in final["batches"] if (b["phase"], b["batch"]) == (1, 1))
    assert (entry["status"], entry["attempts"], entry["cost_usd"]) == ("merged", 2, 0.75)
    assert entry["tokens"] == {"input": 11, "output": 22, "cache_read": 30, "cache_write": 30}
    assert next(b for b in final["batches"] if (b["phase"], b["batch"]) == (1, 2))["status"] == (
        "staged"
    )
    assert next(b for b in final["batches"] if (b["phase"], b["batch"]) == (3, 1))["status"] == (
        "pending"
    )
    assert final["phases"]["phase1"]["tokens"] == entry["tokens"]
    assert final["totals"]["cost_usd"] == 0.75


def test_an_attempt_with_errors_is_one_write_and_two_event_lines(tmp_path: Path) -> None:
    progress = make(tmp_path)
    writes: list[Path] = []
    real = Progress._dump

    def counting(self: Progress) -> str:
        writes.append(self.path)
        return real(self)

    Progress._dump = counting  # type: ignore[method-assign]
    try:
        progress.attempt_done(1, 2, 1, Usage(1, 1), 0.0, [{"message": "m", "rule": "r"}])
    finally:
        Progress._dump = real  # type: ignore[method-assign]
    assert len(writes) == 1
    lines = progress.events_path.read_text("utf-8").splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["batch:attempt", "batch:invalid"]


def test_a_later_run_keeps_tokens_and_costs_of_earlier_runs(tmp_path: Path) -> None:
    first = make(tmp_path)
    first.batch_started(1, 3)
    first.attempt_done(1, 3, 1, Usage(5, 5), 0.125, [])
    first.end_run("idle")
    second = make(tmp_path)
    second.batch_started(1, 3)  # attempts restart at 0; tokens and cost are kept
    state = json.loads(on_disk(second))
    entry = next(b for b in state["batches"] if (b["phase"], b["batch"]) == (1, 3))
    assert (entry["attempts"], entry["tokens"]["input"], entry["cost_usd"]) == (0, 5, 0.125)
    assert state["totals"]["cost_usd"] == 0.125
