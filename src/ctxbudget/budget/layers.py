"""The layered-context model: what to prune when a phase completes, and phase budgets.

Items carry a layer: permanent (kept throughout), phase (kept while its phase runs),
metadata (short extracts kept in place of full content) and transient (full agent
reports, diagnostics: pruned once their metadata is out). Pruning policies decide
when (the phase pruning policies):

- aggressive: prune transient content of any completed phase and the phase-scoped
  content of the completed phase, right away;
- moderate: when a phase completes, prune the full content of the phase before it
  (keep the one just completed for reference), and its phase-scoped content;
- minimal: prune nothing until the workflow completes, except in an emergency.

Emergency pruning (the layered-context model's 95% threshold) drops every transient and phase item
not of the current phase. Everything pruned goes to the archive (the facade applies
the plan as a new context version). Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..errors import ConfigurationError
from ..level import shown_percent
from ..model import Item, Kind, Layer, Role

# The context report's thresholds after each phase (the layered-context model's alerts).
PHASE_WARNING_PERCENT = 75.0
PHASE_EMERGENCY_PERCENT = 95.0


class Pruning(StrEnum):
    AGGRESSIVE = "aggressive"
    MODERATE = "moderate"
    MINIMAL = "minimal"


def _prunable(item: Item) -> bool:
    return (
        not item.pinned
        and item.layer in (Layer.PHASE, Layer.TRANSIENT)
        and item.kind not in (Kind.SYSTEM_PROMPT, Kind.INSTRUCTION)
    )


def _whole_pairs(items: Sequence[Item], chosen: set[int]) -> list[int]:
    """Widen ``chosen`` so a tool call and its result go together, or neither does."""
    by_pair: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        if item.pair_id and (item.kind is Kind.TOOL_CALL or item.role is Role.TOOL):
            by_pair.setdefault(item.pair_id, []).append(i)
    result = set(chosen)
    for members in by_pair.values():
        picked = [i for i in members if i in result]
        if not picked:
            continue
        if all(_prunable(items[i]) or items[i].kind is Kind.TOOL_CALL for i in members):
            result.update(members)  # the call goes with its pruned result
        else:
            result.difference_update(members)  # a protected half keeps the pair
    return sorted(result)


def prune_on_phase_complete(
    items: Sequence[Item],
    completed: str,
    phases: Sequence[str],
    pruning: Pruning | str,
) -> list[int]:
    """Indices of items to prune now that ``completed`` is done.

    ``phases`` lists the phases in the order they ran (``completed`` among them).
    """
    pruning = Pruning(pruning)
    if pruning is Pruning.MINIMAL:
        return []
    done = list(phases[: phases.index(completed) + 1]) if completed in phases else [completed]
    # moderate keeps the phase just completed, for reference by the next one
    scope = set(done) if pruning is Pruning.AGGRESSIVE else set(done[:-1])
    chosen: set[int] = set()
    for i, item in enumerate(items):
        if not _prunable(item) or item.phase is None:
            continue
        in_scope = item.phase in scope
        if item.layer is Layer.PHASE and item.phase == completed:
            in_scope = True  # phase-scoped content goes when its phase completes
        if in_scope:
            chosen.add(i)
    return _whole_pairs(items, chosen)


def prune_emergency(items: Sequence[Item], current: str | None) -> list[int]:
    """Every transient and phase item that is not of the current phase."""
    chosen = {
        i
        for i, item in enumerate(items)
        if _prunable(item) and (current is None or item.phase != current)
    }
    return _whole_pairs(items, chosen)


@dataclass(slots=True, frozen=True)
class PhasePlan:
    name: str
    complexity: float = 1.0
    budget: int | None = None  # fixed strategy: given per phase


def phase_budgets(
    strategy: str,
    phases: Sequence[PhasePlan],
    total: int,
    *,
    reserve_share: float = 0.4,
    debug_share: float = 0.2,
) -> dict[str, Any]:
    """Token budget per phase (the layered-context model's phase budget strategies).

    - fixed: each phase's given budget; the rest of ``total`` is the buffer;
    - dynamic: ``total`` split by complexity (1,500 / 2,400 / 3,600 of 7,500 for
      complexities 5 / 8 / 12, the layered-context model's example);
    - reserve: the phases share ``1 − reserve_share`` of ``total`` by complexity, and
      the reserve is split into a debugging reserve (``debug_share`` of the total) and an
      overflow buffer (60% / 20% / 20% in the layered-context model's example).
    """
    if total <= 0:
        raise ConfigurationError(f"the total budget must be positive (got {total})")
    if not phases:
        raise ConfigurationError("no phases to budget")
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise ConfigurationError("phase names must be distinct")
    if strategy == "fixed":
        missing = [p.name for p in phases if p.budget is None]
        if missing:
            raise ConfigurationError(f"fixed budgets need a budget for: {', '.join(missing)}")
        budgets = {p.name: int(p.budget or 0) for p in phases}
        spent = sum(budgets.values())
        if spent > total:
            raise ConfigurationError(f"fixed budgets add up to {spent:,}, over the total {total:,}")
        return {"phases": budgets, "buffer": total - spent}
    if strategy not in ("dynamic", "reserve"):
        raise ConfigurationError(f"unknown budget strategy {strategy!r}: fixed, dynamic or reserve")
    if any(p.complexity <= 0 for p in phases):
        raise ConfigurationError("complexities must be positive")
    if strategy == "reserve" and not 0 <= debug_share <= reserve_share < 1:
        raise ConfigurationError("need 0 ≤ debug share ≤ reserve share < 1")
    core = total if strategy == "dynamic" else int(total * (1 - reserve_share))
    weight = sum(p.complexity for p in phases)
    budgets = {p.name: int(core * p.complexity / weight) for p in phases}
    out: dict[str, Any] = {"phases": budgets}
    if strategy == "reserve":
        out["debug_reserve"] = int(total * debug_share)
        out["buffer"] = total - sum(budgets.values()) - out["debug_reserve"]
    else:
        out["buffer"] = total - sum(budgets.values())
    return out


def phase_report(
    phase: str, used: int, budget: int, usage_by_phase: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """The context report after a phase, with the layered-context model's 75% / 95% thresholds."""
    percent = 100.0 * used / budget if budget else 100.0
    if percent > PHASE_EMERGENCY_PERCENT:
        alert, action = "critical", "emergency pruning: every transient and old-phase item"
    elif percent > PHASE_WARNING_PERCENT:
        alert, action = "warning", "consider pruning non-critical data"
    else:
        alert, action = "ok", "none"
    return {
        "phase": phase,
        "used_tokens": used,
        "budget_tokens": budget,
        "percent": shown_percent(percent),
        "remaining_tokens": budget - used,
        "alert": alert,
        "action": action,
        "by_phase": dict(usage_by_phase or {}),
    }
