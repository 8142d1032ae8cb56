"""Text renderings of a Status for people: status line, breakdown table, history chart.

Every shell (CLI, status line, hooks) formats with these functions, so the same
numbers look the same everywhere. Colour is opt-in by the caller (``color=True``
when writing to a terminal); without it the output is plain text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .accounting import HistoryPoint
from .model import Level
from .policy import Policy
from .status import Status

LEVEL_LABEL = {
    Level.NORMAL: "Normal",
    Level.WARNING: "⚠️ Warning",
    Level.CRITICAL: "🔴 Critical",
    Level.BLOCKED: "⛔ Blocked",
}
_ANSI = {Level.NORMAL: "32", Level.WARNING: "33", Level.CRITICAL: "31", Level.BLOCKED: "1;31"}


def paint(text: str, level: Level, color: bool) -> str:
    return f"\x1b[{_ANSI[level]}m{text}\x1b[0m" if color else text


def pct(percent: float) -> str:
    """Whole percent, rounded down: 94.9% is not yet the 95% of the blocked level."""
    return f"{math.floor(percent + 1e-9)}%"


def bar(percent: float, width: int = 10) -> str:
    """``████████░░`` for 71%: a cell fills as soon as the share reaches into it."""
    filled = min(width, max(0, math.ceil(percent * width / 100 - 1e-9)))
    return "█" * filled + "░" * (width - filled)


def status_line(status: Status, *, color: bool = False, prefix: str | None = None) -> str:
    """``Tokens: 142,500/200,000 (71%) | ████████░░ | Normal`` (the status bar format)."""
    parts = [] if not prefix else [prefix]
    parts.append(f"Tokens: {status.used_tokens:,}/{status.max_tokens:,} ({pct(status.percent)})")
    parts.append(paint(bar(status.percent), status.level, color))
    parts.append(paint(LEVEL_LABEL[status.level], status.level, color))
    return " | ".join(parts)


def warning_block(status: Status) -> str:
    """The notice shown at warning level and above (the warning format)."""
    if status.level is Level.NORMAL:
        return ""
    title = {
        Level.WARNING: "⚠️ TOKEN WARNING",
        Level.CRITICAL: "🔴 CRITICAL",
        Level.BLOCKED: "⛔ BLOCKED",
    }[status.level]
    rule = "━" * 60
    lines = [
        rule,
        f"{title}: context window at {pct(status.percent)} "
        f"({status.used_tokens:,}/{status.max_tokens:,})",
        rule,
    ]
    if status.estimated_exchanges_left is not None:
        n = status.estimated_exchanges_left
        eta = ""
        if status.eta_seconds:
            hours = status.eta_seconds / 3600
            eta = (
                f" (ETA {hours:.1f} h)"
                if hours >= 1
                else f" (ETA {status.eta_seconds / 60:.0f} min)"
            )
        lines.append(f"Estimated remaining capacity: ~{n} exchange{'s' if n != 1 else ''}{eta}")
    lines.append(f"Recommendation: {status.recommendation}")
    lines.append(rule)
    return "\n".join(lines)


def _rows(title: str, values: dict[str, int], total: int, limit: int = 12) -> list[str]:
    if not values:
        return []
    lines = [f"{title}"]
    shown = list(values.items())[:limit]
    width = max(len(k) for k, _ in shown)
    for key, tokens in shown:
        share = 100.0 * tokens / total if total else 0.0
        lines.append(f"  {key:<{width}}  {tokens:>9,}  {share:5.1f}%")
    rest = list(values.items())[limit:]
    if rest:
        tokens = sum(v for _, v in rest)
        share = 100.0 * tokens / total if total else 0.0
        lines.append(f"  {'(' + str(len(rest)) + ' more)':<{width}}  {tokens:>9,}  {share:5.1f}%")
    return lines


def breakdown_table(status: Status) -> str:
    b = status.breakdown
    total = status.used_tokens
    lines: list[str] = []
    component = dict(b.component)
    if b.unattributed:
        component["unattributed (system prompt, tools, framing)"] = b.unattributed
    for title, values in (
        ("By component", component),
        ("By kind", b.kind),
        ("By tool", b.tool),
        ("By agent (this context)", b.agent),
    ):
        section = _rows(title, values, total)
        if section:
            lines.extend([*section, ""])
    if b.subagents:
        lines.append("Sub-agents (their own contexts)")
        width = max(len(a.name) for a in b.subagents)
        lines.append(f"  {'agent':<{width}}  {'context':>9}  {'calls':>5}  {'output':>8}")
        for a in b.subagents:
            lines.append(
                f"  {a.name:<{width}}  {a.context_tokens:>9,}  {a.calls:>5}  {a.output_tokens:>8,}"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def history_chart(
    points: Sequence[HistoryPoint], policy: Policy, *, height: int = 12, width: int = 72
) -> str:
    """Context size at each API call, thresholds as dotted lines, compactions as ▲."""
    if not points:
        return "No API calls with usage in this session: no history to draw."
    columns = min(width, len(points))
    per_column = len(points) / columns
    values = []
    marks = []
    for c in range(columns):
        chunk = points[
            int(c * per_column) : max(int((c + 1) * per_column), int(c * per_column) + 1)
        ]
        values.append(max(p.reported_tokens for p in chunk))
        marks.append(any(p.after_compaction for p in chunk))
    top = max(policy.window, max(values))
    thresholds = {
        policy.threshold_tokens(Level.BLOCKED): "blocked",
        policy.threshold_tokens(Level.CRITICAL): "critical",
        policy.threshold_tokens(Level.WARNING): "warning",
    }
    rows = []
    row_of = {t: min(height - 1, int(t / top * height)) for t in thresholds}
    for r in range(height - 1, -1, -1):
        low = top * r / height
        label_tokens = top * (r + 1) / height
        line = ""
        for v in values:
            line += "█" if v > low + (top / height) / 2 else ("▄" if v > low else " ")
        names = [name for t, name in thresholds.items() if row_of[t] == r]
        if names:
            line = "".join(ch if ch != " " else "·" for ch in line)
        rows.append(f"{label_tokens / 1000:>6.0f}k ┤{line}  {' / '.join(names)}")
    rows.append("        └" + "─" * columns)
    if any(marks):
        rows.append("         " + "".join("▲" if m else " " for m in marks) + "  compaction")
    peak = max(p.reported_tokens for p in points)
    rows.append(
        f"         {len(points)} API calls · peak {peak:,} "
        f"({math.floor(100 * peak / policy.window)}%)"
        f" · last {points[-1].reported_tokens:,}"
    )
    return "\n".join(rows)
