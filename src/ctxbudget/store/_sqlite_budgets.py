"""The ``sqlite://`` store's budget reservations and agent budgets: their SQL, run on
the store's connection inside its transaction (``SQLiteStore`` holds the lock and
opens the transaction around each call). A reservation is taken by one conditional
``INSERT`` under its caps (``_sqlite_schema.reserve_statement``), so processes asking
at once never get more than fits; the settling rule is the shared one (``settled``).
Confirmations and agent budgets move the session's revision in the same transaction.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable
from typing import Any

from . import _sqlite_schema as schema
from ._sqlite_schema import from_db, to_db
from .reservations import CONFIRMED, LIVE, Cap, Reservation, settled

__all__ = [
    "agent_budgets",
    "database_now",
    "reservations",
    "reserve",
    "revision",
    "set_agent_budget",
    "settle",
]


def _reservation(row: tuple[Any, ...]) -> Reservation:
    sid, key, scope, tokens, created, expires, state, settle = (from_db(v) for v in row)
    return Reservation(sid, key, scope, int(tokens), created, expires, state, settle)


def reserve(
    conn: sqlite3.Connection,
    session_id: str,
    scope: str,
    key: str,
    tokens: int,
    caps: Iterable[Cap],
    *,
    now: float,
    ttl: float,
    settle: str,
    at_revision: int | None,
) -> Reservation | None:
    """``Store.reserve`` on ``conn``, in the caller's transaction."""
    sid = to_db(session_id)
    conn.execute(schema.EXPIRE, (sid, now))
    found = conn.execute(
        f"SELECT {schema.RESERVATION_COLUMNS} FROM reservations WHERE session_id = ? AND key = ?",
        (sid, to_db(key)),
    ).fetchone()
    if found is not None and found[6] == LIVE:
        return dataclasses.replace(_reservation(found), existing=True)
    if at_revision is not None and revision(conn, session_id) != at_revision:
        return None  # decided on figures that have moved since: the caller decides again
    if found is not None:
        conn.execute("DELETE FROM reservations WHERE session_id = ? AND key = ?", (sid, to_db(key)))
    sql, params = schema.reserve_statement([(c.scope, c.limit, c.used) for c in caps])
    params.update(
        session=sid,
        key=to_db(key),
        scope=to_db(scope),
        tokens=int(tokens),
        created=now,
        expires=now + ttl,
        settle=settle,
    )
    if conn.execute(sql, params).rowcount == 0:
        return None
    return Reservation(session_id, key, scope, int(tokens), now, now + ttl, LIVE, settle)


def reservations(
    conn: sqlite3.Connection, session_id: str, scope: str | None, *, live: bool, now: float
) -> list[Reservation]:
    """``Store.reservations`` on ``conn``."""
    sql = f"SELECT {schema.RESERVATION_COLUMNS} FROM reservations WHERE session_id = :session"
    params: dict[str, Any] = {"session": to_db(session_id), "now": now}
    if live:
        sql += " AND state = 'live' AND expires_at > :now"
    if scope is not None:
        where, scope_params = schema.scope_filter(scope)
        sql += f" AND {where}"
        params.update(scope_params)
    rows = conn.execute(sql + " ORDER BY created_at, rowid", params).fetchall()
    return [_reservation(row) for row in rows]


def settle(
    conn: sqlite3.Connection,
    session_id: str,
    state: str,
    *,
    now: float,
    key: str | None,
    scope: str | None,
    settle: str | None,
    tokens: int | None,
    oldest: bool,
) -> list[Reservation]:
    """``Store.settle_reservations`` on ``conn``, in the caller's transaction."""
    sid = to_db(session_id)
    conn.execute(schema.EXPIRE, (sid, now))
    live = reservations(conn, session_id, scope, live=True, now=now)
    plan = settled(live, state, key=key, settle=settle, tokens=tokens, oldest=oldest)
    for reservation, amount in plan:
        if amount < reservation.tokens:  # part of it: what is left stays live
            conn.execute(
                "UPDATE reservations SET tokens = tokens - ? WHERE session_id = ? AND key = ?",
                (amount, sid, to_db(reservation.key)),
            )
        else:
            conn.execute(
                "UPDATE reservations SET state = ? WHERE session_id = ? AND key = ?",
                (state, sid, to_db(reservation.key)),
            )
    if plan and state == CONFIRMED:
        conn.execute(schema.NEXT_REVISION, (sid,))
    return [dataclasses.replace(r, tokens=amount, state=state) for r, amount in plan]


def set_agent_budget(
    conn: sqlite3.Connection, session_id: str, agent: str, tokens: int, now: float
) -> None:
    """``Store.set_agent_budget`` on ``conn``, in the caller's transaction."""
    conn.execute(
        "INSERT INTO agent_budgets (session_id, agent, tokens, updated_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (session_id, agent)"
        " DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
        (to_db(session_id), to_db(agent), int(tokens), now),
    )
    conn.execute(schema.NEXT_REVISION, (to_db(session_id),))


def figures_changed(conn: sqlite3.Connection, session_id: str) -> None:
    """The session's row was written (a usage, an append, a compaction): the budget
    revision moves, so that a grant decided on the figures before it is decided again."""
    conn.execute(schema.NEXT_REVISION, (to_db(session_id),))


def revision(conn: sqlite3.Connection, session_id: str) -> int:
    """``Store.budget_revision`` on ``conn``."""
    return int(conn.execute(schema.REVISION, (to_db(session_id),)).fetchone()[0])


def database_now(conn: sqlite3.Connection) -> float:
    """The database's clock: the one time every process on the file agrees on."""
    return float(conn.execute(schema.DATABASE_NOW).fetchone()[0])


def agent_budgets(conn: sqlite3.Connection, session_id: str) -> dict[str, int]:
    """``Store.agent_budgets`` on ``conn``."""
    rows = conn.execute(
        "SELECT agent, tokens FROM agent_budgets WHERE session_id = ? ORDER BY agent",
        (to_db(session_id),),
    ).fetchall()
    return {from_db(agent): int(tokens) for agent, tokens in rows}
