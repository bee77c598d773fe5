"""Prices per million tokens and the cache-aware cost formula.

cost = input × p_in + cache writes × p_write + cache reads × p_read + output × p_out,
where a 1-hour cache write costs 2 × p_in instead of p_write (1.25 × p_in for 5 minutes),
and Message Batches halve every price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from freshbatch.providers import Usage

BATCH_DISCOUNT = 0.5
ONE_HOUR_WRITE = 2.0  # a 1-hour cache write costs twice the input price


@dataclass(frozen=True)
class Price:
    """USD per million tokens; cache writes and reads are priced apart from plain input."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    min_cache_tokens: int = 1024  # a shorter prefix is not cached at all


def _price(input_: float, output: float, min_cache: int = 1024) -> Price:
    return Price(input_, output, input_ * 1.25, input_ * 0.1, min_cache)


# Longest matching prefix of the model name wins. Override or extend in freshbatch.yaml.
DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-4": _price(15.0, 75.0),
    "claude-opus-4-5": _price(5.0, 25.0, 4096),
    "claude-opus-4-6": _price(5.0, 25.0, 4096),
    "claude-opus-4-7": _price(5.0, 25.0, 4096),
    "claude-opus-4-8": _price(5.0, 25.0, 4096),
    "claude-sonnet-4": _price(3.0, 15.0),
    "claude-haiku-4-5": _price(1.0, 5.0, 4096),
    "claude-3-5-haiku": _price(0.8, 4.0, 2048),
}
FALLBACK = DEFAULT_PRICES["claude-sonnet-4"]


@dataclass(frozen=True)
class Pricing:
    """A price table (defaults plus the workspace's overrides) and the cost formula."""

    table: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Mapping[str, float]]) -> Pricing:
        """Defaults, with freshbatch.yaml's `prices:` entries laid over them."""
        table = dict(DEFAULT_PRICES)
        for model, values in overrides.items():
            base = cls(table).price(model)
            if "input" in values and "cache_write" not in values:
                base = replace(base, cache_write=values["input"] * 1.25)
            if "input" in values and "cache_read" not in values:
                base = replace(base, cache_read=values["input"] * 0.1)
            fields = {
                k: (int(v) if k == "min_cache_tokens" else float(v)) for k, v in values.items()
            }
            table[model] = replace(base, **fields)  # type: ignore[arg-type]
        return cls(table)

    def price(self, model: str) -> Price:
        matches = [name for name in self.table if model.startswith(name)]
        return self.table[max(matches, key=len)] if matches else FALLBACK

    def min_cache_tokens(self, model: str) -> int:
        return self.price(model).min_cache_tokens

    def cost(
        self, usage: Usage, model: str, *, batch: bool = False, cache_ttl: str | None = None
    ) -> float:
        price = self.price(model)
        write = price.input * ONE_HOUR_WRITE if cache_ttl == "1h" else price.cache_write
        total = (
            usage.input_tokens * price.input
            + usage.output_tokens * price.output
            + usage.cache_creation_input_tokens * write
            + usage.cache_read_input_tokens * price.cache_read
        )
        if batch:
            total *= BATCH_DISCOUNT
        return round(total / 1_000_000, 6)
