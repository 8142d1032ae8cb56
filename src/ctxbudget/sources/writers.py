"""Writers: a list of Items (a compacted context) back into the message formats.

A compacted context holds three sorts of items: originals kept as they were, stubs
(originals whose ``text`` was shortened; their ``raw`` still holds the original
block) and new summary items (``Kind.SUMMARY``, role user, ``raw=None``). A writer
reuses an item's original block only when the item's text is still the text the
reader derived from that block; otherwise it builds a fresh block from the text, so a
stub is never written out with its original, longer content.

- ``to_anthropic``: an Anthropic Messages request (``system``, ``tools``, ``messages``);
- ``to_openai``: an OpenAI chat message list.

Claude Code JSONL records a session can be resumed from: ``claude_code_writer``, on
top of these; one of them or plain text written to a file: ``writing``.

What the provider would reject in a message list: ``ctxbudget.sources.validation``.

Rules the writers keep: Anthropic roles alternate (consecutive same-role messages are
merged), the first message is a user message, tool_result blocks come first in their
user message, and tool ids are valid API ids (``[A-Za-z0-9_-]``). Thinking blocks are
kept only when their original (signed) block can be reused unchanged: a changed or
rebuilt thinking block would be rejected, and OpenAI chat messages carry none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..model import Item, Kind, Role
from .content import (
    DOCUMENT_PARTS,
    IMAGE_PARTS,
    compact_json,
    document_text,
    flatten_content,
    image_note,
)
from .media import result_text_unchanged

__all__ = [
    "CONTINUE_TEXT",
    "ItemIds",
    "anthropic_messages",
    "continue_message",
    "parse_json",
    "to_anthropic",
    "to_openai",
]

CONTINUE_TEXT = "(conversation continues)"

_TOOL_USE_TYPES = {"tool_use"}
# Blocks the API runs server-side: call and result both live in the assistant message.
_SERVER_CALL_TYPES = {"server_tool_use", "mcp_tool_use"}
_BAD_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_REUSABLE_TEXT_TYPES = {"text", "document", "search_result"}


# ---------------------------------------------------------------- item helpers


def _raw_block(item: Item) -> dict[str, Any] | None:
    """The original block of ``item`` (a dict), if the reader kept one."""
    raw = item.raw
    block = raw.get("block") if isinstance(raw, dict) else None
    return block if isinstance(block, dict) else None


def _block_type(block: dict[str, Any] | None) -> str:
    btype = block.get("type") if block is not None else None
    return btype if isinstance(btype, str) else ""


def _is_server_result(block: dict[str, Any] | None) -> bool:
    btype = _block_type(block)
    return btype.endswith("_tool_result") and btype != "tool_result"


def parse_json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def _call_spec(block: dict[str, Any]) -> tuple[str | None, Any, bool]:
    """Name, arguments and whether the arguments are a JSON string (OpenAI) of a call
    block in any dialect: Anthropic tool_use, OpenAI tool call, legacy function_call."""
    if "input" in block and isinstance(block.get("name"), str):
        return block["name"], block["input"], False
    spec = block.get(block.get("type") or "function")
    spec = spec if isinstance(spec, dict) else block
    name = spec.get("name")
    args = spec.get("arguments", spec.get("input"))
    return (name if isinstance(name, str) else None), args, isinstance(args, str)


def _call_rest(item: Item, name: str | None = None) -> str | None:
    """The text after the tool name (the arguments' text), or None when the text does
    not start with the name."""
    name = name if name is not None else item.tool
    if not name:
        return None
    if item.text == name:
        return ""
    if item.text.startswith(name + " "):
        return item.text[len(name) + 1 :]
    return None


def _call_unchanged(item: Item, block: dict[str, Any]) -> bool:
    name, args, is_string = _call_spec(block)
    rest = _call_rest(item, name)
    if rest is None:
        return False
    ok, parsed = parse_json(rest)
    if is_string:
        given_ok, given = parse_json(args)
        return bool(ok and given_ok and parsed == given) or rest == args
    return ok and bool(parsed == (args if args is not None else {}))


def _unchanged(item: Item, block: dict[str, Any]) -> bool:
    """Is ``item.text`` still what a reader derived from ``block``?"""
    btype = _block_type(block)
    if item.kind is Kind.TOOL_CALL:
        return _call_unchanged(item, block)
    if btype.endswith("tool_result"):
        return result_text_unchanged(item.text, block.get("content"))
    if btype in ("thinking", "redacted_thinking"):
        return item.text == str(block.get("thinking") or block.get("data") or "")
    if btype in IMAGE_PARTS:
        return item.text in ("[image]", image_note(block))
    if btype in DOCUMENT_PARTS:
        return item.text == document_text(block)
    if btype == "search_result":
        return item.text == flatten_content(block.get("content"))[0]
    text = block.get("text")
    return isinstance(text, str) and item.text == text


def _input_from_text(item: Item) -> dict[str, Any]:
    """A tool call's input rebuilt from its text: the JSON after the tool name, or
    ``{"text": ...}`` when that is not a JSON object."""
    rest = _call_rest(item)
    if rest is None:
        rest = item.text
    if not rest.strip():
        return {}
    ok, parsed = parse_json(rest)
    if ok and isinstance(parsed, dict):
        return parsed
    return {"text": rest}


def _tool_name(item: Item) -> str:
    """A valid API tool name for a rebuilt call."""
    name = item.tool or (item.text.split(maxsplit=1) or ["tool"])[0]
    return _BAD_ID_CHARS.sub("_", name)[:64] or "tool"


def _is_tool_definition(item: Item) -> bool:
    return item.role is Role.SYSTEM and item.tool is not None and item.message_index == -1


class ItemIds:
    """Tool ids for one output: each pair id maps to one unique, valid id."""

    def __init__(self, prefix: str, *, sanitize: bool) -> None:
        self.prefix = prefix
        self.sanitize = sanitize
        self.known: dict[str, str] = {}
        self.used: set[str] = set()
        self.fresh_count = 0

    def _unique(self, candidate: str) -> str:
        out, n = candidate, 1
        while out in self.used:
            n += 1
            out = f"{candidate}_{n}"
        self.used.add(out)
        return out

    def of(self, pair_id: str | None) -> str:
        if pair_id is None:
            self.fresh_count += 1
            return self._unique(f"{self.prefix}{self.fresh_count}")
        if pair_id not in self.known:
            candidate = _BAD_ID_CHARS.sub("_", pair_id) if self.sanitize else pair_id
            self.known[pair_id] = self._unique(candidate or self.prefix)
        return self.known[pair_id]


# ---------------------------------------------------------------- Anthropic


def _anthropic_image(block: dict[str, Any]) -> dict[str, Any] | None:
    """An OpenAI image part as an Anthropic image block."""
    url: Any = block.get("image_url")
    if isinstance(url, dict):
        url = url.get("url")
    if not isinstance(url, str):
        return None
    match = re.match(r"data:([^;,]+);base64,(.*)", url, re.S)
    if match:
        source = {"type": "base64", "media_type": match.group(1), "data": match.group(2)}
        return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _text_block(item: Item) -> dict[str, Any] | None:
    """A text block for ``item``: the original one (keeps cache_control, citations)
    when the text is unchanged, else a fresh one. None for empty text (rejected)."""
    if not item.text.strip():
        return None
    block = _raw_block(item)
    if block is not None and _block_type(block) == "text" and _unchanged(item, block):
        return dict(block)
    return {"type": "text", "text": item.text}


def _anthropic_block(item: Item, ids: ItemIds) -> tuple[str, dict[str, Any]] | None:
    """The API role and block of one non-system item, or None to leave it out."""
    block = _raw_block(item)
    btype = _block_type(block)
    same = block is not None and _unchanged(item, block)
    if item.kind is Kind.SUMMARY:
        text = _text_block(item)
        return ("user", text) if text else None
    if item.kind is Kind.TOOL_CALL:
        if btype in _SERVER_CALL_TYPES:  # run by the API: no tool_result to pair with
            if same and block is not None:
                return "assistant", dict(block)
            text = _text_block(item)
            return ("assistant", text) if text else None
        call_id = ids.of(item.pair_id)
        if block is not None and btype in _TOOL_USE_TYPES and same:
            return "assistant", {**block, "id": call_id}
        use = {"type": "tool_use", "id": call_id, "name": _tool_name(item)}
        return "assistant", {**use, "input": _input_from_text(item)}
    if item.role is Role.TOOL:
        if _is_server_result(block):
            if same and block is not None:
                return "assistant", dict(block)
            text = _text_block(item)
            return ("assistant", text) if text else None
        if item.pair_id is None:  # a result no call can claim: keep its text
            text = _text_block(item)
            return ("user", text) if text else None
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": ids.of(item.pair_id)}
        if block is not None and btype == "tool_result" and same:
            result = {**block, "tool_use_id": result["tool_use_id"]}
        else:
            if item.text:
                result["content"] = item.text
            if block is not None and isinstance(block.get("is_error"), bool):
                result["is_error"] = block["is_error"]
        return "user", result
    role = "assistant" if item.role is Role.ASSISTANT else "user"
    if item.kind is Kind.THINKING:
        # Only the signed original is accepted; anything else is left out.
        if block is not None and same and ("signature" in block or btype == "redacted_thinking"):
            return role, dict(block)
        return None
    if block is not None and same:
        if btype == "image" and isinstance(block.get("source"), dict):
            return role, dict(block)
        if btype in ("image_url", "input_image"):
            image = _anthropic_image(block)
            if image is not None:
                return role, image
        if btype in _REUSABLE_TEXT_TYPES and btype != "text":
            return role, dict(block)
    text = _text_block(item)
    return (role, text) if text else None


def _anthropic_tool(item: Item) -> dict[str, Any] | None:
    """A tool definition in Anthropic's shape, from the item's text or raw."""
    ok, parsed = parse_json(item.text)
    definition = parsed if ok and isinstance(parsed, dict) else _raw_block(item)
    if definition is None:
        return None
    function = definition.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        tool: dict[str, Any] = {"name": function["name"]}
        if isinstance(function.get("description"), str):
            tool["description"] = function["description"]
        parameters = function.get("parameters")
        tool["input_schema"] = (
            parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}
        )
        return tool
    return definition if isinstance(definition.get("name"), str) else None


def _tool_results_first(message: dict[str, Any]) -> None:
    blocks: list[dict[str, Any]] = message["content"]
    results = [b for b in blocks if b.get("type") == "tool_result"]
    others = [b for b in blocks if b.get("type") != "tool_result"]
    message["content"] = results + others


def anthropic_messages(items: Iterable[Item], ids: ItemIds) -> list[dict[str, Any]]:
    """The conversation items as alternating messages (system items are skipped)."""
    messages: list[dict[str, Any]] = []
    for item in items:
        if item.role is Role.SYSTEM:
            continue
        placed = _anthropic_block(item, ids)
        if placed is None:
            continue
        role, block = placed
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].append(block)
        else:
            messages.append({"role": role, "content": [block]})
    for message in messages:
        if message["role"] == "user":
            _tool_results_first(message)
    return messages


def continue_message() -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": CONTINUE_TEXT}]}


def to_anthropic(items: Sequence[Item], *, model: str | None = None) -> dict[str, Any]:
    """An Anthropic Messages request: ``{"model", "system", "tools", "messages"}``.

    System-role items go to ``system`` (a string when there is one plain text, else a
    list of text blocks), tool definitions to ``tools`` (converted from OpenAI's shape
    if needed; dropped when no definition is known). Keys with nothing to hold are
    left out. The first message is a user message (``CONTINUE_TEXT`` is inserted when
    the kept items start with the assistant).
    """
    system: list[dict[str, Any]] = []
    tools: list[dict[str, Any]] = []
    for item in items:
        if item.role is not Role.SYSTEM:
            continue
        if _is_tool_definition(item):
            tool = _anthropic_tool(item)
            if tool is not None:
                tools.append(tool)
        else:
            block = _text_block(item)
            if block is not None:
                system.append(block)
    messages = anthropic_messages(items, ItemIds("toolu_ctx_", sanitize=True))
    if not messages or messages[0]["role"] != "user":
        messages.insert(0, continue_message())
    out: dict[str, Any] = {}
    if model is not None:
        out["model"] = model
    if len(system) == 1 and set(system[0]) == {"type", "text"}:
        out["system"] = system[0]["text"]
    elif system:
        out["system"] = system
    if tools:
        out["tools"] = tools
    out["messages"] = messages
    return out


# ---------------------------------------------------------------- OpenAI


def _openai_arguments(item: Item) -> str:
    block = _raw_block(item)
    if block is not None and _call_unchanged(item, block):
        _, args, is_string = _call_spec(block)
        return str(args) if is_string else compact_json(args if args is not None else {})
    return compact_json(_input_from_text(item))


def _openai_tool_call(item: Item, ids: ItemIds) -> dict[str, Any]:
    block = _raw_block(item)
    name = _call_spec(block)[0] if block is not None and _call_unchanged(item, block) else None
    return {
        "id": ids.of(item.pair_id),
        "type": "function",
        "function": {"name": name or _tool_name(item), "arguments": _openai_arguments(item)},
    }


def to_openai(items: Sequence[Item], *, model: str | None = None) -> list[dict[str, Any]]:
    """OpenAI chat messages with string content.

    System items become system messages (one each), tool calls become the assistant's
    ``tool_calls``, results ``role: "tool"`` messages. Consecutive user (or assistant)
    texts are merged, joined by a blank line. Tool definitions, thinking and images
    (kept as their text notes) have no place in a plain message list; ``model`` is
    accepted for symmetry with ``to_anthropic`` and not written.
    """
    del model  # a message list has no envelope to hold it
    ids = ItemIds("call_ctx_", sanitize=False)
    out: list[dict[str, Any]] = []
    for item in items:
        block = _raw_block(item)
        if item.role is Role.SYSTEM:
            if not _is_tool_definition(item) and item.text:
                out.append({"role": "system", "content": item.text})
            continue
        if item.kind is Kind.THINKING:
            continue
        server_side = _block_type(block) in _SERVER_CALL_TYPES or _is_server_result(block)
        if item.kind is Kind.TOOL_CALL and not server_side:
            call = _openai_tool_call(item, ids)
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
            continue
        if item.role is Role.TOOL and item.pair_id is not None and not server_side:
            out.append({"role": "tool", "tool_call_id": ids.of(item.pair_id), "content": item.text})
            continue
        if not item.text.strip():
            continue
        role = "assistant" if item.role is Role.ASSISTANT or server_side else "user"
        last = out[-1] if out else None
        if last is not None and last["role"] == role:
            last["content"] = f"{last['content']}\n\n{item.text}" if last["content"] else item.text
        else:
            out.append({"role": role, "content": item.text})
    return out
