"""Concurrency, in-order merges, warm-up and pipelining (issue 4 §1, §2, §4) against the fake API.

The demo course is cut into batches of 5 (45 seeds: 9 batches). Replies are delayed by the
fake server (outside its lock); every check compares the order of recorded moments (request
arrivals, response starts, progress events), never durations.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from freshbatch import cli, phase_run
from freshbatch.phases import load_phases
from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.runner_support import MERGED, events, fast, load
from tests.throughput_support import (
    ServerLog,
    new_workspace,
    read_progress,
    scripted,
    small_batches,
    write_settings,
)

EPOCH = "1700000000"
BATCHES = 9


@pytest.fixture
def course(workspace: Workspace) -> str:
    return small_batches(workspace)


def folder_of(workspace: Workspace, code: str) -> Path:
    return workspace.courses_dir / code


def covered_seeds(workspace: Workspace, code: str, phase: int) -> list[str]:
    """The seeds the merged file of `phase` covers, in the order the file holds them."""
    doc = load(folder_of(workspace, code) / MERGED[phase])
    seed_ids = workspace.load_course(code).plan().seed_ids
    module = load_phases(workspace)[phase].module
    if phase == 5:  # baskets: keys are LEGO ids; their seeds must come in course order
        seeds = [key[:5] for key in doc["baskets"]]
        assert seeds == sorted(seeds, key=seed_ids.index), "baskets out of seed order"
    return list(module.merged_seed_ids(doc, seed_ids))


# --- (a) several requests in flight, never more than N -----------------------------------


def test_concurrency_4_keeps_several_requests_in_flight_and_never_more_than_4(
    workspace: Workspace,
    course: str,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = ServerLog(fake_api, monkeypatch, scripted(demo_reference), delay=lambda key: 0.1)
    result = run(workspace, "phase1", course, fast(concurrency=4), listen=log.listener())
    assert result.ok
    assert len(log.arrivals()) == BATCHES
    assert log.max_waiting > 1, "with --concurrency 4 requests must overlap at the server"
    assert log.max_waiting <= 4, f"{log.max_waiting} requests in flight with --concurrency 4"
    assert log.first("run:start").data["concurrency"] == 4


def test_concurrency_defaults_to_one_without_settings(
    workspace: Workspace,
    course: str,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = ServerLog(fake_api, monkeypatch, scripted(demo_reference), delay=lambda key: 0.03)
    assert run(workspace, "phase1", course, fast(), listen=log.listener()).ok
    assert log.max_waiting == 1
    assert log.first("run:start").data["concurrency"] == 1


# --- (b) merges stay in batch order; same files as a sequential run ------------------------


def test_merges_in_batch_order_under_concurrency_and_equal_a_sequential_run(
    workspace: Workspace,
    course: str,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    plan = workspace.load_course(course).plan()
    # batch 2 of every phase is slow: batches 3.. validate first and must wait in staging
    log = ServerLog(
        fake_api,
        monkeypatch,
        scripted(demo_reference),
        delay=lambda key: 0.4 if key[1] == 2 else 0.02,
    )
    merged_so_far: dict[int, int] = {}
    problems: list[str] = []

    def check(name: str, data: dict[str, Any]) -> None:
        if name != "batch:merged":
            return
        phase, m = data["phase"], data["batch"]
        if m != merged_so_far.get(phase, 0) + 1:
            problems.append(f"phase {phase}: batch {m} merged after {merged_so_far.get(phase)}")
        merged_so_far[phase] = m
        want = [s for b in plan.batches[:m] for s in b.seed_ids]
        got = covered_seeds(workspace, course, phase)
        if got != want:
            problems.append(f"phase {phase} after merging {m}: file covers {got}")

    result = run(workspace, "all", course, fast(concurrency=4), listen=log.listener(check))
    assert result.ok
    assert not problems, problems
    assert merged_so_far == {1: BATCHES, 3: BATCHES, 5: BATCHES}
    # batches finished out of order: some later batch was staged before batch 2 merged
    for phase in (1, 3, 5):
        merged_2 = log.first("batch:merged", phase=phase, batch=2).seq
        early = [
            m.data["batch"]
            for m in log.marks
            if m.kind == "batch:staged" and m.data["phase"] == phase and m.seq < merged_2
        ]
        assert any(b > 2 for b in early), f"phase {phase}: no batch overtook batch 2 ({early})"
    # the same course run one batch at a time gives the same files, byte for byte
    other = new_workspace(tmp_path / "sequential")
    code = small_batches(other)
    fake_api.cache.reset()
    seq = ServerLog(fake_api, monkeypatch, scripted(demo_reference))
    assert run(other, "all", code, fast(concurrency=1), listen=seq.listener()).ok
    assert seq.max_waiting == 1
    for name in MERGED.values():
        concurrent = (folder_of(workspace, course) / name).read_bytes()
        sequential = (folder_of(other, code) / name).read_bytes()
        assert json.loads(concurrent) == json.loads(sequential), f"{name} differs"
        assert concurrent == sequential, f"{name} differs in bytes"


# --- (c) warm-up: per phase, the first response starts before the others are sent ---------


def test_warm_up_first_request_of_each_phase_answered_before_the_fan_out(
    workspace: Workspace,
    course: str,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    firsts: dict[int, tuple[int, int, int]] = {}
    lock = threading.Lock()

    def delay(key: tuple[int, int, int]) -> float:
        with lock:
            if key[0] not in firsts:
                firsts[key[0]] = key
                return 0.3  # a slow first response: a missing warm-up fans out meanwhile
        return 0.05

    log = ServerLog(fake_api, monkeypatch, scripted(demo_reference), delay=delay)
    assert run(workspace, "all", course, fast(concurrency=4), listen=log.listener()).ok
    assert sorted(firsts) == [1, 3, 5]
    for phase, first in firsts.items():
        arrivals = log.arrivals(phase)
        assert arrivals[0].key == first
        assert first[1:] == (1, 1), f"phase {phase} warmed up with {first}, not batch 1"
        started = log.responded(first)
        early = [m.key for m in arrivals[1:] if m.seq < started.seq]
        assert not early, f"phase {phase}: {early} sent before the first response started"
        assert len(arrivals) == BATCHES
    # the others then read the cache the first one wrote
    assert fake_api.cache.misses == 3
    assert fake_api.cache.hits == 3 * (BATCHES - 1)


# --- (d) pipelining in `run all` -----------------------------------------------------------


def test_run_all_pipelines_phases_over_aligned_batches(
    workspace: Workspace,
    course: str,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the last phase-1 batch is slow: phase 3 must not wait for it to begin
    log = ServerLog(
        fake_api,
        monkeypatch,
        scripted(demo_reference),
        delay=lambda key: 0.8 if key[:2] == (1, BATCHES) else 0.03,
    )
    assert run(workspace, "all", course, fast(concurrency=4), listen=log.listener()).ok
    last_phase1_merge = log.first("batch:merged", phase=1, batch=BATCHES)
    phase3 = log.arrivals(3)
    assert phase3 and phase3[0].seq < last_phase1_merge.seq, (
        "no phase-3 request was sent before the last phase-1 batch merged"
    )
    # a batch of a later phase starts only once the earlier phase merged batches 1..k
    for later, earlier in ((3, 1), (5, 3)):
        for k in range(1, BATCHES + 1):
            needed = max(
                log.first("batch:merged", phase=earlier, batch=j).seq for j in range(1, k + 1)
            )
            arrived = log.arrived((later, k, 1))
            assert arrived.seq > needed, f"phase {later} batch {k} sent too early"
    # the same in events.jsonl
    lines = events(folder_of(workspace, course))
    merged_at = {
        (e["phase"], e["batch"]): i for i, e in enumerate(lines) if e["event"] == "batch:merged"
    }
    starts = [(i, e) for i, e in enumerate(lines) if e["event"] == "batch:start"]
    assert {e["phase"] for _, e in starts} == {1, 3, 5}
    for i, e in starts:
        earlier = {3: 1, 5: 3}.get(e["phase"])
        if earlier is None:
            continue
        for j in range(1, e["batch"] + 1):
            assert merged_at[(earlier, j)] < i, (
                f"phase {e['phase']} batch {e['batch']} started before phase {earlier} "
                f"batch {j} merged"
            )
    first_phase3_start = min(i for i, e in starts if e["phase"] == 3)
    assert first_phase3_start < merged_at[(1, BATCHES)], "events.jsonl shows no pipelining"


# --- (e) progress shows several batches running at once ------------------------------------


def test_progress_and_events_show_several_batches_running(
    workspace: Workspace,
    course: str,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = folder_of(workspace, course)
    seen: list[int] = []
    phase_counts: list[int] = []

    def look(name: str, data: dict[str, Any]) -> None:
        if name != "batch:start":
            return
        state = read_progress(folder)
        running = [b for b in state["batches"] if b["status"] == "running"]
        seen.append(len(running))
        phase_counts.append(state["phases"]["phase1"]["running"])
        assert all(b["started_at"] for b in running)

    log = ServerLog(fake_api, monkeypatch, scripted(demo_reference), delay=lambda key: 0.1)
    assert run(workspace, "phase1", course, fast(concurrency=4), listen=log.listener(look)).ok
    assert max(seen) > 1, f"progress.json never showed two batches running: {seen}"
    assert max(seen) <= 4
    assert max(phase_counts) == max(seen)
    # events.jsonl: batch:start minus finished batches exceeds one at some line
    running, most = 0, 0
    for e in events(folder):
        if e["event"] == "batch:start":
            running += 1
        elif e["event"] in ("batch:staged", "batch:failed"):
            running -= 1
        most = max(most, running)
    assert 1 < most <= 4
    final = read_progress(folder)
    assert final["status"] == "completed"
    assert not [b for b in final["batches"] if b["status"] == "running"]


# --- (f) the workspace default concurrency; bad freshbatch.yaml ----------------------------


def test_workspace_default_concurrency_from_freshbatch_yaml(
    workspace: Workspace,
    course: str,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_settings(workspace, {"concurrency": 3})
    log = ServerLog(fake_api, monkeypatch, scripted(demo_reference), delay=lambda key: 0.1)
    assert run(workspace, "phase1", course, fast(), listen=log.listener()).ok
    assert log.first("run:start").data["concurrency"] == 3
    assert 1 < log.max_waiting <= 3
    # --concurrency wins over the workspace default
    for name in MERGED.values():
        (folder_of(workspace, course) / name).unlink(missing_ok=True)
    log2 = ServerLog(fake_api, monkeypatch, scripted(demo_reference), delay=lambda key: 0.03)
    assert run(workspace, "phase1", course, fast(concurrency=1), listen=log2.listener()).ok
    assert log2.first("run:start").data["concurrency"] == 1
    assert log2.max_waiting == 1


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("concurency: 3\n", "concurency"),
        ("concurrency: 0\n", "concurrency"),
        ("concurrency: many\n", "concurrency"),
        ("concurrency: 2.5\n", "concurrency"),
        ("- concurrency\n", "mapping"),
    ],
)
def test_bad_freshbatch_yaml_exits_2_naming_the_file(
    workspace: Workspace, course: str, capsys: pytest.CaptureFixture[str], text: str, named: str
) -> None:
    (workspace.root / "freshbatch.yaml").write_text(text, "utf-8")
    code = cli.main(
        ["--root", str(workspace.root), "run", "phase1", course, "--provider", "replay"]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "freshbatch.yaml" in err
    assert named in err
    assert not (folder_of(workspace, course) / "seed_pairs.json").exists()


@pytest.mark.parametrize("value", ["0", "257", "-1"])
def test_concurrency_flag_out_of_range_exits_2(
    workspace: Workspace, course: str, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    root = str(workspace.root)
    code = cli.main(["--root", root, "run", "phase1", course, "--provider", "replay",
                     "--concurrency", value])  # fmt: skip
    assert code == 2
    assert "--concurrency" in capsys.readouterr().err


def test_phase5_judges_against_the_lego_pairs_merged_since_it_began(
    workspace: Workspace,
    demo: str,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pipelining: phase-5 batch 1 is judged while phase-3 batches 2-3 are still out; when
    they merge, phase-5 batches 2-3 must be judged against the new lego_pairs.json (their
    LEGOs are new there), not against the state phase 5 saw when it began."""
    judged = threading.Event()

    def hold(key: tuple[int, int, int], status: int) -> threading.Event | None:
        return judged if key[0] == 3 and key[1] > 1 else None

    def note(name: str, data: dict[str, Any]) -> None:
        if name == "batch:attempt" and (data["phase"], data["batch"]) == (5, 1):
            judged.set()

    log = ServerLog(fake_api, monkeypatch, scripted(demo_reference))
    log.hold = hold
    result = run(workspace, "all", demo, fast(concurrency=3), listen=log.listener(note))
    assert judged.is_set()
    assert (
        log.first("batch:attempt", phase=5, batch=1).seq
        < log.first("batch:merged", phase=3, batch=2).seq
    ), "the scenario needs phase-5 batch 1 judged before phase-3 batch 2 merged"
    failed = [(p.phase, p.failed, [i.message for i in p.last_issues][:2]) for p in result.phases]
    assert result.ok, f"phase 5 judged with a stale lego_pairs.json: {failed}"
    assert [p.merged for p in result.phases] == [3, 3, 3]


def test_a_judgement_is_reused_at_merge_when_nothing_it_reads_has_changed(
    workspace: Workspace,
    course: str,
    fake_api: Any,
    demo_reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Phase-5 rules read lego_pairs.json alone, so a phase-5 answer is judged once, when it
    comes, however many batches merge before its turn; a phase-3 answer is judged again at
    merge only when earlier phase-3 batches merged since (its ids and new flags depend on
    them), and then without the schema, which it already passed."""
    calls: list[tuple[int, int, bool]] = []
    real_judge = phase_run.PhaseRun.judge

    def judge(self: Any, batch: Any, answer: Any, schema_checked: bool = False) -> Any:
        calls.append((self.phase.number, batch.number, schema_checked))
        return real_judge(self, batch, answer, schema_checked)

    monkeypatch.setattr(phase_run.PhaseRun, "judge", judge)
    log = ServerLog(fake_api, monkeypatch, scripted(demo_reference), delay=lambda key: 0.02)
    assert run(workspace, "all", course, fast(concurrency=4), listen=log.listener()).ok
    attempts: dict[tuple[int, int], int] = {}
    for mark in log.arrivals():
        assert mark.key is not None
        attempts[mark.key[:2]] = attempts.get(mark.key[:2], 0) + 1
    for batch in range(1, BATCHES + 1):
        judged = [c for c in calls if c[:2] == (5, batch)]
        assert len(judged) == attempts[(5, batch)], f"phase 5 batch {batch} judged again"
    fresh = [c for c in calls if c[0] == 3 and not c[2]]
    again = [c for c in calls if c[0] == 3 and c[2]]
    assert len(fresh) == sum(n for (p, _), n in attempts.items() if p == 3), "one per attempt"
    assert len(again) <= BATCHES and len({c[1] for c in again}) == len(again)
    assert 1 not in {c[1] for c in again}, "nothing merges before phase-3 batch 1"
