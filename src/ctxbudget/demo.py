"""``ctxbudget demo analyst``: the analyst example's session, replayed through the engine.

An Analyst agent gathers the requirements of epic EP24 over 25 exchanges in a
12,000-token window (about 800 for the system prompt, 2,000 reserved for the final JSON
handoff). The session is the shipped ``examples/analyst-ep24.json`` (package data; the
same bytes as the repository's ``examples/``). ``run_analyst`` feeds it to a real
``Session`` one exchange at a time, compacts with the real engine when the conversation
passes 70% of the working budget, and checks at the end that every requirement,
decision and open question is still in the context. Every figure printed comes from
that run; only the labels are fixed text.

Usage, as the provider would report it. Each assistant message in the file carries the
``usage`` its request reported, and the session anchors on it (``record_usage``): that
keeps the running figure exact instead of estimated, which matters here because the
demo is about managing the budget, not about estimating it. Those figures describe the
uncompacted conversation, so they are recorded only while the session's context is the
one the file describes (until the first compaction). After a compaction the request
actually sent is smaller: the demo then records what the same provider reports for it,
by the rule the file's figures follow (o200k_base counts, the system prompt unframed,
a fixed framing per message, derived from the first request). The rule is checked
against every figure recorded from the file (``AnalystRun.usage_mismatches`` counts
disagreements; it is 0). A second, unstored session records the file's figures to the
end: it is the "without compaction" baseline of the report.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .compaction import CompactionPolicy, FactReport
from .model import Item, Kind, Role, Usage
from .render import bar
from .session import Session
from .sources.messages import read_messages
from .status import Status
from .tracker import Tracker

DATA_FILE = "analyst-ep24.json"
EPIC = "EP24"
WINDOW = 12_000
RESERVED_OUTPUT = 2_000  # the analyst's final JSON handoff
COUNTER = "o200k_base"  # what the file's usage figures were counted with
TRIGGER_SHARE = 0.70  # compact when the conversation passes 70% of the working budget
APPROACH_SHARE = 0.60  # warn from here (the analyst example: "compress at 60-70%")
TARGET_SHARE = 0.20  # compact the conversation down to a fifth (the analyst example: 80% reduction)
KEEP_LAST = 1  # exchanges kept verbatim by a compaction
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
_CLARITY = re.compile(r"^Clarity: (\d+(?:\.\d+)?)", re.M)


def load_analyst_document() -> dict[str, Any]:
    """The shipped EP24 session: ``{"model", "system", "messages"}``."""
    text = resources.files("ctxbudget").joinpath("examples", DATA_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


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


def _counts(
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
        data["percent"] = round(self.percent, 2)
        data["working_budget_percent"] = round(self.working_budget_percent, 2)
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
            "peak_percent": round(self.peak_percent, 2),
            "peak_exchange": self.peak.exchange,
            "final_tokens": self.final_tokens,
            "final_percent": round(self.final_percent, 2),
            "uncompacted_tokens": self.uncompacted_tokens,
            "uncompacted_percent": round(self.uncompacted_percent, 2),
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


# -- the replay -----------------------------------------------------------------------


def _messages(items: Sequence[Item]) -> list[list[Item]]:
    """Consecutive items of one API message, grouped."""
    groups: list[list[Item]] = []
    for item in items:
        if groups and groups[-1][0].message_index == item.message_index:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _fresh(items: Sequence[Item]) -> list[Item]:
    """Copies for a session (it renumbers messages and counts tokens itself)."""
    return [dataclasses.replace(i, message_index=0, tokens=None, id=None) for i in items]


def _framing(session: Session, reported: int) -> int:
    """Tokens per message the provider adds, from the first request it reported."""
    messages = {i.message_index for i in session.items if i.role is not Role.SYSTEM}
    counted = sum(i.tokens or 0 for i in session.items)
    return (reported - counted) // max(1, len(messages))


def _request_tokens(session: Session, framing: int) -> int:
    """What the provider reports for a request holding ``session``'s context: the file's
    rule (its counter's counts, ``framing`` tokens per message, the system prompt bare)."""
    messages = {i.message_index for i in session.items if i.role is not Role.SYSTEM}
    counted = sum(i.tokens or 0 for i in session.items)
    return counted + framing * len(messages)


def run_analyst(tracker: Tracker, *, on_event: Callable[[str], None] | None = None) -> AnalystRun:
    """Replay the EP24 session in ``tracker``'s store, compacting as the analyst example does.

    ``on_event`` gets one line per exchange and per compaction, as they happen.
    """
    emit = on_event or (lambda line: None)
    document = load_analyst_document()
    transcript = read_messages(document)
    model = transcript.model
    session = tracker.session(
        model=model,
        window=WINDOW,
        reserved_output=RESERVED_OUTPUT,
        counter=COUNTER,
        name=f"demo: analyst {EPIC}",
    )
    baseline = Session(tracker, policy=session.policy, stored=False)

    system = [i for i in transcript.items if i.role is Role.SYSTEM]
    session.extend(_fresh(system))
    baseline.extend(_fresh(system))
    system_tokens = sum(i.tokens or 0 for i in session.items)
    working_budget = WINDOW - system_tokens - RESERVED_OUTPUT
    trigger = int(working_budget * TRIGGER_SHARE)

    usage_at = {call.items_before: call.usage for call in transcript.calls}
    start = {id(item): n for n, item in enumerate(transcript.items)}
    groups = _messages([i for i in transcript.items if i.role is not Role.SYSTEM])
    exchanges: list[tuple[list[Item], list[Item], Usage | None]] = []
    for group in groups:
        if group[0].role is Role.ASSISTANT and exchanges and not exchanges[-1][1]:
            user, _, _ = exchanges[-1]
            exchanges[-1] = (user, group, usage_at.get(start[id(group[0])]))
        else:
            exchanges.append((group, [], None))

    emit(
        f"EP24 analyst session: {len(exchanges)} exchanges, model {model}, window "
        f"{WINDOW:,}: system prompt {system_tokens:,} + reserved output "
        f"{RESERVED_OUTPUT:,} → working budget {working_budget:,}; compaction when the "
        f"conversation passes {TRIGGER_SHARE:.0%} ({trigger:,} tokens)"
    )

    framing: int | None = None
    mismatches = 0
    facts: list[TrackedFact] = []
    clarity: dict[str, float] = {}
    module = "?"
    records: list[ExchangeRecord] = []
    compactions: list[CompactionRecord] = []
    for number, (user, reply, usage) in enumerate(exchanges, start=1):
        before = session.used_tokens
        session.extend(_fresh(user))
        baseline.extend(_fresh(user))
        usage_from = "estimate"
        if usage is not None:
            if framing is None:
                # the first request: everything but the framing is counted locally
                framing = _framing(session, usage.context_tokens)
            baseline.record_usage(usage)
            if not compactions:
                if _request_tokens(session, framing) != usage.context_tokens:
                    mismatches += 1
                session.record_usage(usage)
                usage_from = "file"
            else:
                session.record_usage(
                    Usage(
                        input_tokens=_request_tokens(session, framing),
                        output_tokens=usage.output_tokens,
                    )
                )
                usage_from = "rule"
        session.extend(_fresh(reply))
        baseline.extend(_fresh(reply))

        text = "\n".join(i.text for i in reply if i.kind is Kind.ASSISTANT_TEXT)
        stated = facts_of(text, number)
        known = {(f.kind, f.key) for f in facts}
        facts += [f for f in stated if (f.kind, f.key) not in known]
        codes = [f.key.split("-")[1] for f in stated if f.kind == "requirements"]
        if codes:
            module = MODULE_NAMES.get(codes[-1], codes[-1])
        scores = _CLARITY.findall(text)
        if scores:
            clarity[module] = float(scores[-1])

        status = session.status()
        used = status.used_tokens
        conversation = used - system_tokens
        share = conversation / working_budget
        record = ExchangeRecord(
            exchange=number,
            module=module,
            added_tokens=used - before,
            tokens=used,
            percent=status.percent,
            conversation_tokens=conversation,
            working_budget_percent=100 * share,
            uncompacted_tokens=baseline.used_tokens,
            level=status.level.value,
            usage_from=usage_from,
        )
        records.append(record)
        line = (
            f"Exchange {number:2} {'[' + module + ']':<16} {used - before:+6,} → {used:6,} tokens "
            f"({status.percent:2.0f}%) · working budget {100 * share:3.0f}% {bar(100 * share)}"
        )
        if share > TRIGGER_SHARE:
            emit(f"{line}  🔴 TRIGGER: past {TRIGGER_SHARE:.0%} of the working budget → compacting")
            compactions.append(
                _compact(session, number, len(compactions) + 1, system_tokens, facts, emit)
            )
            record.compacted = True
        elif share >= APPROACH_SHARE:
            emit(f"{line}  ⚠️ approaching the compaction trigger ({TRIGGER_SHARE:.0%})")
        else:
            emit(line)

    context = "\n".join(i.text for i in session.items)
    summary_messages = {i.message_index for i in session.items if i.kind is Kind.SUMMARY}
    summary_tokens = sum(i.tokens or 0 for i in session.items if i.kind is Kind.SUMMARY)
    return AnalystRun(
        session=session,
        model=model,
        window=WINDOW,
        reserved_output=RESERVED_OUTPUT,
        system_tokens=system_tokens,
        total_exchanges=len(exchanges),
        exchanges=records,
        compactions=compactions,
        facts=facts,
        missing=check_facts(facts, context),
        clarity=clarity,
        final_status=session.status(),
        summary_tokens=summary_tokens + (framing or 0) * len(summary_messages),
        uncompacted_tokens=baseline.used_tokens,
        usage_mismatches=mismatches,
    )


def _compact(
    session: Session,
    exchange: int,
    number: int,
    system_tokens: int,
    facts: Sequence[TrackedFact],
    emit: Callable[[str], None],
) -> CompactionRecord:
    used = session.used_tokens
    conversation = used - system_tokens
    policy = CompactionPolicy(
        target_tokens=system_tokens + round(conversation * TARGET_SHARE),
        keep_first=0,
        keep_last=KEEP_LAST,
    )
    compaction = session.compact(policy)
    result = compaction.result
    context = "\n".join(i.text for i in session.items)
    record = CompactionRecord(
        number=number,
        exchange=exchange,
        tokens_before=compaction.used_before,
        tokens_after=compaction.used_after,
        conversation_before=compaction.used_before - system_tokens,
        conversation_after=compaction.used_after - system_tokens,
        target_tokens=compaction.target,
        facts=result.facts,
        checked=_counts(facts, check_facts(facts, context)),
        steps=[a.to_dict() for a in result.actions],
        notes=list(result.notes),
    )
    window = session.policy.window
    emit(
        f"  ── Compaction #{number} after exchange {exchange}: conversation "
        f"{record.conversation_before:,} → {record.conversation_after:,} tokens "
        f"(-{record.reduction_percent:.0f}%); context {record.tokens_before:,} → "
        f"{record.tokens_after:,} ({math.floor(100 * record.tokens_before / window)}% → "
        f"{math.floor(100 * record.tokens_after / window)}% of the window)"
    )
    emit("     steps: " + "; ".join(f"{a.step} {-a.tokens_freed:+,}" for a in result.actions))
    preserved = record.facts_preserved
    emit(
        "     facts (engine ledger): "
        + ", ".join(f"{k} {v}" for k, v in preserved.items() if k != "all_facts")
        + f"; all facts {preserved['all_facts']} in context, the rest archived"
        + ("" if result.facts.passed else " — MUST-KEEP FACTS MISSING")
    )
    emit(
        "     stated so far, still in context: "
        + ", ".join(f"{k} {kept}/{total}" for k, (kept, total) in record.checked.items())
    )
    for note in result.notes:
        emit(f"     note: {note}")
    return record


__all__ = [
    "AnalystRun",
    "CompactionRecord",
    "ExchangeRecord",
    "TrackedFact",
    "check_facts",
    "facts_of",
    "load_analyst_document",
    "run_analyst",
]
