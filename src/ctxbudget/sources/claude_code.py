"""Reader of Claude Code transcripts (``~/.claude/projects/<slug>/<session>.jsonl``).

One JSON record per line. What matters for accounting:

- ``user`` / ``assistant`` records carry ``message`` (API shape). One API response is
  split over several records (one per content block) that share ``message.id`` and
  each repeat its ``usage``: a call is counted once, at its first record.
- Records form a tree through ``parentUuid``; which of them form a context (the path
  back from a record, the parallel calls it branches to, what a compaction kept) and
  what each call added: ``claude_code_context``.
- ``isSidechain`` records are sub-agent traffic (older versions keep it in the same
  file); each sub-agent is named after the ``Task`` call whose prompt started it. A
  sub-agent's own file (``subagents/agent-<id>.jsonl``: every record carries its
  ``agentId``, a fork's opens with a ``fork-context-ref``) is read as that agent's
  conversation: there its sidechain is the main thread.
- A ``system`` record with subtype ``compact_boundary``, or a ``user`` record with
  ``isCompactSummary`` and no boundary before it, starts a new context.
- ``system`` records (hook output, notices) and ``summary`` records are not sent to
  the model. Record types we do not know are counted in ``unknown_records``.
- A bad record (a line that is not JSON, a ``message`` that is not an object, a usage
  count that is not a whole number) is counted there too and named, ``file:line``, in
  ``Transcript.problems``; a call with bad usage is kept but anchors nothing.

This module turns records into a ``Transcript`` (the items of each record are made by
``claude_code_items``); it does no counting and no I/O beyond iterating the lines it is
given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..model import MAIN_AGENT, Carried, Transcript, Usage
from .claude_code_context import (
    CONTEXT_RECORDS,
    Record,
    build_calls,
    build_current,
    build_replaced,
    carried_of,
    is_compact_boundary,
    is_context_record,
    link_records,
    message_of,
    named_model,
    opens_context,
    preserved_messages,
    resolve_preserved,
    sends_system_messages,
    starts_new_context,
    string_of,
    system_blob,
)
from .claude_code_items import TranscriptBuilder, tool_result_text
from .content import compact_json
from .problems import ProblemLog, javascript_loads, parse_line, shown
from .tools import AGENT_TOOLS

# Record types Claude Code writes that never reach the model.
_KNOWN_NON_CONTEXT = {"system", "summary", "file-history-snapshot", "queue-operation"}
# Claude Code 2.x: bookkeeping records (costs, the request Claude Code sent, prompt
# history, modes): no context of their own, nothing to report.
_KNOWN_NON_CONTEXT |= {
    "api-request",
    "api-request-blob",
    "api-request-shape",
    "atis-latch",
    "cost-state",
    "custom-title",
    "fork-context-ref",
    "last-prompt",
    "mode",
    "tools-used",
}


def looks_like_claude_code(first_record: Any) -> bool:
    return isinstance(first_record, dict) and (
        _opens_agent_file(first_record)
        or "sessionId" in first_record
        or "parentUuid" in first_record
        or (
            string_of(first_record.get("type")) in {"summary", "user", "assistant", "system"}
            and "uuid" in first_record
        )
        # resumed sessions of older versions start with summaries of earlier ones
        or (first_record.get("type") == "summary" and "leafUuid" in first_record)
    )


def _opens_agent_file(first_record: dict[str, Any]) -> bool:
    """A sub-agent's own transcript: its first record is the agent's (``agentId``), a
    sidechain message or the reference a fork keeps to the context it continues."""
    return isinstance(first_record.get("agentId"), str) and (
        first_record.get("isSidechain") is True or first_record.get("type") == "fork-context-ref"
    )


def _blank(line: str | bytes) -> bool:
    """A line of whitespace alone, as ``str.strip`` sees it: a line given as bytes may
    hold a no-break space or U+2028, which only the text knows as whitespace."""
    if line[:1] in ("{", b"{"):
        return False  # a record, as nearly every line is: no stripped copy of it made
    stripped = line.strip()
    if not stripped:
        return True
    if isinstance(stripped, bytes) and stripped[:1] != b"{":
        return not stripped.decode("utf-8", errors="replace").strip()
    return False


def _usage_of(record: dict[str, Any], problems: ProblemLog, line: int | None) -> Usage | None:
    message = record.get("message")
    if record.get("type") != "assistant" or not isinstance(message, dict):
        return None
    usage = message.get("usage")
    if usage is None:
        return None
    if not isinstance(usage, dict):
        problems.add(line, f"message.usage is {shown(usage)}, not an object: no usage used")
        return None
    try:
        parsed = Usage.from_api(usage)
    except ValueError as exc:
        problems.add(line, f"message.{exc}: this call's usage is not used")
        return None
    # Claude Code writes zero usage for messages it made itself (API errors, aborts).
    return parsed if parsed.context_tokens > 0 else None


# What the steps after the items read of a record (the calls, the chain of the current
# context); the rest of a record (its envelope: paths, versions, ids) is let go.
_SLIM_KEYS = ("type", "subtype", "isCompactSummary", "timestamp")
_SLIM_MESSAGE_KEYS = ("model",)


def _slim(data: dict[str, Any]) -> dict[str, Any]:
    slim = {key: data[key] for key in _SLIM_KEYS if key in data}
    message = data.get("message")
    if isinstance(message, dict):
        slim["message"] = {key: message[key] for key in _SLIM_MESSAGE_KEYS if key in message}
    return slim


def _agent_names(records: list[Record]) -> dict[int, str]:
    """Name each sub-agent chain after the Task call that started it."""
    prompts: dict[str, list[str]] = {}
    for r in records:
        if r.sidechain:
            continue
        message = r.data.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if (
                isinstance(block, dict)
                and block.get("type") == "tool_use"
                and string_of(block.get("name")) in AGENT_TOOLS
                and isinstance(block.get("input"), dict)
            ):
                tool_input = block["input"]
                name = str(
                    tool_input.get("subagent_type") or tool_input.get("description") or "subagent"
                )
                prompts.setdefault(str(tool_input.get("prompt", "")).strip(), []).append(name)
    names: dict[int, str] = {}
    used: dict[str, int] = {}
    unnamed = 0
    for r in records:
        if not r.sidechain:
            continue
        if r.prev is not None and r.prev in names:
            names[r.index] = names[r.prev]
            continue
        agent_id = string_of(r.data.get("agentId"))
        message = r.data.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        text = content if isinstance(content, str) else tool_result_text(content)
        candidates = prompts.get(text.strip())
        if candidates:
            base = candidates.pop(0)
        elif agent_id:
            base = f"agent-{agent_id}"
        else:
            unnamed += 1
            base = f"subagent-{unnamed}"
        used[base] = used.get(base, 0) + 1
        names[r.index] = base if used[base] == 1 else f"{base}#{used[base]}"
    return names


def read_claude_code(
    lines: Iterable[str | bytes],
    *,
    path: str | None = None,
    name: str | None = None,
    context_only: bool = False,
) -> Transcript:
    """Read the lines of a Claude Code transcript. Bad lines are counted, not fatal:
    each is named (``name:line``, ``name`` defaulting to ``path``) in ``problems``.
    ``context_only``: the current context's items alone (no API calls, history or
    sub-agents: what the fact ledger needs, in a third less time)."""
    builder = TranscriptBuilder()
    problems = ProblemLog(name or path or "<transcript>")
    records: list[Record] = []
    malformed = 0
    total = 0
    session_id = None
    pending: tuple[int, str] | None = None  # a bad line, reported unless it is the last
    transcript_shape: dict[str, str] = {}
    window: int | None = None
    request_model: str | None = None  # the model a request named, before any answer
    kept: list[tuple[str, list[str]]] = []  # the messages each compaction kept
    # each compaction: its record, the latest main-thread message before it, and the
    # message its boundary names (``logicalParentUuid``)
    compactions: list[tuple[int, int | None, str | None]] = []
    latest: int | None = None  # the latest main-thread context record
    carried: Carried | None = None  # what the latest boundary carried (a fork's)
    after_boundary = False  # a boundary read, and no message since
    system_hashes: set[str] = set()  # the requests' system-role messages, by hash
    sends_system: bool | None = None  # whether the latest request sent system messages
    loads = javascript_loads()  # Claude Code is JavaScript: its numbers are doubles
    agent_file: bool | None = None  # a sub-agent's own file: its sidechain is the main
    for number, line in enumerate(lines, start=1):
        if _blank(line):
            continue
        total += 1
        if pending is not None:
            problems.add(*pending)
            pending = None
        try:
            data, note = parse_line(line, loads)
        except ValueError as exc:
            malformed += 1
            # The last line may be cut short while Claude Code is writing it: not a
            # problem of the file. Anywhere else it is.
            pending = (number, f"not a JSON record ({exc}): skipped")
            continue
        if note is not None:
            problems.add(number, note)
        if not isinstance(data, dict):
            malformed += 1
            problems.add(number, f"{shown(data)} is not a JSON object: skipped")
            continue
        if agent_file is None:
            agent_file = _opens_agent_file(data)
        sidechain = bool(data.get("isSidechain")) and not agent_file
        session_id = session_id or string_of(data.get("sessionId"))
        rtype = data.get("type")
        if not isinstance(rtype, str):
            problems.add(number, f"type is {shown(rtype)}, not a record type: kept as unknown")
            builder.unknown += 1
        elif rtype in ("user", "assistant") and not isinstance(data.get("message"), dict):
            problems.add(
                number, f"message is {shown(data.get('message'))}, not an object: kept as unknown"
            )
        elif rtype not in CONTEXT_RECORDS and rtype not in _KNOWN_NON_CONTEXT:
            builder.unknown += 1
        elif rtype == "api-request-shape" and not sidechain:
            shape = request_shape(data.get("shape"))
            if shape:
                transcript_shape = shape
        elif rtype == "api-request-blob" and (blob := system_blob(data)) is not None:
            system_hashes.add(blob)
        elif rtype == "api-request" and not sidechain:
            sends = sends_system_messages(data, system_hashes, sends_system)
            sends_system = sends_system if sends is None else sends
            params = data.get("params")
            params = params if isinstance(params, dict) else {}
            window = window_of_betas(params.get("betas")) or window
        if not sidechain and (named := named_model(data)) is not None:
            request_model = named
        boundary = is_compact_boundary(data)
        if boundary:
            kept.extend(preserved_messages(data))
        if not sidechain:
            # what the boundary that opened the latest context carried (a fork's),
            # by the status line's rule (``opens_context``): none after a root message
            if opens_context(data, after_boundary):
                carried = carried_of(data) if boundary else None
                if starts_new_context(data):
                    named = string_of(data.get("logicalParentUuid"))
                    compactions.append((len(records), latest, named))
            if is_context_record(data):
                latest = len(records)
            if boundary:
                after_boundary = True
            elif rtype in ("user", "assistant"):
                after_boundary = False
        parent = data.get("parentUuid")
        record = Record(
            index=len(records),
            data=data,
            uuid=string_of(data.get("uuid")),
            parent=string_of(parent),
            sidechain=sidechain,
            line=number,
            message_id=string_of(message_of(data).get("id")),
        )
        if not context_only:  # usages anchor the calls, which a context-only read skips
            record.usage = _usage_of(data, problems, number)
        records.append(record)
    if pending is not None:
        # the last line, cut short: being written (its record comes whole next time),
        # or a file cut off; either way left out, and said as such
        malformed -= 1
        problems.add(pending[0], "incomplete (still being written?): left out")
    link_records(records)
    preserved = resolve_preserved(records, kept)
    agent_of = _agent_names(records)
    builder.system_messages = sends_system is not False
    message_index = 0
    for r in records:
        if is_context_record(r.data):
            agent = agent_of.get(r.index, MAIN_AGENT) if r.sidechain else MAIN_AGENT
            r.items = builder.items_of(r.data, agent, message_index)
            message_index += 1
        r.data = _slim(r.data)  # the rest lives on in the items, or is let go

    transcript = Transcript(format="claude-code", items=[], path=path, session_id=session_id)
    if not context_only:
        build_calls(records, transcript, preserved)
        build_replaced(records, transcript, preserved, compactions)
    build_current(records, transcript, preserved)
    transcript.unknown_records = builder.unknown + malformed
    transcript.records = total
    transcript.model = builder.model
    transcript.raw = {"malformed_lines": malformed}
    transcript.problems = problems.lines()
    transcript.request_shape = transcript_shape
    transcript.window = window
    transcript.carried = carried
    transcript.model = transcript.model or request_model
    return transcript


#: Anthropic's 1M-token context beta ("context-1m-2025-08-07"), by its prefix.
LONG_CONTEXT_BETA = "context-1m"
LONG_CONTEXT_WINDOW = 1_000_000


def window_of_betas(betas: Any) -> int | None:
    """The window a request's betas ask for (the 1M-context beta), else None."""
    if isinstance(betas, list) and any(
        isinstance(b, str) and b.startswith(LONG_CONTEXT_BETA) for b in betas
    ):
        return LONG_CONTEXT_WINDOW
    return None


def request_shape(shape: Any) -> dict[str, str]:
    """The system prompt and each tool definition of an ``api-request-shape`` record's
    ``shape`` (``system``: text or text blocks, ``tools``: definitions), as the texts
    the request sent; empty when the shape is not one."""
    if not isinstance(shape, dict):
        return {}
    out: dict[str, str] = {}
    system = shape.get("system")
    if isinstance(system, str):
        out["system prompt"] = system
    elif isinstance(system, list):
        texts = [b.get("text") for b in system if isinstance(b, dict)]
        out["system prompt"] = "\n\n".join(t for t in texts if isinstance(t, str))
    tools = shape.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, dict):
            name = tool.get("name")
            out[f"tool {name if isinstance(name, str) else '?'}"] = compact_json(tool)
    return {label: text for label, text in out.items() if text}
