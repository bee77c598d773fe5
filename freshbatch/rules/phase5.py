"""Phase 5 rules: practice baskets for each new LEGO (SPEC §5)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from freshbatch.batching import Batch
from freshbatch.clock import stamp_iso
from freshbatch.errors import InputError
from freshbatch.issues import Reporter
from freshbatch.rules.base import Checker, PhaseContext, merge_maps, quoted, seed_number
from freshbatch.text import clitic_bases, find_span, key, tokens

MAX_PHRASES = 10
_FEW_PHRASES_OK_UNTIL = 10  # seeds S0001-S0010 may have fewer than 10 phrases


@dataclass(frozen=True)
class LegoInfo:
    """A LEGO of lego_pairs.json with its place in course order."""

    lego_id: str
    seed_id: str
    position: int
    pair: dict[str, str]
    is_new: bool
    is_final: bool


class Course:
    """Everything phase 5 derives from lego_pairs.json: order, new LEGOs, vocabulary."""

    def __init__(self, lego_pairs: dict[str, Any]) -> None:
        self.legos: dict[str, LegoInfo] = {}
        self.new_ids: dict[str, list[str]] = {}
        self.seed_pairs: dict[str, dict[str, str]] = {}
        self.first_use: dict[str, int] = {}  # token -> position of the first LEGO teaching it
        self.seed_start: dict[str, int] = {}  # seed -> position of its first LEGO
        self.order: list[str] = []  # seed ids in course order
        position = 0
        for seed in lego_pairs.get("seeds", []):
            seed_id, legos = seed["seed_id"], seed["legos"]
            self.seed_pairs[seed_id] = seed["seed_pair"]
            self.seed_start[seed_id] = position
            self.order.append(seed_id)
            self.new_ids[seed_id] = [lego["id"] for lego in legos if lego.get("new")]
            for index, lego in enumerate(legos):
                info = LegoInfo(
                    lego["id"],
                    seed_id,
                    position,
                    lego["lego"],
                    bool(lego.get("new")),
                    index == len(legos) - 1,
                )
                self.legos.setdefault(lego["id"], info)
                for token in tokens(lego["lego"]["target"]):
                    self.first_use.setdefault(token, position)
                position += 1

    def untaught(self, phrase: str, info: LegoInfo) -> list[str]:
        """Tokens of phrase no LEGO at or before info's position contains."""
        limit = info.position

        def taught(word: str) -> bool:
            return self.first_use.get(word, limit + 1) <= limit

        # an Arabic "and"/"so" written onto a taught word is taught (ومعك = و + معك)
        return [
            t for t in tokens(phrase) if not taught(t) and not any(map(taught, clitic_bases(t)))
        ]


_INDEX_CACHE: list[tuple[dict[str, Any], Course]] = []


def course_index(lego_pairs: dict[str, Any]) -> Course:
    """The Course index of a lego_pairs document, built once per document object."""
    for doc, index in _INDEX_CACHE:
        if doc is lego_pairs:
            return index
    index = Course(lego_pairs)
    _INDEX_CACHE[:] = [(lego_pairs, index), *_INDEX_CACHE[:1]]  # keep the last two
    return index


class PhaseChecker(Checker):
    """Checks basket batches against lego_pairs.json (keys, LEGO text, the vocabulary gate)."""

    stateful = False  # baskets are judged by lego_pairs.json alone

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lego_pairs = self.context.inputs.get("lego_pairs.json")
        if lego_pairs is None:
            raise InputError(
                f"{self.context.course.code}: phase 5 needs lego_pairs.json; run or "
                "add phase 3 first"
            )
        self.course = course_index(lego_pairs)
        self.counts = {
            "baskets": 0,
            "phrases": 0,
            "gate_phrases": 0,
            "gate_baskets": 0,
            "phrases_without_lego": 0,
            "lego_mismatch": 0,
        }

    def empty(self) -> dict[str, Any]:
        return {"baskets": {}}

    def split(self, doc: dict[str, Any], report: Reporter) -> dict[int, dict[str, Any]]:
        bodies: dict[int, dict[str, Any]] = {}
        for lego_id, basket in doc.get("baskets", {}).items():
            number = self.context.plan.batch_of(lego_id[:5])
            if number is None:
                report.add(
                    "basket-keys",
                    f"{lego_id}: its seed is not in this course's plan",
                    lego_id=lego_id,
                )
                continue
            bodies.setdefault(number, self.empty())["baskets"][lego_id] = basket
        return bodies

    def absorb(self, body: dict[str, Any], batch: Batch) -> None:
        """Baskets leave no state: everything they are judged by comes from lego_pairs.json."""

    def check(self, body: dict[str, Any], batch: Batch, report: Reporter) -> None:
        baskets: dict[str, Any] = body["baskets"]
        expected = [i for s in batch.seed_ids for i in self.course.new_ids.get(s, [])]
        for lego_id in expected:
            if lego_id not in baskets:
                report.add(
                    "basket-keys",
                    f"{lego_id}: basket missing; every new LEGO needs one",
                    seed_id=lego_id[:5],
                    lego_id=lego_id,
                )
        for lego_id, basket in baskets.items():
            if lego_id not in expected:
                report.add(
                    "basket-keys",
                    f"{lego_id}: not a new LEGO of this batch ({batch.label}); remove this basket",
                    seed_id=lego_id[:5],
                    lego_id=lego_id,
                )
                continue
            self._check_basket(self.course.legos[lego_id], basket, report)

    def _check_basket(self, info: LegoInfo, basket: dict[str, Any], report: Reporter) -> None:
        self.counts["baskets"] += 1
        lego_id, seed_id = info.lego_id, info.seed_id
        if basket["lego"] != info.pair:
            self.counts["lego_mismatch"] += 1
            report.add(
                "basket-lego",
                f"{lego_id}: basket LEGO {quoted(basket['lego']['target'])} = "
                f"{quoted(basket['lego']['known'])} differs from lego_pairs "
                f"{quoted(info.pair['target'])} = {quoted(info.pair['known'])}; copy it",
                seed_id=seed_id,
                lego_id=lego_id,
            )
        phrases: list[dict[str, str]] = basket["practice_phrases"]
        self._check_count(info, phrases, basket, report)
        seed_pair = self.course.seed_pairs.get(info.seed_id)
        appended = bool(info.is_final and phrases and seed_pair and _same(phrases[-1], seed_pair))
        self._check_phrases(info, basket["lego"], phrases, appended, report)
        if "is_final_lego" in basket and basket["is_final_lego"] != info.is_final:
            report.add(
                "final-lego-flag",
                f"{lego_id}: is_final_lego should be {str(info.is_final).lower()}",
                seed_id=seed_id,
                lego_id=lego_id,
            )
        if "phrase_count" in basket and basket["phrase_count"] != len(phrases):
            report.add(
                "phrase-count-field",
                f"{lego_id}: phrase_count is {basket['phrase_count']} "
                f"but there are {len(phrases)} phrases",
                seed_id=seed_id,
                lego_id=lego_id,
            )

    def _check_count(
        self,
        info: LegoInfo,
        phrases: list[dict[str, str]],
        basket: dict[str, Any],
        report: Reporter,
    ) -> None:
        written = len(phrases)
        seed_pair = self.course.seed_pairs.get(info.seed_id)
        if info.is_final and phrases and seed_pair and _same(phrases[-1], seed_pair):
            written -= 1  # the complete seed, which the runner appends to the final basket
        if written > MAX_PHRASES:
            report.add(
                "phrase-count",
                f"{info.lego_id}: {written} practice phrases; write at most {MAX_PHRASES}",
                seed_id=info.seed_id,
                lego_id=info.lego_id,
            )
        elif written < MAX_PHRASES and seed_number(info.seed_id) > _FEW_PHRASES_OK_UNTIL:
            report.add(
                "phrase-count-low",
                f"{info.lego_id}: {written} practice phrases; aim for "
                f"{MAX_PHRASES} where the vocabulary allows",
                seed_id=info.seed_id,
                lego_id=info.lego_id,
            )
        if (
            info.is_final
            and seed_pair
            and "is_final_lego" in basket
            and (not phrases or not _same(phrases[-1], seed_pair))
        ):
            report.add(
                "final-phrase",
                f"{info.lego_id}: the last LEGO's basket should end with the "
                f"whole seed {quoted(seed_pair['target'])}",
                seed_id=info.seed_id,
                lego_id=info.lego_id,
            )

    def _check_phrases(
        self,
        info: LegoInfo,
        lego: dict[str, str],
        phrases: list[dict[str, str]],
        appended: bool,
        report: Reporter,
    ) -> None:
        """Per-phrase rules; `appended`: the last phrase is the whole seed the runner added."""
        lego_id, seed_id = info.lego_id, info.seed_id
        lego_tokens = tokens(lego["target"])
        seen: dict[tuple[str, str], int] = {}
        known_targets: dict[str, str] = {}
        failed_gate = False
        previous = 0
        for number, phrase in enumerate(phrases, 1):
            self.counts["phrases"] += 1
            target, known = phrase["target"], phrase["known"]
            pair_key = (key(target), key(known))
            if pair_key in seen:
                report.add(
                    "phrase-duplicate",
                    f"{lego_id}: phrase {number} {quoted(target)} repeats phrase {seen[pair_key]}",
                    seed_id=seed_id,
                    lego_id=lego_id,
                )
            seen.setdefault(pair_key, number)
            other = known_targets.setdefault(key(known), target)
            if key(other) != key(target):
                report.add(
                    "phrase-known-conflict",
                    f"{lego_id}: known {quoted(known)} is given as "
                    f"{quoted(other)} and as {quoted(target)}",
                    seed_id=seed_id,
                    lego_id=lego_id,
                )
            untaught = self.course.untaught(target, info)
            if untaught:
                failed_gate = True
                self.counts["gate_phrases"] += 1
                words = ", ".join(quoted(w) for w in dict.fromkeys(untaught))
                report.add(
                    "vocabulary-gate",
                    f"{lego_id}: phrase {quoted(target)} uses {words}, not taught yet",
                    seed_id=seed_id,
                    lego_id=lego_id,
                )
            phrase_tokens = tokens(target)
            if find_span(phrase_tokens, lego_tokens) < 0:
                self.counts["phrases_without_lego"] += 1
                report.add(
                    "phrase-contains-lego",
                    f"{lego_id}: phrase {quoted(target)} does not "
                    f"contain the LEGO {quoted(lego['target'])}",
                    seed_id=seed_id,
                    lego_id=lego_id,
                )
            if 0 <= len(phrase_tokens) < previous and not (appended and number == len(phrases)):
                previous = -1  # one warning per basket is enough
                report.add(
                    "phrase-growth",
                    f"{lego_id}: phrase {number} {quoted(target)} is shorter "
                    "than the one before; order phrases from short to long",
                    seed_id=seed_id,
                    lego_id=lego_id,
                )
            if previous >= 0:
                previous = max(previous, len(phrase_tokens))
        self.counts["gate_baskets"] += failed_gate

    def stats(self) -> dict[str, Any]:
        return dict(self.counts)

    def clone(self) -> PhaseChecker:
        twin = copy.copy(self)  # the Course index is read-only: shared
        twin.counts = dict(self.counts)
        return twin


def _same(phrase: dict[str, str], pair: dict[str, str]) -> bool:
    return key(phrase["target"]) == key(pair["target"]) and key(phrase["known"]) == key(
        pair["known"]
    )


# --- batch logic used by the runner ------------------------------------------------------

BODY_KEY = "baskets"
RECENT_SEEDS = 10
RECENT_LEGOS = 30


def batch_input(
    context: PhaseContext, batch: Batch, earlier: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The batch's seeds with their LEGOs, the baskets to write, and the vocabulary so far."""
    lego_pairs = context.inputs["lego_pairs.json"]
    course = course_index(lego_pairs)
    by_id = {seed["seed_id"]: seed for seed in lego_pairs["seeds"]}
    seeds = [by_id[s] for s in batch.seed_ids]
    start = course.seed_start[batch.first_seed]
    before = [by_id[s] for s in course.order[: course.order.index(batch.first_seed)]]
    recent_legos = [lego["lego"] for seed in before for lego in seed["legos"] if lego.get("new")]
    return {
        "seeds": [
            {
                "seed_id": s["seed_id"],
                "seed_pair": s["seed_pair"],
                "legos": [
                    {k: v for k, v in lego.items() if k != "components"} for lego in s["legos"]
                ],
            }
            for s in seeds
        ],
        "baskets_to_write": [i for s in batch.seed_ids for i in course.new_ids.get(s, [])],
        "vocabulary": sorted(t for t, position in course.first_use.items() if position < start),
        "recent": {
            "seeds": [s["seed_pair"] for s in before[-RECENT_SEEDS:]],
            "legos": recent_legos[-RECENT_LEGOS:],
        },
    }


def complete(
    context: PhaseContext, batch: Batch, answer: dict[str, Any], checker: Checker
) -> dict[str, Any]:
    """Order baskets as the LEGOs; end each seed's final basket with the whole seed."""
    assert isinstance(checker, PhaseChecker)
    course = checker.course
    given = answer["baskets"]
    order = [i for s in batch.seed_ids for i in course.new_ids.get(s, []) if i in given]
    order += [i for i in given if i not in order]
    baskets = {}
    for lego_id in order:
        basket = given[lego_id]
        info = course.legos.get(lego_id)
        phrases = list(basket["practice_phrases"])
        is_final = info is not None and info.is_final
        if is_final and info is not None:
            seed_pair = course.seed_pairs[info.seed_id]
            phrases = [p for p in phrases if not _same(p, seed_pair)]
            phrases.append({"known": seed_pair["known"], "target": seed_pair["target"]})
        baskets[lego_id] = {
            "lego": basket["lego"],
            "practice_phrases": phrases,
            "is_final_lego": is_final,
            "phrase_count": len(phrases),
        }
    return {"baskets": baskets}


def merge(
    context: PhaseContext,
    header: dict[str, Any] | None,
    bodies: Sequence[dict[str, Any]],
    seed_ids: Sequence[str],
) -> dict[str, Any]:
    """lego_baskets.json: the header (kept fields, fresh counts) and the batches in order."""
    baskets = merge_maps(bodies, "baskets")
    doc = {"version": "1.0.0", "phase": "5", "course": context.course.code, **(header or {})}
    doc.update(
        generated_at=stamp_iso(),
        seeds_processed=list(seed_ids),
        total_baskets=len(baskets),
        baskets=baskets,
    )
    return doc


def merged_seed_ids(doc: dict[str, Any], seed_ids: Sequence[str]) -> list[str]:
    """The seeds a merged lego_baskets.json covers: every seed of the course up to the last
    one it mentions (in seeds_processed or a basket key), since seeds without new LEGOs
    have no basket."""
    mentioned = {key[:5] for key in doc.get("baskets", {})}
    processed = doc.get("seeds_processed")
    if isinstance(processed, list):
        mentioned |= {str(s) for s in processed}
    last = max((i for i, s in enumerate(seed_ids) if s in mentioned), default=-1)
    return list(seed_ids[: last + 1]) + sorted(mentioned - set(seed_ids))


def describe(body: dict[str, Any]) -> str:
    """What a batch produced, for the console."""
    phrases = sum(len(b["practice_phrases"]) for b in body["baskets"].values())
    return f"{len(body['baskets'])} baskets, {phrases} phrases"
