"""Budgets applied to a session: allocation with cleanup, the spawn gate, agents' budgets
(phases and task prediction: ``phasing``).

The decisions are pure (``ctxbudget.budget``); this module gathers a session's
figures, runs cleanups through the compaction engine (so nothing is deleted without
being archived), persists the outcome and logs one event per decision.

Grants of a stored session are reservations in the store (``Store.reserve``): the
limit check and the write are one atomic step, so processes that ask at once never
get more than fits. What counts against a limit is what the session's status says is
used plus the live reservations. An allocation's reservation is confirmed by the
session's next recorded usage; a spawn's (the gate's, keyed by ``tool_use_id``) by
the sub-agent's stop; either expires after ``reservation_ttl()`` if nothing confirms
it. A session only read (not stored) keeps its reservations in memory, as before.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
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
from .budget.gate import (
    ALLOW_AFTER_COMPACTION,
    DENY,
    GateDecision,
    already_reserved,
    decide_gate,
)
from .compaction import CompactionPolicy
from .errors import CompactionError, ConfigurationError
from .model import MAIN_AGENT, Component, EventType, Item
from .session_figures import Workspace
from .session_state import SessionState
from .store import (
    CONFIRMED,
    RELEASED,
    SETTLE_ON_STOP,
    SETTLE_ON_USAGE,
    Cap,
    Reservation,
    Store,
    reservation_ttl,
)

#: Reservation scopes: an allocation's is ``component:<name>``, a spawn's ``gate:<agent>``.
ALLOCATION_SCOPE = "component:"
GATE_SCOPE = "gate:"
# A grant beaten to the room by another process decides again on the new figures;
# each lost race means another grant was made, so few rounds are ever needed.
_ROUNDS = 20


def budget_total(session: SessionState) -> int:
    """The tokens the components share: the window less what the policy keeps free."""
    p = session.policy
    return p.window - p.reserved_output - p.safety_margin


def component_used(session: SessionState) -> dict[str, int]:
    """Tokens each component holds: its items (in provider units, the overhead in
    ``system_context``) plus reservations."""
    used = _items_by_component(session)
    for component, tokens in reserved_by_component(session).items():
        used[component] = used.get(component, 0) + tokens
    return used


def _items_by_component(session: SessionState) -> dict[str, int]:
    """Tokens each component's items hold, the provider's overhead (the system prompt
    and tool definitions: what its usage counts beyond the transcript) charged to
    ``system_context``, so that a grant never counts on room the overhead fills."""
    breakdown = session.status().breakdown
    used = {c: breakdown.component.get(c, 0) for c in session.budget.shares}
    if breakdown.unattributed:
        name = Component.SYSTEM_CONTEXT.value
        used[name] = used.get(name, 0) + breakdown.unattributed
    return used


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
    for _ in range(_ROUNDS):
        decision, plan, caps = _decide_allocation(session, component, tokens, allow_partial)
        if not decision.granted or _grant(session, component, decision.granted, caps, key, lease):
            break
    else:  # pragma: no cover - needs _ROUNDS grants by others within one call
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
    total = budget_total(session)
    items = _items_by_component(session)
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
    session: SessionState, component: str, tokens: int, caps: list[Cap], key: str, ttl: float
) -> bool:
    """Hold ``tokens`` for ``component``: a reservation in the store (False when
    another process took the room since the figures were read), or in memory."""
    if not session.is_stored:
        reservations = session.budget.reservations
        reservations[component] = reservations.get(component, 0) + tokens
        return True
    taken = session.store.reserve(
        session.id, ALLOCATION_SCOPE + component, key, tokens, caps, ttl=ttl
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


def usage_recorded(session: SessionState) -> int:
    """The session's usage arrived: the reservations it settles (allocations, spawns
    asked without a key) are confirmed; returns their tokens."""
    if not session.is_stored:
        return 0
    confirmed = session.store.settle_reservations(session.id, CONFIRMED, settle=SETTLE_ON_USAGE)
    if confirmed:
        reserved_by_component(session)
    return sum(r.tokens for r in confirmed)


def spawn_finished(
    store: Store, session_id: str, agent: str, key: str | None = None
) -> Reservation | None:
    """A sub-agent stopped: its spawn's reservation becomes usage (confirmed). By
    ``key`` (the spawn's ``tool_use_id``) when known, else the agent's oldest live
    spawn reservation. None when there was none (not reserved, or expired)."""
    if key is not None:
        done = store.settle_reservations(session_id, CONFIRMED, key=key)
    else:
        done = store.settle_reservations(
            session_id, CONFIRMED, scope=GATE_SCOPE + agent, settle=SETTLE_ON_STOP, oldest=True
        )
    return done[0] if done else None


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

    The provider's overhead (the system prompt and tool definitions: what its usage
    counts beyond the transcript, ``status().breakdown.unattributed``) is system
    context: it is charged to ``system_context``.
    """
    return utilization_report(
        Shares(session.budget.shares), budget_total(session), component_used(session)
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
        session.budget.shares = dict(adjustment.after.to_dict())
        session.save_budget()
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


def gate(
    session: SessionState,
    agent: str,
    tokens: int,
    *,
    compact: bool = True,
    apply: bool = True,
    key: str | None = None,
    reserve: bool | None = None,
    ttl: float | None = None,
) -> GateDecision:
    """May ``agent`` spawn needing ``tokens``? Compacts first when that makes room.

    When the session has a roster (agents with budgets), an agent outside it is refused
    as unknown: a typo must not slip past its budget.

    An allowed spawn holds a reservation of ``tokens`` in the store (``reserve``:
    default, when the session is stored), taken atomically under the blocked limit
    and the agent's budget, so concurrent gates never allow more than fits. ``key``
    (the spawn's ``tool_use_id``) makes asking twice reserve once; such a reservation
    is confirmed when the sub-agent stops (``spawn_finished``), one without a key by
    the next recorded usage; either expires after ``ttl`` (``reservation_ttl``).
    """
    roster = agent_budgets(session)
    if roster and agent not in roster:
        raise ConfigurationError(
            f"unknown agent {agent!r}: this session budgets {', '.join(sorted(roster))}; "
            "give it a budget first (--agent-budget N)"
        )
    shared = session.is_stored if reserve is None else reserve
    lease = reservation_ttl(ttl) if shared else 0.0
    policy = session.policy
    # the same limit the status uses: the blocked threshold, or no room left once the
    # reserved output and the safety margin are kept free
    limit = min(
        int(policy.window * policy.blocked_percent / 100),
        policy.window - policy.reserved_output - policy.safety_margin,
    )
    used = session.used_tokens
    agent_used = agent_usage(session).get(agent, 0)
    agent_budget = roster.get(agent)
    store = session.store
    plan = None
    for _ in range(_ROUNDS):
        held = store.reservations(session.id, GATE_SCOPE) if shared else []
        mine = [r for r in held if key is not None and r.key == key]
        if mine:
            decision = already_reserved(
                agent=agent,
                reserved_for_key=mine[0].tokens,
                key=mine[0].key,
                used_tokens=used,
                window=policy.window,
                held=sum(r.tokens for r in held),
            )
            session.log_event(EventType.GATE, decision.to_dict())
            return decision
        reserved = sum(r.tokens for r in held)
        agent_reserved = sum(r.tokens for r in held if r.scope == GATE_SCOPE + agent)
        after = None
        plan = None
        if (
            compact
            and isinstance(tokens, int)
            and used + reserved + tokens >= limit
            and session.items
        ):
            try:
                plan = archive.plan(session, CompactionPolicy())
            except CompactionError:  # nothing compactable: decide without it
                plan = None
            if plan is not None and plan.result.actions:
                after = plan.used_after
        decision = decide_gate(
            agent=agent,
            estimated_tokens=tokens,
            used_tokens=used,
            window=policy.window,
            blocked_percent=policy.blocked_percent,
            agent_used=agent_used,
            agent_budget=agent_budget,
            used_after_compaction=after,
            limit_tokens=limit,
            reserved_tokens=reserved,
            agent_reserved=agent_reserved,
        )
        compacting = decision.outcome == ALLOW_AFTER_COMPACTION and plan is not None
        if compacting and not (apply and session.is_stored):
            # Nothing was compacted here (a transcript file, or apply=False): it does not
            # fit now, so the answer is no, with what would make room.
            decision = dataclasses.replace(
                decision,
                outcome=DENY,
                reason=f"denied for now: {decision.reason}; compact first "
                '("ctxbudget compact SESSION", or a stored session and the gate compacts)',
                projected_percent=100.0 * (used + reserved + tokens) / policy.window,
                freed_by_compaction=0,
            )
            compacting = False
        if not decision.allowed or not shared:
            break
        base = after if compacting and after is not None else used
        caps = [Cap(GATE_SCOPE, limit - 1, base)]  # the gate allows strictly under it
        if agent_budget is not None:
            caps.append(Cap(GATE_SCOPE + agent, agent_budget, agent_used))
        lease_key = key or f"gate-{uuid.uuid4().hex}"
        taken = store.reserve(
            session.id,
            GATE_SCOPE + agent,
            lease_key,
            tokens,
            caps,
            ttl=lease,
            settle=SETTLE_ON_STOP if key is not None else SETTLE_ON_USAGE,
        )
        if taken is not None:
            decision = dataclasses.replace(decision, reservation=taken.key)
            break
        # another process took the room since the figures were read: decide again
    if decision.outcome == ALLOW_AFTER_COMPACTION and plan is not None:
        try:
            archive.apply(session, plan)
        except BaseException:
            if decision.reservation is not None:
                store.settle_reservations(session.id, RELEASED, key=decision.reservation)
            raise
    session.log_event(EventType.GATE, decision.to_dict())
    return decision


def agent_usage(session: SessionState) -> dict[str, int]:
    """Tokens per agent: its items in this context and, for sub-agents, their own."""
    status = session.status()
    usage = dict(status.breakdown.agent)
    for sub in status.breakdown.subagents:
        usage[sub.name] = usage.get(sub.name, 0) + sub.context_tokens
    usage.setdefault(MAIN_AGENT, 0)
    return usage


def set_agent_budget(session: SessionState, agent: str, tokens: int) -> None:
    """Give ``agent`` a budget. A stored session keeps it in its own row in the store,
    so agents given budgets by concurrent processes all keep theirs."""
    if tokens <= 0:
        raise ConfigurationError(f"an agent budget must be positive (got {tokens})")
    session.budget.agent_budgets[agent] = tokens
    if session.is_stored:
        session.store.set_agent_budget(session.id, agent, tokens)
    else:
        session.save_budget()


def agent_budgets(session: SessionState) -> dict[str, int]:
    """The session's agent budgets: those of its metadata (older stores, and sessions
    only read) with those stored in their own rows on top; kept in
    ``session.budget.agent_budgets`` too."""
    budgets = session.budget.agent_budgets
    budgets.update(session.store.agent_budgets(session.id))
    return dict(budgets)
