"""What a session remembers of its budgets: shares, reservations, agent and phase
budgets, the running phase. Stored in the session's metadata; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .allocation import DEFAULT_SHARES
from .layers import Pruning


@dataclass(slots=True)
class BudgetState:
    """What a session remembers of its budgets (stored in its metadata)."""

    shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SHARES))
    reservations: dict[str, int] = field(default_factory=dict)
    agent_budgets: dict[str, int] = field(default_factory=dict)
    phase_budgets: dict[str, int] = field(default_factory=dict)
    phases: list[str] = field(default_factory=list)
    phase: str | None = None
    pruning: str = Pruning.MODERATE.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "shares": dict(self.shares),
            "reservations": dict(self.reservations),
            "agent_budgets": dict(self.agent_budgets),
            "phase_budgets": dict(self.phase_budgets),
            "phases": list(self.phases),
            "phase": self.phase,
            "pruning": self.pruning,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> BudgetState:
        data = data or {}
        return cls(
            shares=dict(data.get("shares") or DEFAULT_SHARES),
            reservations={k: int(v) for k, v in (data.get("reservations") or {}).items()},
            agent_budgets={k: int(v) for k, v in (data.get("agent_budgets") or {}).items()},
            phase_budgets={k: int(v) for k, v in (data.get("phase_budgets") or {}).items()},
            phases=list(data.get("phases") or []),
            phase=data.get("phase"),
            pruning=str(data.get("pruning") or Pruning.MODERATE.value),
        )
