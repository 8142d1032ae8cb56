"""The ``sqlite://`` store's connection: opened once per store, shared by its threads.

Opening prepares the file's place (a private directory and file, never a directory
given for a file), connects with a busy timeout, turns on WAL (``_sqlite_file``) and
foreign keys, and brings the schema up to date (``_sqlite_schema``). Threads take the
connection one at a time behind a re-entrant lock (``guard``, which also turns every
``sqlite3.Error`` into a ``StoreError`` that says what to do; a ``:memory:`` database
exists only on its connection). Every write runs in ``BEGIN IMMEDIATE``
(``transaction``; one inside another is a savepoint), so two writers queue instead of
failing half-way. What is read and written is ``SQLiteStore``'s.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..errors import StoreError
from . import _sqlite_schema as schema
from ._sqlite_file import make_private_dirs, make_private_file, set_wal

__all__ = ["SQLiteConnection", "SQLiteDatabase", "directory_error"]


class SQLiteDatabase:
    """The connection as the shared SQL runs on it (``_sql.Database``): sqlite3
    reads SQLite's placeholders as they are; text it cannot encode is stored as
    bytes (``_sqlite_schema.to_db``)."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def to_db(self, value: Any) -> Any:
        return schema.to_db(value)

    def from_db(self, value: Any) -> Any:
        return schema.from_db(value)


class SQLiteConnection:
    """The connection of the store ``url`` to its file ``path`` (or ``:memory:``).

    ``absent``: the file does not exist and is not to be made: an empty in-memory
    database stands in for it (the store refuses writes to it). ``full_text`` says
    whether the archive is searched with FTS5 (asked for, and the driver has it).
    """

    def __init__(
        self, url: str, path: str, *, busy_timeout_ms: int, full_text: bool, absent: bool
    ) -> None:
        self.url = url
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: sqlite3.Connection | None = None
        if path != ":memory:" and not absent:
            self._prepare_path(Path(path))
        conn: sqlite3.Connection | None = None
        try:
            # isolation_level=None: no implicit transactions, we issue BEGIN ourselves;
            # check_same_thread=False: threads share it, one at a time, behind _lock.
            conn = sqlite3.connect(
                ":memory:" if absent else path,
                busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self.journal_mode = set_wal(conn, busy_timeout_ms)
            if self.journal_mode == "wal":
                # Under WAL, NORMAL syncs at checkpoints, not at each commit: a session
                # commits every item it adds, and the fsync of each was most of it. The
                # database cannot be corrupted; a power cut (not a crash of the process)
                # may lose the last commits, as if they had come a moment later.
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self.full_text = full_text and schema.fts5_available(conn)
            self._conn = conn
            self._migrate()
        except BaseException as exc:
            self._conn = None
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self.error(exc, "opening the store") from exc
            raise

    def _prepare_path(self, path: Path) -> None:
        if path.is_dir():
            raise directory_error(self.url, path)
        try:
            make_private_dirs(path.parent)
        except OSError as exc:
            raise StoreError(
                f"cannot open the store {self.url}: cannot create the directory "
                f"{path.parent} ({exc.strerror or exc}); choose another location "
                "with CTXBUDGET_STORE"
            ) from exc
        make_private_file(path)

    def _migrate(self) -> None:
        conn = self._connection()
        # Read first, so opening an up-to-date file never takes the write lock.
        if schema.up_to_date(conn, self.url, full_text=self.full_text):
            return
        with self.transaction():  # another process may have done it meanwhile
            if not schema.up_to_date(conn, self.url, full_text=self.full_text):
                schema.upgrade(conn, schema.schema_version(conn), full_text=self.full_text)

    def error(self, exc: sqlite3.Error, action: str) -> StoreError:
        """The ``StoreError`` of the driver's ``exc`` while doing ``action``: what to do."""
        hint = schema.explain(str(exc), self.path, self.busy_timeout_ms)
        return StoreError(f"{action} failed on {self.url}: {hint}")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self.url} is closed")
        return self._conn

    @contextmanager
    def guard(self, action: str) -> Iterator[SQLiteDatabase]:
        """Hold the lock and turn driver errors into a ``StoreError`` naming ``action``."""
        with self._lock:
            conn = self._connection()
            try:
                yield SQLiteDatabase(conn)
            except sqlite3.Error as exc:
                raise self.error(exc, action) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (a savepoint inside another), rolled back
        when the block raises."""
        with self.guard("a transaction") as db:
            conn = db.conn
            depth = self._depth
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT nested_{depth}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                # sqlite may have rolled back on its own (disk full); and a failing
                # rollback must not hide the error that caused it.
                with suppress(sqlite3.Error):
                    if depth == 0 and conn.in_transaction:
                        conn.execute("ROLLBACK")
                    elif depth > 0 and conn.in_transaction:
                        conn.execute(f"ROLLBACK TO nested_{depth}")
                        conn.execute(f"RELEASE nested_{depth}")
                raise
            self._depth -= 1
            try:
                conn.execute("COMMIT" if depth == 0 else f"RELEASE nested_{depth}")
            except sqlite3.Error:
                if depth == 0 and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


def directory_error(url: str, path: Path) -> StoreError:
    """The error of a store URL that names a directory."""
    return StoreError(
        f"cannot open the store {url}: {path} is a directory; "
        f"name a file instead, e.g. sqlite:///{path / 'ctxbudget.db'}"
    )
