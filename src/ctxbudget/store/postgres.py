"""The ``postgresql://`` store: a schema in a PostgreSQL database, shared by hosts.

``postgresql://user@host:5432/db?schema=NAME`` (``postgres://`` too; every libpq
parameter works; the schema defaults to ``ctxbudget`` and is created on first open).
The driver is psycopg 3, the ``postgres`` extra (``pip install "ctxbudget[postgres]"``),
imported when a store is built. The reads and writes are the SQL backends' shared ones
(``_sql_store``), so this store keeps every promise the SQLite store keeps, with the
same SQL: every write transaction has the schema to itself (an advisory lock, see
``_postgres_connection``), so a budget grant (the reservation's check against its caps
and its insert, the revision it was decided at) is one atomic step for processes on
any number of hosts, and leases are stamped and judged by the server's clock. The
archive search scores in Python with the same words and BM25 as the other backends
(``_sql.search_rows``). Schema, migrations, URL and values: ``_postgres_schema``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import ModuleType
from typing import Any

from . import _postgres_schema as schema
from ._postgres_connection import PostgresConnection, PostgresDatabase, store_exists
from ._sql import Database
from ._sql_scrub import scrub
from ._sql_store import SQLStore
from .base import ScrubReport, import_driver

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

SCHEMA_VERSION = schema.SCHEMA_VERSION


class PostgresStore(SQLStore):
    """A store in one schema of a PostgreSQL database.

    ``lock_timeout_ms``: how long a write waits for the writer before it (then a
    ``StoreError`` says so, as SQLite's busy timeout does). ``connect_timeout``:
    seconds to reach the server. Reservations are stamped and judged expired by the
    server's clock; a ``clock`` given (a test's ``FakeClock``) is used for them too.
    """

    scheme = "postgresql"
    database_now_sql = schema.DATABASE_NOW

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] | None = None,
        lock_timeout_ms: int = 5000,
        connect_timeout: int = 10,
        create: bool = True,
    ) -> None:
        driver = _driver()
        target = schema.target(url)
        super().__init__(target.url, clock=clock)
        self.schema = target.schema
        self._database_clock = clock is None
        self._driver = driver
        self._postgres = PostgresConnection(
            driver,
            target,
            lock_timeout_ms=lock_timeout_ms,
            connect_timeout=connect_timeout,
            create=create,
        )
        self._db = self._postgres
        # create=False on a schema with no store: read as empty, create nothing, refuse
        # writes (``SQLStore.transaction``).
        self.absent = self._postgres.absent

    @classmethod
    def exists(cls, url: str) -> bool:
        """Whether the schema ``url`` names holds a store (a read creates none)."""
        return store_exists(_driver(), schema.target(url), connect_timeout=10)

    def _is_integrity_error(self, exc: BaseException) -> bool:
        return isinstance(exc, self._driver.errors.UniqueViolation)

    def _insert_event(self, db: Database, row: tuple[Any, ...]) -> int:
        statement = (
            "INSERT INTO events (session_id, type, at, data) VALUES (?, ?, ?, ?) RETURNING id"
        )
        return int(db.execute(statement, row).fetchone()[0])

    def _insert_events(self, db: Database, rows: list[tuple[Any, ...]]) -> list[int]:
        """All the rows in one pipelined batch (not a round trip each), ids in order."""
        statement = schema.placeholders(
            "INSERT INTO events (session_id, type, at, data) VALUES (?, ?, ?, ?) RETURNING id"
        )
        ids: list[int] = []
        assert isinstance(db, PostgresDatabase)
        with db.conn.cursor() as cursor:
            cursor.executemany(statement, rows, returning=True)
            while True:
                ids.append(int(cursor.fetchone()[0]))  # type: ignore[index]
                if not cursor.nextset():
                    break
        return ids

    # -- secrets --------------------------------------------------------------------

    def scrub_secrets(self, *, dry_run: bool = False) -> ScrubReport:
        with self._postgres.guard("scrubbing secrets") as db:

            def writable() -> AbstractContextManager[None]:
                return _append_only_lifted(db)

            if dry_run:
                return scrub(db, dry_run=True, events_writable=writable)
            with self.transaction():
                return scrub(db, dry_run=False, events_writable=writable)


def _driver() -> ModuleType:
    return import_driver(
        "psycopg", backend="PostgreSQL", extra="postgres", package="psycopg[binary]"
    )


@contextmanager
def _append_only_lifted(db: PostgresDatabase) -> Iterator[None]:
    """The events' append-only trigger off, and on again, inside the caller's
    transaction (ALTER TABLE is transactional: no other writer ever sees it off)."""
    db.conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
    yield
    db.conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
