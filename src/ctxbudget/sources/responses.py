"""OpenAI Responses API input: a request's ``input`` items, read and written.

A Responses request (``{"model", "instructions", "tools", "input": [...]}``, or its
``input`` list alone) holds messages (``{"role", "content"}``, with or without
``"type": "message"``; parts ``input_text``, ``output_text``, ``input_image``,
``input_file``) and items of their own: ``function_call`` and
``function_call_output`` paired by ``call_id``, ``custom_tool_call`` and its output,
``reasoning`` (its summary is what can be read of it), and the calls of built-in
tools (``web_search_call``, ``computer_call`` and its output, ...).

The reader turns the items into the Chat Completions messages they stand for and lets
``read_messages`` read those: one reader for both dialects. Each item keeps its own
position (``message_index``). The writer goes the other way, from ``to_openai``'s
messages, so what it writes is as valid as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..model import Item, Transcript
from .content import type_of, unknown_text
from .messages import read_messages
from .writers import to_openai

__all__ = ["RESPONSES", "looks_like_responses", "read_responses", "to_responses"]

RESPONSES = "openai-responses"

# Calls that name their tool and give its arguments; other "*_call" items are the
# calls of built-in tools (web_search_call, computer_call), named after their type.
_CALLS = {"function_call", "custom_tool_call"}


def _is_own(item: Any) -> bool:
    """Is ``item`` one only a Responses input holds (a message list has none)?"""
    kind = type_of(item)
    return kind is not None and (
        kind in ("reasoning", "item_reference") or kind.endswith(("_call", "_call_output"))
    )


def _call_message(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """An assistant message of the one tool call an item is."""
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def looks_like_responses(data: Any) -> bool:
    """A Responses request (a model and a string ``input``, or an ``input`` list of
    which at least half are messages or Responses items, and no ``messages``), or a
    list of input items of which at least one is a Responses item of its own (a
    function call, its output, reasoning) and at least half are such items or
    messages."""
    if isinstance(data, dict):
        items = data.get("input")
        if "messages" in data:
            return False
        if isinstance(items, str):
            return isinstance(data.get("model"), str)
        return isinstance(items, list) and (not items or _mostly_items(items)[1])
    if not isinstance(data, list) or not data:
        return False
    own, mostly = _mostly_items(data)
    return own > 0 and mostly


def _mostly_items(items: list[Any]) -> tuple[int, bool]:
    """How many are Responses items of their own, and whether at least half are such
    items or messages."""
    own = sum(1 for item in items if _is_own(item))
    messages = sum(1 for item in items if isinstance(item, dict) and "role" in item)
    return own, 2 * (own + messages) >= len(items)


def _messages(items: Sequence[Any]) -> list[Any]:
    """Chat Completions messages for the input items: one each (a call is an assistant
    message of one tool call, an output a tool message), so positions are kept."""
    out: list[Any] = []
    for item in items:
        kind = type_of(item)
        if kind is None or kind == "message":
            out.append(item)  # a message (or what read_messages names as not one)
        elif kind in _CALLS:
            arguments = item.get("arguments", item.get("input"))
            out.append(_call_message(item.get("call_id"), item.get("name"), arguments))
        elif kind.endswith("_call_output"):
            output = item.get("output")
            if isinstance(output, dict) and isinstance(output.get("image_url"), str):
                # a computer_call's screenshot: an image (its stand-in), not base64 text
                content: Any = [{"type": "image_url", "image_url": {"url": output["image_url"]}}]
            elif isinstance(output, (str, list)):
                content = output
            else:
                content = unknown_text(output)
            out.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": content})
        elif kind == "reasoning":
            parts = [*(item.get("summary") or []), *(item.get("content") or [])]
            said = [
                p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
            ]
            thinking = {"type": "thinking", "thinking": "\n".join(said)}
            out.append({"role": "assistant", "content": [thinking] if said else []})
        elif kind.endswith("_call"):  # a built-in tool's call
            details = {k: v for k, v in item.items() if k not in ("type", "id", "call_id")}
            call_id = item.get("call_id") or item.get("id")
            out.append(_call_message(call_id, kind.removesuffix("_call"), details))
        else:
            out.append(item)  # unknown to the reader: kept and named as such
    return out


def read_responses(data: Any, *, path: str | None = None, name: str | None = None) -> Transcript:
    """Read a Responses request or input list (parsed JSON) into a ``Transcript``."""
    if isinstance(data, dict):
        items = data["input"]
        items = [{"role": "user", "content": items}] if isinstance(items, str) else items
        envelope = {k: data[k] for k in ("model", "tools") if k in data}
        if isinstance(data.get("instructions"), str):
            envelope["system"] = data["instructions"]
        request: dict[str, Any] = {**envelope, "messages": _messages(items)}
    else:
        request = {"messages": _messages(data)}
    transcript = read_messages(request, path=path, name=name)
    transcript.format = RESPONSES
    transcript.raw = data
    return transcript


def to_responses(items: Sequence[Item], *, model: str | None = None) -> dict[str, Any]:
    """A Responses request for ``items``: system text as ``instructions``, messages as
    ``{"role", "content"}``, each tool call a ``function_call`` and each result its
    ``function_call_output``, in ``to_openai``'s order and with its ids."""
    instructions: list[str] = []
    inputs: list[dict[str, Any]] = []
    for message in to_openai(items):
        role = message["role"]
        if role == "system":
            instructions.append(str(message["content"]))
        elif role == "tool":
            call = message["tool_call_id"]
            inputs.append(
                {"type": "function_call_output", "call_id": call, "output": message["content"]}
            )
        else:
            if message.get("content"):
                inputs.append({"role": role, "content": message["content"]})
            for call in message.get("tool_calls") or []:
                function = call["function"]
                inputs.append(
                    {
                        "type": "function_call",
                        "call_id": call["id"],
                        "name": function["name"],
                        "arguments": function["arguments"],
                    }
                )
    request: dict[str, Any] = {"model": model} if model else {}
    if instructions:
        request["instructions"] = "\n\n".join(instructions)
    request["input"] = inputs
    return request
