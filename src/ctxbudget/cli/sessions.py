"""``ctxbudget sessions`` and ``ctxbudget events``: the sessions (Claude Code's on this
machine and the stored ones) and the stored sessions' ledgers."""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from ..model import EventType
from ..render import pct
from .common import EXIT_OK, UsageError

if TYPE_CHECKING:
    from ..tracker import Tracker


def register_sessions(commands: Any) -> None:
    """Add ``sessions`` to the ``ctxbudget`` subcommands."""
    sessions = commands.add_parser(
        "sessions",
        help="list Claude Code sessions (with their figures) and stored sessions",
        description="List, newest first, the Claude Code sessions on this machine (the "
        "transcripts under $CLAUDE_CONFIG_DIR/projects, else ~/.claude/projects) with "
        "their figures (tokens used/window, as ctxbudget tokens prints them), then the "
        "sessions in the store. A read: a store that does not exist is not created "
        "(--store URL naming none is an error).",
    )
    sessions.add_argument(
        "--json",
        action="store_true",
        help='a JSON list on stdout (each entry\'s "kind": "claude-code" or "stored")',
    )
    sessions.add_argument("--limit", type=int, default=20, help="at most this many of each (20)")
    only = sessions.add_mutually_exclusive_group()
    only.add_argument("--claude-code", action="store_true", help="only Claude Code sessions")
    only.add_argument("--stored", action="store_true", help="only stored sessions")


def register_events(commands: Any) -> None:
    """Add ``events`` to the ``ctxbudget`` subcommands."""
    events = commands.add_parser(
        "events",
        help="a stored session's event ledger (audit trail)",
        description="Print a stored session's events, oldest first. Event types: "
        + ", ".join(t.value for t in EventType)
        + ".",
    )
    events.add_argument("session", metavar="SESSION", help="a stored session id or prefix")
    events.add_argument(
        "--type",
        action="append",
        dest="types",
        metavar="TYPE[,TYPE…]",
        help="only these event types (a comma list, or repeat the flag)",
    )
    events.add_argument("--json", action="store_true", help="a JSON list on stdout")


def cmd_sessions(args: argparse.Namespace, tracker: Tracker) -> int:
    """List the Claude Code sessions and the stored sessions, newest first."""
    from ..claude_code.sessions import claude_code_sessions

    if args.limit <= 0:
        raise UsageError(f"--limit must be 1 or more (got {args.limit})")
    transcripts = [] if args.stored else claude_code_sessions(args.limit)
    rows = [] if args.claude_code else tracker.sessions(limit=args.limit)
    if args.json:
        stored = [
            {
                "kind": "stored",
                "id": s.id,
                "name": s.name,
                "model": s.model,
                "source": s.source,
                "updated_at": s.updated_at,
            }
            for s in rows
        ]
        print(json.dumps([t.to_dict() for t in transcripts] + stored, indent=2))
        return EXIT_OK
    if transcripts:
        print("Claude Code sessions (newest first)")
        print(f"{'session':<36}  {'updated':<16}  {'tokens':<26}  project")
        for t in transcripts:
            updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(t.updated_at))
            figure = (
                f"{t.used_tokens:,}/{t.window:,} ({pct(t.percent)})"
                if t.used_tokens is not None and t.percent is not None
                else "no conversation yet"
            )
            print(f"{t.id:<36}  {updated:<16}  {figure:<26}  {t.project}")
        if args.claude_code:
            return EXIT_OK
        print()
    elif args.claude_code:
        print("No Claude Code sessions on this machine (no transcripts under the projects dir).")
        return EXIT_OK
    if not rows:
        print(
            f"No stored sessions in {tracker.store.url} (store one with "
            '"ctxbudget tokens SOURCE --record").'
        )
    if rows:
        print(f"{'session':<36}  {'updated':<16}  {'model':<26}  source")
    for s in rows:
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated_at))
        print(f"{s.id:<36}  {updated:<16}  {s.model or '-':<26}  {s.source or s.name or ''}")
    return EXIT_OK


def cmd_events(args: argparse.Namespace, tracker: Tracker) -> int:
    """Print a stored session's events (``--type`` to filter)."""
    types = event_types(args.types)
    session = tracker.open(args.session)
    events = session.events(types=types)
    if args.json:
        print(
            json.dumps(
                [{"id": e.id, "type": e.type, "at": e.at, "data": e.data} for e in events], indent=2
            )
        )
        return EXIT_OK
    if not events:
        print(
            f"No events{' of type ' + ', '.join(types) if types else ''} for session {session.id}."
        )
    from ..compaction.fact_rules import clip

    for e in events:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
        data = _details(e.data)
        print(f"{e.id:>6}  {at}  {e.type:<18}  {clip(data, 110)}")
    return EXIT_OK


def event_types(given: list[str] | None) -> list[str] | None:
    """The ``--type`` values as a list of known types (comma lists and repeats both
    work); ``UsageError`` naming the valid types for one that is not."""
    if not given:
        return None
    names = [name.strip() for value in given for name in value.split(",") if name.strip()]
    valid = [t.value for t in EventType]
    unknown = [name for name in names if name not in valid]
    if unknown or not names:
        raise UsageError(
            f"unknown event type {', '.join(map(repr, unknown)) or repr(','.join(given))}; "
            f"valid types: {', '.join(valid)}"
        )
    return list(dict.fromkeys(names))


def _details(data: dict[str, Any]) -> str:
    """An event's data on one line: its plain values, and for a change of settings
    (``from`` and ``to``, e.g. ``policy_changed``) what changed."""
    parts = [f"{k}={v}" for k, v in data.items() if not isinstance(v, dict | list)]
    before, after = data.get("from"), data.get("to")
    if isinstance(before, dict) and isinstance(after, dict):
        parts += [
            f"{key}: {before.get(key)} → {after.get(key)}"
            for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)
        ]
    return ", ".join(parts)
