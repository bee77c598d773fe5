"""Unicode scripts: which script a letter is in, which scripts a language is written in, and
words that mix Latin, Cyrillic and Greek look-alikes (issue 15).

The lookup is a table of code-point ranges written from the Unicode Scripts.txt blocks the
course languages use (the stdlib has no script property; `regex` has one but would be a
dependency for one lookup). A letter outside the table falls back to the first word of its
Unicode name ("TAMIL LETTER A" -> "Tamil"), so rarer scripts still get a name.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

# (first, last, script), sorted by first code point, never overlapping
_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x005A, "Latin"),
    (0x0061, 0x007A, "Latin"),
    (0x00AA, 0x00AA, "Latin"),
    (0x00BA, 0x00BA, "Latin"),
    (0x00C0, 0x024F, "Latin"),  # × and ÷ are not letters, so never looked up
    (0x0250, 0x02AF, "Latin"),  # IPA extensions
    (0x0370, 0x03FF, "Greek"),
    (0x0400, 0x052F, "Cyrillic"),
    (0x0530, 0x058F, "Armenian"),
    (0x0590, 0x05FF, "Hebrew"),
    (0x0600, 0x06FF, "Arabic"),
    (0x0750, 0x077F, "Arabic"),
    (0x08A0, 0x08FF, "Arabic"),
    (0x0900, 0x097F, "Devanagari"),
    (0x0980, 0x09FF, "Bengali"),
    (0x0A00, 0x0A7F, "Gurmukhi"),
    (0x0A80, 0x0AFF, "Gujarati"),
    (0x0B80, 0x0BFF, "Tamil"),
    (0x0C00, 0x0C7F, "Telugu"),
    (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Lao"),
    (0x1000, 0x109F, "Myanmar"),
    (0x10A0, 0x10FF, "Georgian"),
    (0x1100, 0x11FF, "Hangul"),
    (0x1200, 0x139F, "Ethiopic"),
    (0x1780, 0x17FF, "Khmer"),
    (0x1C80, 0x1C8F, "Cyrillic"),
    (0x1C90, 0x1CBF, "Georgian"),
    (0x1E00, 0x1EFF, "Latin"),
    (0x1F00, 0x1FFF, "Greek"),
    (0x2C60, 0x2C7F, "Latin"),
    (0x2D00, 0x2D2F, "Georgian"),
    (0x2DE0, 0x2DFF, "Cyrillic"),
    (0x2E80, 0x2FDF, "Han"),  # radicals
    (0x3005, 0x3007, "Han"),  # 々 〆 〇
    (0x3021, 0x3029, "Han"),
    (0x3038, 0x303B, "Han"),
    (0x3040, 0x309F, "Hiragana"),
    (0x30A0, 0x30FF, "Katakana"),  # with ー, the long-vowel mark Japanese writes in words
    (0x3100, 0x312F, "Bopomofo"),
    (0x3130, 0x318F, "Hangul"),
    (0x31A0, 0x31BF, "Bopomofo"),
    (0x31F0, 0x31FF, "Katakana"),
    (0x3400, 0x4DBF, "Han"),
    (0x4E00, 0x9FFF, "Han"),
    (0xA640, 0xA69F, "Cyrillic"),
    (0xA720, 0xA7FF, "Latin"),
    (0xA960, 0xA97F, "Hangul"),
    (0xAB30, 0xAB6F, "Latin"),
    (0xAC00, 0xD7FF, "Hangul"),
    (0xF900, 0xFAFF, "Han"),
    (0xFB00, 0xFB06, "Latin"),
    (0xFB13, 0xFB17, "Armenian"),
    (0xFB1D, 0xFB4F, "Hebrew"),
    (0xFB50, 0xFDFF, "Arabic"),
    (0xFE70, 0xFEFF, "Arabic"),
    (0xFF21, 0xFF3A, "Latin"),
    (0xFF41, 0xFF5A, "Latin"),
    (0xFF66, 0xFF9F, "Katakana"),
    (0xFFA0, 0xFFDC, "Hangul"),
    (0x20000, 0x3134F, "Han"),
)
_STARTS = [first for first, _, _ in _RANGES]


def char_script(char: str) -> str | None:
    """The Unicode script of a letter ('Latin', 'Cyrillic', 'Han', 'Hiragana'...), or None
    for anything that is not a letter (digits, punctuation, marks)."""
    if not unicodedata.category(char).startswith("L"):
        return None
    point = ord(char)
    index = bisect.bisect_right(_STARTS, point) - 1
    if index >= 0 and point <= _RANGES[index][1]:
        return _RANGES[index][2]
    first = unicodedata.name(char, "").split(" ", 1)[0]
    return first.title() or None


def script_counts(text: str) -> Counter[str]:
    """How many letters of text each script has."""
    counts: Counter[str] = Counter()
    for char in unicodedata.normalize("NFC", text):
        script = char_script(char)
        if script is not None:
            counts[script] += 1
    return counts


def has_script(text: str, script: str) -> bool:
    """Whether text holds at least one letter of the named script."""
    return any(char_script(char) == script for char in text)


# --- the scripts each language is written in ---------------------------------------------


@dataclass(frozen=True)
class Writing:
    """How a language is written: most letters of a sentence are in `scripts`, and at least
    one is in `marks` when it has any (kana for Japanese, Hangul for Korean): the scripts
    that tell it from a neighbour sharing Han."""

    scripts: frozenset[str]
    marks: frozenset[str] = frozenset()


def _writing(scripts: str, marks: str = "") -> Writing:
    return Writing(frozenset(scripts.split()), frozenset(marks.split()))


_KANA = "Hiragana Katakana"
_NON_LATIN: dict[str, Writing] = {
    **dict.fromkeys(["cmn", "zho", "yue", "wuu"], _writing("Han")),
    "jpn": _writing("Han " + _KANA, _KANA),
    "kor": _writing("Hangul Han", "Hangul"),
    **dict.fromkeys("rus ukr bel bul mkd kir tgk tat bak mon".split(), _writing("Cyrillic")),
    **dict.fromkeys(["srp", "kaz", "uzb"], _writing("Cyrillic Latin")),  # both in use
    "ell": _writing("Greek"),
    **dict.fromkeys("ara arb fas pes prs urd pus snd uig ckb".split(), _writing("Arabic")),
    **dict.fromkeys(["heb", "yid"], _writing("Hebrew")),
    **dict.fromkeys(["hin", "mar", "nep", "san"], _writing("Devanagari")),
    "ben": _writing("Bengali"),
    "pan": _writing("Gurmukhi"),
    "guj": _writing("Gujarati"),
    "tam": _writing("Tamil"),
    "tel": _writing("Telugu"),
    "tha": _writing("Thai"),
    "lao": _writing("Lao"),
    "mya": _writing("Myanmar"),
    "khm": _writing("Khmer"),
    "kat": _writing("Georgian"),
    "hye": _writing("Armenian"),
    **dict.fromkeys(["amh", "tir"], _writing("Ethiopic")),
}
LATIN = _writing("Latin")


def language_writing(code: str) -> Writing:
    """The scripts of an ISO 639-3 language; Latin for every language not listed."""
    return _NON_LATIN.get(code, LATIN)


def script_problem(text: str, code: str, other: str) -> str | None:
    """Why text does not look written in language `code` (the course's other language is
    `other`), or None. Judged by the share of letters per script, so a loanword ("OK" in a
    Russian sentence) is fine; where both languages use Han, kana tell Japanese apart."""
    counts = script_counts(text)
    total = sum(counts.values())
    if total == 0:
        return None
    writing, theirs = language_writing(code), language_writing(other)
    inside = sum(n for script, n in counts.items() if script in writing.scripts)
    if inside * 2 < total:
        main = counts.most_common(1)[0][0]
        return f"is mostly {main} letters ({counts[main]} of {total}), not " + " or ".join(
            sorted(writing.scripts)
        )
    if writing.marks and not any(counts[m] for m in writing.marks):
        return "has no " + " or ".join(sorted(writing.marks)) + " letters"
    foreign = sorted(m for m in theirs.marks - writing.scripts if counts[m])
    if foreign:
        return "has " + " and ".join(foreign) + " letters, which the other language uses"
    return None


# --- look-alike letters ----------------------------------------------------------------------

_CONFUSABLE_SCRIPTS = frozenset({"Latin", "Cyrillic", "Greek"})
# letters that look the same in two or three of these scripts (lower and upper case)
_LOOKALIKES = (
    "aаα",
    "cс",
    "eе",
    "oоο",
    "pрρ",
    "xхχ",
    "yуγ",
    "iіι",
    "jј",
    "sѕ",
    "vν",
    "hһ",
    "dԁ",
    "AАΑ",
    "BВΒ",
    "CС",
    "EЕΕ",
    "HНΗ",
    "IІΙ",
    "JЈ",
    "KКΚ",
    "MМΜ",
    "NΝ",
    "OОΟ",
    "PРΡ",
    "SЅ",
    "TТΤ",
    "XХΧ",
    "YУΥ",
    "ZΖ",
)
_TWIN: dict[tuple[str, str], str] = {
    (char, script): twin
    for group in _LOOKALIKES
    for char in group
    for twin in group
    if (script := char_script(twin)) is not None and twin != char
}
_HAS_TWIN = frozenset(char for char, _ in _TWIN)
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class MixedWord:
    """A word with letters of a second script among Latin, Cyrillic or Greek ones."""

    word: str
    script: str  # the script most of its letters are in
    odd: tuple[str, ...]  # its letters in another of the three scripts, in order

    def describe(self, taught: str | None = None) -> str:
        """'"кoт" has Latin "o" (U+006F) among Cyrillic letters; write Cyrillic "о" (U+043E)',
        or, against a taught word, '... where the taught word "кот" has Cyrillic "о" ...'."""
        odd, twins = [], []
        for char in dict.fromkeys(self.odd):
            odd.append(f'{char_script(char)} "{char}" (U+{ord(char):04X})')
            twin = _TWIN.get((char, self.script))
            if twin is not None:
                twins.append(f'{self.script} "{twin}" (U+{ord(twin):04X})')
        said = f'"{self.word}" has ' + ", ".join(odd)
        if taught is not None:
            return said + f' where the taught word "{taught}" has ' + ", ".join(twins)
        said += f" among {self.script} letters"
        return said + ("; write " + ", ".join(twins) if twins else "")

    def fixed(self) -> str:
        """The word with each odd letter replaced by its look-alike in the main script."""
        return "".join(_TWIN.get((c, self.script), c) for c in self.word)


def mixed_words(text: str) -> list[MixedWord]:
    """The words of text that mix Latin, Cyrillic and Greek letters (look-alike typos)."""
    found = []
    for word in _WORD.findall(unicodedata.normalize("NFC", text)):
        scripts = [char_script(c) for c in word]
        counts = Counter(s for s in scripts if s in _CONFUSABLE_SCRIPTS)
        if len(counts) < 2:
            continue
        main = _main_script(counts, word)
        odd = tuple(c for c, s in zip(word, scripts, strict=True) if s in counts and s != main)
        found.append(MixedWord(word, main, odd))
    return found


def _main_script(counts: Counter[str], word: str) -> str:
    """The script most letters are in; on a tie, the one whose letters have no look-alike."""
    best = max(counts.values())
    tied = [s for s, n in counts.items() if n == best]
    if len(tied) == 1:
        return tied[0]
    unique = [s for s in tied if any(char_script(c) == s and c not in _HAS_TWIN for c in word)]
    return (unique or sorted(tied))[0]


def lookalike_of(word: str, is_known: Callable[[str], bool]) -> tuple[MixedWord, str] | None:
    """(the mix, the known word) when word is a known word with look-alike letters swapped in."""
    for mixed in mixed_words(word):
        fixed = mixed.fixed()
        if fixed != word and is_known(fixed):
            return mixed, fixed
    return None
