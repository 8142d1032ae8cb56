"""Reader of Anthropic and OpenAI message lists (already-parsed JSON) into Items.

Accepts a list of ``{role, content}`` messages or a request-shaped object
``{"messages": [...], "system": ..., "model": ..., "tools": [...]}``, in either
provider's dialect (or a mix: the reader takes the union of both). Every content block
becomes one Item; tool calls and their results share ``pair_id``. A message that
carries ``usage`` (an API response logged next to the messages) becomes an ``ApiCall``;
usage with a bad count (a string, NaN, a negative number) is named in
``Transcript.problems`` and anchors nothing.
This module also owns the tool-name heuristics (which results are file reads, searches
or sub-agent reports) that the SWE-agent reader reuses. It does no file I/O, no JSON
parsing and no choice between formats: the loader in ``sources/__init__`` does those.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import SourceError
from ..model import ApiCall, Component, Item, Kind, Role, Transcript, Usage, content_hash
from .problems import ProblemLog, loads, shown
from .tools import AGENT_TOOL_NAMES, READ_WORDS, SEARCH_WORDS, SHELL_TOOLS

__all__ = [
    "ANTHROPIC",
    "DOCUMENT_PARTS",
    "GENERIC",
    "IMAGE_PARTS",
    "OPENAI",
    "PairIds",
    "compact_json",
    "document_text",
    "flatten_content",
    "image_note",
    "looks_like_messages",
    "messages_format",
    "parse_arguments",
    "read_messages",
    "tool_result_kind",
    "unknown_text",
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
# The kind of a plain text block by its role (also used by the LangGraph adapter).
TEXT_KIND = _TEXT_KIND = {
    Role.SYSTEM: Kind.SYSTEM_PROMPT,
    Role.USER: Kind.USER_TEXT,
    Role.ASSISTANT: Kind.ASSISTANT_TEXT,
    Role.TOOL: Kind.TOOL_RESULT,
}
_TEXT_PARTS = {"text", "input_text", "output_text"}
#: Content parts that carry an image, and those that carry a document (a PDF, a file),
#: in any dialect: each read as a stand-in text and priced apart (``media``).
IMAGE_PARTS = frozenset({"image", "image_url", "input_image"})
DOCUMENT_PARTS = frozenset({"document", "file", "input_file"})
# Evidence for the dialect: shapes only one provider accepts.
_OPENAI_ONLY_PARTS = {"image_url", "input_text", "output_text", "input_image", "refusal", "file"}
_ANTHROPIC_ONLY_PARTS = {"tool_use", "tool_result", "thinking", "redacted_thinking", "document"}
_OPENAI_ONLY_ROLES = {"tool", "function", "developer"}
_OPENAI_ONLY_KEYS = ("tool_calls", "function_call", "tool_call_id")


def compact_json(value: Any) -> str:
    """JSON without spaces: the cheapest faithful text of a structured value."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except RecursionError:
        return f"[{type(value).__name__} nested too deeply to show]"
    except ValueError:  # a value that contains itself
        return shown(value, 200)


# A long base64 string (a data URL's too): an audio clip, a file, media a provider
# takes as such, not as text. Counted as text it would be hundreds of times its cost.
_BLOB = re.compile(r"(?:data:[\w/+.-]+;base64,)?[A-Za-z0-9+/=\r\n]+\Z")
_BLOB_FROM = 1_000


def unknown_text(value: Any) -> str:
    """The text of a block no reader understands: its compact JSON, each long base64
    string in it replaced by its size (``[150,000 bytes of base64]``)."""
    try:
        return compact_json(_without_blobs(value))
    except RecursionError:
        return compact_json(value)


def _without_blobs(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) >= _BLOB_FROM and _BLOB.match(value):
            return f"[{len(value) * 3 // 4:,} bytes of base64]"
        return value
    if isinstance(value, dict):
        return {key: _without_blobs(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_blobs(item) for item in value]
    return value


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    return [w for w in re.split(r"[^a-z0-9]+", spaced) if w]


def _command_words(command: str) -> list[str]:
    """Words of the programs a shell line runs (``cd x && grep -r y | head``).

    Only the first line counts: later lines are mostly heredoc or edit bodies, whose
    words are file content, not programs.
    """
    words: list[str] = []
    first_line = command.strip().split("\n", 1)[0]
    for segment in re.split(r"&&|\|\||[;|]", first_line):
        parts = segment.split()
        if not parts:
            continue
        program = parts[0].rsplit("/", 1)[-1]
        # str_replace_editor-style commands read a file only in their "view" mode.
        if "editor" in program and len(parts) > 1:
            words.extend(["view"] if parts[1] == "view" else [])
            continue
        words.extend(_words(program))
    return words


def tool_result_kind(tool: str | None, call_input: Any = None) -> Kind:
    """What the result of ``tool`` called with ``call_input`` is, by name heuristics."""
    if not tool:
        return Kind.TOOL_RESULT
    lowered = tool.lower()
    words = _words(tool)
    if lowered in AGENT_TOOL_NAMES or "subagent" in words:
        return Kind.AGENT_REPORT
    command = call_input.get("command") if isinstance(call_input, dict) else None
    if isinstance(command, str):
        if command == "view":  # str_replace_editor / text editor tools
            return Kind.FILE_READ
        if lowered in SHELL_TOOLS or "bash" in words:
            words = _command_words(command)
    if any(w in SEARCH_WORDS for w in words):
        return Kind.SEARCH_RESULT
    if any(w in READ_WORDS for w in words):
        return Kind.FILE_READ
    return Kind.TOOL_RESULT


class PairIds:
    """Call ids made unique within one transcript.

    Replayed runs reuse the provider's call ids (SWE-agent replays repeat one id up to
    four times), but a ``pair_id`` must name one call: a repeated id gets a ``#n``
    suffix, and a result goes with the latest call of its id. ``raw`` keeps the
    original id for writers.
    """

    def __init__(self) -> None:
        self._latest: dict[str, str] = {}
        self._uses: dict[str, int] = {}

    def call(self, call_id: str) -> str:
        uses = self._uses[call_id] = self._uses.get(call_id, 0) + 1
        self._latest[call_id] = call_id if uses == 1 else f"{call_id}#{uses}"
        return self._latest[call_id]

    def result(self, call_id: str) -> str:
        return self._latest.get(call_id, call_id)


def image_note(block: dict[str, Any]) -> str:
    """A short stand-in for an image: equal images get equal text, different ones not."""
    source = block.get("source")
    url: Any = block.get("image_url")
    if isinstance(url, dict):
        url = url.get("url")
    if isinstance(source, dict):
        if isinstance(source.get("data"), str):
            media = source.get("media_type") or "base64"
            return f"[image {media} {content_hash(source['data'])[:12]}]"
        url = source.get("url") or source.get("file_id")
    if isinstance(url, str):
        if url.startswith("data:"):
            return f"[image {url[5:].split(';', 1)[0]} {content_hash(url)[:12]}]"
        return f"[image {url[:200]}]"
    return "[image]"


def document_text(block: dict[str, Any]) -> str:
    """A document block's text: its inline text source, else ``[document <title>]``."""
    source = block.get("source")
    if isinstance(source, dict):
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            return str(source["data"])
        if source.get("type") == "content":
            return flatten_content(source.get("content"))[0]
    title = block.get("title") or block.get("filename")
    if not title and isinstance(block.get("file"), dict):
        title = block["file"].get("filename") or block["file"].get("file_id")
    return f"[document {title}]" if title else "[document]"


def flatten_content(content: Any) -> tuple[str, int]:
    """One text for a whole content value (a tool result's body), and how many parts
    of it were not understood (kept as compact JSON in the text)."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return compact_json(content), 1
    texts: list[str] = []
    unknown = 0
    for part in content:
        ptype = _type_of(part)
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and ptype in _TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, dict) and ptype in IMAGE_PARTS:
            texts.append(image_note(part))
        elif isinstance(part, dict) and ptype in DOCUMENT_PARTS:
            texts.append(document_text(part))
        else:
            texts.append(unknown_text(part))
            unknown += 1
    return "\n".join(texts), unknown


def parse_arguments(raw: Any) -> tuple[str, Any]:
    """Compact text and parsed value of tool arguments (OpenAI sends them as a string)."""
    if isinstance(raw, str):
        try:
            parsed = loads(raw)
        except ValueError:
            return raw, None  # models do emit invalid JSON; keep exactly what was sent
        return compact_json(parsed), parsed
    return compact_json(raw if raw is not None else {}), raw


def _type_of(block: Any) -> str | None:
    """A block's ``type`` when it is a dict with a string type, else None."""
    btype = block.get("type") if isinstance(block, dict) else None
    return btype if isinstance(btype, str) else None


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
            btype = _type_of(block)
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
            self.add(index, None, role, _TEXT_KIND[role], content)
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
            self.add(index, block, role, _TEXT_KIND[role], block)
            return
        btype = _type_of(block)
        if not isinstance(block, dict) or btype is None:
            self.add_unknown(index, block, role)
        elif btype in _TEXT_PARTS and isinstance(block.get("text"), str):
            self.add(index, block, role, _TEXT_KIND[role], block["text"])
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
            spec = call.get(_type_of(call) or "function") if isinstance(call, dict) else None
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
