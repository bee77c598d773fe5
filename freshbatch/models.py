"""The model table (freshbatch/models.yaml, dated, with its sources): prices, limits and
which request parameters each model accepts.

A model is found by its id, one of its aliases, or a dated snapshot of either
(`claude-sonnet-4-5-20250929` for `claude-sonnet-4-5`). Anything else is unknown: no
price, no guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

_DATED = re.compile(r"^(.*)-\d{8}$")


@dataclass(frozen=True)
class ModelInfo:
    id: str
    name: str
    status: str
    prices: dict[str, Any]
    min_cache_tokens: int | None
    max_output: int | None
    thinking: str | None  # adaptive | adaptive-always-on | extended | None (not stated)
    can_disable_thinking: bool | str | None
    manual_thinking: str | None
    default_effort: str | None
    sampling_params: str | None
    note: str

    @property
    def thinks_unless_disabled(self) -> bool:
        """Adaptive thinking is on by default: it must be turned off to be off."""
        return self.thinking in ("adaptive", "adaptive-always-on")

    @property
    def can_turn_thinking_off(self) -> bool:
        return self.thinking != "adaptive-always-on" and self.can_disable_thinking is not False

    @property
    def accepts_effort(self) -> bool:
        return self.default_effort is not None


@dataclass(frozen=True)
class ModelTable:
    checked: str
    default_model: str
    models: dict[str, ModelInfo]
    aliases: dict[str, str]

    def find(self, model: str) -> ModelInfo | None:
        """The model with this id or alias, or a dated snapshot of one; None if unknown."""
        for candidate in (model, *(m.group(1) for m in [_DATED.match(model)] if m)):
            key = self.aliases.get(candidate, candidate)
            if key in self.models:
                return self.models[key]
        return None


@cache
def model_table() -> ModelTable:
    """The table shipped in the package (read once)."""
    text = resources.files("freshbatch").joinpath("models.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    models: dict[str, ModelInfo] = {}
    aliases: dict[str, str] = {}
    for model_id, entry in raw["models"].items():
        models[model_id] = ModelInfo(
            id=model_id,
            name=str(entry.get("name", model_id)),
            status=str(entry.get("status", "")),
            prices=dict(entry.get("prices") or {}),
            min_cache_tokens=entry.get("min_cache_tokens"),
            max_output=entry.get("max_output"),
            thinking=entry.get("thinking"),
            can_disable_thinking=entry.get("can_disable_thinking"),
            manual_thinking=entry.get("manual_thinking"),
            default_effort=entry.get("default_effort"),
            sampling_params=entry.get("sampling_params"),
            note=str(entry.get("note", "")),
        )
        for alias in entry.get("aliases") or []:
            aliases[str(alias)] = model_id
    return ModelTable(str(raw["checked"]), str(raw["default_model"]), models, aliases)


def default_model() -> str:
    return model_table().default_model


def model_rows() -> list[dict[str, Any]]:
    """The table as rows for `freshbatch models` (aliases, prices, limits, thinking)."""
    table = model_table()
    aliases: dict[str, list[str]] = {}
    for alias, model_id in table.aliases.items():
        aliases.setdefault(model_id, []).append(alias)
    return [
        {
            "id": info.id, "name": info.name, "status": info.status,
            "aliases": sorted(aliases.get(info.id, [])), "prices": info.prices,
            "min_cache_tokens": info.min_cache_tokens, "max_output": info.max_output,
            "thinking": info.thinking, "default_effort": info.default_effort,
            "default": info.id == table.default_model,
        }
        for info in table.models.values()
    ]  # fmt: skip
