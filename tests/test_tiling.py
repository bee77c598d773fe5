"""SPEC §4 tiling: T1 exact cover, T2 coverage, T3 contiguity (pure functions)."""

from __future__ import annotations

import pytest

from freshbatch.text import tokens
from freshbatch.tiling import tile


def judge(seed: str, *legos: str):  # type: ignore[no-untyped-def]
    return tile(tokens(seed), [tokens(lego) for lego in legos])


# --- T1 ------------------------------------------------------------------------------------------


def test_t1_exact_cover_in_order() -> None:
    result = judge(
        "Quiero hablar español contigo ahora.", "Quiero", "hablar español", "contigo ahora"
    )
    assert result.is_exact and result.is_covered
    assert result.foreign == ()
    assert result.reach == 5


def test_t1_ignores_case_and_punctuation() -> None:
    assert judge("¿Quieres HABLAR?", "quieres", "hablar").is_exact


def test_t1_lego_order_in_the_list_does_not_matter() -> None:
    assert judge("quiero hablar español", "hablar español", "quiero").is_exact


def test_t1_reuses_a_lego_twice() -> None:
    result = judge("Quiero comer y quiero beber.", "quiero", "comer", "y", "beber")
    assert result.is_exact
    assert result.uncovered == ()


def test_t1_needs_backtracking_when_the_longest_first_choice_is_a_dead_end() -> None:
    # greedy "no quiero" leaves "comer nada", which no LEGO starts; "no" + "quiero comer nada" works
    result = judge("No quiero comer nada.", "no quiero", "no", "quiero comer nada")
    assert result.is_exact
    assert result.reach == 4


def test_t1_backtracking_with_three_alternative_paths() -> None:
    result = judge("a b c d e", "a b", "a", "b c", "c d e", "b c d", "e")
    assert result.is_exact


def test_t1_fails_when_only_overlapping_legos_cover_the_seed() -> None:
    result = judge(
        "Las noticias tardaron varias horas.", "las noticias tardaron", "tardaron varias horas"
    )
    assert not result.is_exact
    assert result.is_covered  # T2 holds
    assert result.foreign == ()
    assert result.reach == 3  # "las noticias tardaron" and no LEGO starts at "varias"


def test_t1_fails_with_an_extra_token_in_a_lego() -> None:
    result = judge("quiero comer", "quiero comer algo")
    assert not result.is_exact
    assert result.foreign == (0,)


def test_t1_fails_when_a_token_is_missing() -> None:
    result = judge("quiero comer ahora", "quiero", "comer")
    assert not result.is_exact
    assert result.reach == 2


def test_t1_fails_for_an_empty_seed() -> None:
    assert not judge("¿?", "quiero").is_exact


def test_t1_fails_with_no_legos() -> None:
    result = judge("quiero comer")
    assert not result.is_exact
    assert result.uncovered == ((0, 2),)


def test_t1_with_a_single_whole_sentence_lego() -> None:
    assert judge("Quiero comer.", "quiero comer").is_exact


# --- T2 ------------------------------------------------------------------------------------------


def test_t2_names_each_uncovered_run() -> None:
    result = judge("Creo que eso es una buena idea.", "eso es", "buena idea")
    assert result.uncovered == ((0, 2), (4, 5))
    assert not result.is_covered
    assert not result.is_exact


def test_t2_uncovered_run_at_the_end() -> None:
    result = judge("quiero comer algo ahora", "quiero comer")
    assert result.uncovered == ((2, 4),)


def test_t2_a_foreign_lego_covers_nothing() -> None:
    result = judge("quiero comer", "quiero", "comerlo")
    assert result.uncovered == ((1, 2),)
    assert result.foreign == (1,)


# --- T3 ------------------------------------------------------------------------------------------


def test_t3_typo_variant_lego_is_foreign() -> None:
    result = judge(
        "cómo hablar lo más frecuentamente posible", "cómo hablar", "lo más frecuentemente posible"
    )
    assert result.foreign == (1,)
    assert result.uncovered == ((2, 6),)


def test_t3_lists_every_foreign_lego_by_index() -> None:
    result = judge("quiero comer", "quiere", "quiero", "comes")
    assert result.foreign == (0, 2)


def test_t3_non_contiguous_words_are_foreign() -> None:
    result = judge("no quiero comer", "no comer", "no quiero", "comer")
    assert result.foreign == (0,)
    assert result.is_exact  # the other LEGOs still tile


# --- Chinese -------------------------------------------------------------------------------------


def test_chinese_exact_cover_per_character() -> None:
    result = judge("我想说中文。", "我想", "说中文")
    assert result.is_exact
    assert result.reach == 5


def test_chinese_lego_not_contiguous_in_the_seed_is_foreign() -> None:
    result = judge("我现在想和你说中文。", "我想", "现在", "和你", "说中文")
    assert result.foreign == (0,)
    assert result.uncovered == ((0, 1), (3, 4))  # 我 and 想
    assert not result.is_exact
    assert result.reach == 0


def test_chinese_overlap_only_is_covered_but_not_exact() -> None:
    result = judge("我现在想和你说中文", "我现在想", "想和你说", "说中文")
    assert result.is_covered
    assert not result.is_exact


def test_chinese_reuse_and_backtracking() -> None:
    result = judge("我想你，我想家。", "我想你我", "我想", "你", "家")
    assert result.is_exact


# --- scripts beyond Latin (issue 15): small fixtures written for these tests --------------------


@pytest.mark.parametrize(
    ("seed", "legos", "exact"),
    [
        ("あした日本語を話したい", ["あした", "日本語を", "話したい"], True),  # Japanese
        ("あした日本語を話したい", ["あした日本語を話", "したい"], False),  # cut inside 話し
        ("ฉันอยากพูดภาษาไทย", ["ฉันอยาก", "พูดภาษาไทย"], True),  # Thai words
        ("ฉันอยากพูดภาษาไทย", ["ฉันอยากพู", "ดภาษาไทย"], False),  # cut inside พูด
        ("أُرِيدُ أَنْ أَتَكَلَّمَ", ["أريد", "أن أتكلم"], True),  # Arabic, marks only on the seed
        ("Я хочу́ говори́ть", ["я хочу", "говорить"], True),  # Russian stress marks
        ("می\u200cخواهم بروم", ["می\u200cخواهم", "بروم"], True),  # Persian ZWNJ
        ("저는 한국어를 배워요", ["저는", "한국어를 배워요"], True),  # Korean
        ("我想学中文", ["我想", "学中文"], True),  # Chinese per character
    ],
)
def test_tiling_in_other_scripts(seed: str, legos: list[str], exact: bool) -> None:
    assert tile(tokens(seed), [tokens(lego) for lego in legos]).is_exact is exact
