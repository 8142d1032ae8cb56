"""``ctxbudget sessions`` and ``ctxbudget events``: the stored sessions and their ledgers."""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from ..model import EventType
from .common import EXIT_OK, UsageError

if TYPE_CHECKING:
    from ..tracker import Tracker


def register_sessions(commands: Any) -> None:
    """Add ``sessions`` to the ``ctxbudget`` subcommands."""
    sessions = commands.add_parser(
        "sessions",
        help="list stored sessions",
        description="List the sessions in the store, newest first. A read: a store that "
        "does not exist is not created (--store URL naming none is an error).",
    )
    sessions.add_argument("--json", action="store_true", help="a JSON list on stdout")
    sessions.add_argument("--limit", type=int, default=20, help="at most this many (20)")


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
    """List the stored sessions, newest first."""
    if args.limit <= 0:
        raise UsageError(f"--limit must be 1 or more (got {args.limit})")
    rows = tracker.sessions(limit=args.limit)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": s.id,
                        "name": s.name,
                        "model": s.model,
                        "source": s.source,
                        "updated_at": s.updated_at,
                    }
                    for s in rows
                ],
                indent=2,
            )
        )
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
    for e in events:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
        data = ", ".join(f"{k}={v}" for k, v in e.data.items() if not isinstance(v, dict | list))
        print(f"{e.id:>6}  {at}  {e.type:<18}  {data[:110]}")
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
