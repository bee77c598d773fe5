"""Prices per million tokens (from freshbatch/models.yaml, and freshbatch.yaml's `prices:`)
and the cache-aware cost formula.

cost = input × p_in + cache writes × p_write + cache reads × p_read + output × p_out,
with p_write the 5-minute or the 1-hour write price by the cache TTL, the model's long-context
prices for a prompt past its threshold, and Message Batches at the model's batch discount.
A model with no price has no cost: None, shown as unknown, never another model's price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from freshbatch.models import model_table
from freshbatch.providers import Usage

BATCH_DISCOUNT = 0.5  # the Message Batches discount where the table does not give one
PRICE_HINT = "add its price under prices: in freshbatch.yaml"


@dataclass(frozen=True)
class Price:
    """USD per million tokens; cache writes and reads are priced apart from plain input."""

    input: float
    output: float
    cache_write: float  # 5-minute TTL
    cache_read: float
    min_cache_tokens: int | None = None  # a shorter prefix is not cached; None: not known
    cache_write_1h: float | None = None  # None: 2 x input
    batch_discount: float = BATCH_DISCOUNT
    long_context: Price | None = None  # prices past `long_threshold` prompt tokens
    long_threshold: int | None = None

    @classmethod
    def from_table(cls, prices: Mapping[str, Any], min_cache: int | None = None) -> Price:
        """A model's prices from models.yaml; missing cache prices from the usual multipliers."""
        base = float(prices["input"])
        long = prices.get("long_context")
        long_price = None
        if isinstance(long, Mapping) and "input" in long and "output" in long:
            long_price = cls.from_table(long)
        return cls(
            input=base,
            output=float(prices["output"]),
            cache_write=float(prices.get("cache_write_5m", base * 1.25)),
            cache_read=float(prices.get("cache_read", base * 0.1)),
            min_cache_tokens=min_cache,
            cache_write_1h=float(prices.get("cache_write_1h", base * 2.0)),
            batch_discount=float(prices.get("batch_discount", BATCH_DISCOUNT)),
            long_context=long_price,
            long_threshold=int(long["threshold_tokens"]) if isinstance(long, Mapping) else None,
        )


def _table_prices() -> dict[str, Price]:
    table = model_table()
    found: dict[str, Price] = {}
    for model_id, info in table.models.items():
        if "input" in info.prices and "output" in info.prices:
            found[model_id] = Price.from_table(info.prices, info.min_cache_tokens)
    for alias, model_id in table.aliases.items():
        if model_id in found:
            found[alias] = found[model_id]
    return found


@dataclass(frozen=True)
class Pricing:
    """The model table's prices, with the workspace's overrides laid over them."""

    table: Mapping[str, Price] = field(default_factory=_table_prices)
    # freshbatch.yaml's prices: by model id or id prefix (the longest matching one applies)
    overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Mapping[str, float]]) -> Pricing:
        """freshbatch.yaml's `prices:` entries over the table's: an entry may name a model
        the table does not know (then it needs input and output), or an id prefix."""
        return cls(overrides={str(k): dict(v) for k, v in overrides.items()})

    def price(self, model: str) -> Price | None:
        """The price of a model id: the table's, with an override laid over it; or None."""
        base = self.table.get(model)
        if base is None:
            info = model_table().find(model)
            base = self.table.get(info.id) if info is not None else None
        matches = [name for name in self.overrides if model.startswith(name)]
        if not matches:
            return base
        values = self.overrides[max(matches, key=len)]
        if base is None:
            if not {"input", "output"} <= set(values):
                return None
            base = Price(0.0, 0.0, 0.0, 0.0)
        if "input" in values:  # the derived cache prices move with it, unless given
            given = values["input"]
            base = replace(base, cache_write=given * 1.25, cache_read=given * 0.1,
                           cache_write_1h=given * 2)  # fmt: skip
        fields = {k: (int(v) if k == "min_cache_tokens" else float(v)) for k, v in values.items()}
        return replace(base, **fields)  # type: ignore[arg-type]

    def known(self, model: str) -> bool:
        return self.price(model) is not None

    def min_cache_tokens(self, model: str) -> int | None:
        price = self.price(model)
        return price.min_cache_tokens if price is not None else None

    def cost(
        self, usage: Usage, model: str, *, batch: bool = False, cache_ttl: str | None = None
    ) -> float | None:
        """USD for `usage` on `model`, or None when the model has no price."""
        price = self.price(model)
        if price is None:
            return None
        prompt = (usage.input_tokens + usage.cache_creation_input_tokens
                  + usage.cache_read_input_tokens)  # fmt: skip
        if (
            price.long_context is not None
            and price.long_threshold
            and prompt > price.long_threshold
        ):
            price = replace(price.long_context, batch_discount=price.batch_discount)
        write = price.cache_write
        if cache_ttl == "1h":
            write = price.cache_write_1h if price.cache_write_1h is not None else price.input * 2
        total = (
            usage.input_tokens * price.input
            + usage.output_tokens * price.output
            + usage.cache_creation_input_tokens * write
            + usage.cache_read_input_tokens * price.cache_read
        )
        if batch:
            total *= price.batch_discount
        return round(total / 1_000_000, 6)
