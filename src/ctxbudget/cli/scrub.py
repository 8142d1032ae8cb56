"""``ctxbudget scrub``: redact the secrets a store already holds.

New writes are redacted as they are stored (``ctxbudget.redact``); this command is
for what was stored before, or with ``CTXBUDGET_REDACT=off``. It rewrites item texts,
raw blocks and event data in place (token counts unchanged), rebuilds the full-text
index, and says how many secrets of each kind it replaced. ``--dry-run`` only counts.

Exit codes: 0 done (or nothing to scrub), 2 bad input or a store error (nothing
changed: the rewrite is one transaction).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from .common import EXIT_OK

if TYPE_CHECKING:
    from ..store import ScrubReport
    from ..tracker import Tracker

__all__ = ["cmd_scrub", "register"]


def register(commands: Any) -> None:
    """Add ``scrub`` to the ``ctxbudget`` subcommands."""
    scrub = commands.add_parser(
        "scrub",
        help="redact the secrets a store already holds (API keys, tokens, passwords)",
        description="Redact well-known secret shapes (API keys, tokens, passwords in "
        "env-style assignments, private keys) in the items, the full-text index and the "
        "events a store already holds. New writes are redacted anyway, unless "
        "CTXBUDGET_REDACT=off. A store that does not exist is not created.",
    )
    scrub.add_argument("--dry-run", action="store_true", help="count, change nothing")
    scrub.add_argument("--json", action="store_true", help="the counts as JSON on stdout")


def cmd_scrub(args: argparse.Namespace, tracker: Tracker) -> int:
    store = tracker.store
    if getattr(store, "absent", False):  # the default store, never written: nothing there
        from ..store import ScrubReport

        report = ScrubReport(dry_run=args.dry_run)
    else:
        report = store.scrub_secrets(dry_run=args.dry_run)
    if args.json:
        print(json.dumps({"store": store.url, **report.to_dict()}))
        return EXIT_OK
    print(_describe(report, store.url))
    return EXIT_OK


def _describe(report: ScrubReport, url: str) -> str:
    found = sum(report.secrets.values())
    kinds = ", ".join(f"{count:,} {kind}" for kind, count in report.secrets.items())
    verb = "would redact" if report.dry_run else "redacted"
    if not found:
        return f"{url}: no secret found in {report.items:,} items and {report.events:,} events"
    return (
        f"{url}: {verb} {found:,} secrets ({kinds}) in {report.items_redacted:,} of "
        f"{report.items:,} items and {report.events_redacted:,} of {report.events:,} events"
        + ("" if report.dry_run else "; full-text index rebuilt")
    )
