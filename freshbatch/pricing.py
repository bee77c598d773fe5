"""Prices per million tokens and the cache-aware cost formula."""

from __future__ import annotations

from dataclasses import dataclass

from freshbatch.providers import Usage


@dataclass(frozen=True)
class Price:
    """USD per million tokens; cache writes and reads are priced apart from plain input."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    min_cache_tokens: int = 1024  # a shorter prefix is not cached at all


# USD per million tokens (5-minute cache writes are 1.25x input, reads 0.1x input).
PRICES: dict[str, Price] = {
    "claude-opus-4": Price(15.0, 75.0, 18.75, 1.50),
    "claude-sonnet-4": Price(3.0, 15.0, 3.75, 0.30),
    "claude-haiku-4": Price(1.0, 5.0, 1.25, 0.10),
    "claude-3-5-haiku": Price(0.80, 4.0, 1.0, 0.08),
}
DEFAULT_PRICE = PRICES["claude-sonnet-4"]


def price_for(model: str) -> Price:
    """The price of the longest table entry that prefixes the model name, else the default."""
    matches = [name for name in PRICES if model.startswith(name)]
    return PRICES[max(matches, key=len)] if matches else DEFAULT_PRICE


def min_cache_tokens(model: str) -> int:
    return price_for(model).min_cache_tokens


def cost_usd(usage: Usage, model: str) -> float:
    price = price_for(model)
    total = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_creation_input_tokens * price.cache_write
        + usage.cache_read_input_tokens * price.cache_read
    )
    return round(total / 1_000_000, 6)
