"""Thinking and effort, sent only in the form the chosen model accepts.

Batch generation is checked by validators, and thinking is billed as output and adds
latency, so the default is `thinking: off`: a model that thinks unless told otherwise
(adaptive thinking, e.g. Sonnet 5.5) gets `thinking: {type: disabled}`; a model that always
thinks (Opus 5.5, the Fable models) gets nothing it would refuse, and a warning; a model
that does not think by default gets nothing. `thinking: adaptive` asks for adaptive thinking
where the model has it. `effort` goes as `output_config.effort` to models that take it
(those with a default effort in the model table). Sampling parameters (temperature, top_p,
top_k) and manual thinking budgets are never sent: newer models refuse them.
"""

from __future__ import annotations

from typing import Any

from freshbatch.models import model_table


def request_params(
    model: str, thinking: str | None, effort: str | None
) -> tuple[dict[str, Any], str | None]:
    """The body parameters for `model`, and a warning when the setting cannot be honoured."""
    info = model_table().find(model)
    if info is None:
        return {}, None  # unknown: send nothing it might refuse
    params: dict[str, Any] = {}
    warning = None
    if effort is not None and info.accepts_effort:
        params["output_config"] = {"effort": effort}
    if (thinking or "off") == "off":
        if info.thinks_unless_disabled and info.can_turn_thinking_off:
            if info.can_disable_thinking == "only at effort <= high" and effort in ("xhigh", "max"):
                warning = f"{model} turns thinking off only at effort high or lower; it thinks"
            else:
                params["thinking"] = {"type": "disabled"}
        elif info.thinks_unless_disabled:
            warning = f"{model} always thinks (thinking is billed as output); it cannot be off"
    elif info.thinks_unless_disabled:
        params["thinking"] = {"type": "adaptive"}
    else:
        warning = f"{model} has no adaptive thinking; it runs without thinking"
    return params, warning
