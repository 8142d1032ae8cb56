"""The fact inventory of a Claude Code context, and how much of it a text still holds.

Issue 3, "What it must show", item 1: files edited (Edit/MultiEdit/Write ``file_path``),
files read (Read ``file_path``, not also edited), the items of the latest TodoWrite list
and the user's requests (user text, not tool results, without Claude Code's own noise).
A file is kept when the text holds its path or its basename; a todo or a request when
at least 60% of its distinct words of 4+ letters appear in the text (case-folded).

The inventory is built from a neutral event list, so that the same rules apply to a
ctxbudget context (``events_from_items``) and to raw transcript records
(``events_from_records``, for Claude Code's own summaries).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctxbudget.model import Item, Kind, Role

EDIT_TOOLS = {"Edit", "MultiEdit", "Write"}
READ_TOOLS = {"Read"}
TODO_TOOLS = {"TodoWrite"}
CATEGORIES = ("edited", "read", "todos", "requests")
WORD_SHARE = 0.6

# User text that Claude Code writes itself, not a request of the user.
_NOISE_PREFIXES = (
    "<command-name>",
    "<command-message>",
    "<command-args>",
    "<local-command-stdout>",
    "<local-command-stderr>",
    "[Request interrupted by user",
    "Caveat: The messages below were generated",
    # A summary Claude Code carried over when the session was resumed; two records
    # of the shared data lack their isCompactSummary flag.
    "This session is being continued from a previous conversation",
)
_LETTERS = re.compile(r"[^\W\d_]+")


def is_noise(text: str) -> bool:
    stripped = text.lstrip()
    return not stripped or stripped.startswith(_NOISE_PREFIXES)


def words4(text: str) -> set[str]:
    """Distinct words of 4+ letters, case-folded."""
    return {w for w in _LETTERS.findall(text.casefold()) if len(w) >= 4}


def word_set(text: str) -> set[str]:
    return set(_LETTERS.findall(text.casefold()))


# An event: ("call", tool name, input) or ("user", text, None).
Event = tuple[str, str, Any]


def _call_input(item: Item) -> Any:
    raw = item.raw
    if isinstance(raw, dict) and isinstance(raw.get("block"), dict) and "input" in raw["block"]:
        return raw["block"]["input"]
    _, _, rest = item.text.partition(" ")
    try:
        return json.loads(rest)
    except ValueError:
        return None


def events_from_items(items: Sequence[Item]) -> list[Event]:
    out: list[Event] = []
    for item in items:
        if item.kind is Kind.TOOL_CALL:
            out.append(("call", item.tool or item.text.partition(" ")[0], _call_input(item)))
        elif item.kind is Kind.USER_TEXT and item.role is Role.USER:
            out.append(("user", item.text, None))
    return out


def events_from_records(records: Iterable[dict[str, Any]]) -> list[Event]:
    """Main-thread transcript records (already selected by the caller) → events."""
    out: list[Event] = []
    for record in records:
        if record.get("isSidechain") or record.get("isCompactSummary"):
            continue
        message = record.get("message")
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        rtype = record.get("type")
        if isinstance(content, str):
            if rtype == "user":
                out.append(("user", content, None))
            continue
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use" and rtype == "assistant":
                out.append(("call", str(block.get("name", "")), block.get("input")))
            elif block.get("type") == "text" and rtype == "user":
                out.append(("user", str(block.get("text", "")), None))
    return out


@dataclass(slots=True)
class Inventory:
    edited: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    todos: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    unscorable: int = 0  # requests or todos without any word of 4+ letters

    def size(self) -> int:
        return sum(len(getattr(self, c)) for c in CATEGORIES)


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        v = v.strip()
        if v and v not in seen:
            seen[v] = None
    return list(seen)


def build_inventory(events: Sequence[Event]) -> Inventory:
    edited: list[str] = []
    read: list[str] = []
    todos: list[str] = []
    requests: list[str] = []
    for kind, name, data in events:
        if kind == "user":
            if not is_noise(name):
                requests.append(name)
            continue
        if not isinstance(data, dict):
            continue
        path = data.get("file_path")
        if name in EDIT_TOOLS and isinstance(path, str):
            edited.append(path)
        elif name in READ_TOOLS and isinstance(path, str):
            read.append(path)
        elif name in TODO_TOOLS and isinstance(data.get("todos"), list):
            todos = [
                str(t.get("content", "")) for t in data["todos"] if isinstance(t, dict)
            ]  # the latest list replaces the earlier ones
    inv = Inventory(edited=_unique(edited))
    done = set(inv.edited)
    inv.read = [p for p in _unique(read) if p not in done]
    for name in ("todos", "requests"):
        values = _unique(todos if name == "todos" else requests)
        scorable = [v for v in values if words4(v)]
        inv.unscorable += len(values) - len(scorable)
        setattr(inv, name, scorable)
    return inv


def file_kept(path: str, text: str) -> bool:
    base = path.rstrip("/").rsplit("/", 1)[-1]
    return path in text or (bool(base) and base in text)


def phrase_kept(phrase: str, words: set[str]) -> bool:
    wanted = words4(phrase)
    return len(wanted & words) >= WORD_SHARE * len(wanted)


@dataclass(slots=True)
class Score:
    by: dict[str, tuple[int, int]]  # category -> (kept, total)
    missing: dict[str, list[str]]

    @property
    def kept(self) -> int:
        return sum(k for k, _ in self.by.values())

    @property
    def total(self) -> int:
        return sum(t for _, t in self.by.values())

    @property
    def retention(self) -> float | None:
        return self.kept / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kept": self.kept,
            "total": self.total,
            "retention": None if self.retention is None else round(self.retention, 4),
            "by_category": {c: {"kept": k, "total": t} for c, (k, t) in self.by.items()},
            "missing": {c: v for c, v in self.missing.items() if v},
        }


def score(inv: Inventory, text: str) -> Score:
    words = word_set(text)
    by: dict[str, tuple[int, int]] = {}
    missing: dict[str, list[str]] = {}
    for name in CATEGORIES:
        values: list[str] = getattr(inv, name)
        if name in ("edited", "read"):
            kept = [v for v in values if file_kept(v, text)]
        else:
            kept = [v for v in values if phrase_kept(v, words)]
        by[name] = (len(kept), len(values))
        missing[name] = [v[:100] for v in values if v not in kept]
    return Score(by=by, missing=missing)


def add_scores(scores: Iterable[Score]) -> Score:
    by = {c: (0, 0) for c in CATEGORIES}
    for s in scores:
        for c, (k, t) in s.by.items():
            by[c] = (by[c][0] + k, by[c][1] + t)
    return Score(by=by, missing={})
