"""Rendering for the terminal (rich). No state and no decisions live here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from freshbatch.issues import ERROR, Issue, RuleInfo
from freshbatch.validation import ValidationReport

_STAT_LABELS = {
    "seeds": "seeds", "legos": "LEGOs", "tiling_exact": "tile exactly (T1)",
    "tiling_covered": "fully covered (T2)", "foreign_legos": "foreign LEGOs (T3)",
    "new": "new LEGOs", "known_texts_with_two_targets": "known texts with 2+ targets",
    "baskets": "baskets", "phrases": "phrases", "gate_phrases": "phrases failing the gate",
    "gate_baskets": "baskets failing the gate", "phrases_without_lego": "phrases without their LEGO",
    "lego_mismatch": "baskets with other LEGO text",
}  # fmt: skip


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def make_console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_report(console: Console, report: ValidationReport, limit: int) -> None:
    """One summary line, key figures, then issues grouped by batch and seed, capped per batch."""
    errors, warnings = report.stats.get("errors", 0), report.stats.get("warnings", 0)
    verdict = "[green]valid[/]" if report.valid else "[red]INVALID[/]"
    console.print(f"[bold]phase {report.phase}[/] {report.course}: {verdict} — "
                  f"{plural(errors, 'error')}, {plural(warnings, 'warning')} in {report.stats.get('batches_checked', 0)} of "
                  f"{report.stats.get('batches_planned', 0)} batches ({escape(report.file)})")  # fmt: skip
    figures = [f"{report.stats[k]} {label}" for k, label in _STAT_LABELS.items() if k in report.stats]
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
    console.print(f"  [bold]{title}[/]: {plural(errors, 'error')}, "
                  f"{plural(len(issues) - errors, 'warning')}")
    ordered = sorted(issues, key=lambda i: (i.severity != ERROR, i.seed_id or "", i.lego_id or ""))
    shown = ordered if limit <= 0 else ordered[:limit]
    for issue in shown:
        mark = "[red]✗[/]" if issue.severity == ERROR else "[yellow]![/]"
        console.print(f"    {mark} [dim]{issue.rule}[/] {escape(issue.message)}")
    if len(ordered) > len(shown):
        console.print(f"    … and {len(ordered) - len(shown)} more (--limit 0 shows all, "
                      "--json gives every issue)", style="dim")  # fmt: skip


def print_rules(console: Console, phases: Sequence[tuple[int, dict[str, RuleInfo]]]) -> None:
    table = Table("phase", "rule", "severity", "checks", show_lines=False)
    for number, rules in phases:
        for rule in rules.values():
            table.add_row(str(number), rule.name, rule.severity, rule.checks)
    console.print(table)
