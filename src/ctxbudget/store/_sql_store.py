"""What the SQL backends (``sqlite://``, ``postgresql://``) share: every read and
write of the store contract, written once against ``_sql.Database``.

``SQLStore`` does the work; a backend gives it its connection (``SQLConnection``:
a lock for the threads of a process, errors turned into ``StoreError``, and write
transactions that have the store to themselves, so that a read and the write that
depends on it inside one ``transaction()`` are never interleaved with another
writer's) and says the little that differs between dialects: its driver's
integrity error, its clock, how an event's id comes back, its archive search and its
scrub. The reservations' SQL is ``_sql_budgets``'s, the shared statements ``_sql``'s,
the row encoding ``_rows``'s.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Protocol

from ..errors import StoreError
from ..model import Item
from . import _sql as sql
from . import _sql_budgets as budgets
from ._rows import (
    GROUPED_BY,
    SESSION_COLUMNS,
    ItemRow,
    dump_json,
    event_types,
    item_from_row,
    item_to_row,
    load_json,
    make_aggregates,
    new_item_id,
    session_from_row,
    session_to_row,
)
from ._search import Term, query_terms
from ._sql import Database
from .base import ItemAggregates, Store, StoredEvent, StoredSession, VersionInfo
from .reservations import SETTLE_ON_USAGE, Cap, Reservation

__all__ = ["SQLConnection", "SQLStore"]

_SESSION_SELECT = ", ".join(SESSION_COLUMNS)
_NEWEST_FIRST = "updated_at DESC, created_at DESC, id"
# Stays under SQLITE_MAX_VARIABLE_NUMBER of old builds (999).
_CHUNK = 500


class SQLConnection(Protocol):
    """A SQL backend's connection, shared by the threads of its store."""

    def guard(self, action: str) -> AbstractContextManager[Database]:
        """Hold the connection (one thread at a time) and turn driver errors into a
        ``StoreError`` naming ``action``."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction that has the store to itself; one inside another is a
        savepoint, rolled back alone when its block raises."""
        ...

    def close(self) -> None: ...


class SQLStore(Store):
    """The store contract in SQL. A subclass sets ``_db`` (its ``SQLConnection``) and
    ``_database_clock`` (stamp budget tables by the database's clock, not
    ``self.clock``) and defines what differs between dialects (the abstract
    methods, ``database_now_sql``)."""

    #: A statement giving the database's clock in seconds since the epoch.
    database_now_sql: ClassVar[str]
    #: The store does not exist and was opened only to read (``open_store(create=False)``):
    #: empty tables stand in for it, and every write is refused.
    absent: bool = False
    _db: SQLConnection
    _database_clock: bool

    # -- what a dialect says --------------------------------------------------------

    @abstractmethod
    def _is_integrity_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the driver's refusal of a duplicate key."""

    @abstractmethod
    def _insert_event(self, db: Database, row: tuple[Any, ...]) -> int:
        """Insert the event ``row`` (session_id, type, at, data) and return its id."""

    def _search(
        self, db: Database, session: Any, terms: list[Term], exclude: int | None, limit: int
    ) -> list[tuple[ItemRow, float]]:
        """The archive search; without a full-text index, scored in Python."""
        return sql.search_rows(db, session, terms, exclude, limit)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.absent:
            raise StoreError(
                f"the store {self.url} does not exist and was opened only to read: "
                "nothing was written"
            )
        with self._db.transaction():
            yield

    @contextmanager
    def _writing(self, action: str) -> Iterator[Database]:
        """The connection, in a write transaction of its own (a savepoint when the
        caller's transaction is open), errors named after ``action``."""
        with self._db.guard(action) as db, self.transaction():
            yield db

    # -- sessions -------------------------------------------------------------------

    def _session(self, db: Database, row: tuple[Any, ...]) -> StoredSession:
        return session_from_row(tuple(db.from_db(value) for value in row))

    def create_session(self, session: StoredSession) -> None:
        with self._writing("creating a session") as db:
            row = tuple(db.to_db(value) for value in session_to_row(session))
            try:
                db.execute(f"INSERT INTO sessions ({_SESSION_SELECT}) VALUES ({sql.marks(9)})", row)
            except Exception as exc:
                if self._is_integrity_error(exc):
                    raise StoreError(
                        f'a session "{session.id}" already exists in {self.url}'
                    ) from exc
                raise

    def get_session(self, session_id: str) -> StoredSession:
        with self._db.guard("reading a session") as db:
            row = db.execute(
                f"SELECT {_SESSION_SELECT} FROM sessions WHERE id = ?", (db.to_db(session_id),)
            ).fetchone()
            if row is None:
                raise self.not_found(session_id)
            return self._session(db, row)

    def _sessions(
        self, where: str, params: Callable[[Database], tuple[Any, ...]], limit: int | None
    ) -> list[StoredSession]:
        statement = f"SELECT {_SESSION_SELECT} FROM sessions {where} ORDER BY {_NEWEST_FIRST}"
        if limit is not None:
            statement += f" LIMIT {max(int(limit), 0)}"
        with self._db.guard("listing sessions") as db:
            rows = db.execute(statement, params(db)).fetchall()
            return [self._session(db, row) for row in rows]

    def find_sessions(self, prefix: str) -> list[StoredSession]:
        # substr, not LIKE: LIKE ignores ASCII case and treats _ and % as wildcards.
        def params(db: Database) -> tuple[Any, ...]:
            value = db.to_db(prefix)
            return (value, value)

        return self._sessions("WHERE substr(id, 1, length(?)) = ?", params, None)

    def list_sessions(self, limit: int | None = 50) -> list[StoredSession]:
        return self._sessions("", lambda db: (), limit)

    def update_session(self, session: StoredSession) -> None:
        with self._writing("updating a session") as db:
            sid, *values = (db.to_db(value) for value in session_to_row(session))
            changed = db.execute(
                "UPDATE sessions SET name = ?, model = ?, source = ?, policy = ?, created_at = ?,"
                " updated_at = ?, context_version = ?, meta = ? WHERE id = ?",
                (*values, sid),
            ).rowcount
            if changed:  # the figures a grant is decided on may have moved (``reserve``)
                budgets.figures_changed(db, session.id)
        if changed == 0:
            raise self.not_found(session.id)

    def delete_session(self, session_id: str) -> None:
        with self._writing("deleting a session") as db:
            sid = db.to_db(session_id)
            # Children first, explicitly: correct even where foreign keys are off.
            for table in ("items", "events", "reservations", "agent_budgets", "budget_revisions"):
                db.execute(f"DELETE FROM {table} WHERE session_id = ?", (sid,))
            if db.execute("DELETE FROM sessions WHERE id = ?", (sid,)).rowcount == 0:
                raise self.not_found(session_id)

    def _touch(self, db: Database, session_id: str, now: float) -> bool:
        """Move ``updated_at`` forward; False when there is no such session."""
        statement = (
            "UPDATE sessions SET updated_at = CASE WHEN updated_at < ? THEN ? ELSE updated_at"
            " END WHERE id = ?"
        )
        return db.execute(statement, (now, now, db.to_db(session_id))).rowcount > 0

    def _exists(self, db: Database, session_id: str) -> bool:
        found = db.execute("SELECT 1 FROM sessions WHERE id = ?", (db.to_db(session_id),))
        return found.fetchone() is not None

    def _current_version(self, db: Database, session_id: str) -> int:
        found = db.execute(
            "SELECT context_version FROM sessions WHERE id = ?", (db.to_db(session_id),)
        ).fetchone()
        if found is None:
            raise self.not_found(session_id)
        return int(found[0])

    # -- items ----------------------------------------------------------------------

    def append_items(
        self, session_id: str, items: list[Item], version: int | None = None
    ) -> list[Item]:
        ids = [item.id if item.id is not None else new_item_id() for item in items]
        with self._writing("appending items") as db:
            sid = db.to_db(session_id)
            current = self._current_version(db, session_id)
            version = current if version is None else int(version)
            last = db.execute("SELECT max(seq) FROM items WHERE session_id = ?", (sid,)).fetchone()
            first = 0 if last[0] is None else last[0] + 1
            now = self.clock()
            rows = [
                (
                    *map(
                        db.to_db,
                        item_to_row(
                            self.redacted_item(item), session_id, first + n, version, item_id
                        ),
                    ),
                    now,
                )
                for n, (item, item_id) in enumerate(zip(items, ids, strict=True))
            ]
            try:
                db.executemany(sql.ITEM_INSERT, rows)
            except Exception as exc:
                if self._is_integrity_error(exc):
                    raise StoreError(
                        f"an item id is already used in session {session_id} (version "
                        f"{version}): ids are unique within a version ({exc})"
                    ) from exc
                raise
            self._touch(db, session_id, now)
        for item, item_id in zip(items, ids, strict=True):
            item.id = item_id
        return items

    def load_items(self, session_id: str, version: int | None = None) -> list[Item]:
        with self._db.guard("loading items") as db:
            sid = db.to_db(session_id)
            if version is None:
                where, params = f"version = {sql.CURRENT_VERSION}", (sid, sid)
            else:
                where, params = "version = ?", (sid, int(version))
            rows = db.execute(
                f"SELECT {sql.ITEM_SELECT} FROM items"
                f" WHERE session_id = ? AND {where} ORDER BY seq",
                params,
            ).fetchall()
            if not rows and not self._exists(db, session_id):
                raise self.not_found(session_id)
            return [item_from_row(tuple(db.from_db(value) for value in row)) for row in rows]

    def item_aggregates(self, session_id: str, version: int | None = None) -> ItemAggregates:
        with self._db.guard("summing items") as db:
            sid = db.to_db(session_id)
            params = (sid, sid) if version is None else (sid, int(version))
            statement = sql.AGGREGATES_CURRENT if version is None else sql.AGGREGATES_AT
            rows = db.execute(statement, params).fetchall()
            count, tokens, counted = (int(value) for value in rows[0][2:])
            if count == 0 and not self._exists(db, session_id):
                raise self.not_found(session_id)
            groups: dict[str, dict[str, int]] = {column: {} for column in GROUPED_BY}
            for column, value, group_tokens, _, _ in rows[1:]:
                groups[column][db.from_db(value)] = int(group_tokens)
        return make_aggregates(count, tokens, count - counted, groups)

    # -- context versions and the archive -------------------------------------------------

    def versions(self, session_id: str) -> list[VersionInfo]:
        with self._db.guard("listing context versions") as db:
            current = self._current_version(db, session_id)
            rows = db.execute(sql.VERSIONS, (db.to_db(session_id),)).fetchall()
        found = {row[0]: VersionInfo(int(row[0]), int(row[1]), int(row[2]), row[3]) for row in rows}
        found.setdefault(current, VersionInfo(current, 0, 0, None))
        return [found[version] for version in sorted(found)]

    def items_after(
        self,
        session_id: str,
        item_hash: str,
        *,
        exclude_version: int | None = None,
        limit: int = 2,
    ) -> list[Item]:
        with self._db.guard("reading the archive") as db:
            self._current_version(db, session_id)
            sid = db.to_db(session_id)
            params: tuple[Any, ...] = (sid, db.to_db(item_hash))
            exclude = ""
            if exclude_version is not None:
                exclude, params = " AND a.version <> ?", (*params, int(exclude_version))
            found = db.execute(sql.FIRST_FOLLOWED.format(exclude=exclude), params).fetchone()
            if found is None or limit <= 0:
                return []
            rows = db.execute(sql.ITEMS_AFTER, (sid, found[0], found[1], int(limit))).fetchall()
        return [item_from_row(tuple(db.from_db(value) for value in row)) for row in rows]

    def search_archive(
        self,
        session_id: str,
        query: str,
        *,
        exclude_version: int | None = None,
        limit: int = 50,
    ) -> list[tuple[Item, float]]:
        terms = query_terms(query)
        exclude = None if exclude_version is None else int(exclude_version)
        with self._db.guard("searching the archive") as db:
            self._current_version(db, session_id)
            if not terms or limit <= 0:
                return []
            hits = self._search(db, db.to_db(session_id), terms, exclude, int(limit))
        return [(item_from_row(row), score) for row, score in hits]

    # -- events ---------------------------------------------------------------------

    def append_event(self, session_id: str, type: str, data: dict[str, Any]) -> StoredEvent:
        encoded = dump_json(self.redacted_data(data), f"data of event {type!r}")
        with self._writing("appending an event") as db:
            now = self.clock()
            if not self._touch(db, session_id, now):
                raise self.not_found(session_id)
            row = (db.to_db(session_id), db.to_db(type), now, db.to_db(encoded))
            event_id = self._insert_event(db, row)
        return StoredEvent(event_id, session_id, type, now, load_json(encoded))

    def append_events(
        self, session_id: str, events: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[StoredEvent]:
        encoded = [
            (type, dump_json(self.redacted_data(data), f"data of event {type!r}"))
            for type, data in events
        ]
        if not encoded:
            with self._db.guard("appending events") as db:
                if not self._exists(db, session_id):
                    raise self.not_found(session_id)
            return []
        with self._writing("appending events") as db:
            now = self.clock()
            # the session row once: every update of one row in a transaction leaves a
            # version the next one walks past (quadratic on PostgreSQL)
            if not self._touch(db, session_id, now):
                raise self.not_found(session_id)
            sid = db.to_db(session_id)
            rows = [(sid, db.to_db(type), now, db.to_db(data)) for type, data in encoded]
            ids = self._insert_events(db, rows)
        return [
            StoredEvent(event_id, session_id, type, now, load_json(data))
            for event_id, (type, data) in zip(ids, encoded, strict=True)
        ]

    def _insert_events(self, db: Database, rows: list[tuple[Any, ...]]) -> list[int]:
        """Insert the event ``rows``, in order, and return their ids."""
        return [self._insert_event(db, row) for row in rows]

    def events(
        self,
        session_id: str,
        types: Iterable[str] | None = None,
        since_id: int = 0,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        wanted = event_types(types)
        with self._db.guard("reading events") as db:
            encoded = None if wanted is None else tuple(db.to_db(t) for t in wanted)
            statement, params = sql.events_query(db.to_db(session_id), encoded, since_id, limit)
            rows = db.execute(statement, params).fetchall()
            if not rows and not self._exists(db, session_id):
                raise self.not_found(session_id)
            return [
                StoredEvent(
                    int(event_id),
                    session_id,
                    db.from_db(event_type),
                    at,
                    load_json(db.from_db(data)),
                )
                for event_id, event_type, at, data in rows
            ]

    # -- token-count cache ------------------------------------------------------------

    def token_cache_get(self, counter: str, hashes: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        with self._db.guard("reading cached token counts") as db:
            unique = list(dict.fromkeys(hashes))
            for chunk in (unique[i : i + _CHUNK] for i in range(0, len(unique), _CHUNK)):
                rows = db.execute(
                    f"SELECT hash, tokens FROM token_cache WHERE counter = ?"
                    f" AND hash IN ({sql.marks(len(chunk))})",
                    (db.to_db(counter), *map(db.to_db, chunk)),
                )
                found.update((db.from_db(text_hash), int(n)) for text_hash, n in rows.fetchall())
        return found

    def token_cache_put(self, counter: str, counts: dict[str, int]) -> None:
        if not counts or self.absent:  # a cache: nothing is lost by not keeping it
            return
        with self._writing("caching token counts") as db:
            rows = [
                (db.to_db(counter), db.to_db(text_hash), int(tokens))
                for text_hash, tokens in counts.items()
            ]
            db.executemany(
                "INSERT INTO token_cache (counter, hash, tokens) VALUES (?, ?, ?)"
                " ON CONFLICT (counter, hash) DO UPDATE SET tokens = excluded.tokens",
                rows,
            )

    # -- budget reservations and agent budgets (their SQL: _sql_budgets) ------------------

    def _budget_now(self, db: Database) -> float:
        """The time of the budget tables: the database's clock, or the one given."""
        if self._database_clock:
            return float(db.execute(self.database_now_sql).fetchone()[0])
        return self.clock()

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
        with self._writing("reserving budget tokens") as db:
            return budgets.reserve(
                db,
                session_id,
                scope,
                key,
                tokens,
                caps,
                now=self._budget_now(db),
                ttl=ttl,
                settle=settle,
                at_revision=revision,
            )

    def budget_revision(self, session_id: str) -> int:
        with self._db.guard("reading the budget revision") as db:
            return budgets.revision(db, session_id)

    def reservations(
        self, session_id: str, scope: str | None = None, *, live: bool = True
    ) -> list[Reservation]:
        with self._db.guard("reading reservations") as db:
            now = self._budget_now(db)
            return budgets.reservations(db, session_id, scope, live=live, now=now)

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
        with self._writing("settling reservations") as db:
            return budgets.settle(
                db,
                session_id,
                state,
                now=self._budget_now(db),
                key=key,
                scope=scope,
                settle=settle,
                tokens=tokens,
                oldest=oldest,
            )

    def set_agent_budget(self, session_id: str, agent: str, tokens: int) -> None:
        with self._writing("storing an agent budget") as db:
            budgets.set_agent_budget(db, session_id, agent, tokens, self._budget_now(db))

    def agent_budgets(self, session_id: str) -> dict[str, int]:
        with self._db.guard("reading agent budgets") as db:
            return budgets.agent_budgets(db, session_id)

    def close(self) -> None:
        self._db.close()
