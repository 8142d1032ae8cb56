"""The SQL side of the SQLite store: schema, migrations, values, queries, errors.

Schema versions (``PRAGMA user_version``):

1. sessions, items (primary key ``(session_id, seq)``), events, token cache.
2. items get ``rid INTEGER PRIMARY KEY`` and ``stored_at`` (store-clock time of the
   write; NULL for rows written by schema 1), and, when the driver has FTS5, the
   external-content index ``items_fts`` kept in sync by triggers. The FTS rowid must
   be an INTEGER PRIMARY KEY: ``VACUUM`` may renumber an implicit rowid, which would
   silently point the index at the wrong items. Migrating from 1 rebuilds the items
   table (same rows, same order) and back-fills the index.

The index is created whenever a store opens the file with FTS5 and finds it missing,
so a file first written without FTS5 gets it later. The budget tables
(``reservations``: the leases of budget grants; ``agent_budgets``: one row per agent;
``budget_revisions``: per session, the count ``Store.budget_revision`` reads) are
created the same way, whenever a store finds them missing: they add to schema 2
without changing it, and a ctxbudget that does not know them leaves them alone.
Without FTS5 the archive search scores in Python (``_sql.search_rows``), with the same
interface. The statements that PostgreSQL runs too are ``_sql``'s.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..errors import StoreError
from ._rows import ITEM_COLUMNS, ItemRow
from ._search import Term
from ._sql import NOT_HELD, Database, marks

SCHEMA_VERSION = 2


def _items_ddl(name: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {name} (
        rid INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL, version INTEGER NOT NULL, id TEXT NOT NULL,
        role TEXT NOT NULL, kind TEXT NOT NULL, component TEXT NOT NULL, layer TEXT NOT NULL,
        agent TEXT NOT NULL, tool TEXT, pair_id TEXT, tokens INTEGER,
        pinned INTEGER NOT NULL, phase TEXT, message_index INTEGER NOT NULL,
        created_at REAL NOT NULL, last_used_at REAL, text TEXT NOT NULL, hash TEXT NOT NULL,
        raw TEXT, stored_at REAL, UNIQUE (session_id, seq))"""


_ITEM_INDEXES = (
    "CREATE INDEX IF NOT EXISTS items_by_version ON items (session_id, version, seq)",
    "CREATE UNIQUE INDEX IF NOT EXISTS items_unique_id ON items (session_id, version, id)",
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY, name TEXT, model TEXT, source TEXT, policy TEXT NOT NULL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL,
        context_version INTEGER NOT NULL DEFAULT 1, meta TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS sessions_recent ON sessions (updated_at, created_at)",
    _items_ddl("items"),
    *_ITEM_INDEXES,
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        type TEXT NOT NULL, at REAL NOT NULL, data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id, id)",
    # The ledger is append-only: refuse updates even from a hand-written query.
    """CREATE TRIGGER IF NOT EXISTS events_append_only BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
    """CREATE TABLE IF NOT EXISTS token_cache (
        counter TEXT NOT NULL, hash TEXT NOT NULL, tokens INTEGER NOT NULL,
        PRIMARY KEY (counter, hash)) WITHOUT ROWID""",
)

_ITEM_LIST = ", ".join(ITEM_COLUMNS)
_MIGRATE_1_TO_2 = (
    _items_ddl("items_v2"),
    f"INSERT INTO items_v2 ({_ITEM_LIST}) SELECT {_ITEM_LIST} FROM items ORDER BY session_id, seq",
    "DROP TABLE items",
    "ALTER TABLE items_v2 RENAME TO items",
    *_ITEM_INDEXES,
)

_FULL_TEXT = (
    """CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(
        text, content = 'items', content_rowid = 'rid', tokenize = 'unicode61')""",
    """CREATE TRIGGER IF NOT EXISTS items_fts_insert AFTER INSERT ON items BEGIN
        INSERT INTO items_fts (rowid, text) VALUES (new.rid, new.text); END""",
    """CREATE TRIGGER IF NOT EXISTS items_fts_delete AFTER DELETE ON items BEGIN
        INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', old.rid, old.text);
        END""",
    """CREATE TRIGGER IF NOT EXISTS items_fts_update AFTER UPDATE OF rid, text ON items BEGIN
        INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', old.rid, old.text);
        INSERT INTO items_fts (rowid, text) VALUES (new.rid, new.text); END""",
    # Back-fill: index every item already stored.
    "INSERT INTO items_fts (items_fts) VALUES ('rebuild')",
)


# Budgets that hold under concurrency: a grant is a row taken by one INSERT whose
# WHERE holds the limit check (``RESERVE``), inside the store's BEGIN IMMEDIATE.
_BUDGET_TABLES = (
    """CREATE TABLE IF NOT EXISTS reservations (
        session_id TEXT NOT NULL, key TEXT NOT NULL, scope TEXT NOT NULL,
        tokens INTEGER NOT NULL CHECK (tokens >= 0),
        created_at REAL NOT NULL, expires_at REAL NOT NULL,
        state TEXT NOT NULL, settle TEXT NOT NULL,
        PRIMARY KEY (session_id, key))""",
    "CREATE INDEX IF NOT EXISTS reservations_live ON reservations (session_id, state, scope)",
    """CREATE TABLE IF NOT EXISTS agent_budgets (
        session_id TEXT NOT NULL, agent TEXT NOT NULL, tokens INTEGER NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (session_id, agent)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS budget_revisions (
        session_id TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID""",
)
_BUDGET_TABLE_NAMES = ("reservations", "agent_budgets", "budget_revisions")


def has_budget_tables(conn: sqlite3.Connection) -> bool:
    sql = (
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        f" AND name IN ({marks(len(_BUDGET_TABLE_NAMES))})"
    )
    found = int(conn.execute(sql, _BUDGET_TABLE_NAMES).fetchone()[0])
    return found == len(_BUDGET_TABLE_NAMES)


def fts5_available(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has FTS5 (built in, or registered as an extension)."""
    if conn.execute("SELECT sqlite_compileoption_used('ENABLE_FTS5')").fetchone()[0]:
        return True
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.ctxbudget_fts5_probe USING fts5(x)")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp.ctxbudget_fts5_probe")
    return True


def has_full_text(conn: sqlite3.Connection) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'items_fts'"
    return conn.execute(sql).fetchone() is not None


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def up_to_date(conn: sqlite3.Connection, url: str, *, full_text: bool) -> bool:
    """Whether the file needs no upgrade; ``StoreError`` if a newer ctxbudget wrote it."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store {url} has schema version {version}, newer than this "
            f"ctxbudget understands ({SCHEMA_VERSION}): upgrade ctxbudget"
        )
    return (
        version == SCHEMA_VERSION
        and not (full_text and not has_full_text(conn))
        and has_budget_tables(conn)
    )


def upgrade(conn: sqlite3.Connection, found: int, *, full_text: bool) -> None:
    """Bring a file of schema ``found`` (0: empty) to ``SCHEMA_VERSION``.

    Runs inside the caller's write transaction, so it happens whole or not at all.
    """
    if found < SCHEMA_VERSION:
        for statement in _SCHEMA if found == 0 else _MIGRATE_1_TO_2:
            conn.execute(statement)
    if full_text and not has_full_text(conn):
        for statement in _FULL_TEXT:
            conn.execute(statement)
    for statement in _BUDGET_TABLES:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


# -- values ---------------------------------------------------------------------------


def to_db(value: Any) -> Any:
    # Text read from JSON may hold lone surrogates (a cut emoji in a tool output);
    # sqlite3 refuses to encode them, so such text is stored as its bytes instead.
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass")
    return value


def from_db(value: Any) -> Any:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


def item_row(row: tuple[Any, ...]) -> ItemRow:
    return tuple(from_db(value) for value in row)


def explain(message: str, path: str, busy_timeout_ms: int) -> str:
    """What a driver error means for the user, and what to do about it."""
    lowered = message.lower()
    if "not a database" in lowered:
        return f"{path} is not a SQLite database ({message}); move it or use another path"
    if "locked" in lowered or "busy" in lowered:
        return (
            f"the database stayed locked by another writer for more than "
            f"{busy_timeout_ms / 1000:g} s; retry, or stop the process holding it"
        )
    if "readonly" in lowered or "read-only" in lowered:
        return f"{path} is read-only ({message}); check its permissions"
    if "no such module: fts5" in lowered:
        return (
            f"{path} has a full-text index but this Python's SQLite lacks FTS5; "
            "use a Python whose sqlite3 module has FTS5 to write to it"
        )
    if "unable to open" in lowered:
        return f"cannot open {path} ({message}); check the path and its permissions"
    return message


# The database's clock, in seconds since the epoch (julianday: every SQLite 3 has it;
# unixepoch('subsec') needs 3.42): every process writing the file reads the same one.
DATABASE_NOW = "SELECT (julianday('now') - 2440587.5) * 86400.0"


# -- archive search -------------------------------------------------------------------------

_FTS_SEARCH = f"""
    WITH hits AS (
        SELECT items.rid AS rid, items.hash AS hash, items.version AS version,
            items.seq AS seq, bm25(items_fts) AS rank
        FROM items_fts JOIN items ON items.rid = items_fts.rowid
        WHERE items_fts MATCH :query AND items.session_id = :session AND items.{NOT_HELD}
    ), latest AS (
        SELECT rid, rank, version, seq,
            row_number() OVER (PARTITION BY hash ORDER BY version DESC, seq DESC) AS copy
        FROM hits
    )
    SELECT {", ".join(f"items.{column}" for column in ITEM_COLUMNS)}, -latest.rank
    FROM latest JOIN items ON items.rid = latest.rid
    WHERE latest.copy = 1
    ORDER BY latest.rank, latest.version DESC, latest.seq DESC
    LIMIT :limit"""


def fts_query(terms: list[Term]) -> str:
    """An FTS5 query OR-ing the terms, each quoted: no input is a syntax error.

    Inside double quotes FTS5 reads nothing as an operator (``NEAR``, ``*``, ``:``,
    ``-``, ``^``); a term the tokenizer cuts into several words becomes a phrase,
    and one it cuts into none matches nothing. ``*`` after the quote makes a prefix.
    """
    quoted = ('"' + term.text.replace('"', '""') + '"' for term in terms)
    return " OR ".join(q + "*" if term.prefix else q for q, term in zip(quoted, terms, strict=True))


def search_fts(
    conn: Database, session: Any, terms: list[Term], exclude: int | None, limit: int
) -> list[tuple[ItemRow, float]]:
    params = {"query": fts_query(terms), "session": session, "exclude": exclude, "limit": limit}
    return [(item_row(row[:-1]), float(row[-1])) for row in conn.execute(_FTS_SEARCH, params)]
