"""Status: the one picture of a window that every surface renders.

``build_status`` is a pure function from a few numbers (used tokens, local counts by
dimension, the policy) to a ``Status``. The CLI, the status line, hooks and the API
all print or serve this same value, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

from .level import Level, shown_percent
from .policy import Policy

TYPE_CHECKING = False  # typing costs milliseconds at import: the status line imports this
if TYPE_CHECKING:
    from typing import Any, Self

    from .model import AgentUsage

# Recommended actions by level (shown with the warnings).
RECOMMENDATIONS = {
    Level.NORMAL: "No action needed.",
    Level.WARNING: (
        'Consider compacting soon: preview with "ctxbudget compact --dry-run"; '
        "auto-compaction starts at the critical threshold."
    ),
    Level.CRITICAL: (
        'Compact now: run "ctxbudget compact" (preview with --dry-run), or finish the '
        "current task and start a fresh session."
    ),
    Level.BLOCKED: (
        'New sub-agents are blocked. Compact now with "ctxbudget compact", or raise '
        "the window with --window if the model allows more."
    ),
}


class _Value:
    """Equality and repr by the fields in ``__slots__`` (a dataclass would import
    ``inspect``: a quarter of the status line's first call)."""

    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclasses were

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{self.__class__.__name__}({fields})"

    def replace(self, **changes: Any) -> Self:
        """A copy with the given fields changed."""
        unknown = sorted(set(changes) - set(self.__slots__))
        if unknown:
            raise TypeError(f"{self.__class__.__name__} has no field(s) {', '.join(unknown)}")
        copy = object.__new__(self.__class__)
        for name in self.__slots__:
            object.__setattr__(copy, name, changes.get(name, getattr(self, name)))
        return copy


class Breakdown(_Value):
    """Where the tokens of the window are, by dimension.

    Local counts are scaled by the session's learned per-token correction so they are
    in the provider's units; ``unattributed`` is what the provider reported beyond
    what the transcript shows (system prompt, tool definitions, framing). ``overhead``:
    of ``unattributed``, what the request's recorded shape measures ("system prompt"
    and "tool NAME", Claude Code 2.x transcripts); the rest is unmeasured.
    """

    __slots__ = ("agent", "component", "kind", "overhead", "subagents", "tool", "unattributed")

    def __init__(
        self,
        component: dict[str, int] | None = None,
        kind: dict[str, int] | None = None,
        tool: dict[str, int] | None = None,
        agent: dict[str, int] | None = None,
        unattributed: int = 0,
        subagents: list[AgentUsage] | None = None,
        overhead: dict[str, int] | None = None,
    ) -> None:
        self.component: dict[str, int] = component if component is not None else {}
        self.kind: dict[str, int] = kind if kind is not None else {}
        self.tool: dict[str, int] = tool if tool is not None else {}
        self.agent: dict[str, int] = agent if agent is not None else {}
        self.unattributed = unattributed
        self.subagents: list[AgentUsage] = subagents if subagents is not None else []
        self.overhead: dict[str, int] = overhead if overhead is not None else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": dict(self.component),
            "kind": dict(self.kind),
            "tool": dict(self.tool),
            "agent": dict(self.agent),
            "unattributed": self.unattributed,
            "overhead": dict(self.overhead),
            "subagents": [a.to_dict() for a in self.subagents],
        }


class Status(_Value):
    """The one picture of a window: used and free tokens, the level, the estimates, the
    breakdown. ``overhead_estimated``: the provider's overhead (``breakdown.
    unattributed``) is an estimate from earlier usage, no usage having measured this
    context yet (right after a compaction). ``tokens_per_exchange`` and
    ``seconds_per_exchange``: the typical exchange the estimates divide by (None: too
    little history)."""

    __slots__ = (
        "anchored",
        "breakdown",
        "counter",
        "estimated_exchanges_left",
        "estimated_since_report",
        "eta_seconds",
        "items",
        "level",
        "max_tokens",
        "model",
        "overhead_estimated",
        "percent",
        "recommendation",
        "remaining_tokens",
        "reported_tokens",
        "seconds_per_exchange",
        "session_id",
        "tokens_per_exchange",
        "unknown_records",
        "used_tokens",
    )

    def __init__(
        self,
        used_tokens: int,
        max_tokens: int,
        percent: float,
        remaining_tokens: int,
        level: Level,
        recommendation: str,
        estimated_exchanges_left: int | None,
        breakdown: Breakdown,
        anchored: bool,
        reported_tokens: int | None,
        estimated_since_report: int,
        counter: str,
        model: str | None = None,
        session_id: str | None = None,
        unknown_records: int = 0,
        items: int = 0,
        eta_seconds: float | None = None,
        overhead_estimated: bool = False,
        tokens_per_exchange: int | None = None,
        seconds_per_exchange: float | None = None,
    ) -> None:
        self.used_tokens = used_tokens
        self.max_tokens = max_tokens
        self.percent = percent
        self.remaining_tokens = remaining_tokens
        self.level = level
        self.recommendation = recommendation
        self.estimated_exchanges_left = estimated_exchanges_left
        self.breakdown = breakdown
        self.anchored = anchored
        self.reported_tokens = reported_tokens
        self.estimated_since_report = estimated_since_report
        self.counter = counter
        self.model = model
        self.session_id = session_id
        self.unknown_records = unknown_records
        self.items = items
        self.eta_seconds = eta_seconds
        self.overhead_estimated = overhead_estimated
        self.tokens_per_exchange = tokens_per_exchange
        self.seconds_per_exchange = seconds_per_exchange

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "model": self.model,
            "used_tokens": self.used_tokens,
            "max_tokens": self.max_tokens,
            "percent": shown_percent(self.percent),
            "remaining_tokens": self.remaining_tokens,
            "level": self.level.value,
            "recommendation": self.recommendation,
            "estimated_exchanges_left": self.estimated_exchanges_left,
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
            "tokens_per_exchange": self.tokens_per_exchange,
            "seconds_per_exchange": (
                None if self.seconds_per_exchange is None else round(self.seconds_per_exchange, 1)
            ),
            "overhead_tokens": self.breakdown.unattributed,
            "overhead_estimated": self.overhead_estimated,
            "anchored_on_usage": self.anchored,
            "reported_tokens": self.reported_tokens,
            "estimated_since_report": self.estimated_since_report,
            "counter": self.counter,
            "items": self.items,
            "unknown_records": self.unknown_records,
            "breakdown": self.breakdown.to_dict(),
        }


def build_status(
    *,
    used_tokens: int,
    policy: Policy,
    breakdown: Breakdown,
    anchored: bool,
    reported_tokens: int | None,
    estimated_since_report: int,
    counter: str,
    recent_exchanges: Sequence[int] = (),
    exchange_gaps: Sequence[float] = (),
    model: str | None = None,
    session_id: str | None = None,
    unknown_records: int = 0,
    items: int = 0,
    overhead_estimated: bool = False,
) -> Status:
    """The Status of a window holding ``used_tokens``.

    ``recent_exchanges`` are the sizes of the latest exchanges (provider tokens) and
    ``exchange_gaps`` the seconds between their starts: exchanges left and ETA come
    from them (``ctxbudget.budget.forecast.live_estimate``); none given, both are
    unknown.
    """
    percent = 100.0 * used_tokens / policy.window
    level = policy.level_for(percent)
    remaining = max(0, policy.window - policy.reserved_output - policy.safety_margin - used_tokens)
    if remaining == 0:
        level = Level.BLOCKED  # no room left once the reserves are kept free
    exchanges = eta = per_exchange = seconds = None
    if recent_exchanges:
        # imported only here: the status line, which has no exchanges, never loads it
        from .budget.forecast import live_estimate

        estimate = live_estimate(remaining, recent_exchanges, exchange_gaps)
        exchanges, eta = estimate.exchanges_left, estimate.eta_seconds
        per_exchange, seconds = estimate.tokens_per_exchange, estimate.seconds_per_exchange
    return Status(
        eta_seconds=eta,
        used_tokens=used_tokens,
        max_tokens=policy.window,
        percent=percent,
        remaining_tokens=remaining,
        level=level,
        recommendation=RECOMMENDATIONS[level],
        estimated_exchanges_left=exchanges,
        breakdown=breakdown,
        anchored=anchored,
        reported_tokens=reported_tokens,
        estimated_since_report=estimated_since_report,
        counter=counter,
        model=model,
        session_id=session_id,
        unknown_records=unknown_records,
        items=items,
        overhead_estimated=overhead_estimated,
        tokens_per_exchange=per_exchange,
        seconds_per_exchange=seconds,
    )
