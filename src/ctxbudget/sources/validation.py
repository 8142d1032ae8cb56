"""What a provider would reject in a message list, before it is sent.

``validate_messages(messages, fmt)``: Anthropic's rules (the first message a user
message, roles alternating, no empty content, tool_result blocks first and each
answering a tool_use of the message before, every tool_use answered), OpenAI's (every
tool message answers an earlier call, every call answered before the next turn), and
Claude Code records read as the Anthropic messages Claude Code would send. The writers
(``ctxbudget.sources.writers``) keep these rules; the SDK middleware checks what it
sends with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from ..errors import SourceError
from .problems import loads

__all__ = ["validate_messages"]


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def _message_list(messages: Any) -> list[Any]:
    if isinstance(messages, dict) and isinstance(messages.get("messages"), list):
        return list(messages["messages"])
    if isinstance(messages, list):
        return messages
    raise SourceError('not a message list: expected [...] or {"messages": [...]}')


def _validate_anthropic(messages: list[Any]) -> list[str]:
    problems: list[str] = []
    if not messages:
        return ["no messages: the API needs at least one user message"]
    seen_uses: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            problems.append(f"message {i}: not an object")
            continue
        role = message.get("role")
        if role not in ("user", "assistant"):
            problems.append(f"message {i}: role {role!r} is not user or assistant")
        if i == 0 and role != "user":
            problems.append(f"message 0: the first message is {role!r}, not user")
        previous = messages[i - 1] if i else None
        if isinstance(previous, dict) and previous.get("role") == role:
            problems.append(f"message {i}: two {role} messages in a row (roles must alternate)")
        content = message.get("content")
        blocks = _blocks(content)
        if not blocks or (isinstance(content, str) and not content.strip()):
            problems.append(f"message {i}: empty content")
            continue
        prior_uses = _tool_use_ids(previous) if isinstance(previous, dict) else set()
        results_done = False
        for j, block in enumerate(blocks):
            btype = block.get("type") if isinstance(block, dict) else None
            if not isinstance(block, dict):
                problems.append(f"message {i} block {j}: not an object")
            elif btype == "text" and not str(block.get("text") or "").strip():
                problems.append(f"message {i} block {j}: empty text block")
            elif btype == "tool_use":
                if role != "assistant":
                    problems.append(f"message {i} block {j}: tool_use outside an assistant message")
                wrong = _new_id(block.get("id"), seen_uses, "tool_use")
                if wrong:
                    problems.append(f"message {i} block {j}: {wrong}")
            elif btype == "tool_result":
                ref = block.get("tool_use_id")
                if role != "user":
                    problems.append(f"message {i} block {j}: tool_result outside a user message")
                elif ref not in prior_uses:
                    problems.append(
                        f"message {i} block {j}: tool_result for {ref} has no tool_use in the "
                        "preceding assistant message"
                    )
                if results_done:
                    problems.append(
                        f"message {i} block {j}: tool_result after other content "
                        "(tool_result blocks must come first)"
                    )
            if btype != "tool_result":
                results_done = True
        if role == "assistant":
            uses = _tool_use_ids(message)
            following = messages[i + 1] if i + 1 < len(messages) else None
            answered = _tool_result_ids(following) if isinstance(following, dict) else set()
            if isinstance(following, dict) and following.get("role") != "user":
                answered = set()
            for use_id in sorted(uses - answered):
                problems.append(
                    f"message {i}: tool_use {use_id} has no tool_result in the next user message"
                )
    return problems


def _new_id(value: Any, seen: set[str], what: str) -> str | None:
    """What is wrong with a call's id (none, or one seen before), else None: then it
    joins ``seen``."""
    if not isinstance(value, str) or not value:
        return f"{what} without an id"
    if value in seen:
        return f"{what} id {value} is not unique"
    seen.add(value)
    return None


def _tool_use_ids(message: dict[str, Any]) -> set[str]:
    if message.get("role") != "assistant":
        return set()
    return {
        b["id"]
        for b in _blocks(message.get("content"))
        if isinstance(b, dict) and b.get("type") == "tool_use" and isinstance(b.get("id"), str)
    }


def _tool_result_ids(message: dict[str, Any]) -> set[str]:
    return {
        b["tool_use_id"]
        for b in _blocks(message.get("content"))
        if isinstance(b, dict)
        and b.get("type") == "tool_result"
        and isinstance(b.get("tool_use_id"), str)
    }


def _validate_openai(messages: list[Any]) -> list[str]:
    problems: list[str] = []
    known: set[str] = set()
    pending: dict[str, int] = {}

    def flush(before: str) -> None:
        for call_id, at in pending.items():
            problems.append(f"message {at}: tool call {call_id} is not answered {before}")
        pending.clear()

    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            problems.append(f"message {i}: not an object")
            continue
        role = message.get("role")
        if role in ("tool", "function"):
            ref = message.get("tool_call_id")
            if not isinstance(ref, str) or ref not in known:
                problems.append(
                    f"message {i}: tool message for {ref} refers to no earlier assistant tool call"
                )
            elif ref in pending:
                del pending[ref]
            else:
                problems.append(f"message {i}: tool call {ref} is answered again or too late")
            continue
        if role not in ("system", "developer", "user", "assistant"):
            problems.append(f"message {i}: unknown role {role!r}")
        if role in ("user", "assistant"):
            flush(f"before message {i}")
        calls = message.get("tool_calls") if role == "assistant" else None
        calls = calls if isinstance(calls, list) else []
        content = message.get("content")
        if role in ("user", "assistant") and not calls and not content:
            problems.append(f"message {i}: empty content")
        for call in calls:
            call_id = call.get("id") if isinstance(call, dict) else None
            wrong = _new_id(call_id, known, "tool call")
            if wrong:
                problems.append(f"message {i}: {wrong}")
            else:
                pending[cast(str, call_id)] = i  # _new_id took it: a non-empty string
    flush("by the end of the list")
    return problems


def _claude_code_messages(records: Iterable[Any]) -> list[dict[str, Any]]:
    """The API messages Claude Code would send from ``records`` (dicts or JSON lines):
    main-thread records after the last compaction, consecutive roles merged."""
    parsed: list[dict[str, Any]] = []
    for record in records:
        if isinstance(record, str):
            if not record.strip():
                continue
            try:
                record = loads(record)
            except ValueError:
                continue
        if isinstance(record, dict) and not record.get("isSidechain"):
            parsed.append(record)
    start = 0
    for index, record in enumerate(parsed):
        boundary = record.get("type") == "system" and record.get("subtype") == "compact_boundary"
        if boundary or record.get("isCompactSummary"):
            start = index
    messages: list[dict[str, Any]] = []
    for record in parsed[start:]:
        message = record.get("message")
        if record.get("type") not in ("user", "assistant") or not isinstance(message, dict):
            continue
        role = record["type"]
        blocks = list(_blocks(message.get("content")))
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    return messages


def validate_messages(messages: Any, fmt: str) -> list[str]:
    """What the provider would reject in ``messages``; an empty list when valid.

    ``fmt``: ``anthropic`` (or ``anthropic-messages``, ``messages``): the first message
    is a user message, roles alternate, no empty content, tool_result blocks come first
    and answer a tool_use of the preceding assistant message, every tool_use is
    answered in the next user message. ``openai`` (or ``openai-messages``,
    ``swe-agent``): every tool message answers an earlier assistant tool call, and
    every call is answered before the next user or assistant message. ``claude-code``:
    records (dicts or JSON lines), checked as the Anthropic messages Claude Code would
    send after its last compaction. ``messages`` may be a list or ``{"messages": [...]}``.
    """
    if fmt in ("anthropic", "anthropic-messages", "messages"):
        return _validate_anthropic(_message_list(messages))
    if fmt in ("openai", "openai-messages", "swe-agent"):
        return _validate_openai(_message_list(messages))
    if fmt == "claude-code":
        return _validate_anthropic(_claude_code_messages(messages))
    raise SourceError(f"cannot validate format {fmt!r}: expected anthropic, openai or claude-code")
