"""The structured results of ``ctxbudget mcp``'s tools (their output schemas).

TypedDicts, so that the SDK derives each tool's JSON schema from them and a client
gets typed, structured content. Data only: the tools fill them (``mcp_tools``).
"""

from __future__ import annotations

import sys
from typing import Any

if sys.version_info >= (3, 12):
    from typing import TypedDict
else:  # pydantic builds the tools' output schemas; before 3.12 it needs this TypedDict
    from typing_extensions import TypedDict

__all__ = [
    "AgentSpend",
    "BreakdownResult",
    "ClaudeCodePreview",
    "FactAtRisk",
    "GateResult",
    "HistoryPointResult",
    "HistoryResult",
    "PreviewResult",
    "RecallResult",
    "RecalledItem",
    "SprintReportResult",
    "SprintStartResult",
    "StatusResult",
]


class StatusResult(TypedDict):
    session_id: str
    source: str | None
    model: str | None
    used_tokens: int
    window: int
    percent: float
    level: str
    remaining_tokens: int
    # held by spawns allowed and not finished yet (their reservations): what a spawn
    # asked about now must fit beside, as the gate counts it
    reserved_tokens: int
    exchanges_left: int | None
    overhead_tokens: int
    overhead_estimated: bool
    anchored_on_usage: bool
    recommendation: str


class BreakdownResult(TypedDict):
    session_id: str
    used_tokens: int
    window: int
    overhead_tokens: int
    component: dict[str, int]
    kind: dict[str, int]
    tool: dict[str, int]
    agent: dict[str, int]
    subagents: list[dict[str, Any]]


class HistoryPointResult(TypedDict):
    call: int | None
    now: bool
    used_tokens: int
    percent: float
    timestamp: str | None
    after_compaction: bool


class HistoryResult(TypedDict):
    session_id: str
    window: int
    points: list[HistoryPointResult]


class GateResult(TypedDict):
    session_id: str
    agent: str
    tokens: int
    allowed: bool
    outcome: str
    reason: str
    used_tokens: int
    window: int
    projected_percent: float
    # held by other spawns' reservations (this key's own, if it holds one, is not in it)
    reserved_tokens: int
    reservation: str | None
    key: str | None


class SprintStartResult(TypedDict):
    session_id: str
    sprint: str
    budget: int
    started_at: float
    agents_at_start: dict[str, int]


class AgentSpend(TypedDict):
    agent: str
    tokens: int
    budget: int | None
    over_budget: bool


class SprintReportResult(TypedDict):
    session_id: str
    sprint: str | None
    budget: int | None
    used_tokens: int
    remaining_tokens: int | None
    percent: float | None
    level: str | None
    agents: list[AgentSpend]
    alerts: list[str]
    sprints: list[str]


class RecalledItem(TypedDict):
    role: str
    kind: str
    tokens: int
    text: str


class RecallResult(TypedDict):
    session_id: str
    query: str
    budget: int
    tokens: int
    items: list[RecalledItem]
    note: str | None


class FactAtRisk(TypedDict):
    kind: str
    key: str


class ClaudeCodePreview(TypedDict):
    tokens_after: int
    summary_tokens: int
    reinjected_tokens: int
    reinjected: str
    autocompact: str


class PreviewResult(TypedDict):
    session_id: str
    tokens_before: int
    tokens_after: int
    tokens_freed: int
    window: int
    actions: list[str]
    facts_archived: list[FactAtRisk]
    facts_missing: list[FactAtRisk]
    claude_code: ClaudeCodePreview | None
    notes: list[str]
