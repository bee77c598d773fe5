"""Tiling of a seed by its LEGOs (SPEC §4): exact cover, coverage, contiguity. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from freshbatch.text import span_starts


@dataclass(frozen=True)
class Tiling:
    """How a seed's token sequence is covered by its LEGOs' token sequences."""

    is_exact: bool  # T1: some LEGOs laid end to end, without overlap, rebuild the seed
    uncovered: tuple[tuple[int, int], ...]  # T2 failures: [start, end) runs no LEGO covers
    foreign: tuple[int, ...]  # T3 failures: indexes of LEGOs that are not spans of the seed
    reach: int  # how many leading tokens LEGOs laid end to end rebuild (== len(seed) iff T1)

    @property
    def is_covered(self) -> bool:
        return not self.uncovered


def tile(seed: Sequence[str], legos: Sequence[Sequence[str]]) -> Tiling:
    """Judge T1, T2 and T3 for one seed; LEGOs may repeat and overlap."""
    seed = tuple(seed)
    spans: list[tuple[int, int]] = []
    foreign: list[int] = []
    for index, lego in enumerate(legos):
        starts = span_starts(seed, tuple(lego))
        if not starts:
            foreign.append(index)
        spans.extend((start, start + len(lego)) for start in starts)
    reach = _reach(len(seed), spans)
    exact = bool(seed) and reach == len(seed)
    return Tiling(exact, _uncovered(len(seed), spans), tuple(foreign), reach)


@dataclass(frozen=True)
class WordCut:
    """A LEGO whose every occurrence in the seed starts or ends inside a word."""

    lego: int  # index of the LEGO
    edge: str  # "starts" or "ends"
    word: str  # the word it cuts


def word_cuts(
    seed: Sequence[str], legos: Sequence[Sequence[str]], inside: Mapping[int, str]
) -> list[WordCut]:
    """LEGOs with an edge at a boundary of `inside` (token index -> the word it is inside),
    one per boundary: 学中 + 文 cut 中文 once, and 学中 is named."""
    seed = tuple(seed)
    cuts: list[WordCut] = []
    reported: set[int] = set()
    for index, lego in enumerate(legos):
        edges = [(start, start + len(lego)) for start in span_starts(seed, tuple(lego))]
        if not edges or any(a not in inside and b not in inside for a, b in edges):
            continue  # not in the seed (T3 says so), or once between words
        start, end = edges[0]
        cut = start if start in inside else end
        if cut not in reported:
            reported.add(cut)
            cuts.append(WordCut(index, "starts" if cut == start else "ends", inside[cut]))
    return cuts


def _reach(size: int, spans: list[tuple[int, int]]) -> int:
    """The furthest token index that non-overlapping spans, end to end from 0, arrive at."""
    reachable = [False] * (size + 1)
    reachable[0] = True
    for start, end in sorted(spans):
        if reachable[start]:
            reachable[end] = True
    return max(i for i, ok in enumerate(reachable) if ok)


def _uncovered(size: int, spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    covered = [False] * size
    for start, end in spans:
        for i in range(start, end):
            covered[i] = True
    runs: list[tuple[int, int]] = []
    i = 0
    while i < size:
        if covered[i]:
            i += 1
            continue
        j = i
        while j < size and not covered[j]:
            j += 1
        runs.append((i, j))
        i = j
    return tuple(runs)
