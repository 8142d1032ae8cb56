"""Dynamic adjustment of component shares from usage history (dynamic share adjustment).

This module owns the rule that moves shares between sessions: a component that ran
out more than ``exhausted_after`` times gains ``step``, one that used less than
``underused_below`` of its allocation on average loses ``step``, and the result is
brought back to a total of 100% with every share inside [``low``, ``high``]. It reads
no store: the facade passes the allocation records it kept (``history_from`` turns
them into per-component figures) and records the ``Adjustment`` it gets back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import ConfigurationError
from .allocation import FULL, OUTCOMES, Shares

# Shares closer than this are the same share: float noise from normalising.
_SAME = 1e-12


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


@dataclass(slots=True, frozen=True)
class ComponentHistory:
    """How a component fared across recorded allocations.

    ``exhaustion_count``: allocations that did not fit in full (cleanup was needed,
    or the grant was partial or denied). ``avg_utilization``: mean of used / limit
    after each allocation, 0–1. ``samples``: how many allocations that is.
    """

    exhaustion_count: int
    avg_utilization: float
    samples: int

    def __post_init__(self) -> None:
        for name in ("exhaustion_count", "samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigurationError(f"{name} must be a whole number ≥ 0, got {value!r}")
        avg = self.avg_utilization
        if isinstance(avg, bool) or not isinstance(avg, int | float) or not 0 <= avg <= 1:
            raise ConfigurationError(f"avg_utilization must be within 0–1, got {avg!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "exhaustion_count": self.exhaustion_count,
            "avg_utilization": self.avg_utilization,
            "samples": self.samples,
        }


def history_from(records: Iterable[Mapping[str, Any]]) -> dict[str, ComponentHistory]:
    """Per-component history from allocation records (``AllocationDecision.to_dict()``).

    Each record needs ``component``, ``outcome``, ``limit`` and ``used_after``; other
    keys are ignored. Utilization of one record is ``used_after / limit``, held within
    0–1 (a component over its limit counts as full; a zero limit counts as full).
    """
    counts: dict[str, list[float]] = {}  # component → [samples, exhaustions, utilization sum]
    for index, record in enumerate(records):
        try:
            component = str(record["component"])
            outcome = record["outcome"]
            limit = record["limit"]
            used_after = record["used_after"]
        except KeyError as exc:
            raise ConfigurationError(
                f"allocation record {index} has no {exc.args[0]!r}: every record needs "
                "component, outcome, limit and used_after"
            ) from exc
        if outcome not in OUTCOMES:
            raise ConfigurationError(
                f"allocation record {index} has outcome {outcome!r}, "
                f"expected one of {', '.join(OUTCOMES)}"
            )
        for name, value in (("limit", limit), ("used_after", used_after)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigurationError(
                    f"allocation record {index}: {name} must be a whole number ≥ 0, got {value!r}"
                )
        utilization = 1.0 if limit == 0 else min(1.0, used_after / limit)
        entry = counts.setdefault(component, [0, 0, 0.0])
        entry[0] += 1
        entry[1] += outcome != FULL
        entry[2] += utilization
    return {
        component: ComponentHistory(
            exhaustion_count=int(exhausted),
            avg_utilization=min(1.0, total / samples),
            samples=int(samples),
        )
        for component, (samples, exhausted, total) in counts.items()
    }


class ShareChange(NamedTuple):
    component: str
    before: float
    after: float
    reason: str


@dataclass(slots=True, frozen=True)
class Adjustment:
    """Shares before and after one adjustment, and why each share moved.

    ``feasible`` is False when no set of shares can both sum to 100% and keep every
    share within the band (more than 1 / low components, or fewer than 1 / high):
    the shares are then made equal (see ``adjust_shares``).
    """

    before: Shares
    after: Shares
    changes: tuple[ShareChange, ...]
    feasible: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "changes": [change._asdict() for change in self.changes],
            "feasible": self.feasible,
        }


def _fit_to_band(values: Mapping[str, float], low: float, high: float) -> dict[str, float]:
    """Scale ``values`` (all within [low, high], low > 0) so they sum to 1, clamped.

    Finds the factor t with Σ clamp(t·v, low, high) = 1. That sum is continuous and
    non-decreasing in t and linear between the breakpoints low/v and high/v, so the
    segment that crosses 1 is found by walking the breakpoints and solved exactly.
    Shares that no bound touches keep their proportions, as plain normalising would.
    """

    def total(t: float) -> float:
        return math.fsum(min(high, max(low, t * v)) for v in values.values())

    breakpoints = sorted({b for v in values.values() for b in (low / v, high / v)})
    previous = 0.0
    for point in breakpoints:
        if total(point) >= 1:
            break
        previous = point
    else:  # unreachable when feasible: past the last breakpoint every share is at high
        point = breakpoints[-1]
    if total(point) == 1 or point == previous:
        t = point
    else:
        middle = (previous + point) / 2
        fixed = free = 0.0
        for v in values.values():
            scaled = middle * v
            if scaled <= low:
                fixed += low
            elif scaled >= high:
                fixed += high
            else:
                free += v
        t = (1 - fixed) / free if free > 0 else point
    return {name: min(high, max(low, t * v)) for name, v in values.items()}


def adjust_shares(
    shares: Shares,
    history: Mapping[str, ComponentHistory],
    *,
    step: float = 0.05,
    low: float = 0.05,
    high: float = 0.50,
    exhausted_after: int = 3,
    underused_below: float = 0.50,
    min_samples: int = 1,
) -> Adjustment:
    """Dynamic share adjustment, with the band kept after normalising.

    1. A component exhausted more than ``exhausted_after`` times gains ``step``,
       capped at ``high``.
    2. A component whose average utilization is under ``underused_below`` loses
       ``step``, floored at ``low``. Both rules apply in turn to a component that
       meets both (they cancel out).
    3. Every share is clamped into [``low``, ``high``] and the shares are scaled to sum
       to 100%. Plain division by the sum (the plain rule's step) can push a share back out
       of the band (0.50 / 0.95 > 0.50), so shares that would leave it are held at the
       bound and the others scaled to fill the rest: the result sums to 1 within 1e-9
       and every share lies in [low, high] (up to float rounding). When nothing needs
       holding this is exactly plain division by the sum.

    The rules read only components with at least ``min_samples`` samples; history
    for components the shares do not list is ignored. When the band cannot be kept
    (n · low > 1 or n · high < 1 for n components) the sum wins: every share becomes
    1 / n, the point closest to the band, and ``Adjustment.feasible`` is False.

    Note that "+5%" is before normalisation: when other shares do not fall to make
    room, the net gain is smaller (0.15 + 0.05 alone normalises to 0.20 / 1.05 ≈ 0.19).

    The worked example of dynamic share adjustment (agent_context exhausted 5 times,
    interaction_buffer at 45%) gives agent_context 0.20 and interaction_buffer 0.20:
    no other component is under 50% or exhausted more than 3 times
    (knowledge_base's 2 exhaustions do not count), and +5% / −5% cancel so the
    normalisation changes nothing; the three other shares stay 0.10, 0.30, 0.20.
    """
    if not 0 < low <= high <= 1:
        raise ConfigurationError(f"the share band needs 0 < low ≤ high ≤ 1, got {low}–{high}")
    if not 0 <= step <= 1:
        raise ConfigurationError(f"step must be a fraction within 0–1, got {step!r}")
    if not 0 <= underused_below <= 1:
        raise ConfigurationError(f"underused_below must be within 0–1, got {underused_below!r}")
    if exhausted_after < 0 or min_samples < 0:
        raise ConfigurationError("exhausted_after and min_samples must be ≥ 0")

    ruled = dict(shares)
    reasons: dict[str, list[str]] = {name: [] for name in ruled}
    considered = {
        name: record
        for name, record in history.items()
        if name in ruled and record.samples >= min_samples
    }
    for name, record in considered.items():
        if record.exhaustion_count > exhausted_after:
            raised = ruled[name] + step
            ruled[name] = min(raised, high)
            capped = f", capped at {_pct(high)}" if raised > high else ""
            reasons[name].append(
                f"exhausted {record.exhaustion_count} times (more than {exhausted_after}): "
                f"+{_pct(step)}{capped}"
            )
    for name, record in considered.items():
        if record.avg_utilization < underused_below:
            lowered = ruled[name] - step
            ruled[name] = max(lowered, low)
            floored = f", floored at {_pct(low)}" if lowered < low else ""
            reasons[name].append(
                f"used {_pct(record.avg_utilization)} on average (under {_pct(underused_below)}): "
                f"−{_pct(step)}{floored}"
            )

    count = len(ruled)
    feasible = count * low <= 1 + _SAME and count * high >= 1 - _SAME
    if feasible:
        final = _fit_to_band({k: min(high, max(low, v)) for k, v in ruled.items()}, low, high)
    else:
        final = dict.fromkeys(ruled, 1 / count)
    plain_total = math.fsum(ruled.values())

    changes = []
    for name, before in shares.items():
        after = final[name]
        why = list(reasons[name])
        if abs(after - ruled[name]) > _SAME:
            plain = ruled[name] / plain_total if plain_total > 0 else 0.0
            if not feasible:
                why.append(
                    f"{count} shares cannot all stay within {_pct(low)}–{_pct(high)} and sum "
                    f"to 100%: set equal at {_pct(after)}"
                )
            elif abs(after - low) <= _SAME and plain < low - _SAME:
                why.append(f"held at the {_pct(low)} floor while normalising to 100%")
            elif abs(after - high) <= _SAME and plain > high + _SAME:
                why.append(f"held at the {_pct(high)} cap while normalising to 100%")
            else:
                why.append("rescaled with the others so the shares sum to 100%")
        if why or abs(after - before) > _SAME:
            changes.append(ShareChange(name, before, after, "; ".join(why) or "unchanged"))
    return Adjustment(before=shares, after=Shares(final), changes=tuple(changes), feasible=feasible)
