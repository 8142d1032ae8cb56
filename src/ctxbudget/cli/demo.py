"""``ctxbudget demo analyst``: the analyst example's session replayed through the engine
(``ctxbudget.demo``), and its budget monitor and final report drawn here.

Wiring (``cli.app``): ``demo.register(commands)`` in ``build_parser``, and
``"demo": demo.cmd_demo`` in ``COMMANDS`` (``main`` calls it as
``cmd_demo(args, tracker)``).

The demo writes nowhere unless asked: its store is ``memory://`` unless ``--store URL``
is given (before or after ``demo``). The tracker ``main`` passes opens the user's default
store, so it is not used for a parsed command line; it serves callers that build their
own ``Namespace`` without a store (tests, embedding).
"""

from __future__ import annotations

import argparse
import json
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from ..demo import run_analyst
from ..demo_run import EPIC, TRIGGER_SHARE, AnalystRun
from ..errors import ConfigurationError
from ..level import whole_percent
from ..render import bar
from ..tracker import Tracker

SCENARIOS = ("analyst",)
DEFAULT_STORE = "memory://"


def register(commands: Any) -> None:
    """Add the ``demo`` subcommand to ``commands`` (an argparse subparsers action)."""
    demo = commands.add_parser(
        "demo",
        help="replay the analyst example through the engine (epic EP24)",
        description="Replay the analyst example's requirements session (epic EP24, 25 exchanges, a "
        "12,000-token window with 2,000 reserved for output) through a real session: "
        "usage recorded per request, compaction when the conversation passes 70% of the "
        "working budget, every requirement, decision and open question checked at the end. "
        "Prints one line per exchange, the compactions, the budget monitor and the final "
        f"token budget report. The session is kept in {DEFAULT_STORE} (nothing is written "
        "to your store) unless --store URL is given.",
        # cli.app adds --store to every subcommand after registering them: the same flag,
        # so let the later definition replace this one instead of clashing.
        conflict_handler="resolve",
    )
    demo.add_argument("scenario", choices=SCENARIOS, help="the scenario to replay")
    demo.add_argument("--json", action="store_true", help="one JSON object on stdout")
    demo.add_argument("--quiet", action="store_true", help="no per-exchange lines")
    demo.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"keep the session and its events in this store (default: {DEFAULT_STORE}, "
        "nothing is written to your store)",
    )
    # Marks a command line parsed here: its default store is memory://, whatever
    # tracker the caller opened.
    demo.set_defaults(demo_default_store=DEFAULT_STORE)


def _tracker(args: argparse.Namespace, tracker: Tracker | None) -> tuple[Tracker, bool]:
    """The tracker to run in, and whether it is ours to close."""
    url = getattr(args, "store", None)
    if url:
        return Tracker(store=url), True  # asked for: the caller's tracker is ignored
    default = getattr(args, "demo_default_store", None)
    if default is None and tracker is not None:
        return tracker, False
    return Tracker(store=default or DEFAULT_STORE), True


def cmd_demo(args: argparse.Namespace, tracker: Tracker | None = None) -> int:
    """Run the scenario; print it (or ``--json``). Returns the exit code (0)."""
    use, owned = _tracker(args, tracker)
    quiet = bool(getattr(args, "quiet", False) or getattr(args, "json", False))
    try:
        run = _run(args.scenario, use, None if quiet else print)
        if getattr(args, "json", False):
            data = run.to_dict()
            data["store"] = getattr(args, "store", None) or (
                DEFAULT_STORE if owned else "caller's tracker"
            )
            print(json.dumps(data, ensure_ascii=False, indent=2))
            return 0
        if not quiet:
            print()
        print(render_monitor(run))
        print()
        print(render_report(run))
        url = getattr(args, "store", None)
        if url:
            print(
                f"Session {run.session.id} stored in {url} "
                f"(see: ctxbudget events {run.session.id[:12]})."
            )
        elif owned:
            print("In memory only; --store URL keeps the session and its events.")
        return 0
    finally:
        if owned:
            use.close()


def _run(scenario: str, tracker: Tracker, emit: Callable[[str], None] | None) -> AnalystRun:
    if scenario != "analyst":  # argparse refuses others; a hand-built Namespace may not
        raise ConfigurationError(
            f"unknown demo scenario {scenario!r}: choose from {', '.join(SCENARIOS)}"
        )
    return run_analyst(tracker, on_event=emit)


# -- the monitor and the report ------------------------------------------------------


def render_monitor(run: AnalystRun) -> str:
    """The analyst example's "ANALYST TOKEN BUDGET MONITOR" box, for the end of the run."""
    status, window = run.final_status, run.window
    used = status.used_tokens
    active = max(0, used - run.system_tokens - run.summary_tokens)
    free = max(0, window - used - run.reserved_output)

    def share(tokens: int) -> str:
        return f"{whole_percent(100 * tokens / window)}%"

    rows: list[str] = [
        f"Context Window: {window:,} tokens",
        "",
        f"Current Usage: {used:,} / {window:,} ({whole_percent(status.percent)}%)",
        bar(status.percent, 40),
        f"Peak: {run.peak_tokens:,} ({whole_percent(run.peak_percent)}%) at Ex {run.peak.exchange}",
        "",
        "Breakdown:",
        f"├─ System prompts:     {run.system_tokens:,} ({share(run.system_tokens)})  [Fixed]",
        f"├─ Compressed history: {run.summary_tokens:,} ({share(run.summary_tokens)})  [Optimized]",
        f"├─ Active gathering:   {active:,} ({share(active)})  [In progress]",
        f"├─ Reserved output:    {run.reserved_output:,} ({share(run.reserved_output)})"
        "  [Reserved]",
        f"└─ Safety margin:      {free:,} ({share(free)})  [Buffer]",
        "",
        "Alerts:",
    ]
    policy = run.session.policy
    if status.percent < policy.warning_percent:
        rows.append(
            f"✅ Within budget ({whole_percent(status.percent)}% < "
            f"{policy.warning_percent:g}% warning threshold)"
        )
    else:
        rows.append(
            f"⚠️ Over the warning threshold ({whole_percent(status.percent)}% ≥ "
            f"{policy.warning_percent:g}%)"
        )
    for c in run.compactions:
        if c.facts.passed:
            rows.append(f"✅ Compression applied successfully at Ex {c.exchange}")
        else:
            lost = sum(1 for f in c.facts.missing if f not in c.facts.archived)
            rows.append(f"❌ Compression at Ex {c.exchange} lost {lost} must-keep fact(s)")
    left = status.estimated_exchanges_left
    if left is not None:
        rows.append(f"✅ Can continue for ~{left} more exchanges")
    before_next = run.exchanges_before_next_compaction
    if before_next is not None:
        rows.append(f"   (~{before_next} before the next compaction)")
    rows += ["", "Compression History:"]
    if not run.compactions:
        rows.append("└─ none")
    for n, c in enumerate(run.compactions, start=1):
        branch = "└─" if n == len(run.compactions) else "├─"
        rows.append(
            f"{branch} Event #{c.number} (Ex {c.exchange}): {c.conversation_before:,} → "
            f"{c.conversation_after:,} tokens (-{c.reduction_percent:.0f}%)"
        )
    req, dec, que = run.requirements, run.decisions, run.questions
    rows += [
        "",
        "Session Stats:",
        f"├─ Exchanges: {run.completed_exchanges} / {run.total_exchanges}",
        f"├─ Requirements: {req[1]} gathered, {req[0]}/{req[1]} in context",
        f"├─ Decisions: {dec[1]} recorded, {dec[0]}/{dec[1]} in context",
        f"├─ Open questions: {que[1]} open, {que[0]}/{que[1]} in context",
    ]
    avg = run.average_clarity
    rows.append(f"└─ Avg clarity: {avg:.2f}" if avg is not None else "└─ Avg clarity: n/a")
    return _box(f"ANALYST TOKEN BUDGET MONITOR - {EPIC}", rows)


def render_report(run: AnalystRun) -> str:
    """The analyst example's final "TOKEN BUDGET REPORT"."""
    rule = "═" * 62
    window = run.window
    k = f"{window // 1000}K" if window % 1000 == 0 else f"{window:,}"
    lines = [
        rule,
        "TOKEN BUDGET REPORT".center(62).rstrip(),
        f"Epic {EPIC} - Requirements Session".center(62).rstrip(),
        rule,
        "",
        _pair("Total Exchanges:", f"{run.completed_exchanges} of {run.total_exchanges}", 30),
        _pair(
            "Context Window:",
            f"{window:,} tokens ({run.system_tokens:,} system, "
            f"{run.reserved_output:,} reserved for output)",
            30,
        ),
        _pair(
            "Working Budget:",
            f"{run.working_budget:,} tokens (compaction at {TRIGGER_SHARE:.0%}: "
            f"{run.trigger_tokens:,})",
            30,
        ),
        "",
        "TOKEN BREAKDOWN:",
    ]
    breakdown = [
        (
            "Original conversation:",
            f"{run.uncompacted_tokens - run.system_tokens:,} tokens (if uncompressed)",
        )
    ]
    for c in run.compactions:
        breakdown.append(
            (
                f"After compression (Ex {c.exchange}):",
                f"{c.conversation_after:,} tokens ({c.conversation_before:,} → "
                f"{c.conversation_after:,})",
            )
        )
    if run.compactions:
        first = run.compactions[0].exchange
        after = [e for e in run.exchanges if e.exchange > first]
        if after:
            breakdown.append(
                (
                    f"Exchanges {after[0].exchange}-{after[-1].exchange}:",
                    f"{sum(e.added_tokens for e in after if e.added_tokens > 0):,} tokens",
                )
            )
    breakdown += [
        (
            "Final context:",
            f"{run.final_tokens:,} tokens ({whole_percent(run.final_percent)}% of {k} window)",
        ),
        (
            "Peak usage:",
            f"{run.peak_tokens:,} tokens ({whole_percent(run.peak_percent)}% of {k} window, "
            f"Ex {run.peak.exchange})",
        ),
    ]
    lines += _tree(breakdown)
    lines += ["", "COMPRESSION EVENTS:"]
    events = [
        (
            f"Compression #{c.number} (Ex {c.exchange}):",
            f"{c.conversation_before:,} → {c.conversation_after:,} tokens "
            f"({c.reduction_percent:.0f}% reduction)",
        )
        for c in run.compactions
    ]
    events.append(("Total token savings:", f"{sum(c.freed for c in run.compactions):,} tokens"))
    lines += _tree(events)

    overflow = run.overflow_exchange
    if overflow is not None:
        verdict = f"overflow at Ex {overflow} ❌"
    elif run.reserve_breach_exchange is not None:
        verdict = f"output reserve breached at Ex {run.reserve_breach_exchange} ❌"
    else:
        verdict = "fits ✅"
    critical = run.session.policy.critical_percent
    managed_ok = run.peak_percent < critical and run.completed_exchanges == (run.total_exchanges)
    saved = run.uncompacted_tokens - run.final_tokens
    lines += ["", "EFFICIENCY METRICS:"]
    lines += _tree(
        [
            (
                "Without compression:",
                f"{run.uncompacted_tokens:,} tokens ({whole_percent(run.uncompacted_percent)}%: "
                f"{verdict})",
            ),
            (
                "With budget management:",
                f"{run.peak_tokens:,} tokens peak ({whole_percent(run.peak_percent)}% < "
                f"{critical:g}% critical: "
                + ("within budget ✅)" if managed_ok else "over budget ❌)"),
            ),
            (
                "Token savings:",
                f"{100 * saved / max(1, run.uncompacted_tokens):.0f}% of the final "
                f"context ({run.uncompacted_tokens:,} → {run.final_tokens:,})",
            ),
            (
                "Session completion:",
                f"{100 * run.completed_exchanges / max(1, run.total_exchanges):.0f}% "
                f"({len(run.modules)} modules gathered)",
            ),
        ]
    )
    req, dec, que = run.requirements, run.decisions, run.questions
    avg = run.average_clarity
    quality = [
        (
            "Average clarity score:",
            f"{avg:.2f} ({len(run.clarity)} modules: "
            + ", ".join(f"{v:.2f}" for v in run.clarity.values())
            + ")"
            if avg is not None
            else "n/a",
        )
    ]
    for c in run.compactions:
        must = [
            c.facts.by_kind.get(kind, (0, 0)) for kind in ("requirement", "decision", "question")
        ]
        kept, total = sum(m[0] for m in must), sum(m[1] for m in must)
        quality.append(
            (
                f"Information retention #{c.number}:",
                f"{100 * kept / max(1, total):.0f}% of must-keep facts ({kept}/{total}); "
                f"{100 * c.facts.retention:.0f}% of all facts, the rest archived",
            )
        )
    quality += [
        (
            "Final context check:",
            f"requirements {req[0]}/{req[1]}, decisions {dec[0]}/{dec[1]}, "
            f"open questions {que[0]}/{que[1]}",
        ),
        ("Total requirements:", f"{req[1]} (across {len(run.modules)} modules)"),
    ]
    lines += ["", "QUALITY METRICS:"]
    lines += _tree(quality)
    lines += ["", rule]
    return "\n".join(lines)


# -- text layout ----------------------------------------------------------------------


def _width(text: str) -> int:
    """Columns a terminal gives ``text``: wide characters (✅, ❌) take two, a variation
    selector turns the symbol before it into an emoji (two columns)."""
    width = 0
    for ch in text:
        if ch == "\ufe0f":
            width += 1
        elif unicodedata.combining(ch) or ch == "\u200d":
            continue
        else:
            width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _box(title: str, rows: Sequence[str], inner: int = 60) -> str:
    inner = max([inner, _width(title) + 2, *(_width(r) + 2 for r in rows)])

    def line(text: str) -> str:
        return f"│ {text}{' ' * (inner - 1 - _width(text))}│"

    out = ["┌" + "─" * inner + "┐", line(title), "├" + "─" * inner + "┤"]
    out += [line(r) for r in rows]
    out.append("└" + "─" * inner + "┘")
    return "\n".join(out)


def _pair(label: str, value: str, width: int) -> str:
    return f"{label:<{width}}{value}"


def _tree(rows: Sequence[tuple[str, str]], width: int = 27) -> list[str]:
    out = []
    for n, (label, value) in enumerate(rows):
        branch = "└─ " if n == len(rows) - 1 else "├─ "
        out.append(branch + _pair(label, value, width))
    return out
