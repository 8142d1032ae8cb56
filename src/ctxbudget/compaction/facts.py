"""The fact ledger: what a compaction must not lose, found before it and checked after.

This module owns the ledger (facts deduplicated as they are found, resumable) and the
short markdown section that puts missing facts back; where facts are found is
``fact_rules``'s, whether each fact survived in a compacted text ``fact_check``'s. Pure
functions over strings: no I/O, no token counting, no knowledge of the pipeline's steps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..model import Item
from .fact_check import WORD, WORD_SHARE
from .fact_rules import clip, feed_item, has_word
from .mentions import word_set
from .summary_sections import LEDGER_TITLE, LIST_LABELS
from .types import Fact, FactKind

__all__ = [
    "KINDS",
    "LEDGER_TITLE",
    "FactLedger",
    "extract_facts",
    "ledger_section",
]

# Every kind, in the order a ledger section lists them (most important first).
KINDS = tuple(FactKind)

MAX_ERRORS = 20  # the most recent distinct ones: a log of 500 errors is not 500 facts
MAX_NOTABLE = 100  # entities, dates and numbers, each: the most frequent, then recent

_DIGITS = re.compile(r"\d+")
_NUMBER_PARTS = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|[%$€£×/]")
_UNIT_SHAPES = {
    **dict.fromkeys(word_set("h hr hrs hour hours"), "h"),
    **dict.fromkeys(word_set("s sec secs second seconds"), "s"),
    **dict.fromkeys(word_set("m min mins minute minutes"), "min"),
    **dict.fromkeys(word_set("d day days"), "d"),
    **dict.fromkeys(word_set("ms millisecond milliseconds"), "ms"),
    **dict.fromkeys(word_set("req reqs request requests"), "req"),
    **dict.fromkeys(word_set("per /"), "/"),
    **{unit + "s": unit for unit in word_set("week month year token user seat attempt")},
    "percent": "%",
    "retries": "retry",
}


class FactLedger:
    """Facts deduplicated by (kind, case-folded key), each with where it first appeared.

    Resumable: ``feed`` items as they come (their indices continuing from ``start``),
    ``result`` at any time (it changes nothing), and ``to_data`` / ``from_data`` to keep
    the state between two processes (a hook reads only what was appended). Feeding a
    context in parts gives the facts of feeding it whole.
    """

    def __init__(self) -> None:
        self.facts: dict[tuple[str, str], Fact] = {}
        self.offsets: dict[int, int] = {}  # id(fact) -> where in its item it starts
        # "we decided to …" in prose counts only in sessions that mark no decision
        # explicitly; where they do, the marked line records the same decision.
        self.prose_decisions: list[tuple[Fact, int]] = []
        self.errors: dict[str, list[Any]] = {}  # shape -> [last item, fact]
        self.notable: dict[FactKind, dict[str, list[Any]]] = {
            FactKind.ENTITY: {},
            FactKind.DATE: {},
            FactKind.NUMBER: {},
        }
        self.todos: tuple[int, list[str]] | None = None  # the latest TodoWrite list
        self.checkboxes: tuple[int, list[str]] | None = None  # the latest "- [ ]" list
        # a ctxbudget report was shown (a plugin command) and the user has not spoken
        # since: the assistant's text repeats the report
        self.echoing = False

    def _new(self, kind: FactKind, key: str, text: str, item: int, at: int) -> Fact:
        fact = Fact(kind, key, clip(text), item)
        self.offsets[id(fact)] = at
        return fact

    def add(self, kind: FactKind, key: str, text: str, item: int, at: int = 0) -> None:
        key = key.strip()
        if key and (kind, key.casefold()) not in self.facts:
            self.facts[kind, key.casefold()] = self._new(kind, key, text, item, at)

    def error(self, key: str, text: str, item: int, at: int) -> None:
        # Distinct by shape: "seed#2 (0.00s)" and "seed#5 (0.01s)" are one failure.
        shape = _DIGITS.sub("0", key.casefold())
        seen = self.errors.get(shape)
        if seen is None:
            self.errors[shape] = [item, self._new(FactKind.ERROR, key, text, item, at)]
        else:
            seen[0] = item

    def notice(self, kind: FactKind, key: str, text: str, item: int, at: int) -> None:
        key = " ".join(key.split())
        table = self.notable[kind]
        # "24h", "24 hours" and "24-hour" are one number; the first spelling is its key.
        shape = _number_shape(key) if kind == FactKind.NUMBER else key.casefold()
        seen = table.get(shape)
        if seen is None:
            table[shape] = [1, item, self._new(kind, key, text, item, at)]
        else:
            seen[0] += 1
            seen[1] = item

    def feed(self, items: Sequence[Item], start: int = 0) -> FactLedger:
        """Add the facts of ``items``, the first of which is item ``start`` of the context."""
        for index, item in enumerate(items, start):
            feed_item(self, item, index)
        return self

    def result(self) -> list[Fact]:
        """The facts so far, in order of appearance (the ledger itself is unchanged)."""
        found = dict(self.facts)
        offsets = dict(self.offsets)
        if not any(kind == FactKind.DECISION for kind, _ in found):
            for fact, at in self.prose_decisions:
                if (fact.kind, fact.key.casefold()) not in found:
                    found[fact.kind, fact.key.casefold()] = fact
                    offsets[id(fact)] = at
        facts = _without_redundant_files(list(found.values()))
        for todo_list in (self.todos, self.checkboxes):
            if todo_list is not None:
                index, contents = todo_list
                seen: set[str] = set()
                for content in contents:
                    key = " ".join(content.split())
                    if has_word(key) and key.casefold() not in seen:
                        seen.add(key.casefold())
                        todo = Fact(FactKind.TODO, key, clip(content), index)
                        offsets[id(todo)] = len(seen)
                        facts.append(todo)
        recent = sorted(self.errors.values(), key=lambda e: e[0], reverse=True)
        facts.extend(e[1] for e in recent[:MAX_ERRORS])
        for table in self.notable.values():
            ranked = sorted(table.values(), key=lambda e: (e[0], e[1]), reverse=True)
            facts.extend(e[2] for e in ranked[:MAX_NOTABLE])
        facts.sort(key=lambda f: (f.item, offsets.get(id(f), 0)))
        return facts

    def to_data(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (``from_data`` reads it back)."""

        def fact(f: Fact) -> list[Any]:
            return [FactKind(f.kind).value, f.key, f.text, f.item, self.offsets.get(id(f), 0)]

        return {
            "facts": [fact(f) for f in self.facts.values()],
            "prose_decisions": [[*fact(f)[:4], at] for f, at in self.prose_decisions],
            "errors": {shape: [e[0], fact(e[1])] for shape, e in self.errors.items()},
            "notable": {
                FactKind(kind).value: {s: [e[0], e[1], fact(e[2])] for s, e in table.items()}
                for kind, table in self.notable.items()
            },
            "todos": list(self.todos) if self.todos else None,
            "checkboxes": list(self.checkboxes) if self.checkboxes else None,
            "echoing": self.echoing,
        }

    @classmethod
    def from_data(cls, data: Any) -> FactLedger:
        """The ledger ``to_data`` wrote; ValueError when ``data`` is not one."""
        ledger = cls()

        def fact(row: Any) -> Fact:
            kind, key, text, item, at = row
            made = Fact(FactKind(kind), str(key), str(text), int(item))
            ledger.offsets[id(made)] = int(at)
            return made

        def todo_list(value: Any) -> tuple[int, list[str]] | None:
            return None if value is None else (int(value[0]), [str(c) for c in value[1]])

        try:
            for row in data["facts"]:
                made = fact(row)
                ledger.facts[made.kind, made.key.casefold()] = made
            for row in data["prose_decisions"]:
                made = fact(row)
                ledger.prose_decisions.append((made, ledger.offsets.pop(id(made))))
            for shape, (item, row) in data["errors"].items():
                ledger.errors[str(shape)] = [int(item), fact(row)]
            for kind, table in data["notable"].items():
                ledger.notable[FactKind(kind)] = {
                    str(shape): [int(n), int(item), fact(row)]
                    for shape, (n, item, row) in table.items()
                }
            ledger.todos = todo_list(data["todos"])
            ledger.checkboxes = todo_list(data["checkboxes"])
            ledger.echoing = bool(data.get("echoing", False))  # not in older ledgers
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a fact ledger: {exc}") from exc
        return ledger


def _number_shape(key: str) -> str:
    parts = _NUMBER_PARTS.findall(key.casefold().replace(",", ""))
    return " ".join(_UNIT_SHAPES.get(p, p) for p in parts)


def _without_redundant_files(facts: list[Fact]) -> list[Fact]:
    """Drop a file fact that a longer one already covers: ``wizard.go`` or
    ``internal/config/wizard.go`` next to ``/home/x/internal/config/wizard.go``."""
    suffixes: set[str] = set()
    for fact in facts:
        if fact.kind == FactKind.FILE:
            parts = fact.key.rstrip("/").split("/")
            suffixes.update("/".join(parts[i:]) for i in range(1, len(parts)))
    return [f for f in facts if f.kind != FactKind.FILE or f.key.rstrip("/") not in suffixes]


# --- extraction --------------------------------------------------------------------------


def extract_facts(items: Sequence[Item]) -> list[Fact]:
    """Everything a compaction must not lose, deduplicated by (kind, key), in order of
    first appearance; ``Fact.item`` is the index of the item it came from."""
    return FactLedger().feed(items).result()


# --- restoring ---------------------------------------------------------------------------


def _shortest(key: str) -> str:
    """The shortest prefix of ``key`` that holds 60% of its distinct words of 4+ letters."""
    wanted = set(WORD.findall(key.casefold()))
    seen: set[str] = set()
    for match in WORD.finditer(key.casefold()):
        seen.add(match.group(0))
        if len(seen) >= WORD_SHARE * len(wanted) - 1e-9:
            end = match.end()
            return key if len(key) - end < 12 else key[:end] + "…"
    return key


def _entry(fact: Fact) -> str:
    key = " ".join(fact.key.split())
    if fact.kind == FactKind.REQUEST:
        key = _shortest(key)
    elif fact.kind == FactKind.DECISION:
        mark = next((m for m in ("✅", "❌") if m in fact.text), "")
        key = f"{mark} {key}".strip()
    return f"- {fact.kind}: {key}"


def ledger_section(facts: Sequence[Fact], max_chars: int | None = None) -> str:
    """A compact markdown section that makes each of ``facts`` present again.

    One list line each for ids, files, dates, numbers and entities; one line per
    decision, question, todo, request (its shortest prefix that still counts) and error.
    With ``max_chars``, the most important kinds go first and what does not fit is left
    out (check again to see what is still missing). Empty when there is nothing to say.
    """
    by_kind: dict[FactKind, list[Fact]] = {}
    for fact in facts:
        by_kind.setdefault(fact.kind, []).append(fact)
    lines = [LEDGER_TITLE]
    room = (max_chars if max_chars is not None else 1 << 62) - len(LEDGER_TITLE)
    for kind in sorted(by_kind, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS)):
        if kind in LIST_LABELS:
            keys = list(dict.fromkeys(f.key for f in by_kind[kind]))
            line = f"{LIST_LABELS[kind]}: "
            taken = 0
            while taken < len(keys):
                addition = (", " if taken else "") + keys[taken]
                if len(line) + len(addition) + 1 > room:
                    break
                line += addition
                taken += 1
            if taken:
                lines.append(line)
                room -= len(line) + 1
            continue
        for fact in by_kind[kind]:
            entry = _entry(fact)
            if len(entry) + 1 <= room:
                lines.append(entry)
                room -= len(entry) + 1
    return "\n".join(lines) if len(lines) > 1 else ""
