"""Scrubbing a SQLite store: redact the secrets it already holds, index included.

Stores written before redaction existed (or with it turned off) hold secrets in the
``items`` rows (text and raw block), in the full-text index built from them, and in
event data. ``scrub`` rewrites those rows with ``ctxbudget.redact`` (token counts
unchanged, each item's hash recomputed from its new text), then rebuilds the whole
FTS5 index from the rows, so no old index segment keeps a secret's words. Event rows
are append-only (a trigger refuses updates): the trigger is dropped and recreated
from its own stored SQL inside the same transaction. The caller runs it in a write
transaction with ``secure_delete`` on, so the freed space is zeroed too.
"""

from __future__ import annotations

import json
import sqlite3

from ..model import content_hash
from ..redact import Redactor
from ._sqlite_schema import from_db, has_full_text, to_db
from .base import ScrubReport

_APPEND_ONLY = "events_append_only"


def scrub(conn: sqlite3.Connection, *, dry_run: bool) -> ScrubReport:
    """Redact (or, ``dry_run``, count) the secrets of every item and event."""
    redactor = Redactor()
    report = ScrubReport(dry_run=dry_run)
    item_updates: list[tuple[object, object, object, int]] = []
    for rid, stored_text, stored_raw in conn.execute("SELECT rid, text, raw FROM items"):
        report.items += 1
        text = from_db(stored_text)
        raw = from_db(stored_raw)
        new_text = redactor.text(text)
        new_raw = raw
        if raw is not None:
            value = json.loads(raw)
            redacted = redactor.data(value)
            if redacted is not value:
                new_raw = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
        if new_text is not text or new_raw is not raw:
            report.items_redacted += 1
            item_updates.append((to_db(new_text), content_hash(new_text), to_db(new_raw), rid))
    event_updates: list[tuple[object, int]] = []
    for event_id, stored_data in conn.execute("SELECT id, data FROM events"):
        report.events += 1
        value = json.loads(from_db(stored_data))
        redacted = redactor.data(value)
        if redacted is not value:
            report.events_redacted += 1
            encoded = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
            event_updates.append((to_db(encoded), event_id))
    report.secrets = dict(sorted(redactor.counts.items()))
    if dry_run:
        return report
    conn.executemany("UPDATE items SET text = ?, hash = ?, raw = ? WHERE rid = ?", item_updates)
    if event_updates:
        found = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (_APPEND_ONLY,)
        ).fetchone()
        if found is not None:
            conn.execute(f"DROP TRIGGER {_APPEND_ONLY}")
        conn.executemany("UPDATE events SET data = ? WHERE id = ?", event_updates)
        if found is not None:
            conn.execute(found[0])
    if has_full_text(conn):
        # From the rows, whole: "delete" entries would leave the old words in old segments.
        conn.execute("INSERT INTO items_fts (items_fts) VALUES ('rebuild')")
    return report
