"""Phase 1 rules (SPEC §3): one passing and one failing fixture per rule in phase.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, make_course

from freshbatch.errors import InputError
from freshbatch.issues import Issue
from freshbatch.validation import ValidationReport, validate_phase
from freshbatch.workspace import Workspace

SOURCES = ["I want to speak {target} with you now.", "I want to eat.", "She wants to eat now."]
SPANISH = {
    "S0001": {
        "known": "I want to speak Spanish with you now.",
        "target": "Quiero hablar español contigo ahora.",
    },
    "S0002": {"known": "I want to eat.", "target": "Quiero comer."},
    "S0003": {"known": "She wants to eat now.", "target": "Ella quiere comer ahora."},
}
CN_SOURCES = ["I want to speak {target}.", "I want to speak {target} with you now."]
CHINESE = {
    "S0001": {"known": "I want to speak Chinese.", "target": "我想说中文。"},
    "S0002": {"known": "I want to speak Chinese with you now.", "target": "我现在想和你说中文。"},
}


def seed_pairs(translations: dict[str, Any], course: str = "spa_for_eng") -> dict[str, Any]:
    return {
        "version": "7.7.0",
        "course": course,
        "total_seeds": len(translations),
        "translations": translations,
    }


def spanish(
    workspace: Workspace,
    changes: dict[str, Any] | None = None,
    sources: list[str] = SOURCES,
    **settings: Any,
) -> str:
    """A 3-seed Spanish course whose seed_pairs.json is SPANISH with `changes` applied."""
    translations = {**SPANISH, **(changes or {})}
    translations = {k: v for k, v in translations.items() if v is not None}
    make_course(
        workspace,
        "spa_for_eng",
        sources,
        files={"seed_pairs.json": seed_pairs(translations)},
        **settings,
    )
    return "spa_for_eng"


def chinese(workspace: Workspace, changes: dict[str, Any] | None = None) -> str:
    translations = {**CHINESE, **(changes or {})}
    make_course(
        workspace,
        "cmn_for_eng",
        CN_SOURCES,
        target="cmn",
        target_name="Chinese",
        files={"seed_pairs.json": seed_pairs(translations, "cmn_for_eng")},
    )
    return "cmn_for_eng"


def validate(workspace: Workspace, code: str, **kwargs: Any) -> ValidationReport:
    return validate_phase(workspace, "phase1", code, **kwargs)


def only(report: ValidationReport, rule: str) -> list[Issue]:
    return [i for i in report.issues if i.rule == rule]


def one(report: ValidationReport, rule: str) -> Issue:
    found = only(report, rule)
    assert len(found) == 1, report.issues
    return found[0]


# --- clean fixtures pass every rule --------------------------------------------------------------


def test_clean_spanish_course_has_no_issues(workspace: Workspace) -> None:
    report = validate(workspace, spanish(workspace))
    assert report.issues == []
    assert report.valid
    assert report.stats["seeds"] == 3
    assert report.stats["batches_checked"] == 1
    assert report.stats["errors"] == report.stats["warnings"] == 0


def test_clean_chinese_course_has_no_issues(workspace: Workspace) -> None:
    report = validate(workspace, chinese(workspace))
    assert report.issues == []
    assert report.valid


def test_every_declared_rule_is_covered_here() -> None:
    declared = set(
        yaml.safe_load((REPO / "validators/phase1/phase.yaml").read_text("utf-8"))["rules"]
    )
    tested = {
        "schema",
        "seed-ids",
        "placeholder",
        "same-as-known",
        "swapped-languages",
        "known-matches-canonical",
        "target-matches-canonical",
        "known-consistency",
    }
    assert declared == tested


# --- schema --------------------------------------------------------------------------------------


def test_schema_leading_space(workspace: Workspace) -> None:
    code = spanish(workspace, {"S0002": {"known": "I want to eat.", "target": " Quiero comer."}})
    issue = one(validate(workspace, code), "schema")
    assert (issue.severity, issue.seed_id, issue.lego_id, issue.batch) == (
        "error",
        "S0002",
        None,
        None,
    )
    assert issue.message.startswith("translations.S0002.target: ")
    assert "' Quiero comer.' has spaces at the start or end" in issue.message


def test_schema_missing_key_and_rules_not_run(workspace: Workspace) -> None:
    code = spanish(workspace, {"S0003": {"known": "She wants to eat now."}})
    report = validate(workspace, code)
    issue = one(report, "schema")
    assert issue.seed_id == "S0003"
    assert "'target' is a required property" in issue.message
    assert not report.valid
    assert report.stats["rules_checked"] is False


def test_schema_extra_field_is_named(workspace: Workspace) -> None:
    pair = {**SPANISH["S0002"], "note": "x"}
    issue = one(validate(workspace, spanish(workspace, {"S0002": pair})), "schema")
    assert "unexpected field" in issue.message and "'note'" in issue.message


def test_schema_empty_target(workspace: Workspace) -> None:
    report = validate(workspace, spanish(workspace, {"S0001": {"known": "x", "target": ""}}))
    found = only(report, "schema")
    assert found and all(i.seed_id == "S0001" and i.severity == "error" for i in found)
    assert any("translations.S0001.target: '' should be non-empty" == i.message for i in found)


def test_schema_trailing_newline_counts_as_surrounding_whitespace(workspace: Workspace) -> None:
    # SPEC §3: "both non-empty strings without surrounding whitespace". Python's `$` also matches
    # before a final newline, so the pattern ^\S(?:[\s\S]*\S)?$ must not let "...\n" through.
    code = spanish(workspace, {"S0002": {"known": "I want to eat.", "target": "Quiero comer.\n"}})
    issue = one(validate(workspace, code), "schema")
    assert issue.seed_id == "S0002"


# --- seed-ids ------------------------------------------------------------------------------------


def test_seed_ids_missing_translation(workspace: Workspace) -> None:
    issue = one(validate(workspace, spanish(workspace, {"S0002": None})), "seed-ids")
    assert (issue.severity, issue.seed_id, issue.batch) == ("error", "S0002", 1)
    assert issue.message == "S0002: translation missing"


def test_seed_ids_seed_outside_the_plan(workspace: Workspace) -> None:
    code = spanish(workspace, {"S0009": {"known": "Extra.", "target": "Extra."}})
    issue = one(validate(workspace, code), "seed-ids")
    assert (issue.severity, issue.seed_id, issue.batch) == ("error", "S0009", None)
    assert issue.message == "S0009: not a seed of this course's plan"


def test_seed_ids_outside_a_seed_range(workspace: Workspace) -> None:
    code = spanish(workspace, seed_range=[2, 3])
    report = validate(workspace, code)
    issue = one(report, "seed-ids")
    assert issue.seed_id == "S0001"
    assert "not a seed of this course's plan" in issue.message
    assert report.stats["seeds"] == 2


# --- placeholder ---------------------------------------------------------------------------------


def test_placeholder_left_in_target(workspace: Workspace) -> None:
    pair = {"known": SPANISH["S0001"]["known"], "target": "Quiero hablar {target} contigo ahora."}
    issue = one(validate(workspace, spanish(workspace, {"S0001": pair})), "placeholder")
    assert (issue.severity, issue.seed_id) == ("error", "S0001")
    assert issue.message.startswith("S0001: target still holds the placeholder {target}")


def test_placeholder_of_any_name_in_known(workspace: Workspace) -> None:
    pair = {"known": "I want to eat {food}.", "target": "Quiero comer."}
    issue = one(validate(workspace, spanish(workspace, {"S0002": pair})), "placeholder")
    assert issue.message.startswith("S0002: known still holds the placeholder {food}")


def test_placeholder_absent_when_filled(workspace: Workspace) -> None:
    assert only(validate(workspace, spanish(workspace)), "placeholder") == []


# --- same-as-known -------------------------------------------------------------------------------


def test_same_as_known(workspace: Workspace) -> None:
    pair = {"known": "I wanna eat.", "target": "i wanna eat"}
    report = validate(workspace, spanish(workspace, {"S0002": pair}))
    issue = one(report, "same-as-known")
    assert (issue.severity, issue.seed_id) == ("error", "S0002")
    assert issue.message == 'S0002: target "i wanna eat" is the known sentence itself; translate it'
    assert not report.valid


def test_same_as_known_passes_for_a_translation_sharing_words(workspace: Workspace) -> None:
    pair = {"known": "I want to eat.", "target": "Quiero comer."}
    assert only(validate(workspace, spanish(workspace, {"S0002": pair})), "same-as-known") == []


# --- swapped-languages ---------------------------------------------------------------------------


def test_swapped_latin_target_is_the_english_seed(workspace: Workspace) -> None:
    pair = {"known": "Quiero comer.", "target": "I want to eat."}
    issue = one(validate(workspace, spanish(workspace, {"S0002": pair})), "swapped-languages")
    assert (issue.severity, issue.seed_id) == ("error", "S0002")
    assert issue.message == "S0002: target is the English seed; put the Spanish sentence in target"


def test_swapped_chinese_target_without_han(workspace: Workspace) -> None:
    pair = {"known": "I want to speak Chinese.", "target": "Wo xiang shuo zhongwen."}
    issue = one(validate(workspace, chinese(workspace, {"S0001": pair})), "swapped-languages")
    assert (issue.severity, issue.seed_id) == ("error", "S0001")
    assert '"Wo xiang shuo zhongwen."' in issue.message and "is it Chinese?" in issue.message


def test_swapped_chinese_known_holds_han(workspace: Workspace) -> None:
    pair = {"known": "我想说中文。", "target": "我想说中文，好吗？"}
    report = validate(workspace, chinese(workspace, {"S0001": pair}))
    issue = one(report, "swapped-languages")
    assert issue.seed_id == "S0001"
    assert (
        'known "我想说中文。" contains' in issue.message
        and "known must be English" in issue.message
    )


def test_swapped_languages_passes_for_chinese_with_latin_loanword(workspace: Workspace) -> None:
    pair = {"known": "I want to speak Chinese.", "target": "我想说中文OK。"}
    assert only(validate(workspace, chinese(workspace, {"S0001": pair})), "swapped-languages") == []


# --- known-matches-canonical ---------------------------------------------------------------------


def test_known_differs_from_canonical(workspace: Workspace) -> None:
    pair = {"known": "I want to talk Spanish with you now.", "target": SPANISH["S0001"]["target"]}
    report = validate(workspace, spanish(workspace, {"S0001": pair}))
    issue = one(report, "known-matches-canonical")
    assert (issue.severity, issue.seed_id) == ("warning", "S0001")
    assert '"I want to talk Spanish with you now."' in issue.message
    assert 'canonical seed "I want to speak Spanish with you now."' in issue.message
    assert report.valid  # a warning never fails the file


def test_known_matches_canonical_after_normalisation(workspace: Workspace) -> None:
    pair = {"known": "i want to speak SPANISH with you now", "target": SPANISH["S0001"]["target"]}
    assert (
        only(validate(workspace, spanish(workspace, {"S0001": pair})), "known-matches-canonical")
        == []
    )


def test_known_canonical_uses_the_target_name(workspace: Workspace) -> None:
    pair = {"known": "I want to speak Chinese with you now.", "target": "我现在想和你说中文。"}
    assert (
        only(validate(workspace, chinese(workspace, {"S0002": pair})), "known-matches-canonical")
        == []
    )
    pair = {
        "known": "I want to speak Mandarin Chinese with you now.",
        "target": "我现在想和你说中文。",
    }
    issue = one(validate_phase_fresh(workspace, pair), "known-matches-canonical")
    assert "Mandarin Chinese" in issue.message


def validate_phase_fresh(workspace: Workspace, pair: dict[str, str]) -> ValidationReport:
    # a second Chinese course in the same workspace
    make_course(
        workspace,
        "cmn_for_eng_b",
        CN_SOURCES,
        target="cmn",
        target_name="Chinese",
        files={"seed_pairs.json": seed_pairs({**CHINESE, "S0002": pair})},
    )
    return validate(workspace, "cmn_for_eng_b")


# --- target-matches-canonical (target is English) ------------------------------------------------


def english_for_spanish(workspace: Workspace, target: str) -> str:
    translations = {"S0001": {"known": "Quiero comer.", "target": target}}
    make_course(
        workspace,
        "eng_for_spa",
        ["I want to eat {target} food."],
        target="eng",
        known="spa",
        target_name="English",
        known_name="Spanish",
        files={"seed_pairs.json": seed_pairs(translations, "eng_for_spa")},
    )
    return "eng_for_spa"


def test_target_differs_from_canonical(workspace: Workspace) -> None:
    report = validate(workspace, english_for_spanish(workspace, "I wish to eat English food."))
    issue = one(report, "target-matches-canonical")
    assert (issue.severity, issue.seed_id) == ("warning", "S0001")
    assert 'canonical seed "I want to eat English food."' in issue.message
    assert only(report, "known-matches-canonical") == []  # known is Spanish: not compared


def test_target_matches_canonical(workspace: Workspace) -> None:
    report = validate(workspace, english_for_spanish(workspace, "I want to eat English food!"))
    assert report.issues == []


# --- known-consistency ---------------------------------------------------------------------------

SAME_KNOWN = ["I want to speak {target} with you now.", "I want to eat.", "I want to eat."]


def test_known_sentence_translated_twice_differently(workspace: Workspace) -> None:
    code = spanish(
        workspace,
        {"S0003": {"known": "I want to eat.", "target": "Deseo comer."}},
        sources=SAME_KNOWN,
    )
    issue = one(validate(workspace, code), "known-consistency")
    assert (issue.severity, issue.seed_id) == ("warning", "S0003")
    assert issue.message == (
        'S0003: known "I want to eat." was translated earlier as '
        '"Quiero comer.", now as "Deseo comer."'
    )


def test_known_sentence_translated_twice_the_same_way(workspace: Workspace) -> None:
    code = spanish(
        workspace,
        {"S0003": {"known": "I want to eat!", "target": "¡quiero comer!"}},
        sources=SAME_KNOWN,
    )
    assert only(validate(workspace, code), "known-consistency") == []


def test_batch_k_checks_only_k_but_earlier_batches_feed_the_state(workspace: Workspace) -> None:
    code = spanish(
        workspace,
        {
            "S0003": {"known": "I want to eat.", "target": "Deseo comer."},
            "S0001": {"known": "x", "target": "x"},
        },
        sources=SAME_KNOWN,
        batch_size=1,
    )
    full = validate(workspace, code)
    assert {i.batch for i in full.issues} == {1, 3}
    report = validate(workspace, code, batch=3)
    assert [(i.rule, i.batch, i.seed_id) for i in report.issues] == [
        ("known-consistency", 3, "S0003")
    ]
    assert report.stats["batches_checked"] == 1 and report.stats["seeds"] == 1
    assert report.valid
    assert validate(workspace, code, batch=2).issues == []


def test_batch_out_of_range_is_an_input_error(workspace: Workspace) -> None:
    code = spanish(workspace, batch_size=1)
    with pytest.raises(InputError) as exc:
        validate(workspace, code, batch=4)
    assert exc.value.exit_code == 2
    assert "--batch 4" in str(exc.value) and "1..3" in str(exc.value)


# --- severity overrides --------------------------------------------------------------------------


def test_override_warning_to_error_invalidates(workspace: Workspace) -> None:
    pair = {"known": "I want to talk Spanish with you now.", "target": SPANISH["S0001"]["target"]}
    code = spanish(workspace, {"S0001": pair}, rules={"known-matches-canonical": "error"})
    report = validate(workspace, code)
    assert one(report, "known-matches-canonical").severity == "error"
    assert not report.valid


def test_override_error_to_warning_and_off(workspace: Workspace) -> None:
    pair = {"known": "I wanna eat.", "target": "i wanna eat"}
    code = spanish(
        workspace,
        {"S0002": pair},
        rules={"same-as-known": "warning", "known-matches-canonical": "off"},
    )
    report = validate(workspace, code)
    assert one(report, "same-as-known").severity == "warning"
    assert only(report, "known-matches-canonical") == []
    assert report.valid


def test_override_off_written_unquoted_in_yaml(workspace: Workspace) -> None:
    # A user writes `off` in course.yaml as the docs spell it; YAML 1.1 reads a bare off as
    # false. The override must still turn the rule off rather than reject the file.
    pair = {"known": "I want to talk Spanish with you now.", "target": SPANISH["S0001"]["target"]}
    folder = Path(workspace.courses_dir / spanish(workspace, {"S0001": pair}))
    config = folder / "course.yaml"
    config.write_text(
        config.read_text("utf-8") + "rules:\n  known-matches-canonical: off\n", "utf-8"
    )
    report = validate(workspace, "spa_for_eng")
    assert only(report, "known-matches-canonical") == []


def test_unknown_rule_in_course_yaml_is_an_input_error(workspace: Workspace) -> None:
    code = spanish(workspace, rules={"known-matches-canon": "off"})
    with pytest.raises(InputError) as exc:
        validate(workspace, code)
    message = str(exc.value)
    assert exc.value.exit_code == 2
    assert "course.yaml" in message and "rules.known-matches-canon" in message
    assert "\n" not in message


def test_spelling_fix_is_recognised_and_kept() -> None:
    from freshbatch.rules.phase1 import spelling_fix

    assert spelling_fix("What a surrpise!", "What a surprise!") == ("surrpise", "surprise")
    assert spelling_fix("I want to eat.", "I want to drink.") is None  # a new word, not a typo
    assert spelling_fix("I want it.", "I want that.") is None
    assert spelling_fix("I want to eat.", "I want to eat now.") is None
