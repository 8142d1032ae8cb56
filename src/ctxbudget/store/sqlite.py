"""The ``sqlite://`` store: one file, safe for many threads and processes.

URLs follow SQLAlchemy: ``sqlite:///relative/path.db`` (relative to the current
directory), ``sqlite:////absolute/path.db``, ``sqlite:///~/ctxbudget.db`` and
``sqlite://:memory:``. The file is opened in WAL mode with a busy timeout, and every
write runs in ``BEGIN IMMEDIATE`` so two writers queue instead of failing half-way:
that is what lets hooks of several Claude Code sessions share one file. Within a
process one connection is shared behind a re-entrant lock (a ``:memory:`` database
exists only on its connection). Every ``sqlite3.Error`` leaves as a ``StoreError``
that says what to do. The archive search uses FTS5 when the driver has it (see
``_sqlite_schema``, which holds the schema, its migrations and the search SQL) and a
Python BM25 otherwise. Opening the file, the lock and the transactions are
``_sqlite_connection``'s; where the file is, who may read it and its journal mode
``_sqlite_file``'s; the SQL of budget reservations is ``_sqlite_budgets``'s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..model import Item
from . import _sqlite_budgets as budgets
from . import _sqlite_schema as schema
from ._rows import (
    GROUPED_BY,
    SESSION_COLUMNS,
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
from ._search import query_terms
from ._sqlite_connection import SQLiteConnection, directory_error
from ._sqlite_file import database_path
from ._sqlite_schema import SCHEMA_VERSION, from_db, marks, to_db
from ._sqlite_scrub import scrub
from .base import (
    ItemAggregates,
    ScrubReport,
    Store,
    StoredEvent,
    StoredSession,
    VersionInfo,
)
from .reservations import SETTLE_ON_USAGE, Cap, Reservation

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "database_path"]

_SESSION_SELECT = ", ".join(SESSION_COLUMNS)
_NEWEST_FIRST = "updated_at DESC, created_at DESC, id"
# Stays under SQLITE_MAX_VARIABLE_NUMBER of old builds (999).
_CHUNK = 500


def _session(row: tuple[Any, ...]) -> StoredSession:
    return session_from_row(tuple(from_db(value) for value in row))


class SQLiteStore(Store):
    """A store in one SQLite file (WAL, busy timeout, ``BEGIN IMMEDIATE`` writes).

    ``full_text=False`` never uses FTS5, even where the driver has it: the archive is
    searched by the Python scorer (what happens anyway on a driver without FTS5).
    ``self.full_text`` says which one this store uses.

    Reservations are stamped and judged expired by the database's clock, not by the
    clock of the process asking: one whose clock runs ahead would expire the others'
    live reservations, one behind would write its own already expired. A ``clock``
    given (a test's ``FakeClock``) is used for them too.
    """

    scheme = "sqlite"

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] | None = None,
        busy_timeout_ms: int = 5000,
        full_text: bool = True,
        create: bool = True,
    ) -> None:
        self.path = database_path(url)
        memory = self.path == ":memory:"
        super().__init__("sqlite://:memory:" if memory else f"sqlite:///{self.path}", clock=clock)
        self.busy_timeout_ms = busy_timeout_ms
        self._database_clock = clock is None
        # create=False on a file that does not exist: read as an empty store, create
        # nothing (no directory, no file), refuse writes (see ``transaction``).
        self.absent = not memory and not create and not Path(self.path).exists()
        self._db = SQLiteConnection(
            self.url,
            self.path,
            busy_timeout_ms=busy_timeout_ms,
            full_text=full_text,
            absent=self.absent,
        )
        self.journal_mode = self._db.journal_mode
        self.full_text = self._db.full_text
        self._refuse_writes = self.absent  # set once the (in-memory) schema is in place

    @classmethod
    def exists(cls, url: str) -> bool:
        """Whether the store ``url`` names is there to read (``:memory:`` always is)."""
        path = database_path(url)
        if path != ":memory:" and Path(path).is_dir():
            raise directory_error(url, Path(path))
        return path == ":memory:" or Path(path).is_file()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._refuse_writes:
            raise StoreError(
                f"the store {self.url} does not exist and was opened only to read: "
                "nothing was written"
            )
        with self._db.transaction():
            yield

    # -- sessions -------------------------------------------------------------------

    def create_session(self, session: StoredSession) -> None:
        row = tuple(to_db(value) for value in session_to_row(session))
        with self._db.guard("creating a session") as conn, self.transaction():
            try:
                conn.execute(f"INSERT INTO sessions ({_SESSION_SELECT}) VALUES ({marks(9)})", row)
            except sqlite3.IntegrityError as exc:
                raise StoreError(f'a session "{session.id}" already exists in {self.url}') from exc

    def get_session(self, session_id: str) -> StoredSession:
        with self._db.guard("reading a session") as conn:
            row = conn.execute(
                f"SELECT {_SESSION_SELECT} FROM sessions WHERE id = ?", (to_db(session_id),)
            ).fetchone()
        if row is None:
            raise self.not_found(session_id)
        return _session(row)

    def _sessions(
        self, where: str, params: tuple[Any, ...], limit: int | None
    ) -> list[StoredSession]:
        sql = f"SELECT {_SESSION_SELECT} FROM sessions {where} ORDER BY {_NEWEST_FIRST}"
        if limit is not None:
            sql += f" LIMIT {max(int(limit), 0)}"
        with self._db.guard("listing sessions") as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_session(row) for row in rows]

    def find_sessions(self, prefix: str) -> list[StoredSession]:
        # substr, not LIKE: LIKE ignores ASCII case and treats _ and % as wildcards.
        value = to_db(prefix)
        return self._sessions("WHERE substr(id, 1, length(?)) = ?", (value, value), None)

    def list_sessions(self, limit: int | None = 50) -> list[StoredSession]:
        return self._sessions("", (), limit)

    def update_session(self, session: StoredSession) -> None:
        sid, *values = (to_db(value) for value in session_to_row(session))
        with self._db.guard("updating a session") as conn, self.transaction():
            changed = conn.execute(
                "UPDATE sessions SET name = ?, model = ?, source = ?, policy = ?, created_at = ?,"
                " updated_at = ?, context_version = ?, meta = ? WHERE id = ?",
                (*values, sid),
            ).rowcount
            if changed:  # the figures a grant is decided on may have moved (``reserve``)
                budgets.figures_changed(conn, session.id)
        if changed == 0:
            raise self.not_found(session.id)

    def delete_session(self, session_id: str) -> None:
        sid = to_db(session_id)
        with self._db.guard("deleting a session") as conn, self.transaction():
            # Children first, explicitly: correct even where foreign keys are off.
            conn.execute("DELETE FROM items WHERE session_id = ?", (sid,))
            conn.execute("DELETE FROM events WHERE session_id = ?", (sid,))
            conn.execute("DELETE FROM reservations WHERE session_id = ?", (sid,))
            conn.execute("DELETE FROM agent_budgets WHERE session_id = ?", (sid,))
            conn.execute("DELETE FROM budget_revisions WHERE session_id = ?", (sid,))
            if conn.execute("DELETE FROM sessions WHERE id = ?", (sid,)).rowcount == 0:
                raise self.not_found(session_id)

    def _touch(self, conn: sqlite3.Connection, session_id: str, now: float) -> bool:
        """Move ``updated_at`` forward; False when there is no such session."""
        sql = "UPDATE sessions SET updated_at = max(updated_at, ?) WHERE id = ?"
        return conn.execute(sql, (now, to_db(session_id))).rowcount > 0

    def _exists(self, conn: sqlite3.Connection, session_id: str) -> bool:
        sql = "SELECT 1 FROM sessions WHERE id = ?"
        return conn.execute(sql, (to_db(session_id),)).fetchone() is not None

    # -- items ----------------------------------------------------------------------

    def append_items(
        self, session_id: str, items: list[Item], version: int | None = None
    ) -> list[Item]:
        sid = to_db(session_id)
        ids = [item.id if item.id is not None else new_item_id() for item in items]
        with self._db.guard("appending items") as conn, self.transaction():
            found = conn.execute(
                "SELECT context_version FROM sessions WHERE id = ?", (sid,)
            ).fetchone()
            if found is None:
                raise self.not_found(session_id)
            version = found[0] if version is None else int(version)
            last = conn.execute(
                "SELECT max(seq) FROM items WHERE session_id = ?", (sid,)
            ).fetchone()[0]
            first = 0 if last is None else last + 1
            now = self.clock()
            rows = [
                (
                    *map(
                        to_db,
                        item_to_row(
                            self.redacted_item(item), session_id, first + n, version, item_id
                        ),
                    ),
                    now,
                )
                for n, (item, item_id) in enumerate(zip(items, ids, strict=True))
            ]
            try:
                conn.executemany(schema.ITEM_INSERT, rows)
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"an item id is already used in session {session_id} (version {version}): "
                    f"ids are unique within a version ({exc})"
                ) from exc
            self._touch(conn, session_id, now)
        for item, item_id in zip(items, ids, strict=True):
            item.id = item_id
        return items

    def load_items(self, session_id: str, version: int | None = None) -> list[Item]:
        sid = to_db(session_id)
        with self._db.guard("loading items") as conn:
            if version is None:
                where, params = f"version = {schema.CURRENT_VERSION}", (sid, sid)
            else:
                where, params = "version = ?", (sid, int(version))
            rows = conn.execute(
                f"SELECT {schema.ITEM_SELECT} FROM items"
                f" WHERE session_id = ? AND {where} ORDER BY seq",
                params,
            ).fetchall()
            if not rows and not self._exists(conn, session_id):
                raise self.not_found(session_id)
        return [item_from_row(tuple(from_db(value) for value in row)) for row in rows]

    def item_aggregates(self, session_id: str, version: int | None = None) -> ItemAggregates:
        sid = to_db(session_id)
        params = (sid, sid) if version is None else (sid, int(version))
        with self._db.guard("summing items") as conn:
            statement = schema.AGGREGATES_CURRENT if version is None else schema.AGGREGATES_AT
            rows = conn.execute(statement, params).fetchall()
            count, tokens, counted = rows[0][2:]
            if count == 0 and not self._exists(conn, session_id):
                raise self.not_found(session_id)
        groups: dict[str, dict[str, int]] = {column: {} for column in GROUPED_BY}
        for column, value, group_tokens, _, _ in rows[1:]:
            groups[column][from_db(value)] = group_tokens
        return make_aggregates(count, tokens, count - counted, groups)

    # -- context versions and the archive -------------------------------------------------

    def _current_version(self, conn: sqlite3.Connection, session_id: str) -> int:
        found = conn.execute(
            "SELECT context_version FROM sessions WHERE id = ?", (to_db(session_id),)
        ).fetchone()
        if found is None:
            raise self.not_found(session_id)
        return int(found[0])

    def versions(self, session_id: str) -> list[VersionInfo]:
        with self._db.guard("listing context versions") as conn:
            current = self._current_version(conn, session_id)
            rows = conn.execute(schema.VERSIONS, (to_db(session_id),)).fetchall()
        found = {row[0]: VersionInfo(*row) for row in rows}
        found.setdefault(current, VersionInfo(current, 0, 0, None))
        return [found[version] for version in sorted(found)]

    def search_archive(
        self,
        session_id: str,
        query: str,
        *,
        exclude_version: int | None = None,
        limit: int = 50,
    ) -> list[tuple[Item, float]]:
        terms = query_terms(query)
        sid = to_db(session_id)
        exclude = None if exclude_version is None else int(exclude_version)
        with self._db.guard("searching the archive") as conn:
            self._current_version(conn, session_id)
            if not terms or limit <= 0:
                return []
            search = schema.search_fts if self.full_text else schema.search_python
            hits = search(conn, sid, terms, exclude, int(limit))
        return [(item_from_row(row), score) for row, score in hits]

    # -- events ---------------------------------------------------------------------

    def append_event(self, session_id: str, type: str, data: dict[str, Any]) -> StoredEvent:
        encoded = dump_json(self.redacted_data(data), f"data of event {type!r}")
        with self._db.guard("appending an event") as conn, self.transaction():
            now = self.clock()
            if not self._touch(conn, session_id, now):
                raise self.not_found(session_id)
            cursor = conn.execute(
                "INSERT INTO events (session_id, type, at, data) VALUES (?, ?, ?, ?)",
                (to_db(session_id), to_db(type), now, to_db(encoded)),
            )
        assert cursor.lastrowid is not None
        return StoredEvent(cursor.lastrowid, session_id, type, now, load_json(encoded))

    def events(
        self,
        session_id: str,
        types: Iterable[str] | None = None,
        since_id: int = 0,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        sql, params = schema.events_query(to_db(session_id), event_types(types), since_id, limit)
        with self._db.guard("reading events") as conn:
            rows = conn.execute(sql, params).fetchall()
            if not rows and not self._exists(conn, session_id):
                raise self.not_found(session_id)
        return [
            StoredEvent(event_id, session_id, from_db(event_type), at, load_json(from_db(data)))
            for event_id, event_type, at, data in rows
        ]

    # -- token-count cache ------------------------------------------------------------

    def token_cache_get(self, counter: str, hashes: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        with self._db.guard("reading cached token counts") as conn:
            unique = list(dict.fromkeys(hashes))
            for chunk in (unique[i : i + _CHUNK] for i in range(0, len(unique), _CHUNK)):
                rows = conn.execute(
                    f"SELECT hash, tokens FROM token_cache WHERE counter = ?"
                    f" AND hash IN ({marks(len(chunk))})",
                    (counter, *chunk),
                )
                found.update(rows.fetchall())
        return found

    def token_cache_put(self, counter: str, counts: dict[str, int]) -> None:
        if not counts or self.absent:  # a cache: nothing is lost by not keeping it
            return
        rows = [(counter, text_hash, int(tokens)) for text_hash, tokens in counts.items()]
        with self._db.guard("caching token counts") as conn, self.transaction():
            conn.executemany(
                "INSERT INTO token_cache (counter, hash, tokens) VALUES (?, ?, ?)"
                " ON CONFLICT (counter, hash) DO UPDATE SET tokens = excluded.tokens",
                rows,
            )

    # -- budget reservations and agent budgets (their SQL: _sqlite_budgets) --------------

    def _budget_now(self, conn: sqlite3.Connection) -> float:
        """The time of the budget tables: the database's clock, or the one given."""
        return budgets.database_now(conn) if self._database_clock else self.clock()

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
        with self._db.guard("reserving budget tokens") as conn, self.transaction():
            return budgets.reserve(
                conn,
                session_id,
                scope,
                key,
                tokens,
                caps,
                now=self._budget_now(conn),
                ttl=ttl,
                settle=settle,
                at_revision=revision,
            )

    def budget_revision(self, session_id: str) -> int:
        with self._db.guard("reading the budget revision") as conn:
            return budgets.revision(conn, session_id)

    def reservations(
        self, session_id: str, scope: str | None = None, *, live: bool = True
    ) -> list[Reservation]:
        with self._db.guard("reading reservations") as conn:
            now = self._budget_now(conn)
            return budgets.reservations(conn, session_id, scope, live=live, now=now)

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
        with self._db.guard("settling reservations") as conn, self.transaction():
            return budgets.settle(
                conn,
                session_id,
                state,
                now=self._budget_now(conn),
                key=key,
                scope=scope,
                settle=settle,
                tokens=tokens,
                oldest=oldest,
            )

    def set_agent_budget(self, session_id: str, agent: str, tokens: int) -> None:
        with self._db.guard("storing an agent budget") as conn, self.transaction():
            now = self._budget_now(conn)
            budgets.set_agent_budget(conn, session_id, agent, tokens, now)

    def agent_budgets(self, session_id: str) -> dict[str, int]:
        with self._db.guard("reading agent budgets") as conn:
            return budgets.agent_budgets(conn, session_id)

    # -- secrets --------------------------------------------------------------------

    def scrub_secrets(self, *, dry_run: bool = False) -> ScrubReport:
        with self._db.guard("scrubbing secrets") as conn:
            if dry_run:
                return scrub(conn, dry_run=True)
            # zero what the rewritten rows and the old index leave behind in the file
            secure = conn.execute("PRAGMA secure_delete").fetchone()[0]
            conn.execute("PRAGMA secure_delete = ON")
            try:
                with self.transaction():
                    report = scrub(conn, dry_run=False)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.execute(f"PRAGMA secure_delete = {int(secure)}")
        return report

    def close(self) -> None:
        self._db.close()
