"""The spawn gate: may this agent start, with this many tokens, in this window?

A pure decision (BR-010, BR-016): allow when the window stays under the blocked
threshold with the agent's estimate added and the agent stays within its own budget;
allow after compaction when a compaction the caller planned would make room; deny
otherwise, always with a reason a person can act on. The facade gathers the figures
and applies the compaction when it allows after one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

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
            "projected_percent": round(self.projected_percent, 2),
            "freed_by_compaction": self.freed_by_compaction,
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
) -> GateDecision:
    """Decide whether ``agent`` may spawn needing ``estimated_tokens``.

    ``used_after_compaction`` is what the window would hold after the compaction the
    caller could apply (None: no compaction possible or wanted).
    """
    if isinstance(estimated_tokens, bool) or not isinstance(estimated_tokens, int):
        raise ConfigurationError(f"tokens must be a whole number (got {estimated_tokens!r})")
    if estimated_tokens <= 0:
        raise ConfigurationError(f"tokens must be a positive number (got {estimated_tokens})")
    if not agent or not agent.strip():
        raise ConfigurationError("the agent needs a name")
    threshold = int(window * blocked_percent / 100)
    limit = threshold
    if limit_tokens is not None:  # e.g. no room left once reserved output is kept free
        limit = min(limit, limit_tokens)
    projected = used_tokens + estimated_tokens
    percent = 100.0 * projected / window

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
        )

    if agent_budget is not None and agent_used + estimated_tokens > agent_budget:
        return decision(
            DENY,
            f"agent {agent!r} would use {agent_used + estimated_tokens:,} tokens, over its "
            f"budget of {agent_budget:,} ({agent_used:,} used): raise its budget or split "
            "the task",
        )
    if projected < limit:
        return decision(
            ALLOW,
            f"{agent!r} fits: {used_tokens:,} + {estimated_tokens:,} = {projected:,} tokens, "
            f"{math.floor(percent)}% of {window:,} (blocked at {blocked_percent:g}%)",
        )
    if used_after_compaction is not None and used_after_compaction + estimated_tokens < limit:
        after = used_after_compaction + estimated_tokens
        return decision(
            ALLOW_AFTER_COMPACTION,
            f"{agent!r} fits after compaction: {used_tokens:,} → {used_after_compaction:,} "
            f"tokens, then + {estimated_tokens:,} = {after:,} "
            f"({math.floor(100 * after / window)}% of {window:,})",
            freed=used_tokens - used_after_compaction,
            at=after,
        )
    why = (
        f"{used_tokens:,} + {estimated_tokens:,} = {projected:,} tokens would be "
        f"{math.floor(percent)}% of {window:,}, at or over the blocked threshold "
        f"({blocked_percent:g}%"
        + (f"; {limit:,} tokens once the reserved output is kept free" if limit < threshold else "")
        + ")"
    )
    if used_after_compaction is not None:
        why += f"; even compacted to {used_after_compaction:,} it would not fit"
    return decision(DENY, f"denied: {why}. Compact, finish the task, or start a fresh session")
