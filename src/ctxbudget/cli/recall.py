"""``ctxbudget restore`` and ``recall``: undo a compaction, search what it took out.

Thin like the rest of the CLI: parse, call the session, render. ``cli.app`` registers
these commands with ``register``.
"""

from __future__ import annotations

import argparse
import json
import shlex
from typing import TYPE_CHECKING, Any

from ..level import whole_percent

if TYPE_CHECKING:
    from ..tracker import Tracker
    from .compact import OpenSource


def register(commands: Any) -> None:
    restore = commands.add_parser(
        "restore",
        help="undo a compaction exactly",
        description="Point a stored session back at an earlier "
        "context version (default: the one before the current).",
    )
    restore.add_argument("session", metavar="SESSION")
    restore.add_argument("--to", type=int, metavar="VERSION", help="the version to go back to")
    restore.add_argument(
        "--force", action="store_true", help="restore even if items were added since (dropped)"
    )
    restore.add_argument("--json", action="store_true")

    recall = commands.add_parser(
        "recall",
        help="search what compaction archived",
        description="Full-text search of what compactions took out of a session: "
        "ctxbudget's (archived in the store) and those a transcript records "
        "(Claude Code's /compact keeps what it replaced in the file); prints the "
        "best matches within the token budget.",
    )
    recall.add_argument(
        "session",
        metavar="SESSION",
        help="a stored session id, a transcript file, or a Claude Code session id",
    )
    recall.add_argument("query", metavar="QUERY")
    recall.add_argument(
        "--budget", type=int, default=500, metavar="TOKENS", help="at most this many tokens (500)"
    )
    recall.add_argument("--json", action="store_true")


def cmd_restore(args: argparse.Namespace, tracker: Tracker) -> int:
    session = tracker.open(args.session)
    before, after = session.restore(args.to, force=args.force)
    status = session.status()
    if args.json:
        print(
            json.dumps(
                {
                    "session_id": session.id,
                    "version_from": before,
                    "version_to": after,
                    "context_hash": session.context_hash(),
                    "used_tokens": status.used_tokens,
                    "items": len(session.items),
                },
                indent=2,
            )
        )
        return 0
    print(
        f"Restored session {session.id}: context version {before} → {after} "
        f"({len(session.items)} items, {status.used_tokens:,} tokens, "
        f"{whole_percent(status.percent)}% of {status.max_tokens:,})"
    )
    return 0


def cmd_recall(args: argparse.Namespace, tracker: Tracker, open_source: OpenSource) -> int:
    # a stored id, a transcript, or a Claude Code session by its id: what its
    # compactions took out, ctxbudget's (archived in the store) and Claude Code's own
    # (in its live transcript, read first: ``open_source`` is given ``live_first``)
    session = open_source(tracker, args.session, args)
    items = session.recall(args.query, budget=args.budget)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "role": i.role.value,
                        "kind": i.kind.value,
                        "tool": i.tool,
                        "tokens": i.tokens,
                        "text": i.text,
                    }
                    for i in items
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return 0
    if not items:
        print(f"Nothing in the archive of session {session.id[:12]} matches {args.query!r}.")
        if session.transcript is not None and _stored_compacted(tracker, session.id):
            # the stored copy was compacted, the file was not: what that compaction took
            # out is still in the file's own context, so recall offers nothing from it
            print(
                "Note: the stored copy of this session was compacted; what that took out "
                "is still in this file's context. To search as the stored copy sees it: "
                f"ctxbudget recall {session.id[:12]} {shlex.quote(args.query)}"
            )
        return 0
    total = sum(i.tokens or 0 for i in items)
    print(f"{len(items)} archived item(s), {total:,} tokens (budget {args.budget:,}):")
    for item in items:
        label = f"{item.role.value}/{item.kind.value}" + (f" {item.tool}" if item.tool else "")
        print(f"\n── {label} ({item.tokens or 0:,} tokens)")
        print(item.text)
    return 0


def _stored_compacted(tracker: Tracker, session_id: str) -> bool:
    """Whether the store holds a compacted copy (a version after the first) of the
    session ``session_id``."""
    from ..errors import SessionNotFoundError

    try:
        return tracker.store.get_session(session_id).context_version > 1
    except SessionNotFoundError:
        return False
