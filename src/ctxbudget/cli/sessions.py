"""``ctxbudget sessions`` and ``ctxbudget events``: the stored sessions and their ledgers."""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from .common import EXIT_OK, UsageError

if TYPE_CHECKING:
    from ..tracker import Tracker


def register_sessions(commands: Any) -> None:
    """Add ``sessions`` to the ``ctxbudget`` subcommands."""
    sessions = commands.add_parser("sessions", help="list stored sessions")
    sessions.add_argument("--json", action="store_true")
    sessions.add_argument("--limit", type=int, default=20)


def register_events(commands: Any) -> None:
    """Add ``events`` to the ``ctxbudget`` subcommands."""
    events = commands.add_parser("events", help="a stored session's event ledger (audit trail)")
    events.add_argument("session")
    events.add_argument("--type", action="append", dest="types", help="only these event types")
    events.add_argument("--json", action="store_true")


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
    session = tracker.open(args.session)
    events = session.events(types=args.types)
    if args.json:
        print(
            json.dumps(
                [{"id": e.id, "type": e.type, "at": e.at, "data": e.data} for e in events], indent=2
            )
        )
        return EXIT_OK
    if not events:
        print(
            f"No events{' of type ' + ', '.join(args.types) if args.types else ''} "
            f"for session {session.id}."
        )
    for e in events:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
        data = ", ".join(f"{k}={v}" for k, v in e.data.items() if not isinstance(v, dict | list))
        print(f"{e.id:>6}  {at}  {e.type:<18}  {data[:110]}")
    return EXIT_OK
