"""The one text normalisation every comparison uses (SPEC §2), extended for more scripts.

NFC, case-fold; every character that is not a letter, digit or combining mark separates tokens;
word forms are kept exactly. Beyond SPEC §2 (issue 15):

- width: full- and half-width forms and Arabic presentation forms are folded by NFKC (only
  those blocks: NFKC elsewhere would change real letters, e.g. superscripts or ligatures);
- Arabic: vowel marks (harakat), the superscript alef and tatweel are dropped, so `كِتَاب`,
  `كتـاب` and `كتاب` are one word; Russian: a stress mark (U+0301) on Cyrillic is dropped;
- a zero-width non-joiner or joiner inside a word stays in it (Persian `می‌خواهم` is one word);
- Chinese: each Han character is a token (SPEC); Japanese (any text with kana) is cut into
  words by janome's dictionary, then words written in Han only are split per character again,
  so a kanji-only LEGO (`日本語`) still tiles the same way inside a sentence; Thai is cut into
  words by PyThaiNLP (newmm, its bundled dictionary). Both load lazily, on first use.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

_CJK = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f]"
)
_LATIN_WORDS = re.compile(r"[^\W_]+")
_WIDTH = re.compile("[\u3000\uff01-\uffef\ufb50-\ufdff\ufe70-\ufefe]+")
_DROPPED = re.compile(
    "[\u0640\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed]"
)
_STRESS = re.compile("(?<=[\u0400-\u04ff])\u0301")
_JOINERS = frozenset("\u200c\u200d")
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_THAI = re.compile("[\u0e00-\u0e7f]+")


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LMN"


def normalise(text: str) -> str:
    """NFC, case-fold, width folding, Arabic marks and Cyrillic stress dropped."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
    if max(folded, default="a") < "\u0300":
        return folded
    folded = _WIDTH.sub(lambda m: unicodedata.normalize("NFKC", m.group()).casefold(), folded)
    return _STRESS.sub("", _DROPPED.sub("", folded))


@lru_cache(maxsize=200_000)
def tokens(text: str) -> tuple[str, ...]:
    """Split text into normalised tokens (cached: course files repeat the same strings)."""
    folded = normalise(text)
    if max(folded, default="a") < "\u0300":
        return tuple(_LATIN_WORDS.findall(folded))
    if _KANA.search(folded):
        return _japanese(folded)
    out: list[str] = []
    word: list[str] = []

    def flush() -> None:
        while word and word[-1] in _JOINERS:
            word.pop()
        if word:
            joined = "".join(word)
            out.extend(_thai(joined) if _THAI.search(joined) else (joined,))
            word.clear()

    for char in folded:
        if _CJK.match(char) and _is_word_char(char):  # not ・ or ゠, which are punctuation
            flush()
            out.append(char)
        elif _is_word_char(char) or (char in _JOINERS and word):
            word.append(char)
        else:
            flush()
    flush()
    return tuple(out)


def _japanese(folded: str) -> tuple[str, ...]:
    """Japanese words by janome; words of Han only are split per character (see above)."""
    out: list[str] = []
    for surface in _janome().tokenize(folded, wakati=True):
        for piece in _plain_words(str(surface)):
            if all(_HAN.match(c) for c in piece):
                out.extend(piece)
            else:
                out.append(piece)
    return tuple(out)


def _plain_words(text: str) -> list[str]:
    """The word-character runs of one segment (punctuation and spaces dropped)."""
    runs, word = [], []
    for char in text:
        if _is_word_char(char):
            word.append(char)
        elif word:
            runs.append("".join(word))
            word = []
    if word:
        runs.append("".join(word))
    return runs


def _thai(word: str) -> tuple[str, ...]:
    """A run of Thai letters cut into words (PyThaiNLP newmm and its bundled dictionary)."""
    from pythainlp.tokenize import word_tokenize

    return tuple(w for w in word_tokenize(word, engine="newmm", keep_whitespace=False) if w)


@lru_cache(maxsize=1)
def _janome() -> Any:
    from janome.tokenizer import Tokenizer

    return Tokenizer(wakati=True)


ARABIC_PROCLITICS = ("و", "ف")  # "and", "so": written joined to the next word


def clitic_bases(token: str) -> tuple[str, ...]:
    """The word a token may be with an Arabic conjunction proclitic taken off (ومعك -> معك)."""
    if len(token) > 2 and token[0] in ARABIC_PROCLITICS and "\u0600" <= token[1] <= "\u06ff":
        return (token[1:],)
    return ()


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
