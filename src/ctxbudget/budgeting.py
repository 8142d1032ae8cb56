"""Budgets applied to a session: allocation per component with cleanup, release, the
utilization report and the learned adjustment (the spawn gate and agents' budgets:
``spawning``; phases and task prediction: ``phasing``).

The decisions are pure (``ctxbudget.budget``); this module gathers a session's
figures, runs cleanups through the compaction engine (so nothing is deleted without
being archived), persists the outcome and logs one event per decision.

Grants of a stored session are reservations in the store (``Store.reserve``): the
limit check and the write are one atomic step, so processes that ask at once never
get more than fits. What counts against a limit is what the session's status says is
used plus the live reservations; the step is taken at the budget revision read before
those figures (``budget_revision``), so a confirmation meanwhile sends the grant back
to decide again on the session read anew. An allocation's reservation is confirmed by the
session's next recorded usage (``usage_recorded``, which confirms a spawn's asked
without a key too), or expires after ``reservation_ttl()`` if nothing confirms it. A
session only read (not stored) keeps its reservations in memory, as before.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from . import archive
from .budget.adjustment import Adjustment, adjust_shares, history_from
from .budget.allocation import (
    DEFAULT_SHARES,
    AllocationDecision,
    Shares,
    UtilizationReport,
    decide,
    decide_after_cleanup,
    utilization_report,
)
from .compaction import CompactionPolicy
from .errors import ConfigurationError
from .model import EventType, Item
from .session_figures import Workspace
from .session_state import SessionState
from .store import (
    CONFIRMED,
    RELEASED,
    SETTLE_ON_USAGE,
    Cap,
    reservation_ttl,
)

#: Reservation scopes: an allocation's is ``component:<name>`` (a spawn's
#: ``spawning.GATE_SCOPE``).
ALLOCATION_SCOPE = "component:"
#: A grant beaten to the room by another process decides again on the new figures;
#: each lost race means another grant was made, so few rounds are ever needed.
GRANT_ROUNDS = 20


def budget_total(session: SessionState) -> int:
    """The tokens the components share: the window less what the policy keeps free."""
    p = session.policy
    return p.window - p.reserved_output - p.safety_margin


def component_used(session: SessionState) -> tuple[dict[str, int], int]:
    """Tokens each component holds: its items (in provider units) plus reservations;
    and the fixed tokens (``_items_by_component``)."""
    used, fixed = _items_by_component(session)
    for component, tokens in reserved_by_component(session).items():
        used[component] = used.get(component, 0) + tokens
    return used, fixed


def _items_by_component(session: SessionState) -> tuple[dict[str, int], int]:
    """Tokens each component's items hold (in provider units), and the provider's
    overhead: the system prompt and tool definitions its usage counts beyond the items
    (``status().breakdown.unattributed``). No component holds it and nothing here can
    shrink it: the components share the rest of ``budget_total``, so a grant never
    counts on room the overhead fills."""
    breakdown = session.status().breakdown
    used = {c: breakdown.component.get(c, 0) for c in session.budget.shares}
    return used, breakdown.unattributed


def reserved_by_component(session: SessionState) -> dict[str, int]:
    """Tokens reserved per component: the live reservations in the store for a stored
    session (``session.budget.reservations`` mirrors them), else that dict."""
    if session.is_stored:
        reserved: dict[str, int] = {}
        for r in session.store.reservations(session.id, ALLOCATION_SCOPE):
            name = r.scope[len(ALLOCATION_SCOPE) :]
            reserved[name] = reserved.get(name, 0) + r.tokens
        session.budget.reservations = reserved
    return dict(session.budget.reservations)


def budget_revision(session: SessionState, before: int | None = None) -> int:
    """The store's budget revision, read before a grant's figures: the grant is taken
    at it (``Store.reserve(revision=…)``) or not at all. A stored session is read
    again when its figures are older than the store's: at the first round (``before``
    None) when another process wrote the row since this copy read it (a usage, an
    append, a compaction: a copy kept open for long decides on what is stored now),
    and when the revision moved since the round ``before`` (the usage recorded with a
    confirmation is in the store, not in this copy)."""
    revision = session.store.budget_revision(session.id)
    if not session.is_stored:
        return revision
    if before is None:
        if not session.row.is_current(session.store.get_session(session.id), session.version):
            session.reload()
    elif revision != before:
        session.reload()
    return revision


def _check_component(session: SessionState, component: str) -> None:
    if component not in session.budget.shares:
        known = ", ".join(session.budget.shares)
        raise ConfigurationError(f"unknown budget component {component!r}; known: {known}")


def allocate(
    session: SessionState,
    component: str,
    tokens: int,
    *,
    allow_partial: bool = True,
    key: str | None = None,
    ttl: float | None = None,
) -> AllocationDecision:
    """Grant ``tokens`` to ``component``: in full, after cleanup, in part, or not.

    A stored session's grant is a reservation taken atomically in the store under the
    component's share and the whole budget (``key``: what it is for, one reservation
    per key; ``ttl``: its time limit), confirmed by the next recorded usage.
    """
    _check_component(session, component)
    lease = reservation_ttl(ttl) if session.is_stored else 0.0
    key = key or f"allocation-{uuid.uuid4().hex}"
    revision: int | None = None
    for _ in range(GRANT_ROUNDS):
        revision = budget_revision(session, revision) if session.is_stored else None
        decision, plan, caps = _decide_allocation(session, component, tokens, allow_partial)
        granted = decision.granted
        if not granted or _grant(session, component, granted, caps, key, lease, revision=revision):
            break
    else:  # pragma: no cover - needs GRANT_ROUNDS grants by others within one call
        decision = _crowded_out(decision)
        plan = None
    if decision.granted and plan is not None:
        try:
            apply_cleanup(session, plan)
        except BaseException:
            _give_back(session, component, key, decision.granted)
            raise
    if decision.granted:
        if session.is_stored:
            reserved_by_component(session)  # the mirror shows the new reservation
        else:
            session.save_budget()
    data: dict[str, Any] = {
        "component": component,
        "requested": decision.requested,
        "granted": decision.granted,
        "outcome": decision.outcome,
        "reason": decision.reason,
        "limit": decision.limit,
        "used_before": decision.used_before,
        "used_after": decision.used_after,
        "freed_by_cleanup": decision.freed_by_cleanup,
    }
    if decision.granted and session.is_stored:
        data["reservation"] = key
    session.log_event(EventType.ALLOCATION, data)
    return decision


def _decide_allocation(
    session: SessionState, component: str, tokens: int, allow_partial: bool
) -> tuple[AllocationDecision, archive.Compaction | None, list[Cap]]:
    """The decision on the figures as they are now, the cleanup it needs, and the caps
    its reservation must fit under (the same limits, checked again by the store)."""
    shares = Shares(session.budget.shares)
    whole = budget_total(session)
    items, fixed = _items_by_component(session)
    total = max(0, whole - fixed)  # what the components share
    reserved = reserved_by_component(session)
    usage = dict(items)
    for name, held in reserved.items():
        usage[name] = usage.get(name, 0) + held
    used = usage.get(component, 0)
    share_limit = shares.limit(component, total)
    # A component never gets more than its share, nor more than the window has left.
    room_overall = max(0, total - sum(usage.values()))
    limit = min(share_limit, used + room_overall)
    decision = decide(component, tokens, limit=limit, used=used)
    plan = None
    freed = 0
    if decision is None:
        # Plan the cleanup first and apply it only if the allocation then gets
        # something: a denied allocation changes nothing.
        plan = _cleanup_plan(session, component, needed=used + tokens - limit)
        freed = plan.freed if plan is not None else 0
        # what the component itself gives back: more than the session frees when the
        # cleanup's summary lands in another component
        own_freed = _component_freed(session, plan, component) if plan is not None else 0
        limit = min(share_limit, used - own_freed + room_overall + freed)
        decision = decide_after_cleanup(
            component,
            tokens,
            limit=limit,
            used_after_cleanup=used - own_freed,
            freed=own_freed,
            allow_partial=allow_partial,
        )
    else:
        own_freed = 0
    if not decision.granted and fixed >= whole > 0:
        # neither a share nor a cleanup can help: the overhead takes all the room
        decision = replace(
            decision,
            reason=(
                f"the provider's overhead (the system prompt and tools, {fixed:,} tokens) "
                f"fills the {whole:,} tokens the window has for the components: a larger "
                "window (--window, the model's) or fewer tools and MCP servers"
            ),
        )
    caps = [
        Cap(ALLOCATION_SCOPE + component, share_limit, items.get(component, 0) - own_freed),
        Cap(ALLOCATION_SCOPE, total, sum(items.values()) - freed),
    ]
    return decision, plan, caps


def _component_freed(session: SessionState, plan: archive.Compaction, component: str) -> int:
    """Tokens (in the session's units, framing included) ``component`` holds before the
    cleanup ``plan`` less what it holds after."""
    per_token, framing = session.calibration.per_token, session.framing

    def size(items: Sequence[Item]) -> float:
        own = [i for i in items if i.component is not None and i.component.value == component]
        return per_token * sum(i.tokens or 0 for i in own) + framing * len(own)

    return max(0, round(size(session.items) - size(plan.result.items)))


def _grant(
    session: SessionState,
    component: str,
    tokens: int,
    caps: list[Cap],
    key: str,
    ttl: float,
    *,
    revision: int | None,
) -> bool:
    """Hold ``tokens`` for ``component``: a reservation in the store, taken at the
    budget ``revision`` the figures were read at (False when another process took the
    room or moved the figures since), or in memory."""
    if not session.is_stored:
        reservations = session.budget.reservations
        reservations[component] = reservations.get(component, 0) + tokens
        return True
    taken = session.store.reserve(
        session.id, ALLOCATION_SCOPE + component, key, tokens, caps, ttl=ttl, revision=revision
    )
    return taken is not None


def _give_back(session: SessionState, component: str, key: str, tokens: int) -> None:
    if session.is_stored:
        session.store.settle_reservations(session.id, RELEASED, key=key)
    else:
        held = session.budget.reservations.get(component, 0)
        session.budget.reservations[component] = max(0, held - tokens)


def _crowded_out(decision: AllocationDecision) -> AllocationDecision:
    return dataclasses.replace(
        decision,
        granted=0,
        outcome="denied",
        used_after=decision.used_before,
        reason=f"{decision.component}: other processes kept taking the room first: denied; "
        "try again",
    )


def release(session: SessionState, component: str, tokens: int | None = None) -> int:
    """Give back reserved tokens (all of them by default); returns what was released."""
    _check_component(session, component)
    if session.is_stored:
        given = session.store.settle_reservations(
            session.id, RELEASED, scope=ALLOCATION_SCOPE + component, tokens=tokens
        )
        reserved_by_component(session)  # refresh the mirror
        return sum(r.tokens for r in given)
    held = session.budget.reservations.get(component, 0)
    amount = held if tokens is None else max(0, min(held, tokens))
    if amount:
        session.budget.reservations[component] = held - amount
        session.save_budget()
    return amount


def usage_recorded(session: SessionState, grown: int | None = None) -> int:
    """The session's usage arrived: the reservations it settles (allocations, spawns
    asked without a key) are confirmed, up to what the context ``grown`` since the
    previous usage (a usage of a request sent before the grants shows none of them:
    they stay reserved); all of them at the first usage. Returns their tokens."""
    if not session.is_stored or (grown is not None and grown <= 0):
        return 0
    confirmed = session.store.settle_reservations(
        session.id, CONFIRMED, settle=SETTLE_ON_USAGE, tokens=grown
    )
    if confirmed:
        reserved_by_component(session)
    return sum(r.tokens for r in confirmed)


def cleanup(session: SessionState, component: str, needed: int) -> int:
    """Free about ``needed`` tokens of ``component`` through the compaction engine.

    Only that component's items may change (the others are protected); what is removed
    is archived as usual (the session is stored first if it is not). Returns the
    tokens freed (0 when nothing could be).
    """
    plan = _cleanup_plan(session, component, needed)
    if plan is None:
        return 0
    apply_cleanup(session, plan)
    return plan.freed


def _cleanup_plan(session: SessionState, component: str, needed: int) -> archive.Compaction | None:
    if needed <= 0 or not session.items:
        return None
    if not any(i.component and i.component.value == component for i in session.items):
        return None
    target = max(1, session.used_tokens - needed)
    policy = CompactionPolicy(target_tokens=target, keep_first=0, keep_last=1, keep_results=1)

    def protect(item: Item) -> bool:
        return item.component is None or item.component.value != component

    plan = archive.plan(session, policy, protect=protect)
    return plan if plan.result.actions and plan.freed > 0 else None


def apply_cleanup(session: SessionState, plan: archive.Compaction) -> None:
    """Apply a cleanup plan; nothing leaves a context without reaching the archive: the
    session is stored first."""
    if not session.is_stored:
        session.save()
    archive.apply(session, plan)


def report(session: SessionState) -> UtilizationReport:
    """The utilization report, its total the figure every surface shows (plus the
    reservations).

    The provider's overhead is a row of its own, fixed: the components share the rest
    of the window.
    """
    used, fixed = component_used(session)
    return utilization_report(
        Shares(session.budget.shares), budget_total(session), used, fixed=fixed
    )


def adjust(session: SessionState, *, apply: bool = True, sessions: int = 200) -> Adjustment:
    """Adjust the shares from allocation history across stored sessions (dynamic share adjustment).

    Always from the default shares and the whole history, so adjusting twice on the
    same history gives the same shares (no compounding). New sessions start from the
    latest adjusted shares (``learned_shares``).
    """
    store = session.store
    records: list[dict[str, Any]] = []
    for stored in store.list_sessions(limit=sessions):
        records.extend(e.data for e in store.events(stored.id, types=[EventType.ALLOCATION]))
    adjustment = adjust_shares(Shares(dict(DEFAULT_SHARES)), history_from(records))
    if apply:
        shares = dict(adjustment.after.to_dict())
        session.save_budget(lambda state: setattr(state, "shares", shares))
        session.log_event(EventType.SHARES_ADJUSTED, adjustment.to_dict())
    return adjustment


def learned_shares(tracker: Workspace, sessions: int = 20) -> dict[str, float] | None:
    """The shares of the latest ``shares_adjusted`` event among recent sessions."""
    store = tracker.store
    latest: tuple[float, dict[str, float]] | None = None
    for stored in store.list_sessions(limit=sessions):
        for event in store.events(stored.id, types=[EventType.SHARES_ADJUSTED]):
            after = event.data.get("after")
            if isinstance(after, dict) and (latest is None or event.at > latest[0]):
                latest = (event.at, {k: float(v) for k, v in after.items()})
    return latest[1] if latest else None
