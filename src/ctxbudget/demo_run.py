"""The analyst demo's facts and the record of one run (``demo.run_analyst``).

What the session must keep (each requirement, decision and open question as first
stated: ``facts_of``, ``check_facts``), and what a run did (``ExchangeRecord``,
``CompactionRecord``, ``AnalystRun``), with the figures the report prints.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .compaction import FactReport
from .level import shown_percent
from .session import Session
from .status import Status

__all__ = [
    "EPIC",
    "FACT_KINDS",
    "MODULE_NAMES",
    "TRIGGER_SHARE",
    "AnalystRun",
    "CompactionRecord",
    "ExchangeRecord",
    "TrackedFact",
    "check_facts",
    "fact_counts",
    "facts_of",
]

EPIC = "EP24"
TRIGGER_SHARE = 0.70  # compact when the conversation passes 70% of the working budget
MODULE_NAMES = {
    "AUTH": "Authentication",
    "BILL": "Billing",
    "INT": "Integration",
    "REP": "Reporting",
    "ANA": "Analytics",
}
FACT_KINDS = ("requirements", "decisions", "questions")

_REQUIREMENT = re.compile(r"^(REQ-([A-Z]+)-\d{3}): (.+?)\s*$", re.M)
_DECISION = re.compile(r"^Decision: (.+?)\s*$", re.M)
_QUESTION = re.compile(r"^Open question: (.+?)\s*$", re.M)


# -- what the session must keep -------------------------------------------------------


@dataclass(slots=True, frozen=True)
class TrackedFact:
    """A requirement, decision or open question, as first stated in the session.

    ``text`` is what must be found in the final context: ``REQ-AUTH-001: OAuth2 + SAML
    SSO support`` for a requirement; for a decision or question, its statement up to the
    first closing parenthesis (who approved it, who owns it).
    """

    kind: str  # requirements / decisions / questions
    key: str
    text: str
    exchange: int


def _statement(line: str) -> str:
    end = line.find(")")
    return line[: end + 1] if end >= 0 else line.rstrip(".")


def _normalized(text: str) -> str:
    return " ".join(text.split())


def facts_of(text: str, exchange: int) -> list[TrackedFact]:
    """Requirements, decisions and open questions stated in one analyst message."""
    found = [
        TrackedFact("requirements", m.group(1), f"{m.group(1)}: {m.group(3)}", exchange)
        for m in _REQUIREMENT.finditer(text)
    ]
    for kind, pattern in (("decisions", _DECISION), ("questions", _QUESTION)):
        for m in pattern.finditer(text):
            statement = _statement(m.group(1))
            found.append(TrackedFact(kind, statement, statement, exchange))
    return found


def check_facts(facts: Sequence[TrackedFact], context: str) -> dict[str, list[TrackedFact]]:
    """The facts missing from ``context`` (whitespace-insensitive), by kind."""
    haystack = _normalized(context)
    missing: dict[str, list[TrackedFact]] = {kind: [] for kind in FACT_KINDS}
    for fact in facts:
        if _normalized(fact.text) not in haystack:
            missing[fact.kind].append(fact)
    return missing


def fact_counts(
    facts: Sequence[TrackedFact], missing: dict[str, list[TrackedFact]]
) -> dict[str, tuple[int, int]]:
    totals = {kind: sum(1 for f in facts if f.kind == kind) for kind in FACT_KINDS}
    return {kind: (totals[kind] - len(missing[kind]), totals[kind]) for kind in FACT_KINDS}


# -- the run --------------------------------------------------------------------------


@dataclass(slots=True)
class ExchangeRecord:
    """The window after one exchange (user message, request, analyst reply)."""

    exchange: int
    module: str
    added_tokens: int
    tokens: int
    percent: float
    conversation_tokens: int
    working_budget_percent: float
    uncompacted_tokens: int
    level: str
    # "file": the usage the file reports; "rule": the compacted request's (see the module
    # docstring); "estimate": none reported
    usage_from: str
    compacted: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["percent"] = shown_percent(self.percent)
        data["working_budget_percent"] = shown_percent(self.working_budget_percent)
        return data


@dataclass(slots=True)
class CompactionRecord:
    """One compaction: where, the figures before and after, and what it kept."""

    number: int
    exchange: int
    tokens_before: int  # the whole context, in the session's units
    tokens_after: int
    conversation_before: int  # without the system prompt: what the compaction works on
    conversation_after: int
    target_tokens: int
    facts: FactReport  # the engine's fact ledger
    checked: dict[str, tuple[int, int]]  # requirements/decisions/questions stated so far
    steps: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def reduction_percent(self) -> float:
        if not self.conversation_before:
            return 0.0
        return 100.0 * (1 - self.conversation_after / self.conversation_before)

    @property
    def freed(self) -> int:
        return self.tokens_before - self.tokens_after

    @property
    def facts_preserved(self) -> dict[str, str]:
        """The engine's ledger: ``{"requirements": "8/8", "decisions": …, "all_facts": …}``."""
        by_kind = self.facts.by_kind
        shown = {
            plural: "{}/{}".format(*by_kind.get(kind, (0, 0)))
            for plural, kind in zip(
                FACT_KINDS, ("requirement", "decision", "question"), strict=True
            )
        }
        shown["all_facts"] = f"{self.facts.kept}/{self.facts.total}"
        return shown

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "exchange": self.exchange,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "tokens_freed": self.freed,
            "conversation_before": self.conversation_before,
            "conversation_after": self.conversation_after,
            "reduction_percent": round(self.reduction_percent, 1),
            "target_tokens": self.target_tokens,
            "facts_preserved": self.facts_preserved,
            "facts_passed": self.facts.passed,
            "information_retention": round(self.facts.retention, 4),
            "facts_checked": {k: f"{kept}/{total}" for k, (kept, total) in self.checked.items()},
            "steps": self.steps,
            "notes": list(self.notes),
        }


@dataclass(slots=True)
class AnalystRun:
    """What ``run_analyst`` did: every exchange, every compaction, the final checks."""

    session: Session
    model: str | None
    window: int
    reserved_output: int
    system_tokens: int
    total_exchanges: int
    exchanges: list[ExchangeRecord]
    compactions: list[CompactionRecord]
    facts: list[TrackedFact]
    missing: dict[str, list[TrackedFact]]
    clarity: dict[str, float]
    final_status: Status
    summary_tokens: int
    uncompacted_tokens: int
    usage_mismatches: int = 0

    # -- figures ------------------------------------------------------------------

    @property
    def completed_exchanges(self) -> int:
        return len(self.exchanges)

    @property
    def working_budget(self) -> int:
        return self.window - self.system_tokens - self.reserved_output

    @property
    def trigger_tokens(self) -> int:
        return int(self.working_budget * TRIGGER_SHARE)

    @property
    def peak(self) -> ExchangeRecord:
        return max(self.exchanges, key=lambda e: e.tokens)

    @property
    def peak_tokens(self) -> int:
        return self.peak.tokens

    @property
    def peak_percent(self) -> float:
        return self.peak.percent

    @property
    def final_tokens(self) -> int:
        return self.final_status.used_tokens

    @property
    def final_percent(self) -> float:
        return self.final_status.percent

    @property
    def uncompacted_percent(self) -> float:
        return 100.0 * self.uncompacted_tokens / self.window

    @property
    def overflow_exchange(self) -> int | None:
        """The first exchange at which the uncompacted session no longer fits the window."""
        return next(
            (e.exchange for e in self.exchanges if e.uncompacted_tokens > self.window), None
        )

    @property
    def reserve_breach_exchange(self) -> int | None:
        """The first exchange at which the uncompacted session eats into the output reserve."""
        limit = self.window - self.reserved_output
        return next((e.exchange for e in self.exchanges if e.uncompacted_tokens > limit), None)

    def _preserved(self, kind: str) -> tuple[int, int]:
        total = sum(1 for f in self.facts if f.kind == kind)
        return total - len(self.missing[kind]), total

    @property
    def requirements(self) -> tuple[int, int]:
        return self._preserved("requirements")

    @property
    def decisions(self) -> tuple[int, int]:
        return self._preserved("decisions")

    @property
    def questions(self) -> tuple[int, int]:
        return self._preserved("questions")

    @property
    def average_clarity(self) -> float | None:
        if not self.clarity:
            return None
        return sum(self.clarity.values()) / len(self.clarity)

    @property
    def modules(self) -> list[str]:
        return list(dict.fromkeys(e.module for e in self.exchanges))

    @property
    def events(self) -> dict[str, int]:
        """The session's ledger in the store, counted by event type."""
        counts: dict[str, int] = {}
        for event in self.session.events():
            counts[event.type] = counts.get(event.type, 0) + 1
        return counts

    @property
    def average_exchange_tokens(self) -> float:
        grown = [e.added_tokens for e in self.exchanges if e.added_tokens > 0]
        return sum(grown) / len(grown) if grown else 0.0

    @property
    def exchanges_before_next_compaction(self) -> int | None:
        per = self.average_exchange_tokens
        if per <= 0:
            return None
        conversation = self.final_tokens - self.system_tokens
        return max(0, int((self.trigger_tokens - conversation) // per))

    def to_dict(self) -> dict[str, Any]:
        req, dec, que = self.requirements, self.decisions, self.questions
        avg = self.average_clarity
        return {
            "scenario": "analyst",
            "epic": EPIC,
            "session_id": self.session.id,
            "model": self.model,
            "window": self.window,
            "reserved_output": self.reserved_output,
            "system_tokens": self.system_tokens,
            "working_budget": self.working_budget,
            "trigger_tokens": self.trigger_tokens,
            "completed_exchanges": self.completed_exchanges,
            "total_exchanges": self.total_exchanges,
            "peak_tokens": self.peak_tokens,
            "peak_percent": shown_percent(self.peak_percent),
            "peak_exchange": self.peak.exchange,
            "final_tokens": self.final_tokens,
            "final_percent": shown_percent(self.final_percent),
            "uncompacted_tokens": self.uncompacted_tokens,
            "uncompacted_percent": shown_percent(self.uncompacted_percent),
            "overflow_exchange": self.overflow_exchange,
            "estimated_exchanges_left": self.final_status.estimated_exchanges_left,
            "compactions": [c.to_dict() for c in self.compactions],
            "requirements": {"kept": req[0], "total": req[1]},
            "decisions": {"kept": dec[0], "total": dec[1]},
            "questions": {"kept": que[0], "total": que[1]},
            "missing": {k: [f.key for f in v] for k, v in self.missing.items()},
            "clarity": dict(self.clarity),
            "average_clarity": round(avg, 2) if avg is not None else None,
            "usage_mismatches": self.usage_mismatches,
            "events": self.events,
            "exchanges": [e.to_dict() for e in self.exchanges],
        }
