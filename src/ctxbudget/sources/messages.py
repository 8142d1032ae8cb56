"""Reader of Anthropic and OpenAI message lists (already-parsed JSON) into Items.

Accepts a list of ``{role, content}`` messages or a request-shaped object
``{"messages": [...], "system": ..., "model": ..., "tools": [...]}``, in either
provider's dialect (or a mix: the reader takes the union of both). Every content block
becomes one Item; tool calls and their results share ``pair_id``. A message that
carries ``usage`` (an API response logged next to the messages) becomes an ``ApiCall``;
usage with a bad count (a string, NaN, a negative number) is named in
``Transcript.problems`` and anchors nothing.
What every reader shares (a block's text, image and document stand-ins, the tool-name
heuristics) is ``content``. This module does no file I/O, no JSON
parsing and no choice between formats: the loader in ``sources/__init__`` does those.
"""

from __future__ import annotations

from typing import Any

from ..errors import SourceError
from ..model import ApiCall, Component, Item, Kind, Role, Transcript, Usage
from .content import (
    DOCUMENT_PARTS,
    IMAGE_PARTS,
    TEXT_KIND,
    TEXT_PARTS,
    PairIds,
    compact_json,
    document_text,
    flatten_content,
    image_note,
    parse_arguments,
    tool_result_kind,
    type_of,
    unknown_text,
)
from .problems import ProblemLog, shown

__all__ = [
    "ANTHROPIC",
    "GENERIC",
    "OPENAI",
    "looks_like_messages",
    "messages_format",
    "read_messages",
]

ANTHROPIC = "anthropic-messages"
OPENAI = "openai-messages"
GENERIC = "messages"

_ROLES = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "user": Role.USER,
    "assistant": Role.ASSISTANT,
    "tool": Role.TOOL,
    "function": Role.TOOL,
}
# Evidence for the dialect: shapes only one provider accepts.
_OPENAI_ONLY_PARTS = {"image_url", "input_text", "output_text", "input_image", "refusal", "file"}
_ANTHROPIC_ONLY_PARTS = {"tool_use", "tool_result", "thinking", "redacted_thinking", "document"}
# (a system message in the list: Anthropic's system prompt is a field of its own)
_OPENAI_ONLY_ROLES = {"tool", "function", "developer", "system"}
_OPENAI_ONLY_KEYS = ("tool_calls", "function_call", "tool_call_id")


def _split(data: Any) -> tuple[list[Any], dict[str, Any]]:
    if isinstance(data, list):
        return data, {}
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        return data["messages"], data
    raise SourceError(
        'not a message list: expected [{"role": ..., "content": ...}] or {"messages": [...]}'
    )


def looks_like_messages(data: Any) -> bool:
    """A list (or ``{"messages": [...]}``) of which at least half are role dicts."""
    messages = data.get("messages") if isinstance(data, dict) else data
    if not isinstance(messages, list):
        return False
    if not messages:
        return isinstance(data, dict)  # {"messages": []} says what it is; [] does not
    with_role = sum(1 for m in messages if isinstance(m, dict) and isinstance(m.get("role"), str))
    return with_role > 0 and 2 * with_role >= len(messages)


def messages_format(data: Any) -> str:
    """``anthropic-messages``, ``openai-messages``, or ``messages`` when the shapes used
    are valid in both (plain text) or the evidence is split evenly."""
    try:
        messages, envelope = _split(data)
    except SourceError:
        return GENERIC
    openai = anthropic = 0
    if "system" in envelope:
        anthropic += 1  # OpenAI requests put the system prompt in the messages
    tools = envelope.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict) and "input_schema" in tool:
            anthropic += 1
        elif isinstance(tool, dict) and "function" in tool:
            openai += 1
    for message in messages:
        if not isinstance(message, dict):
            continue
        if str(message.get("role")) in _OPENAI_ONLY_ROLES:
            openai += 1
        openai += sum(1 for key in _OPENAI_ONLY_KEYS if key in message)
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            btype = type_of(block)
            if btype in _OPENAI_ONLY_PARTS:
                openai += 1
            elif btype in _ANTHROPIC_ONLY_PARTS or (btype == "image" and "source" in block):
                anthropic += 1
    if openai > anthropic:
        return OPENAI
    if anthropic > openai:
        return ANTHROPIC
    return GENERIC


class _Reader:
    """Walks the messages once, remembering calls so results can be paired."""

    def __init__(self, problems: ProblemLog) -> None:
        self.problems = problems
        self.items: list[Item] = []
        self.calls: list[ApiCall] = []
        self.unknown = 0
        self.model: str | None = None
        self.tool_names: dict[str, str] = {}
        self.tool_inputs: dict[str, Any] = {}
        self.pair_ids = PairIds()
        self.pending_functions: list[tuple[str, str]] = []  # legacy function_call: name, id

    def add(
        self, index: int | None, block: Any, role: Role, kind: Kind, text: str, **extra: Any
    ) -> Item:
        item = Item(
            role=role,
            kind=kind,
            text=text,
            message_index=-1 if index is None else index,
            raw={"message": index, "block": block},
            **extra,
        )
        self.items.append(item)
        return item

    def add_unknown(self, index: int | None, block: Any, role: Role = Role.USER) -> None:
        self.unknown += 1
        self.add(index, block, role, Kind.UNKNOWN, unknown_text(block))

    def envelope(self, envelope: dict[str, Any]) -> None:
        # Tools, then system, then messages: the order providers render the prompt in.
        tools = envelope.get("tools")
        for tool in tools if isinstance(tools, list) else []:
            # Tool definitions are billed as input tokens; they belong in the budget.
            name = tool.get("name") if isinstance(tool, dict) else None
            if name is None and isinstance(tool, dict) and isinstance(tool.get("function"), dict):
                name = tool["function"].get("name")
            name = name if isinstance(name, str) else None
            self.add(None, tool, Role.SYSTEM, Kind.SYSTEM_PROMPT, compact_json(tool), tool=name)
        system = envelope.get("system")
        if isinstance(system, str):
            self.add(None, None, Role.SYSTEM, Kind.SYSTEM_PROMPT, system)
        elif isinstance(system, list):
            for block in system:
                self.block(None, Role.SYSTEM, block)
        elif system is not None:
            self.add_unknown(None, system, Role.SYSTEM)

    def message(self, index: int, message: Any) -> None:
        if isinstance(message, dict) and isinstance(message.get("choices"), list):
            message = self._unwrap_completion(message)
        role = _ROLES.get(str(message.get("role"))) if isinstance(message, dict) else None
        if role is None or not isinstance(message, dict):
            bad_role = isinstance(message, dict) and not isinstance(message.get("role"), str)
            if bad_role and "unparsed_line" not in message:  # a bad line: already named
                self.problems.add(
                    f"messages[{index}]",
                    f"role {shown(message.get('role'))} is not a message role: kept as unknown",
                )
            elif not isinstance(message, dict):
                what = shown(message)
                self.problems.add(
                    f"messages[{index}]", f"{what} is not a message role: kept as unknown"
                )
            self.add_unknown(index, message)
            return
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._record_call(index, message, usage)
        elif usage is not None:
            self.problems.add(
                f"messages[{index}]", f"usage is {shown(usage)}, not an object: no usage used"
            )
        content = message.get("content")
        if role is Role.TOOL:
            self._tool_message(index, message, content)
            return
        if isinstance(content, str):
            self.add(index, None, role, TEXT_KIND[role], content)
        elif isinstance(content, list):
            for block in content:
                self.block(index, role, block)
        elif content is not None:
            self.add_unknown(index, content, role)
        if role is Role.ASSISTANT:
            self._assistant_extras(index, message)

    def _unwrap_completion(self, response: dict[str, Any]) -> Any:
        """An OpenAI ChatCompletion logged whole: its first choice is the message."""
        choice = response["choices"][0] if response["choices"] else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            return response
        message = dict(message)
        message.setdefault("usage", response.get("usage"))
        message.setdefault("model", response.get("model"))
        message.setdefault("id", response.get("id"))
        return message

    def _record_call(self, index: int, message: dict[str, Any], usage: dict[str, Any]) -> None:
        try:
            parsed = Usage.from_api(usage)
        except ValueError as exc:
            self.problems.add(f"messages[{index}]", f"{exc}: this call's usage is not used")
            return
        before = len(self.items)
        previous = self.calls[-1].items_before if self.calls else 0
        model = message.get("model") if isinstance(message.get("model"), str) else None
        self.model = model or self.model
        self.calls.append(
            ApiCall(
                usage=parsed,
                items_before=before,
                message_id=message.get("id") if isinstance(message.get("id"), str) else None,
                model=model,
                anchor_call=len(self.calls) - 1 if self.calls else None,
                added_items=tuple(range(previous, before)),
            )
        )

    def block(self, index: int | None, role: Role, block: Any) -> None:
        if isinstance(block, str):
            self.add(index, block, role, TEXT_KIND[role], block)
            return
        btype = type_of(block)
        if not isinstance(block, dict) or btype is None:
            self.add_unknown(index, block, role)
        elif btype in TEXT_PARTS and isinstance(block.get("text"), str):
            self.add(index, block, role, TEXT_KIND[role], block["text"])
        elif btype == "refusal" and isinstance(block.get("refusal"), str):
            self.add(index, block, role, Kind.ASSISTANT_TEXT, block["refusal"])
        elif btype in ("thinking", "redacted_thinking"):
            text = block.get("thinking") or block.get("data") or ""
            self.add(index, block, role, Kind.THINKING, str(text))
        elif btype in IMAGE_PARTS:
            self.add(index, block, role, Kind.IMAGE, image_note(block))  # priced when counted
        elif btype in DOCUMENT_PARTS:
            # A document the user attached is reference material, not a tool's file read.
            text = document_text(block)
            self.add(index, block, role, Kind.USER_TEXT, text, component=Component.KNOWLEDGE_BASE)
        elif btype == "search_result":
            text, _ = flatten_content(block.get("content"))
            self.add(index, block, role, Kind.SEARCH_RESULT, text)
        elif btype.endswith("tool_use") and isinstance(block.get("name"), str):
            # tool_use, server_tool_use, mcp_tool_use
            text, parsed = parse_arguments(block.get("input"))
            self._call(index, block, block["name"], block.get("id"), text, parsed)
        elif btype.endswith("tool_result") and "tool_use_id" in block:
            self._result(index, block, block.get("tool_use_id"), block.get("content"))
        else:
            self.add_unknown(index, block, role)

    def _call(
        self, index: int | None, block: Any, name: str, call_id: Any, text: str, parsed: Any
    ) -> str | None:
        pair_id = self.pair_ids.call(call_id) if isinstance(call_id, str) else None
        if pair_id is not None:
            self.tool_names[pair_id] = name
            self.tool_inputs[pair_id] = parsed
        self.add(
            index,
            block,
            Role.ASSISTANT,
            Kind.TOOL_CALL,
            f"{name} {text}",
            tool=name,
            pair_id=pair_id,
        )
        return pair_id

    def _result(
        self, index: int | None, block: Any, pair_id: Any, content: Any, tool: str | None = None
    ) -> None:
        pair = self.pair_ids.result(pair_id) if isinstance(pair_id, str) else None
        tool = (self.tool_names.get(pair) if pair else None) or tool
        text, unknown = flatten_content(content)
        self.unknown += unknown
        kind = tool_result_kind(tool, self.tool_inputs.get(pair) if pair else None)
        self.add(index, block, Role.TOOL, kind, text, tool=tool, pair_id=pair)

    def _tool_message(self, index: int, message: dict[str, Any], content: Any) -> None:
        name = message.get("name") if isinstance(message.get("name"), str) else None
        pair_id = message.get("tool_call_id")
        if message.get("role") == "function" and self.pending_functions:
            # Legacy functions carry no id: answer the oldest open call of that name.
            match = next((p for p in self.pending_functions if p[0] == name), None)
            match = match or self.pending_functions[0]
            self.pending_functions.remove(match)
            pair_id = match[1]
        self._result(index, None, pair_id, content, tool=name)

    def _assistant_extras(self, index: int, message: dict[str, Any]) -> None:
        if isinstance(message.get("refusal"), str):
            self.add(index, None, Role.ASSISTANT, Kind.ASSISTANT_TEXT, message["refusal"])
        tool_calls = message.get("tool_calls")
        for call in tool_calls if isinstance(tool_calls, list) else []:
            spec = call.get(type_of(call) or "function") if isinstance(call, dict) else None
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                self.add_unknown(index, call, Role.ASSISTANT)
                continue
            text, parsed = parse_arguments(spec.get("arguments", spec.get("input")))
            self._call(index, call, spec["name"], call.get("id"), text, parsed)
        function_call = message.get("function_call")
        if isinstance(function_call, dict) and isinstance(function_call.get("name"), str):
            name = function_call["name"]
            text, parsed = parse_arguments(function_call.get("arguments"))
            pair_id = f"function_call:{index}"
            self._call(index, function_call, name, pair_id, text, parsed)
            self.pending_functions.append((name, pair_id))
        elif function_call is not None:
            self.add_unknown(index, function_call, Role.ASSISTANT)


def _response_items(items: list[Item], start: int) -> int:
    """How many items from ``start`` belong to the assistant message there."""
    if start >= len(items):
        return 0
    index = items[start].message_index
    n = 0
    while start + n < len(items) and items[start + n].message_index == index:
        n += 1
    return n


def read_messages(data: Any, *, path: str | None = None, name: str | None = None) -> Transcript:
    """Read an Anthropic or OpenAI message list (parsed JSON) into a ``Transcript``.

    Each item's ``raw`` is ``{"message": <index or None for envelope parts>, "block":
    <the original block, or None for string content>}``; ``Transcript.raw`` is ``data``
    itself, so a writer can emit the same format again. Bad usage is named in
    ``problems`` as ``<name>:messages[<index>]: ...`` (``name`` defaults to ``path``).
    """
    messages, envelope = _split(data)
    problems = ProblemLog(name or path or "<messages>")
    reader = _Reader(problems)
    reader.envelope(envelope)
    for index, message in enumerate(messages):
        reader.message(index, message)
    model = envelope.get("model")
    return Transcript(
        format=messages_format(data),
        items=reader.items,
        calls=reader.calls,
        history_items=list(reader.items),
        unknown_records=reader.unknown,
        records=len(messages),
        model=model if isinstance(model, str) else reader.model,
        path=path,
        raw=data,
        # The latest reported usage anchors the count; its response and what follows
        # it are what was added since.
        anchor_call=len(reader.calls) - 1 if reader.calls else None,
        anchor_position=reader.calls[-1].items_before if reader.calls else None,
        anchor_output_items=_response_items(reader.items, reader.calls[-1].items_before)
        if reader.calls
        else 0,
        problems=problems.lines(),
    )
