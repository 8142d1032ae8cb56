"""The items of Claude Code records: one per content block, with its kind.

``TranscriptBuilder`` turns one ``user`` / ``assistant`` / ``system`` / ``attachment``
record at a time into items, remembering the tool calls met so that a result gets its
kind (a file read, a search, a sub-agent's report). The reader of whole transcripts
(``claude_code``) and the status line's incremental reader both make their items here.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from ..model import Component, Item, Kind, Role
from .claude_code_context import string_of
from .content import compact_json, document_text, tool_result_kind, unknown_text
from .tools import AGENT_TOOLS, READ_TOOLS, SEARCH_TOOLS

__all__ = ["TranscriptBuilder", "tool_result_text"]


def tool_result_text(content: Any) -> str:
    """The text of a tool_result's content, as this reader counts it."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, dict) and block.get("type") == "image":
                parts.append("[image]")
            elif isinstance(block, dict) and block.get("type") == "document":
                parts.append(document_text(block))  # a PDF's bytes are no text
            else:
                parts.append(unknown_text(block))
        return "\n".join(parts)
    return "" if content is None else _dumps(content)


# json.dumps(value, ensure_ascii=False), without making an encoder for each call
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


def _dumps(value: Any) -> str:
    try:
        return _ENCODE(value)
    except (RecursionError, ValueError):
        return compact_json(value)


def _result_kind(tool: str | None, call_input: Any) -> Kind:
    if tool in READ_TOOLS:
        return Kind.FILE_READ
    if tool in SEARCH_TOOLS:
        return Kind.SEARCH_RESULT
    if tool in AGENT_TOOLS:
        return Kind.AGENT_REPORT
    return tool_result_kind(tool, call_input)  # e.g. Bash running grep: a search


class TranscriptBuilder:
    """Makes the items of Claude Code records, one record at a time.

    ``items_of(record, agent, message_index)`` gives the items of one ``user`` /
    ``assistant`` record exactly as ``read_claude_code`` makes them: one per content
    block, with the tool names and inputs of earlier ``tool_use`` blocks remembered
    so that a ``tool_result`` gets its kind (file read, search, agent report). The
    status line uses it to read a transcript incrementally with the reader's items.
    """

    def __init__(self, system_messages: bool = True) -> None:
        self.unknown = 0
        self.tool_names: dict[str, str] = {}
        self.tool_inputs: dict[str, Any] = {}
        self.model: str | None = None
        # Whether the requests send the system-role reminders as system messages (as
        # they go to a model that takes them: without their tags) or as the user's text
        self.system_messages = system_messages

    def items_of(self, record: dict[str, Any], agent: str, message_index: int) -> list[Item]:
        rtype = record.get("type")
        if rtype == "attachment":
            return self._reminders(record, agent, message_index)
        if rtype == "system":  # a local command's output, sent as the user's
            content = record.get("content")
            if not isinstance(content, str) or not content:
                return []
            common = _common(record, agent, message_index, string_of(record.get("uuid")))
            return [
                Item(
                    role=Role.USER, kind=Kind.USER_TEXT, text=content, raw={"block": None}, **common
                )
            ]
        message = record.get("message")
        if not isinstance(message, dict):
            self.unknown += 1
            return []
        if record.get("isApiErrorMessage") is True:
            # an error Claude Code shows the user ("Autocompact is thrashing…", "API
            # Error: …"): never sent to the model again
            return []
        role = Role.ASSISTANT if rtype == "assistant" else Role.USER
        model = message.get("model")
        # "<synthetic>" marks messages Claude Code made itself (errors, aborts).
        if rtype == "assistant" and isinstance(model, str) and not model.startswith("<"):
            self.model = model
        content = message.get("content")
        common = _common(record, agent, message_index, record.get("uuid"))
        if isinstance(content, str):
            kind = (
                Kind.SUMMARY
                if record.get("isCompactSummary")
                else (Kind.USER_TEXT if role is Role.USER else Kind.ASSISTANT_TEXT)
            )
            return [Item(role=role, kind=kind, text=content, raw={"block": None}, **common)]
        if not isinstance(content, list):
            self.unknown += 1
            return []
        items = []
        uuid = record.get("uuid")
        for n, block in enumerate(content):
            # one record, several blocks: each item needs an id of its own
            block_common = {**common, "id": uuid if n == 0 or not uuid else f"{uuid}:{n}"}
            items.append(self._block(block, role, record, block_common))
        return items

    def _reminders(self, record: dict[str, Any], agent: str, message_index: int) -> list[Item]:
        """An attachment's ``rendered`` texts: what Claude Code sends the model for it
        (none for bookkeeping attachments such as prompt snapshots), or the image a
        prompt mentioned (``@shot.png``), which Claude Code records unrendered."""
        rendered = record.get("rendered")
        if not isinstance(rendered, list):
            return self._mentioned_image(record, agent, message_index)
        texts = [
            part["content"]
            for part in rendered
            if isinstance(part, dict) and isinstance(part.get("content"), str) and part["content"]
        ]
        if record.get("renderedRole") == "system" and self.system_messages:
            # sent in the request's system message, joined, each without its wrapper
            texts = [_unwrapped(text) for text in texts]
        attachment = record.get("attachment")
        what = string_of(attachment.get("type")) if isinstance(attachment, dict) else None
        uuid = record.get("uuid")
        return [
            Item(
                role=Role.USER,
                kind=Kind.REMINDER,
                text=text,
                raw={"attachment": what},
                **_common(
                    record, agent, message_index, uuid if n == 0 or not uuid else f"{uuid}:{n}"
                ),
            )
            for n, text in enumerate(texts)
        ]

    def _mentioned_image(
        self, record: dict[str, Any], agent: str, message_index: int
    ) -> list[Item]:
        """A file attachment holding an image (its base64 under ``content.file``): sent
        as an image block after the prompt, priced by its pixels. (Claude Code also sends
        a line saying it read the file, in its own words: not counted.)"""
        attachment = record.get("attachment")
        content = attachment.get("content") if isinstance(attachment, dict) else None
        file = content.get("file") if isinstance(content, dict) else None
        data = file.get("base64") if isinstance(file, dict) else None
        if not isinstance(content, dict) or content.get("type") != "image":
            return []
        if not isinstance(data, str) or not data:
            return []
        block = {"type": "image", "source": {"type": "base64", "data": data}}
        return [
            Item(
                role=Role.USER,
                kind=Kind.IMAGE,
                text="[image]",
                raw={"attachment": "file", "block": block},  # priced when counted
                **_common(record, agent, message_index, record.get("uuid")),
            )
        ]

    def _block(
        self, block: Any, role: Role, record: dict[str, Any], common: dict[str, Any]
    ) -> Item:
        btype = string_of(block.get("type")) if isinstance(block, dict) else None
        raw = {"block": block}
        if btype == "text":
            if record.get("isCompactSummary"):
                kind = Kind.SUMMARY
            else:
                kind = Kind.USER_TEXT if role is Role.USER else Kind.ASSISTANT_TEXT
            return Item(role=role, kind=kind, text=str(block.get("text", "")), raw=raw, **common)
        if btype in ("thinking", "redacted_thinking"):
            text = str(block.get("thinking") or block.get("data") or "")
            return Item(role=role, kind=Kind.THINKING, text=text, raw=raw, **common)
        if btype == "tool_use":
            name = string_of(block.get("name")) or ""
            call_id = string_of(block.get("id"))
            if call_id is not None:
                self.tool_names[call_id] = name
                self.tool_inputs[call_id] = block.get("input")
            text = name + " " + _dumps(block.get("input"))
            return Item(
                role=role,
                kind=Kind.TOOL_CALL,
                text=text,
                tool=name,
                pair_id=call_id,
                raw=raw,
                **common,
            )
        if btype == "tool_result":
            call_id = string_of(block.get("tool_use_id"))
            tool = self.tool_names.get(call_id) if call_id is not None else None
            return Item(
                role=Role.TOOL,
                kind=_result_kind(tool, self.tool_inputs.get(call_id) if call_id else None),
                text=tool_result_text(block.get("content")),
                tool=tool,
                pair_id=call_id,
                raw=raw,
                **common,
            )
        if btype == "document":  # a file the user attached: reference material
            return Item(
                role=role,
                kind=Kind.USER_TEXT,
                text=document_text(block),
                component=Component.KNOWLEDGE_BASE,
                raw=raw,
                **common,
            )
        if btype == "image":
            return Item(
                role=role,
                kind=Kind.IMAGE,
                text="[image]",  # priced by its pixels when counted (sources.media)
                raw=raw,
                **common,
            )
        self.unknown += 1
        text = unknown_text(block) if block is not None else ""
        return Item(role=role, kind=Kind.UNKNOWN, text=text, raw=raw, **common)


def _common(record: dict[str, Any], agent: str, message_index: int, item_id: Any) -> dict[str, Any]:
    """The fields every item of a record shares: its agent, message, id and time."""
    common: dict[str, Any] = {"agent": agent, "message_index": message_index, "id": item_id}
    when = _epoch(record.get("timestamp"))
    if when is not None:
        common["created_at"] = when
    return common


def _epoch(timestamp: Any) -> float | None:
    """Seconds since the epoch of an ISO timestamp ("2025-07-21T18:16:56.261Z")."""
    if not isinstance(timestamp, str):
        return None
    try:
        return datetime.fromisoformat(timestamp).timestamp()  # "Z" read since Python 3.11
    except (ValueError, OverflowError, OSError):
        return None


_WRAPPER = re.compile(r"<system-reminder>\n(.*)\n</system-reminder>", re.S)


def _unwrapped(text: str) -> str:
    """A system reminder's text without its ``<system-reminder>`` tags."""
    m = _WRAPPER.fullmatch(text)
    return m.group(1) if m else text
