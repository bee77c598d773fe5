"""The Unicode script lookup, language scripts and look-alike letters (freshbatch/scripts.py)."""

from __future__ import annotations

import unicodedata

import pytest

from freshbatch.scripts import (
    _RANGES,
    char_script,
    language_writing,
    lookalike_of,
    mixed_words,
    script_counts,
    script_problem,
)


@pytest.mark.parametrize(
    ("char", "script"),
    [
        ("a", "Latin"),
        ("É", "Latin"),
        ("ß", "Latin"),
        ("ŋ", "Latin"),
        ("ｚ", "Latin"),
        ("ж", "Cyrillic"),
        ("ё", "Cyrillic"),
        ("ω", "Greek"),
        ("ά", "Greek"),
        ("ש", "Hebrew"),
        ("ك", "Arabic"),
        ("ی", "Arabic"),
        ("ﻙ", "Arabic"),
        ("क", "Devanagari"),
        ("ก", "Thai"),
        ("ა", "Georgian"),
        ("ա", "Armenian"),
        ("한", "Hangul"),
        ("ㅎ", "Hangul"),
        ("あ", "Hiragana"),
        ("カ", "Katakana"),
        ("ｶ", "Katakana"),
        ("ー", "Katakana"),
        ("中", "Han"),
        ("々", "Han"),
        ("𠀀", "Han"),
        ("அ", "Tamil"),
        ("ሀ", "Ethiopic"),
        ("ᚠ", "Runic"),  # outside the table: the first word of its Unicode name
        ("1", None),
        (".", None),
        ("\u0301", None),
        ("\u200c", None),
        ("・", None),
    ],
)
def test_char_script(char: str, script: str | None) -> None:
    assert char_script(char) == script


def test_ranges_are_sorted_and_disjoint() -> None:
    for (_, last, _), (first, _, _) in zip(_RANGES, _RANGES[1:], strict=False):
        assert last < first


def test_every_letter_of_a_named_block_gets_its_blocks_script() -> None:
    for start, end, script in [(0x0410, 0x044F, "Cyrillic"), (0x3041, 0x3096, "Hiragana")]:
        for point in range(start, end + 1):
            assert char_script(chr(point)) == script, unicodedata.name(chr(point))


def test_script_counts_count_letters_only() -> None:
    assert script_counts("Это OK, 100%.") == {"Cyrillic": 3, "Latin": 2}
    assert script_counts("日本語を話す") == {"Han": 4, "Hiragana": 2}


def test_language_writing() -> None:
    assert language_writing("jpn").marks == {"Hiragana", "Katakana"}
    assert language_writing("kor").scripts == {"Hangul", "Han"}
    assert language_writing("xho").scripts == {"Latin"}  # any language not listed: Latin


@pytest.mark.parametrize(
    ("text", "code", "other", "problem"),
    [
        ("Это OK.", "rus", "eng", None),
        ("OK", "rus", "eng", "is mostly Latin letters (2 of 2), not Cyrillic"),
        ("123", "rus", "eng", None),  # no letters: nothing to judge
        ("日本語", "jpn", "cmn", "has no Hiragana or Katakana letters"),
        ("我想说中文です", "cmn", "jpn", "has Hiragana letters, which the other language uses"),
        ("我想说中文です", "cmn", "eng", None),  # kana only matter against Japanese
        ("학교에 가요", "kor", "jpn", None),
        ("學校", "kor", "eng", "has no Hangul letters"),
        ("می\u200cخواهم", "fas", "eng", None),
        ("ฉันอยากพูด", "tha", "eng", None),
    ],
)
def test_script_problem(text: str, code: str, other: str, problem: str | None) -> None:
    assert script_problem(text, code, other) == problem


def test_mixed_words_name_the_odd_letter_and_its_twin() -> None:
    (mixed,) = mixed_words("Я вижу кoт.")
    assert (mixed.word, mixed.script, mixed.odd, mixed.fixed()) == (
        "кoт",
        "Cyrillic",
        ("o",),
        "кот",
    )
    assert mixed.describe() == (
        '"кoт" has Latin "o" (U+006F) among Cyrillic letters; write Cyrillic "о" (U+043E)'
    )
    assert mixed.describe("кот") == (
        '"кoт" has Latin "o" (U+006F) where the taught word "кот" has Cyrillic "о" (U+043E)'
    )


def test_mixed_words_leave_clean_and_other_scripts_alone() -> None:
    assert mixed_words("Это OK, γεια σου, café, 日本語 Ｏｋ") == []
    assert [m.word for m in mixed_words("Καλά Kαλά")] == ["Kαλά"]  # Latin K in a Greek word


def test_lookalike_of_a_taught_word() -> None:
    found = lookalike_of("кoт", {"кот"}.__contains__)
    assert found is not None and found[1] == "кот"
    assert lookalike_of("кот", {"кот"}.__contains__) is None
    assert lookalike_of("кoт", set().__contains__) is None
