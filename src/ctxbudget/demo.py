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
import re
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from .compaction import CompactionPolicy
from .demo_run import (
    EPIC,
    MODULE_NAMES,
    TRIGGER_SHARE,
    AnalystRun,
    CompactionRecord,
    ExchangeRecord,
    TrackedFact,
    check_facts,
    fact_counts,
    facts_of,
)
from .level import whole_percent
from .model import Item, Kind, Role, Usage
from .render import bar
from .session import Session
from .sources.messages import read_messages
from .tracker import Tracker

DATA_FILE = "analyst-ep24.json"
WINDOW = 12_000
RESERVED_OUTPUT = 2_000  # the analyst's final JSON handoff
COUNTER = "o200k_base"  # what the file's usage figures were counted with
APPROACH_SHARE = 0.60  # warn from here (the analyst example: "compress at 60-70%")
TARGET_SHARE = 0.20  # compact the conversation down to a fifth (the analyst example: 80% reduction)
KEEP_LAST = 1  # exchanges kept verbatim by a compaction

_CLARITY = re.compile(r"^Clarity: (\d+(?:\.\d+)?)", re.M)


def load_analyst_document() -> dict[str, Any]:
    """The shipped EP24 session: ``{"model", "system", "messages"}``."""
    text = resources.files("ctxbudget").joinpath("examples", DATA_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


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
        checked=fact_counts(facts, check_facts(facts, context)),
        steps=[a.to_dict() for a in result.actions],
        notes=list(result.notes),
    )
    window = session.policy.window
    emit(
        f"  ── Compaction #{number} after exchange {exchange}: conversation "
        f"{record.conversation_before:,} → {record.conversation_after:,} tokens "
        f"(-{record.reduction_percent:.0f}%); context {record.tokens_before:,} → "
        f"{record.tokens_after:,} ({whole_percent(100 * record.tokens_before / window)}% → "
        f"{whole_percent(100 * record.tokens_after / window)}% of the window)"
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
    "load_analyst_document",
    "run_analyst",
]
