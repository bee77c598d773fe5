"""`freshbatch plan PHASE COURSE` (issue 4 §6): batches, tokens and cost before spending."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from freshbatch import cli
from freshbatch.phases import load_phases
from freshbatch.pricing import Pricing
from freshbatch.prompts import system_blocks
from freshbatch.providers import Usage
from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.runner_support import fast, snapshot, transcript, use_reference

M = 1_000_000


def plan_cli(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    code = cli.main(["--root", str(workspace.root), "plan", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return code, captured.out


def plan_json(workspace: Workspace, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    _, out = plan_cli(workspace, capsys, *args, "--json")
    return json.loads(out)


def prefix_tokens(workspace: Workspace, course: str, phase: int) -> int:
    phases = load_phases(workspace)
    return len("".join(system_blocks(phases[phase], workspace.load_course(course)))) // 4


def rows(doc: dict[str, Any], phase: int) -> list[dict[str, Any]]:
    return [b for b in doc["batches"] if b["phase"] == phase]


def usage_of(row: dict[str, Any]) -> Usage:
    t = row["tokens"]
    return Usage(t["input"], t["output"], t["cache_write"], t["cache_read"])


def test_plan_all_before_anything_ran(
    workspace: Workspace, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = workspace.courses_dir / demo
    before = snapshot(folder)
    _, text = plan_cli(workspace, capsys, "all", demo)
    assert text.count("3 to run") == 3, text
    assert "0 merged" in text and "$" in text
    doc = plan_json(workspace, capsys, "all", demo)
    assert [(b["phase"], b["batch"]) for b in doc["batches"]] == [
        (p, k) for p in (1, 3, 5) for k in (1, 2, 3)
    ]
    assert [(b["first_seed"], b["last_seed"]) for b in rows(doc, 1)] == [
        ("S0001", "S0020"),
        ("S0021", "S0040"),
        ("S0041", "S0045"),
    ]
    for phase, source in ((1, "request"), (3, "estimate"), (5, "estimate")):
        prefix = prefix_tokens(workspace, demo, phase)
        assert prefix > 1024
        found = rows(doc, phase)
        assert {b["input_from"] for b in found} == {source}, phase
        assert {b["output_from"] for b in found} == {"estimate"}
        first, *rest = found
        assert (first["tokens"]["cache_write"], first["tokens"]["cache_read"]) == (prefix, 0)
        for later in rest:
            assert (later["tokens"]["cache_write"], later["tokens"]["cache_read"]) == (0, prefix)
        for b in found:
            assert b["tokens"]["input"] > 0 and b["tokens"]["output"] > 0
            expected = Pricing().cost(usage_of(b), doc["model"])
            assert b["cost_usd"] == pytest.approx(expected, abs=1e-6)
    # the documented default output per seed (phase.yaml estimate:) before any merge
    assert [b["tokens"]["output"] for b in rows(doc, 1)] == [30 * 20, 30 * 20, 30 * 5]
    assert [b["tokens"]["output"] for b in rows(doc, 5)] == [810 * 20, 810 * 20, 810 * 5]
    # later batches carry more context of the seeds before them
    estimate_inputs = [b["tokens"]["input"] for b in rows(doc, 3)]
    assert estimate_inputs == [45 * 20, 45 * 20 + 25 * 20, 45 * 5 + 25 * 40]
    assert snapshot(folder) == before, "plan must write nothing"
    assert not (folder / ".freshbatch").exists()


def test_plan_json_shape_and_totals(
    workspace: Workspace, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = plan_json(workspace, capsys, "all", demo)
    assert set(doc) == {"course", "model", "via", "merged_batches", "batches", "totals"}
    assert (doc["course"], doc["model"], doc["via"]) == (demo, "claude-sonnet-4-6", "messages")
    assert doc["merged_batches"] == {"phase1": 0, "phase3": 0, "phase5": 0}
    keys = {
        "phase", "batch", "first_seed", "last_seed", "tokens", "cost_usd", "input_from",
        "output_from",
    }  # fmt: skip
    for b in doc["batches"]:
        assert set(b) == keys
        assert set(b["tokens"]) == {"input", "output", "cache_write", "cache_read"}
        assert all(isinstance(v, int) for v in b["tokens"].values())
    totals = doc["totals"]
    assert set(totals) == {"tokens", "cost_usd"}
    for name in ("input", "output", "cache_write", "cache_read"):
        assert totals["tokens"][name] == sum(b["tokens"][name] for b in doc["batches"])
    assert totals["cost_usd"] == pytest.approx(sum(b["cost_usd"] for b in doc["batches"]))
    # one phase only: its rows alone, and the text lists every batch
    one = plan_json(workspace, capsys, "phase3", demo)
    assert one["batches"] == rows(doc, 3)
    assert one["merged_batches"] == {"phase3": 0}
    _, text = plan_cli(workspace, capsys, "3", demo)
    for first, last in (("S0001", "S0020"), ("S0021", "S0040"), ("S0041", "S0045")):
        assert first in text and last in text


def test_plan_prices_follow_the_model(
    workspace: Workspace, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sonnet = plan_json(workspace, capsys, "phase1", demo)
    haiku = plan_json(workspace, capsys, "phase1", demo, "--model", "claude-haiku-4-5")
    assert haiku["model"] == "claude-haiku-4-5"
    for s, h in zip(sonnet["batches"], haiku["batches"], strict=True):
        assert h["tokens"] == s["tokens"]
        assert h["cost_usd"] == pytest.approx(s["cost_usd"] / 3, abs=2e-6)  # $1/$5 vs $3/$15


def test_plan_after_phase1_merged_uses_real_requests_for_phase3(
    workspace: Workspace,
    demo: str,
    fake_api: Any,
    demo_reference: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_reference(fake_api, demo_reference)
    assert run(workspace, "phase1", demo, fast()).ok
    folder = workspace.courses_dir / demo
    before = snapshot(folder)
    doc = plan_json(workspace, capsys, "all", demo)
    assert doc["merged_batches"] == {"phase1": 3, "phase3": 0, "phase5": 0}
    assert rows(doc, 1) == []
    assert {b["input_from"] for b in rows(doc, 3)} == {"request"}
    assert {b["input_from"] for b in rows(doc, 5)} == {"estimate"}
    assert len(rows(doc, 3)) == len(rows(doc, 5)) == 3
    _, text = plan_cli(workspace, capsys, "all", demo)
    assert "all merged" in text and text.count("3 to run") == 2
    _, text = plan_cli(workspace, capsys, "phase1", demo)
    assert "all merged" in text
    assert snapshot(folder) == before, "plan must not touch the run state"


def test_plan_estimates_output_from_merged_batches(
    workspace: Workspace,
    demo: str,
    fake_api: Any,
    demo_reference: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_reference(fake_api, demo_reference)
    assert run(workspace, "phase1", demo, fast()).ok
    estimated = plan_json(workspace, capsys, "phase3", demo)
    assert [b["output_from"] for b in estimated["batches"]] == ["estimate"] * 3
    assert [b["tokens"]["output"] for b in estimated["batches"]] == [6000, 6000, 1500]
    assert run(workspace, "phase3", demo, fast(batches=(1,))).ok
    doc = plan_json(workspace, capsys, "phase3", demo)
    assert doc["merged_batches"] == {"phase3": 1}
    assert [b["batch"] for b in doc["batches"]] == [2, 3]
    assert [b["output_from"] for b in doc["batches"]] == ["merged", "merged"]
    measured = transcript(workspace.courses_dir / demo, 3, 1, 1)["answer"]["usage"]
    per_seed = measured["output_tokens"] / 20
    assert [b["tokens"]["output"] for b in doc["batches"]] == [
        round(per_seed * 20),
        round(per_seed * 5),
    ]
    # the first batch still to run writes the cache
    prefix = prefix_tokens(workspace, demo, 3)
    assert doc["batches"][0]["tokens"]["cache_write"] == prefix
    assert doc["batches"][1]["tokens"]["cache_read"] == prefix


def test_plan_via_batches_halves_the_cost(
    workspace: Workspace, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = plan_json(workspace, capsys, "all", demo)
    batches = plan_json(workspace, capsys, "all", demo, "--via", "batches")
    assert batches["via"] == "batches"
    pricing = Pricing()
    for m, b in zip(messages["batches"], batches["batches"], strict=True):
        assert m["tokens"] == b["tokens"]
        usage = usage_of(b)
        price = pricing.price(batches["model"])
        # a 1-hour cache write costs 2x input instead of 1.25x, then everything is halved
        extra = usage.cache_creation_input_tokens * price.input * (2.0 - 1.25) / M
        assert b["cost_usd"] == pytest.approx((m["cost_usd"] + extra) / 2, abs=2e-6)
        if not usage.cache_creation_input_tokens:
            assert b["cost_usd"] == pytest.approx(m["cost_usd"] / 2, abs=2e-6)
    assert batches["totals"]["cost_usd"] < 0.55 * messages["totals"]["cost_usd"]


def test_plan_of_an_unknown_course_or_phase_exits_2(
    workspace: Workspace, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(workspace.root)
    assert cli.main(["--root", root, "plan", "all", "no_such_course"]) == 2
    assert "no_such_course" in capsys.readouterr().err
    assert cli.main(["--root", root, "plan", "phase4", demo]) == 2
    assert cli.main(["--root", root, "plan", "all", demo, "--via", "carrier"]) == 2
