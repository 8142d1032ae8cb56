"""The tools of ``ctxbudget mcp`` as plain functions of an ``McpWorkspace``.

``McpWorkspace`` (``mcp_workspace``) finds the session a call means and opens it
through the facade (``Tracker``, ``Session``). Each ``*_of`` function answers one tool
with a structured result (``mcp_results``); nothing here decides a budget: the gate is
``Session.gate`` (the PreToolUse hook's decision), the figures the ``Status``. The SDK
is not needed here (``mcp_server`` wires these functions to it).

A sprint is a named budget period: a phase of the stored session with its own token
budget (``Session.start_phase``), and a baseline of what each agent had used when it
started; what it used is what the agents used since.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import ConfigurationError
from ..level import shown_percent
from .mcp_results import (
    AgentSpend,
    BreakdownResult,
    ClaudeCodePreview,
    GateResult,
    HistoryPointResult,
    HistoryResult,
    PreviewResult,
    RecalledItem,
    RecallResult,
    SprintReportResult,
    SprintStartResult,
    StatusResult,
)
from .mcp_workspace import McpWorkspace

__all__ = [
    "breakdown_of",
    "gate_of",
    "history_of",
    "preview_of",
    "recall_of",
    "sprint_report_of",
    "sprint_start_of",
    "status_of",
]

# Where a sprint's start (baseline per agent, time, budget) is kept: the stored
# session's remembered values, one key for all its sprints.
_SPRINTS_MEMO = "sprints"


# -- the tools, as plain functions of a workspace ---------------------------------------


def status_of(workspace: McpWorkspace, session: str | None = None) -> StatusResult:
    from ..spawning import GATE_SCOPE

    live = workspace.open(session)
    status = live.status()
    stored = live if live.is_stored else workspace.stored(live.id)
    held = workspace.tracker.store.reservations(live.id, GATE_SCOPE) if stored else []
    return {
        "session_id": live.id,
        "source": live.transcript.path if live.transcript is not None else None,
        "model": status.model,
        "used_tokens": status.used_tokens,
        "window": status.max_tokens,
        "percent": shown_percent(status.percent),
        "level": status.level.value,
        "remaining_tokens": status.remaining_tokens,
        "reserved_tokens": sum(r.tokens for r in held),
        "exchanges_left": status.estimated_exchanges_left,
        "overhead_tokens": status.breakdown.unattributed,
        "overhead_estimated": status.overhead_estimated,
        "anchored_on_usage": status.anchored,
        "recommendation": status.recommendation,
    }


def breakdown_of(workspace: McpWorkspace, session: str | None = None) -> BreakdownResult:
    live = workspace.open(session)
    status = live.status()
    b = status.breakdown
    return {
        "session_id": live.id,
        "used_tokens": status.used_tokens,
        "window": status.max_tokens,
        "overhead_tokens": b.unattributed,
        "component": dict(b.component),
        "kind": dict(b.kind),
        "tool": dict(b.tool),
        "agent": dict(b.agent),
        "subagents": [a.to_dict() for a in b.subagents],
    }


def history_of(workspace: McpWorkspace, session: str | None = None) -> HistoryResult:
    live = workspace.open(session)
    window = live.policy.window
    points: list[HistoryPointResult] = [
        {
            "call": p.call,
            "now": False,
            "used_tokens": p.reported_tokens,
            "percent": shown_percent(100 * p.reported_tokens / window),
            "timestamp": p.timestamp,
            "after_compaction": p.after_compaction,
        }
        for p in live.history()
    ]
    status = live.status()  # the last point is now, as "ctxbudget tokens --history" ends
    points.append(
        {
            "call": None,
            "now": True,
            "used_tokens": status.used_tokens,
            "percent": shown_percent(status.percent),
            "timestamp": None,
            "after_compaction": False,
        }
    )
    return {"session_id": live.id, "window": window, "points": points}


def gate_of(
    workspace: McpWorkspace,
    agent: str,
    tokens: int,
    key: str | None = None,
    session: str | None = None,
) -> GateResult:
    if tokens <= 0:
        raise ConfigurationError(f"tokens must be 1 or more (got {tokens})")
    live = workspace.open(session)
    transcript = live.transcript is not None
    stored = workspace.stored(live.id) if transcript else None
    if transcript and key is not None and stored is None:
        # a spawn's gate reserves, so its session is stored first (as the hook's gate
        # does when SessionStart never ran): unreserved grants over-grant
        workspace.writable(live)
        stored = workspace.stored(live.id)
    try:
        # A transcript: as the PreToolUse hook decides (no compaction). It reserves
        # only with a key (the spawn's tool_use_id, which the hook reserves under too):
        # without one the answer is advice, and the hook's check of the spawn itself
        # takes the reservation, so one spawn never holds the room twice. A stored
        # session: as "ctxbudget gate" (compacts first when that makes room).
        decision = live.gate(
            agent,
            tokens,
            compact=not transcript,
            key=key,
            reserve=(stored is not None and key is not None) if transcript else None,
        )
    except ConfigurationError as exc:  # an agent outside the roster: denied, with why
        return {
            "session_id": live.id,
            "agent": agent,
            "tokens": tokens,
            "allowed": False,
            "outcome": "deny",
            "reason": str(exc),
            "used_tokens": live.used_tokens,
            "window": live.policy.window,
            "projected_percent": shown_percent(
                100.0 * (live.used_tokens + tokens) / live.policy.window
            ),
            "reserved_tokens": 0,
            "reservation": None,
            "key": key,
        }
    if stored is not None:
        data = decision.to_dict()
        data.update(tool="mcp", tool_use_id=key)
        workspace.tracker.store.append_event(stored.id, "gate", data)
    return {
        "session_id": live.id,
        "agent": agent,
        "tokens": tokens,
        "allowed": decision.allowed,
        "outcome": decision.outcome,
        "reason": decision.reason,
        "used_tokens": decision.used_tokens,
        "window": decision.window,
        "projected_percent": shown_percent(decision.projected_percent),
        "reserved_tokens": decision.reserved_tokens,
        "reservation": decision.reservation,
        "key": key,
    }


def sprint_start_of(
    workspace: McpWorkspace, name: str, budget: int, session: str | None = None
) -> SprintStartResult:
    from ..spawning import agent_usage

    if budget <= 0:
        raise ConfigurationError(f"a sprint budget must be positive (got {budget})")
    live = workspace.open(session)
    target = workspace.writable(live)
    target.start_phase(name.strip(), budget)
    started = time.time()
    baseline = agent_usage(live)
    sprint = {"started_at": started, "budget": budget, "baseline": baseline}
    # read and written in one step: sprints other clients started meanwhile stay
    target.remember_with(_SPRINTS_MEMO, lambda kept: {**(kept or {}), name.strip(): sprint})
    return {
        "session_id": live.id,
        "sprint": name.strip(),
        "budget": budget,
        "started_at": started,
        "agents_at_start": baseline,
    }


def sprint_report_of(
    workspace: McpWorkspace, name: str | None = None, session: str | None = None
) -> SprintReportResult:
    from ..spawning import agent_budgets, agent_usage

    live = workspace.open(session)
    sprints: dict[str, Any] = dict(live.remembered(_SPRINTS_MEMO, {}) or {})
    name = name or live.budget.phase or (list(sprints)[-1] if sprints else None)
    budgets = agent_budgets(live)
    usage = agent_usage(live)
    alerts: list[str] = []
    if name is not None and name not in sprints:
        raise ConfigurationError(
            f"no sprint {name!r} in session {live.id}"
            + (f" (sprints: {', '.join(sprints)})" if sprints else ": start one with sprint_start")
        )
    sprint = sprints.get(name) if name else None
    baseline = {k: int(v) for k, v in (sprint or {}).get("baseline", {}).items()}
    spent = {agent: max(0, tokens - baseline.get(agent, 0)) for agent, tokens in usage.items()}
    agents: list[AgentSpend] = []
    for agent, tokens in sorted(spent.items(), key=lambda kv: -kv[1]):
        limit = budgets.get(agent)
        over = limit is not None and usage.get(agent, 0) > limit
        agents.append({"agent": agent, "tokens": tokens, "budget": limit, "over_budget": over})
        if over and limit is not None:
            alerts.append(
                f"agent {agent!r} is over its budget: {usage.get(agent, 0):,} of {limit:,} tokens"
            )
    used = sum(spent.values())
    budget = int(sprint["budget"]) if sprint else None
    remaining = percent = level = None
    if budget is not None and name is not None:
        remaining = budget - used
        percent = round(100.0 * used / budget, 2)
        policy = live.policy
        level = (
            "over"
            if used > budget
            else "critical"
            if percent >= policy.critical_percent
            else "warning"
            if percent >= policy.warning_percent
            else "normal"
        )
        if level == "over":
            alerts.insert(
                0, f"sprint {name!r} is over budget: {used:,} of {budget:,} tokens ({percent:g}%)"
            )
        elif level != "normal":
            alerts.insert(
                0,
                f"sprint {name!r} at {percent:g}% of its budget ({used:,} of {budget:,}): "
                f"{remaining:,} tokens left",
            )
    return {
        "session_id": live.id,
        "sprint": name,
        "budget": budget,
        "used_tokens": used,
        "remaining_tokens": remaining,
        "percent": percent,
        "level": level,
        "agents": agents,
        "alerts": alerts,
        "sprints": list(sprints),
    }


def recall_of(
    workspace: McpWorkspace, query: str, budget: int = 500, session: str | None = None
) -> RecallResult:
    if not query.strip():
        raise ConfigurationError("recall needs a query")
    if budget <= 0:
        raise ConfigurationError(f"the recall budget must be positive (got {budget})")
    live = workspace.open(session)
    # what Claude Code's own compactions took out (the live transcript) and what
    # ctxbudget's archived (the stored session of that id)
    found = live.recall(query, budget)
    items: list[RecalledItem] = [
        {
            "role": str(item.role),
            "kind": str(item.kind),
            "tokens": int(item.tokens or 0),
            "text": item.text,
        }
        for item in found
    ]
    return {
        "session_id": live.id,
        "query": query,
        "budget": budget,
        "tokens": sum(i["tokens"] for i in items),
        "items": items,
        "note": None
        if items
        else "nothing that a compaction (ctxbudget's or Claude Code's) took out matches",
    }


def preview_of(workspace: McpWorkspace, session: str | None = None) -> PreviewResult:
    from ..errors import CompactionError

    live = workspace.open(session)
    notes: list[str] = []
    try:
        plan = live.plan_compaction()
    except CompactionError as exc:
        plan = None
        notes.append(str(exc))
    status = live.status()
    claude_code: ClaudeCodePreview | None = None
    if live.transcript is not None and live.transcript.path:
        from .preview import preview_compaction

        cc = preview_compaction(
            live.transcript,  # as the workspace read it: not read a third time
            workspace.tracker,
            {"policy": live.policy},
            workspace.environ,
        )
        claude_code = {
            "tokens_after": cc.tokens_after,
            "summary_tokens": cc.summary_tokens,
            "reinjected_tokens": cc.reinjected_tokens,
            "reinjected": cc.reinjected,
            "autocompact": cc.autocompact,
        }
    if plan is None:
        return {
            "session_id": live.id,
            "tokens_before": status.used_tokens,
            "tokens_after": status.used_tokens,
            "tokens_freed": 0,
            "window": status.max_tokens,
            "actions": [],
            "facts_archived": [],
            "facts_missing": [],
            "claude_code": claude_code,
            "notes": notes,
        }
    facts = plan.result.facts
    return {
        "session_id": live.id,
        "tokens_before": plan.used_before,
        "tokens_after": plan.used_after,
        "tokens_freed": plan.freed,
        "window": status.max_tokens,
        "actions": [a.description for a in plan.result.actions],
        "facts_archived": [{"kind": str(f.kind), "key": f.key} for f in facts.archived],
        "facts_missing": [
            {"kind": str(f.kind), "key": f.key} for f in facts.missing if f not in facts.archived
        ],
        "claude_code": claude_code,
        "notes": notes + list(plan.result.notes),
    }
