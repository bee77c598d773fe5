"""Phase 1 rules: translations of canonical seeds (SPEC §3)."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from freshbatch.batching import Batch
from freshbatch.clock import stamp_iso
from freshbatch.issues import Reporter
from freshbatch.rules.base import Checker, PhaseContext, merge_maps, quoted
from freshbatch.text import LANGUAGE_SCRIPTS, has_script, key, tokens

_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_SEED_ID = re.compile(r"S\d{4}")


class PhaseChecker(Checker):
    """Checks translation batches; remembers each known sentence's first target."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.canonical = {s.seed_id: self.context.seed_source(s) for s in self.context.seeds}
        self.first_target: dict[str, str] = {}
        self.checked = 0

    def empty(self) -> dict[str, Any]:
        return {"translations": {}}

    def split(self, doc: dict[str, Any], report: Reporter) -> dict[int, dict[str, Any]]:
        bodies: dict[int, dict[str, Any]] = {}
        for seed_id, pair in doc.get("translations", {}).items():
            number = self.context.plan.batch_of(seed_id)
            if number is None:
                report.add(
                    "seed-ids", f"{seed_id}: not a seed of this course's plan", seed_id=seed_id
                )
                continue
            bodies.setdefault(number, self.empty())["translations"][seed_id] = pair
        return bodies

    def check(self, body: dict[str, Any], batch: Batch, report: Reporter) -> None:
        translations: dict[str, Any] = body["translations"]
        self._check_ids(translations, batch, report)
        for seed_id, pair in translations.items():
            if seed_id in batch.seed_ids:
                self._check_pair(seed_id, pair["known"], pair["target"], report)
        self.checked += len(translations)

    def absorb(self, body: dict[str, Any], batch: Batch) -> None:
        for pair in body["translations"].values():
            self.first_target.setdefault(key(pair["known"]), pair["target"])

    def _check_ids(self, translations: dict[str, Any], batch: Batch, report: Reporter) -> None:
        for seed_id in batch.seed_ids:
            if seed_id not in translations:
                report.add("seed-ids", f"{seed_id}: translation missing", seed_id=seed_id)
        for seed_id in translations:
            if seed_id not in batch.seed_ids:
                what = (
                    "is not a seed id like S0001"
                    if not _SEED_ID.fullmatch(seed_id)
                    else (f"is not in this batch ({batch.label}); remove it")
                )
                report.add("seed-ids", f"{seed_id}: {what}", seed_id=seed_id)

    def _check_pair(self, seed_id: str, known: str, target: str, report: Reporter) -> None:
        for side, text in (("known", known), ("target", target)):
            found = _PLACEHOLDER.search(text)
            if found:
                report.add(
                    "placeholder",
                    f"{seed_id}: {side} still holds the placeholder "
                    f"{found.group()}; write the words instead",
                    seed_id=seed_id,
                )
        canonical = self.canonical.get(seed_id)
        if canonical is not None:
            self._check_canonical(seed_id, known, target, canonical, report)
        if key(target) == key(known):
            report.add(
                "same-as-known",
                f"{seed_id}: target {quoted(target)} is the known sentence itself; translate it",
                seed_id=seed_id,
            )
        self._check_scripts(seed_id, known, target, report)
        first = self.first_target.get(key(known))
        if first is not None and key(first) != key(target):
            report.add(
                "known-consistency",
                f"{seed_id}: known {quoted(known)} was translated "
                f"earlier as {quoted(first)}, now as {quoted(target)}",
                seed_id=seed_id,
            )
        self.first_target.setdefault(key(known), target)

    def _check_canonical(
        self, seed_id: str, known: str, target: str, canonical: str, report: Reporter
    ) -> None:
        course = self.context.course
        if course.known == "eng" and key(known) != key(canonical):
            fix = spelling_fix(canonical, known)
            hint = (
                f"; it looks like a spelling fix of {quoted(fix[0])} to {quoted(fix[1])}: keep "
                "it if the canonical seed is misspelt, never put the misspelling back"
                if fix
                else "; copy the canonical seed"
            )
            report.add(
                "known-matches-canonical",
                f"{seed_id}: known {quoted(known)} differs "
                f"from the canonical seed {quoted(canonical)}{hint}",
                seed_id=seed_id,
            )
        if course.target == "eng" and key(target) != key(canonical):
            report.add(
                "target-matches-canonical",
                f"{seed_id}: target {quoted(target)} differs "
                f"from the canonical seed {quoted(canonical)}",
                seed_id=seed_id,
            )
        if course.target != "eng" and course.known == "eng" and key(target) == key(canonical):
            report.add(
                "swapped-languages",
                f"{seed_id}: target is the English seed; put the "
                f"{course.target_name} sentence in target",
                seed_id=seed_id,
            )

    def _check_scripts(self, seed_id: str, known: str, target: str, report: Reporter) -> None:
        course = self.context.course
        target_script = LANGUAGE_SCRIPTS.get(course.target)
        known_script = LANGUAGE_SCRIPTS.get(course.known)
        if target_script is None or target_script == known_script:
            return
        if not has_script(target, target_script):
            report.add(
                "swapped-languages",
                f"{seed_id}: target {quoted(target)} has no "
                f"{target_script.title()} characters; is it {course.target_name}?",
                seed_id=seed_id,
            )
        elif has_script(known, target_script):
            report.add(
                "swapped-languages",
                f"{seed_id}: known {quoted(known)} contains "
                f"{target_script.title()} characters; known must be {course.known_name}",
                seed_id=seed_id,
            )

    def stats(self) -> dict[str, Any]:
        return {"seeds": self.checked}

    def clone(self) -> PhaseChecker:
        twin = copy.copy(self)
        twin.first_target = dict(self.first_target)
        return twin


def spelling_fix(canonical: str, known: str) -> tuple[str, str] | None:
    """(old word, new word) when known is canonical with one word respelt by at most two
    letters (a typo fix such as surrpise -> surprise), else None."""
    old, new = tokens(canonical), tokens(known)
    if len(old) != len(new):
        return None
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    if len(changed) != 1:
        return None
    a, b = changed[0]
    return changed[0] if min(len(a), len(b)) >= 4 and _edits(a, b) <= 2 else None


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (short words only)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


# --- batch logic used by the runner ------------------------------------------------------

BODY_KEY = "translations"


def batch_input(
    context: PhaseContext, batch: Batch, earlier: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The batch's seeds (placeholders filled) and every earlier translation, for consistency."""
    sources = {s.seed_id: context.seed_source(s) for s in context.seeds}
    previous = merge_maps(earlier, "translations")
    return {
        "seeds": [{"seed_id": s, "source": sources[s]} for s in batch.seed_ids],
        "earlier_translations": previous,
    }


def complete(
    context: PhaseContext, batch: Batch, answer: dict[str, Any], checker: Checker
) -> dict[str, Any]:
    """Order the translations as the batch; extra keys stay so the check can report them."""
    given = answer["translations"]
    ordered = {s: given[s] for s in batch.seed_ids if s in given}
    ordered.update({k: v for k, v in given.items() if k not in ordered})
    return {"translations": ordered}


def merge(
    context: PhaseContext,
    header: dict[str, Any] | None,
    bodies: Sequence[dict[str, Any]],
    seed_ids: Sequence[str],
) -> dict[str, Any]:
    """seed_pairs.json: the header (kept fields, fresh counts) and the batches in order."""
    translations = merge_maps(bodies, "translations")
    course = context.course
    doc = {
        "version": "1.0.0",
        "course": course.code,
        "target_language": course.target,
        "known_language": course.known,
        **(header or {}),
    }
    doc.update(generated=stamp_iso(), total_seeds=len(translations), translations=translations)
    return doc


def merged_seed_ids(doc: dict[str, Any], seed_ids: Sequence[str]) -> list[str]:
    """The seeds a merged seed_pairs.json covers."""
    return list(doc.get("translations", {}))


def describe(body: dict[str, Any]) -> str:
    """What a batch produced, for the console."""
    return f"{len(body['translations'])} translations"
