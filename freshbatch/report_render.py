"""The run report as Markdown (the end of every run, `report --format md`) or one HTML page
with an inline SVG drift chart per phase (no script, no external file)."""

from __future__ import annotations

from html import escape
from typing import Any

# drift chart lines: (figure key, label, colour)
CHART_LINES = (
    ("first_errors_per_seed", "first-attempt errors / seed", "#c0392b"),
    ("merged_errors_per_seed", "merged errors / seed", "#8e44ad"),
    ("merged_warnings_per_seed", "merged warnings / seed", "#d68910"),
    ("size", "output size", "#2471a3"),
)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def phase_lines(phase: dict[str, Any]) -> list[str]:
    """The figures of one phase as Markdown bullet lines."""
    wall = phase["wall_seconds"]
    tokens = phase["tokens"]
    lines = [
        f"- batches: {phase['completed']} completed, {phase['partial']} partial (staged or "
        f"running), {phase['failed']} failed, {phase['pending']} pending of {phase['batches']}",
        f"- success rate {_pct(phase['success_rate'])}, first-attempt pass rate "
        f"{_pct(phase['first_attempt_pass_rate'])}, attempts {_num(phase['attempts'])}",
    ]
    if wall is not None:
        lines.append(
            f"- wall time per batch: median {wall['median']:.1f}s, 90th percentile "
            f"{wall['p90']:.1f}s ({wall['batches']} batches)"
        )
    if tokens is not None:
        lines.append(
            f"- tokens: {tokens['input']:,} in, {tokens['cache_write']:,} cache write, "
            f"{tokens['cache_read']:,} cache read, {tokens['output']:,} out; "
            f"cost ${phase['cost_usd']:.4f}"
            + (
                f" (escalated attempts ${phase['escalation_cost_usd']:.4f} of it)"
                if phase.get("escalation_cost_usd")
                else ""
            )
        )
    if phase["retry_rules"]:
        rules = ", ".join(f"{r['rule']} ({r['attempts']})" for r in phase["retry_rules"])
        lines.append(f"- rules that caused retries (failed attempts): {rules}")
    for failed in phase["failed_batches"]:
        first = failed["last_errors"][0]["message"] if failed["last_errors"] else "no answer"
        lines.append(
            f"- failed: batch {failed['batch']} ({failed['first_seed']}–{failed['last_seed']}, "
            f"{failed['attempts']} attempts): {first}"
        )
    if phase["drift"]["verdict"]:
        lines.append(f"- drift: {phase['drift']['verdict']}")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    out = [f"# freshbatch report: {report['course']}", ""]
    if report["status"]:
        out += [f"Last run status: {report['status']}", ""]
    if not report["phases"]:
        out.append("Nothing to report: no merged file, transcript or run state yet.")
    for phase in report["phases"]:
        out += [f"## {phase['key']}", "", *phase_lines(phase), ""]
    return "\n".join(out).rstrip() + "\n"


def render_short(report: dict[str, Any]) -> str:
    """The end-of-run summary: one heading line and the bullets of each phase."""
    out = []
    for phase in report["phases"]:
        out += [f"{phase['key']}:", *(f"  {line}" for line in phase_lines(phase))]
    return "\n".join(out)


def drift_svg(drift: dict[str, Any], width: int = 720, height: int = 220) -> str:
    """One inline SVG: a line per figure over the batch index, each scaled to its own max."""
    rows = drift["batches"]
    left, right, top, bottom = 40, 10, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    count = max(len(rows), 1)

    def x(index: int) -> float:
        return left + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    parts = [
        f'<svg class="drift-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#ccc"/>',
    ]
    for key, label, colour in CHART_LINES:
        values = [(i, r.get(key)) for i, r in enumerate(rows) if r.get(key) is not None]
        if not values:
            continue
        peak = max(v for _, v in values) or 1.0
        points = " ".join(f"{x(i):.1f},{top + plot_h * (1 - v / peak):.1f}" for i, v in values)
        name = drift["size_unit"] if key == "size" and drift["size_unit"] else label
        parts.append(
            f'<polyline data-figure="{key}" fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{points}"><title>{escape(str(name))} (max {peak:.2f})</title></polyline>'
        )
    for index in range(0, count, max(1, count // 10)):
        parts.append(
            f'<text x="{x(index):.1f}" y="{height - 10}" font-size="10" '
            f'text-anchor="middle">{index + 1}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _legend(drift: dict[str, Any]) -> str:
    items = []
    for key, label, colour in CHART_LINES:
        if any(r.get(key) is not None for r in drift["batches"]):
            name = drift["size_unit"] if key == "size" and drift["size_unit"] else label
            items.append(f'<span style="color:{colour}">━ {escape(str(name))}</span>')
    return " ".join(items) + " (each line scaled to its own maximum; x: batch)"


def render_html(report: dict[str, Any]) -> str:
    body = [f"<h1>freshbatch report: {escape(report['course'])}</h1>"]
    for phase in report["phases"]:
        items = "".join(f"<li>{escape(line[2:])}</li>" for line in phase_lines(phase))
        body += [f"<h2>{escape(phase['key'])}</h2>", f"<ul>{items}</ul>"]
        if phase["drift"]["batches"]:
            body += [drift_svg(phase["drift"]), f"<p>{_legend(phase['drift'])}</p>"]
    if not report["phases"]:
        body.append("<p>Nothing to report: no merged file, transcript or run state yet.</p>")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>freshbatch report: {escape(report['course'])}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}li{margin:.2rem 0}</style></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )
