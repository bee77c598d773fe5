"""The one text normalisation every comparison uses (SPEC §2).

NFC, case-fold; every character that is not a letter, digit or combining mark separates tokens;
Han, hiragana and katakana characters are one token each; word forms are kept exactly.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_CJK = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f]"
)
_LATIN_WORDS = re.compile(r"[^\W_]+")


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LMN"


@lru_cache(maxsize=200_000)
def tokens(text: str) -> tuple[str, ...]:
    """Split text into normalised tokens (cached: course files repeat the same strings)."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
    if max(folded, default="a") < "\u0300":
        return tuple(_LATIN_WORDS.findall(folded))
    out: list[str] = []
    word: list[str] = []
    for char in folded:
        if _CJK.match(char) and _is_word_char(char):  # not ・ or ゠, which are punctuation
            if word:
                out.append("".join(word))
                word = []
            out.append(char)
        elif _is_word_char(char):
            word.append(char)
        elif word:
            out.append("".join(word))
            word = []
    if word:
        out.append("".join(word))
    return tuple(out)


def squash(text: str) -> str:
    """The normalised tokens joined with nothing: compares clitic splits (mostrar+me)."""
    return "".join(tokens(text))


@lru_cache(maxsize=200_000)
def key(text: str) -> str:
    """A normalised comparison key that keeps token boundaries (cached, as tokens is)."""
    return " ".join(tokens(text))


def find_span(haystack: tuple[str, ...], needle: tuple[str, ...]) -> int:
    """Index of the first occurrence of needle as a contiguous run of haystack, or -1."""
    size = len(needle)
    if size == 0 or size > len(haystack):
        return -1
    first = needle[0]
    for start in range(len(haystack) - size + 1):
        if haystack[start] == first and haystack[start : start + size] == needle:
            return start
    return -1


def span_starts(haystack: tuple[str, ...], needle: tuple[str, ...]) -> list[int]:
    """Every start index where needle occurs as a contiguous run of haystack."""
    size = len(needle)
    if size == 0:
        return []
    return [
        start
        for start in range(len(haystack) - size + 1)
        if haystack[start : start + size] == needle
    ]


def has_script(text: str, script: str) -> bool:
    """Whether text holds at least one character of the named script (Unicode name prefix)."""
    return any(char_script(char) == script for char in text)


def char_script(char: str) -> str | None:
    """The script of a letter, from its Unicode name ('LATIN', 'CJK', 'CYRILLIC'...)."""
    if not char.isalpha():
        return None
    if _CJK.match(char):
        return "CJK"
    name = unicodedata.name(char, "")
    first = name.split(" ", 1)[0]
    if first in {"HIRAGANA", "KATAKANA"}:
        return "CJK"
    if first == "HANGUL":
        return "HANGUL"
    return first or None


# The script a language is written in, for swap detection; languages not listed are not checked.
LANGUAGE_SCRIPTS = {
    **dict.fromkeys(["cmn", "zho", "yue", "wuu", "jpn"], "CJK"),
    "kor": "HANGUL",
    **dict.fromkeys(["rus", "ukr", "bel", "bul", "mkd", "srp", "kaz", "mon"], "CYRILLIC"),
    "ell": "GREEK",
    **dict.fromkeys(["ara", "fas", "urd", "pus"], "ARABIC"),
    **dict.fromkeys(["heb", "yid"], "HEBREW"),
    **dict.fromkeys(["hin", "mar", "nep"], "DEVANAGARI"),
    "ben": "BENGALI",
    "tha": "THAI",
    "kat": "GEORGIAN",
    "hye": "ARMENIAN",
    **dict.fromkeys(
        "eng spa ita fra deu por nld cat glg eus cym gle gla pol ces slk hun ron swe nor nob "
        "dan fin est lav lit tur vie ind msa tgl swa afr isl mlt slv hrv bos sqi".split(),
        "LATIN",
    ),
}
