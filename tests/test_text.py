"""SPEC §2 normalisation: tokens, squash, key, find_span."""

from __future__ import annotations

import unicodedata

import pytest

from freshbatch.text import find_span, key, span_starts, squash, tokens

# --- 1. NFC, then case-fold ----------------------------------------------------------------------


def test_decomposed_and_composed_input_give_the_same_token() -> None:
    composed = "espa\u00f1ol"
    decomposed = "espan\u0303ol"
    assert composed != decomposed
    assert tokens(decomposed) == tokens(composed) == ("espa\u00f1ol",)
    assert len(tokens(decomposed)[0]) == 7  # NFC: one code point for ñ


def test_decomposed_accent_in_a_non_latin_fast_path_text_is_composed() -> None:
    # a Han character forces the slow path; the decomposed é must still compose
    assert tokens("cafe\u0301 \u4e2d") == ("caf\u00e9", "\u4e2d")


def test_case_fold_lowers_capitals() -> None:
    assert tokens("QUIERO Hablar") == ("quiero", "hablar")


def test_case_fold_expands_sharp_s() -> None:
    assert tokens("Straße") == tokens("STRASSE") == tokens("strasse") == ("strasse",)


def test_case_fold_handles_capital_sharp_s() -> None:
    assert tokens("STRA\u1e9eE") == ("strasse",)


def test_case_fold_of_accented_capitals() -> None:
    assert tokens("ÉL ESTÁ AQUÍ") == ("él", "está", "aquí")


# --- 2. separators -------------------------------------------------------------------------------


def test_spanish_inverted_punctuation_is_a_separator() -> None:
    assert tokens("¿Quieres hablar?¡Sí!") == ("quieres", "hablar", "sí")


def test_punctuation_and_quotes_vanish() -> None:
    assert tokens('«Hola», dijo: "ya; vale."') == ("hola", "dijo", "ya", "vale")


@pytest.mark.parametrize("apostrophe", ["'", "\u2019", "\u2018"])
def test_apostrophes_split_words(apostrophe: str) -> None:
    assert tokens(f"J{apostrophe}ai faim") == ("j", "ai", "faim")


def test_apostrophe_split_is_identical_on_both_sides() -> None:
    assert key("j'ai") == key("j ai") == "j ai"


@pytest.mark.parametrize("dash", ["-", "\u2010", "\u2013", "\u2014"])
def test_hyphens_and_dashes_split_words(dash: str) -> None:
    assert tokens(f"arc{dash}en{dash}ciel") == ("arc", "en", "ciel")


def test_underscore_is_a_separator_on_both_code_paths() -> None:
    assert tokens("a_b") == ("a", "b")
    assert tokens("ё_b") == ("ё", "b")  # Cyrillic: the general path


def test_digits_are_word_characters() -> None:
    assert tokens("Tengo 2 gatos y 10 perros") == ("tengo", "2", "gatos", "y", "10", "perros")


def test_cjk_punctuation_is_a_separator() -> None:
    assert tokens("我想说中文。你呢？好，「对」！") == tuple("我想说中文你呢好对")


def test_only_punctuation_gives_no_tokens() -> None:
    assert tokens("¿?¡! ... 。，？") == ()
    assert tokens("") == ()


# --- 3. Han, hiragana, katakana: one token per character -----------------------------------------


def test_han_characters_are_one_token_each() -> None:
    assert tokens("我现在想和你说中文") == ("我", "现", "在", "想", "和", "你", "说", "中", "文")


def test_japanese_kana_words_are_whole_words() -> None:
    # issue 15: per character, 20 kana counted as taught after 3 seeds; janome cuts words
    assert tokens("こんにちは") == ("こんにちは",)
    assert tokens("カタカナ") == ("カタカナ",)


def test_mixed_latin_and_han_split_at_the_script_boundary() -> None:
    assert tokens("我爱Python3和AI！") == ("我", "爱", "python3", "和", "ai")


def test_katakana_middle_dot_is_punctuation_not_a_token() -> None:
    # U+30FB KATAKANA MIDDLE DOT is category Po (script Common): SPEC §2 makes it a separator.
    assert unicodedata.category("\u30fb") == "Po"
    assert tokens("ジョン・スミス") == ("ジョン", "スミス")


# --- 4. word forms are kept ----------------------------------------------------------------------


def test_word_forms_are_not_stemmed() -> None:
    assert tokens("quiero") != tokens("quiere")
    assert key("Quiero comer") != key("Quiere comer")


def test_accents_are_kept() -> None:
    assert tokens("esté") != tokens("este")


def test_devanagari_combining_marks_stay_inside_the_word() -> None:
    text = "नमस्ते दुनिया हिंदी"
    assert tokens(text) == ("नमस्ते", "दुनिया", "हिंदी")
    assert any(unicodedata.category(c) in ("Mn", "Mc") for c in tokens(text)[0])


def test_combining_mark_after_a_latin_letter_stays_in_the_word() -> None:
    # a mark with no precomposed form (q + combining dot below) must not split the word
    assert tokens("aq\u0323b c") == ("aq\u0323b", "c")


def test_latin_fast_path_agrees_with_general_path_for_every_char_below_u0300() -> None:
    # tokens() takes a regex shortcut when all characters are below U+0300; a Han character
    # forces the general per-character path. Both must tokenise the same way.
    for code in range(0x300):
        char = chr(code)
        fast = tokens(f"a{char}b")
        general = tokens(f"a{char}b \u4e2d")[:-1]
        assert fast == general, hex(code)


# --- squash and key ------------------------------------------------------------------------------


def test_squash_joins_tokens_without_separators() -> None:
    assert squash("mostrar me") == squash("mostrarme") == "mostrarme"
    assert squash("¿Por qué?") == "porqué"


def test_squash_of_chinese_removes_punctuation() -> None:
    assert squash("我想，说中文。") == "我想说中文"


def test_key_keeps_token_boundaries() -> None:
    assert key("¡No, quiero!") == "no quiero"
    assert key("noquiero") != key("no quiero")


# --- find_span -----------------------------------------------------------------------------------


def test_find_span_returns_the_first_start() -> None:
    assert find_span(("a", "b", "c", "b", "c"), ("b", "c")) == 1


def test_find_span_of_the_whole_sequence_is_zero() -> None:
    hay = tokens("quiero hablar español")
    assert find_span(hay, hay) == 0


def test_find_span_missing_needle() -> None:
    assert find_span(tokens("quiero hablar"), tokens("quiere")) == -1


def test_find_span_needs_contiguity() -> None:
    assert find_span(("a", "b", "c"), ("a", "c")) == -1


def test_find_span_empty_or_too_long_needle() -> None:
    assert find_span(("a",), ()) == -1
    assert find_span(("a",), ("a", "a")) == -1
    assert find_span((), ("a",)) == -1


def test_find_span_in_chinese_needs_adjacent_characters() -> None:
    seed = tokens("我现在想和你说中文。")
    assert find_span(seed, tokens("我想")) == -1
    assert find_span(seed, tokens("想和你")) == 3
    assert find_span(seed, tokens("说中文")) == 6


def test_find_span_is_case_and_punctuation_blind_through_tokens() -> None:
    assert find_span(tokens("¿Quieres HABLAR conmigo?"), tokens("hablar conmigo")) == 1


def test_span_starts_lists_every_occurrence() -> None:
    assert span_starts(tokens("quiero comer y quiero beber"), tokens("quiero")) == [0, 3]
    assert span_starts(("a",), ()) == []


# --- scripts beyond SPEC §2 (issue 15): fixtures written for these tests --------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Japanese: words by janome, kanji-only words per character (as a kanji-only LEGO is)
        ("あした日本語を話したい。", ("あした", "日", "本", "語", "を", "話し", "たい")),
        ("ｶﾀｶﾅで", ("カタカナ", "で")),  # half-width kana folded to full width
        # Thai: words, not one token per clause
        ("ฉันอยากพูดภาษาไทย", ("ฉัน", "อยาก", "พูด", "ภาษาไทย")),
        # Arabic: harakat and tatweel dropped
        ("كِتَابٌ", ("كتاب",)),
        ("كتـــاب", ("كتاب",)),
        # Russian: the stress mark dropped, ё kept
        ("приве́т ёж", ("привет", "ёж")),
        # Persian: the zero-width non-joiner stays inside the word
        ("می\u200cخواهم بروم", ("می\u200cخواهم", "بروم")),
        # Korean: space-separated words (eojeol)
        ("저는 한국어를 배워요", ("저는", "한국어를", "배워요")),
        # Chinese: per character (SPEC §2)
        ("我想学中文。", ("我", "想", "学", "中", "文")),
        # full-width Latin and digits
        ("ＯＫ１２", ("ok12",)),
    ],
)
def test_tokens_in_other_scripts(text: str, expected: tuple[str, ...]) -> None:
    assert tokens(text) == expected


def test_arabic_proclitic_bases() -> None:
    from freshbatch.text import clitic_bases

    assert clitic_bases("ومعك") == ("معك",)
    assert clitic_bases("وا") == ()  # too short to be و + a word
    assert clitic_bases("معك") == ()
