"""Text renderings of a Status for people: status line, breakdown table, history chart.

Every shell (CLI, status line, hooks) formats with these functions, so the same
numbers look the same everywhere. Colour is opt-in by the caller (``color=True``
when writing to a terminal); without it the output is plain text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .level import Level, whole_percent
from .policy import Policy
from .status import Status

TYPE_CHECKING = False  # typing costs milliseconds at import: the status line imports this

if TYPE_CHECKING:  # the status line renders through here: accounting costs ms
    from .accounting import HistoryPoint

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
    return f"{whole_percent(percent)}%"


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


def warning_block(status: Status, compact: str = "ctxbudget compact") -> str:
    """The notice shown at warning level and above (the warning format). ``compact``:
    the command that compacts this session (with its source), as the advice names it."""
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
    lines.append(f"Estimated remaining capacity: {capacity_text(status)}")
    advice = status.recommendation.replace('"ctxbudget compact', f'"{compact}')
    lines.append(f"Recommendation: {advice}")
    lines.append(rule)
    return "\n".join(lines)


def eta_text(seconds: float | None) -> str:
    """``ETA 40 s`` / ``ETA 12 min`` / ``ETA 1.5 h``; ``ETA unknown`` for None."""
    if seconds is None:
        return "ETA unknown"
    if seconds < 90:
        return f"ETA {seconds:.0f} s"
    if seconds < 3600:
        return f"ETA {seconds / 60:.0f} min"
    return f"ETA {seconds / 3600:.1f} h"


def capacity_text(status: Status) -> str:
    """``~12 exchanges (ETA 9 min)``, from the typical recent exchange; ``unknown`` with
    too little history (fewer than two exchanges)."""
    n = status.estimated_exchanges_left
    if n is None:
        return "unknown (fewer than two exchanges to go by)"
    per = status.tokens_per_exchange
    if n == 0:
        return (
            f"none: a typical exchange (~{per:,} tokens) does not fit in the "
            f"{status.remaining_tokens:,} left"
            if per
            else "none: no room left"
        )
    size = f", ~{per:,} tokens each" if per else ""
    return f"~{n} exchange{'s' if n != 1 else ''} ({eta_text(status.eta_seconds)}{size})"


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
        if b.overhead:  # the request Claude Code recorded says what it is: split below
            label = "provider overhead (system prompt, tools, framing: below)"
        else:
            label = "unattributed (system prompt, tools, framing"
            label += ", estimated)" if status.overhead_estimated else ")"
        component[label] = b.unattributed
    overhead: dict[str, int] = {}
    if b.overhead:
        tools = {k: v for k, v in b.overhead.items() if k.startswith("tool ")}
        if "system prompt" in b.overhead:
            overhead["system prompt"] = b.overhead["system prompt"]
        if tools:
            overhead[f"tool definitions ({len(tools)})"] = sum(tools.values())
        rest = b.unattributed - sum(b.overhead.values())
        if rest > 0:
            overhead["the rest (reminders, framing)"] = rest
    for title, values in (
        ("By component", component),
        ("Provider overhead (from the request Claude Code recorded)", overhead),
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
    points: Sequence[HistoryPoint],
    policy: Policy,
    *,
    height: int = 12,
    width: int = 72,
    compacted_since: bool = False,
    now: int | None = None,
) -> str:
    """Context size at each API call, thresholds as dotted lines, compactions as ▲
    (``compacted_since``: ctxbudget compacted after the last call, marked at the end;
    ``now``: the figure now, with what came after the last call, said at the foot)."""
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
    # Row r covers (top*r/height, top*(r+1)/height], labelled with its top. A threshold
    # is its own dotted line under the lowest row labelled at or above it, so that the
    # labels read in order down the axis.
    boundary_of: dict[int, list[tuple[int, str]]] = {}
    for t, name in thresholds.items():
        boundary = min(height, max(0, math.floor(t / top * height)))
        boundary_of.setdefault(boundary, []).append((t, name))

    def label(tokens: float) -> str:
        # tenths of a thousand under 100k: a 12k window's rows are 1k apart, and its
        # thresholds 9k, 10.8k and 11.4k
        return f"{tokens / 1000:>6.1f}k" if top < 100_000 else f"{tokens / 1000:>6.0f}k"

    rows = []
    for r in range(height - 1, -1, -1):
        for t, name in sorted(boundary_of.get(r + 1, []), reverse=True):
            line = "".join("█" if v >= t else "·" for v in values)
            rows.append(f"{label(t)} ┼{line}  {name}")
        low = top * r / height
        label_tokens = top * (r + 1) / height
        line = ""
        for v in values:
            line += "█" if v > low + (top / height) / 2 else ("▄" if v > low else " ")
        rows.append(f"{label(label_tokens)} ┤{line}")
    rows.append("        └" + "─" * columns)
    if any(marks) or compacted_since:
        rows.append(
            "         "
            + "".join("▲" if m else " " for m in marks)
            + (
                "▲  compaction (the last one by ctxbudget, after the last call)"
                if compacted_since
                else "  compaction"
            )
        )
    peak = max(p.reported_tokens for p in points)
    rows.append(
        f"         {len(points)} API calls · peak {peak:,} "
        f"({pct(100 * peak / policy.window)})"
        f" · last {points[-1].reported_tokens:,}"
        + (f" · now {now:,}" if now is not None and now != points[-1].reported_tokens else "")
    )
    return "\n".join(rows)
