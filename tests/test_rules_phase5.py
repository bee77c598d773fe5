"""Phase 5 rules (SPEC §5): one passing and one failing fixture per rule in phase.yaml."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from conftest import REPO, make_course

from freshbatch.errors import InputError
from freshbatch.issues import Issue
from freshbatch.validation import ValidationReport, validate_phase
from freshbatch.workspace import Workspace

# --- builders ------------------------------------------------------------------------------------


def lego(lego_id: str, target: str, known: str, *, new: bool = True) -> dict[str, Any]:
    return {"id": lego_id, "type": "A", "new": new, "lego": {"known": known, "target": target}}


def seed(seed_id: str, target: str, known: str, *legos: dict[str, Any]) -> dict[str, Any]:
    return {
        "seed_id": seed_id,
        "seed_pair": {"known": known, "target": target},
        "legos": list(legos),
    }


def basket(
    target: str,
    known: str,
    phrases: list[tuple[str, str]],
    *,
    final: bool = False,
    count: int | None = None,
) -> dict[str, Any]:
    """A merged-file basket; phrases are (target, known)."""
    return {
        "lego": {"known": known, "target": target},
        "practice_phrases": [{"known": k, "target": t} for t, k in phrases],
        "is_final_lego": final,
        "phrase_count": len(phrases) if count is None else count,
    }


SOURCES = ["I want to speak {target} with you now.", "I want to eat.", "She wants to eat now."]


def spanish_legos() -> list[dict[str, Any]]:
    return [
        seed(
            "S0001",
            "Quiero hablar español contigo ahora.",
            "I want to speak Spanish with you now.",
            lego("S0001L01", "Quiero", "I want"),
            lego("S0001L02", "hablar español", "to speak Spanish"),
            lego("S0001L03", "contigo ahora", "with you now"),
        ),
        seed(
            "S0002",
            "Quiero comer.",
            "I want to eat.",
            lego("S0002L01", "quiero", "I want", new=False),
            lego("S0002L02", "comer", "to eat"),
        ),
        seed(
            "S0003",
            "Ella quiere comer ahora.",
            "She wants to eat now.",
            lego("S0003L01", "Ella quiere", "she wants"),
            lego("S0003L02", "comer", "to eat", new=False),
            lego("S0003L03", "ahora", "now"),
        ),
    ]


def spanish_baskets() -> dict[str, Any]:
    return {
        "S0001L01": basket("Quiero", "I want", [("Quiero", "I want")]),
        "S0001L02": basket(
            "hablar español",
            "to speak Spanish",
            [
                ("hablar español", "to speak Spanish"),
                ("Quiero hablar español.", "I want to speak Spanish."),
            ],
        ),
        "S0001L03": basket(
            "contigo ahora",
            "with you now",
            [
                ("contigo ahora", "with you now"),
                ("Quiero hablar español contigo ahora.", "I want to speak Spanish with you now."),
            ],
            final=True,
        ),
        "S0002L02": basket(
            "comer",
            "to eat",
            [("comer", "to eat"), ("Quiero comer.", "I want to eat.")],
            final=True,
        ),
        "S0003L01": basket(
            "Ella quiere",
            "she wants",
            [("ella quiere", "she wants"), ("Ella quiere comer.", "She wants to eat.")],
        ),
        "S0003L03": basket(
            "ahora",
            "now",
            [("ahora", "now"), ("Ella quiere comer ahora.", "She wants to eat now.")],
            final=True,
        ),
    }


def setup(
    workspace: Workspace,
    baskets: dict[str, Any] | None = None,
    legos: list[dict[str, Any]] | None = None,
    *,
    code: str = "spa_for_eng",
    sources: list[str] | None = None,
    **settings: Any,
) -> str:
    files = {
        "lego_pairs.json": {"course": code, "seeds": spanish_legos() if legos is None else legos},
        "lego_baskets.json": {
            "course": code,
            "baskets": spanish_baskets() if baskets is None else baskets,
        },
    }
    make_course(workspace, code, SOURCES if sources is None else sources, files=files, **settings)
    return code


def validate(workspace: Workspace, code: str, **kwargs: Any) -> ValidationReport:
    return validate_phase(workspace, "phase5", code, **kwargs)


def only(report: ValidationReport, rule: str) -> list[Issue]:
    return [i for i in report.issues if i.rule == rule]


def one(report: ValidationReport, rule: str) -> Issue:
    found = only(report, rule)
    assert len(found) == 1, report.issues
    return found[0]


def with_basket(lego_id: str, item: dict[str, Any]) -> dict[str, Any]:
    return {**spanish_baskets(), lego_id: item}


def phrases_of(
    lego_id: str, *phrases: tuple[str, str], final: bool | None = None
) -> dict[str, Any]:
    original = spanish_baskets()[lego_id]
    return basket(
        original["lego"]["target"],
        original["lego"]["known"],
        list(phrases),
        final=original["is_final_lego"] if final is None else final,
    )


# --- clean fixtures ------------------------------------------------------------------------------


def test_clean_spanish_baskets_have_no_issues(workspace: Workspace) -> None:
    report = validate(workspace, setup(workspace))
    assert report.issues == []
    assert report.valid
    assert report.stats["baskets"] == 6 and report.stats["phrases"] == 11
    assert report.stats["gate_phrases"] == report.stats["gate_baskets"] == 0


def test_every_declared_rule_is_covered_here() -> None:
    declared = set(
        yaml.safe_load((REPO / "validators/phase5/phase.yaml").read_text("utf-8"))["rules"]
    )
    tested = {
        "schema",
        "basket-keys",
        "basket-lego",
        "phrase-duplicate",
        "phrase-known-conflict",
        "vocabulary-gate",
        "phrase-contains-lego",
        "phrase-count",
        "phrase-count-low",
        "phrase-growth",
        "final-lego-flag",
        "final-phrase",
        "phrase-count-field",
    }
    assert declared == tested


def test_missing_lego_pairs_is_an_input_error(workspace: Workspace) -> None:
    code = setup(workspace)
    (workspace.courses_dir / code / "lego_pairs.json").unlink()
    with pytest.raises(InputError) as exc:
        validate(workspace, code)
    assert exc.value.exit_code == 2
    assert "needs lego_pairs.json" in str(exc.value)


def test_invalid_lego_pairs_is_an_input_error(workspace: Workspace) -> None:
    legos = spanish_legos()
    del legos[0]["legos"][0]["new"]
    with pytest.raises(InputError) as exc:
        validate(workspace, setup(workspace, legos=legos))
    assert exc.value.exit_code == 2
    assert "lego_pairs.json: not a valid phase3 file" in str(exc.value)


# --- schema --------------------------------------------------------------------------------------


def test_schema_empty_phrase_known(workspace: Workspace) -> None:
    baskets = spanish_baskets()
    baskets["S0002L02"]["practice_phrases"][0]["known"] = ""
    report = validate(workspace, setup(workspace, baskets))
    found = only(report, "schema")
    assert found and {(i.severity, i.seed_id, i.lego_id) for i in found} == {
        ("error", "S0002", "S0002L02")
    }
    assert any(
        i.message == "baskets.S0002L02.practice_phrases[0].known: '' should be non-empty"
        for i in found
    )
    assert not report.valid


def test_schema_missing_is_final_lego(workspace: Workspace) -> None:
    baskets = spanish_baskets()
    del baskets["S0003L01"]["is_final_lego"]
    issue = one(validate(workspace, setup(workspace, baskets)), "schema")
    assert issue.lego_id == "S0003L01" and "'is_final_lego' is a required property" in issue.message


def test_schema_bad_basket_key(workspace: Workspace) -> None:
    baskets = {**spanish_baskets(), "S0002-L03": spanish_baskets()["S0002L02"]}
    issue = one(validate(workspace, setup(workspace, baskets)), "schema")
    assert "'S0002-L03'" in issue.message


# --- basket-keys ---------------------------------------------------------------------------------


def test_basket_missing_for_a_new_lego(workspace: Workspace) -> None:
    baskets = spanish_baskets()
    del baskets["S0002L02"]
    issue = one(validate(workspace, setup(workspace, baskets)), "basket-keys")
    assert (issue.severity, issue.seed_id, issue.lego_id, issue.batch) == (
        "error",
        "S0002",
        "S0002L02",
        1,
    )
    assert issue.message == "S0002L02: basket missing; every new LEGO needs one"


def test_basket_for_a_repeat_lego(workspace: Workspace) -> None:
    baskets = with_basket("S0002L01", basket("quiero", "I want", [("quiero", "I want")]))
    issue = one(validate(workspace, setup(workspace, baskets)), "basket-keys")
    assert issue.lego_id == "S0002L01"
    assert (
        issue.message == "S0002L01: not a new LEGO of this batch (S0001-S0003); remove this basket"
    )


def test_basket_for_a_seed_outside_the_plan(workspace: Workspace) -> None:
    baskets = with_basket("S0009L01", basket("hola", "hello", [("hola", "hello")]))
    issue = one(validate(workspace, setup(workspace, baskets)), "basket-keys")
    assert (issue.lego_id, issue.batch) == ("S0009L01", None)
    assert issue.message == "S0009L01: its seed is not in this course's plan"


# --- basket-lego ---------------------------------------------------------------------------------


def test_basket_lego_differs_from_lego_pairs(workspace: Workspace) -> None:
    item = spanish_baskets()["S0002L02"]
    item["lego"] = {"known": "to eat something", "target": "comer algo"}
    report = validate(workspace, setup(workspace, with_basket("S0002L02", item)))
    issue = one(report, "basket-lego")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0002", "S0002L02")
    assert issue.message == (
        'S0002L02: basket LEGO "comer algo" = "to eat something" differs from '
        'lego_pairs "comer" = "to eat"; copy it'
    )
    assert report.stats["lego_mismatch"] == 1


def test_basket_lego_known_side_is_compared_too(workspace: Workspace) -> None:
    item = spanish_baskets()["S0002L02"]
    item["lego"] = {"known": "eat", "target": "comer"}
    assert one(validate(workspace, setup(workspace, with_basket("S0002L02", item))), "basket-lego")


# --- phrase-duplicate / phrase-known-conflict ----------------------------------------------------


def test_phrase_duplicate_after_normalisation(workspace: Workspace) -> None:
    item = phrases_of(
        "S0002L02",
        ("comer", "to eat"),
        ("Quiero comer", "I want to eat"),
        ("¡Quiero comer!", "I want to eat."),
    )
    issue = one(
        validate(workspace, setup(workspace, with_basket("S0002L02", item))), "phrase-duplicate"
    )
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0002", "S0002L02")
    assert issue.message == 'S0002L02: phrase 3 "¡Quiero comer!" repeats phrase 2'


def test_phrase_same_target_other_known_is_not_a_duplicate(workspace: Workspace) -> None:
    item = phrases_of(
        "S0002L02", ("comer", "to eat"), ("comer", "eating"), ("Quiero comer.", "I want to eat.")
    )
    report = validate(workspace, setup(workspace, with_basket("S0002L02", item)))
    assert only(report, "phrase-duplicate") == [] and only(report, "phrase-known-conflict") == []


def test_phrase_known_conflict(workspace: Workspace) -> None:
    item = phrases_of(
        "S0003L01",
        ("ella quiere", "she wants"),
        ("Ella quiere comer.", "She wants to eat."),
        ("ella quiere comer ahora", "She wants to eat!"),
    )
    issue = one(
        validate(workspace, setup(workspace, with_basket("S0003L01", item))),
        "phrase-known-conflict",
    )
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("warning", "S0003", "S0003L01")
    assert issue.message == (
        'S0003L01: known "She wants to eat!" is given as "Ella quiere comer." and as '
        '"ella quiere comer ahora"'
    )


# --- vocabulary-gate (Spanish) -------------------------------------------------------------------


def test_gate_names_the_untaught_word_form(workspace: Workspace) -> None:
    item = phrases_of(
        "S0002L02",
        ("comer", "to eat"),
        ("Quiere comer.", "He wants to eat."),
        ("Quiero comer.", "I want to eat."),
    )
    report = validate(workspace, setup(workspace, with_basket("S0002L02", item)))
    issue = one(report, "vocabulary-gate")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0002", "S0002L02")
    assert issue.message == 'S0002L02: phrase "Quiere comer." uses "quiere", not taught yet'
    assert (report.stats["gate_phrases"], report.stats["gate_baskets"]) == (1, 1)
    assert not report.valid


def test_gate_word_from_a_later_lego_of_the_same_seed_fails(workspace: Workspace) -> None:
    item = phrases_of("S0001L01", ("Quiero", "I want"), ("Quiero hablar", "I want to speak"))
    issue = one(
        validate(workspace, setup(workspace, with_basket("S0001L01", item))), "vocabulary-gate"
    )
    assert issue.lego_id == "S0001L01"
    assert issue.message == 'S0001L01: phrase "Quiero hablar" uses "hablar", not taught yet'


def test_gate_lists_each_untaught_word_once_and_counts_baskets(workspace: Workspace) -> None:
    item = phrases_of(
        "S0002L02",
        ("comer", "to eat"),
        ("Ella comer", "she eat"),
        ("Ella quiere comer ella", "she wants to eat her"),
        ("Quiero comer.", "I want to eat."),
    )
    report = validate(workspace, setup(workspace, with_basket("S0002L02", item)))
    messages = [i.message for i in only(report, "vocabulary-gate")]
    assert messages == [
        'S0002L02: phrase "Ella comer" uses "ella", not taught yet',
        'S0002L02: phrase "Ella quiere comer ella" uses "ella", "quiere", not taught yet',
    ]
    assert (report.stats["gate_phrases"], report.stats["gate_baskets"]) == (2, 1)


def test_gate_passes_for_words_of_earlier_seeds_and_this_lego(workspace: Workspace) -> None:
    # "ahora" came in S0001L03 ("contigo ahora"), "quiero" in S0001L01, "comer" is this LEGO
    item = phrases_of(
        "S0002L02",
        ("comer", "to eat"),
        ("comer ahora", "to eat now"),
        ("Quiero comer ahora", "I want to eat now"),
        ("QUIERO comer.", "I want to eat."),
    )
    report = validate(workspace, setup(workspace, with_basket("S0002L02", item)))
    assert only(report, "vocabulary-gate") == []


# --- vocabulary-gate (Chinese) -------------------------------------------------------------------

CN_SOURCES = ["I want to speak {target}.", "I want to speak {target} with you now."]


def chinese(workspace: Workspace, phrases: list[tuple[str, str]]) -> ValidationReport:
    legos = [
        seed(
            "S0001",
            "我想说中文。",
            "I want to speak Chinese.",
            lego("S0001L01", "我想", "I want"),
            lego("S0001L02", "说中文", "to speak Chinese"),
        ),
        seed(
            "S0002",
            "我现在想和你说中文。",
            "I want to speak Chinese with you now.",
            lego("S0002L01", "我现在想", "I now want"),
            lego("S0002L02", "和你", "with you"),
            lego("S0002L03", "说中文", "to speak Chinese", new=False),
        ),
    ]
    baskets = {
        "S0001L01": basket("我想", "I want", [("我想", "I want")]),
        "S0001L02": basket(
            "说中文",
            "to speak Chinese",
            [("说中文", "to speak Chinese"), ("我想说中文。", "I want to speak Chinese.")],
            final=True,
        ),
        "S0002L01": basket("我现在想", "I now want", phrases),
        "S0002L02": basket("和你", "with you", [("和你", "with you")]),
    }
    code = setup(
        workspace,
        baskets,
        legos,
        code="cmn_for_eng",
        sources=CN_SOURCES,
        target="cmn",
        target_name="Chinese",
    )
    return validate(workspace, code)


def test_chinese_gate_passes_per_character(workspace: Workspace) -> None:
    report = chinese(
        workspace,
        [("我现在想", "I now want"), ("我现在想说中文。", "I want to speak Chinese now.")],
    )
    assert report.issues == []


def test_chinese_gate_names_untaught_characters(workspace: Workspace) -> None:
    report = chinese(
        workspace,
        [
            ("我现在想", "I now want"),
            ("我现在想和你说中文", "I want to speak Chinese with you now"),
        ],
    )
    issue = one(report, "vocabulary-gate")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0002", "S0002L01")
    assert issue.message == 'S0002L01: phrase "我现在想和你说中文" uses "和", "你", not taught yet'


# --- phrase-contains-lego ------------------------------------------------------------------------


def test_phrase_without_its_lego(workspace: Workspace) -> None:
    item = phrases_of(
        "S0002L02",
        ("comer", "to eat"),
        ("Quiero hablar español.", "I want to speak Spanish."),
        ("Quiero comer.", "I want to eat."),
    )
    report = validate(workspace, setup(workspace, with_basket("S0002L02", item)))
    issue = one(report, "phrase-contains-lego")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("warning", "S0002", "S0002L02")
    assert (
        issue.message
        == 'S0002L02: phrase "Quiero hablar español." does not contain the LEGO "comer"'
    )
    assert report.stats["phrases_without_lego"] == 1


def test_phrase_contains_lego_ignores_case_and_punctuation(workspace: Workspace) -> None:
    item = phrases_of(
        "S0001L02",
        ("¡HABLAR ESPAÑOL!", "to speak Spanish!"),
        ("¿Quiero hablar español?", "Do I want to speak Spanish?"),
    )
    report = validate(workspace, setup(workspace, with_basket("S0001L02", item)))
    assert only(report, "phrase-contains-lego") == []


def test_phrase_contains_lego_needs_contiguity(workspace: Workspace) -> None:
    item = phrases_of(
        "S0001L02",
        ("hablar español", "to speak Spanish"),
        ("hablar quiero español", "to speak I want Spanish"),
    )
    issue = one(
        validate(workspace, setup(workspace, with_basket("S0001L02", item))), "phrase-contains-lego"
    )
    assert '"hablar quiero español"' in issue.message


# --- phrase-count / phrase-count-low -------------------------------------------------------------


def comer_phrases(count: int) -> list[tuple[str, str]]:
    return [(" ".join(["comer"] * n), " ".join(["eat"] * n)) for n in range(1, count + 1)]


SEED2 = ("Quiero comer.", "I want to eat.")


def test_phrase_count_11_allowed_when_the_last_is_the_whole_seed(workspace: Workspace) -> None:
    item = basket("comer", "to eat", [*comer_phrases(10), SEED2], final=True)
    report = validate(workspace, setup(workspace, with_basket("S0002L02", item)))
    assert only(report, "phrase-count") == []
    assert only(report, "phrase-growth") == []  # the appended seed may be shorter


def test_phrase_count_11_in_a_final_basket_without_the_seed_last(workspace: Workspace) -> None:
    item = basket(
        "comer",
        "to eat",
        [*comer_phrases(9), SEED2, ("comer comer comer", "eat eat eat!")],
        final=True,
    )
    issue = one(
        validate(workspace, setup(workspace, with_basket("S0002L02", item))), "phrase-count"
    )
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0002", "S0002L02")
    assert issue.message == "S0002L02: 11 practice phrases; write at most 10"


def test_phrase_count_11_in_a_non_final_basket_ending_with_the_seed(workspace: Workspace) -> None:
    phrases = [
        (" ".join(["hablar español"] * n), "to speak Spanish" + "!" * n) for n in range(1, 11)
    ]
    item = basket(
        "hablar español",
        "to speak Spanish",
        [
            *phrases,
            ("Quiero hablar español contigo ahora.", "I want to speak Spanish with you now."),
        ],
    )
    issue = one(
        validate(workspace, setup(workspace, with_basket("S0001L02", item))), "phrase-count"
    )
    assert issue.lego_id == "S0001L02" and "11 practice phrases" in issue.message


def test_phrase_count_12_even_with_the_seed_last(workspace: Workspace) -> None:
    item = basket("comer", "to eat", [*comer_phrases(11), SEED2], final=True)
    issue = one(
        validate(workspace, setup(workspace, with_basket("S0002L02", item))), "phrase-count"
    )
    assert issue.message == "S0002L02: 11 practice phrases; write at most 10"


LATE_SOURCES = [f"Sentence {i}." for i in range(1, 13)]


def late_course(workspace: Workspace, phrases: list[tuple[str, str]]) -> ValidationReport:
    legos = [
        seed("S0011", "comer", "to eat", lego("S0011L01", "comer", "to eat")),
        seed(
            "S0012",
            "Quiero comer.",
            "I want to eat.",
            lego("S0012L01", "quiero", "I want"),
            lego("S0012L02", "comer", "to eat", new=False),
        ),
    ]
    baskets = {
        "S0011L01": basket("comer", "to eat", phrases, final=True),
        "S0012L01": basket(
            "quiero", "I want", [*[(" ".join(["quiero"] * n), "I want" * n) for n in range(1, 11)]]
        ),
    }
    code = setup(workspace, baskets, legos, sources=LATE_SOURCES, seed_range=[11, 12])
    return validate(workspace, code)


def test_phrase_count_low_after_seed_10(workspace: Workspace) -> None:
    report = late_course(workspace, [("comer comer", "eat eat")])
    issue = one(report, "phrase-count-low")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("warning", "S0011", "S0011L01")
    assert issue.message == "S0011L01: 1 practice phrases; aim for 10 where the vocabulary allows"
    assert report.valid


def test_phrase_count_low_does_not_count_the_appended_seed(workspace: Workspace) -> None:
    report = late_course(workspace, comer_phrases(9) + [("¡Comer!", "To eat!")])
    assert one(report, "phrase-count-low").message.startswith("S0011L01: 9 practice phrases")


def test_phrase_count_ten_after_seed_10_passes(workspace: Workspace) -> None:
    report = late_course(workspace, comer_phrases(10) + [("comer", "to eat")])
    assert only(report, "phrase-count-low") == [] and only(report, "phrase-count") == []


def test_phrase_count_low_exempt_for_seeds_1_to_10(workspace: Workspace) -> None:
    assert only(validate(workspace, setup(workspace)), "phrase-count-low") == []


# --- phrase-growth -------------------------------------------------------------------------------


def test_phrase_growth_warns_once_per_basket(workspace: Workspace) -> None:
    item = phrases_of(
        "S0001L02",
        ("Quiero hablar español", "I want to speak Spanish"),
        ("hablar español", "to speak Spanish"),
        ("hablar español", "speaking Spanish"),
        ("quiero hablar español ahora", "I want to speak Spanish now"),
        ("hablar español", "speak Spanish"),
    )
    report = validate(workspace, setup(workspace, with_basket("S0001L02", item)))
    issue = one(report, "phrase-growth")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("warning", "S0001", "S0001L02")
    assert issue.message == (
        'S0001L02: phrase 2 "hablar español" is shorter than the one before; '
        "order phrases from short to long"
    )


def test_phrase_growth_equal_lengths_pass(workspace: Workspace) -> None:
    item = phrases_of(
        "S0001L02",
        ("hablar español", "to speak Spanish"),
        ("Quiero hablar español", "I want to speak Spanish"),
        ("hablar español ahora", "to speak Spanish now"),
    )
    assert (
        only(validate(workspace, setup(workspace, with_basket("S0001L02", item))), "phrase-growth")
        == []
    )


def test_phrase_growth_not_exempt_for_a_short_last_phrase_that_is_not_the_seed(
    workspace: Workspace,
) -> None:
    item = phrases_of(
        "S0002L02",
        ("comer", "to eat"),
        ("Quiero comer ahora", "I want to eat now"),
        ("comer", "eat"),
    )
    assert one(
        validate(workspace, setup(workspace, with_basket("S0002L02", item))), "phrase-growth"
    )


# --- final-lego-flag / final-phrase / phrase-count-field -----------------------------------------


def test_final_lego_flag_true_on_a_middle_lego(workspace: Workspace) -> None:
    baskets = spanish_baskets()
    baskets["S0001L02"]["is_final_lego"] = True
    report = validate(workspace, setup(workspace, baskets))
    issue = one(report, "final-lego-flag")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("warning", "S0001", "S0001L02")
    assert issue.message == "S0001L02: is_final_lego should be false"


def test_final_lego_flag_false_on_the_last_lego(workspace: Workspace) -> None:
    baskets = spanish_baskets()
    baskets["S0003L03"]["is_final_lego"] = False
    assert one(validate(workspace, setup(workspace, baskets)), "final-lego-flag").message == (
        "S0003L03: is_final_lego should be true"
    )


def test_final_lego_is_the_last_listed_even_when_it_is_a_repeat(workspace: Workspace) -> None:
    # S0002's last LEGO (L02) is new here; make its last LEGO a repeat: then L01 has no final flag
    legos = spanish_legos()
    legos[1]["legos"] = [legos[1]["legos"][1], {**legos[1]["legos"][0], "id": "S0002L03"}]
    legos[1]["legos"][0]["id"] = "S0002L02"
    baskets = spanish_baskets()
    baskets["S0002L02"] = basket("comer", "to eat", [("comer", "to eat"), SEED2], final=False)
    report = validate(workspace, setup(workspace, baskets, legos))
    assert only(report, "final-lego-flag") == [] and only(report, "final-phrase") == []


def test_final_phrase_missing(workspace: Workspace) -> None:
    item = phrases_of("S0002L02", ("comer", "to eat"), ("Quiero comer ahora", "I want to eat now"))
    issue = one(
        validate(workspace, setup(workspace, with_basket("S0002L02", item))), "final-phrase"
    )
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("warning", "S0002", "S0002L02")
    assert (
        issue.message
        == 'S0002L02: the last LEGO\'s basket should end with the whole seed "Quiero comer."'
    )


def test_final_phrase_empty_basket(workspace: Workspace) -> None:
    item = phrases_of("S0002L02")
    assert one(validate(workspace, setup(workspace, with_basket("S0002L02", item))), "final-phrase")


def test_final_phrase_matches_after_normalisation(workspace: Workspace) -> None:
    item = phrases_of("S0002L02", ("comer", "to eat"), ("¡QUIERO COMER!", "i want to eat"))
    assert (
        only(validate(workspace, setup(workspace, with_basket("S0002L02", item))), "final-phrase")
        == []
    )


def test_phrase_count_field_disagrees(workspace: Workspace) -> None:
    baskets = spanish_baskets()
    baskets["S0003L01"]["phrase_count"] = 5
    issue = one(validate(workspace, setup(workspace, baskets)), "phrase-count-field")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("warning", "S0003", "S0003L01")
    assert issue.message == "S0003L01: phrase_count is 5 but there are 2 phrases"


# --- --batch K and overrides ---------------------------------------------------------------------


def test_batch_k_checks_only_that_batch(workspace: Workspace) -> None:
    baskets = spanish_baskets()
    del baskets["S0001L01"]  # batch 1 problem
    baskets["S0003L03"]["phrase_count"] = 9  # batch 3 problem
    code = setup(workspace, baskets, batch_size=1)
    full = validate(workspace, code)
    assert sorted((i.batch, i.rule) for i in full.issues) == [
        (1, "basket-keys"),
        (3, "phrase-count-field"),
    ]
    third = validate(workspace, code, batch=3)
    assert [(i.batch, i.rule, i.lego_id) for i in third.issues] == [
        (3, "phrase-count-field", "S0003L03")
    ]
    assert third.stats["baskets"] == 2 and third.stats["batches_checked"] == 1
    assert validate(workspace, code, batch=2).issues == []


def test_gate_under_batch_k_still_uses_earlier_vocabulary(workspace: Workspace) -> None:
    item = phrases_of(
        "S0003L01",
        ("ella quiere", "she wants"),
        ("Ella quiere hablar español contigo", "She wants to speak Spanish with you"),
    )
    code = setup(workspace, with_basket("S0003L01", item), batch_size=1)
    assert validate(workspace, code, batch=3).issues == []


def test_override_gate_to_warning(workspace: Workspace) -> None:
    item = phrases_of(
        "S0002L02",
        ("comer", "to eat"),
        ("Quiere comer.", "He wants to eat."),
        ("Quiero comer.", "I want to eat."),
    )
    report = validate(
        workspace,
        setup(
            workspace,
            with_basket("S0002L02", item),
            rules={"vocabulary-gate": "warning", "phrase-contains-lego": "off"},
        ),
    )
    assert one(report, "vocabulary-gate").severity == "warning"
    assert report.valid


def test_override_off_removes_the_issue(workspace: Workspace) -> None:
    baskets = spanish_baskets()
    baskets["S0003L01"]["phrase_count"] = 5
    report = validate(workspace, setup(workspace, baskets, rules={"phrase-count-field": "off"}))
    assert report.issues == []


def test_unknown_rule_name_is_an_input_error(workspace: Workspace) -> None:
    with pytest.raises(InputError) as exc:
        validate(workspace, setup(workspace, rules={"gate": "warning"}))
    assert exc.value.exit_code == 2 and "rules.gate" in str(exc.value)


# --- the gate in other scripts (issue 15): fixtures written for these tests -----------------------


def _untaught(legos: list[str], phrase: str) -> list[str]:
    from freshbatch.rules.phase5 import Course

    seeds = [
        seed(f"S{n:04d}", target, target, lego(f"S{n:04d}L01", target, f"known {n}"))
        for n, target in enumerate(legos, 1)
    ]
    course = Course({"seeds": seeds})
    return course.untaught(phrase, course.legos[f"S{len(legos):04d}L01"])


@pytest.mark.parametrize(
    ("legos", "phrase", "untaught"),
    [
        (["日本語を話したい", "今日"], "あした日本語を話したい", ["あした"]),  # a kana word
        (["日本語を話したい", "あした"], "あした日本語を話したい", []),
        (["ฉันอยากพูด", "ภาษาไทย"], "ฉันอยากพูดภาษาไทย", []),  # Thai words
        (["ฉันอยากพูด", "ภาษาไทย"], "ฉันอยากกินข้าว", ["กินข้าว"]),  # one dictionary word
        (["أريد", "معك"], "أُرِيدُ ومعك", []),  # marks dropped; و written onto a taught word
        (["хочу́", "говорить"], "хочу говори́ть", []),  # Russian stress marks
        (["می\u200cخواهم", "بروم"], "می\u200cخواهم بروم", []),  # Persian ZWNJ
        (["저는", "배워요"], "저는 한국어를 배워요", ["한국어를"]),  # Korean
        (["我想", "学中文"], "我想学中文", []),  # Chinese, per character
    ],
)
def test_gate_in_other_scripts(legos: list[str], phrase: str, untaught: list[str]) -> None:
    assert _untaught(legos, phrase) == untaught
