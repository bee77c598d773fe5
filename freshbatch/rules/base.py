"""What every phase module provides: a checker that walks batches in course order."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from freshbatch.batching import Batch, BatchPlan
from freshbatch.issues import Reporter
from freshbatch.phases import PhaseDef
from freshbatch.workspace import Course, Seed


@dataclass(frozen=True)
class PhaseContext:
    """Everything a phase's rules may read: the course, its plan, seeds and input files."""

    phase: PhaseDef
    course: Course
    seeds: tuple[Seed, ...]
    plan: BatchPlan
    inputs: dict[str, Any] = field(default_factory=dict)

    def seed_source(self, seed: Seed) -> str:
        """The canonical sentence with {target} filled in with the target language's name."""
        return seed.source.replace("{target}", self.course.target_name)


class Checker(ABC):
    """Checks a phase's batches in course order; state holds what earlier batches introduced.

    `check` reads the state built by earlier batches, reports, then absorbs the batch, so a
    merged file and a single new batch are judged by the same code.
    """

    # False when no rule reads earlier batches of the same phase (absorb keeps nothing): a
    # batch's judgement then holds however many batches merged since it was made
    stateful: ClassVar[bool] = True

    def __init__(self, context: PhaseContext) -> None:
        self.context = context

    @abstractmethod
    def split(self, doc: dict[str, Any], report: Reporter) -> dict[int, dict[str, Any]]:
        """Cut a merged file into batch bodies; report items that belong to no batch."""

    @abstractmethod
    def empty(self) -> dict[str, Any]:
        """The body of a batch that has no items at all."""

    @abstractmethod
    def check(self, body: dict[str, Any], batch: Batch, report: Reporter) -> None:
        """Report what breaks the rules in one batch body, then absorb it."""

    @abstractmethod
    def absorb(self, body: dict[str, Any], batch: Batch) -> None:
        """Take a batch into the state without checking it."""

    def stats(self) -> dict[str, Any]:
        return {}

    def clone(self) -> Checker:
        """An independent copy of this checker's state (checking mutates the state)."""
        return copy.deepcopy(self)


def seed_number(seed_id: str) -> int:
    return int(seed_id[1:5])


def quoted(text: str, limit: int = 80) -> str:
    """A string as it goes into a message: in double quotes, long ones cut."""
    text = " ".join(text.split())
    return '"' + (text if len(text) <= limit else text[: limit - 1] + "…") + '"'


def merge_maps(bodies: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The maps under `key` of every batch body, in batch order, as one map."""
    merged: dict[str, Any] = {}
    for body in bodies:
        merged.update(body[key])
    return merged
