"""`freshbatch doctor` against the local fake Messages API: key, API, model, price, files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from freshbatch import cli
from freshbatch.workspace import Workspace
from tests.conftest import DEMO, REPO, TEST_KEY, copy_demo

FAKE_CLAUDE = REPO / "tests" / "fakes" / "fake_claude.py"


def doctor(workspace: Workspace, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["--root", str(workspace.root), "doctor", *args])
    captured = capsys.readouterr()
    assert captured.err == ""
    assert TEST_KEY not in captured.out, "the key is never printed"
    return code, captured.out


def line(out: str, fragment: str) -> str:
    found = [text for text in out.splitlines() if fragment in text]
    assert len(found) == 1, (fragment, out)
    return found[0]


def test_all_checks_pass_with_a_key_and_a_known_model(
    workspace: Workspace, fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_demo(workspace)
    code, out = doctor(workspace, capsys, DEMO)
    assert code == 0, out
    assert all(text.startswith("✓ ") for text in out.splitlines()), out
    assert line(out, "ANTHROPIC_API_KEY").startswith("✓ ANTHROPIC_API_KEY is set")
    assert line(out, "model claude-sonnet-4-6 known").startswith("✓ API reachable")
    assert line(out, "price for claude-sonnet-4-6").startswith("✓")
    for phase in ("phase1", "phase3", "phase5"):
        assert "above claude-sonnet-4-6's minimum of 1024" in line(out, f"{phase} cached prefix")
    assert [r.path for r in fake_api.requests] == ["/v1/models"]  # reads, never generates


def test_a_dated_model_id_counts_as_the_model(
    workspace: Workspace, fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = doctor(workspace, capsys, "--model", "claude-haiku-4-5")
    assert line(out, "model claude-haiku-4-5 known").startswith("✓")
    # haiku 4.5 caches only from 4096 tokens: phase 1's instructions are longer than that
    assert "minimum of 4096" in line(out, "phase1 cached prefix")


def test_a_model_the_api_does_not_list_fails(
    workspace: Workspace, fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_api.listed_models = ["claude-opus-4-8"]
    code, out = doctor(workspace, capsys, "--model", "claude-sonnet-4-6")
    assert code == 1
    assert line(out, "not in its models list").startswith("✗ API reachable, but model")
    assert "--model" in line(out, "not in its models list")


def test_an_unknown_model_has_no_price_either(
    workspace: Workspace, fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = doctor(workspace, capsys, "--model", "gpt-nope")
    assert code == 1
    assert line(out, "price for gpt-nope").startswith("✗")
    assert "prices:" in line(out, "price for gpt-nope")
    assert line(out, "gpt-nope is not in").startswith("✗")


def test_a_refused_key_fails_the_api_check(
    workspace: Workspace, fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_api.expected_api_key = "another-key"
    code, out = doctor(workspace, capsys)
    assert code == 1
    assert line(out, "key was refused").startswith("✗ API: the key was refused (401)")


def test_without_a_key_the_online_checks_are_skipped(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_demo(workspace)
    code, out = doctor(workspace, capsys)
    assert code == 1
    assert line(out, "ANTHROPIC_API_KEY").startswith("✗ ANTHROPIC_API_KEY is not set: export")
    assert line(out, "skipped (no key)").startswith("- API reachable and model known")
    # a provider that needs no key: the rest passes, the online checks are still skipped
    code, out = doctor(workspace, capsys, DEMO, "--provider", "replay")
    assert code == 0, out
    assert "ANTHROPIC_API_KEY" not in out
    assert "skipped (no key)" in out


def test_the_claude_binary_and_its_version_when_that_provider_is_chosen(
    workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    binary = tmp_path / "claude"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_CLAUDE} "$@"\n', "utf-8")
    binary.chmod(0o755)
    code, out = doctor(
        workspace, capsys, "--provider", "claude-cli", "--claude-binary", str(binary)
    )
    assert code == 0, out
    assert line(out, "claude binary").startswith("✓ claude binary")
    assert "2.1.332" in line(out, "claude binary")
    monkeypatch.setenv("FAKE_CLAUDE_VERSION", "2.1.100 (Claude Code)")
    code, out = doctor(
        workspace, capsys, "--provider", "claude-cli", "--claude-binary", str(binary)
    )
    assert code == 1
    assert "too old" in line(out, "claude binary")
    code, out = doctor(workspace, capsys, "--provider", "claude-cli", "--claude-binary",
                       str(tmp_path / "missing"))  # fmt: skip
    assert code == 1 and line(out, "claude binary").startswith("✗")


def test_a_prefix_too_short_to_cache_fails(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace.intelligence_dir / "phase1.md").write_text("Tiny.\n", "utf-8")
    code, out = doctor(workspace, capsys, "--provider", "replay", "--model", "claude-sonnet-4-6")
    assert code == 1
    assert line(out, "phase1 cached prefix").startswith("✗ phase1 cached prefix: about 1 tokens")
    assert line(out, "phase3 cached prefix").startswith("✓")
    # a model whose minimum the documentation does not give: said so, not failed
    code, out = doctor(workspace, capsys, "--provider", "replay", "--model", "claude-sonnet-5-5")
    assert "minimum cacheable length is not known" in line(out, "phase1 cached prefix")


def test_broken_files_are_named_one_per_line(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_demo(workspace)
    config = workspace.courses_dir / DEMO / "course.yaml"
    config.write_text(config.read_text("utf-8") + "colour: red\n", "utf-8")
    (workspace.validators_dir / "phase5" / "batch.schema.json").write_text("{", "utf-8")
    code, out = doctor(workspace, capsys, "--provider", "replay")
    assert code == 1
    assert "unknown key 'colour'" in line(out, f"course {DEMO}")
    assert "batch.schema.json" in line(out, "phase files")
    (workspace.root / "freshbatch.yaml").write_text("concurrency: 0\n", "utf-8")
    code, out = doctor(workspace, capsys)
    assert code == 1
    assert out.splitlines() == [line(out, "freshbatch.yaml")]
    assert out.startswith("✗ workspace: ")
