"""The spawn gate: may this agent start, with this many tokens, in this window?

A pure decision (BR-010, BR-016): allow when the window stays under the blocked
threshold with the agent's estimate added (and the tokens other spawns hold reserved:
``reserved_tokens``) and the agent stays within its own budget (its reservations too);
allow after compaction when a compaction the caller planned would make room; deny
otherwise, always with a reason a person can act on. The facade gathers the figures
and applies the compaction when it allows after one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..level import shown_percent, whole_percent
from ..policy import check_within_window

ALLOW = "allow"
ALLOW_AFTER_COMPACTION = "allow_after_compaction"
DENY = "deny"


@dataclass(slots=True, frozen=True)
class GateDecision:
    agent: str
    estimated_tokens: int
    outcome: str
    reason: str
    used_tokens: int
    window: int
    projected_percent: float
    freed_by_compaction: int = 0
    #: tokens other spawns held reserved when this was decided (counted in the projection)
    reserved_tokens: int = 0
    #: the key of the reservation this allowance holds (None: nothing reserved)
    reservation: str | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome != DENY

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "estimated_tokens": self.estimated_tokens,
            "outcome": self.outcome,
            "allowed": self.allowed,
            "reason": self.reason,
            "used_tokens": self.used_tokens,
            "window": self.window,
            "projected_percent": shown_percent(self.projected_percent),
            "freed_by_compaction": self.freed_by_compaction,
            "reserved_tokens": self.reserved_tokens,
            "reservation": self.reservation,
        }


def decide_gate(
    *,
    agent: str,
    estimated_tokens: int,
    used_tokens: int,
    window: int,
    blocked_percent: float,
    agent_used: int = 0,
    agent_budget: int | None = None,
    used_after_compaction: int | None = None,
    limit_tokens: int | None = None,
    reserved_tokens: int = 0,
    agent_reserved: int = 0,
) -> GateDecision:
    """Decide whether ``agent`` may spawn needing ``estimated_tokens``.

    ``used_after_compaction`` is what the window would hold after the compaction the
    caller could apply (None: no compaction possible or wanted). ``reserved_tokens``
    are held by spawns allowed but not yet finished (their reservations), of which
    ``agent_reserved`` by this agent: both count as used.
    """
    if isinstance(estimated_tokens, bool) or not isinstance(estimated_tokens, int):
        raise ConfigurationError(f"tokens must be a whole number (got {estimated_tokens!r})")
    if estimated_tokens <= 0:
        raise ConfigurationError(f"tokens must be a positive number (got {estimated_tokens})")
    check_within_window(estimated_tokens, "tokens")
    if not agent or not agent.strip():
        raise ConfigurationError("the agent needs a name")
    threshold = int(window * blocked_percent / 100)
    limit = threshold
    if limit_tokens is not None:  # e.g. no room left once reserved output is kept free
        limit = min(limit, limit_tokens)
    held = max(0, reserved_tokens)
    projected = used_tokens + held + estimated_tokens
    percent = 100.0 * projected / window
    # "used + estimated", or "used + reserved + estimated" when spawns hold some
    plus = f"{used_tokens:,} + {held:,} reserved + " if held else f"{used_tokens:,} + "
    # where the spawns stop: the blocked threshold, or less when output is kept free
    bound = f"blocked at {blocked_percent:g}%" + (
        f"; {limit:,} tokens once the reserved output is kept free" if limit < threshold else ""
    )

    def decision(outcome: str, reason: str, freed: int = 0, at: int = projected) -> GateDecision:
        return GateDecision(
            agent=agent,
            estimated_tokens=estimated_tokens,
            outcome=outcome,
            reason=reason,
            used_tokens=used_tokens,
            window=window,
            projected_percent=100.0 * at / window,
            freed_by_compaction=freed,
            reserved_tokens=held,
        )

    agent_held = agent_used + max(0, agent_reserved)
    if agent_budget is not None and agent_held + estimated_tokens > agent_budget:
        held_note = f", {agent_reserved:,} reserved" if agent_reserved > 0 else ""
        return decision(
            DENY,
            f"agent {agent!r} would use {agent_held + estimated_tokens:,} tokens, over its "
            f"budget of {agent_budget:,} ({agent_used:,} used{held_note}): raise its budget "
            "or split the task",
        )
    if projected < limit:
        return decision(
            ALLOW,
            f"{agent!r} fits: {plus}{estimated_tokens:,} = {projected:,} tokens, "
            f"{whole_percent(percent)}% of {window:,} ({bound})",
        )
    if (
        used_after_compaction is not None
        and used_after_compaction + held + estimated_tokens < limit
    ):
        after = used_after_compaction + held + estimated_tokens
        then = f"then + {held:,} reserved + " if held else "then + "
        return decision(
            ALLOW_AFTER_COMPACTION,
            f"{agent!r} fits after compaction: {used_tokens:,} → {used_after_compaction:,} "
            f"tokens, {then}{estimated_tokens:,} = {after:,} "
            f"({whole_percent(100 * after / window)}% of {window:,}); now {plus}"
            f"{estimated_tokens:,} = {projected:,} would not fit ({bound})",
            freed=used_tokens - used_after_compaction,
            at=after,
        )
    why = (
        f"{plus}{estimated_tokens:,} = {projected:,} tokens would be "
        f"{whole_percent(percent)}% of {window:,}, at or over the blocked threshold "
        f"({bound.removeprefix('blocked at ')})"
    )
    if used_after_compaction is not None:
        why += f"; even compacted to {used_after_compaction:,} it would not fit"
    return decision(DENY, f"denied: {why}. Compact, finish the task, or start a fresh session")


def already_reserved(
    *, agent: str, reserved_for_key: int, key: str, used_tokens: int, window: int, held: int
) -> GateDecision:
    """The answer to a spawn asked about again (an MCP ``gate`` and then the PreToolUse
    hook for the same ``tool_use_id``): it holds its reservation already, so it is
    allowed, and nothing is reserved twice. ``held``: every live reservation, its own
    included."""
    return GateDecision(
        agent=agent,
        estimated_tokens=reserved_for_key,
        outcome=ALLOW,
        reason=f"{agent!r} already holds {reserved_for_key:,} reserved tokens for {key}: "
        "allowed once, not reserved twice",
        used_tokens=used_tokens,
        window=window,
        projected_percent=100.0 * (used_tokens + held) / window,
        reserved_tokens=held - reserved_for_key,
        reservation=key,
    )
