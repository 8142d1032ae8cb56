"""Scrubbing a SQL store: redact the secrets it already holds, for every SQL backend.

Stores written before redaction existed (or with it turned off) hold secrets in the
``items`` rows (text and raw block) and in event data. ``scrub`` rewrites those rows
with ``ctxbudget.redact`` (token counts unchanged, each item's hash recomputed from
its new text). Event rows are append-only (the database refuses updates): the
backend's ``events_writable`` lets the rewrite through inside the same transaction
and puts the refusal back. What a backend derives from the rows (SQLite's full-text
index) it rebuilds itself afterwards; the caller runs it all in one write
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager

from ..model import content_hash
from ..redact import Redactor
from ._sql import Database
from .base import ScrubReport

__all__ = ["scrub"]


def scrub(
    db: Database,
    *,
    dry_run: bool,
    events_writable: Callable[[], AbstractContextManager[None]],
) -> ScrubReport:
    """Redact (or, ``dry_run``, count) the secrets of every item and event."""
    redactor = Redactor()
    report = ScrubReport(dry_run=dry_run)
    item_updates: list[tuple[object, object, object, int]] = []
    for rid, stored_text, stored_raw in db.execute("SELECT rid, text, raw FROM items").fetchall():
        report.items += 1
        text = db.from_db(stored_text)
        raw = db.from_db(stored_raw)
        new_text = redactor.text(text)
        new_raw = raw
        if raw is not None:
            value = json.loads(raw)
            redacted = redactor.data(value)
            if redacted is not value:
                new_raw = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
        if new_text is not text or new_raw is not raw:
            report.items_redacted += 1
            item_updates.append(
                (db.to_db(new_text), content_hash(new_text), db.to_db(new_raw), rid)
            )
    event_updates: list[tuple[object, int]] = []
    for event_id, stored_data in db.execute("SELECT id, data FROM events").fetchall():
        report.events += 1
        value = json.loads(db.from_db(stored_data))
        redacted = redactor.data(value)
        if redacted is not value:
            report.events_redacted += 1
            encoded = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
            event_updates.append((db.to_db(encoded), event_id))
    report.secrets = dict(sorted(redactor.counts.items()))
    if dry_run:
        return report
    if item_updates:
        db.executemany("UPDATE items SET text = ?, hash = ?, raw = ? WHERE rid = ?", item_updates)
    if event_updates:
        with events_writable():
            db.executemany("UPDATE events SET data = ? WHERE id = ?", event_updates)
    return report
