"""`freshbatch plan`: the batches still to run and the tokens and cost to expect.

Input tokens come from the real request where the batch's input exists already, else from
the phase's `estimate:` in phase.yaml. Output tokens come from the phase's merged batches
where there are some (tokens per seed in their transcripts, else the merged JSON's size),
else from `estimate:`. Tokens are counted as 4 characters a token. Caching: the first
request of a phase writes the instructions to the cache, every later one reads them.
Retries are not included, except escalation: with an `escalate:` model, the expected cost of
the attempts it would run is shown apart, from the retry rate observed on the merged batches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from freshbatch.batching import Batch
from freshbatch.phase_run import PhaseRun
from freshbatch.phases import load_phases
from freshbatch.pricing import Pricing
from freshbatch.progress import ReadOnlyProgress, read_progress
from freshbatch.prompts import build_request, system_blocks
from freshbatch.providers import Usage
from freshbatch.report import batch_transcripts
from freshbatch.runner import RunOptions, choose_escalation, phase_numbers
from freshbatch.workspace import DEFAULT_MODEL, Workspace

CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class BatchEstimate:
    phase: int
    batch: int
    first_seed: str
    last_seed: str
    usage: Usage
    cost_usd: float | None  # None: the model has no price
    input_source: str  # "request" (built now) or "estimate" (phase.yaml)
    output_source: str  # "merged" (measured) or "estimate" (phase.yaml)


@dataclass(frozen=True)
class EscalationEstimate:
    """A phase's expected escalation cost: the share of merged batches that needed attempt
    `from_attempt` or later, times the batches still to run priced on the stronger model."""

    model: str
    from_attempt: int
    observed: int  # merged batches whose attempts are known
    escalated: int  # of them, those that needed attempt from_attempt or later
    cost_usd: float | None  # None: the escalation model has no price

    @property
    def rate(self) -> float:
        return self.escalated / self.observed if self.observed else 0.0

    def describe(self) -> str:
        if not self.escalated:
            seen = "no retries observed yet" if not self.observed else "no batch needed it yet"
            return f"escalation to {self.model} from attempt {self.from_attempt}: {seen}, $0"
        cost = "unknown" if self.cost_usd is None else f"${self.cost_usd:.2f}"
        return (
            f"escalation to {self.model} from attempt {self.from_attempt}: {self.escalated} of "
            f"{self.observed} merged batches needed it ({self.rate:.0%}), expected {cost}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "from_attempt": self.from_attempt,
            "observed_batches": self.observed, "escalated_batches": self.escalated,
            "retry_rate": round(self.rate, 4), "cost_usd": self.cost_usd,
            "note": self.describe(),
        }  # fmt: skip


@dataclass
class Plan:
    course: str
    model: str
    via: str
    batches: list[BatchEstimate] = field(default_factory=list)
    merged: dict[int, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    escalation: dict[int, EscalationEstimate] = field(default_factory=dict)

    def total(self, phase: int | None = None) -> tuple[Usage, float | None]:
        """Tokens and cost of the chosen batches (cost None when the model has no price)."""
        chosen = [b for b in self.batches if phase is None or b.phase == phase]
        usage = Usage()
        for item in chosen:
            usage = usage + item.usage
        costs = [b.cost_usd for b in chosen]
        if any(cost is None for cost in costs):
            return usage, None
        return usage, round(sum(c for c in costs if c is not None), 6)

    def to_dict(self) -> dict[str, Any]:
        usage, cost = self.total()
        return {
            "course": self.course, "model": self.model, "via": self.via,
            "merged_batches": {f"phase{k}": v for k, v in self.merged.items()},
            "batches": [
                {"phase": b.phase, "batch": b.batch, "first_seed": b.first_seed,
                 "last_seed": b.last_seed, "tokens": _tokens(b.usage), "cost_usd": b.cost_usd,
                 "input_from": b.input_source, "output_from": b.output_source}
                for b in self.batches
            ],
            "totals": {"tokens": _tokens(usage), "cost_usd": cost},
            **({"warnings": self.warnings} if self.warnings else {}),
            **({"escalation": {f"phase{k}": e.to_dict() for k, e in self.escalation.items()}}
               if self.escalation else {}),
            **({} if cost is not None or not self.batches else
               {"cost_unknown": f"no price for {self.model}; add its price under prices: "
                                "in freshbatch.yaml"}),
        }  # fmt: skip


def _tokens(usage: Usage) -> dict[str, int]:
    return {"input": usage.input_tokens, "output": usage.output_tokens,
            "cache_write": usage.cache_creation_input_tokens,
            "cache_read": usage.cache_read_input_tokens}  # fmt: skip


def plan_phase(
    workspace: Workspace, phase_name: str, course_code: str, model: str | None = None,
    via: str = "messages", options: RunOptions | None = None,
) -> Plan:  # fmt: skip
    """What running PHASE (or all) on COURSE would cost now; reads files, spends nothing."""
    phases = load_phases(workspace)
    course = workspace.load_course(course_code)
    escalate = choose_escalation(options or RunOptions(), course, workspace.settings())
    chosen = model or course.model or workspace.settings().model or DEFAULT_MODEL
    pricing = Pricing.with_overrides(workspace.settings().prices)
    plan = course.plan()
    result = Plan(course.code, chosen, via)
    limit = _known_output_limit(course.state_dir)
    for number in phase_numbers(phases, phase_name, workspace):
        progress = ReadOnlyProgress(course.state_dir, course.code, plan, [number])
        phase_run = PhaseRun(workspace, phases, phases[number], course, progress, pricing)
        result.merged[number] = len(phase_run.bodies)
        wanted = phases[number].max_tokens
        if limit is not None and wanted > limit and len(phase_run.bodies) < len(plan):
            result.warnings.append(
                f"phase{number}: max_tokens {wanted} is above the account's output limit of "
                f"{limit} tokens a minute (seen in the last run's headers); requests will ask "
                f"for at most {limit}"
            )
        prefix = len("".join(system_blocks(phase_run.phase, course))) // CHARS_PER_TOKEN
        per_seed_out = _measured_output_per_seed(phase_run)
        first = True
        for batch in plan.batches[len(phase_run.bodies) :]:
            own, input_source = _input_tokens(phase_run, batch, chosen, prefix)
            output = per_seed_out or phase_run.phase.estimate.get("output_per_seed", 300)
            usage = Usage(
                input_tokens=own,
                output_tokens=round(output * len(batch.seed_ids)),
                cache_creation_input_tokens=prefix if first else 0,
                cache_read_input_tokens=0 if first else prefix,
            )
            first = False
            cost = pricing.cost(usage, chosen, batch=via == "batches",
                                cache_ttl="1h" if via == "batches" else None)  # fmt: skip
            result.batches.append(BatchEstimate(
                number, batch.number, batch.first_seed, batch.last_seed, usage, cost,
                input_source, "merged" if per_seed_out else "estimate"))  # fmt: skip
        if escalate is not None:
            rows = [b for b in result.batches if b.phase == number]
            result.escalation[number] = _escalation(
                phase_run, rows, escalate.model, escalate.from_attempt, pricing, via)  # fmt: skip
    return result


def _escalation(
    phase_run: PhaseRun, rows: list[BatchEstimate], model: str, from_attempt: int,
    pricing: Pricing, via: str,
) -> EscalationEstimate:  # fmt: skip
    """Each batch to run, priced on `model`, weighted by the observed escalation rate.

    An escalated attempt cannot read the other model's prompt cache: its prefix is priced
    as a cache write."""
    attempts = _merged_attempts(phase_run)
    escalated = sum(1 for n in attempts if n >= from_attempt)
    estimate = EscalationEstimate(model, from_attempt, len(attempts), escalated, 0.0)
    if not escalated:
        return estimate
    total = 0.0
    for row in rows:
        usage = replace(row.usage, cache_read_input_tokens=0,
                        cache_creation_input_tokens=row.usage.cache_creation_input_tokens
                        + row.usage.cache_read_input_tokens)  # fmt: skip
        cost = pricing.cost(usage, model, batch=via == "batches",
                            cache_ttl="1h" if via == "batches" else None)  # fmt: skip
        if cost is None:
            return replace(estimate, cost_usd=None)
        total += cost
    return replace(estimate, cost_usd=round(total * estimate.rate, 6))


def _merged_attempts(phase_run: PhaseRun) -> list[int]:
    """How many attempts each merged batch took: its transcripts, else progress.json."""
    merged = len(phase_run.bodies)
    transcripts = batch_transcripts(phase_run.course.state_dir, phase_run.phase.number)
    found = []
    for number in range(1, merged + 1):
        attempts = transcripts.get(number)
        if attempts:
            found.append(max(int(a.get("attempt") or 0) for a in attempts))
            continue
        entry = phase_run.progress.batch(phase_run.phase.number, number)
        if entry.get("attempts"):
            found.append(int(entry["attempts"]))
    return found


def _input_tokens(phase_run: PhaseRun, batch: Batch, model: str, prefix: int) -> tuple[int, str]:
    """Tokens after the cached prefix: the real request's where its input exists."""
    if phase_run.is_ready(batch) is None:
        earlier = phase_run.bodies[: batch.number - 1]
        data = phase_run.module.batch_input(phase_run.context, batch, earlier)
        request = build_request(phase_run.phase, phase_run.course, model, batch,
                                len(phase_run.plan), data, 1, 3)  # fmt: skip
        chars = sum(len(m.text) for m in request.messages)
        # batches after the next one will also carry the context of those run before them
        done = sum(len(b.seed_ids) for b in phase_run.plan.batches[: len(phase_run.bodies)])
        position = phase_run.plan.seed_ids.index(batch.first_seed)
        growth = phase_run.phase.estimate.get("context_per_earlier_seed", 20) * (position - done)
        return chars // CHARS_PER_TOKEN + round(growth), "request"
    estimate = phase_run.phase.estimate
    position = phase_run.plan.seed_ids.index(batch.first_seed)
    own = estimate.get("input_per_seed", 50) * len(batch.seed_ids)
    context = estimate.get("context_per_earlier_seed", 20) * position
    return round(own + context), "estimate"


def _measured_output_per_seed(phase_run: PhaseRun) -> float | None:
    """Output tokens per seed of the merged batches: transcripts, else the merged JSON."""
    if not phase_run.bodies:
        return None
    seeds = sum(len(b.seed_ids) for b in phase_run.plan.batches[: len(phase_run.bodies)])
    measured = _transcript_output(phase_run, len(phase_run.bodies))
    if measured is None:
        chars = sum(len(json.dumps(body, ensure_ascii=False)) for body in phase_run.bodies)
        measured = chars // CHARS_PER_TOKEN
    return measured / seeds if seeds else None


def _transcript_output(phase_run: PhaseRun, merged: int) -> int | None:
    """Output tokens of the valid attempts of batches 1..merged, if every one has a transcript."""
    total = 0
    for number in range(1, merged + 1):
        found = None
        for attempt in (3, 2, 1):
            path = phase_run.store.find_transcript(number, attempt)
            if path is not None:
                try:
                    found = json.loads(path.read_text(encoding="utf-8"))["answer"]["usage"]
                except (OSError, ValueError, KeyError, TypeError):
                    return None
                break
        if found is None:
            return None
        total += int(found.get("output_tokens") or 0)
    return total


def _known_output_limit(state_dir: Path) -> int | None:
    """The output-tokens-per-minute limit the last run's headers showed, if any."""
    state = read_progress(state_dir) or {}
    limits = (state.get("pacing") or {}).get("limits") or {}
    limit = (limits.get("output-tokens") or {}).get("limit")
    return int(limit) if isinstance(limit, int) else None
