"""The rows the ``memory://`` store holds, read by name, and what is computed from the
rows alone: the SQL backends' ``GROUP BY`` (``aggregate``) and scrubbing the secrets
of stored items and events (``scrub``, what ``_sql_scrub`` does in SQL).

Items are the shared row tuples (``_rows.ITEM_COLUMNS`` order); an event is
``EventRecord``. ``MemoryStore`` holds the rows, its lock and the undo of each write;
nothing here locks or keeps state.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model import content_hash
from ..redact import Redactor
from ._rows import GROUPED_BY, ITEM_COLUMNS, ItemRow, dump_json, load_json, make_aggregates
from .base import ItemAggregates, ScrubReport

__all__ = [
    "HASH",
    "ITEM_VERSION",
    "RAW",
    "SEQ",
    "TEXT",
    "TOKENS",
    "EventRecord",
    "aggregate",
    "scrub",
]

# An event as held here: id, type, at, data as JSON text.
EventRecord = tuple[int, str, float, str]
# Positions in the shared item row tuples, so the code reads by name.
SEQ, ITEM_VERSION, TOKENS, HASH, TEXT, RAW = (
    ITEM_COLUMNS.index(c) for c in ("seq", "version", "tokens", "hash", "text", "raw")
)
_GROUPS = tuple((column, ITEM_COLUMNS.index(column)) for column in GROUPED_BY)


def aggregate(rows: Iterable[ItemRow]) -> ItemAggregates:
    """The SQL backends' GROUP BY, in Python."""
    count = tokens = uncounted = 0
    groups: dict[str, dict[str, int]] = {column: {} for column in GROUPED_BY}
    for row in rows:
        count += 1
        row_tokens = row[TOKENS]
        if row_tokens is None:
            uncounted += 1
            row_tokens = 0
        tokens += row_tokens
        for column, index in _GROUPS:
            if row[index] is not None:
                group = groups[column]
                group[row[index]] = group.get(row[index], 0) + row_tokens
    return make_aggregates(count, tokens, uncounted, groups)


def scrub(
    items: Iterable[list[ItemRow]], events: Iterable[list[EventRecord]], *, dry_run: bool
) -> ScrubReport:
    """Redact (or, ``dry_run``, count) the secrets of every item and event, each list
    rewritten in place."""
    redactor = Redactor()
    report = ScrubReport(dry_run=dry_run)
    for rows in items:
        for n, row in enumerate(rows):
            report.items += 1
            raw = load_json(row[RAW])
            text, new_raw = redactor.text(row[TEXT]), redactor.data(raw)
            if text is not row[TEXT] or new_raw is not raw:
                report.items_redacted += 1
                if not dry_run:
                    changed = list(row)
                    changed[TEXT], changed[HASH] = text, content_hash(text)
                    changed[RAW] = None if raw is None else dump_json(new_raw, "raw")
                    rows[n] = tuple(changed)
    for records in events:
        for n, (event_id, kind, at, data) in enumerate(records):
            report.events += 1
            value = load_json(data)
            redacted = redactor.data(value)
            if redacted is not value:
                report.events_redacted += 1
                if not dry_run:
                    records[n] = (event_id, kind, at, dump_json(redacted, "event data"))
    report.secrets = dict(sorted(redactor.counts.items()))
    return report
