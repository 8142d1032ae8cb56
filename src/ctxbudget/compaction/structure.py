"""The shape of a context, as compaction needs it: messages, exchanges, tool pairs.

Items are blocks; the APIs see messages. A message is a run of items with the same
``message_index``; a tool result counts as a user message. These helpers find the
messages, which ones are protected (system prompt, first and last exchanges, the
latest todo list, pinned items), and the tool call behind each result, so that no
step ever splits a call from its result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import Item, Kind, Role
from ..sources.tools import TODO_TOOLS

_TARGET_KEYS = (
    "file_path",
    "notebook_path",
    "path",
    "command",
    "pattern",
    "query",
    "url",
    "description",
    "prompt",
)


@dataclass(slots=True)
class Message:
    index: int
    role: str  # "system", "user" or "assistant"; tool results are "user"
    items: list[int] = field(default_factory=list)


def side(item: Item) -> str:
    if item.role is Role.SYSTEM:
        return "system"
    return "assistant" if item.role is Role.ASSISTANT else "user"


def messages_of(items: Sequence[Item]) -> list[Message]:
    out: list[Message] = []
    for i, item in enumerate(items):
        role = side(item)
        if out and out[-1].index == item.message_index and out[-1].role == role:
            out[-1].items.append(i)
        else:
            out.append(Message(index=item.message_index, role=role, items=[i]))
    return out


def tool_input(item: Item) -> Any:
    """The parsed input of a tool call item (its text is ``name {json}``)."""
    raw = item.raw
    if isinstance(raw, dict):
        block = raw.get("block")
        if isinstance(block, dict) and "input" in block:
            return block["input"]
    text = item.text
    start = text.find("{")
    if start < 0:
        return None
    try:
        return json.loads(text[start:])
    except ValueError:
        return None


def call_target(item: Item | None) -> str:
    """What a tool call acted on: a path, a command, a query."""
    if item is None:
        return ""
    data = tool_input(item)
    if isinstance(data, dict):
        for key in _TARGET_KEYS:
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip().splitlines()[0][:160]
    return ""


def calls_by_pair(items: Sequence[Item]) -> dict[str, int]:
    return {
        item.pair_id: i
        for i, item in enumerate(items)
        if item.kind is Kind.TOOL_CALL and item.pair_id
    }


def latest_todo(items: Sequence[Item], pairs: dict[str, int] | None = None) -> set[int]:
    """The latest todo-list call and its result: always kept (``pairs``: the
    ``calls_by_pair`` of ``items``, when the caller has it)."""
    for i in range(len(items) - 1, -1, -1):
        item = items[i]
        if item.kind is Kind.TOOL_CALL and item.tool in TODO_TOOLS and item.tool != "TodoRead":
            keep = {i}
            if pairs is None:
                pairs = calls_by_pair(items)
            if pairs:
                keep.update(
                    j
                    for j, other in enumerate(items)
                    if other.role is Role.TOOL and other.pair_id == item.pair_id
                )
            return keep
    return set()


def always_kept(items: Sequence[Item], pairs: dict[str, int] | None = None) -> set[int]:
    """What every protection keeps, whatever exchanges it names: the system prompt and
    instructions, pinned items, the latest todo list and the latest thing the user
    asked (the current task)."""
    keep = latest_todo(items, pairs)
    for i in range(len(items) - 1, -1, -1):
        if items[i].kind is Kind.USER_TEXT and items[i].role is Role.USER:
            keep.add(i)
            break
    keep.update(
        i
        for i, item in enumerate(items)
        if item.pinned
        or (item.kind in (Kind.SYSTEM_PROMPT, Kind.INSTRUCTION) and item.role is Role.SYSTEM)
    )
    return keep


def exchanges_kept(
    items: Sequence[Item],
    messages: list[Message],
    keep_first: int,
    keep_last: int,
    pairs: dict[str, int] | None = None,
) -> set[int]:
    """The items of the system messages and the first ``keep_first`` exchanges, and of
    the last ``keep_last``; neither end splits a call from its result."""
    head = head_end(items, messages, keep_first)
    tail = tail_start(items, messages, keep_last, pairs)
    keep = {i for m in messages[:head] for i in m.items}
    keep.update(i for m in messages[max(tail, head) :] for i in m.items)
    return keep


def tail_start(
    items: Sequence[Item],
    messages: list[Message],
    keep_last: int,
    pairs: dict[str, int] | None = None,
) -> int:
    """Index into ``messages`` where the kept tail begins (the last N exchanges).

    Moved earlier while the tail would start with tool results whose calls are not in
    it: a pair is never split.
    """
    convo = [at for at, m in enumerate(messages) if m.role != "system"]
    if keep_last <= 0 or not convo:
        return len(messages)
    start = convo[max(0, len(convo) - 2 * keep_last)]
    if pairs is None:
        pairs = calls_by_pair(items)
    # the earliest call a result in the tail needs, kept up to date as the tail grows
    # (recomputing it over the whole tail at every step was quadratic)
    earliest = min((_earliest_call(items, m, pairs) for m in messages[start:]), default=len(items))
    while start > 0 and earliest < messages[start].items[0]:
        start -= 1
        earliest = min(earliest, _earliest_call(items, messages[start], pairs))
    return start


def _earliest_call(items: Sequence[Item], message: Message, pairs: dict[str, int]) -> int:
    """The index of the earliest call whose result is in ``message`` (len(items): none)."""
    needed = (
        pairs.get(items[i].pair_id or "") for i in message.items if items[i].role is Role.TOOL
    )
    return min((n for n in needed if n is not None), default=len(items))


def head_end(items: Sequence[Item], messages: list[Message], keep_first: int) -> int:
    """Index into ``messages`` after the kept head (system messages + first M exchanges).

    Moved later while a call in the head has its result outside it.
    """
    end = 0
    while end < len(messages) and messages[end].role == "system":
        end += 1
    end = min(len(messages), end + 2 * keep_first)
    # the calls in the head, kept up to date as it grows (not recomputed at each step)
    calls: set[str | None] = set()

    def add_calls(message: Message) -> None:
        calls.update(
            items[i].pair_id
            for i in message.items
            if items[i].kind is Kind.TOOL_CALL and items[i].pair_id
        )

    for message in messages[:end]:
        add_calls(message)
    while end < len(messages) and any(
        items[i].role is Role.TOOL and items[i].pair_id in calls for i in messages[end].items
    ):
        add_calls(messages[end])
        end += 1
    return end
