"""The SQL that the SQL backends (SQLite, PostgreSQL) share, and what they run it on.

Every statement here is written once, in SQLite's parameter style (``?`` and
``:name``), in the SQL both dialects read the same way; a backend whose driver wants
another style translates the placeholders (``_postgres_connection``). ``Database`` is
what a statement runs on: the driver's connection with the backend's value encoding.
The statements of one dialect only (SQLite's FTS5, PostgreSQL's schema) stay in that
backend's own modules. ``search_rows`` is the archive search of a backend without a
full-text index: the newest copy of each text, scored in Python (``_search``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from ._rows import GROUPED_BY, ITEM_COLUMNS, ItemRow
from ._search import Term, rank, word_counts

__all__ = [
    "AGGREGATES_AT",
    "AGGREGATES_CURRENT",
    "CURRENT_VERSION",
    "EXPIRE",
    "FIRST_FOLLOWED",
    "ITEMS_AFTER",
    "ITEM_INSERT",
    "ITEM_SELECT",
    "NEXT_REVISION",
    "RESERVATION_COLUMNS",
    "REVISION",
    "VERSIONS",
    "Cursor",
    "Database",
    "events_query",
    "marks",
    "reserve_statement",
    "scope_filter",
    "search_rows",
]


class Cursor(Protocol):
    """What a statement returns, on every driver (sqlite3's and psycopg's cursors)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    """A backend's connection as the shared SQL sees it: statements in SQLite's
    parameter style, and the backend's encoding of a value its driver cannot store
    as it is (``to_db``) and back (``from_db``)."""

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def to_db(self, value: Any) -> Any: ...

    def from_db(self, value: Any) -> Any: ...


def marks(count: int) -> str:
    return ", ".join("?" * count)


# -- items, versions, events ----------------------------------------------------------------

_ITEM_LIST = ", ".join(ITEM_COLUMNS)
_HASH, _TEXT = ITEM_COLUMNS.index("hash"), ITEM_COLUMNS.index("text")
ITEM_SELECT = _ITEM_LIST
ITEM_INSERT = f"INSERT INTO items ({_ITEM_LIST}, stored_at) VALUES ({marks(len(ITEM_COLUMNS) + 1)})"
CURRENT_VERSION = "(SELECT context_version FROM sessions WHERE id = ?)"
# What came after the first copy of a text that something follows (the earliest
# version first): found through items_by_version, without reading the versions.
FIRST_FOLLOWED = (
    "SELECT a.version, a.seq FROM items a WHERE a.session_id = ? AND a.hash = ?{exclude}"
    " AND EXISTS (SELECT 1 FROM items b WHERE b.session_id = a.session_id"
    " AND b.version = a.version AND b.seq > a.seq) ORDER BY a.version, a.seq LIMIT 1"
)
ITEMS_AFTER = (
    f"SELECT {ITEM_SELECT} FROM items WHERE session_id = ? AND version = ? AND seq > ?"
    " ORDER BY seq LIMIT ?"
)
VERSIONS = (
    "SELECT version, count(*), coalesce(sum(tokens), 0), min(stored_at) FROM items"
    " WHERE session_id = ? GROUP BY version ORDER BY version"
)


def _aggregates_sql(version: str) -> str:
    # One statement, so the totals and the four groupings read one snapshot.
    selected = (
        "WITH selected AS (SELECT component, kind, tool, agent, tokens FROM items"
        f" WHERE session_id = ? AND version = {version}) "
    )
    parts = [
        "SELECT 'total', NULL, count(*), coalesce(sum(tokens), 0), count(tokens) FROM selected"
    ]
    parts += [
        f"SELECT '{column}', {column}, coalesce(sum(tokens), 0), 0, 0 FROM selected"
        f" WHERE {column} IS NOT NULL GROUP BY {column}"
        for column in GROUPED_BY
    ]
    return selected + " UNION ALL ".join(parts)


AGGREGATES_CURRENT = _aggregates_sql(CURRENT_VERSION)
AGGREGATES_AT = _aggregates_sql("?")


def events_query(
    session: Any, types: tuple[str, ...] | None, since_id: int, limit: int | None
) -> tuple[str, list[Any]]:
    """The events of ``session`` after ``since_id``, of ``types`` (every one: None),
    oldest first; the caller gives the values encoded (``Database.to_db``)."""
    sql = "SELECT id, type, at, data FROM events WHERE session_id = ? AND id > ?"
    params: list[Any] = [session, int(since_id)]
    if types is not None:
        if not types:
            return sql + " AND 1 = 0", params  # an empty IN () is not valid everywhere
        sql += f" AND type IN ({marks(len(types))})"
        params.extend(types)
    sql += " ORDER BY id"
    if limit is not None:
        sql += f" LIMIT {max(int(limit), 0)}"
    return sql, params


# -- archive search without a full-text index ------------------------------------------------

# Texts the excluded version holds are left out (the caller has them); a NULL
# :exclude makes the subquery empty, so every version is searched.
NOT_HELD = "hash NOT IN (SELECT hash FROM items WHERE session_id = :session AND version = :exclude)"
_CANDIDATES = f"""
    SELECT {_ITEM_LIST} FROM items WHERE session_id = :session AND {NOT_HELD}
    ORDER BY version DESC, seq DESC"""


def search_rows(
    db: Database, session: Any, terms: list[Term], exclude: int | None, limit: int
) -> list[tuple[ItemRow, float]]:
    """The archive search scored in Python: the newest copy of each text (rows come
    most recent first), BM25 as FTS5's (``_search.rank``)."""
    seen: set[str] = set()
    documents: list[tuple[ItemRow, Counter[str]]] = []
    for found in db.execute(_CANDIDATES, {"session": session, "exclude": exclude}):
        if found[_HASH] not in seen:
            seen.add(found[_HASH])
            row = tuple(db.from_db(value) for value in found)
            documents.append((row, word_counts(row[_TEXT])))
    return rank(terms, documents, limit)


# -- reservations ---------------------------------------------------------------------------

RESERVATION_COLUMNS = "session_id, key, scope, tokens, created_at, expires_at, state, settle"
EXPIRE = (
    "UPDATE reservations SET state = 'expired'"
    " WHERE session_id = ? AND state = 'live' AND expires_at <= ?"
)
REVISION = "SELECT coalesce(max(revision), 0) FROM budget_revisions WHERE session_id = ?"
# The column qualified: PostgreSQL reads a bare "revision" as either row's.
NEXT_REVISION = (
    "INSERT INTO budget_revisions (session_id, revision) VALUES (?, 1)"
    " ON CONFLICT (session_id) DO UPDATE SET revision = budget_revisions.revision + 1"
)


def scope_filter(scope: str, name: str = "scope") -> tuple[str, dict[str, Any]]:
    """SQL matching ``scope``: itself, or every scope under it when it ends in ':'.
    The caller encodes the value (``Database.to_db``)."""
    if scope.endswith(":"):
        return f"substr(scope, 1, length(:{name})) = :{name}", {name: scope}
    return f"scope = :{name}", {name: scope}


def reserve_statement(db: Database, caps: list[tuple[str, int, int]]) -> tuple[str, dict[str, Any]]:
    """One INSERT … SELECT … WHERE that takes a reservation only when, for every cap
    (scope, limit, used): used + live reservations in that scope + :tokens ≤ limit.

    The caller adds the row's values (:session, :key, :scope, :tokens, :created,
    :expires, :settle) to the returned parameters, and runs it in the store's write
    transaction (one writer at a time) after expiring what is due (``EXPIRE``), so
    "live" means unexpired.
    """
    checks: list[str] = []
    params: dict[str, Any] = {}
    for n, (scope, limit, used) in enumerate(caps):
        where, scope_params = scope_filter(scope, f"cap_scope_{n}")
        checks.append(
            f":cap_used_{n} + (SELECT coalesce(sum(tokens), 0) FROM reservations"
            f" WHERE session_id = :session AND state = 'live' AND {where})"
            f" + :tokens <= :cap_limit_{n}"
        )
        params.update({key: db.to_db(value) for key, value in scope_params.items()})
        params[f"cap_used_{n}"], params[f"cap_limit_{n}"] = int(used), int(limit)
    sql = (
        f"INSERT INTO reservations ({RESERVATION_COLUMNS})"
        " SELECT :session, :key, :scope, :tokens, :created, :expires, 'live', :settle"
    )
    if checks:
        sql += " WHERE " + " AND ".join(checks)
    return sql, params
