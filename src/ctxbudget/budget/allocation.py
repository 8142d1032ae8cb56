"""Component shares, allocation decisions and the utilization report (the utilization bands).

This module owns the arithmetic of splitting a window between the budget components
and of answering one request for tokens: granted in full, after cleanup, in part, or
denied, always with a sentence that says why. It does no I/O and keeps no state: the
facade reads usage from the store, runs cleanup through the compaction engine when
``decide`` returns ``None``, calls ``decide_after_cleanup``, and records the decision
as an event (``AllocationDecision.to_dict()`` is that event's payload, and what
``adjustment.history_from`` reads back).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from ..errors import ConfigurationError
from ..model import Component

DEFAULT_SHARES: Mapping[str, float] = MappingProxyType(
    {
        Component.SYSTEM_CONTEXT.value: 0.10,
        Component.WORKING_MEMORY.value: 0.30,
        Component.KNOWLEDGE_BASE.value: 0.20,
        Component.AGENT_CONTEXT.value: 0.15,
        Component.INTERACTION_BUFFER.value: 0.25,
    }
)

SUM_TOLERANCE = 1e-9

FULL = "full"
AFTER_CLEANUP = "after_cleanup"
PARTIAL = "partial"
DENIED = "denied"
OUTCOMES = (FULL, AFTER_CLEANUP, PARTIAL, DENIED)

_HINT = "raise its share or archive what it no longer needs"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_count(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"{name} must be a whole number of tokens ≥ 0, got {value!r}")
    return value


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


@dataclass(slots=True, frozen=True)
class Shares(Mapping[str, float]):
    """The fraction of the window each component may use; the fractions sum to 1.

    Reads like a read-only mapping (``shares["working_memory"]``, ``dict(shares)``).
    Keys are component names (a ``Component`` works as a key too). Validated on
    construction: at least one component, every share a number within 0–1, the sum 1
    within ``SUM_TOLERANCE``. The stored fractions are divided by their sum, so the
    limits never add up to more than the total because of rounding.
    """

    fractions: Mapping[str, float]

    def __post_init__(self) -> None:
        raw = dict(self.fractions)
        if not raw:
            raise ConfigurationError("shares need at least one component")
        for name, share in raw.items():
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"a component name must be a non-empty text: {name!r}")
            if not _is_number(share) or not math.isfinite(share) or not 0 <= share <= 1:
                raise ConfigurationError(
                    f"the share of {name} must be a fraction within 0–1, got {share!r}"
                )
        total = math.fsum(raw.values())
        if abs(total - 1) > SUM_TOLERANCE:
            listed = ", ".join(f"{name} {_percent(share)}" for name, share in raw.items())
            raise ConfigurationError(
                f"component shares must sum to 100%, these sum to {_percent(total)} "
                f"({listed}): adjust them so they add up to 100%"
            )
        cleaned = {str(name): min(1.0, float(share) / total) for name, share in raw.items()}
        object.__setattr__(self, "fractions", MappingProxyType(cleaned))

    @classmethod
    def default(cls) -> Shares:
        """The default allocation shares: 10 / 30 / 20 / 15 / 25 %."""
        return cls(DEFAULT_SHARES)

    @classmethod
    def from_percentages(cls, percentages: Mapping[str, float]) -> Shares:
        """``{"working_memory": 30, ...}``: percentages that sum to 100."""
        for name, value in percentages.items():
            if not _is_number(value) or not math.isfinite(value):
                raise ConfigurationError(f"the share of {name} must be a percentage: {value!r}")
        total = math.fsum(percentages.values())
        if abs(total - 100) > SUM_TOLERANCE * 100:
            raise ConfigurationError(
                f"component percentages must sum to 100, these sum to {total:g}"
            )
        return cls({name: value / 100 for name, value in percentages.items()})

    def limit(self, component: str, total_tokens: int) -> int:
        """Tokens ``component`` may use out of ``total_tokens`` (rounded down)."""
        _check_count("total_tokens", total_tokens)
        share = self.fractions.get(str(component))
        if share is None:
            known = ", ".join(self.fractions)
            raise ConfigurationError(f"unknown component {component!r}: the shares cover {known}")
        # Rounding to 6 places first keeps 200,000 × 0.15 at 30,000, not 29,999.
        return math.floor(round(total_tokens * share, 6))

    def to_dict(self) -> dict[str, float]:
        return dict(self.fractions)

    def __getitem__(self, component: str) -> float:
        return self.fractions[str(component)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.fractions)

    def __len__(self) -> int:
        return len(self.fractions)

    def __hash__(self) -> int:
        return hash(tuple(self.fractions.items()))


# --- decisions ---------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class AllocationDecision:
    """The answer to one request for tokens.

    ``used_before`` is the component's usage when the grant is made (after any
    cleanup); its usage before cleanup was ``used_before + freed_by_cleanup``.
    ``used_after = used_before + granted``, so a denial leaves usage as it was.
    """

    component: str
    requested: int
    granted: int
    outcome: str
    reason: str
    limit: int
    used_before: int
    used_after: int
    freed_by_cleanup: int = 0

    @property
    def available_after(self) -> int:
        """Tokens the component still has once this grant is made."""
        return max(0, self.limit - self.used_after)

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "requested": self.requested,
            "granted": self.granted,
            "outcome": self.outcome,
            "reason": self.reason,
            "limit": self.limit,
            "used_before": self.used_before,
            "used_after": self.used_after,
            "freed_by_cleanup": self.freed_by_cleanup,
        }


def _check_request(requested: object) -> int:
    if not isinstance(requested, int) or isinstance(requested, bool) or requested <= 0:
        raise ConfigurationError(f"tokens must be a positive number, got {requested!r}")
    return requested


def decide(component: str, requested: int, *, limit: int, used: int) -> AllocationDecision | None:
    """Grant ``requested`` tokens in full when they fit; ``None`` when cleanup is needed.

    On ``None`` the caller runs the component's cleanup and then asks
    ``decide_after_cleanup`` with the usage that remains and the tokens freed.
    """
    _check_request(requested)
    _check_count("limit", limit)
    _check_count("used", used)
    if used + requested > limit:
        return None
    name = str(component)
    left = limit - used - requested
    return AllocationDecision(
        component=name,
        requested=requested,
        granted=requested,
        outcome=FULL,
        reason=(
            f"{name} had {limit - used:,} of {limit:,} tokens left: granted all "
            f"{requested:,} requested, {left:,} left"
        ),
        limit=limit,
        used_before=used,
        used_after=used + requested,
    )


def decide_after_cleanup(
    component: str,
    requested: int,
    *,
    limit: int,
    used_after_cleanup: int,
    freed: int,
    allow_partial: bool = True,
) -> AllocationDecision:
    """Grant after cleanup: in full if it now fits, else what is left, else nothing.

    With ``allow_partial=False`` a request that does not fit whole is denied.
    """
    _check_request(requested)
    _check_count("limit", limit)
    used = _check_count("used_after_cleanup", used_after_cleanup)
    _check_count("freed", freed)
    name = str(component)
    available = max(0, limit - used)
    situation = f"{name} has {available:,} of {limit:,} tokens left after cleanup freed {freed:,}"
    if requested <= available:
        outcome, granted = AFTER_CLEANUP, requested
        reason = f"{situation}: granted all {requested:,} requested"
    elif available > 0 and allow_partial:
        outcome, granted = PARTIAL, available
        reason = f"{situation}: granted {available:,} of {requested:,} requested; {_HINT}"
    elif available > 0:
        outcome, granted = DENIED, 0
        reason = (
            f"{situation}, fewer than the {requested:,} requested and partial grants are "
            f"off: denied; {_HINT}"
        )
    else:
        outcome, granted = DENIED, 0
        reason = (
            f"{name} is full ({used:,} of {limit:,} tokens used) even after cleanup freed "
            f"{freed:,}: denied {requested:,} requested; {_HINT}"
        )
    return AllocationDecision(
        component=name,
        requested=requested,
        granted=granted,
        outcome=outcome,
        reason=reason,
        limit=limit,
        used_before=used,
        used_after=used + granted,
        freed_by_cleanup=freed,
    )


# --- utilization report ------------------------------------------------------------


class UtilizationStatus(StrEnum):
    """The utilization bands of one component's use of its allocation."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    CRITICAL = "critical"


#: The report's row of the fixed tokens (``UtilizationReport.fixed_tokens``)
FIXED_LABEL = "provider overhead"


def utilization_status(percent: float) -> UtilizationStatus:
    """≥ 90 critical, ≥ 75 high, ≥ 50 moderate, else low (the utilization bands)."""
    if percent >= 90:
        return UtilizationStatus.CRITICAL
    if percent >= 75:
        return UtilizationStatus.HIGH
    if percent >= 50:
        return UtilizationStatus.MODERATE
    return UtilizationStatus.LOW


def _utilization(used: int, allocated: int) -> float:
    # A component with nothing allocated that still holds tokens is wholly over budget.
    if allocated <= 0:
        return 0.0 if used <= 0 else 100.0
    return used / allocated * 100


def _bar(percent: float, width: int = 10) -> str:
    # Same cells as ctxbudget.render.bar: a cell fills as soon as use reaches into it.
    filled = min(width, max(0, math.ceil(percent * width / 100 - 1e-9)))
    return "█" * filled + "░" * (width - filled)


@dataclass(slots=True, frozen=True)
class ComponentUtilization:
    component: str
    share: float
    allocated_tokens: int
    used_tokens: int
    available_tokens: int
    utilization_percent: float
    status: UtilizationStatus

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "share": self.share,
            "allocated_tokens": self.allocated_tokens,
            "used_tokens": self.used_tokens,
            "available_tokens": self.available_tokens,
            "utilization_percent": self.utilization_percent,
            "status": self.status.value,
        }


@dataclass(slots=True, frozen=True)
class UtilizationReport:
    """Per component and overall use of the window (the utilization report).

    ``available_tokens`` is never negative: a component over its allocation shows 0
    available and more than 100%. ``fixed_tokens`` is what the provider adds that no
    component holds and nothing can shrink (the system prompt and tool definitions a
    usage counts beyond the items): it is in ``total_used``, and the components share
    the rest of ``total_budget``.
    """

    components: tuple[ComponentUtilization, ...]
    total_budget: int
    total_used: int
    total_available: int
    utilization_percent: float
    fixed_tokens: int = 0

    def component(self, name: str) -> ComponentUtilization:
        for row in self.components:
            if row.component == str(name):
                return row
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "components": {row.component: row.to_dict() for row in self.components},
            "overall": {
                "total_budget": self.total_budget,
                "fixed_tokens": self.fixed_tokens,
                "shared_tokens": max(0, self.total_budget - self.fixed_tokens),
                "total_used": self.total_used,
                "total_available": self.total_available,
                "utilization_percent": self.utilization_percent,
            },
        }

    def render(self) -> str:
        header = ("component", "allocated", "used", "available", "%", "", "status")
        rows = [
            (
                row.component,
                f"{row.allocated_tokens:,}",
                f"{row.used_tokens:,}",
                f"{row.available_tokens:,}",
                f"{math.floor(row.utilization_percent)}%",
                _bar(row.utilization_percent),
                row.status.value,
            )
            for row in self.components
        ]
        sized = [header, *rows]
        if self.fixed_tokens:
            fixed = f"{self.fixed_tokens:,}"
            sized.append((FIXED_LABEL, fixed, fixed, "", "", "", "fixed"))
        widths = [max(len(line[i]) for line in sized) for i in range(len(header))]
        # Names and words left, numbers right.
        align = ("<", ">", ">", ">", ">", "<", "<")

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(
                f"{cell:{a}{w}}" for cell, a, w in zip(cells, align, widths, strict=True)
            ).rstrip()

        out = [line(header), "  ".join("─" * w for w in widths)]
        out.extend(line(row) for row in rows)
        if self.fixed_tokens:
            fixed = f"{self.fixed_tokens:,}"
            out.append(line((FIXED_LABEL, fixed, fixed, "", "", "", "fixed")))
        out.append(
            f"overall: {self.total_used:,} / {self.total_budget:,} used "
            f"({math.floor(self.utilization_percent)}%), {self.total_available:,} available"
        )
        return "\n".join(out)


def utilization_report(
    shares: Shares, total_tokens: int, used: Mapping[str, int], *, fixed: int = 0
) -> UtilizationReport:
    """How much of its allocation each component uses, and of the whole window.

    Components are listed in the order of ``shares``; a component that holds tokens
    but has no share is listed after them with nothing allocated. ``fixed`` tokens
    (the provider's overhead) count in the overall use; the components share the
    rest of ``total_tokens``.
    """
    _check_count("total_tokens", total_tokens)
    _check_count("fixed tokens", fixed)
    usage = {str(name): _check_count(f"used tokens of {name}", n) for name, n in used.items()}
    names = [*shares, *(name for name in usage if name not in shares.fractions)]
    shared = max(0, total_tokens - fixed)
    rows = []
    for name in names:
        allocated = shares.limit(name, shared) if name in shares.fractions else 0
        used_tokens = usage.get(name, 0)
        percent = _utilization(used_tokens, allocated)
        rows.append(
            ComponentUtilization(
                component=name,
                share=shares.fractions.get(name, 0.0),
                allocated_tokens=allocated,
                used_tokens=used_tokens,
                available_tokens=max(0, allocated - used_tokens),
                utilization_percent=percent,
                status=utilization_status(percent),
            )
        )
    total_used = sum(usage.values()) + fixed
    return UtilizationReport(
        components=tuple(rows),
        total_budget=total_tokens,
        total_used=total_used,
        total_available=max(0, total_tokens - total_used),
        utilization_percent=_utilization(total_used, total_tokens),
        fixed_tokens=fixed,
    )
