"""``ctxbudget tokens``: how full a session's context window is."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import TYPE_CHECKING, Any

from ..level import Level, shown_percent
from ..model import EventType
from ..render import breakdown_table, history_chart, status_line, warning_block
from .common import (
    EXIT_BLOCKED,
    EXIT_FAIL_ON,
    EXIT_OK,
    PROGRESS_FROM_ITEMS,
    color,
    compact_command,
    open_source,
    policy_flags,
    progress,
)

if TYPE_CHECKING:
    from ..tracker import Session, Tracker


def register(commands: Any) -> None:
    """Add ``tokens`` to the ``ctxbudget`` subcommands."""
    tokens = commands.add_parser(
        "tokens",
        help="how full a session's context window is",
        description="Show how full a session's context window is. SOURCE is a Claude Code "
        "transcript (.jsonl), a JSON message list, a SWE-agent .traj, or a stored session id; "
        "without it, the newest Claude Code session under ~/.claude/projects.",
    )
    tokens.add_argument("source", nargs="?", metavar="SOURCE")
    tokens.add_argument(
        "--breakdown", action="store_true", help="tokens by component, kind, tool and agent"
    )
    tokens.add_argument("--history", action="store_true", help="context size at each API call")
    tokens.add_argument("--json", action="store_true", help="one JSON object on stdout")
    tokens.add_argument("--record", action="store_true", help="store the session and its events")
    tokens.add_argument(
        "--fail-on",
        choices=[lv.value for lv in Level if lv is not Level.NORMAL],
        help="exit 1 when this level is reached (3 when blocked)",
    )
    policy_flags(tokens)


def cmd_tokens(args: argparse.Namespace, tracker: Tracker) -> int:
    """Print the status of a session (``--json``: one object); the ``--fail-on`` code."""
    session = open_source(tracker, args.source, args)
    own = None  # a file's own figure, where recording it adopts a stored compacted copy
    if args.record:
        before = session.status() if session.transcript is not None else None
        if len(session.items) >= PROGRESS_FROM_ITEMS:
            progress(
                f"storing {len(session.items):,} items (one transaction: Ctrl-C takes effect "
                "at its end, and nothing is kept)"
            )
        session.save()
        if before is not None and session.version > 1:
            own = before
    status = session.status()
    history = session.history() if args.history else []
    transcript = session.transcript
    empty = transcript is not None and not transcript.items and not transcript.history_items
    unchanged = _unchanged_source(session, tracker)
    auto = None
    if transcript is not None and transcript.format == "claude-code":
        from ..claude_code.autocompact import autocompact_threshold, claude_code_environ

        auto = autocompact_threshold(status.max_tokens, claude_code_environ())
    if args.json:
        out = status.to_dict()
        if auto is not None:
            out["claude_code_autocompact"] = auto.to_dict(status.used_tokens)
        if empty:
            out["conversation"] = False
        out["session_id"] = session.id if args.record or transcript is None else None
        out["recorded"] = bool(args.record or transcript is None)
        if own is not None and own.used_tokens != status.used_tokens:
            out["source_used_tokens"] = own.used_tokens  # the file's own figure
        if transcript is not None:
            out["source"] = transcript.path
            out["format"] = transcript.format
            out["transcript_session_id"] = transcript.session_id
            out["api_calls"] = len(transcript.calls)
        elif unchanged is not None:
            out["source"] = unchanged
            out["context_version"] = session.version
        if args.history:
            window = session.policy.window
            out["history"] = [
                {
                    "call": p.call,
                    "reported_tokens": p.reported_tokens,
                    "predicted_tokens": p.predicted_tokens,
                    "timestamp": p.timestamp,
                    "after_compaction": p.after_compaction,
                    "used_tokens": p.reported_tokens,
                    "percent": round(100 * p.reported_tokens / window, 2),
                }
                for p in history
            ]
            # The last point is now: the figure every surface shows (the next request's
            # context), which adds the last response and what came since to the last call.
            out["history"].append(
                {
                    "call": None,
                    "now": True,
                    "reported_tokens": None,
                    "predicted_tokens": None,
                    "timestamp": None,
                    "after_compaction": False,
                    "used_tokens": status.used_tokens,
                    "percent": shown_percent(status.percent),
                }
            )
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print(status_line(status, color=color(sys.stdout)))
        notice = warning_block(status, compact_command(args))  # advice that runs as written
        if notice:
            print(notice)
        if auto is not None and not empty:
            print(auto.until(status.used_tokens) + ".")
        if status.unknown_records:
            print(
                f"Note: {status.unknown_records} record(s) of unknown shape were kept but not "
                "understood."
            )
        if empty and transcript is not None:
            what = (
                "record(s), none of them a message (hook output or bookkeeping only)"
                if transcript.format == "claude-code"
                else "message(s), none with any content"
            )
            print(f"Note: {transcript.path} holds no conversation: {transcript.records:,} {what}.")
        elif not status.anchored:
            if status.overhead_estimated:
                print(
                    f"Note: no provider usage since the last compaction: the system prompt "
                    f"and tools ({status.breakdown.unattributed:,}) are estimated from the "
                    f"earlier usage, the rest counted locally ({status.counter})."
                )
            elif (transcript is not None and transcript.calls) or session.version > 1:
                print(
                    f"Note: no provider usage since the last compaction: counted locally "
                    f"({status.counter})."
                )
            else:
                print(
                    f"Note: no provider usage in this source: counted locally ({status.counter})."
                )
        if own is not None and own.used_tokens != status.used_tokens:
            print(
                f"Note: recorded on top of the stored copy, compacted (version "
                f"{session.version}): its figure above; the file's own is "
                f"{own.used_tokens:,}/{own.max_tokens:,} (ctxbudget tokens without --record)."
            )
        if unchanged is not None:
            print(
                f"Note: the stored context, compacted (version {session.version}); its source "
                f"is unchanged: ctxbudget tokens {shlex.quote(unchanged)} shows what it holds."
            )
        if args.breakdown:
            print()
            print(breakdown_table(status))
        if args.history:
            print()
            since = _compacted_since(session)
            print(
                history_chart(
                    history, session.policy, compacted_since=since, now=status.used_tokens
                )
            )
        if args.record:
            print(f"Recorded as session {session.id} in {tracker.store.url}")
    return exit_for(status.level, args.fail_on)


def exit_for(level: Level, fail_on: str | None) -> int:
    """The exit code of ``--fail-on``: 1 from that level on, 3 when blocked."""
    if fail_on is None:
        return EXIT_OK
    if level is Level.BLOCKED:
        return EXIT_BLOCKED
    return EXIT_FAIL_ON if level.rank >= Level(fail_on).rank else EXIT_OK


def _unchanged_source(session: Session, tracker: Tracker) -> str | None:
    """For a stored session compacted (or restored) since it was read: the file it was
    read from, when it is still there. A compaction changes the stored copy, never the
    file (nor Claude Code's running session, whose transcript it is), so the two show
    different figures: the note names the file's."""
    if session.transcript is not None or session.version <= 1:
        return None
    # a version a compaction (or pruning) made: recording a file again can make one too
    # (after Claude Code's own compaction), and that one is the file's own context
    made = session.events(types=[EventType.COMPACTED, EventType.PRUNED])
    if session.version not in {e.data.get("version_to") for e in made}:
        return None
    from pathlib import Path

    source = tracker.store.get_session(session.id).source
    return source if source and Path(source).is_file() else None


def _compacted_since(session: Session) -> bool:
    """Whether ctxbudget compacted the stored session after its last recorded call (a
    compaction shows on the next call's point; until then it is marked at the end)."""
    if session.transcript is not None:
        return False
    kinds = [EventType.USAGE_RECORDED, EventType.COMPACTED]
    events = session.events(types=kinds)
    return bool(events) and events[-1].type == EventType.COMPACTED
