"""Anthropic / OpenAI message-list reader, on small hand-written fixtures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ctxbudget.errors import SourceError
from ctxbudget.model import Component, Kind, Role, Transcript
from ctxbudget.sources.content import tool_result_kind
from ctxbudget.sources.messages import looks_like_messages, messages_format, read_messages

ANTHROPIC_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "system": [{"type": "text", "text": "You are a careful coding agent."}],
    "tools": [{"name": "read_file", "description": "Read a file", "input_schema": {}}],
    "messages": [
        {"role": "user", "content": "Fix the failing test in app.py"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Look at app.py first.", "signature": "x"},
                {"type": "text", "text": "Reading the file."},
                {"type": "tool_use", "id": "tu_1", "name": "read_file", "input": {"path": "a"}},
                {"type": "tool_use", "id": "tu_2", "name": "Grep", "input": {"pattern": "def"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "tu_1", "content": "print('hi')\n"},
                {
                    "type": "tool_result",
                    "tool_use_id": "tu_2",
                    "content": [{"type": "text", "text": "app.py:1: def main"}],
                    "is_error": False,
                },
                {"type": "text", "text": "Also check the README."},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "tu_3", "name": "Task", "input": {"prompt": "scan"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "tu_3", "content": "ok"}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
                }
            ],
        },
    ],
}

OPENAI_MESSAGES: list[Any] = [
    {"role": "developer", "content": "Answer briefly."},
    {"role": "system", "content": [{"type": "text", "text": "Tools are available."}]},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What does this show?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "web_search", "arguments": '{"query": "a png"}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "bash", "arguments": '{"command": "cat setup.py"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_a", "content": "3 results"},
    {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "setup()"}]},
    {"role": "assistant", "content": "It is a diagram."},
]


def assert_pairs_match(transcript: Transcript) -> None:
    call_ids = {i.pair_id for i in transcript.items if i.kind is Kind.TOOL_CALL}
    results = [i for i in transcript.items if i.role is Role.TOOL]
    assert results, "fixture should contain tool results"
    for item in results:
        assert item.pair_id in call_ids, item


def test_anthropic_request_with_system_tools_and_blocks() -> None:
    t = read_messages(ANTHROPIC_REQUEST, path="req.json")
    assert t.format == "anthropic-messages"
    assert t.model == "claude-sonnet-4-5"
    assert t.records == 6
    assert t.unknown_records == 0
    assert t.path == "req.json"
    assert t.raw is ANTHROPIC_REQUEST
    kinds = [i.kind for i in t.items]
    assert kinds == [
        Kind.SYSTEM_PROMPT,  # tool definition
        Kind.SYSTEM_PROMPT,  # system block
        Kind.USER_TEXT,
        Kind.THINKING,
        Kind.ASSISTANT_TEXT,
        Kind.TOOL_CALL,
        Kind.TOOL_CALL,
        Kind.FILE_READ,
        Kind.SEARCH_RESULT,
        Kind.USER_TEXT,
        Kind.TOOL_CALL,
        Kind.AGENT_REPORT,
        Kind.IMAGE,
    ]
    assert_pairs_match(t)
    read = t.items[7]
    assert (read.tool, read.pair_id, read.text) == ("read_file", "tu_1", "print('hi')\n")
    assert t.items[5].text == 'read_file {"path":"a"}'
    assert t.items[8].text == "app.py:1: def main"
    # Envelope parts are not messages; message blocks point back at their message.
    assert t.items[1].message_index == -1 and t.items[1].raw["message"] is None
    assert t.items[2].raw == {"message": 0, "block": None}
    assert t.items[4].raw["block"] == {"type": "text", "text": "Reading the file."}
    assert t.items[12].text.startswith("[image image/png ")
    assert t.history_items == t.items and t.history_items is not t.items


def test_system_as_string() -> None:
    t = read_messages({"system": "Be terse.", "messages": [{"role": "user", "content": "hi"}]})
    assert [(i.kind, i.text) for i in t.items] == [
        (Kind.SYSTEM_PROMPT, "Be terse."),
        (Kind.USER_TEXT, "hi"),
    ]
    assert t.format == "anthropic-messages"  # only Anthropic has a top-level system
    assert t.items[0].component is Component.SYSTEM_CONTEXT


def test_openai_list_with_tool_calls_and_parts() -> None:
    t = read_messages(OPENAI_MESSAGES)
    assert t.format == "openai-messages"
    assert t.records == len(OPENAI_MESSAGES)
    assert t.unknown_records == 0
    assert t.raw is OPENAI_MESSAGES
    got = [(i.role, i.kind) for i in t.items]
    assert got == [
        (Role.SYSTEM, Kind.SYSTEM_PROMPT),
        (Role.SYSTEM, Kind.SYSTEM_PROMPT),
        (Role.USER, Kind.USER_TEXT),
        (Role.USER, Kind.IMAGE),
        (Role.ASSISTANT, Kind.TOOL_CALL),
        (Role.ASSISTANT, Kind.TOOL_CALL),
        (Role.TOOL, Kind.SEARCH_RESULT),
        (Role.TOOL, Kind.FILE_READ),  # bash running cat
        (Role.ASSISTANT, Kind.ASSISTANT_TEXT),
    ]
    assert_pairs_match(t)
    assert t.items[4].text == 'web_search {"query":"a png"}'
    assert t.items[6].tool == "web_search"
    assert t.items[7].text == "setup()"
    assert t.items[3].text == "[image https://example.com/a.png]"
    assert [i.message_index for i in t.items] == [0, 1, 2, 2, 3, 3, 4, 5, 6]


def test_openai_legacy_function_call() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        },
        {"role": "function", "name": "get_weather", "content": "rain"},
        {"role": "assistant", "content": "Rain in Oslo."},
    ]
    t = read_messages(messages)
    assert t.format == "openai-messages"
    call, result = t.items[1], t.items[2]
    assert call.kind is Kind.TOOL_CALL and call.tool == "get_weather"
    assert call.text == 'get_weather {"city":"Oslo"}'
    assert result.kind is Kind.TOOL_RESULT and result.pair_id == call.pair_id is not None
    assert result.tool == "get_weather"
    assert_pairs_match(t)


def test_invalid_json_arguments_are_kept_verbatim() -> None:
    messages = [
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{bad"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "error"},
    ]
    t = read_messages(messages)
    assert t.items[0].text == "f {bad"
    assert t.unknown_records == 0


def test_plain_text_is_generic_messages() -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    t = read_messages(messages)
    assert t.format == "messages"
    assert [i.kind for i in t.items] == [Kind.USER_TEXT, Kind.ASSISTANT_TEXT]
    assert [i.raw for i in t.items] == [
        {"message": 0, "block": None},
        {"message": 1, "block": None},
    ]


def test_unknown_blocks_roles_and_records_are_counted_not_fatal() -> None:
    messages: list[Any] = [
        {
            "role": "user",
            "content": [{"type": "hologram", "data": 1}, {"type": "text", "text": "x"}],
        },
        {"role": "critic", "content": "meh"},
        42,
        {"no_role": True},
        {"role": "assistant", "content": [17, {"text": "no type"}]},
        {"role": "assistant", "tool_calls": [{"id": "z", "type": "warp"}]},
        {"role": "tool", "tool_call_id": "z", "content": [{"type": "audio", "x": 1}]},
    ]
    t = read_messages(messages)
    assert t.records == 7
    unknown = [i for i in t.items if i.kind is Kind.UNKNOWN]
    # hologram, critic, 42, no_role, 17, untyped block, warp call
    assert len(unknown) == 7
    # plus the audio part inside the tool result, kept as JSON in the result's text
    assert t.unknown_records == 8
    assert json.loads(unknown[0].text) == {"type": "hologram", "data": 1}
    assert unknown[2].text == "42"
    assert any(i.kind is Kind.USER_TEXT and i.text == "x" for i in t.items)


def test_usage_on_messages_becomes_calls() -> None:
    messages = [
        {"role": "user", "content": "q1"},
        {
            "role": "assistant",
            "id": "msg_1",
            "model": "claude-x",
            "content": [{"type": "text", "text": "a1"}],
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 5},
        },
        {"role": "user", "content": "q2"},
        {
            "role": "assistant",
            "content": "a2",
            "usage": {"prompt_tokens": 130, "completion_tokens": 7},
        },
    ]
    t = read_messages(messages)
    assert len(t.calls) == 2
    first, second = t.calls
    assert first.usage.context_tokens == 100
    assert (first.items_before, first.anchor_call, first.added_items) == (1, None, (0,))
    assert (first.message_id, first.model) == ("msg_1", "claude-x")
    assert second.usage.context_tokens == 130 and second.usage.output_tokens == 7
    assert (second.items_before, second.anchor_call, second.added_items) == (3, 0, (1, 2))
    assert t.model == "claude-x"


def test_logged_openai_completion_is_unwrapped() -> None:
    completion = {
        "id": "chatcmpl-1",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 2},
    }
    t = read_messages([{"role": "user", "content": "hi"}, completion])
    assert [i.kind for i in t.items] == [Kind.USER_TEXT, Kind.ASSISTANT_TEXT]
    assert t.calls[0].usage.context_tokens == 20 and t.calls[0].model == "gpt-4o"


def test_sniffing() -> None:
    assert looks_like_messages([{"role": "user", "content": "x"}])
    assert looks_like_messages({"messages": []})
    assert looks_like_messages(ANTHROPIC_REQUEST)
    assert not looks_like_messages([])
    assert not looks_like_messages([{"type": "user", "uuid": "1"}])  # Claude Code record
    assert not looks_like_messages({"history": [], "trajectory": []})
    assert not looks_like_messages("text")
    assert messages_format(OPENAI_MESSAGES) == "openai-messages"
    assert messages_format(ANTHROPIC_REQUEST) == "anthropic-messages"
    assert messages_format([{"role": "user", "content": "x"}]) == "messages"


def test_not_a_message_list_raises_source_error() -> None:
    with pytest.raises(SourceError):
        read_messages({"foo": 1})


@pytest.mark.parametrize(
    ("tool", "call_input", "kind"),
    [
        ("Read", None, Kind.FILE_READ),
        ("read_file", None, Kind.FILE_READ),
        ("mcp__fs__read_text_file", None, Kind.FILE_READ),
        ("str_replace_editor", {"command": "view", "path": "/a"}, Kind.FILE_READ),
        ("str_replace_editor", {"command": "create", "path": "/a"}, Kind.TOOL_RESULT),
        ("Grep", None, Kind.SEARCH_RESULT),
        ("WebSearch", None, Kind.SEARCH_RESULT),
        ("find_file", None, Kind.SEARCH_RESULT),
        ("Task", None, Kind.AGENT_REPORT),
        ("dispatch_agent", None, Kind.AGENT_REPORT),
        ("bash", {"command": "cd /repo && grep -rn foo ."}, Kind.SEARCH_RESULT),
        ("bash", {"command": "head -5 a.py"}, Kind.FILE_READ),
        ("bash", {"command": "python -m pytest"}, Kind.TOOL_RESULT),
        ("bash", {"command": "str_replace_editor view /a.py"}, Kind.FILE_READ),
        ("bash", {"command": "edit 1:2\ncat = 1\nend_of_edit"}, Kind.TOOL_RESULT),
        ("deploy", None, Kind.TOOL_RESULT),
        (None, None, Kind.TOOL_RESULT),
    ],
)
def test_tool_result_kind(tool: str | None, call_input: Any, kind: Kind) -> None:
    assert tool_result_kind(tool, call_input) is kind


def test_reused_call_ids_get_unique_pair_ids() -> None:
    def call(n: int) -> dict[str, Any]:
        fn = {"name": "bash", "arguments": json.dumps({"command": f"echo {n}"})}
        return {
            "role": "assistant",
            "tool_calls": [{"id": "dup", "type": "function", "function": fn}],
        }

    messages = [
        call(1),
        {"role": "tool", "tool_call_id": "dup", "content": "1"},
        call(2),
        {"role": "tool", "tool_call_id": "dup", "content": "2"},
    ]
    t = read_messages(messages)
    assert [i.pair_id for i in t.items] == ["dup", "dup", "dup#2", "dup#2"]
    assert t.items[2].raw["block"]["id"] == "dup"  # the original id stays for writers
    assert_pairs_match(t)


def test_an_unknown_parts_base64_counts_as_its_size_not_as_text() -> None:
    """A part no reader understands keeps its JSON as text, but a long base64 string in
    it (an OpenAI ``input_audio`` clip, a future media block) is media the provider
    does not read as text: counted as text, 200 kB of audio was 33,000 tokens."""
    import base64

    clip = base64.b64encode(bytes(range(256)) * 600).decode()
    prose = "word " * 400  # long, but text: kept
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is said?"},
            {"type": "input_audio", "input_audio": {"data": clip, "format": "wav"}},
            {"type": "note_of_the_future", "body": prose},
        ],
    }
    transcript = read_messages([message])
    audio, note = [i for i in transcript.items if i.kind is Kind.UNKNOWN]
    assert clip not in audio.text and "[153,600 bytes of base64]" in audio.text
    assert '"format":"wav"' in audio.text
    assert prose in note.text
    url = "data:audio/wav;base64," + clip
    tool_result = {"role": "tool", "tool_call_id": "c1", "content": [{"type": "clip", "url": url}]}
    call = {"id": "c1", "type": "function", "function": {"name": "listen", "arguments": "{}"}}
    read = read_messages([{"role": "assistant", "tool_calls": [call]}, tool_result])
    [result] = [i for i in read.items if i.role is Role.TOOL]
    assert clip not in result.text and "bytes of base64]" in result.text
