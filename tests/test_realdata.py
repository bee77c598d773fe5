"""The real spa_for_eng course (../shared/data/ssi): the figures SPEC.md and its README quote."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from freshbatch.cli import main
from freshbatch.issues import Issue
from freshbatch.text import key
from freshbatch.validation import ValidationReport, validate_phase
from freshbatch.workspace import Workspace

pytestmark = pytest.mark.realdata

EMPTY_SEEDS = [
    "S0442",
    "S0445",
    "S0447",
    "S0449",
    "S0633",
    "S0635",
    "S0637",
    "S0640",
    "S0642",
    "S0656",
    "S0660",
]

# Validating the real files takes about a second; each phase is validated once per test session.
_REPORTS: dict[str, ValidationReport] = {}

Get = Callable[[str], ValidationReport]


@pytest.fixture
def real(workspace: Workspace, spa_course: str) -> Get:
    def get(phase: str) -> ValidationReport:
        if phase not in _REPORTS:
            _REPORTS[phase] = validate_phase(workspace, phase, spa_course)
        return _REPORTS[phase]

    return get


@pytest.fixture
def real_json(workspace: Workspace, spa_course: str) -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((workspace.courses_dir / spa_course / name).read_text("utf-8"))

    return load


def rule(report: ValidationReport, name: str) -> list[Issue]:
    return [i for i in report.issues if i.rule == name]


# --- phase 1 -------------------------------------------------------------------------------------


def test_phase1_figures(real: Get) -> None:
    report = real("phase1")
    assert report.stats["seeds"] == 668
    assert report.stats["batches_planned"] == 34 and report.stats["batches_checked"] == 34
    assert report.stats["errors"] == 0
    assert report.valid
    assert [(i.rule, i.severity, i.seed_id) for i in report.issues] == [
        ("known-matches-canonical", "warning", "S0130")
    ]
    assert "surrpise" in report.issues[0].message  # the canonical typo SSi's known text fixed
    assert "looks like a spelling fix" in report.issues[0].message  # so a retry keeps the fix


# --- phase 3 -------------------------------------------------------------------------------------


def test_phase3_counts(real: Get) -> None:
    stats = real("phase3").stats
    assert (stats["seeds"], stats["legos"]) == (668, 2796)
    assert stats["tiling_exact"] == 523  # SPEC: 78.3%
    assert stats["tiling_covered"] == 581  # 523 + 58 covered only by overlaps
    assert stats["foreign_legos"] == 20
    assert stats["known_texts_with_two_targets"] == 27


def test_phase3_empty_seeds(real: Get) -> None:
    issues = rule(real("phase3"), "empty-seed")
    assert sorted(i.seed_id for i in issues) == EMPTY_SEEDS  # type: ignore[type-var]
    assert all(i.severity == "error" for i in issues)


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("components-missing", 2),
        ("components-rebuild", 63),
        ("lego-id-gap", 58),
        ("new-flag", 31),
        ("lego-contiguous", 20),
        ("empty-seed", 11),
    ],
)
def test_phase3_rule_counts(real: Get, name: str, count: int) -> None:
    assert len(rule(real("phase3"), name)) == count


def test_phase3_lego_id_gap_examples(real: Get) -> None:
    messages = {i.seed_id: i.message for i in rule(real("phase3"), "lego-id-gap")}
    assert messages["S0001"] == "S0001: LEGO numbers skip L02, L04"
    assert messages["S0303"].startswith("S0303: LEGO numbers skip L01, L02, L03")


def test_phase3_tiling_issues_match_the_counts(real: Get) -> None:
    report = real("phase3")
    non_empty = 668 - len(EMPTY_SEEDS)
    assert len(rule(report, "tiling-exact")) == non_empty - 523
    assert len(rule(report, "tiling-coverage")) == non_empty - 581


def test_phase3_typo_seed_is_named(real: Get) -> None:
    s0003 = [
        i for i in real("phase3").issues if i.seed_id == "S0003" and i.rule == "tiling-coverage"
    ]
    assert [i.message for i in s0003] == ['S0003: no LEGO covers "lo más frecuentamente posible"']


def test_phase3_no_collision_within_seeds_1_to_100(real: Get) -> None:
    report = real("phase3")
    found = [i for i in report.issues if i.rule in ("known-collision", "known-collision-course")]
    assert found
    for issue in found:
        first = re.search(r"\((S\d{4})\)", issue.message)
        assert first is not None and issue.seed_id is not None
        assert not (int(first.group(1)[1:]) <= 100 and int(issue.seed_id[1:]) <= 100), issue
    for issue in rule(report, "known-collision"):  # errors here can only be same-batch collisions
        first = re.search(r"\((S\d{4})\)", issue.message)
        assert first is not None
        assert (int(first.group(1)[1:]) - 1) // 20 == (int(issue.seed_id[1:]) - 1) // 20, issue  # type: ignore[index]


def test_phase3_collision_figures(real: Get) -> None:
    # 16 errors, 24 warnings: every known text with two targets inside one batch is an error,
    # including the 4 where both targets were already in the course before that batch
    report = real("phase3")
    assert len(rule(report, "known-collision")) == 16
    assert len(rule(report, "known-collision-course")) == 24


def test_phase3_collision_blames_the_cut_short_lego(real: Get) -> None:
    s0135 = [i for i in rule(real("phase3"), "known-collision") if i.seed_id == "S0135"]
    assert [i.lego_id for i in s0135] == ["S0135L01"]  # "No sé por", not L02 "No sé por qué"
    assert 'cut-short "No sé por"' in s0135[0].message


# --- phase 5 -------------------------------------------------------------------------------------


def test_phase5_counts(real: Get) -> None:
    stats = real("phase5").stats
    assert (stats["baskets"], stats["phrases"]) == (2392, 17070)
    assert (stats["gate_phrases"], stats["gate_baskets"]) == (146, 124)
    assert stats["lego_mismatch"] == 121
    assert stats["phrases_without_lego"] == 229


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("vocabulary-gate", 146),
        ("basket-lego", 121),
        ("phrase-contains-lego", 229),
        ("final-lego-flag", 10),
        ("basket-keys", 0),
    ],
)
def test_phase5_rule_counts(real: Get, name: str, count: int) -> None:
    assert len(rule(real("phase5"), name)) == count


def test_phase5_gate_baskets_match_the_issues(real: Get) -> None:
    gate = rule(real("phase5"), "vocabulary-gate")
    assert len({i.lego_id for i in gate}) == 124


def test_phase5_gate_names_words_that_no_lego_teaches(real: Get) -> None:
    words = {
        w
        for i in rule(real("phase5"), "vocabulary-gate")
        for w in re.findall(r'"([^"]+)"', i.message)[1:]
    }
    assert {"mí", "oí", "esté"} <= words  # SPEC §5's examples


def _duplicates(
    report: ValidationReport, lego_pairs: dict[str, Any], baskets: dict[str, Any]
) -> list[tuple[Issue, bool, bool]]:
    """Each phrase-duplicate issue with (is its basket the seed's final LEGO, is it the seed)."""
    last = {s["seed_id"]: s["legos"][-1]["id"] for s in lego_pairs["seeds"] if s["legos"]}
    seed_pair = {s["seed_id"]: s["seed_pair"] for s in lego_pairs["seeds"]}
    found = []
    for issue in rule(report, "phrase-duplicate"):
        match = re.search(r"phrase (\d+) ", issue.message)
        assert match is not None and issue.seed_id is not None and issue.lego_id is not None
        phrase = baskets[issue.lego_id]["practice_phrases"][int(match.group(1)) - 1]
        is_seed = key(phrase["target"]) == key(seed_pair[issue.seed_id]["target"])
        found.append((issue, last.get(issue.seed_id) == issue.lego_id, is_seed))
    return found


def test_phase5_duplicates_as_measured(real: Get, real_json: Callable[[str], Any]) -> None:
    # What the data actually holds: 294 duplicates; 293 repeat the seed sentence, 244 of them in the
    # final LEGO's basket; 50 are in earlier baskets (e.g. S0252L01, S0266L02, S0610L01), and one
    # (S0392L02 "la persona con el pelo negro") is not the seed at all.
    baskets = real_json("lego_baskets.json")["baskets"]
    found = _duplicates(real("phase5"), real_json("lego_pairs.json"), baskets)
    assert len(found) == 294
    assert sum(final for _, final, _ in found) == 244
    assert [i.lego_id for i, _, is_seed in found if not is_seed] == ["S0392L02"]
    for issue, _, _ in found:  # never a byte-identical pair: only case/punctuation differ
        numbers = [int(n) for n in re.findall(r"phrase (\d+)", issue.message)]
        phrases = baskets[issue.lego_id]["practice_phrases"]  # type: ignore[index]
        first, again = phrases[numbers[1] - 1], phrases[numbers[0] - 1]
        assert first != again
        assert (key(first["target"]), key(first["known"])) == (
            key(again["target"]),
            key(again["known"]),
        )


# --- the CLI on the real files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "exit_code", "valid"),
    [("phase1", 0, True), ("phase3", 1, False), ("phase5", 1, False)],
)
def test_cli_json_on_real_files(
    workspace: Workspace,
    spa_course: str,
    capsys: pytest.CaptureFixture[str],
    phase: str,
    exit_code: int,
    valid: bool,
) -> None:
    assert (
        main(["--root", str(workspace.root), "validate", phase, spa_course, "--json"]) == exit_code
    )
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["phase", "course", "file", "valid", "stats", "issues"]
    assert data["valid"] is valid
    assert data["course"] == "spa_for_eng"
    assert data["stats"]["errors"] == sum(i["severity"] == "error" for i in data["issues"])
    assert data["stats"]["warnings"] == sum(i["severity"] == "warning" for i in data["issues"])
    assert all(
        list(i) == ["severity", "rule", "batch", "seed_id", "lego_id", "message"]
        for i in data["issues"]
    )
