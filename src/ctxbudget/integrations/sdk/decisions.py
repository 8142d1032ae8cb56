"""The SDK middleware's decisions about one request, as pure functions of the session.

Owns the room kept for the answer (``max_tokens``), the level and status of the
window with that room kept, and the words of a refusal. It changes nothing and does
no I/O; the lifecycle (``core``) and the compaction (``compacting``) ask it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...level import Level, whole_percent
from ...status import RECOMMENDATIONS, Status
from .records import ANTHROPIC

if TYPE_CHECKING:
    from ...session import Session

__all__ = ["blocked_message", "level", "max_tokens", "request_status"]


def max_tokens(provider: str, kwargs: Mapping[str, Any]) -> int:
    """The room the request asks for its answer (0: none asked)."""
    names = ("max_tokens",) if provider == ANTHROPIC else ("max_completion_tokens", "max_tokens")
    for name in names:
        value = kwargs.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def level(session: Session, used: int, reserve: int) -> Level:
    policy = session.policy
    if policy.window - reserve - policy.safety_margin - used <= 0:
        return Level.BLOCKED
    return policy.level_for(100.0 * used / policy.window)


def request_status(session: Session, reserve: int) -> Status:
    """``session.status()`` with ``reserve`` (the request's ``max_tokens``, at least the
    policy's ``reserved_output``) kept free for the answer."""
    status = session.status()
    policy = session.policy
    if reserve <= policy.reserved_output:
        return status
    remaining = max(0, policy.window - reserve - policy.safety_margin - status.used_tokens)
    at = level(session, status.used_tokens, reserve)
    scale = remaining / status.remaining_tokens if status.remaining_tokens else 0.0
    exchanges = status.estimated_exchanges_left
    eta = status.eta_seconds
    return status.replace(
        remaining_tokens=remaining,
        level=at,
        recommendation=RECOMMENDATIONS[at],
        estimated_exchanges_left=None if exchanges is None else int(exchanges * scale),
        eta_seconds=None if eta is None else eta * scale,
    )


def blocked_message(session: Session, status: Status, reserve: int, note: str) -> str:
    policy = session.policy
    used, window = status.used_tokens, policy.window
    margin = policy.safety_margin
    percent = whole_percent(status.percent)  # 94% is never shown when blocked
    if used + reserve + margin >= window:
        parts = [f"{used:,} tokens of context"]
        if reserve:
            parts.append(f"{reserve:,} kept for the answer (max_tokens)")
        if margin:
            parts.append(f"a safety margin of {margin:,}")
        why = (
            f"{' + '.join(parts)} = {used + reserve + margin:,} tokens, more than the "
            f"{window:,}-token window holds"
        )
    else:
        why = (
            f"its context is {used:,} tokens, {percent}% of the {window:,}-token window: "
            f"at the blocked level ({policy.blocked_percent:g}%)"
        )
    advice = "start a fresh conversation or drop old messages"
    if reserve:
        advice += ", lower max_tokens"
    return (
        f"ctxbudget did not send this request: {why}. {note} Nothing was sent. To go on, "
        f"{advice}, or raise the window (wrap(..., policy=Policy(window=...))) if the "
        "model allows more."
    ).replace("  ", " ")
