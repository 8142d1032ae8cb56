"""Phases and task prediction applied to a session (the layered-context model).

A phase names the items added while it runs; completing it prunes by the pruning
policy (archived, never deleted: what leaves the context becomes a new context
version) and reports its use against its budget. Task prediction estimates what
coming tasks need from every ``task_completed`` event stored, and compacts first when
they would not fit. The decisions are pure (``ctxbudget.budget.layers``,
``ctxbudget.budget.prediction``); this module gathers the figures, applies them and
logs one event per decision.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from . import archive
from .budget.layers import (
    PHASE_EMERGENCY_PERCENT,
    Pruning,
    phase_report,
    prune_emergency,
    prune_on_phase_complete,
)
from .budget.prediction import Predictor, Task, fits
from .budget.state import BudgetState
from .budgeting import apply_cleanup, budget_total
from .compaction import CompactionPolicy
from .compaction.steps import report_metadata
from .errors import ConfigurationError
from .model import EventType, Kind, Layer
from .policy import check_within_window
from .session_state import SessionState

__all__ = [
    "complete_phase",
    "phase_usage",
    "plan_tasks",
    "predictor",
    "start_phase",
    "task_completed",
]


def start_phase(session: SessionState, name: str, budget: int | None = None) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"a phase needs a name (got {name!r})")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
            raise ConfigurationError(f"a phase budget must be a positive number (got {budget!r})")
        check_within_window(budget, "a phase budget")

    def started(stored: BudgetState) -> None:
        if name not in stored.phases:
            stored.phases.append(name)
        stored.phase = name
        if budget is not None:
            stored.phase_budgets[name] = budget

    session.save_budget(started)
    session.log_event(EventType.PHASE_STARTED, {"phase": name, "budget": budget})


def phase_usage(session: SessionState) -> dict[str, int]:
    usage: dict[str, int] = {}
    k = session.calibration.per_token
    for item in session.items:
        if item.phase:
            usage[item.phase] = usage.get(item.phase, 0) + round(k * (item.tokens or 0))
    return usage


def complete_phase(
    session: SessionState, name: str | None = None, pruning: str | None = None
) -> dict[str, Any]:
    """End a phase: prune by the pruning policy (archived), then report (75% / 95%)."""
    state = session.budget
    name = name or state.phase
    if name is None:
        raise ConfigurationError("no phase is running: start one with start_phase")
    if name not in state.phases:
        raise ConfigurationError(f"unknown phase {name!r}; phases: {', '.join(state.phases)}")
    policy = _pruning(pruning or state.pruning)
    reports = _reports_to_metadata(session, name) if policy is not Pruning.MINIMAL else 0
    pruned = _prune(session, prune_on_phase_complete(session.items, name, state.phases, policy))

    def completed(stored: BudgetState) -> None:
        if stored.phase == name:
            stored.phase = None

    session.save_budget(completed)
    state = session.budget
    usage = phase_usage(session)
    budget = state.phase_budgets.get(name) or budget_total(session)
    used = session.used_tokens
    result = phase_report(name, used, budget, usage)
    emergency = 0
    if result["percent"] > PHASE_EMERGENCY_PERCENT:
        emergency = _prune(session, prune_emergency(session.items, state.phase))
        result = phase_report(name, session.used_tokens, budget, phase_usage(session))
    result.update(
        pruned_items=pruned,
        emergency_pruned_items=emergency,
        reports_to_metadata=reports,
        pruning=policy.value,
    )
    session.log_event(EventType.PHASE_COMPLETED, result)
    return result


def _reports_to_metadata(session: SessionState, phase: str) -> int:
    """The phase's full sub-agent reports become metadata items (the full text goes to
    the archive): what the next phases keep of them."""
    changed = 0
    items = list(session.items)
    for i, item in enumerate(items):
        if item.kind is Kind.AGENT_REPORT and item.phase == phase and item.layer is Layer.TRANSIENT:
            text = report_metadata(item.text)
            items[i] = dataclasses.replace(
                item,
                text=text,
                tokens=session.counter.count(text),
                layer=Layer.METADATA,
                _hash=None,
                id=None,
            )
            changed += 1
    if changed:
        if not session.is_stored:
            session.save()
        archive.replace_context(session, items, reason="reports to metadata")
    return changed


def _prune(session: SessionState, indices: Sequence[int]) -> int:
    """Remove these items from the context, archived as a new context version."""
    if not indices:
        return 0
    drop = set(indices)
    kept = [item for i, item in enumerate(session.items) if i not in drop]
    if not session.is_stored:
        session.save()  # nothing leaves a context without reaching the archive
    archive.replace_context(session, kept, reason="phase pruning")
    return len(drop)


# -- task-need prediction ------------------------------------------------------------


def predictor(session: SessionState, *, sessions: int = 200) -> Predictor:
    """The default prediction constants, calibrated from every ``task_completed`` event stored."""
    model = Predictor()
    if not session.is_stored:
        return model
    store = session.store
    for stored in store.list_sessions(limit=sessions):
        for event in store.events(stored.id, types=[EventType.TASK_COMPLETED]):
            data = event.data
            task = Task(
                name=str(data.get("task", "task")),
                files=int(data.get("files", 0)),
                agents=int(data.get("agents", 0)),
                minutes=float(data.get("minutes", 0)),
                complexity=data.get("complexity"),
            )
            model.observe(task, int(data["actual_tokens"]))
    return model


def plan_tasks(
    session: SessionState, tasks: Sequence[Task], *, cleanup_first: bool = True
) -> dict[str, Any]:
    """Predict what coming tasks need; when it does not fit, compact first (pre-emptive
    cleanup, archived) to make the room. Returns the prediction and what was done."""
    model = predictor(session)
    predicted = model.predict_all(tasks)
    remaining = session.status().remaining_tokens
    advice = fits(predicted, remaining)
    freed = 0
    if not advice.fits and cleanup_first and session.items:
        target = max(1, session.used_tokens - advice.to_free)
        plan = archive.plan(session, CompactionPolicy(target_tokens=target))
        if plan.result.actions and plan.freed > 0:
            apply_cleanup(session, plan)
            freed = plan.freed
        advice = fits(predicted, session.status().remaining_tokens)
    out = {
        "tasks": [t.name for t in tasks],
        "predicted_tokens": predicted,
        "calibrated_on": len(model.observations),
        "freed_by_cleanup": freed,
        **advice.to_dict(),
    }
    session.log_event(EventType.TASKS_PLANNED, out)
    return out


def task_completed(session: SessionState, task: Task, actual_tokens: int) -> None:
    """Record what a task really used: the predictor learns from it."""
    if actual_tokens < 0:
        raise ConfigurationError(f"actual tokens must be 0 or more (got {actual_tokens})")
    session.log_event(
        EventType.TASK_COMPLETED,
        {
            "task": task.name,
            "files": task.files,
            "agents": task.agents,
            "minutes": task.minutes,
            "complexity": task.complexity,
            "actual_tokens": actual_tokens,
        },
    )


def _pruning(name: str) -> Pruning:
    """The pruning policy called ``name``, or one clear error naming the known ones."""
    try:
        return Pruning(name)
    except ValueError:
        known = ", ".join(p.value for p in Pruning)
        raise ConfigurationError(f"unknown pruning {name!r}: {known}") from None
