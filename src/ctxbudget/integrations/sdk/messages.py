"""The request's messages as the SDK middleware reads and writes them.

Owns reading a request (its messages, plus the envelope: Anthropic ``system``,
``tools``) as session items, telling messages apart (a fingerprint that ignores
prompt-caching marks), and writing compacted items back as the request's messages,
the caller's own message objects kept wherever the compaction left them as they were.
It holds no state and does no I/O; what to compact and when is ``compacting``'s.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from ...model import Item, Kind, Role, Transcript
from .records import ANTHROPIC, OPENAI

__all__ = [
    "envelope",
    "fingerprint",
    "given",
    "materialize",
    "plain",
    "read_request",
    "without_cache_marks",
    "write_messages",
]


def given(value: Any) -> bool:
    """False for None and the SDKs' ``NOT_GIVEN`` / ``omit`` sentinels."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


def materialize(value: Any) -> Any:
    """A one-shot iterable (a generator) as a list, so it can be read and still sent."""
    if isinstance(value, str | bytes | list | tuple | Mapping) or not given(value):
        return value
    if hasattr(value, "__iter__") and not hasattr(value, "model_dump"):
        return list(value)
    return value


def plain(value: Any) -> Any:
    """``value`` as plain JSON data: SDK models (a response's content blocks appended to
    the conversation) become dicts. Returns ``value`` itself when nothing changes."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for key, sub in value.items():
            new = plain(sub)
            if new is not sub:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out
    if isinstance(value, list | tuple):
        items = [plain(sub) for sub in value]
        if isinstance(value, list) and all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return plain(dump(mode="json", exclude_none=True))
    if not given(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return None if not given(value) else str(value)


# Prompt-caching marks move from message to message between requests (the last one is
# marked each turn): they do not make a message another one.
_CACHE_CONTROL = re.compile(r'"cache_control":\{[^{}]*\},?')


def fingerprint(message: Any) -> bytes:
    """A message's identity: its JSON (SDK models as dicts), cache marks left out."""
    text = json.dumps(message, sort_keys=True, separators=(",", ":"), default=_json_default)
    text = _CACHE_CONTROL.sub("", text)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _unmarked(blocks: Any) -> Any:
    if not isinstance(blocks, list):
        return blocks
    out = []
    for block in blocks:
        if isinstance(block, dict) and (
            "cache_control" in block or isinstance(block.get("content"), list)
        ):
            block = {k: v for k, v in block.items() if k != "cache_control"}
            if isinstance(block.get("content"), list):
                block["content"] = _unmarked(block["content"])
        out.append(block)
    return out


def without_cache_marks(message: Any) -> Any:
    """``message`` with every ``cache_control`` mark of its blocks removed (a copy)."""
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        return {**message, "content": _unmarked(message["content"])}
    return message


def envelope(provider: str, send: Mapping[str, Any]) -> dict[str, Any]:
    """What the request sends beside its messages and the reader counts: the tools
    (OpenAI's legacy ``functions`` too) and the Anthropic system prompt."""
    out: dict[str, Any] = {}
    tools = plain(send.get("tools")) if given(send.get("tools")) else None
    tools = list(tools) if isinstance(tools, list) else []
    if provider == OPENAI and given(send.get("functions")):
        legacy = plain(send.get("functions"))
        tools += legacy if isinstance(legacy, list) else []
    if tools:
        out["tools"] = tools
    if provider == ANTHROPIC and given(send.get("system")):
        out["system"] = plain(send["system"])
    return out


def read_request(envelope: dict[str, Any], messages: list[Any]) -> Transcript:
    """The request (``envelope`` and ``messages``) as the message reader reads it."""
    from ...sources.messages import read_messages

    return read_messages({**envelope, "messages": [plain(m) for m in messages]})


def _source(item: Item) -> int | None:
    """The index of the request message ``item`` was read from (None: the envelope's
    system and tools, or an item the compaction wrote, such as a summary)."""
    raw = item.raw
    index = raw.get("message") if isinstance(raw, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else None


def _same(after: Item, before: Item) -> bool:
    return after is before or (
        after.kind is before.kind
        and after.role is before.role
        and after.text == before.text
        and after.pair_id == before.pair_id
    )


def _kept_spans(before: list[Item], after: list[Item], count: int) -> dict[int, tuple[int, int]]:
    """The messages the compaction left as they were: ``{start: (message, end)}``, where
    ``after[start:end]`` are all the items of request message ``message``, unchanged
    and in order, and nothing else."""
    given: dict[int, list[Item]] = {}
    for item in before:
        index = _source(item)
        if index is not None:
            given.setdefault(index, []).append(item)
    placed: dict[int, list[int]] = {}
    for position, item in enumerate(after):
        index = _source(item)
        if index is not None:
            placed.setdefault(index, []).append(position)
    spans: dict[int, tuple[int, int]] = {}
    for index, positions in placed.items():
        original = given.get(index)
        start, end = positions[0], positions[-1] + 1
        if (
            0 <= index < count
            and original is not None
            and len(original) == len(positions) == end - start
            and all(_same(after[p], o) for p, o in zip(positions, original, strict=True))
        ):
            spans[start] = (index, end)
    return spans


def _role(message: Any) -> Any:
    if isinstance(message, Mapping):
        return message.get("role")
    return getattr(message, "role", None)


def _kept_ids(items: list[Item], message: Any) -> dict[str, str]:
    """The tool ids a kept message carries, by pair id: a rewritten message that holds
    the other half of one of its pairs must use the same id."""
    ids: dict[str, str] = {}
    for item in items:
        if item.pair_id is None:
            continue
        block = item.raw.get("block") if isinstance(item.raw, dict) else None
        original: Any = None
        if item.kind is Kind.TOOL_CALL and isinstance(block, dict):
            original = block.get("id")
        elif item.role is Role.TOOL and isinstance(block, dict):
            original = block.get("tool_use_id")
        elif item.role is Role.TOOL:
            data = plain(message)
            original = data.get("tool_call_id") if isinstance(data, dict) else None
        if isinstance(original, str) and original:
            ids[item.pair_id] = original
    return ids


def write_messages(
    provider: str, before: list[Item], items: list[Item], effective: list[Any]
) -> list[tuple[Any, int | None]]:
    """The compacted items as the request's ``messages``, each with the index in
    ``effective`` of the message it is (None: a message the compaction rewrote).

    A message whose items the compaction left as they were (``before``: the items the
    plan started from) is sent as the caller's own message object: the same dict, the
    same parts (images, documents, signed thinking), the same extra keys (``name``,
    ``cache_control``, tool ids). Only what the compaction changed (summaries, stubbed
    results, shortened calls, messages it took items from) is written from the items
    (``to_anthropic`` / ``to_openai``), with the tool ids of the kept messages. The
    envelope (Anthropic ``system``, ``tools``) goes out as the caller gave it.
    """
    from ...sources.writers import ItemIds, anthropic_messages, to_openai

    spans = _kept_spans(before, items, len(effective))
    known: dict[str, str] = {}
    for start, (index, end) in spans.items():
        known.update(_kept_ids(items[start:end], effective[index]))
    ids = ItemIds("toolu_ctx_", sanitize=True)
    for pair_id, original in known.items():  # a rewritten half uses the kept half's id
        ids.known[pair_id] = original
        ids.used.add(original)

    pieces: list[tuple[Any, int | None]] = []
    run: list[Item] = []

    def flush() -> None:
        if not run:
            return
        if provider == ANTHROPIC:
            pieces.extend((message, None) for message in anthropic_messages(run, ids))
        else:
            for message in to_openai(run):  # its ids are the pair ids
                if message.get("tool_call_id") in known:
                    message["tool_call_id"] = known[message["tool_call_id"]]
                for call in message.get("tool_calls") or []:
                    call["id"] = known.get(call["id"], call["id"])
                pieces.append((message, None))
        run.clear()

    position = 0
    while position < len(items):
        span = spans.get(position)
        if span is None:
            item = items[position]
            in_envelope = item.role is Role.SYSTEM and item.message_index < 0
            if not (in_envelope and _source(item) is None):
                run.append(item)
            position += 1
            continue
        flush()
        index, position = span
        pieces.append((effective[index], index))
    flush()
    return _alternating(pieces) if provider == ANTHROPIC else pieces


def _alternating(pieces: list[tuple[Any, int | None]]) -> list[tuple[Any, int | None]]:
    """Anthropic messages whose roles alternate, starting with the user: two messages
    of one role in a row (a summary next to a kept user message) become one."""
    from ...sources.writers import CONTINUE_TEXT

    out: list[tuple[Any, int | None]] = []
    for message, index in pieces:
        role = _role(message)
        if not out or _role(out[-1][0]) != role:
            out.append((message, index))
            continue
        blocks = [*_content_blocks(out[-1][0]), *_content_blocks(message)]
        if role == "user":  # tool results first, in their order
            blocks.sort(key=lambda b: not (isinstance(b, dict) and b.get("type") == "tool_result"))
        out[-1] = ({"role": role, "content": blocks}, None)
    if not out or _role(out[0][0]) != "user":
        opening = {"role": "user", "content": [{"type": "text", "text": CONTINUE_TEXT}]}
        out.insert(0, (opening, None))
    return out


def _content_blocks(message: Any) -> list[Any]:
    data = plain(message)
    content = data.get("content") if isinstance(data, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    return list(content) if isinstance(content, list) else []
