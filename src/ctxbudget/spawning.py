"""The spawn gate and agents' budgets, applied to a session: may this sub-agent start
now, needing so many tokens, under the window's blocked limit and its agent's budget?

The decision is pure (``budget.gate``); this module gathers the session's figures,
compacts first when that makes room (through ``archive``: nothing deleted without being
archived), and holds an allowed spawn's tokens as a reservation in the store
(``Store.reserve``: the limit check and the write are one atomic step), so gates asked
at once by many processes never allow more than fits. The step is taken at the
``Store.budget_revision`` read before the figures it checks, so a spawn confirmed or a
budget changed meanwhile sends the gate back to decide again. A spawn's reservation is
confirmed by the sub-agent's stop (``spawn_finished``, with its usage recorded in the
same transaction), or by the session's next usage when it was asked without a key; it
expires after ``reservation_ttl()``.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from . import archive
from .budget.gate import ALLOW_AFTER_COMPACTION, DENY, GateDecision, already_reserved, decide_gate
from .budgeting import GRANT_ROUNDS, budget_revision
from .compaction import CompactionPolicy
from .errors import (
    CompactionError,
    ConfigurationError,
    SessionNotFoundError,
    StaleCompactionError,
    StoreError,
)
from .model import MAIN_AGENT, EventType
from .policy import check_within_window
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

__all__ = [
    "GATE_SCOPE",
    "agent_budgets",
    "agent_usage",
    "gate",
    "set_agent_budget",
    "spawn_finished",
]

#: A spawn's reservation scope: ``gate:<agent>``.
GATE_SCOPE = "gate:"


def _agent_scope(agent: str) -> str:
    """The reservation scope of ``agent``'s spawns. A scope ending in ':' covers those
    under it, so an agent named "qa:" is kept apart from "qa:unit" with a mark no name
    is typed with."""
    return GATE_SCOPE + agent + ("\x1f" if agent.endswith(":") else "")


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

    When another process changes the session while a compaction that makes room is
    applied, the gate decides again on what the session holds then.
    """
    options: dict[str, Any] = dict(apply=apply, key=key, reserve=reserve, ttl=ttl)
    for _ in range(GRANT_ROUNDS):
        try:
            return _gate_once(session, agent, tokens, compact=compact, **options)
        except StaleCompactionError:
            session.reload()  # another process compacted or added to it meanwhile
    return _gate_once(session, agent, tokens, compact=False, **options)  # no race left


def _gate_once(
    session: SessionState,
    agent: str,
    tokens: int,
    *,
    compact: bool,
    apply: bool,
    key: str | None,
    reserve: bool | None,
    ttl: float | None,
) -> GateDecision:
    """One decision of ``gate``: on the figures as read in each round; raises
    StaleCompactionError when the compaction it applies finds the session changed.

    A round reads the store's budget revision first, then its figures (the agent's
    budget, what is used, what is held), and reserves at that revision: a spawn
    confirmed or a budget set by another process in between makes the store refuse,
    and the next round decides on the figures as they are then."""
    shared = session.is_stored if reserve is None else reserve
    lease = reservation_ttl(ttl) if shared else 0.0
    policy = session.policy
    # the same limit the status uses: the blocked threshold, or no room left once the
    # reserved output and the safety margin are kept free
    limit = min(
        int(policy.window * policy.blocked_percent / 100),
        policy.window - policy.reserved_output - policy.safety_margin,
    )
    store = session.store
    plan = None
    revision: int | None = None
    for _ in range(GRANT_ROUNDS):
        revision = budget_revision(session, revision) if shared else None
        agent_budget = _agent_budget(session, agent)
        used = session.used_tokens
        agent_used = agent_usage(session).get(agent, 0)
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
        agent_reserved = sum(r.tokens for r in held if r.scope == _agent_scope(agent))
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
            caps.append(Cap(_agent_scope(agent), agent_budget, agent_used))
        lease_key = key or f"gate-{uuid.uuid4().hex}"
        taken = store.reserve(
            session.id,
            _agent_scope(agent),
            lease_key,
            tokens,
            caps,
            ttl=lease,
            settle=SETTLE_ON_STOP if key is not None else SETTLE_ON_USAGE,
            revision=revision,
        )
        if taken is not None:
            decision = dataclasses.replace(decision, reservation=taken.key)
            break
        # another process took the room, confirmed a spawn or set a budget since the
        # figures were read: decide again
    if shared and decision.allowed and decision.reservation is None:
        # every round lost the room to other processes: no reservation, no spawn
        decision = dataclasses.replace(
            decision,
            outcome=DENY,
            reason="denied: other spawns kept taking the room while this one was decided; "
            "ask again",
        )
        plan = None
    if decision.outcome == ALLOW_AFTER_COMPACTION and plan is not None:
        try:
            archive.apply(session, plan)
        except BaseException:
            if decision.reservation is not None:
                store.settle_reservations(session.id, RELEASED, key=decision.reservation)
            raise
    session.log_event(EventType.GATE, decision.to_dict())
    return decision


def _agent_budget(session: SessionState, agent: str) -> int | None:
    """``agent``'s budget (None: it has none); an agent outside the session's roster
    is refused as unknown, so a typo never slips past its budget."""
    roster = agent_budgets(session)
    if roster and agent not in roster:
        raise ConfigurationError(
            f"unknown agent {agent!r}: this session budgets {', '.join(sorted(roster))}; "
            "give it a budget first (set_agent_budget, or --agent-budget N)"
        )
    return roster.get(agent)


def agent_usage(session: SessionState) -> dict[str, int]:
    """Tokens per agent: its items in this context and, for sub-agents, their own (as
    the transcript's sub-agent files say, or as SubagentStop recorded them, whichever
    is more: a hook's session reads no breakdown, and once a spawn is confirmed its
    reservation no longer counts)."""
    status = session.status()
    usage = dict(status.breakdown.agent)
    for sub in status.breakdown.subagents:
        usage[sub.name] = usage.get(sub.name, 0) + sub.context_tokens
    for name, tokens in _recorded_subagents(session).items():
        usage[name] = max(usage.get(name, 0), tokens)
    usage.setdefault(MAIN_AGENT, 0)
    return usage


def _recorded_subagents(session: SessionState) -> dict[str, int]:
    """Each sub-agent's own context as its ``subagent_usage`` events recorded it: the
    last of each agent id, summed per name. None recorded, or no stored session: {}."""
    try:
        events = session.store.events(session.id, types=[EventType.SUBAGENT_USAGE.value])
    except (SessionNotFoundError, StoreError):
        return {}
    last: dict[str, tuple[str, int]] = {}
    for event in events:
        data = event.data
        name, tokens = data.get("name"), data.get("context_tokens")
        if isinstance(name, str) and isinstance(tokens, int) and not isinstance(tokens, bool):
            last[str(data.get("agent_id") or event.id)] = (name, tokens)
    totals: dict[str, int] = {}
    for name, tokens in last.values():
        totals[name] = totals.get(name, 0) + tokens
    return totals


def set_agent_budget(session: SessionState, agent: str, tokens: int) -> None:
    """Give ``agent`` a budget. A stored session keeps it in its own row in the store,
    so agents given budgets by concurrent processes all keep theirs."""
    if not isinstance(agent, str) or not agent:
        raise ConfigurationError(f"an agent is named by a text (got {agent!r})")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens <= 0:
        raise ConfigurationError(f"an agent budget must be a positive number (got {tokens!r})")
    check_within_window(tokens, "an agent budget")
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


def spawn_finished(
    store: Store,
    session_id: str,
    agent: str | None = None,
    key: str | None = None,
    *,
    ran: bool = True,
) -> Reservation | None:
    """A sub-agent stopped: its spawn's reservation becomes usage (confirmed). By
    ``key`` (the spawn's ``tool_use_id``) when known, else ``agent``'s oldest live
    spawn reservation (one of the two is given). None when there was none (not
    reserved, or expired). ``ran`` False: what was allowed never ran (a request that
    failed): its room is given back (released). Record the usage it stands for first,
    or in the same transaction: a gate in between would count the spawn's tokens
    nowhere."""
    if key is not None:
        done = store.settle_reservations(session_id, CONFIRMED if ran else RELEASED, key=key)
    elif agent is None:
        raise ConfigurationError("spawn_finished needs the spawn's key or its agent")
    else:
        done = store.settle_reservations(
            session_id, CONFIRMED, scope=_agent_scope(agent), settle=SETTLE_ON_STOP, oldest=True
        )
    return done[0] if done else None
