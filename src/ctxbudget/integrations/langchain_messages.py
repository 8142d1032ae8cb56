"""LangChain messages and ctxbudget Items, both ways.

``messages_to_items`` reads a LangChain message list as Items (one or more per
message, a tool call paired with its result); ``items_to_messages`` turns Items (a
compacted context) back into messages, giving back the very same message object where
its items are unchanged. The LangGraph hook and the LangChain middleware
(``ctxbudget.integrations.langgraph``) convert through them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import MissingExtraError
from ..model import Item, Kind, Role, content_hash
from ..sources.content import TEXT_KIND, PairIds, compact_json, flatten_content, tool_result_kind

try:
    from langchain_core.messages import (
        AIMessage,
        BaseMessage,
        ChatMessage,
        FunctionMessage,
        HumanMessage,
        SystemMessage,
        ToolCall,
        ToolMessage,
    )
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingExtraError(
        "the LangGraph / LangChain integration", "langgraph", "langchain-core"
    ) from exc

__all__ = ["MessageConverter", "items_to_messages", "messages_to_items", "origin_of"]

# Where the converter notes which LangChain message an item came from (in ``raw``).
_LC = "langchain"

_CALL_PARTS = {"tool_use", "tool_call", "function_call", "tool_call_chunk", "server_tool_call"}
_THINKING_PARTS = {"thinking", "reasoning", "redacted_thinking"}
_MEDIA_PARTS = {"image", "audio", "video", "file"}
_CHAT_ROLES = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "user": Role.USER,
    "human": Role.USER,
    "assistant": Role.ASSISTANT,
    "ai": Role.ASSISTANT,
    "tool": Role.TOOL,
    "function": Role.TOOL,
}
_TEXT_KIND = TEXT_KIND


# ---------------------------------------------------------------- messages → items


def _media_note(part: Mapping[str, Any]) -> str:
    """A short stand-in for a LangChain standard media block (image, audio, file)."""
    ptype = str(part.get("type"))
    mime = part.get("mime_type") or ""
    for key in ("base64", "data"):
        if isinstance(part.get(key), str):
            return f"[{ptype} {mime or key} {content_hash(part[key])[:12]}]".replace("  ", " ")
    for key in ("url", "file_id", "id"):
        if isinstance(part.get(key), str):
            return f"[{ptype} {str(part[key])[:200]}]"
    return f"[{ptype}]"


def _content_text(content: Any) -> tuple[str, list[str]]:
    """The text of a message's content, and its thinking / reasoning parts apart.

    Tool-call parts are left out: a message's ``tool_calls`` carry them (providers
    such as Anthropic repeat them in the content).
    """
    if not isinstance(content, list):
        return flatten_content(content)[0], []
    texts: list[str] = []
    thinking: list[str] = []
    for part in content:
        ptype = part.get("type") if isinstance(part, dict) else None
        if ptype in _CALL_PARTS:
            continue
        if isinstance(part, dict) and ptype in _THINKING_PARTS:
            value = part.get("thinking") or part.get("reasoning") or part.get("data") or ""
            thinking.append(str(value))
        elif isinstance(part, dict) and ptype in _MEDIA_PARTS and "source" not in part:
            texts.append(_media_note(part))
        else:
            text = flatten_content([part])[0]
            if text:
                texts.append(text)
    return "\n".join(texts), thinking


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy (the store keeps ``raw`` as JSON)."""
    return json.loads(compact_json(value))


class MessageConverter:
    """Turns messages into Items, remembering calls so their results pair up."""

    def __init__(self) -> None:
        self.pair_ids = PairIds()
        self.tool_names: dict[str, str] = {}
        self.tool_inputs: dict[str, Any] = {}

    def seed(self, items: Sequence[Item]) -> None:
        """Learn the calls already in a session (a hook resuming on a stored session)."""
        for item in items:
            block = _block(item)
            if item.kind is Kind.TOOL_CALL and block is not None and block.get("id"):
                pair = self.pair_ids.call(str(block["id"]))
                self.tool_names[pair] = str(item.tool or "")
                self.tool_inputs[pair] = block.get("input")

    def items(self, messages: Sequence[BaseMessage]) -> list[Item]:
        out: list[Item] = []
        for index, message in enumerate(messages):
            out.extend(self.message(message, index))
        return out

    def message(self, message: BaseMessage, index: int) -> list[Item]:
        lc = {"id": message.id, "type": message.type, "message": index}
        items: list[Item] = []

        def add(role: Role, kind: Kind, text: str, block: Any = None, **fields: Any) -> None:
            raw = {_LC: lc, "message": index, "block": block}
            items.append(
                Item(role=role, kind=kind, text=text, message_index=index, raw=raw, **fields)
            )

        text, thinking = _content_text(message.content)
        if isinstance(message, AIMessage):
            for part in thinking:
                add(Role.ASSISTANT, Kind.THINKING, part)
            if text:
                add(Role.ASSISTANT, Kind.ASSISTANT_TEXT, text)
            for call in message.tool_calls:
                name, args, call_id = call["name"], call.get("args") or {}, call.get("id")
                pair = self.pair_ids.call(call_id) if call_id else None
                if pair is not None:
                    self.tool_names[pair] = name
                    self.tool_inputs[pair] = args
                block = {"type": "tool_call", "id": call_id, "name": name, "input": _jsonable(args)}
                add(
                    Role.ASSISTANT,
                    Kind.TOOL_CALL,
                    f"{name} {compact_json(args)}",
                    block,
                    tool=name,
                    pair_id=pair,
                )
        elif isinstance(message, ToolMessage | FunctionMessage):
            call_id = getattr(message, "tool_call_id", None)
            pair = self.pair_ids.result(call_id) if call_id else None
            tool = (self.tool_names.get(pair) if pair else None) or message.name
            kind = tool_result_kind(tool, self.tool_inputs.get(pair) if pair else None)
            block = {"type": "tool_result", "tool_call_id": call_id}
            add(Role.TOOL, kind, text, block, tool=tool, pair_id=pair)
        else:
            if isinstance(message, SystemMessage):
                role = Role.SYSTEM
            elif isinstance(message, ChatMessage):
                role = _CHAT_ROLES.get(message.role.lower(), Role.USER)
            elif isinstance(message, HumanMessage):
                role = Role.USER
            else:
                role = _CHAT_ROLES.get(message.type, Role.USER)
            add(role, _TEXT_KIND[role], text)
        if not items:  # an empty message still takes its place in the conversation
            role = Role.ASSISTANT if isinstance(message, AIMessage) else Role.USER
            add(role, _TEXT_KIND[role], "")
        return items


def messages_to_items(messages: Sequence[BaseMessage]) -> list[Item]:
    """LangChain messages as ctxbudget Items, one or more per message.

    ``SystemMessage`` → system prompt; ``HumanMessage`` → user text; ``AIMessage`` →
    its thinking, its text and one tool-call item per ``tool_calls`` entry;
    ``ToolMessage`` → a tool result (a file read, a search or a sub-agent report by the
    tool's name, as the other readers decide). A call and its result share
    ``pair_id``. Items of one message share ``message_index`` (its position), and
    ``raw`` notes the message's id and position, so ``items_to_messages`` can give
    the same message back.
    """
    return MessageConverter().items(messages)


# ---------------------------------------------------------------- items → messages


def origin_of(item: Item) -> dict[str, Any] | None:
    """Which LangChain message an item came from (its id, type and position), as the
    converter noted it."""
    raw = item.raw
    meta = raw.get(_LC) if isinstance(raw, dict) else None
    return meta if isinstance(meta, dict) else None


def _block(item: Item) -> dict[str, Any] | None:
    raw = item.raw
    block = raw.get("block") if isinstance(raw, dict) else None
    return block if isinstance(block, dict) else None


def _groups(items: Sequence[Item]) -> list[list[Item]]:
    """Runs of items that make one message: same message, same side; a summary alone."""
    groups: list[list[Item]] = []
    previous: tuple[Any, ...] | None = None
    for item in items:
        meta = origin_of(item)
        key = (item.message_index, item.role, meta.get("id") if meta else None)
        if item.kind is Kind.SUMMARY or not groups or key != previous:
            groups.append([item])
        else:
            groups[-1].append(item)
        previous = None if item.kind is Kind.SUMMARY else key
    return groups


def _call_args(item: Item, block: Mapping[str, Any] | None) -> dict[str, Any]:
    """A call's arguments: the original ones while the text is unchanged, else the
    JSON after the tool name (a compaction may have shortened large inputs)."""
    name = item.tool or ""
    if block is not None:
        original = block.get("input")
        if item.text == f"{name} {compact_json(original if original is not None else {})}":
            return dict(original) if isinstance(original, dict) else {"input": original}
    rest = item.text[len(name) + 1 :] if name and item.text.startswith(name + " ") else item.text
    try:
        parsed = json.loads(rest) if rest.strip() else {}
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"text": rest}


def _rebuild(group: Sequence[Item], original: BaseMessage | None) -> BaseMessage:
    """A new message from a group's (possibly compacted) items."""
    first = group[0]
    meta = origin_of(first)
    message_id = original.id if original is not None else (meta or {}).get("id")
    texts = [i.text for i in group if i.kind not in (Kind.TOOL_CALL, Kind.THINKING) and i.text]
    text = "\n\n".join(texts)
    if first.role is Role.SYSTEM:
        return SystemMessage(content=text, id=message_id)
    if first.role is Role.TOOL:
        result = _block(first) or {}
        call_id = result.get("tool_call_id") or (first.pair_id or "").split("#", 1)[0]
        status = getattr(original, "status", "success")
        return ToolMessage(
            content=text,
            tool_call_id=str(call_id),
            name=first.tool,
            id=message_id,
            status=status if status in ("success", "error") else "success",
        )
    if first.role is Role.ASSISTANT:
        calls: list[ToolCall] = []
        for item in group:
            if item.kind is not Kind.TOOL_CALL:
                continue
            block = _block(item)
            call_id = (block or {}).get("id") or (item.pair_id or "").split("#", 1)[0] or None
            calls.append(
                ToolCall(
                    name=item.tool or "tool",
                    args=_call_args(item, block),
                    id=call_id,
                    type="tool_call",
                )
            )
        name = original.name if original is not None else None
        return AIMessage(content=text, tool_calls=calls, id=message_id, name=name)
    return HumanMessage(content=text, id=message_id)


def items_to_messages(
    items: Sequence[Item], originals: Sequence[BaseMessage] | Mapping[str, BaseMessage] = ()
) -> list[BaseMessage]:
    """Items (a compacted context) back into LangChain messages.

    A message whose items are all still as ``messages_to_items`` made them is given back
    as the original object, found in ``originals`` by id (a mapping, or the list the
    items came from, where a message without id is found by position). Any other
    message is rebuilt from its items' texts: a shortened tool result, an assistant
    message keeping its tool calls (with their original ids, so every ``ToolMessage``
    still answers its call), and each summary as a ``HumanMessage``.
    """
    if isinstance(originals, Mapping):
        by_id: Mapping[str, BaseMessage] = originals
        by_position: Sequence[BaseMessage] = ()
    else:
        by_id = {m.id: m for m in originals if m.id is not None}
        by_position = originals
    out: list[BaseMessage] = []
    for group in _groups(items):
        first = group[0]
        if first.kind is Kind.SUMMARY:
            out.append(HumanMessage(content=first.text))
            continue
        meta = origin_of(first)
        original: BaseMessage | None = None
        if meta is not None:
            if meta.get("id") is not None:
                original = by_id.get(str(meta["id"]))
            elif isinstance(meta.get("message"), int) and meta["message"] < len(by_position):
                original = by_position[meta["message"]]
        if original is not None:
            derived = [i.text for i in MessageConverter().message(original, 0)]
            if derived == [i.text for i in group]:
                out.append(original)
                continue
        out.append(_rebuild(group, original))
    return out
