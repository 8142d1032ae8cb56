"""Reservations: leases on budget tokens, the limits they are taken under and how they
are settled.

A grant (an allocation, a spawn the gate allowed) is a ``Reservation`` a store takes
atomically under its ``Cap`` limits (``Store.reserve``), so processes asking at once
never get more than fits. It lives until its usage arrives (``CONFIRMED``), the work is
refused (``RELEASED``) or its time is up (``EXPIRED``). ``settled`` is the rule every
backend applies when settling them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ..errors import ConfigurationError, StoreError

__all__ = [
    "CONFIRMED",
    "DEFAULT_RESERVATION_TTL",
    "EXPIRED",
    "LIVE",
    "RELEASED",
    "RESERVATION_TTL_ENV",
    "SETTLE_ON_STOP",
    "SETTLE_ON_USAGE",
    "Cap",
    "Reservation",
    "reservation_ttl",
    "settled",
]

#: How long a reservation lives when nothing confirms nor releases it (seconds);
#: ``$CTXBUDGET_RESERVATION_TTL`` changes the default.
DEFAULT_RESERVATION_TTL = 600.0
RESERVATION_TTL_ENV = "CTXBUDGET_RESERVATION_TTL"

#: States of a reservation: counted against its limits only while ``LIVE`` (and before
#: ``expires_at``); ``CONFIRMED`` (its usage arrived), ``RELEASED`` (the work was
#: refused or given back) and ``EXPIRED`` (nothing confirmed it in time) count no more.
LIVE, CONFIRMED, RELEASED, EXPIRED = "live", "confirmed", "released", "expired"
#: What confirms a reservation: the session's next recorded usage, or the stop of the
#: sub-agent whose spawn it is for (Claude Code's SubagentStop).
SETTLE_ON_USAGE, SETTLE_ON_STOP = "usage", "stop"


def reservation_ttl(ttl: float | None = None) -> float:
    """``ttl``, else ``$CTXBUDGET_RESERVATION_TTL``, else ``DEFAULT_RESERVATION_TTL``."""
    if ttl is None:
        raw = os.environ.get(RESERVATION_TTL_ENV, "").strip()
        try:
            ttl = float(raw) if raw else DEFAULT_RESERVATION_TTL
        except ValueError:
            raise ConfigurationError(
                f"${RESERVATION_TTL_ENV} must be a number of seconds, got {raw!r}"
            ) from None
    if not math.isfinite(ttl) or ttl <= 0:
        raise ConfigurationError(f"a reservation's time limit must be > 0 seconds, got {ttl!r}")
    return float(ttl)


@dataclass(frozen=True, slots=True)
class Cap:
    """One limit a reservation must fit under, checked in the same atomic step that
    takes it: ``used`` (what the session's status says is used, reservations left
    out) + the live reservations in ``scope`` + the new tokens ≤ ``limit``. A scope
    ending in ``:`` covers every scope that starts with it (``"component:"``)."""

    scope: str
    limit: int
    used: int = 0

    def covers(self, scope: str) -> bool:
        return scope.startswith(self.scope) if self.scope.endswith(":") else scope == self.scope


@dataclass(frozen=True, slots=True)
class Reservation:
    """A lease on budget tokens: taken atomically under its caps, keyed by what it is
    for (one key reserves once per session), turned into usage (``CONFIRMED``) when
    that usage arrives, ``RELEASED`` when the work is refused, ``EXPIRED`` after
    ``expires_at`` when nothing did either. ``existing``: ``Store.reserve`` found a
    live reservation of that key and returned it instead of taking a second one."""

    session_id: str
    key: str
    scope: str
    tokens: int
    created_at: float
    expires_at: float
    state: str = LIVE
    settle: str = SETTLE_ON_USAGE
    existing: bool = False

    def live_at(self, now: float) -> bool:
        return self.state == LIVE and self.expires_at > now


def settled(
    live: list[Reservation],
    state: str,
    *,
    key: str | None = None,
    settle: str | None = None,
    tokens: int | None = None,
    oldest: bool = False,
) -> list[tuple[Reservation, int]]:
    """Which of the ``live`` reservations (oldest first) a settlement as ``state``
    takes, and how many tokens of each: those of ``key`` and of ``settle`` (each when
    given); every one whole; ``oldest``: the first only; ``tokens``: at most that many,
    newest first, the last one taken in part. Shared by every backend."""
    if state not in (CONFIRMED, RELEASED):
        raise StoreError(f"a reservation is settled as confirmed or released, not {state!r}")
    chosen = [
        r for r in live if (key is None or r.key == key) and (settle is None or r.settle == settle)
    ]
    if oldest:
        chosen = chosen[:1]
    if tokens is None:
        return [(r, r.tokens) for r in chosen]
    left = max(0, int(tokens))
    plan: list[tuple[Reservation, int]] = []
    for reservation in reversed(chosen):
        if left <= 0:
            break
        amount = min(left, reservation.tokens)
        plan.append((reservation, amount))
        left -= amount
    return plan
