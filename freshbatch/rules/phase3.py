"""Phase 3 rules: LEGO decomposition of seed pairs (SPEC §4)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from freshbatch.batching import Batch
from freshbatch.clock import stamp_iso
from freshbatch.issues import Reporter
from freshbatch.rules.base import Checker, PhaseContext, quoted, seed_number
from freshbatch.text import find_span, key, squash, tokens
from freshbatch.tiling import Tiling, tile

_LEGO_ID = re.compile(r"S(\d{4})L(\d{2})")
_EARLY_SEEDS = 100  # the LUT is strict for seeds 1-100 (SSi's rule)


@dataclass(frozen=True)
class Use:
    """One target of a known text: where it first appeared, and the last batch using it."""

    text: str
    seed_id: str
    batch: int
    lego_id: str
    last_seed: str
    last_batch: int


@dataclass
class Registry:
    """What earlier batches introduced: LEGO pairs, the known->target table, ids."""

    pairs: set[tuple[str, str]] = field(default_factory=set)
    # known key -> target key -> its first use and the last batch that used it
    targets: dict[str, dict[str, Use]] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)
    # the known keys whose inner dict this registry alone holds; the others may be shared
    # with a copy (either way), and are copied before this registry changes them
    owned: set[str] = field(default_factory=set)

    def is_new(self, lego: dict[str, str]) -> bool:
        return (key(lego["target"]), key(lego["known"])) not in self.pairs

    def add(self, lego_id: str, lego: dict[str, str], seed_id: str, batch: int) -> None:
        self.pairs.add((key(lego["target"]), key(lego["known"])))
        known_key = key(lego["known"])
        if known_key not in self.owned:
            self.targets[known_key] = dict(self.targets.get(known_key, {}))
            self.owned.add(known_key)
        uses = self.targets[known_key]
        target_key = key(lego["target"])
        first = uses.get(target_key)
        if first is None:
            uses[target_key] = Use(lego["target"], seed_id, batch, lego_id, seed_id, batch)
        elif first.last_batch != batch:
            uses[target_key] = replace(first, last_seed=seed_id, last_batch=batch)
        self.ids.add(lego_id)

    def copy(self) -> Registry:
        """An independent registry: the sets are copied, the inner dicts on first change.

        From now on both share every inner dict, so neither may change one in place.
        """
        self.owned = set()
        return Registry(set(self.pairs), dict(self.targets), set(self.ids))


def iter_legos(body: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(seed entry, lego) pairs of a phase 3 body, in course order."""
    for seed in body["seeds"]:
        for lego in seed["legos"]:
            yield seed, lego


class PhaseChecker(Checker):
    """Checks LEGO batches against the registry of everything merged before them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry = Registry()
        seed_pairs = self.context.inputs.get("seed_pairs.json")
        self.translations: dict[str, Any] | None = (
            seed_pairs["translations"] if seed_pairs else None
        )
        words = self.context.phase.data.get("function_words", {})
        self.function_words = frozenset(words.get(self.context.course.target, []))
        self.counts = {
            "seeds": 0,
            "legos": 0,
            "tiling_exact": 0,
            "tiling_covered": 0,
            "foreign_legos": 0,
            "new": 0,
        }
        self.collided: set[str] = set()

    def empty(self) -> dict[str, Any]:
        return {"seeds": []}

    def split(self, doc: dict[str, Any], report: Reporter) -> dict[int, dict[str, Any]]:
        bodies: dict[int, dict[str, Any]] = {}
        for seed in doc.get("seeds", []):
            number = self.context.plan.batch_of(seed["seed_id"])
            if number is None:
                report.add(
                    "seed-ids",
                    f"{seed['seed_id']}: not a seed of this course's plan",
                    seed_id=seed["seed_id"],
                )
                continue
            bodies.setdefault(number, self.empty())["seeds"].append(seed)
        return bodies

    def absorb(self, body: dict[str, Any], batch: Batch) -> None:
        for seed, lego in iter_legos(body):
            self.registry.add(lego.get("id", ""), lego["lego"], seed["seed_id"], batch.number)

    def check(self, body: dict[str, Any], batch: Batch, report: Reporter) -> None:
        self._check_seed_ids(body, batch, report)
        for seed in body["seeds"]:
            self.counts["seeds"] += 1
            self._check_seed_pair(seed, report)
            self._check_ids(seed, report)
            self._check_tiling(seed, report)
            for lego in seed["legos"]:
                self.counts["legos"] += 1
                self._check_lego(seed, lego, batch, report)

    def _check_seed_ids(self, body: dict[str, Any], batch: Batch, report: Reporter) -> None:
        given = [seed["seed_id"] for seed in body["seeds"]]
        for seed_id in batch.seed_ids:
            if seed_id not in given:
                report.add("seed-ids", f"{seed_id}: seed missing; give its LEGOs", seed_id=seed_id)
        seen: set[str] = set()
        for seed_id in given:
            if seed_id not in batch.seed_ids:
                report.add(
                    "seed-ids",
                    f"{seed_id}: not in this batch ({batch.label}); remove it",
                    seed_id=seed_id,
                )
            elif seed_id in seen:
                report.add(
                    "seed-ids", f"{seed_id}: listed twice; give each seed once", seed_id=seed_id
                )
            seen.add(seed_id)
        expected = [s for s in batch.seed_ids if s in seen]
        if [s for s in dict.fromkeys(given) if s in batch.seed_ids] != expected:
            report.add(
                "seed-ids",
                f"batch {batch.label}: seeds are out of course order; list them as S-number order",
            )

    def _check_seed_pair(self, seed: dict[str, Any], report: Reporter) -> None:
        if self.translations is None:
            return
        seed_id = seed["seed_id"]
        phase1 = self.translations.get(seed_id)
        if phase1 is None:
            report.add(
                "seed-pair-matches-phase1",
                f"{seed_id}: no phase 1 translation in seed_pairs.json",
                seed_id=seed_id,
            )
        elif (phase1.get("known"), phase1.get("target")) != (
            seed["seed_pair"]["known"],
            seed["seed_pair"]["target"],
        ):
            report.add(
                "seed-pair-matches-phase1",
                f"{seed_id}: seed_pair differs from the phase 1 "
                f"translation {quoted(phase1.get('target', ''))}; copy it exactly",
                seed_id=seed_id,
            )

    def _check_ids(self, seed: dict[str, Any], report: Reporter) -> None:
        seed_id = seed["seed_id"]
        numbers: list[int] = []
        in_seed: set[str] = set()
        for lego in seed["legos"]:
            lego_id = lego["id"]
            match = _LEGO_ID.fullmatch(lego_id)
            if match is None:
                report.add(
                    "lego-id",
                    f"{lego_id}: not a LEGO id like {seed_id}L01",
                    seed_id=seed_id,
                    lego_id=lego_id,
                )
                continue
            if not lego_id.startswith(seed_id):
                report.add(
                    "lego-id",
                    f"{lego_id}: id does not start with its seed {seed_id}",
                    seed_id=seed_id,
                    lego_id=lego_id,
                )
            if lego_id in self.registry.ids or lego_id in in_seed:
                report.add(
                    "lego-id",
                    f"{lego_id}: id used twice in the course",
                    seed_id=seed_id,
                    lego_id=lego_id,
                )
                continue
            in_seed.add(lego_id)
            number = int(match.group(2))
            if numbers and number <= numbers[-1]:
                report.add(
                    "lego-id",
                    f"{lego_id}: ids must ascend within the seed",
                    seed_id=seed_id,
                    lego_id=lego_id,
                )
            numbers.append(number)
        expected = list(range(1, len(numbers) + 1))
        if numbers and sorted(numbers) != expected and len(set(numbers)) == len(numbers):
            missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
            if missing:
                report.add(
                    "lego-id-gap",
                    f"{seed_id}: LEGO numbers skip " + ", ".join(f"L{n:02d}" for n in missing[:5]),
                    seed_id=seed_id,
                )

    def _check_tiling(self, seed: dict[str, Any], report: Reporter) -> None:
        seed_id, target = seed["seed_id"], seed["seed_pair"]["target"]
        if not seed["legos"]:
            report.add(
                "empty-seed",
                f"{seed_id}: no LEGOs; cut {quoted(target)} into LEGOs",
                seed_id=seed_id,
            )
            return
        seed_tokens = tokens(target)
        result = tile(seed_tokens, [tokens(lego["lego"]["target"]) for lego in seed["legos"]])
        self.counts["tiling_exact"] += result.is_exact
        self.counts["tiling_covered"] += result.is_covered
        gaps = _gaps(seed_tokens, result)
        if not result.is_exact:
            report.add(
                "tiling-exact",
                f"{seed_id}: {_why_not_exact(seed_tokens, result, gaps)}; "
                f"the seed is {quoted(target)}",
                seed_id=seed_id,
            )
        if gaps:
            report.add("tiling-coverage", f"{seed_id}: no LEGO covers {gaps}", seed_id=seed_id)
        for index in result.foreign:
            lego = seed["legos"][index]
            self.counts["foreign_legos"] += 1
            report.add(
                "lego-contiguous",
                f"{lego['id']}: {quoted(lego['lego']['target'])} is not "
                f"a contiguous part of the seed {quoted(target)}",
                seed_id=seed_id,
                lego_id=lego["id"],
            )

    def _check_lego(
        self, seed: dict[str, Any], lego: dict[str, Any], batch: Batch, report: Reporter
    ) -> None:
        seed_id, lego_id, pair = seed["seed_id"], lego["id"], lego["lego"]
        self._check_components(seed_id, lego, report)
        if len(tokens(pair["target"])) == 1 and tokens(pair["target"])[0] in self.function_words:
            report.add(
                "lone-function-word",
                f"{lego_id}: {quoted(pair['target'])} is a function "
                "word on its own; join it to the word it belongs with",
                seed_id=seed_id,
                lego_id=lego_id,
            )
        self._check_collision(seed_id, lego_id, pair, batch, report)
        is_new = self.registry.is_new(pair)
        self.counts["new"] += is_new
        if "new" in lego and lego["new"] != is_new:
            state = "first appears here" if is_new else "appeared earlier in the course"
            report.add(
                "new-flag",
                f"{lego_id}: new is {str(lego['new']).lower()} but "
                f"{quoted(pair['target'])} = {quoted(pair['known'])} {state}",
                seed_id=seed_id,
                lego_id=lego_id,
            )
        self.registry.add(lego_id, pair, seed_id, batch.number)

    def _check_components(self, seed_id: str, lego: dict[str, Any], report: Reporter) -> None:
        lego_id, components = lego["id"], lego.get("components")
        if lego["type"] == "A":
            if components:
                report.add(
                    "components-on-atomic",
                    f"{lego_id}: type A must not have components; make it type M or drop them",
                    seed_id=seed_id,
                    lego_id=lego_id,
                )
            return
        if not components:
            report.add(
                "components-missing",
                f"{lego_id}: type M needs components that spell {quoted(lego['lego']['target'])}",
                seed_id=seed_id,
                lego_id=lego_id,
            )
            return
        built = "".join(squash(c["target"]) for c in components)
        if built != squash(lego["lego"]["target"]):
            parts = " + ".join(quoted(c["target"], 30) for c in components)
            report.add(
                "components-rebuild",
                f"{lego_id}: components {parts} do not spell the "
                f"LEGO {quoted(lego['lego']['target'])}",
                seed_id=seed_id,
                lego_id=lego_id,
            )

    def _check_collision(
        self, seed_id: str, lego_id: str, pair: dict[str, str], batch: Batch, report: Reporter
    ) -> None:
        """One known text, one target: strict within a batch and within seeds 1-100.

        Within a batch every collision is an error, even between two targets the course had
        before. The LEGO named is the one to fix: this one, unless the other target is in this
        batch too and is a cut-short part of this one (`no sé por` beside `no sé por qué`).
        """
        earlier = self.registry.targets.get(key(pair["known"]), {})
        others = [v for k, v in earlier.items() if k != key(pair["target"])]
        if not others:
            return
        self.collided.add(key(pair["known"]))
        early = seed_number(seed_id) <= _EARLY_SEEDS

        def is_strict(other: Use) -> bool:
            return other.last_batch == batch.number or (
                early and seed_number(other.seed_id) <= _EARLY_SEEDS
            )

        strict = [o for o in others if is_strict(o)]
        other = (strict or others)[0]
        rule = "known-collision" if strict else "known-collision-course"
        if other.batch == batch.number and _is_cut_short(other.text, pair["target"]):
            report.add(
                rule,
                f"{other.lego_id}: known {quoted(pair['known'])} is given as the cut-short "
                f"{quoted(other.text)} ({other.seed_id}) and as {quoted(pair['target'])} in "
                f"{lego_id}; "
                f"fix {other.lego_id}: give it the whole chunk, or a known text of its own",
                seed_id=other.seed_id,
                lego_id=other.lego_id,
            )
            return
        where = other.last_seed if other.last_batch == batch.number else other.seed_id
        report.add(
            rule,
            f"{lego_id}: known {quoted(pair['known'])} already means {quoted(other.text)} "
            f"({where}); here it is {quoted(pair['target'])}, so the learner cannot "
            "tell which to say; use the earlier target or chunk up with this seed's words",
            seed_id=seed_id,
            lego_id=lego_id,
        )

    def stats(self) -> dict[str, Any]:
        return {**self.counts, "known_texts_with_two_targets": len(self.collided)}

    def clone(self) -> PhaseChecker:
        twin = copy.copy(self)
        twin.registry = self.registry.copy()
        twin.counts = dict(self.counts)
        twin.collided = set(self.collided)
        return twin


def _is_cut_short(part: str, whole: str) -> bool:
    """Whether part's tokens are a shorter contiguous run of whole's tokens."""
    small, big = tokens(part), tokens(whole)
    return 0 < len(small) < len(big) and find_span(big, small) >= 0


def _why_not_exact(seed_tokens: tuple[str, ...], result: Tiling, gaps: str) -> str:
    if gaps:
        return f"no LEGO covers {gaps}, so the LEGOs cannot rebuild the seed end to end"
    rest = quoted(" ".join(seed_tokens[result.reach : result.reach + 4]))
    if result.reach == 0:
        return f"no LEGO starts the seed at {rest} (overlapping LEGOs do not count)"
    done = quoted(" ".join(seed_tokens[: result.reach]))
    return (
        f"LEGOs laid end to end without overlap rebuild only {done}; none starts at {rest} "
        "where that chain ends (overlapping LEGOs do not count)"
    )


def _gaps(seed_tokens: tuple[str, ...], result: Tiling) -> str:
    return ", ".join(quoted(" ".join(seed_tokens[a:b])) for a, b in result.uncovered)


# --- batch logic used by the runner ------------------------------------------------------

BODY_KEY = "seeds"


def batch_input(
    context: PhaseContext, batch: Batch, earlier: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The batch's seed pairs and the LEGOs already introduced, in course order."""
    translations = context.inputs["seed_pairs.json"]["translations"]
    introduced: dict[tuple[str, str], dict[str, str]] = {}
    for body in earlier:
        for _, lego in iter_legos(body):
            pair = lego["lego"]
            introduced.setdefault((key(pair["target"]), key(pair["known"])), pair)
    return {
        "seeds": [{"seed_id": s, "seed_pair": translations[s]} for s in batch.seed_ids],
        "earlier_legos": [
            {"known": p["known"], "target": p["target"]} for p in introduced.values()
        ],
    }


def complete(
    context: PhaseContext, batch: Batch, answer: dict[str, Any], checker: Checker
) -> dict[str, Any]:
    """Fill seed_pair from phase 1, number the LEGOs, and set `new` from course order."""
    assert isinstance(checker, PhaseChecker)
    translations = context.inputs["seed_pairs.json"]["translations"]
    seen = set(checker.registry.pairs)
    seeds = []
    for entry in answer["seeds"]:
        seed_id = entry["seed_id"]
        legos = []
        for number, given in enumerate(entry["legos"], 1):
            pair = given["lego"]
            pair_key = (key(pair["target"]), key(pair["known"]))
            lego = {
                "id": f"{seed_id}L{number:02d}",
                "type": given["type"],
                "new": pair_key not in seen,
                "lego": pair,
            }
            if "components" in given:
                lego["components"] = given["components"]
            seen.add(pair_key)
            legos.append(lego)
        seed_pair = (
            translations.get(seed_id) or entry.get("seed_pair") or {"known": "", "target": ""}
        )
        seeds.append({"seed_id": seed_id, "seed_pair": seed_pair, "legos": legos})
    return {"seeds": seeds}


def merge(
    context: PhaseContext,
    header: dict[str, Any] | None,
    bodies: Sequence[dict[str, Any]],
    seed_ids: Sequence[str],
) -> dict[str, Any]:
    """lego_pairs.json: the header (kept fields, fresh counts) and the batches in order."""
    seeds = [seed for body in bodies for seed in body["seeds"]]
    doc = {"course": context.course.code, "phase": "3", "version": "1.0.0", **(header or {})}
    doc.update(
        generated_at=stamp_iso(),
        total_seeds=len(seeds),
        total_legos=sum(len(s["legos"]) for s in seeds),
        seeds=seeds,
    )
    return doc


def merged_seed_ids(doc: dict[str, Any], seed_ids: Sequence[str]) -> list[str]:
    """The seeds a merged lego_pairs.json covers."""
    return [seed["seed_id"] for seed in doc.get("seeds", [])]


def describe(body: dict[str, Any]) -> str:
    """What a batch produced, for the console."""
    legos = sum(len(s["legos"]) for s in body["seeds"])
    new = sum(1 for s in body["seeds"] for lego in s["legos"] if lego.get("new"))
    return f"{legos} LEGOs ({new} new)"
