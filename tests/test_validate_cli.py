"""`freshbatch validate` and `freshbatch rules`, run in-process through cli.main."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_course, write_json

from freshbatch.cli import main
from freshbatch.workspace import Workspace

SOURCES = ["I want to eat.", "She wants to eat now."]
GOOD = {
    "S0001": {"known": "I want to eat.", "target": "Quiero comer."},
    "S0002": {"known": "She wants to eat now.", "target": "Ella quiere comer ahora."},
}
LEGOS = [
    {
        "seed_id": "S0001",
        "seed_pair": GOOD["S0001"],
        "legos": [
            {
                "id": "S0001L01",
                "type": "A",
                "new": True,
                "lego": {"known": "I want", "target": "Quiero"},
            },
            {
                "id": "S0001L02",
                "type": "A",
                "new": True,
                "lego": {"known": "to eat", "target": "comer"},
            },
        ],
    },
    {
        "seed_id": "S0002",
        "seed_pair": GOOD["S0002"],
        "legos": [
            {
                "id": "S0002L01",
                "type": "M",
                "new": True,
                "lego": {"known": "she wants", "target": "Ella quiere"},
                "components": [
                    {"known": "she", "target": "ella"},
                    {"known": "wants", "target": "quiere"},
                ],
            },
            {
                "id": "S0002L02",
                "type": "A",
                "new": False,
                "lego": {"known": "to eat", "target": "comer"},
            },
            {
                "id": "S0002L03",
                "type": "A",
                "new": True,
                "lego": {"known": "now", "target": "ahora"},
            },
        ],
    },
]

ISSUE_KEYS = ["severity", "rule", "batch", "seed_id", "lego_id", "message"]


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def course(
    workspace: Workspace,
    translations: dict[str, Any] | None = None,
    code: str = "spa_for_eng",
    **settings: Any,
) -> str:
    files = {
        "seed_pairs.json": {
            "course": code,
            "translations": GOOD if translations is None else translations,
        }
    }
    make_course(workspace, code, SOURCES, files=files, **settings)
    return code


def run(workspace: Workspace, *args: str) -> int:
    return main(["--root", str(workspace.root), *args])


def stderr_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("error: ")
    return err


# --- exit codes ----------------------------------------------------------------------------------


def test_valid_file_exits_0(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code = course(workspace)
    assert run(workspace, "validate", "phase1", code) == 0
    out = capsys.readouterr().out
    assert "phase 1 spa_for_eng: valid — 0 errors, 0 warnings in 1 of 1 batches" in out


def test_phase_given_as_a_number(workspace: Workspace) -> None:
    assert run(workspace, "validate", "1", course(workspace)) == 0


def test_invalid_file_exits_1(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code = course(workspace, {**GOOD, "S0002": {"known": "x", "target": "x"}})
    assert run(workspace, "validate", "phase1", code) == 1
    out = capsys.readouterr().out
    assert "phase 1 spa_for_eng: INVALID — 1 error, 1 warning in 1 of 1 batches" in out
    assert "same-as-known" in out and 'S0002: target "x" is the known sentence itself' in out


def test_warnings_only_exits_0(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code = course(
        workspace, {**GOOD, "S0001": {"known": "I wish to eat.", "target": "Quiero comer."}}
    )
    assert run(workspace, "validate", "phase1", code) == 0
    assert "valid — 0 errors, 1 warning" in capsys.readouterr().out


def test_missing_course_exits_2(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    course(workspace)
    assert run(workspace, "validate", "phase1", "ita_for_eng") == 2
    err = stderr_line(capsys)
    assert "ita_for_eng" in err and "course.yaml" in err and "no such course" in err


def test_missing_merged_file_exits_2(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    make_course(workspace, "spa_for_eng", SOURCES)
    assert run(workspace, "validate", "phase1", "spa_for_eng") == 2
    err = stderr_line(capsys)
    assert "seed_pairs.json: file not found" in err


def test_invalid_json_file_exits_2(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code = course(workspace)
    (workspace.courses_dir / code / "seed_pairs.json").write_text(
        '{"course": "x",\n "translations": {', "utf-8"
    )
    assert run(workspace, "validate", "phase1", code) == 2
    err = stderr_line(capsys)
    assert "seed_pairs.json: invalid JSON at line 2" in err


def test_unknown_phase_exits_2(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(workspace, "validate", "phase4", course(workspace)) == 2
    err = stderr_line(capsys)
    assert "unknown phase 'phase4'" in err and "phase1, phase3, phase5" in err


def test_unknown_rule_in_course_yaml_exits_2(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code = course(workspace, rules={"no-such-rule": "off"})
    assert run(workspace, "validate", "phase1", code) == 2
    err = stderr_line(capsys)
    assert "course.yaml" in err and "rules.no-such-rule" in err


def test_bad_root_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(tmp_path), "validate", "phase1", "x"]) == 2
    assert "not a freshbatch workspace" in stderr_line(capsys)


def test_batch_out_of_range_exits_2(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(workspace, "validate", "phase1", course(workspace), "--batch", "2") == 2
    assert "--batch 2" in stderr_line(capsys)


# --- --json --------------------------------------------------------------------------------------


def json_report(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, Any]:
    code = run(workspace, "validate", *args, "--json")
    return code, json.loads(capsys.readouterr().out)


def test_json_report_shape(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code = course(workspace, {**GOOD, "S0002": {"known": "x", "target": "x"}})
    status, data = json_report(workspace, capsys, "phase1", code)
    assert status == 1
    assert list(data) == ["phase", "course", "file", "valid", "stats", "issues"]
    assert (data["phase"], data["course"], data["valid"]) == (1, "spa_for_eng", False)
    assert data["file"].endswith("seed_pairs.json")
    assert data["stats"]["errors"] == 1 and data["stats"]["warnings"] == 1
    assert data["stats"]["by_rule"] == {"known-matches-canonical": 1, "same-as-known": 1}
    assert all(list(issue) == ISSUE_KEYS for issue in data["issues"])
    same = next(i for i in data["issues"] if i["rule"] == "same-as-known")
    assert same == {
        "severity": "error",
        "rule": "same-as-known",
        "batch": 1,
        "seed_id": "S0002",
        "lego_id": None,
        "message": 'S0002: target "x" is the known sentence itself; translate it',
    }


def test_json_valid_is_true_with_warnings_only(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code = course(
        workspace, {**GOOD, "S0001": {"known": "I wish to eat.", "target": "Quiero comer."}}
    )
    status, data = json_report(workspace, capsys, "phase1", code)
    assert status == 0
    assert data["valid"] is True
    assert [i["severity"] for i in data["issues"]] == ["warning"]


def test_json_valid_is_true_for_a_clean_file(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    status, data = json_report(workspace, capsys, "phase1", course(workspace))
    assert (status, data["valid"], data["issues"]) == (0, True, [])


def test_json_keeps_every_issue_beyond_the_display_limit(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = [f"Sentence {i}." for i in range(1, 16)]
    translations = {
        f"S{i:04d}": {"known": f"Different {i}.", "target": f"Frase {i}."} for i in range(1, 16)
    }
    make_course(
        workspace,
        "spa_for_eng",
        sources,
        files={"seed_pairs.json": {"course": "spa_for_eng", "translations": translations}},
    )
    status, data = json_report(workspace, capsys, "phase1", "spa_for_eng", "--limit", "3")
    assert status == 0
    assert len(data["issues"]) == 15


# --- --file, --batch, all ------------------------------------------------------------------------


def test_file_option_validates_another_file(
    workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = course(workspace)
    other = write_json(
        tmp_path / "candidate.json",
        {"course": code, "translations": {**GOOD, "S0002": {"known": "y", "target": "y"}}},
    )
    status, data = json_report(workspace, capsys, "phase1", code, "--file", str(other))
    assert status == 1
    assert data["file"].endswith("candidate.json")
    assert [i["rule"] for i in data["issues"] if i["severity"] == "error"] == ["same-as-known"]
    assert run(workspace, "validate", "phase1", code) == 0  # the merged file is untouched


def test_file_option_missing_file_exits_2(
    workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = course(workspace)
    assert run(workspace, "validate", "phase1", code, "--file", str(tmp_path / "nope.json")) == 2
    assert "nope.json: file not found" in stderr_line(capsys)


def test_batch_option(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code = course(
        workspace, {"S0001": {"known": "x", "target": "x"}, "S0002": GOOD["S0002"]}, batch_size=1
    )
    status, data = json_report(workspace, capsys, "phase1", code, "--batch", "2")
    assert (status, data["valid"], data["issues"]) == (0, True, [])
    assert data["stats"]["batches_checked"] == 1 and data["stats"]["batches_planned"] == 2
    status, data = json_report(workspace, capsys, "phase1", code, "--batch", "1")
    assert status == 1 and {i["batch"] for i in data["issues"]} == {1}


def test_validate_all_runs_every_phase_with_an_output(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code = course(workspace)
    write_json(workspace.courses_dir / code / "lego_pairs.json", {"course": code, "seeds": LEGOS})
    status, data = json_report(workspace, capsys, "all", code)
    assert status == 0
    assert [r["phase"] for r in data] == [1, 3]
    assert all(r["valid"] for r in data)


def test_validate_all_fails_if_any_phase_fails(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code = course(workspace)
    legos = json.loads(json.dumps(LEGOS))
    legos[1]["legos"].pop()  # S0002 no longer tiles
    write_json(workspace.courses_dir / code / "lego_pairs.json", {"course": code, "seeds": legos})
    assert run(workspace, "validate", "all", code) == 1
    out = capsys.readouterr().out
    assert "phase 1 spa_for_eng: valid" in out and "phase 3 spa_for_eng: INVALID" in out
    assert "tiling-exact" in out


def test_validate_all_refuses_file(
    workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(workspace, "validate", "all", course(workspace), "--file", str(tmp_path / "x.json"))
        == 2
    )
    assert "--file needs one phase" in stderr_line(capsys)


# --- the rich report -----------------------------------------------------------------------------


def test_rich_report_summary_and_cap(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = [f"Sentence {i}." for i in range(1, 16)]
    translations = {
        f"S{i:04d}": {"known": f"Sentence {i}.", "target": f"Sentence {i}."} for i in range(1, 16)
    }
    make_course(
        workspace,
        "spa_for_eng",
        sources,
        files={"seed_pairs.json": {"course": "spa_for_eng", "translations": translations}},
    )
    assert run(workspace, "validate", "phase1", "spa_for_eng", "--limit", "4") == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        "phase 1 spa_for_eng: INVALID — 30 errors, 0 warnings in 1 of 1 batches"
    )
    assert "15 seeds" in lines[1]
    assert "batch 1: 30 errors, 0 warnings" in lines[2]
    shown = [line for line in lines if line.strip().startswith("✗")]
    assert len(shown) == 4
    assert any("… and 26 more" in line for line in lines)


def test_rich_report_limit_0_shows_all(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = [f"Sentence {i}." for i in range(1, 16)]
    translations = {
        f"S{i:04d}": {"known": f"Sentence {i}.", "target": f"Sentence {i}."} for i in range(1, 16)
    }
    make_course(
        workspace,
        "spa_for_eng",
        sources,
        files={"seed_pairs.json": {"course": "spa_for_eng", "translations": translations}},
    )
    run(workspace, "validate", "phase1", "spa_for_eng", "--limit", "0")
    out = capsys.readouterr().out
    assert out.count("✗") == 30
    assert "more" not in out


def test_rich_report_escapes_markup_in_messages(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code = course(
        workspace, {**GOOD, "S0001": {"known": "[bold]x[/bold]", "target": "[bold]x[/bold]"}}
    )
    run(workspace, "validate", "phase1", code)
    assert '"[bold]x[/bold]" is the known sentence itself' in capsys.readouterr().out


# --- rules ---------------------------------------------------------------------------------------


def test_rules_lists_every_phase(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(workspace, "rules") == 0
    out = capsys.readouterr().out
    for name in (
        "same-as-known",
        "tiling-exact",
        "known-collision-course",
        "vocabulary-gate",
        "phrase-count-field",
    ):
        assert name in out
    assert "warning" in out and "error" in out


def test_rules_for_one_phase(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(workspace, "rules", "phase5") == 0
    out = capsys.readouterr().out
    assert "vocabulary-gate" in out
    assert "tiling-exact" not in out and "same-as-known" not in out


def test_argument_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 2
    assert "usage" in capsys.readouterr().err
