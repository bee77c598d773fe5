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
        "mixed-script-word",
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
        'known "我想说中文。" is mostly Han letters (5 of 5), not Latin' in issue.message
        and "known must be English" in issue.message
    )


def test_swapped_languages_passes_for_chinese_with_latin_loanword(workspace: Workspace) -> None:
    pair = {"known": "I want to speak Chinese.", "target": "我想说中文OK。"}
    assert only(validate(workspace, chinese(workspace, {"S0001": pair})), "swapped-languages") == []


# --- scripts of every pair (issue 15): fixtures written for these tests ------------------------


def pair_course(
    workspace: Workspace, target: str, known: str, pairs: list[tuple[str, str]]
) -> ValidationReport:
    """A course of (known, target) pairs in any two languages; canonical seeds = known when
    known is English."""
    code = f"{target}_for_{known}"
    sources = [k if known == "eng" else "Seed." for k, _ in pairs]
    translations = {f"S{i:04d}": {"known": k, "target": t} for i, (k, t) in enumerate(pairs, 1)}
    make_course(
        workspace,
        code,
        sources,
        target=target,
        known=known,
        target_name=target,
        known_name=known,
        files={"seed_pairs.json": seed_pairs(translations, code)},
    )
    return validate(workspace, code)


def script_issues(report: ValidationReport) -> list[tuple[str | None, str]]:
    rules = ("swapped-languages", "mixed-script-word")
    return [(i.seed_id, i.message) for i in report.issues if i.rule in rules]


RUSSIAN = [
    ("I want to speak Russian.", "Я хочу говорить по-русски."),
    ("OK, let's go.", "OK, пойдём."),  # a Latin loanword inside a Russian sentence
    ("I'm going to the cafe now.", "Я сейчас иду в кафе."),
]


def test_russian_loanword_in_latin_is_not_a_swap(workspace: Workspace) -> None:
    assert script_issues(pair_course(workspace, "rus", "eng", RUSSIAN)) == []


def test_russian_target_in_latin_is_a_swap(workspace: Workspace) -> None:
    pairs = [*RUSSIAN[:2], ("I'm going to the cafe now.", "Ya seychas idu v kafe.")]
    assert script_issues(pair_course(workspace, "rus", "eng", pairs)) == [
        (
            "S0003",
            'S0003: target "Ya seychas idu v kafe." is mostly Latin letters (17 of 17), not '
            "Cyrillic; is it rus?",
        )
    ]


def test_russian_known_side_of_a_non_english_course_is_checked(workspace: Workspace) -> None:
    pairs = [("Я хочу есть.", "我想吃饭。"), ("我想喝水。", "Я хочу пить.")]  # S0002 swapped
    issues = script_issues(pair_course(workspace, "cmn", "rus", pairs))
    assert [seed for seed, _ in issues] == ["S0002", "S0002"]
    assert 'target "Я хочу пить." is mostly Cyrillic letters (9 of 9), not Han' in (issues[0][1])
    assert issues[1][1].endswith("known must be rus")


def test_latin_look_alike_in_a_russian_word_shows_both_letters(workspace: Workspace) -> None:
    pairs = [*RUSSIAN[:2], ("I see a cat.", "Я вижу кoта.")]  # Latin o (U+006F)
    assert script_issues(pair_course(workspace, "rus", "eng", pairs)) == [
        (
            "S0003",
            'S0003: target "кoта" has Latin "o" (U+006F) among Cyrillic letters; '
            'write Cyrillic "о" (U+043E)',
        )
    ]


def test_cyrillic_and_greek_look_alikes_in_latin_words(workspace: Workspace) -> None:
    pairs = [("I want a coffee.", "Quiero un cаfé."), ("Not now.", "Ahora nο.")]  # а, ο
    report = pair_course(workspace, "spa", "eng", pairs)
    issues = [i for i in report.issues if i.rule == "mixed-script-word"]
    assert [(i.severity, i.seed_id) for i in issues] == [("error", "S0001"), ("error", "S0002")]
    assert 'Cyrillic "а" (U+0430) among Latin letters; write Latin "a" (U+0061)' in (
        issues[0].message
    )
    assert 'Greek "ο" (U+03BF)' in issues[1].message


CHINESE_FOR_JAPANESE = [
    ("中国語を話したいです。", "我想说中文。"),
    ("今、あなたと話したい。", "我现在想和你说话。"),
    ("日本語を勉強しています。", "我在学日语。"),
]


def test_chinese_for_japanese_speakers_passes(workspace: Workspace) -> None:
    assert script_issues(pair_course(workspace, "cmn", "jpn", CHINESE_FOR_JAPANESE)) == []


def test_chinese_for_japanese_swap_is_told_by_kana(workspace: Workspace) -> None:
    pairs = [*CHINESE_FOR_JAPANESE[:2], ("我在学日语。", "日本語を勉強しています。")]
    issues = script_issues(pair_course(workspace, "cmn", "jpn", pairs))
    assert issues == [
        (
            "S0003",
            'S0003: target "日本語を勉強しています。" is mostly Hiragana letters (6 of 11), '
            "not Han; is it cmn?",
        ),
        (
            "S0003",
            'S0003: known "我在学日语。" has no Hiragana or Katakana letters; known must be jpn',
        ),
    ]


def test_chinese_target_with_kana_for_japanese_speakers(workspace: Workspace) -> None:
    pairs = [*CHINESE_FOR_JAPANESE[:2], ("日本語を勉強しています。", "我在学日语です。")]
    assert script_issues(pair_course(workspace, "cmn", "jpn", pairs)) == [
        (
            "S0003",
            'S0003: target "我在学日语です。" has Hiragana letters, which the other language '
            "uses; is it cmn?",
        )
    ]


def test_korean_target_needs_hangul(workspace: Workspace) -> None:
    pairs = [
        ("I want to learn Korean.", "저는 한국어를 배우고 싶어요."),
        ("School.", "學校"),  # Han only: Hanja, or Chinese?
        ("Hello.", "안녕하세요."),
    ]
    issues = script_issues(pair_course(workspace, "kor", "eng", pairs))
    assert issues == [("S0002", 'S0002: target "學校" has no Hangul letters; is it kor?')]


def test_english_for_persian_and_arabic_speakers(workspace: Workspace) -> None:
    persian = [("می‌خواهم بروم.", "I want to go."), ("I want to eat.", "می‌خواهم بخورم.")]
    issues = script_issues(pair_course(workspace, "eng", "fas", persian))
    assert [(seed, message.split(" is mostly ")[1]) for seed, message in issues] == [
        ("S0002", "Arabic letters (12 of 12), not Latin; is it eng?"),
        ("S0002", "Latin letters (10 of 10), not Arabic; known must be fas"),
    ]
    arabic = [("أريد أن أذهب OK.", "I want to go."), ("أريد أن آكل.", "I want to eat.")]
    assert script_issues(pair_course(workspace, "eng", "ara", arabic)) == []


def test_thai_target_in_latin_is_a_swap(workspace: Workspace) -> None:
    pairs = [("I want to speak Thai.", "ฉันอยากพูดภาษาไทย"), ("Hello.", "Sawasdee")]
    issues = script_issues(pair_course(workspace, "tha", "eng", pairs))
    assert [seed for seed, _ in issues] == ["S0002"]
    assert "not Thai" in issues[0][1]


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
