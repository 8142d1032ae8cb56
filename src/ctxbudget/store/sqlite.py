"""The ``sqlite://`` store: one file, safe for many threads and processes.

URLs follow SQLAlchemy: ``sqlite:///relative/path.db`` (relative to the current
directory), ``sqlite:////absolute/path.db``, ``sqlite:///~/ctxbudget.db`` and
``sqlite://:memory:``. The file is opened in WAL mode with a busy timeout, and every
write runs in ``BEGIN IMMEDIATE`` so two writers queue instead of failing half-way:
that is what lets hooks of several Claude Code sessions share one file. Within a
process one connection is shared behind a re-entrant lock (a ``:memory:`` database
exists only on its connection). Every ``sqlite3.Error`` leaves as a ``StoreError``
that says what to do. The reads and writes themselves are the SQL backends' shared
ones (``_sql_store``); what is SQLite's own is here: the file, its absence, the
archive search with FTS5 when the driver has it (``_sqlite_schema``, which holds the
schema, its migrations and the search SQL; a Python BM25 otherwise) and scrubbing
with ``secure_delete``. Opening the file, the lock and the transactions are
``_sqlite_connection``'s; where the file is, who may read it and its journal mode
``_sqlite_file``'s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from . import _sqlite_schema as schema
from ._rows import ItemRow
from ._search import Term
from ._sql import Database
from ._sql_scrub import scrub
from ._sql_store import SQLStore
from ._sqlite_connection import SQLiteConnection, directory_error
from ._sqlite_file import database_path
from ._sqlite_schema import SCHEMA_VERSION
from .base import ScrubReport

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "database_path"]


class SQLiteStore(SQLStore):
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
    database_now_sql = schema.DATABASE_NOW

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
        self._sqlite = SQLiteConnection(
            self.url,
            self.path,
            busy_timeout_ms=busy_timeout_ms,
            full_text=full_text,
            absent=self.absent,
        )
        self._db = self._sqlite
        self.journal_mode = self._sqlite.journal_mode
        self.full_text = self._sqlite.full_text

    @classmethod
    def exists(cls, url: str) -> bool:
        """Whether the store ``url`` names is there to read (``:memory:`` always is)."""
        path = database_path(url)
        if path != ":memory:" and Path(path).is_dir():
            raise directory_error(url, Path(path))
        return path == ":memory:" or Path(path).is_file()

    def _is_integrity_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def _insert_event(self, db: Database, row: tuple[Any, ...]) -> int:
        cursor = db.execute(
            "INSERT INTO events (session_id, type, at, data) VALUES (?, ?, ?, ?)", row
        )
        assert cursor.lastrowid is not None  # type: ignore[attr-defined]
        return int(cursor.lastrowid)  # type: ignore[attr-defined]

    def _search(
        self, db: Database, session: Any, terms: list[Term], exclude: int | None, limit: int
    ) -> list[tuple[ItemRow, float]]:
        if self.full_text:
            return schema.search_fts(db, session, terms, exclude, limit)
        return super()._search(db, session, terms, exclude, limit)

    # -- secrets --------------------------------------------------------------------

    def scrub_secrets(self, *, dry_run: bool = False) -> ScrubReport:
        with self._sqlite.guard("scrubbing secrets") as db:

            def writable() -> AbstractContextManager[None]:
                return _append_only_lifted(db)

            if dry_run:
                return scrub(db, dry_run=True, events_writable=writable)
            # zero what the rewritten rows and the old index leave behind in the file
            secure = db.execute("PRAGMA secure_delete").fetchone()[0]
            db.execute("PRAGMA secure_delete = ON")
            try:
                with self.transaction():
                    report = scrub(
                        db, dry_run=False, events_writable=lambda: _append_only_lifted(db)
                    )
                    if schema.has_full_text(db.conn):
                        # From the rows, whole: "delete" entries would leave the old words
                        # in old segments.
                        db.execute("INSERT INTO items_fts (items_fts) VALUES ('rebuild')")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                db.execute(f"PRAGMA secure_delete = {int(secure)}")
        return report


_APPEND_ONLY = "events_append_only"


@contextmanager
def _append_only_lifted(db: Database) -> Iterator[None]:
    """The events' append-only trigger dropped, and recreated from its own stored SQL,
    inside the caller's transaction."""
    found = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (_APPEND_ONLY,)
    ).fetchone()
    if found is not None:
        db.execute(f"DROP TRIGGER {_APPEND_ONLY}")
    yield
    if found is not None:
        db.execute(found[0])
