"""Rendering for the terminal (rich). No state and no decisions live here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from freshbatch.issues import ERROR, Issue, RuleInfo
from freshbatch.validation import ValidationReport

_STAT_LABELS = {
    "seeds": "seeds",
    "legos": "LEGOs",
    "tiling_exact": "tile exactly (T1)",
    "tiling_covered": "fully covered (T2)",
    "foreign_legos": "foreign LEGOs (T3)",
    "new": "new LEGOs",
    "known_texts_with_two_targets": "known texts with 2+ targets",
    "baskets": "baskets",
    "phrases": "phrases",
    "gate_phrases": "phrases failing the gate",
    "gate_baskets": "baskets failing the gate",
    "phrases_without_lego": "phrases without their LEGO",
    "lego_mismatch": "baskets with other LEGO text",
}


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def make_console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = max(console.width, 120)  # logs and pipes: no squeezed tables
    return console


def print_report(console: Console, report: ValidationReport, limit: int) -> None:
    """One summary line, key figures, then issues grouped by batch and seed, capped per batch."""
    errors, warnings = report.stats.get("errors", 0), report.stats.get("warnings", 0)
    verdict = "[green]valid[/]" if report.valid else "[red]INVALID[/]"
    console.print(
        f"[bold]phase {report.phase}[/] {report.course}: {verdict} — "
        f"{plural(errors, 'error')}, {plural(warnings, 'warning')} in "
        f"{report.stats.get('batches_checked', 0)} of {report.stats.get('batches_planned', 0)} "
        f"batches ({escape(report.file)})"
    )
    figures = [
        f"{report.stats[k]} {label}" for k, label in _STAT_LABELS.items() if k in report.stats
    ]
    if figures:
        console.print("  " + ", ".join(figures), style="dim")
    by_batch: dict[int | None, list[Issue]] = defaultdict(list)
    for issue in report.issues:
        by_batch[issue.batch].append(issue)
    for batch in sorted(by_batch, key=lambda b: -1 if b is None else b):
        _print_batch(console, batch, by_batch[batch], limit)


def _print_batch(console: Console, batch: int | None, issues: list[Issue], limit: int) -> None:
    errors = sum(1 for i in issues if i.severity == ERROR)
    title = "file" if batch is None else f"batch {batch}"
    console.print(
        f"  [bold]{title}[/]: {plural(errors, 'error')}, {plural(len(issues) - errors, 'warning')}"
    )
    ordered = sorted(issues, key=lambda i: (i.severity != ERROR, i.seed_id or "", i.lego_id or ""))
    shown = ordered if limit <= 0 else ordered[:limit]
    for issue in shown:
        mark = "[red]✗[/]" if issue.severity == ERROR else "[yellow]![/]"
        console.print(f"    {mark} [dim]{issue.rule}[/] {escape(issue.message)}")
    if len(ordered) > len(shown):
        console.print(
            f"    … and {len(ordered) - len(shown)} more (--limit 0 shows all, "
            "--json gives every issue)",
            style="dim",
        )


def print_rules(
    console: Console,
    phases: Sequence[tuple[int, dict[str, RuleInfo]]],
    sources: Sequence[str] = (),
) -> None:
    table = Table("phase", "rule", "severity", "checks", show_lines=False)
    for number, rules in phases:
        for rule in rules.values():
            table.add_row(str(number), rule.name, rule.severity, rule.checks)
    console.print(table)
    for line in sources:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


class RunDisplay:
    """Prints one line per batch event while a run goes, and a summary table at the end."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Any = None

    def attach(self, progress: Any) -> None:
        self.progress = progress
        progress.listen(self.on_event)

    def on_event(self, name: str, data: dict[str, Any]) -> None:
        if self.progress is None or "phase" not in data:
            return
        phase, number = data["phase"], data.get("batch")
        entry = self.progress.batch(phase, number) if number else None
        total = self.progress.state["total_batches"]
        where = (
            f"phase {phase} batch {number}/{total} {entry['first_seed']}–{entry['last_seed']}"
            if entry
            else f"phase {phase}"
        )
        line = self._line(name, data, entry)
        if line:
            self.console.print(f"[bold]{where}[/] {line}")

    def _line(self, name: str, data: dict[str, Any], entry: dict[str, Any] | None) -> str | None:
        if name == "batch:attempt" and entry is not None:
            tokens = (
                f"{data['input'] + data['cache_read'] + data['cache_write']:,} in "
                f"({data['cache_read']:,} cached) / {data['output']:,} out"
            )
            verdict = (
                "[green]valid[/]"
                if not data["errors"]
                else f"[red]{plural(data['errors'], 'error')}[/]"
            )
            first = f" — {escape(entry['last_errors'][0]['message'])}" if data["errors"] else ""
            return (
                f"attempt {data['attempt']}: {verdict}, {tokens}, ${entry['cost_usd']:.4f}{first}"
            )
        if name == "batch:merged":
            return f"[green]merged[/]: {data.get('produced', '')}"
        if name == "batch:failed":
            return "[red]failed[/] after its attempts; see .freshbatch/transcripts/"
        if name == "ratelimit:pause":
            return f"[yellow]rate limited ({data['status']})[/], pausing {data['seconds']:.1f}s"
        return None


def _k(value: int) -> str:
    return f"{value / 1000:.1f}k" if value >= 10_000 else str(value)


def print_summary(console: Console, progress: dict[str, Any]) -> None:
    """The per-phase table of batches, attempts, tokens and cost."""
    total = progress["total_batches"]
    table = Table(title=f"{progress['course']}: {progress['status']}", box=box.SIMPLE_HEAD)
    for header in (
        "phase",
        "merged",
        "staged",
        "failed",
        "todo",
        "tries",
        "in",
        "cached",
        "out",
        "cost",
    ):
        table.add_column(header, no_wrap=True, min_width=len(header))
    for name, phase in sorted(progress.get("phases", {}).items()):
        tokens = phase["tokens"]
        table.add_row(
            name.removeprefix("phase"),
            f"{phase['merged']}/{total}",
            str(phase["staged"]),
            str(phase["failed"]),
            str(phase["pending"] + phase["running"]),
            str(phase["attempts"]),
            _k(tokens["input"] + tokens["cache_write"]),
            _k(tokens["cache_read"]),
            _k(tokens["output"]),
            "unknown" if progress.get("cost_unknown") else f"${phase['cost_usd']:.2f}",
        )
    console.print(table)
    totals = progress.get("totals") or {}
    eta = progress.get("eta")
    unknown = progress.get("cost_unknown")
    line = (
        f"total cost unknown ({unknown['hint']})"
        if unknown
        else f"total cost ${totals.get('cost_usd', 0.0):.4f}"
    )
    if not unknown and totals.get("escalation_cost_usd"):
        line += f" (escalated attempts ${totals['escalation_cost_usd']:.4f} of it)"
    if eta:
        line += f", ETA {eta['at']} ({eta['seconds']:.0f}s)"
    if progress.get("stale"):
        line += "; the last run stopped without finishing (killed or crashed): run again to resume"
    console.print(line, style="dim")


def print_failures(console: Console, progress: dict[str, Any]) -> None:
    for entry in progress.get("batches", []):
        if entry["status"] == "failed":
            console.print(
                f"[red]phase {entry['phase']} batch {entry['batch']}[/] "
                f"({entry['first_seed']}–{entry['last_seed']}) failed after "
                f"{entry['attempts']} attempts:"
            )
            for issue in entry["last_errors"][:5]:
                console.print(f"    ✗ [dim]{issue['rule']}[/] {escape(issue['message'])}")


def print_plan(console: Console, plan: Any) -> None:
    """Per phase: batches to run, tokens and cost; per batch too when there is one phase."""
    phases = sorted(plan.merged)
    table = Table(
        title=f"{plan.course}: plan with {plan.model} via {plan.via}", box=box.SIMPLE_HEAD
    )
    for header in ("phase", "batch", "seeds", "input", "cache write", "cache read", "output",
                   "cost"):  # fmt: skip
        table.add_column(header, no_wrap=True, justify="right" if header != "phase" else "left")
    for number in phases:
        rows = [b for b in plan.batches if b.phase == number]
        if len(phases) == 1:
            for item in rows:
                table.add_row(str(number), str(item.batch), f"{item.first_seed}–{item.last_seed}",
                              *_usage_cells(item.usage), _money(item.cost_usd, 3))  # fmt: skip
        usage, cost = plan.total(number)
        label = f"{len(rows)} to run" if rows else "all merged"
        table.add_row(f"[bold]{number}[/]", label, f"{plan.merged[number]} merged",
                      *_usage_cells(usage), f"[bold]{_money(cost, 2)}[/]")  # fmt: skip
    console.print(table)
    usage, cost = plan.total()
    console.print(f"total: {_k(usage.output_tokens)} output tokens, {_money(cost, 2)} "
                  "(4 characters a token; retries not included)", style="dim")  # fmt: skip
    for number, escalation in sorted(plan.escalation.items()):
        console.print(f"phase {number}: {escalation.describe()}")
    if cost is None:
        console.print(f"cost unknown: no price for {plan.model}; add its price under prices: "
                      "in freshbatch.yaml (see `freshbatch models`)")  # fmt: skip
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def _money(value: float | None, digits: int) -> str:
    return "unknown" if value is None else f"${value:.{digits}f}"


def _usage_cells(usage: Any) -> tuple[str, str, str, str]:
    return (_k(usage.input_tokens), _k(usage.cache_creation_input_tokens),
            _k(usage.cache_read_input_tokens), _k(usage.output_tokens))  # fmt: skip


def print_models(console: Console, rows: list[dict[str, Any]], checked: str) -> None:
    """`freshbatch models`: USD per million tokens, as the table gives them."""
    if not console.is_terminal:
        console.width = max(console.width, 160)
    table = Table(title=f"models (from Anthropic's docs, checked {checked})", box=box.SIMPLE_HEAD)
    for header in ("id", "status", "input", "output", "write 5m", "write 1h", "read",
                   "min cache", "max out", "thinking"):  # fmt: skip
        table.add_column(header, no_wrap=True)
    for row in rows:
        prices = row["prices"]

        def money(key: str, p: dict[str, Any] = prices) -> str:
            value = p.get(key)
            return f"{value:g}" if isinstance(value, int | float) else "-"

        marker = " (default)" if row["default"] else ""
        table.add_row(row["id"] + marker, row["status"], money("input"), money("output"),
                      money("cache_write_5m"), money("cache_write_1h"), money("cache_read"),
                      str(row["min_cache_tokens"] or "-"), str(row["max_output"] or "-"),
                      str(row["thinking"] or "-"))  # fmt: skip
    console.print(table)
    console.print("A model not listed has no price (costs show as unknown): add one under "
                  "prices: in freshbatch.yaml. Sources and notes: freshbatch/models.yaml",
                  style="dim")  # fmt: skip
