"""The batch plan: pure arithmetic over the course's seed list."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Batch:
    """Batch `number` (from 1) and the seed ids it holds, in course order."""

    number: int
    seed_ids: tuple[str, ...]

    @property
    def first_seed(self) -> str:
        return self.seed_ids[0]

    @property
    def last_seed(self) -> str:
        return self.seed_ids[-1]

    @property
    def label(self) -> str:
        return f"{self.first_seed}-{self.last_seed}"


@dataclass(frozen=True)
class BatchPlan:
    """Fixed batch boundaries, shared by every phase of a course."""

    batches: tuple[Batch, ...]
    batch_size: int
    _batch_of: dict[str, int] = field(init=False, repr=False, compare=False)
    _position: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seeds = [s for b in self.batches for s in b.seed_ids]
        object.__setattr__(
            self, "_batch_of", {s: b.number for b in self.batches for s in b.seed_ids}
        )
        object.__setattr__(self, "_position", {s: i for i, s in enumerate(seeds)})

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.batches)

    def batch(self, number: int) -> Batch:
        if not 1 <= number <= len(self.batches):
            raise IndexError(f"batch {number} is not in 1..{len(self.batches)}")
        return self.batches[number - 1]

    def batch_of(self, seed_id: str) -> int | None:
        """The batch number holding seed_id, or None if the seed is not in the plan."""
        return self._batch_of.get(seed_id)

    def position(self, seed_id: str) -> int | None:
        """The 0-based course position of seed_id, or None."""
        return self._position.get(seed_id)

    @property
    def seed_ids(self) -> tuple[str, ...]:
        return tuple(self._position)


def plan_batches(seed_ids: Sequence[str], batch_size: int) -> BatchPlan:
    """Cut seed_ids into batches of batch_size; the last batch may be shorter."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batches = tuple(
        Batch(number=i // batch_size + 1, seed_ids=tuple(seed_ids[i : i + batch_size]))
        for i in range(0, len(seed_ids), batch_size)
    )
    return BatchPlan(batches=batches, batch_size=batch_size)


def parse_batch_selection(text: str, total: int) -> list[int]:
    """Parse '3,7-9' into sorted batch numbers, each within 1..total."""
    chosen: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise ValueError(f"'{part}' is not a batch number or range like 7-9") from None
        if first > last or first < 1 or last > total:
            raise ValueError(f"batches '{part}' are outside 1..{total}")
        chosen.update(range(first, last + 1))
    if not chosen:
        raise ValueError("no batch selected")
    return sorted(chosen)
