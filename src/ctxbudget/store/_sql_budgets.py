"""Budget reservations and agent budgets in SQL, for every SQL backend: their
statements (``_sql``), run on the store's connection inside its write transaction
(the store holds its lock and opens the transaction around each call, and a write
transaction has the store to itself: SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's
transaction lock). A reservation is taken by one conditional ``INSERT`` under its
caps (``_sql.reserve_statement``), so processes asking at once never get more than
fits; the settling rule is the shared one (``settled``). Confirmations and agent
budgets move the session's revision in the same transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from . import _sql as sql
from ._sql import Database
from .reservations import CONFIRMED, LIVE, Cap, Reservation, settled

__all__ = [
    "agent_budgets",
    "figures_changed",
    "reservations",
    "reserve",
    "revision",
    "set_agent_budget",
    "settle",
]


def _reservation(db: Database, row: tuple[Any, ...]) -> Reservation:
    sid, key, scope, tokens, created, expires, state, settle = (db.from_db(v) for v in row)
    return Reservation(sid, key, scope, int(tokens), created, expires, state, settle)


def reserve(
    db: Database,
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
    """``Store.reserve`` on ``db``, in the caller's transaction."""
    sid = db.to_db(session_id)
    db.execute(sql.EXPIRE, (sid, now))
    found = db.execute(
        f"SELECT {sql.RESERVATION_COLUMNS} FROM reservations WHERE session_id = ? AND key = ?",
        (sid, db.to_db(key)),
    ).fetchone()
    if found is not None and found[6] == LIVE:
        return dataclasses.replace(_reservation(db, found), existing=True)
    if at_revision is not None and revision(db, session_id) != at_revision:
        return None  # decided on figures that have moved since: the caller decides again
    if found is not None:
        db.execute(
            "DELETE FROM reservations WHERE session_id = ? AND key = ?", (sid, db.to_db(key))
        )
    statement, params = sql.reserve_statement(db, [(c.scope, c.limit, c.used) for c in caps])
    params.update(
        session=sid,
        key=db.to_db(key),
        scope=db.to_db(scope),
        tokens=int(tokens),
        created=now,
        expires=now + ttl,
        settle=settle,
    )
    if db.execute(statement, params).rowcount == 0:
        return None
    return Reservation(session_id, key, scope, int(tokens), now, now + ttl, LIVE, settle)


def reservations(
    db: Database, session_id: str, scope: str | None, *, live: bool, now: float
) -> list[Reservation]:
    """``Store.reservations`` on ``db``."""
    statement = f"SELECT {sql.RESERVATION_COLUMNS} FROM reservations WHERE session_id = :session"
    params: dict[str, Any] = {"session": db.to_db(session_id), "now": now}
    if live:
        statement += " AND state = 'live' AND expires_at > :now"
    if scope is not None:
        where, scope_params = sql.scope_filter(scope)
        statement += f" AND {where}"
        params.update({name: db.to_db(value) for name, value in scope_params.items()})
    # rowid: the order of insertion (SQLite's own; a serial column of that name elsewhere)
    rows = db.execute(statement + " ORDER BY created_at, rowid", params).fetchall()
    return [_reservation(db, row) for row in rows]


def settle(
    db: Database,
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
    """``Store.settle_reservations`` on ``db``, in the caller's transaction."""
    sid = db.to_db(session_id)
    db.execute(sql.EXPIRE, (sid, now))
    live = reservations(db, session_id, scope, live=True, now=now)
    plan = settled(live, state, key=key, settle=settle, tokens=tokens, oldest=oldest)
    for reservation, amount in plan:
        if amount < reservation.tokens:  # part of it: what is left stays live
            db.execute(
                "UPDATE reservations SET tokens = tokens - ? WHERE session_id = ? AND key = ?",
                (amount, sid, db.to_db(reservation.key)),
            )
        else:
            db.execute(
                "UPDATE reservations SET state = ? WHERE session_id = ? AND key = ?",
                (state, sid, db.to_db(reservation.key)),
            )
    if plan and state == CONFIRMED:
        db.execute(sql.NEXT_REVISION, (sid,))
    return [dataclasses.replace(r, tokens=amount, state=state) for r, amount in plan]


def set_agent_budget(db: Database, session_id: str, agent: str, tokens: int, now: float) -> None:
    """``Store.set_agent_budget`` on ``db``, in the caller's transaction."""
    db.execute(
        "INSERT INTO agent_budgets (session_id, agent, tokens, updated_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (session_id, agent)"
        " DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
        (db.to_db(session_id), db.to_db(agent), int(tokens), now),
    )
    db.execute(sql.NEXT_REVISION, (db.to_db(session_id),))


def figures_changed(db: Database, session_id: str) -> None:
    """The session's row was written (a usage, an append, a compaction): the budget
    revision moves, so that a grant decided on the figures before it is decided again."""
    db.execute(sql.NEXT_REVISION, (db.to_db(session_id),))


def revision(db: Database, session_id: str) -> int:
    """``Store.budget_revision`` on ``db``."""
    return int(db.execute(sql.REVISION, (db.to_db(session_id),)).fetchone()[0])


def agent_budgets(db: Database, session_id: str) -> dict[str, int]:
    """``Store.agent_budgets`` on ``db``."""
    rows = db.execute(
        "SELECT agent, tokens FROM agent_budgets WHERE session_id = ? ORDER BY agent",
        (db.to_db(session_id),),
    ).fetchall()
    return {db.from_db(agent): int(tokens) for agent, tokens in rows}
