"""The ``memory://`` store: everything in dicts, gone when the process ends.

For tests, examples and one-shot commands that need no history. It keeps the same
contract as the SQLite store, down to the details: values are JSON-encoded on the
way in (so what cannot be stored fails here too, and a caller who mutates a loaded
object does not change the store), item ids are unique per version, and a failed
transaction leaves nothing behind. Rollback replays an undo log rather than
restoring a snapshot, so a write costs the same in a big session as in a small one.
The archive search scores with the same words and BM25 as SQLite without FTS5
(``_search``), so both give the same hits with the same scores. What is computed from
the rows alone (the sums by group, scrubbing secrets) is ``memory_rows``'s; the budget
reservations are ``memory_budgets``'s.
Each ``open_store("memory://")`` is a new, empty store; nothing is shared.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import StoreError
from ..model import Item
from . import _search
from ._rows import (
    SESSION_COLUMNS,
    UPDATED_AT,
    ItemRow,
    SessionRow,
    dump_json,
    event_types,
    item_from_row,
    item_to_row,
    load_json,
    new_item_id,
    session_from_row,
    session_to_row,
)
from .base import (
    ItemAggregates,
    ScrubReport,
    Store,
    StoredEvent,
    StoredSession,
    VersionInfo,
)
from .memory_budgets import MemoryBudgets
from .memory_rows import HASH, ITEM_VERSION, SEQ, TEXT, TOKENS, EventRecord, aggregate, scrub
from .reservations import SETTLE_ON_USAGE, Cap, Reservation

# Positions in the shared session row tuples, so the code below reads by name.
_CREATED, _VERSION = SESSION_COLUMNS.index("created_at"), SESSION_COLUMNS.index("context_version")


class MemoryStore(Store):
    """A store in process memory, safe to share between threads."""

    scheme = "memory"

    def __init__(self, url: str = "memory://", *, clock: Callable[[], float] | None = None) -> None:
        super().__init__(url, clock=clock)
        # Re-entrant: a transaction holds it while the methods inside take it again.
        self._lock = threading.RLock()
        self._sessions: dict[str, SessionRow] = {}
        self._items: dict[str, list[ItemRow]] = {}
        self._item_ids: dict[tuple[str, int], set[str]] = {}
        # (session, version) -> store-clock time of the version's first item.
        self._version_created: dict[tuple[str, int], float] = {}
        # Word counts of item texts by content hash, for search_archive; derived
        # data, so a rollback need not touch it.
        self._word_counts: dict[str, Counter[str]] = {}
        self._events: dict[str, list[EventRecord]] = {}
        self._token_cache: dict[tuple[str, str], int] = {}
        # the store's clock as it is when asked (a test may set another)
        self._budgets = MemoryBudgets(lambda: self.clock(), self._on_rollback)
        self._last_event_id = 0
        self._undo: list[Callable[[], None]] = []
        self._depth = 0
        self._closed = False

    # -- transactions ---------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            self._check_open()
            mark = len(self._undo)
            self._depth += 1
            try:
                yield
            except BaseException:
                while len(self._undo) > mark:
                    self._undo.pop()()
                raise
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._undo.clear()

    def _on_rollback(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.url} is closed")

    # -- sessions -------------------------------------------------------------------

    def _get_row(self, session_id: str) -> SessionRow:
        row = self._sessions.get(session_id)
        if row is None:
            raise self.not_found(session_id)
        return row

    def create_session(self, session: StoredSession) -> None:
        with self.transaction():
            if session.id in self._sessions:
                raise StoreError(f'a session "{session.id}" already exists in {self.url}')
            self._sessions[session.id] = session_to_row(session)
            self._items[session.id] = []
            self._events[session.id] = []
            self._on_rollback(lambda: self._forget(session.id))

    def _forget(self, session_id: str) -> None:
        self._budgets.reservations.pop(session_id, None)
        self._budgets.agent_budgets.pop(session_id, None)
        self._budgets.revisions.pop(session_id, None)
        self._sessions.pop(session_id, None)
        self._items.pop(session_id, None)
        self._events.pop(session_id, None)
        for key in [key for key in self._item_ids if key[0] == session_id]:
            del self._item_ids[key]
        for key in [key for key in self._version_created if key[0] == session_id]:
            del self._version_created[key]

    def get_session(self, session_id: str) -> StoredSession:
        with self._lock:
            self._check_open()
            return session_from_row(self._get_row(session_id))

    def find_sessions(self, prefix: str) -> list[StoredSession]:
        with self._lock:
            self._check_open()
            found = [row for sid, row in self._sessions.items() if sid.startswith(prefix)]
            return [session_from_row(r) for r in self._newest_first(found)]

    def list_sessions(self, limit: int | None = 50) -> list[StoredSession]:
        with self._lock:
            self._check_open()
            records = self._newest_first(list(self._sessions.values()))
            if limit is not None:
                records = records[: max(limit, 0)]
            return [session_from_row(r) for r in records]

    @staticmethod
    def _newest_first(records: list[SessionRow]) -> list[SessionRow]:
        # Same order as the SQL backends: updated_at, then created_at, newest first.
        records = sorted(records, key=lambda row: row[0])
        return sorted(records, key=lambda row: (row[UPDATED_AT], row[_CREATED]), reverse=True)

    def update_session(self, session: StoredSession) -> None:
        with self.transaction():
            old = self._get_row(session.id)
            self._sessions[session.id] = session_to_row(session)
            self._on_rollback(lambda: self._sessions.__setitem__(session.id, old))
            # the figures a grant is decided on may have moved (``Store.reserve``)
            self._budgets.next_revision(session.id)

    def delete_session(self, session_id: str) -> None:
        with self.transaction():
            row = self._get_row(session_id)
            items = self._items[session_id]
            events = self._events[session_id]
            ids = {key: value for key, value in self._item_ids.items() if key[0] == session_id}
            created = {k: v for k, v in self._version_created.items() if k[0] == session_id}
            reserved = self._budgets.reservations.get(session_id)
            budgets = self._budgets.agent_budgets.get(session_id)
            revision = self._budgets.revisions.get(session_id)
            self._forget(session_id)

            def undo() -> None:
                if reserved is not None:
                    self._budgets.reservations[session_id] = reserved
                if budgets is not None:
                    self._budgets.agent_budgets[session_id] = budgets
                if revision is not None:
                    self._budgets.revisions[session_id] = revision
                self._sessions[session_id] = row
                self._items[session_id] = items
                self._events[session_id] = events
                self._item_ids.update(ids)
                self._version_created.update(created)

            self._on_rollback(undo)

    def _touch(self, session_id: str, now: float) -> None:
        row = self._get_row(session_id)
        if now > row[UPDATED_AT]:
            self._sessions[session_id] = (*row[:UPDATED_AT], now, *row[UPDATED_AT + 1 :])
            self._on_rollback(lambda: self._sessions.__setitem__(session_id, row))

    # -- items ----------------------------------------------------------------------

    def append_items(
        self, session_id: str, items: list[Item], version: int | None = None
    ) -> list[Item]:
        with self.transaction():
            current = self._get_row(session_id)[_VERSION]
            version = current if version is None else int(version)
            rows = self._items[session_id]
            seq = rows[-1][SEQ] + 1 if rows else 0
            key = (session_id, version)
            # The version's id set grows in place and the undo takes the new ids back
            # out: copying it on every append made building a session quadratic.
            stored = self._item_ids.get(key)
            taken = stored if stored is not None else set()
            ids = [item.id if item.id is not None else new_item_id() for item in items]
            new_ids = set(ids)
            duplicates = sorted(taken & new_ids)
            if len(new_ids) < len(ids):
                duplicates += sorted(i for i, n in Counter(ids).items() if n > 1)
            if duplicates:
                raise StoreError(
                    f"item ids {', '.join(duplicates[:5])} are already used in session "
                    f"{session_id} (version {version}); ids are unique within a version"
                )
            now = self.clock()
            new_rows = [
                item_to_row(self.redacted_item(item), session_id, seq + offset, version, item_id)
                for offset, (item, item_id) in enumerate(zip(items, ids, strict=True))
            ]
            before = len(rows)
            rows.extend(new_rows)
            if stored is None:
                self._item_ids[key] = taken
            taken.update(new_ids)
            first_of_version = bool(new_rows) and key not in self._version_created
            if first_of_version:
                self._version_created[key] = now

            def undo() -> None:
                del rows[before:]
                taken.difference_update(new_ids)  # disjoint from taken before: exact
                if stored is None:
                    self._item_ids.pop(key, None)
                if first_of_version:
                    del self._version_created[key]

            self._on_rollback(undo)
            self._touch(session_id, now)
        for item, item_id in zip(items, ids, strict=True):
            item.id = item_id
        return items

    def _rows(self, session_id: str, version: int | None) -> list[ItemRow]:
        current = self._get_row(session_id)[_VERSION]
        version = current if version is None else version
        return [row for row in self._items[session_id] if row[ITEM_VERSION] == version]

    def load_items(self, session_id: str, version: int | None = None) -> list[Item]:
        with self._lock:
            self._check_open()
            return [item_from_row(row) for row in self._rows(session_id, version)]

    def item_aggregates(self, session_id: str, version: int | None = None) -> ItemAggregates:
        with self._lock:
            self._check_open()
            return aggregate(self._rows(session_id, version))

    # -- context versions and the archive -------------------------------------------------

    def versions(self, session_id: str) -> list[VersionInfo]:
        with self._lock:
            self._check_open()
            current = self._get_row(session_id)[_VERSION]
            sums: dict[int, list[int]] = {current: [0, 0]}
            for row in self._items[session_id]:
                counts = sums.setdefault(row[ITEM_VERSION], [0, 0])
                counts[0] += 1
                counts[1] += row[TOKENS] or 0
            return [
                VersionInfo(v, n, t, self._version_created.get((session_id, v)))
                for v, (n, t) in sorted(sums.items())
            ]

    def items_after(
        self,
        session_id: str,
        item_hash: str,
        *,
        exclude_version: int | None = None,
        limit: int = 2,
    ) -> list[Item]:
        with self._lock:
            self._check_open()
            self._get_row(session_id)
            versions: dict[int, list[ItemRow]] = {}
            for row in self._items[session_id]:  # in seq order
                if row[ITEM_VERSION] != exclude_version:
                    versions.setdefault(row[ITEM_VERSION], []).append(row)
            for version in sorted(versions):
                rows = versions[version]
                at = next((n for n, row in enumerate(rows[:-1]) if row[HASH] == item_hash), None)
                if at is not None:
                    return [item_from_row(row) for row in rows[at + 1 : at + 1 + max(0, limit)]]
        return []

    def search_archive(
        self,
        session_id: str,
        query: str,
        *,
        exclude_version: int | None = None,
        limit: int = 50,
    ) -> list[tuple[Item, float]]:
        terms = _search.query_terms(query)
        with self._lock:
            self._check_open()
            self._get_row(session_id)
            rows = self._items[session_id]
            if not terms or limit <= 0:
                return []
            held = {row[HASH] for row in rows if row[ITEM_VERSION] == exclude_version}
            latest: dict[str, ItemRow] = {}
            for row in rows:  # in seq order; the latest version's copy of each text wins
                if row[HASH] in held:
                    continue
                kept = latest.get(row[HASH])
                if kept is None or row[ITEM_VERSION] >= kept[ITEM_VERSION]:
                    latest[row[HASH]] = row
            # Most recent first, so that equal scores list the most recent item first.
            candidates = sorted(
                latest.values(), key=lambda r: (r[ITEM_VERSION], r[SEQ]), reverse=True
            )
            documents = [(row, self._words(row)) for row in candidates]
            hits = _search.rank(terms, documents, limit)
        return [(item_from_row(row), score) for row, score in hits]

    def _words(self, row: ItemRow) -> Counter[str]:
        counts = self._word_counts.get(row[HASH])
        if counts is None:
            counts = self._word_counts[row[HASH]] = _search.word_counts(row[TEXT])
        return counts

    # -- events ---------------------------------------------------------------------

    def append_event(self, session_id: str, type: str, data: dict[str, Any]) -> StoredEvent:
        with self.transaction():
            self._get_row(session_id)
            encoded = dump_json(self.redacted_data(data), f"data of event {type!r}")
            now = self.clock()
            self._last_event_id += 1
            record = (self._last_event_id, type, now, encoded)
            events = self._events[session_id]
            events.append(record)
            self._on_rollback(lambda: events.__delitem__(-1))
            self._touch(session_id, now)
            return StoredEvent(record[0], session_id, type, now, load_json(encoded))

    def append_events(
        self, session_id: str, events: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[StoredEvent]:
        with self.transaction():
            self._get_row(session_id)
            encoded = [
                (type, dump_json(self.redacted_data(data), f"data of event {type!r}"))
                for type, data in events
            ]
            if not encoded:
                return []
            now = self.clock()
            records: list[EventRecord] = []
            for type, data in encoded:
                self._last_event_id += 1
                records.append((self._last_event_id, type, now, data))
            stored = self._events[session_id]
            size = len(stored)
            stored.extend(records)
            self._on_rollback(lambda: stored.__delitem__(slice(size, None)))
            self._touch(session_id, now)
            return [
                StoredEvent(event_id, session_id, type, at, load_json(data))
                for event_id, type, at, data in records
            ]

    def events(
        self,
        session_id: str,
        types: Iterable[str] | None = None,
        since_id: int = 0,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        wanted = event_types(types)
        with self._lock:
            self._check_open()
            self._get_row(session_id)
            found: list[StoredEvent] = []
            for event_id, event_type, at, data in self._events[session_id]:
                if limit is not None and len(found) >= limit:
                    break
                if event_id > since_id and (wanted is None or event_type in wanted):
                    found.append(StoredEvent(event_id, session_id, event_type, at, load_json(data)))
            return found

    # -- token-count cache ------------------------------------------------------------

    def token_cache_get(self, counter: str, hashes: list[str]) -> dict[str, int]:
        with self._lock:
            self._check_open()
            cache = self._token_cache
            return {h: cache[(counter, h)] for h in hashes if (counter, h) in cache}

    def token_cache_put(self, counter: str, counts: dict[str, int]) -> None:
        with self.transaction():
            cache = self._token_cache
            keys = [(counter, text_hash) for text_hash in counts]
            previous = {key: cache[key] for key in keys if key in cache}
            cache.update({(counter, h): int(tokens) for h, tokens in counts.items()})

            def undo() -> None:
                for key in keys:
                    cache.pop(key, None)
                cache.update(previous)

            self._on_rollback(undo)

    # -- budget reservations and agent budgets (memory_budgets) ---------------------------

    def reserve(
        self,
        session_id: str,
        scope: str,
        key: str,
        tokens: int,
        caps: Iterable[Cap] = (),
        *,
        ttl: float,
        settle: str = SETTLE_ON_USAGE,
        revision: int | None = None,
    ) -> Reservation | None:
        with self.transaction():
            return self._budgets.reserve(
                session_id, scope, key, tokens, caps, ttl=ttl, settle=settle, revision=revision
            )

    def budget_revision(self, session_id: str) -> int:
        with self._lock:
            self._check_open()
            return self._budgets.revision(session_id)

    def reservations(
        self, session_id: str, scope: str | None = None, *, live: bool = True
    ) -> list[Reservation]:
        with self._lock:
            self._check_open()
            return self._budgets.listed(session_id, scope, live=live)

    def settle_reservations(
        self,
        session_id: str,
        state: str,
        *,
        key: str | None = None,
        scope: str | None = None,
        settle: str | None = None,
        tokens: int | None = None,
        oldest: bool = False,
    ) -> list[Reservation]:
        with self.transaction():
            return self._budgets.settle(
                session_id, state, key=key, scope=scope, settle=settle, tokens=tokens, oldest=oldest
            )

    def set_agent_budget(self, session_id: str, agent: str, tokens: int) -> None:
        with self.transaction():
            self._budgets.set_agent_budget(session_id, agent, tokens)

    def agent_budgets(self, session_id: str) -> dict[str, int]:
        with self._lock:
            self._check_open()
            return self._budgets.budgets_of(session_id)

    def scrub_secrets(self, *, dry_run: bool = False) -> ScrubReport:
        with self._lock:
            return scrub(self._items.values(), self._events.values(), dry_run=dry_run)

    def close(self) -> None:
        with self._lock:
            self._closed = True
