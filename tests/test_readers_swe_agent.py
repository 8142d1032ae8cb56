"""SWE-agent trajectory reader, on small hand-written fixtures of both history shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ctxbudget.errors import SourceError
from ctxbudget.model import Component, Kind, Role
from ctxbudget.sources.messages import looks_like_messages
from ctxbudget.sources.swe_agent import looks_like_swe_agent, model_stats, read_swe_agent

THOUGHT_1 = "Let me find the file.\n\n"
THOUGHT_2 = "Now open it.\n\n"

# Text-parsed actions (the older shape): no message_type, the action is fenced inside
# the content, observations come back as user messages, a demo is flagged is_demo.
TEXT_TRAJ: dict[str, Any] = {
    "environment": "swe_main",
    "history": [
        {
            "role": "system",
            "content": "SETTING: you are an autonomous programmer.",
            "agent": "primary",
        },
        {
            "role": "user",
            "content": "Here is a demonstration ...",
            "agent": "primary",
            "is_demo": True,
        },
        {"role": "user", "content": "ISSUE: SyntaxError in lib.py", "agent": "primary"},
        {
            "role": "assistant",
            "content": THOUGHT_1 + '```\nfind_file "lib.py"\n```',
            "thought": THOUGHT_1,
            "action": 'find_file "lib.py"\n',
            "agent": "primary",
        },
        {"role": "user", "content": "Found 1 matches: ./src/lib.py", "agent": "primary"},
        {
            "role": "assistant",
            "content": THOUGHT_2 + "```\nopen src/lib.py\n```",
            "thought": THOUGHT_2,
            "action": "open src/lib.py\n",
            "agent": "primary",
        },
        {"role": "user", "content": "[File: src/lib.py (3 lines total)]", "agent": "primary"},
        {
            "role": "assistant",
            "content": "Run it.\n```\npython src/lib.py\n```",
            "thought": "Run it.\n",
            "action": "python src/lib.py\n",
            "agent": "primary",
        },
        {"role": "user", "content": "ok", "agent": "primary"},
    ],
    "trajectory": [{"action": "find_file", "observation": "Found", "thought": "t", "state": "{}"}],
    "info": {
        "exit_status": "submitted",
        "model_stats": {"tokens_sent": 5200, "tokens_received": 120, "api_calls": 3},
    },
}

# Function calling (the newer shape): message_type on every entry, tool_calls and
# tool_call_ids, OpenAI-style content lists.
FUNCTION_TRAJ: dict[str, Any] = {
    "history": [
        {
            "role": "system",
            "content": "SETTING: ...",
            "agent": "main",
            "message_type": "system_prompt",
        },
        {
            "role": "user",
            "content": [{"type": "text", "text": "Example run ..."}],
            "agent": "main",
            "message_type": "demonstration",
        },
        {
            "role": "user",
            "content": "ISSUE: fix div",
            "agent": "main",
            "message_type": "observation",
        },
        {
            "role": "assistant",
            "content": "Search for the function.",
            "thought": "Search for the function.",
            "action": "search_dir division",
            "agent": "main",
            "message_type": "action",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search_dir", "arguments": '{"search_term": "division"}'},
                }
            ],
        },
        {
            "role": "tool",
            "content": [{"type": "text", "text": "2 matches"}],
            "agent": "main",
            "message_type": "observation",
            "tool_call_ids": ["call_1"],
        },
        {
            "role": "assistant",
            "content": "View it.",
            "thought": "View it.",
            "action": "str_replace_editor view /repo/div.py",
            "agent": "main",
            "message_type": "action",
            "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "s"}],
            "tool_calls": [
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {
                        "name": "str_replace_editor",
                        "arguments": '{"command": "view", "path": "/repo/div.py"}',
                    },
                }
            ],
        },
        {
            "role": "tool",
            "content": "def div(a, b): ...",
            "agent": "main",
            "message_type": "observation",
            "tool_call_ids": ["call_2"],
        },
    ],
    "info": {"model_stats": {"tokens_sent": 0, "tokens_received": 0, "api_calls": 2}},
    "replay_config": json.dumps({"agent": {"model": {"name": "gpt-4o"}}}),
}


def test_text_actions_history() -> None:
    t = read_swe_agent(TEXT_TRAJ, path="run.traj")
    assert t.format == "swe-agent"
    assert t.records == len(TEXT_TRAJ["history"])
    assert t.unknown_records == 0
    assert t.calls == []
    assert t.path == "run.traj" and t.raw is TEXT_TRAJ
    got = [(i.role, i.kind) for i in t.items]
    assert got == [
        (Role.SYSTEM, Kind.SYSTEM_PROMPT),
        (Role.USER, Kind.INSTRUCTION),
        (Role.USER, Kind.USER_TEXT),
        (Role.ASSISTANT, Kind.ASSISTANT_TEXT),
        (Role.ASSISTANT, Kind.TOOL_CALL),
        (Role.TOOL, Kind.SEARCH_RESULT),
        (Role.ASSISTANT, Kind.ASSISTANT_TEXT),
        (Role.ASSISTANT, Kind.TOOL_CALL),
        (Role.TOOL, Kind.FILE_READ),
        (Role.ASSISTANT, Kind.ASSISTANT_TEXT),
        (Role.ASSISTANT, Kind.TOOL_CALL),
        (Role.TOOL, Kind.TOOL_RESULT),
    ]
    demo = t.items[1]
    assert demo.component is Component.KNOWLEDGE_BASE and not demo.pinned
    call = t.items[4]
    assert call.tool == "find_file" and call.text == '```\nfind_file "lib.py"\n```'
    # Splitting thought and action loses nothing that was sent.
    assert t.items[3].text + call.text == TEXT_TRAJ["history"][3]["content"]
    assert t.items[5].pair_id == call.pair_id
    assert t.items[5].tool == "find_file"
    assert t.items[5].message_index == 4


def test_function_calling_history() -> None:
    t = read_swe_agent(FUNCTION_TRAJ)
    assert t.unknown_records == 0
    assert t.model == "gpt-4o"
    assert [i.kind for i in t.items] == [
        Kind.SYSTEM_PROMPT,
        Kind.INSTRUCTION,
        Kind.USER_TEXT,
        Kind.ASSISTANT_TEXT,
        Kind.TOOL_CALL,
        Kind.SEARCH_RESULT,
        Kind.THINKING,
        Kind.ASSISTANT_TEXT,
        Kind.TOOL_CALL,
        Kind.FILE_READ,
    ]
    calls = {i.pair_id: i for i in t.items if i.kind is Kind.TOOL_CALL}
    results = [i for i in t.items if i.role is Role.TOOL]
    assert [r.pair_id for r in results] == ["call_1", "call_2"]
    assert all(r.pair_id in calls for r in results)
    assert calls["call_1"].text == 'search_dir {"search_term":"division"}'
    assert t.items[1].text == "Example run ..."
    assert t.items[9].text == "def div(a, b): ..."
    assert model_stats(t) == {"tokens_sent": 0, "tokens_received": 0, "api_calls": 2}


def test_replayed_call_ids_are_made_unique() -> None:
    first_five = FUNCTION_TRAJ["history"][:5]
    history = [*first_five, *first_five[3:5]]  # the replay repeats a call and its id
    t = read_swe_agent({"history": history})
    pairs = [(i.kind, i.pair_id) for i in t.items if i.pair_id]
    assert pairs == [
        (Kind.TOOL_CALL, "call_1"),
        (Kind.SEARCH_RESULT, "call_1"),
        (Kind.TOOL_CALL, "call_1#2"),
        (Kind.SEARCH_RESULT, "call_1#2"),
    ]


def test_unknown_entries_are_counted_not_fatal() -> None:
    data = {
        "history": [
            {"role": "system", "content": "s", "message_type": "system_prompt"},
            "a stray string",
            {"role": "narrator", "content": "?", "agent": "main"},
            {"role": "user", "content": [{"type": "video", "url": "x"}], "agent": "main"},
            {
                "role": "assistant",
                "content": "",
                "agent": "main",
                "tool_calls": [{"id": "c", "type": "function", "function": {}}],
            },
        ]
    }
    t = read_swe_agent(data)
    kinds = [i.kind for i in t.items]
    assert kinds.count(Kind.UNKNOWN) == 3  # string, narrator, malformed tool call
    assert t.unknown_records == 4  # plus the video part kept in the user text
    assert t.records == 5


def test_trajectory_only_file() -> None:
    data = {
        "trajectory": [
            {"thought": "look", "action": "ls", "observation": "a.py"},
            {"thought": "read", "action": "cat a.py", "observation": "print(1)"},
            7,
        ]
    }
    t = read_swe_agent(data)
    assert [i.kind for i in t.items] == [
        Kind.ASSISTANT_TEXT,
        Kind.TOOL_CALL,
        Kind.TOOL_RESULT,
        Kind.ASSISTANT_TEXT,
        Kind.TOOL_CALL,
        Kind.FILE_READ,
        Kind.UNKNOWN,
    ]
    assert t.unknown_records == 1 and t.records == 3
    assert t.items[5].pair_id == t.items[4].pair_id


def test_model_stats_from_text_traj() -> None:
    t = read_swe_agent(TEXT_TRAJ)
    assert model_stats(t) == {"tokens_sent": 5200, "tokens_received": 120, "api_calls": 3}
    assert t.model is None


def test_sniffing() -> None:
    assert looks_like_swe_agent(TEXT_TRAJ)
    assert looks_like_swe_agent(FUNCTION_TRAJ)
    assert looks_like_swe_agent({"trajectory": []})
    assert not looks_like_swe_agent({"messages": [{"role": "user", "content": "x"}]})
    assert not looks_like_swe_agent([{"role": "user", "content": "x"}])
    assert not looks_like_swe_agent({"history": [{"role": "user", "content": "x"}]})
    # The two sniffers do not both claim a trajectory.
    assert not looks_like_messages(TEXT_TRAJ)


def test_not_a_trajectory_raises_source_error() -> None:
    with pytest.raises(SourceError):
        read_swe_agent([1, 2])
    with pytest.raises(SourceError):
        read_swe_agent({"info": {}})
