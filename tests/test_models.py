"""The model table, thinking and effort per model, and the fake API refusing what models refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from freshbatch import cli
from freshbatch.models import model_table
from freshbatch.runner import run
from freshbatch.thinking import request_params
from freshbatch.workspace import DEFAULT_MODEL, Workspace
from tests.fakes.messages_api import refused_parameter
from tests.runner_support import batch_entry, events, fast, use_reference
from tests.throughput_support import write_settings


def test_the_table_is_dated_sourced_and_names_the_default() -> None:
    table = model_table()
    assert table.checked == "2026-12-02"
    assert DEFAULT_MODEL == table.default_model == "claude-sonnet-5-5"
    assert table.find("claude-sonnet-4-5") is table.find("claude-sonnet-4-5-20250929")
    assert table.find("claude-opus-4-5-20251101") is table.models["claude-opus-4-5"]
    assert table.find("claude-sonnet-9") is None
    text = (Path(cli.__file__).parent / "models.yaml").read_text("utf-8")
    assert "sources:" in text and "platform.claude.com" in text


@pytest.mark.parametrize(
    ("model", "thinking", "effort", "params", "warns"),
    [
        ("claude-sonnet-5-5", None, None, {"thinking": {"type": "disabled"}}, False),
        ("claude-sonnet-5-5", "adaptive", "low",
         {"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, False),
        ("claude-opus-5-5", None, None, {}, True),  # always thinks: "disabled" would be a 400
        ("claude-opus-5", None, "max", {"output_config": {"effort": "max"}}, True),
        ("claude-opus-5", None, "high",
         {"output_config": {"effort": "high"}, "thinking": {"type": "disabled"}}, False),
        ("claude-sonnet-4-6", None, None, {}, False),  # no thinking unless asked
        ("claude-haiku-4-5", None, "low", {}, False),  # no effort parameter on Haiku 4.5
        ("some-model", "adaptive", "high", {}, False),  # unknown: nothing it might refuse
    ],
)  # fmt: skip
def test_thinking_and_effort_in_the_form_the_model_accepts(
    model: str, thinking: str | None, effort: str | None, params: dict[str, Any], warns: bool
) -> None:
    got, warning = request_params(model, thinking, effort)
    assert got == params
    assert (warning is not None) == warns
    body = {"model": model, "max_tokens": 10, "messages": [], **got}
    assert refused_parameter(body) is None  # the fake's model rules accept it


def test_the_fake_refuses_what_models_refuse() -> None:
    base = {"max_tokens": 10, "messages": []}
    assert refused_parameter({**base, "model": "claude-sonnet-5", "temperature": 0.2})
    assert refused_parameter({**base, "model": "claude-sonnet-5", "temperature": 1.0}) is None
    manual = {"type": "enabled", "budget_tokens": 2000}
    assert refused_parameter({**base, "model": "claude-sonnet-5", "thinking": manual})
    assert refused_parameter({**base, "model": "claude-opus-5-5", "thinking": {"type": "disabled"}})


def test_thinking_off_reaches_the_api_and_no_thinking_is_billed(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    use_reference(fake_api, demo_reference)
    assert run(workspace, "phase1", demo, fast(model="claude-sonnet-5-5", batches=(1,))).ok
    (body,) = [r.body for r in fake_api.message_requests()]
    assert body["thinking"] == {"type": "disabled"}
    assert not {"temperature", "top_p", "top_k"} & set(body)
    transcript = next(
        (workspace.courses_dir / demo / ".freshbatch").rglob("batch_001_attempt_1.json")
    )
    record = json.loads(transcript.read_text("utf-8"))
    assert record["request"]["thinking"] == {"type": "disabled"}
    text_tokens = max(1, len(record["answer"]["text"]) // 4)
    assert record["answer"]["usage"]["output_tokens"] == text_tokens  # no thinking billed


def test_a_model_that_always_thinks_runs_with_a_warning_and_its_thinking_priced(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    use_reference(fake_api, demo_reference)
    assert run(workspace, "phase1", demo, fast(model="claude-opus-5-5", batches=(1,))).ok
    (body,) = [r.body for r in fake_api.message_requests()]
    assert "thinking" not in body  # "disabled" would be refused
    folder = workspace.courses_dir / demo
    warnings = [e["message"] for e in events(folder) if e["event"] == "run:warning"]
    assert any("always thinks" in w for w in warnings)
    entry = batch_entry(folder, 1, 1)
    # thinking (twice the answer's tokens in the fake) is output, priced at Opus 5.5's $20/M
    assert entry["tokens"]["output"] >= 3
    assert entry["cost_usd"] >= entry["tokens"]["output"] * 20 / 1_000_000


def test_settings_choose_adaptive_thinking_and_effort(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    use_reference(fake_api, demo_reference)
    write_settings(workspace, {"thinking": "adaptive", "effort": "low"})
    assert run(workspace, "phase1", demo, fast(model="claude-sonnet-5-5", batches=(1,))).ok
    (body,) = [r.body for r in fake_api.message_requests()]
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": "low"}


def test_an_unknown_model_costs_unknown_with_a_hint(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    use_reference(fake_api, demo_reference)
    assert run(workspace, "phase1", demo, fast(model="claude-nova-1", batches=(1,))).ok
    state = json.loads((workspace.courses_dir / demo / ".freshbatch" / "progress.json").read_text())
    assert state["cost_unknown"]["model"] == "claude-nova-1"
    assert "prices:" in state["cost_unknown"]["hint"]
    assert cli.main(["--root", str(workspace.root), "plan", "phase1", demo, "--model",
                     "claude-nova-1"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "unknown" in out and "prices:" in out
    assert cli.main(["--root", str(workspace.root), "status", demo]) == 0
    assert "total cost unknown" in capsys.readouterr().out


def test_models_command_lists_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    ids = {row["id"] for row in rows}
    assert {"claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5"} <= ids
    assert [row["id"] for row in rows if row["default"]] == ["claude-sonnet-5-5"]
    assert cli.main(["models"]) == 0
    assert "claude-sonnet-5-5 (default)" in capsys.readouterr().out
