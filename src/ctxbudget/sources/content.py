"""Content parts every reader shares: a block's text, its stand-in when it is an image
or a document, the text of what no reader understands, and the tool-name heuristics
(which results are file reads, searches or sub-agent reports).

The message-list reader (``messages``), the Claude Code reader, the SWE-agent reader,
the writers and the LangGraph adapter read content with these, so one block gives one
text whichever reader meets it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..model import Kind, Role, content_hash
from .problems import loads, shown
from .tools import AGENT_TOOL_NAMES, READ_WORDS, SEARCH_WORDS, SHELL_TOOLS

__all__ = [
    "DOCUMENT_PARTS",
    "IMAGE_PARTS",
    "TEXT_KIND",
    "TEXT_PARTS",
    "PairIds",
    "compact_json",
    "document_text",
    "flatten_content",
    "image_note",
    "parse_arguments",
    "tool_result_kind",
    "type_of",
    "unknown_text",
]

# The kind of a plain text block by its role (also used by the LangGraph adapter).
TEXT_KIND = {
    Role.SYSTEM: Kind.SYSTEM_PROMPT,
    Role.USER: Kind.USER_TEXT,
    Role.ASSISTANT: Kind.ASSISTANT_TEXT,
    Role.TOOL: Kind.TOOL_RESULT,
}
TEXT_PARTS = {"text", "input_text", "output_text"}
#: Content parts that carry an image, and those that carry a document (a PDF, a file),
#: in any dialect: each read as a stand-in text and priced apart (``media``).
IMAGE_PARTS = frozenset({"image", "image_url", "input_image"})
DOCUMENT_PARTS = frozenset({"document", "file", "input_file"})


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
        ptype = type_of(part)
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and ptype in TEXT_PARTS and isinstance(part.get("text"), str):
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


def type_of(block: Any) -> str | None:
    """A block's ``type`` when it is a dict with a string type, else None."""
    btype = block.get("type") if isinstance(block, dict) else None
    return btype if isinstance(btype, str) else None
