"""The SQL side of the PostgreSQL store: its URL, schema, migrations, values, errors.

A URL is libpq's (``postgresql://user@host:5432/db``, ``postgres://…`` too, any of
libpq's query parameters) plus ``schema=NAME`` (default ``ctxbudget``): the store's
tables live in that schema, created on first open, so several stores (a test's
fresh one, say) share a database without seeing each other. The server settings
``statement_timeout`` and ``idle_in_transaction_session_timeout`` may be given as
query parameters too (``SESSION_SETTINGS``: the store sets them on each connection,
in place of its defaults, ``_postgres_connection.LIMITS``). The password never
enters ``Store.url`` (messages print it): give it by ``PGPASSWORD`` or
``~/.pgpass``, or in the URL, where it is used to connect only.

Migrations are named functions applied in order, each in the transaction that
creates the schema, and recorded in ``schema_migrations``; ``SCHEMA_VERSION`` is the
last one's number. A store newer than this ctxbudget is refused.

Values: PostgreSQL's ``text`` holds neither NUL nor a lone surrogate (which
transcripts do contain, a cut emoji in a tool output). ``to_db`` writes each such
character, and the marker itself, as the marker U+FDD0 (a noncharacter) and four hex
digits; ``from_db`` reverses it. Every other string is stored as it is, and as the
escape maps each character on its own, prefixes, equality and grouping still hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError

__all__ = [
    "DATABASE_NOW",
    "DEFAULT_SCHEMA",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SESSION_SETTINGS",
    "WRITE_LOCK",
    "Target",
    "explain",
    "from_db",
    "placeholders",
    "target",
    "to_db",
]

DEFAULT_SCHEMA = "ctxbudget"
#: Server settings a URL may give as query parameters (libpq would refuse them there).
SESSION_SETTINGS = ("statement_timeout", "idle_in_transaction_session_timeout")
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SETTING_VALUE = re.compile(r"^[0-9]{1,9}\s*(?:us|ms|s|min|h|d)?$")


@dataclass(frozen=True, slots=True)
class Target:
    """What a ``postgresql://`` URL names: ``conninfo`` for libpq (the URL without
    ``schema``), the ``schema``, and ``url``: the URL to show (no password)."""

    conninfo: str
    schema: str
    url: str
    #: ``SESSION_SETTINGS`` the URL gives, as (name, value)
    settings: tuple[tuple[str, str], ...] = ()


def target(url: str) -> Target:
    """The connection and schema a ``postgresql://`` or ``postgres://`` URL names."""
    from . import shown_url as showable

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is no number raises here, not at connect)
    except ValueError as exc:
        raise ConfigurationError(f"the store URL {showable(url)!r} is malformed: {exc}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(f"not a PostgreSQL URL: {showable(url)!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for name, value in query if name == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    if not _SCHEMA_NAME.match(schema):
        raise ConfigurationError(
            f"cannot use the schema {schema!r} of the store URL: name a schema with letters, "
            "digits and _ (at most 63, not starting with a digit), e.g. ?schema=ctxbudget"
        )
    settings = dict((name, value) for name, value in query if name in SESSION_SETTINGS)
    for name, value in settings.items():
        if not _SETTING_VALUE.match(value):
            raise ConfigurationError(
                f"cannot use {name}={value!r} of the store URL: give milliseconds, or a "
                "number and a unit (e.g. 30s, 1min)"
            )
    ours = ("schema", *SESSION_SETTINGS)
    rest = urlencode([(name, value) for name, value in query if name not in ours])
    conninfo = urlunsplit(parts._replace(query=rest))
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}@{host}"
    shown = [*((n, v) for n, v in query if n not in ("schema", "password")), ("schema", schema)]
    shown_url = urlunsplit(parts._replace(netloc=netloc, query=urlencode(shown)))
    return Target(conninfo, schema, shown_url, tuple(settings.items()))


# -- schema ---------------------------------------------------------------------------

# One writer at a time per schema (the key: the schema's name), taken by every write
# transaction first: a read and the write that depends on it never interleave with
# another writer's, as under SQLite's BEGIN IMMEDIATE (``_postgres_connection``).
# psycopg's placeholder: the connection runs it itself, with the schema's name.
WRITE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('ctxbudget:' || %s))"
# The server's clock, in seconds since the epoch: every host writing the store
# reads the same one (clock_timestamp: the time now, not the transaction's start).
DATABASE_NOW = "SELECT extract(epoch from clock_timestamp())"

_CREATE_STORE = (
    # COLLATE "C": ordered by code point, as the other backends order ids and names.
    """CREATE TABLE sessions (
        id text COLLATE "C" PRIMARY KEY, name text, model text, source text,
        policy text NOT NULL, created_at double precision NOT NULL,
        updated_at double precision NOT NULL, context_version integer NOT NULL DEFAULT 1,
        meta text NOT NULL)""",
    "CREATE INDEX sessions_recent ON sessions (updated_at, created_at)",
    """CREATE TABLE items (
        rid bigserial PRIMARY KEY,
        session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        seq integer NOT NULL, version integer NOT NULL, id text NOT NULL,
        role text NOT NULL, kind text NOT NULL, component text NOT NULL, layer text NOT NULL,
        agent text NOT NULL, tool text, pair_id text, tokens integer,
        pinned boolean NOT NULL, phase text, message_index integer NOT NULL,
        created_at double precision NOT NULL, last_used_at double precision,
        text text NOT NULL, hash text NOT NULL, raw text, stored_at double precision,
        UNIQUE (session_id, seq))""",
    "CREATE INDEX items_by_version ON items (session_id, version, seq)",
    "CREATE UNIQUE INDEX items_unique_id ON items (session_id, version, id)",
    """CREATE TABLE events (
        id bigserial PRIMARY KEY,
        session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        type text NOT NULL, at double precision NOT NULL, data text NOT NULL)""",
    "CREATE INDEX events_by_session ON events (session_id, id)",
    """CREATE TABLE token_cache (
        counter text NOT NULL, hash text NOT NULL, tokens integer NOT NULL,
        PRIMARY KEY (counter, hash))""",
    # rowid: the order of insertion, named as SQLite's implicit one so that the shared
    # SQL (``_sql_budgets``) orders by it on both.
    """CREATE TABLE reservations (
        rowid bigserial NOT NULL, session_id text NOT NULL, key text NOT NULL,
        scope text NOT NULL, tokens integer NOT NULL CHECK (tokens >= 0),
        created_at double precision NOT NULL, expires_at double precision NOT NULL,
        state text NOT NULL, settle text NOT NULL, PRIMARY KEY (session_id, key))""",
    "CREATE INDEX reservations_live ON reservations (session_id, state, scope)",
    """CREATE TABLE agent_budgets (
        session_id text NOT NULL, agent text COLLATE "C" NOT NULL, tokens bigint NOT NULL,
        updated_at double precision NOT NULL, PRIMARY KEY (session_id, agent))""",
    """CREATE TABLE budget_revisions (
        session_id text PRIMARY KEY, revision bigint NOT NULL)""",
)


# The ledger is append-only: refuse updates even from a hand-written query.
_APPEND_ONLY = (
    """CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'events are append-only'; END $$""",
    """CREATE TRIGGER events_append_only BEFORE UPDATE ON events
        FOR EACH ROW EXECUTE FUNCTION events_append_only()""",
)


def _create_store(execute: Callable[[str], object]) -> None:
    """Schema 1: sessions, items, the event ledger, the token cache, the budget tables."""
    for statement in (*_CREATE_STORE, *_APPEND_ONLY):
        execute(statement)


def stand_in(execute: Callable[[str], object]) -> None:
    """The tables of ``SCHEMA_VERSION``, empty, where the caller's ``search_path``
    puts them (``pg_temp``: gone with the connection): what a store that does not
    exist, opened only to read, reads (it refuses writes, so no trigger guards them).
    A migration that adds a table adds it here too."""
    for statement in _CREATE_STORE:
        execute(statement)


#: (version, name, migration), applied in order; each recorded in schema_migrations.
MIGRATIONS: tuple[tuple[int, str, Callable[[Callable[[str], object]], None]], ...] = (
    (1, "create the store", _create_store),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL,
    applied_at double precision NOT NULL DEFAULT extract(epoch from clock_timestamp()))"""


# -- values and statements -----------------------------------------------------------------

_MARK = "\ufdd0"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff\ufdd0]")
_ESCAPED = re.compile("\ufdd0([0-9a-f]{4})")


def to_db(value: Any) -> Any:
    """``value`` as PostgreSQL's text can hold it (see the module's docstring)."""
    if isinstance(value, str) and (not value.isascii() or "\x00" in value):
        return _UNSTORABLE.sub(lambda found: f"{_MARK}{ord(found.group()):04x}", value)
    return value


def from_db(value: Any) -> Any:
    if isinstance(value, str) and _MARK in value:
        return _ESCAPED.sub(lambda found: chr(int(found.group(1), 16)), value)
    return value


# A string literal (kept as it is), SQLite's ? and :name placeholders (not a :: cast),
# or a % (psycopg's own placeholder character).
_SQL_TOKEN = re.compile(r"'(?:[^']|'')*'|\?|(?<![:\w]):([A-Za-z_]\w*)|%")


@lru_cache(maxsize=512)
def placeholders(statement: str) -> str:
    """A statement of the shared SQL (SQLite's ``?`` and ``:name``) in psycopg's
    style (``%s`` and ``%(name)s``)."""

    def replace(found: re.Match[str]) -> str:
        token = found.group()
        if token.startswith("'"):
            return token.replace("%", "%%")
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return f"%({found.group(1)})s"

    return _SQL_TOKEN.sub(replace, statement)


def explain(exc: Exception, url: str, lock_timeout_ms: int) -> str:
    """What a driver error means for the user, and what to do about it."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    state = getattr(exc, "sqlstate", None) or ""
    if state == "55P03":  # lock_not_available
        return (
            f"another writer held the store for more than {lock_timeout_ms / 1000:g} s; "
            "retry, or find the process holding it (pg_stat_activity)"
        )
    if state == "57014":  # query_canceled: statement_timeout
        return (
            f"{message}: the server took longer than the statement timeout "
            "(?statement_timeout= in the URL sets it)"
        )
    if state == "25P03":  # idle_in_transaction_session_timeout
        return (
            f"{message}: the server heard nothing within a transaction for longer than "
            "idle_in_transaction_session_timeout (a stalled network or process); "
            "nothing of it was written"
        )
    if state.startswith("42501"):  # insufficient_privilege
        return f"{message}; grant the user access to the schema, or name another one (?schema=)"
    if state.startswith("08") or (not state and "connect" in message.lower()):
        return (
            f"cannot reach the PostgreSQL server ({message}); check that it runs and the "
            f"URL's host, port, database and user (the password: PGPASSWORD or ~/.pgpass)"
        )
    return message
