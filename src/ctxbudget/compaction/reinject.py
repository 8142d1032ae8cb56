"""What Claude Code's compaction summary lost, to put back after ``/compact``.

Claude Code replaces the conversation with a summary the model writes; a summary keeps
about half of the facts a session cannot do without (the files it edited and read, the
latest todo list, the user's requests and standing instructions, requirement ids,
decisions, open questions, errors). This module owns the decision of what to put back:
given the fact ledger of the context before the compaction (``extract_facts``) and the
summary Claude Code wrote, it returns exactly the ledger's facts the summary lost, most
important first, rendered compactly within a token budget and a character cap, with a
pointer to ``/ctxbudget:recall`` for what does not fit. It also turns a ledger into
plain data and back, so a hook can store it before the compaction and read it after.

Pure: no I/O, no store, no hook protocol (``ctxbudget.claude_code.hooks`` does those).
Finding facts and telling whether one survived are ``compaction.facts``'.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .fact_check import check_facts
from .facts import ledger_section
from .types import Fact, FactKind

__all__ = [
    "DEFAULT_REINJECT_TOKENS",
    "HOOK_OUTPUT_CHARS",
    "RECALL_POINTER",
    "REINJECT_ERRORS",
    "REINJECT_KINDS",
    "REINJECT_TITLE",
    "Reinjection",
    "carried_forward",
    "in_context",
    "ledger_from_data",
    "ledger_to_data",
    "lost_facts",
    "reinjection",
]

#: What is put back after a compaction, at most (tokens), unless configured otherwise.
DEFAULT_REINJECT_TOKENS = 2_000
#: Claude Code cuts a hook's output at this many characters.
HOOK_OUTPUT_CHARS = 10_000
#: The kinds put back, most important first. Dates, numbers and names stay with
#: ``/ctxbudget:recall``: a summary paraphrases them, and there are hundreds.
REINJECT_KINDS = (
    FactKind.INSTRUCTION,
    FactKind.REQUIREMENT,
    FactKind.DECISION,
    FactKind.QUESTION,
    FactKind.TODO,
    FactKind.REQUEST,
    FactKind.FILE,
    FactKind.ERROR,
)
REINJECT_TITLE = (
    "ctxbudget: facts from before the compaction that its summary left out "
    "(the user's instructions, ids, decisions, todos, requests, files, errors):"
)
RECALL_POINTER = "For anything else from before the compaction: /ctxbudget:recall QUERY."
#: Errors put back, at most: the most recent ones (older ones were mostly fixed since).
REINJECT_ERRORS = 8
# Kept in a stored ledger per fact: enough to render it again (a decision's ✅/❌).
STORED_TEXT_CHARS = 160
_RANK = {kind: rank for rank, kind in enumerate(REINJECT_KINDS)}
# Kinds whose order is their meaning (a todo list), not their age.
_IN_ORDER = frozenset({FactKind.TODO})


@dataclass(slots=True, frozen=True)
class Reinjection:
    """What to put back: ``text`` ("" when the summary lost nothing), its ``tokens``,
    the ledger facts the summary ``lost`` (most important first), those the text
    ``injected``, and how many facts of the ledger were ``checked``."""

    text: str
    tokens: int
    lost: tuple[Fact, ...]
    injected: tuple[Fact, ...]
    checked: int

    @property
    def left_out(self) -> int:
        """Lost facts that did not fit in the budget (``/ctxbudget:recall`` finds them)."""
        return len(self.lost) - len(self.injected)

    def to_dict(self) -> dict[str, Any]:
        by_kind: dict[str, list[int]] = {}
        for fact in self.lost:
            by_kind.setdefault(str(fact.kind), [0, 0])[0] += 1
        for fact in self.injected:
            by_kind.setdefault(str(fact.kind), [0, 0])[1] += 1
        return {
            "checked": self.checked,
            "lost": len(self.lost),
            "injected": len(self.injected),
            "left_out": self.left_out,
            "tokens": self.tokens,
            "chars": len(self.text),
            "by_kind": {kind: {"lost": n, "injected": m} for kind, (n, m) in by_kind.items()},
        }


def ledger_to_data(facts: Iterable[Fact]) -> list[dict[str, Any]]:
    """The ledger's facts of ``REINJECT_KINDS`` as plain JSON data (for the store)."""
    return [
        {
            "kind": str(fact.kind),
            "key": fact.key,
            "text": fact.text[:STORED_TEXT_CHARS],
            "item": fact.item,
        }
        for fact in facts
        if fact.kind in _RANK
    ]


def ledger_from_data(data: Any) -> list[Fact]:
    """The facts of ``ledger_to_data``'s output; malformed entries are skipped."""
    facts: list[Fact] = []
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, Mapping):
            continue
        kind, key = entry.get("kind"), entry.get("key")
        if not isinstance(key, str) or not key.strip():
            continue
        try:
            fact_kind = FactKind(str(kind))
        except ValueError:
            continue
        text = entry.get("text")
        item = entry.get("item")
        facts.append(
            Fact(
                fact_kind,
                key,
                text if isinstance(text, str) else key,
                item if isinstance(item, int) and not isinstance(item, bool) else -1,
            )
        )
    return facts


def carried_forward(ledger: Sequence[Fact], had: Sequence[Fact]) -> list[Fact]:
    """The ledger of a context that began with a compaction: its own facts, then those
    the model ``had`` from before it (``in_context``: what the summary kept and what was
    put back). Claude Code's next summary sees the put-back ones in no message (they
    go with the system prompt), and a kept instruction or request reads as the summary's
    prose, no longer the user's: without this, the next compaction loses them. A fact
    the context states again is its own; the carried ones count as older than any of
    it, and an older todo list gives way to the context's own."""
    own = {(fact.kind, fact.key) for fact in ledger}
    has_todos = FactKind.TODO in {fact.kind for fact in ledger}
    carried = [
        replace(fact, item=-1)
        for fact in had
        if (fact.kind, fact.key) not in own and not (has_todos and fact.kind == FactKind.TODO)
    ]
    return [*ledger, *carried]


def in_context(
    ledger: Sequence[Fact], lost: Sequence[Fact], put_back: Sequence[Fact]
) -> list[Fact]:
    """The facts of ``ledger`` the model has after a compaction: all but those its
    summary ``lost`` (``Reinjection.lost``) and that were not ``put_back``."""
    gone = {id(fact) for fact in lost} - {id(fact) for fact in put_back}
    return [fact for fact in ledger if id(fact) not in gone]


def lost_facts(ledger: Sequence[Fact], summary: str) -> list[Fact]:
    """The facts of ``ledger`` (of ``REINJECT_KINDS``) that ``summary`` does not hold,
    most important first: by kind, then newest first (a todo list in its own order).
    All of them; ``reinjection`` puts back the ``REINJECT_ERRORS`` most recent errors
    only, and what fits."""
    wanted = [fact for fact in ledger if fact.kind in _RANK]
    missing = check_facts(wanted, summary).missing if wanted else []
    return sorted(
        missing,
        key=lambda fact: (_RANK[fact.kind], 0 if fact.kind in _IN_ORDER else -fact.item),
    )


def _to_put_back(lost: Sequence[Fact]) -> list[Fact]:
    """The lost facts worth their tokens: all but the older errors."""
    errors = 0
    chosen = []
    for fact in lost:
        if fact.kind == FactKind.ERROR:
            errors += 1
            if errors > REINJECT_ERRORS:
                continue
        chosen.append(fact)
    return chosen


def _common_directory(facts: Sequence[Fact]) -> str:
    """The directory (with its final "/") most absolute file paths share, when at
    least two do and it is at least two levels deep (the project's root); else ""."""
    paths = [f.key for f in facts if f.kind == FactKind.FILE and f.key.startswith("/")]
    if len(paths) < 2:
        return ""
    root = posixpath.commonpath([posixpath.dirname(p) for p in paths])
    return root + "/" if root.count("/") >= 2 else ""


def _render(facts: Sequence[Fact], max_chars: int) -> str:
    """The facts as ``ledger_section`` writes them, under ``REINJECT_TITLE``; file
    paths under their common root are written relative to it (the root said once)."""
    root = _common_directory(facts)
    if root:
        note = f"Paths are relative to {root}\n"
        max_chars -= len(note)
        facts = [
            replace(f, key=f.key[len(root) :])
            if f.kind == FactKind.FILE and f.key.startswith(root)
            else f
            for f in facts
        ]
    body = ledger_section(facts, max_chars=max_chars)
    _, _, lines = body.partition("\n")
    if not lines:
        return ""
    if root and any(line.startswith("Files: ") for line in lines.split("\n")):
        lines = note + lines
    return f"{REINJECT_TITLE}\n{lines}"


def reinjection(
    ledger: Sequence[Fact],
    summary: str,
    *,
    budget_tokens: int = DEFAULT_REINJECT_TOKENS,
    count: Callable[[str], int] | None = None,
    max_chars: int = HOOK_OUTPUT_CHARS,
) -> Reinjection:
    """What ``summary`` lost of ``ledger``, as a text of at most ``budget_tokens``
    (counted with ``count``; the estimate counter by default) and ``max_chars``
    characters, most important first, ending with the ``/ctxbudget:recall`` pointer.
    ``budget_tokens`` ≤ 0 puts nothing back."""
    if count is None:
        from ..tokens.counters import get_counter

        count = get_counter("estimate").count
    wanted = [fact for fact in ledger if fact.kind in _RANK]
    lost = lost_facts(wanted, summary)
    if not lost or budget_tokens <= 0:
        return Reinjection("", 0, tuple(lost), (), len(wanted))
    chosen = _to_put_back(lost)
    pointer = "\n" + RECALL_POINTER
    # Characters first (dense text: ids and paths run at about 3 characters a token),
    # then the real count; shrink by the overflow until both limits hold.
    room = min(max_chars, budget_tokens * 4) - len(pointer)
    text, tokens = "", 0
    while room > len(REINJECT_TITLE):
        text = _render(chosen, room)
        if not text:
            break
        text += pointer
        tokens = count(text)
        if tokens <= budget_tokens and len(text) <= max_chars:
            break
        over = max(len(text) - max_chars, 0)
        if tokens > budget_tokens:
            over = max(over, int(len(text) * (1 - budget_tokens / tokens)) + 1)
        room = min(room, len(text) - len(pointer)) - max(over, 16)
        text, tokens = "", 0
    if not text:
        return Reinjection("", 0, tuple(lost), (), len(wanted))
    still = set(map(id, check_facts(lost, text).missing))
    injected = tuple(fact for fact in lost if id(fact) not in still)
    return Reinjection(text, tokens, tuple(lost), injected, len(wanted))
