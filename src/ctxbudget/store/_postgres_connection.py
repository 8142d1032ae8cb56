"""The ``postgresql://`` store's connection: one per store, shared by its threads.

Opening connects (autocommit: a statement outside a transaction is one on its own),
points ``search_path`` at the store's schema and brings the schema up to date under
the schema's write lock, so processes opening a fresh store at once create it once.
Threads take the connection one at a time behind a re-entrant lock (``guard``, which
also turns every ``psycopg.Error`` into a ``StoreError`` that says what to do, and
connects again when the server dropped the connection between two calls).

A stalled network or server fails instead of hanging (``LIMITS``, each overridden by
the same parameter in the URL, as libpq reads it): libpq's ``connect_timeout``, TCP
keepalives and ``tcp_user_timeout`` end a connection whose peer stopped answering at
the TCP level, and the server's ``statement_timeout`` and
``idle_in_transaction_session_timeout`` end a statement that runs too long and, above
all, a session stalled inside a transaction: the server rolls it back, so the
schema's write lock it held is given up and the other hosts' writers go on.

Every write transaction takes the schema's write lock first (``WRITE_LOCK``, a
transaction-scoped advisory lock, given up at commit or rollback): the writers of a
store queue, on every host, as SQLite's ``BEGIN IMMEDIATE`` makes them queue on one
file. Under READ COMMITTED each statement then sees every write committed before the
lock was granted, so a read and the write that depends on it (a reservation's check
and its insert, a revision compared and moved) are one atomic step. A writer that
waits longer than ``lock_timeout_ms`` gets a ``StoreError`` saying so. Reads outside a
transaction take no lock. A store opened only to read (``create=False``) whose schema
holds none creates nothing: empty temporary tables stand in for it. What is read and
written is ``SQLStore``'s.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from . import _postgres_schema as schema
from ._postgres_schema import Target
from .base import STORE_DEADLINE

if TYPE_CHECKING:
    import psycopg

__all__ = ["LIMITS", "PostgresConnection", "PostgresDatabase"]

#: libpq's connection parameters the store sets unless the URL gives them (or, for
#: connect_timeout, ``$PGCONNECT_TIMEOUT``): a dead peer is noticed within about 20 s
#: of silence (keepalives: 10 s idle, then 3 probes 3 s apart; data unacknowledged
#: for 20 s).
LIMITS: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 20_000,
}
#: The server settings of each session unless the URL gives them (``?statement_timeout=``,
#: ``?idle_in_transaction_session_timeout=``, ms or with a unit). No transaction of the
#: store leaves the server waiting for seconds (recording 20,000 items at once is about
#: 1 s between two statements), so one silent for 10 s is stalled: the server ends it.
SESSION_LIMITS: dict[str, str] = {
    "statement_timeout": "60s",
    "idle_in_transaction_session_timeout": "10s",
}


class PostgresDatabase:
    """The connection as the shared SQL runs on it (``_sql.Database``): SQLite's
    placeholders translated to psycopg's, text escaped where PostgreSQL cannot hold
    it (``_postgres_schema.to_db``)."""

    __slots__ = ("conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(schema.placeholders(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(schema.placeholders(sql), rows)

    def to_db(self, value: Any) -> Any:
        return schema.to_db(value)

    def from_db(self, value: Any) -> Any:
        return schema.from_db(value)


def store_exists(driver: ModuleType, target: Target, *, connect_timeout: int) -> bool:
    """Whether the schema ``target`` names holds a store (``StoreError`` when the
    server cannot say)."""
    query = (
        "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s"
        " AND tablename = 'schema_migrations'"
    )
    try:
        limits = connection_limits(driver, target, connect_timeout)
        with driver.connect(target.conninfo, **limits) as conn:
            return conn.execute(query, (target.schema,)).fetchone() is not None
    except driver.Error as exc:
        hint = schema.explain(exc, target.url, 0)
        raise StoreError(f"opening the store failed on {target.url}: {hint}") from exc


def connection_limits(driver: ModuleType, target: Target, connect_timeout: int) -> dict[str, Any]:
    """The keyword arguments of ``driver.connect`` that bound a stall (``LIMITS``),
    leaving out those the URL (or libpq's environment) sets itself."""
    given = driver.conninfo.conninfo_to_dict(target.conninfo)
    limits: dict[str, Any] = {name: value for name, value in LIMITS.items() if name not in given}
    due = STORE_DEADLINE.get()
    if due is not None:
        # a hook's deadline: the attempt ends a second before it (libpq counts whole
        # seconds, 2 at least), and it beats the URL's own timeout
        left = int(due - time.monotonic()) - 1
        limits["connect_timeout"] = max(2, min(connect_timeout, left))
    elif "connect_timeout" not in given and not os.environ.get("PGCONNECT_TIMEOUT"):
        limits["connect_timeout"] = connect_timeout
    return limits


class PostgresConnection:
    """The connection of the store ``target.url`` to its schema, through the driver
    module ``driver`` (psycopg, imported by the store when it is built).

    ``create=False`` on a schema that holds no store: empty temporary tables stand in
    for it (``absent``; the store refuses writes), and nothing is created."""

    def __init__(
        self,
        driver: ModuleType,
        target: Target,
        *,
        lock_timeout_ms: int,
        connect_timeout: int,
        create: bool = True,
    ) -> None:
        self.driver = driver
        self.target = target
        self.url = target.url
        self.lock_timeout_ms = lock_timeout_ms
        self.connect_timeout = connect_timeout
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        self.absent = False
        try:
            conn = self._connect()
            try:
                version = self._version(conn)
                if not create and version == 0:
                    self._stand_in(conn)
                elif version != schema.SCHEMA_VERSION:
                    self._migrate(conn)
            except BaseException:
                conn.close()
                raise
        except driver.Error as exc:
            raise self.error(exc, "opening the store") from exc
        self._conn = conn

    def _connect(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] = self.driver.connect(
            self.target.conninfo,
            autocommit=True,
            application_name="ctxbudget",
            **connection_limits(self.driver, self.target, self.connect_timeout),
        )
        try:
            sql = self.driver.sql
            settings = {**SESSION_LIMITS, **dict(self.target.settings)}
            statements = [
                sql.SQL("SET search_path TO {}").format(sql.Identifier(self.target.schema)),
                sql.SQL("SET lock_timeout = {}").format(int(self.lock_timeout_ms)),
                *(
                    sql.SQL("SET {} = {}").format(sql.Identifier(name), value)
                    for name, value in settings.items()
                ),
            ]
            conn.execute(sql.SQL("; ").join(statements))  # one round trip
        except BaseException:
            conn.close()
            raise
        return conn

    def _version(self, conn: psycopg.Connection[Any]) -> int:
        """The schema's version (0: none yet); ``StoreError`` if a newer ctxbudget
        wrote it."""
        if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
            return 0
        found = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
        version = int(found.fetchone()[0])  # type: ignore[index]
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"the store {self.url} has schema version {version}, newer than this "
                f"ctxbudget understands ({schema.SCHEMA_VERSION}): upgrade ctxbudget"
            )
        return version

    def _stand_in(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET search_path TO pg_temp")
        with conn.transaction():
            schema.stand_in(conn.execute)
        self.absent = True

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Create the schema, or bring it up to date, once, under its write lock."""
        sql = self.driver.sql
        with conn.transaction():
            conn.execute(schema.WRITE_LOCK, (self.target.schema,))
            # a migration of a big store may run long: the statement timeout is not for it
            conn.execute("SET LOCAL statement_timeout = 0")
            # another process may have done it meanwhile
            exists = "SELECT 1 FROM pg_namespace WHERE nspname = %s"
            if conn.execute(exists, (self.target.schema,)).fetchone() is None:
                quoted = sql.Identifier(self.target.schema)
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(quoted))
            conn.execute(schema.MIGRATIONS_TABLE)
            version = self._version(conn)
            for number, name, migration in schema.MIGRATIONS:
                if number > version:
                    migration(conn.execute)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (number, name),
                    )

    def error(self, exc: Exception, action: str) -> StoreError:
        """The ``StoreError`` of the driver's ``exc`` while doing ``action``: what to do."""
        hint = schema.explain(exc, self.url, self.lock_timeout_ms)
        return StoreError(f"{action} failed on {self.url}: {hint}")

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed or self._conn is None:
            raise StoreError(f"the store {self.url} is closed")
        if self._conn.closed and self._depth == 0 and not self.absent:
            # The server dropped it (a restart, an idle timeout) between two calls:
            # nothing was in flight, so connecting again loses nothing.
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def guard(self, action: str) -> Iterator[PostgresDatabase]:
        """Hold the lock and turn driver errors into a ``StoreError`` naming ``action``."""
        with self._lock:
            try:
                yield PostgresDatabase(self._connection())
            except self.driver.Error as exc:
                raise self.error(exc, action) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction holding the schema's write lock (a savepoint inside
        another), rolled back when the block raises."""
        with self.guard("a transaction") as db:
            conn = db.conn
            with conn.transaction():
                if self._depth == 0:
                    conn.execute(schema.WRITE_LOCK, (self.target.schema,))
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            self._closed = True
            if conn is not None:
                conn.close()
