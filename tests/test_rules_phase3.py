"""Phase 3 rules (SPEC §4): one passing and one failing fixture per rule in phase.yaml."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from conftest import REPO, make_course

from freshbatch.errors import InputError
from freshbatch.issues import Issue
from freshbatch.rules.phase3 import Registry
from freshbatch.text import key
from freshbatch.validation import ValidationReport, validate_phase
from freshbatch.workspace import Workspace

# --- builders ------------------------------------------------------------------------------------


def lego(
    lego_id: str,
    target: str,
    known: str,
    *,
    kind: str = "A",
    new: bool = True,
    components: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """A LEGO; components are (target, known) pairs."""
    item: dict[str, Any] = {
        "id": lego_id,
        "type": kind,
        "new": new,
        "lego": {"known": known, "target": target},
    }
    if components is not None:
        item["components"] = [{"known": k, "target": t} for t, k in components]
    return item


def seed(seed_id: str, target: str, known: str, *legos: dict[str, Any]) -> dict[str, Any]:
    return {
        "seed_id": seed_id,
        "seed_pair": {"known": known, "target": target},
        "legos": list(legos),
    }


def simple(seed_id: str, *pieces: tuple[str, str]) -> dict[str, Any]:
    """A seed made of type-A LEGOs laid end to end; `new` is fixed by with_new_flags()."""
    legos = [lego(f"{seed_id}L{n:02d}", t, k) for n, (t, k) in enumerate(pieces, 1)]
    return seed(seed_id, " ".join(t for t, _ in pieces), " ".join(k for _, k in pieces), *legos)


def with_new_flags(seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    for entry in seeds:
        for item in entry["legos"]:
            pair = (key(item["lego"]["target"]), key(item["lego"]["known"]))
            item["new"] = pair not in seen
            seen.add(pair)
    return seeds


SOURCES = ["I want to speak {target} with you now.", "I want to eat.", "She wants to eat now."]
PHASE1 = {
    "S0001": {
        "known": "I want to speak Spanish with you now.",
        "target": "Quiero hablar español contigo ahora.",
    },
    "S0002": {"known": "I want to eat.", "target": "Quiero comer."},
    "S0003": {"known": "She wants to eat now.", "target": "Ella quiere comer ahora."},
}


def spanish_seeds() -> list[dict[str, Any]]:
    return [
        seed(
            "S0001",
            "Quiero hablar español contigo ahora.",
            "I want to speak Spanish with you now.",
            lego("S0001L01", "Quiero", "I want"),
            lego(
                "S0001L02",
                "hablar español",
                "to speak Spanish",
                kind="M",
                components=[("hablar", "to speak"), ("español", "Spanish")],
            ),
            lego(
                "S0001L03",
                "contigo ahora",
                "with you now",
                kind="M",
                components=[("contigo", "with you"), ("ahora", "now")],
            ),
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
            lego(
                "S0003L01",
                "Ella quiere",
                "she wants",
                kind="M",
                components=[("ella", "she"), ("quiere", "wants")],
            ),
            lego("S0003L02", "comer", "to eat", new=False),
            lego("S0003L03", "ahora", "now"),
        ),
    ]


def setup(
    workspace: Workspace,
    seeds: list[dict[str, Any]] | None = None,
    *,
    code: str = "spa_for_eng",
    sources: list[str] | None = None,
    phase1: dict[str, Any] | None = PHASE1,
    **settings: Any,
) -> str:
    """Write a course with lego_pairs.json (and seed_pairs.json unless phase1 is None)."""
    seeds = spanish_seeds() if seeds is None else seeds
    files: dict[str, Any] = {"lego_pairs.json": {"course": code, "seeds": seeds}}
    if phase1 is not None:
        files["seed_pairs.json"] = {"course": code, "translations": phase1}
    make_course(workspace, code, SOURCES if sources is None else sources, files=files, **settings)
    return code


def validate(workspace: Workspace, code: str, **kwargs: Any) -> ValidationReport:
    return validate_phase(workspace, "phase3", code, **kwargs)


def only(report: ValidationReport, rule: str) -> list[Issue]:
    return [i for i in report.issues if i.rule == rule]


def one(report: ValidationReport, rule: str) -> Issue:
    found = only(report, rule)
    assert len(found) == 1, report.issues
    return found[0]


def changed(change: Any) -> list[dict[str, Any]]:
    seeds = spanish_seeds()
    change(seeds)
    return seeds


# --- the clean fixture ---------------------------------------------------------------------------


def test_clean_spanish_course_has_no_issues(workspace: Workspace) -> None:
    report = validate(workspace, setup(workspace))
    assert report.issues == []
    assert report.valid
    stats = report.stats
    assert (stats["seeds"], stats["legos"], stats["tiling_exact"], stats["tiling_covered"]) == (
        3,
        8,
        3,
        3,
    )
    assert (stats["foreign_legos"], stats["new"], stats["known_texts_with_two_targets"]) == (
        0,
        6,
        0,
    )


def test_every_declared_rule_is_covered_here() -> None:
    declared = set(
        yaml.safe_load((REPO / "validators/phase3/phase.yaml").read_text("utf-8"))["rules"]
    )
    tested = {
        "schema",
        "seed-ids",
        "seed-pair-matches-phase1",
        "empty-seed",
        "lego-id",
        "lego-id-gap",
        "tiling-exact",
        "tiling-coverage",
        "lego-contiguous",
        "components-missing",
        "components-rebuild",
        "components-on-atomic",
        "new-flag",
        "known-collision",
        "known-collision-course",
        "lone-function-word",
    }
    assert declared == tested


# --- schema --------------------------------------------------------------------------------------


def test_schema_missing_new_flag_names_seed_and_lego(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[1]["legos"][1].pop("new"))
    report = validate(workspace, setup(workspace, seeds))
    issue = one(report, "schema")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0002", "S0002L02")
    assert "'new' is a required property" in issue.message
    assert not report.valid


def test_schema_bad_type_value(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[0]["legos"][0].update(type="B"))
    issue = one(validate(workspace, setup(workspace, seeds)), "schema")
    assert issue.lego_id == "S0001L01" and "'B' is not one of ['A', 'M']" in issue.message


def test_schema_invalid_input_file_is_an_input_error(workspace: Workspace) -> None:
    code = setup(workspace, phase1={"S0001": {"known": "x"}})
    with pytest.raises(InputError) as exc:
        validate(workspace, code)
    assert exc.value.exit_code == 2
    assert "seed_pairs.json: not a valid phase1 file" in str(exc.value)


# --- seed-ids ------------------------------------------------------------------------------------


def test_seed_missing(workspace: Workspace) -> None:
    issue = one(validate(workspace, setup(workspace, changed(lambda s: s.pop(1)))), "seed-ids")
    assert (issue.severity, issue.seed_id, issue.batch) == ("error", "S0002", 1)
    assert issue.message == "S0002: seed missing; give its LEGOs"


def test_seed_listed_twice(workspace: Workspace) -> None:
    seeds = changed(lambda s: s.insert(2, copy.deepcopy(s[1])))
    issue = [i for i in validate(workspace, setup(workspace, seeds)).issues if i.rule == "seed-ids"]
    assert [(i.seed_id, i.message) for i in issue] == [
        ("S0002", "S0002: listed twice; give each seed once")
    ]


def test_seeds_out_of_order(workspace: Workspace) -> None:
    seeds = changed(lambda s: s.reverse())
    issue = one(validate(workspace, setup(workspace, seeds)), "seed-ids")
    assert (
        issue.message
        == "batch S0001-S0003: seeds are out of course order; list them as S-number order"
    )


def test_seed_outside_the_plan(workspace: Workspace) -> None:
    seeds = changed(lambda s: s.append(simple("S0007", ("hola", "hello"))))
    issue = one(validate(workspace, setup(workspace, seeds)), "seed-ids")
    assert (issue.seed_id, issue.batch) == ("S0007", None)
    assert issue.message == "S0007: not a seed of this course's plan"


# --- seed-pair-matches-phase1 --------------------------------------------------------------------


def test_seed_pair_differs_from_phase1(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[1]["seed_pair"].update(target="Quiero comer"))
    issue = one(validate(workspace, setup(workspace, seeds)), "seed-pair-matches-phase1")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0002", None)
    assert (
        issue.message
        == 'S0002: seed_pair differs from the phase 1 translation "Quiero comer."; copy it exactly'
    )


def test_seed_pair_without_phase1_translation(workspace: Workspace) -> None:
    phase1 = {k: v for k, v in PHASE1.items() if k != "S0003"}
    issue = one(validate(workspace, setup(workspace, phase1=phase1)), "seed-pair-matches-phase1")
    assert issue.message == "S0003: no phase 1 translation in seed_pairs.json"


def test_seed_pair_not_checked_without_seed_pairs_file(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[1]["seed_pair"].update(target="Quiero comer"))
    assert validate(workspace, setup(workspace, seeds, phase1=None)).issues == []


# --- empty-seed ----------------------------------------------------------------------------------


def test_empty_seed(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[1]["legos"].clear())
    report = validate(workspace, setup(workspace, seeds))
    issue = one(report, "empty-seed")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0002", None)
    assert issue.message == 'S0002: no LEGOs; cut "Quiero comer." into LEGOs'
    assert not any(i.rule.startswith("tiling") and i.seed_id == "S0002" for i in report.issues)


# --- lego-id -------------------------------------------------------------------------------------


def lego_id_issues(workspace: Workspace, change: Any) -> list[tuple[str | None, str]]:
    report = validate(workspace, setup(workspace, changed(change)))
    return [(i.lego_id, i.message) for i in only(report, "lego-id")]


def test_lego_id_bad_format(workspace: Workspace) -> None:
    assert lego_id_issues(workspace, lambda s: s[0]["legos"][0].update(id="S0001-01")) == [
        ("S0001-01", "S0001-01: not a LEGO id like S0001L01")
    ]


def test_lego_id_wrong_seed_prefix(workspace: Workspace) -> None:
    assert lego_id_issues(workspace, lambda s: s[1]["legos"][1].update(id="S0003L09")) == [
        ("S0003L09", "S0003L09: id does not start with its seed S0002")
    ]


def test_lego_id_used_in_an_earlier_seed(workspace: Workspace) -> None:
    found = lego_id_issues(workspace, lambda s: s[1]["legos"][0].update(id="S0001L01"))
    assert ("S0001L01", "S0001L01: id used twice in the course") in found


def test_lego_id_duplicated_within_its_seed_is_called_a_duplicate(workspace: Workspace) -> None:
    found = lego_id_issues(workspace, lambda s: s[2]["legos"][1].update(id="S0003L01"))
    assert found, "a duplicate id must be an lego-id error"
    assert any("twice" in message for _, message in found), found


def test_lego_id_descending(workspace: Workspace) -> None:
    def swap(s: list[dict[str, Any]]) -> None:
        s[0]["legos"][0]["id"], s[0]["legos"][1]["id"] = "S0001L02", "S0001L01"

    assert lego_id_issues(workspace, swap) == [
        ("S0001L01", "S0001L01: ids must ascend within the seed")
    ]


# --- lego-id-gap ---------------------------------------------------------------------------------


def test_lego_id_gap(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[0]["legos"][2].update(id="S0001L05"))
    report = validate(workspace, setup(workspace, seeds))
    issue = one(report, "lego-id-gap")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("warning", "S0001", None)
    assert issue.message == "S0001: LEGO numbers skip L03, L04"
    assert report.valid


def test_lego_id_gap_at_the_start(workspace: Workspace) -> None:
    def renumber(s: list[dict[str, Any]]) -> None:
        s[1]["legos"][0]["id"], s[1]["legos"][1]["id"] = "S0002L04", "S0002L05"

    issue = one(validate(workspace, setup(workspace, changed(renumber))), "lego-id-gap")
    assert issue.message == "S0002: LEGO numbers skip L01, L02, L03"


# --- tiling-exact / tiling-coverage / lego-contiguous (Spanish) ----------------------------------


def overlap_course(workspace: Workspace) -> ValidationReport:
    seeds = [
        seed(
            "S0001",
            "Las noticias tardaron varias horas.",
            "The news took several hours.",
            lego("S0001L01", "Las noticias tardaron", "the news took"),
            lego("S0001L02", "tardaron varias horas", "took several hours"),
        )
    ]
    return validate(
        workspace, setup(workspace, seeds, sources=["The news took several hours."], phase1=None)
    )


def test_tiling_exact_fails_for_overlap_only(workspace: Workspace) -> None:
    report = overlap_course(workspace)
    issue = one(report, "tiling-exact")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0001", None)
    assert issue.message == (
        'S0001: LEGOs laid end to end without overlap rebuild only "las noticias tardaron"; none '
        'starts at "varias horas" where that chain ends (overlapping LEGOs do not count); the seed '
        'is "Las noticias tardaron varias horas."'
    )
    assert only(report, "tiling-coverage") == []  # T2 passes
    assert report.stats["tiling_exact"] == 0 and report.stats["tiling_covered"] == 1


def test_tiling_exact_passes_with_reuse_and_backtracking(workspace: Workspace) -> None:
    seeds = with_new_flags(
        [
            seed(
                "S0001",
                "No quiero comer nada, no quiero.",
                "I don't want to eat anything, I don't want to.",
                lego("S0001L01", "no quiero", "I don't want"),
                lego("S0001L02", "no", "not"),
                lego("S0001L03", "quiero comer nada", "want to eat anything"),
            )
        ]
    )
    report = validate(workspace, setup(workspace, seeds, sources=["x"], phase1=None))
    assert only(report, "tiling-exact") == [] and only(report, "tiling-coverage") == []
    assert report.stats["tiling_exact"] == 1


def test_tiling_coverage_names_the_uncovered_words(workspace: Workspace) -> None:
    seeds = with_new_flags(
        [
            seed(
                "S0003",
                "Creo que eso es una buena idea.",
                "I think that's a good idea.",
                lego("S0003L01", "eso es", "that's"),
                lego("S0003L02", "una buena idea", "a good idea"),
            )
        ]
    )
    report = validate(
        workspace,
        setup(
            workspace,
            [simple("S0001", ("hola", "hello")), simple("S0002", ("adiós", "bye")), *seeds],
            phase1=None,
        ),
    )
    coverage = one(report, "tiling-coverage")
    assert (coverage.severity, coverage.seed_id, coverage.lego_id) == ("warning", "S0003", None)
    assert coverage.message == 'S0003: no LEGO covers "creo que"'
    exact = one(report, "tiling-exact")
    assert exact.message.startswith('S0003: no LEGO covers "creo que", so the LEGOs cannot rebuild')


def test_tiling_coverage_names_each_gap(workspace: Workspace) -> None:
    seeds = [simple("S0001", ("quiero", "I want")), simple("S0002", ("comer", "to eat"))]
    seeds.append(
        seed(
            "S0003",
            "Ella quiere comer algo ahora.",
            "She wants to eat something now.",
            lego("S0003L01", "quiere", "wants"),
            lego("S0003L02", "algo", "something"),
        )
    )
    issue = one(
        validate(workspace, setup(workspace, with_new_flags(seeds), phase1=None)), "tiling-coverage"
    )
    assert issue.message == 'S0003: no LEGO covers "ella", "comer", "ahora"'


def test_lego_contiguous_typo_variant(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[2]["legos"][2]["lego"].update(target="ahorita"))
    report = validate(workspace, setup(workspace, seeds))
    issue = one(report, "lego-contiguous")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("warning", "S0003", "S0003L03")
    assert (
        issue.message
        == 'S0003L03: "ahorita" is not a contiguous part of the seed "Ella quiere comer ahora."'
    )
    assert report.stats["foreign_legos"] == 1
    assert one(report, "tiling-coverage").message == 'S0003: no LEGO covers "ahora"'


# --- tiling in Chinese ---------------------------------------------------------------------------

CN_SOURCES = ["I want to speak {target}.", "I want to speak {target} with you now."]


def chinese(workspace: Workspace, second: dict[str, Any]) -> ValidationReport:
    first = seed(
        "S0001",
        "我想说中文。",
        "I want to speak Chinese.",
        lego("S0001L01", "我想", "I want"),
        lego("S0001L02", "说中文", "to speak Chinese"),
    )
    code = setup(
        workspace,
        with_new_flags([first, second]),
        code="cmn_for_eng",
        sources=CN_SOURCES,
        target="cmn",
        target_name="Chinese",
        phase1=None,
    )
    return validate(workspace, code)


def test_chinese_exact_tiling_passes(workspace: Workspace) -> None:
    second = seed(
        "S0002",
        "我现在想和你说中文。",
        "I want to speak Chinese with you now.",
        lego("S0002L01", "我现在想", "I now want"),
        lego("S0002L02", "和你", "with you"),
        lego("S0002L03", "说中文", "to speak Chinese"),
    )
    report = chinese(workspace, second)
    assert report.issues == []
    assert report.stats["tiling_exact"] == 2


def test_chinese_non_contiguous_lego_is_foreign(workspace: Workspace) -> None:
    second = seed(
        "S0002",
        "我现在想和你说中文。",
        "I want to speak Chinese with you now.",
        lego("S0002L01", "我想", "I want"),
        lego("S0002L02", "现在", "now"),
        lego("S0002L03", "和你", "with you"),
        lego("S0002L04", "说中文", "to speak Chinese"),
    )
    report = chinese(workspace, second)
    foreign = one(report, "lego-contiguous")
    assert (foreign.severity, foreign.seed_id, foreign.lego_id) == ("warning", "S0002", "S0002L01")
    assert (
        foreign.message
        == 'S0002L01: "我想" is not a contiguous part of the seed "我现在想和你说中文。"'
    )
    assert one(report, "tiling-coverage").message == 'S0002: no LEGO covers "我", "想"'
    exact = one(report, "tiling-exact")
    assert (exact.severity, exact.seed_id) == ("error", "S0002")
    assert report.stats["foreign_legos"] == 1
    assert not report.valid


# --- components ----------------------------------------------------------------------------------


def test_components_missing(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[0]["legos"][1].pop("components"))
    issue = one(validate(workspace, setup(workspace, seeds)), "components-missing")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0001", "S0001L02")
    assert issue.message == 'S0001L02: type M needs components that spell "hablar español"'


def test_components_empty_list_counts_as_missing(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[0]["legos"][1].update(components=[]))
    assert (
        one(validate(workspace, setup(workspace, seeds)), "components-missing").lego_id
        == "S0001L02"
    )


def test_components_rebuild_fails_for_an_extended_lego(workspace: Workspace) -> None:
    seeds = [
        seed(
            "S0001",
            "No estoy seguro si viene.",
            "I'm not sure if he's coming.",
            lego(
                "S0001L01",
                "No estoy seguro si",
                "I'm not sure if",
                kind="M",
                components=[("no", "not"), ("estoy", "I am"), ("seguro", "sure")],
            ),
            lego("S0001L02", "viene", "he's coming"),
        )
    ]
    issue = one(
        validate(workspace, setup(workspace, seeds, sources=["x"], phase1=None)),
        "components-rebuild",
    )
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0001", "S0001L01")
    assert issue.message == (
        'S0001L01: components "no" + "estoy" + "seguro" do not spell the LEGO "No estoy seguro si"'
    )


def test_components_rebuild_passes_for_a_clitic_split(workspace: Workspace) -> None:
    seeds = [
        seed(
            "S0001",
            "¿Puedes mostrarme?",
            "Can you show me?",
            lego("S0001L01", "¿Puedes", "can you"),
            lego(
                "S0001L02",
                "mostrarme",
                "to show me",
                kind="M",
                components=[("mostrar", "to show"), ("me", "me")],
            ),
        )
    ]
    report = validate(workspace, setup(workspace, seeds, sources=["x"], phase1=None))
    assert report.issues == []


def test_components_rebuild_fails_on_an_accent_difference(workspace: Workspace) -> None:
    seeds = [
        seed(
            "S0001",
            "Quiero dárselo.",
            "I want to give it to him.",
            lego("S0001L01", "quiero", "I want"),
            lego(
                "S0001L02",
                "dárselo",
                "to give it to him",
                kind="M",
                components=[("dar", "to give"), ("se", "to him"), ("lo", "it")],
            ),
        )
    ]
    issue = one(
        validate(workspace, setup(workspace, seeds, sources=["x"], phase1=None)),
        "components-rebuild",
    )
    assert issue.lego_id == "S0001L02"


def test_components_on_atomic(workspace: Workspace) -> None:
    seeds = changed(
        lambda s: s[1]["legos"][1].update(components=[{"known": "to eat", "target": "comer"}])
    )
    issue = one(validate(workspace, setup(workspace, seeds)), "components-on-atomic")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("error", "S0002", "S0002L02")
    assert issue.message == "S0002L02: type A must not have components; make it type M or drop them"


def test_atomic_with_empty_components_list_passes(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[1]["legos"][1].update(components=[]))
    assert validate(workspace, setup(workspace, seeds)).issues == []


# --- new-flag ------------------------------------------------------------------------------------


def test_new_flag_true_on_a_repeat(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[1]["legos"][0].update(new=True))
    report = validate(workspace, setup(workspace, seeds))
    issue = one(report, "new-flag")
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("warning", "S0002", "S0002L01")
    assert (
        issue.message
        == 'S0002L01: new is true but "quiero" = "I want" appeared earlier in the course'
    )


def test_new_flag_false_on_a_first_appearance(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[2]["legos"][2].update(new=False))
    issue = one(validate(workspace, setup(workspace, seeds)), "new-flag")
    assert issue.lego_id == "S0003L03"
    assert issue.message == 'S0003L03: new is false but "ahora" = "now" first appears here'


def test_new_flag_keys_on_target_and_known_together(workspace: Workspace) -> None:
    # same target with another known is a new LEGO; case and punctuation do not matter
    seeds = [
        simple("S0001", ("quiero", "I want")),
        seed(
            "S0002",
            "Te quiero.",
            "I love you.",
            lego("S0002L01", "te", "you", new=True),
            lego("S0002L02", "quiero", "I love", new=True),
        ),
        seed("S0003", "¡Quiero!", "I want!", lego("S0003L01", "¡Quiero!", "I WANT", new=False)),
    ]
    report = validate(workspace, setup(workspace, seeds, phase1=None))
    assert only(report, "new-flag") == []
    seeds[1]["legos"][1]["new"] = False
    make_course(
        workspace,
        "spa_for_eng_b",
        SOURCES,
        files={"lego_pairs.json": {"course": "x", "seeds": seeds}},
    )
    issue = one(validate(workspace, "spa_for_eng_b"), "new-flag")
    assert issue.lego_id == "S0002L02" and "first appears here" in issue.message


def test_new_flag_repeat_within_one_seed(workspace: Workspace) -> None:
    seeds = [
        seed(
            "S0001",
            "Quiero comer y quiero beber.",
            "I want to eat and I want to drink.",
            lego("S0001L01", "quiero", "I want"),
            lego("S0001L02", "comer", "to eat"),
            lego("S0001L03", "y", "and"),
            lego("S0001L04", "quiero", "I want", new=True),
            lego("S0001L05", "beber", "to drink"),
        )
    ]
    report = validate(workspace, setup(workspace, seeds, sources=["x"], phase1=None))
    assert one(report, "new-flag").lego_id == "S0001L04"
    assert report.stats["new"] == 4
    assert only(report, "tiling-exact") == []


# --- known-collision / known-collision-course ----------------------------------------------------


def numbered_sources(count: int) -> list[str]:
    return [f"Sentence {i}." for i in range(1, count + 1)]


def collision_course(workspace: Workspace, seeds: list[dict[str, Any]], **settings: Any) -> str:
    count = max(int(s["seed_id"][1:]) for s in seeds)
    return setup(
        workspace, with_new_flags(seeds), sources=numbered_sources(count), phase1=None, **settings
    )


def collisions(report: ValidationReport) -> list[tuple[str, str, str | None, int | None]]:
    return [
        (i.rule, i.severity, i.lego_id, i.batch)
        for i in report.issues
        if i.rule.startswith("known-collision")
    ]


def test_collision_within_seeds_1_to_100_is_an_error_across_batches(workspace: Workspace) -> None:
    seeds = [simple("S0001", ("comer", "to eat")), simple("S0002", ("almorzar", "to eat"))]
    report = validate(workspace, collision_course(workspace, seeds, batch_size=1))
    assert collisions(report) == [("known-collision", "error", "S0002L01", 2)]
    issue = one(report, "known-collision")
    assert issue.seed_id == "S0002"
    assert issue.message == (
        'S0002L01: known "to eat" already means "comer" (S0001); here it is '
        '"almorzar", so the learner cannot tell which to say; use the earlier target or chunk up '
        "with this seed's words"
    )
    assert report.stats["known_texts_with_two_targets"] == 1
    assert not report.valid


def test_collision_boundary_at_seed_100(workspace: Workspace) -> None:
    seeds = [
        simple("S0099", ("comer", "to eat")),
        simple("S0100", ("almorzar", "to eat")),
        simple("S0101", ("cenar", "to eat")),
    ]
    report = validate(
        workspace, collision_course(workspace, seeds, seed_range=[99, 101], batch_size=1)
    )
    assert collisions(report) == [
        ("known-collision", "error", "S0100L01", 2),
        ("known-collision-course", "warning", "S0101L01", 3),
    ]
    assert report.stats["known_texts_with_two_targets"] == 1


def test_collision_after_seed_100_within_one_batch_is_an_error(workspace: Workspace) -> None:
    seeds = [simple("S0101", ("comer", "to eat")), simple("S0102", ("almorzar", "to eat"))]
    report = validate(
        workspace, collision_course(workspace, seeds, seed_range=[101, 102], batch_size=2)
    )
    assert collisions(report) == [("known-collision", "error", "S0102L01", 1)]


def test_collision_after_seed_100_across_batches_is_a_course_warning(workspace: Workspace) -> None:
    seeds = [
        simple("S0101", ("comer", "to eat")),
        simple("S0102", ("hola", "hello")),
        simple("S0103", ("almorzar", "to eat")),
    ]
    report = validate(
        workspace, collision_course(workspace, seeds, seed_range=[101, 103], batch_size=2)
    )
    assert collisions(report) == [("known-collision-course", "warning", "S0103L01", 2)]
    issue = one(report, "known-collision-course")
    assert (
        issue.seed_id == "S0103"
        and '"comer" (S0101)' in issue.message
        and '"almorzar"' in issue.message
    )
    assert report.valid


def test_collision_inside_a_later_batch_is_an_error_even_if_the_first_target_is_older(
    workspace: Workspace,
) -> None:
    # "to eat" means "almorzar" at S0103 and "cenar" at S0104, both in batch 2: that is two
    # targets within one batch (an error), whatever "to eat" meant back in batch 1.
    seeds = [
        simple("S0101", ("comer", "to eat")),
        simple("S0102", ("hola", "hello")),
        simple("S0103", ("almorzar", "to eat")),
        simple("S0104", ("cenar", "to eat")),
    ]
    report = validate(
        workspace, collision_course(workspace, seeds, seed_range=[101, 104], batch_size=2)
    )
    assert ("known-collision", "error", "S0104L01", 2) in collisions(report)


def test_collision_within_a_batch_between_two_old_targets_is_an_error(
    workspace: Workspace,
) -> None:
    # The held-out Chinese course: "you all" had both targets before this batch; S0663 uses one
    # and S0664 the other, in one batch. SPEC: every within-batch collision is an error.
    seeds = [
        simple("S0641", ("你们大家", "you all")),
        simple("S0642", ("你们大家都", "you all")),
        simple("S0661", ("你们大家", "you all")),
        simple("S0662", ("你们大家都", "you all")),
    ]
    report = validate(
        workspace,
        collision_course(
            workspace,
            seeds,
            seed_range=[641, 662],
            batch_size=20,
            target="cmn",
            target_name="Chinese",
        ),
    )
    found = collisions(report)
    assert ("known-collision", "error", "S0662L01", 2) in found
    assert ("known-collision", "error", "S0661L01", 2) not in found  # same as S0641: no new target
    issue = [i for i in report.issues if i.lego_id == "S0662L01"][0]
    assert '"你们大家" (S0661)' in issue.message  # names the seed of this batch


def test_collision_blames_the_cut_short_lego(workspace: Workspace) -> None:
    # Real S0135: L01 "No sé por" is broken, L02 "No sé por qué" is right; both "I don't know why".
    entry = seed(
        "S0135",
        "No sé por qué piensas eso.",
        "I don't know why you think that.",
        lego("S0135L01", "No sé por", "I don't know why"),
        lego("S0135L02", "No sé por qué", "I don't know why"),
        lego("S0135L03", "piensas eso", "you think that"),
    )
    report = validate(
        workspace, collision_course(workspace, [entry], seed_range=[135, 135], batch_size=1)
    )
    assert collisions(report) == [("known-collision", "error", "S0135L01", 1)]
    message = one(report, "known-collision").message
    assert message.startswith('S0135L01: known "I don\'t know why" is given as the cut-short')
    assert "fix S0135L01" in message


def test_collision_after_seed_100_with_more_than_100_seeds_in_the_file(
    workspace: Workspace,
) -> None:
    seeds = [simple(f"S{i:04d}", (f"palabra{i}", f"word {i}")) for i in range(1, 111)]
    seeds[104] = simple("S0105", ("comer", "to eat"))
    seeds[109] = simple("S0110", ("almorzar", "to eat"))
    report = validate(workspace, collision_course(workspace, seeds, batch_size=5))
    assert collisions(report) == [("known-collision-course", "warning", "S0110L01", 22)]
    assert report.stats["batches_checked"] == 22


def test_no_collision_for_the_same_target_after_normalisation(workspace: Workspace) -> None:
    seeds = [
        simple("S0001", ("comer", "to eat")),
        simple("S0002", ("¡Comer!", "To eat!")),
        simple("S0003", ("comer", "eating")),
    ]
    report = validate(workspace, collision_course(workspace, seeds))
    assert collisions(report) == []
    assert report.stats["known_texts_with_two_targets"] == 0


def test_batch_k_checks_only_k_and_keeps_earlier_state(workspace: Workspace) -> None:
    seeds = [
        simple("S0001", ("comer", "to eat")),
        seed(
            "S0002",
            "comer almorzar",
            "to eat to eat",
            lego("S0002L01", "comer", "to eat", new=True),  # wrong: a repeat
            lego("S0002L02", "almorzar", "to eat"),
        ),
        simple("S0003", ("hola", "hello")),
    ]
    code = setup(workspace, seeds, sources=numbered_sources(3), phase1=None, batch_size=1)
    only_two = validate(workspace, code, batch=2)
    assert {i.batch for i in only_two.issues} == {2}
    assert {(i.rule, i.lego_id) for i in only_two.issues} == {
        ("known-collision", "S0002L02"),
        ("new-flag", "S0002L01"),
    }
    assert only_two.stats["batches_checked"] == 1 and only_two.stats["seeds"] == 1
    assert validate(workspace, code, batch=1).issues == []
    assert validate(workspace, code, batch=3).issues == []


def test_batch_k_sees_ids_of_earlier_batches(workspace: Workspace) -> None:
    seeds = [simple("S0001", ("comer", "to eat")), simple("S0002", ("hola", "hello"))]
    seeds[1]["legos"][0]["id"] = "S0001L01"
    code = setup(workspace, seeds, sources=numbered_sources(2), phase1=None, batch_size=1)
    messages = [i.message for i in only(validate(workspace, code, batch=2), "lego-id")]
    assert "S0001L01: id used twice in the course" in messages


# --- lone-function-word --------------------------------------------------------------------------


def test_lone_function_word_spanish(workspace: Workspace) -> None:
    seeds = [
        seed(
            "S0001",
            "Creo que viene.",
            "I think that he's coming.",
            lego("S0001L01", "creo", "I think"),
            lego("S0001L02", "Que", "that"),
            lego("S0001L03", "viene", "he's coming"),
        )
    ]
    issue = one(
        validate(workspace, setup(workspace, seeds, sources=["x"], phase1=None)),
        "lone-function-word",
    )
    assert (issue.severity, issue.seed_id, issue.lego_id) == ("warning", "S0001", "S0001L02")
    assert issue.message == (
        'S0001L02: "Que" is a function word on its own; join it to the word it belongs with'
    )


def test_lone_function_word_passes_when_joined(workspace: Workspace) -> None:
    seeds = [
        seed(
            "S0001",
            "Creo que viene.",
            "I think that he's coming.",
            lego("S0001L01", "creo", "I think"),
            lego("S0001L02", "que viene", "that he's coming"),
        )
    ]
    report = validate(workspace, setup(workspace, seeds, sources=["x"], phase1=None))
    assert report.issues == []


def test_lone_function_word_chinese(workspace: Workspace) -> None:
    second = seed(
        "S0002",
        "我的书。",
        "My book.",
        lego("S0002L01", "我", "I"),
        lego("S0002L02", "的", "'s"),
        lego("S0002L03", "书", "book"),
    )
    report = chinese(workspace, second)
    issue = one(report, "lone-function-word")
    assert issue.lego_id == "S0002L02" and '"的"' in issue.message


def test_lone_function_word_list_is_per_language(workspace: Workspace) -> None:
    # "de" is Spanish; in a Chinese course a Latin "de" LEGO is not on the list
    second = seed("S0002", "我的书。", "My book.", lego("S0002L01", "我的书", "my book"))
    assert only(chinese(workspace, second), "lone-function-word") == []


# --- severity overrides --------------------------------------------------------------------------


def test_override_error_to_warning_makes_the_file_valid(workspace: Workspace) -> None:
    code = setup(
        workspace, changed(lambda s: s[0]["legos"].pop(2)), rules={"tiling-exact": "warning"}
    )
    report = validate(workspace, code)
    issue = one(report, "tiling-exact")
    assert (issue.severity, issue.seed_id) == ("warning", "S0001")
    assert report.valid
    assert report.stats["errors"] == 0 and report.stats["warnings"] == 2  # + tiling-coverage


def test_override_off_removes_the_issue(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[0]["legos"][2].update(id="S0001L05"))
    report = validate(workspace, setup(workspace, seeds, rules={"lego-id-gap": "off"}))
    assert report.issues == []
    assert report.stats["by_rule"] == {}


def test_override_warning_to_error(workspace: Workspace) -> None:
    seeds = changed(lambda s: s[1]["legos"][0].update(new=True))
    report = validate(workspace, setup(workspace, seeds, rules={"new-flag": "error"}))
    assert one(report, "new-flag").severity == "error"
    assert not report.valid


def test_override_of_a_rule_from_another_phase_is_accepted(workspace: Workspace) -> None:
    report = validate(workspace, setup(workspace, rules={"phrase-growth": "off"}))
    assert report.valid


def test_unknown_rule_name_is_an_input_error(workspace: Workspace) -> None:
    code = setup(workspace, rules={"tiling-exactly": "off"})
    with pytest.raises(InputError) as exc:
        validate(workspace, code)
    assert exc.value.exit_code == 2
    assert "course.yaml" in str(exc.value) and "rules.tiling-exactly is not a rule" in str(
        exc.value
    )


def test_registry_copies_are_independent_both_ways() -> None:
    """A copy shares inner dicts until either side changes one: neither sees the other's
    later additions (the runner judges on a copy while the kept registry moves on)."""
    base = Registry()
    base.add("S0001L01", {"target": "quiero", "known": "I want"}, "S0001", 1)
    copy = base.copy()
    base.add("S0002L01", {"target": "deseo", "known": "I want"}, "S0002", 2)
    copy.add("S0003L01", {"target": "anhelo", "known": "I want"}, "S0003", 3)
    assert set(base.targets["i want"]) == {"quiero", "deseo"}
    assert set(copy.targets["i want"]) == {"quiero", "anhelo"}
    assert base.ids == {"S0001L01", "S0002L01"} and copy.ids == {"S0001L01", "S0003L01"}
    assert not copy.is_new({"target": "quiero", "known": "I want"})
    assert copy.is_new({"target": "deseo", "known": "I want"})
    again = copy.copy()  # a copy of a copy, then the middle one changes
    copy.add("S0004L01", {"target": "ansío", "known": "I want"}, "S0004", 4)
    assert set(again.targets["i want"]) == {"quiero", "anhelo"}


# --- the batch schema refuses what the instructions forbid ---------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"id": "S0001L01"}, "unexpected field"),
        ({"new": True}, "unexpected field"),
        ({"components": []}, "a type A LEGO has no components key"),
        ({"components": [{"known": "I", "target": "quiero"}]}, "a type A LEGO has no components"),
    ],
)
def test_batch_schema_refuses_forbidden_lego_fields(
    workspace: Workspace, extra: dict[str, Any], message: str
) -> None:
    from freshbatch.issues import Reporter
    from freshbatch.phases import load_phases
    from freshbatch.schema import check_schema

    phase = load_phases(workspace)[3]
    item = {"type": "A", "lego": {"known": "I want", "target": "quiero"}, **extra}
    answer = {"seeds": [{"seed_id": "S0001", "legos": [item]}]}
    report = Reporter(phase.rules, {}, 1)
    assert check_schema(phase.batch_schema, answer, report) == 1
    assert message in report.issues[0].message
    ok = {"seeds": [{"seed_id": "S0001", "legos": [{"type": "A", "lego": item["lego"]}]}]}
    assert check_schema(phase.batch_schema, ok, Reporter(phase.rules, {}, 1)) == 0
