"""The ``memory://`` store's budget reservations and agent budgets.

Dicts by session, each write with its undo handed to the store (``on_rollback``), so a
failed transaction leaves nothing behind. Atomic because the store runs every call
under its lock, inside one transaction; the rules are the shared ones
(``reservations``: ``Cap``, ``settled``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from .reservations import CONFIRMED, EXPIRED, LIVE, Cap, Reservation, settled

__all__ = ["MemoryBudgets"]


class MemoryBudgets:
    """Reservations by session, then key (insertion order: oldest first); agent
    budgets by session, then agent; the budget revision by session."""

    def __init__(
        self, clock: Callable[[], float], on_rollback: Callable[[Callable[[], None]], None]
    ) -> None:
        self.reservations: dict[str, dict[str, Reservation]] = {}
        self.agent_budgets: dict[str, dict[str, int]] = {}
        self.revisions: dict[str, int] = {}
        self._clock = clock
        self._on_rollback = on_rollback

    def _held(self, session_id: str) -> dict[str, Reservation]:
        """The session's reservations, the expired ones marked so (undone on rollback)."""
        held = self.reservations.setdefault(session_id, {})
        now = self._clock()
        for reservation in list(held.values()):
            if reservation.state == LIVE and reservation.expires_at <= now:
                self._put(held, dataclasses.replace(reservation, state=EXPIRED))
        return held

    def _put(
        self, held: dict[str, Reservation], reservation: Reservation | None, key: str = ""
    ) -> None:
        """Write (or, with None, delete) one reservation, with its undo."""
        self._write(held, reservation.key if reservation is not None else key, reservation)

    def _write(self, mapping: dict[str, Any], key: str, value: Any) -> None:
        """``mapping[key] = value`` (``None``: deleted), with its undo."""
        before = mapping.get(key)
        if value is None:
            mapping.pop(key, None)
        else:
            mapping[key] = value

        def undo() -> None:
            if before is None:
                mapping.pop(key, None)
            else:
                mapping[key] = before

        self._on_rollback(undo)

    def reserve(
        self,
        session_id: str,
        scope: str,
        key: str,
        tokens: int,
        caps: Iterable[Cap],
        *,
        ttl: float,
        settle: str,
        revision: int | None,
    ) -> Reservation | None:
        held = self._held(session_id)
        found = held.get(key)
        if found is not None and found.state == LIVE:
            return dataclasses.replace(found, existing=True)
        if revision is not None and self.revision(session_id) != revision:
            return None  # decided on figures that have moved since: the caller decides again
        live = [r for r in held.values() if r.state == LIVE]
        for cap in caps:
            reserved = sum(r.tokens for r in live if cap.covers(r.scope))
            if cap.used + reserved + tokens > cap.limit:
                return None
        if found is not None:
            self._put(held, None, key)  # re-inserted: newest again
        now = self._clock()
        taken = Reservation(session_id, key, scope, int(tokens), now, now + ttl, LIVE, settle)
        self._put(held, taken)
        return taken

    def listed(self, session_id: str, scope: str | None, *, live: bool) -> list[Reservation]:
        now = self._clock()
        chosen = Cap(scope, 0) if scope is not None else None
        return [
            r
            for r in self.reservations.get(session_id, {}).values()
            if (not live or r.live_at(now)) and (chosen is None or chosen.covers(r.scope))
        ]

    def settle(
        self,
        session_id: str,
        state: str,
        *,
        key: str | None,
        scope: str | None,
        settle: str | None,
        tokens: int | None,
        oldest: bool,
    ) -> list[Reservation]:
        held = self._held(session_id)
        live = self.listed(session_id, scope, live=True)
        plan = settled(live, state, key=key, settle=settle, tokens=tokens, oldest=oldest)
        for reservation, amount in plan:
            if amount < reservation.tokens:  # part of it: what is left stays live
                updated = dataclasses.replace(reservation, tokens=reservation.tokens - amount)
            else:
                updated = dataclasses.replace(reservation, state=state)
            self._put(held, updated)
        if plan and state == CONFIRMED:
            self.next_revision(session_id)
        return [dataclasses.replace(r, tokens=amount, state=state) for r, amount in plan]

    def set_agent_budget(self, session_id: str, agent: str, tokens: int) -> None:
        self._write(self.agent_budgets.setdefault(session_id, {}), agent, int(tokens))
        self.next_revision(session_id)

    def revision(self, session_id: str) -> int:
        return self.revisions.get(session_id, 0)

    def next_revision(self, session_id: str) -> None:
        """What a grant is decided on changed (a usage, a confirmation, a budget)."""
        self._write(self.revisions, session_id, self.revision(session_id) + 1)

    def budgets_of(self, session_id: str) -> dict[str, int]:
        return dict(sorted(self.agent_budgets.get(session_id, {}).items()))
