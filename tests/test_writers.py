"""Writers of compacted contexts (Anthropic, OpenAI, Claude Code, text) and the
message-list validator, on hand-built items and on reader round trips."""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ctxbudget.errors import SourceError
from ctxbudget.model import Item, Kind, Role
from ctxbudget.sources.claude_code import read_claude_code
from ctxbudget.sources.claude_code_writer import to_claude_code
from ctxbudget.sources.messages import read_messages
from ctxbudget.sources.swe_agent import read_swe_agent
from ctxbudget.sources.validation import validate_messages
from ctxbudget.sources.writers import CONTINUE_TEXT, to_anthropic, to_openai
from ctxbudget.sources.writing import to_text, write

SUMMARY_TEXT = "Summary: the user asked to fix add() in src/app.py; REQ-1 keep the API stable."


def summary() -> Item:
    return Item(role=Role.USER, kind=Kind.SUMMARY, text=SUMMARY_TEXT, raw=None)


def user(text: str, index: int = 0) -> Item:
    return Item(role=Role.USER, kind=Kind.USER_TEXT, text=text, message_index=index)


def assistant(text: str, index: int = 0) -> Item:
    return Item(role=Role.ASSISTANT, kind=Kind.ASSISTANT_TEXT, text=text, message_index=index)


def call(pair: str, tool: str, args: dict[str, Any], index: int = 0) -> Item:
    text = f"{tool} {json.dumps(args, separators=(',', ':'))}"
    return Item(
        role=Role.ASSISTANT,
        kind=Kind.TOOL_CALL,
        text=text,
        tool=tool,
        pair_id=pair,
        message_index=index,
    )


def result(pair: str, text: str, tool: str = "Read", index: int = 0) -> Item:
    return Item(
        role=Role.TOOL,
        kind=Kind.TOOL_RESULT,
        text=text,
        tool=tool,
        pair_id=pair,
        message_index=index,
    )


ANTHROPIC_ID = re.compile(r"^[A-Za-z0-9_-]+$")

# ---------------------------------------------------------------- hand-built items


def test_consecutive_same_role_messages_are_merged() -> None:
    items = [
        user("first request", 0),
        user("second request", 1),
        assistant("answer one", 2),
        assistant("answer two", 3),
        user("thanks", 4),
    ]
    doc = to_anthropic(items, model="claude-x")
    assert doc["model"] == "claude-x"
    roles = [m["role"] for m in doc["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert [b["text"] for b in doc["messages"][0]["content"]] == ["first request", "second request"]
    assert validate_messages(doc, "anthropic") == []

    chat = to_openai(items)
    assert chat == [
        {"role": "user", "content": "first request\n\nsecond request"},
        {"role": "assistant", "content": "answer one\n\nanswer two"},
        {"role": "user", "content": "thanks"},
    ]
    assert validate_messages(chat, "openai") == []


def test_summary_is_user_text_and_first_message_is_user() -> None:
    doc = to_anthropic([summary(), assistant("Continuing.", 7)])
    assert doc["messages"][0] == {
        "role": "user",
        "content": [{"type": "text", "text": SUMMARY_TEXT}],
    }
    assert "system" not in doc and "tools" not in doc and "model" not in doc

    starts_with_assistant = to_anthropic([assistant("Where was I?", 3), user("go on", 4)])
    first = starts_with_assistant["messages"][0]
    assert first == {"role": "user", "content": [{"type": "text", "text": CONTINUE_TEXT}]}
    assert validate_messages(starts_with_assistant, "anthropic") == []
    assert validate_messages(to_anthropic([]), "anthropic") == []


def test_system_items_and_tool_definitions() -> None:
    definition = {
        "type": "function",
        "function": {"name": "grep", "parameters": {"type": "object"}},
    }
    items = [
        Item(
            role=Role.SYSTEM,
            kind=Kind.SYSTEM_PROMPT,
            text=json.dumps(definition),
            tool="grep",
            message_index=-1,
            raw={"message": None, "block": definition},
        ),
        Item(role=Role.SYSTEM, kind=Kind.SYSTEM_PROMPT, text="You are careful.", message_index=-1),
        Item(role=Role.SYSTEM, kind=Kind.INSTRUCTION, text="Use tabs.", message_index=-1),
        user("hi", 0),
    ]
    doc = to_anthropic(items)
    assert doc["tools"] == [{"name": "grep", "input_schema": {"type": "object"}}]
    assert doc["system"] == [
        {"type": "text", "text": "You are careful."},
        {"type": "text", "text": "Use tabs."},
    ]
    assert to_anthropic(items[1:2] + items[3:])["system"] == "You are careful."
    chat = to_openai(items)
    assert chat[:2] == [
        {"role": "system", "content": "You are careful."},
        {"role": "system", "content": "Use tabs."},
    ]
    assert chat[2] == {"role": "user", "content": "hi"}


def test_tool_pair_kept_whole_is_valid_and_split_pair_is_reported() -> None:
    whole = [
        user("read it", 0),
        call("tu_1", "Read", {"file_path": "a.py"}, 1),
        result("tu_1", "print(1)", index=2),
        assistant("done", 3),
    ]
    doc = to_anthropic(whole)
    assert doc["messages"][1]["content"] == [
        {"type": "tool_use", "id": "tu_1", "name": "Read", "input": {"file_path": "a.py"}}
    ]
    assert doc["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "tu_1", "content": "print(1)"}
    ]
    assert validate_messages(doc, "anthropic") == []
    chat = to_openai(whole)
    assert chat[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "tu_1",
                "type": "function",
                "function": {"name": "Read", "arguments": '{"file_path":"a.py"}'},
            }
        ],
    }
    assert chat[2] == {"role": "tool", "tool_call_id": "tu_1", "content": "print(1)"}
    assert validate_messages(chat, "openai") == []

    call_only = [whole[0], whole[1], assistant("done", 3), user("next", 4)]
    problems = validate_messages(to_anthropic(call_only), "anthropic")
    assert any("tool_use tu_1 has no tool_result" in p for p in problems)
    problems = validate_messages(to_openai(call_only), "openai")
    assert any("tool call tu_1 is not answered" in p for p in problems)

    result_only = [whole[0], assistant("hm", 1), whole[2]]
    problems = validate_messages(to_anthropic(result_only), "anthropic")
    assert any("tool_result for tu_1 has no tool_use" in p for p in problems)
    problems = validate_messages(to_openai(result_only), "openai")
    assert any("refers to no earlier assistant tool call" in p for p in problems)

    # A call at the very end, never answered.
    problems = validate_messages(to_openai(whole[:2]), "openai")
    assert problems == ["message 1: tool call tu_1 is not answered by the end of the list"]


def test_tool_results_come_first_in_their_user_message() -> None:
    items = [
        user("go", 0),
        call("tu_1", "Read", {"file_path": "a"}, 1),
        summary(),  # a summary landing between a call and its result
        result("tu_1", "content of a", index=2),
        user("and also b", 2),
    ]
    doc = to_anthropic(items)
    types = [b["type"] for b in doc["messages"][2]["content"]]
    assert types == ["tool_result", "text", "text"]
    assert validate_messages(doc, "anthropic") == []


def test_stubbed_result_is_written_with_its_new_text() -> None:
    original = {
        "type": "tool_result",
        "tool_use_id": "tu_1",
        "content": [{"type": "text", "text": "line 1\nline 2\nline 3"}],
        "is_error": True,
    }
    kept = result("tu_1", "line 1\nline 2\nline 3")
    kept.raw = {"message": 2, "block": original}
    stub = result("tu_1", "[Read a.py: 3 lines; first: line 1]")
    stub.raw = {"message": 2, "block": original}
    use = call("tu_1", "Read", {"file_path": "a.py"}, 1)

    reused = to_anthropic([user("x"), use, kept])["messages"][2]["content"][0]
    assert reused == original
    rebuilt = to_anthropic([user("x"), use, stub])["messages"][2]["content"][0]
    assert rebuilt == {
        "type": "tool_result",
        "tool_use_id": "tu_1",
        "content": "[Read a.py: 3 lines; first: line 1]",
        "is_error": True,
    }


def test_tool_call_rebuilt_from_text_when_changed() -> None:
    raw_block = {"type": "tool_use", "id": "tu_9", "name": "Bash", "input": {"command": "ls -la"}}
    same = call("tu_9", "Bash", {"command": "ls -la"})
    same.raw = {"message": 1, "block": {**raw_block, "cache_control": {"type": "ephemeral"}}}
    doc = to_anthropic([user("x"), same])
    assert doc["messages"][1]["content"][0]["cache_control"] == {"type": "ephemeral"}

    changed = call("tu_9", "Bash", {"command": "ls"})
    changed.raw = {"message": 1, "block": raw_block}
    block = to_anthropic([user("x"), changed])["messages"][1]["content"][0]
    assert block == {"type": "tool_use", "id": "tu_9", "name": "Bash", "input": {"command": "ls"}}

    not_json = Item(
        role=Role.ASSISTANT,
        kind=Kind.TOOL_CALL,
        text="Bash [stub: long heredoc]",
        tool="Bash",
        pair_id="tu_9",
    )
    block = to_anthropic([user("x"), not_json])["messages"][1]["content"][0]
    assert block["input"] == {"text": "[stub: long heredoc]"}
    args = to_openai([user("x"), not_json])[1]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(args) == {"text": "[stub: long heredoc]"}


def test_ids_are_made_valid_and_stay_paired() -> None:
    items = [
        user("x"),
        call("call_1", "read", {"p": 1}, 1),
        result("call_1", "one", index=2),
        call("call_1#2", "read", {"p": 2}, 3),
        result("call_1#2", "two", index=4),
        call("action:5", "ls", {}, 5),
        result("action:5", "three", index=6),
    ]
    doc = to_anthropic(items)
    uses = [b["id"] for m in doc["messages"] for b in m["content"] if b["type"] == "tool_use"]
    assert len(set(uses)) == 3 and all(ANTHROPIC_ID.match(u) for u in uses)
    assert validate_messages(doc, "anthropic") == []
    assert validate_messages(to_openai(items), "openai") == []


def test_thinking_is_kept_only_when_its_signed_block_is_unchanged() -> None:
    block = {"type": "thinking", "thinking": "plan", "signature": "sig"}
    thought = Item(
        role=Role.ASSISTANT, kind=Kind.THINKING, text="plan", raw={"message": 1, "block": block}
    )
    stubbed = Item(
        role=Role.ASSISTANT, kind=Kind.THINKING, text="pl", raw={"message": 1, "block": block}
    )
    kept = to_anthropic([user("x"), thought, assistant("ok", 1)])["messages"][1]["content"]
    assert kept == [block, {"type": "text", "text": "ok"}]
    dropped = to_anthropic([user("x"), stubbed, assistant("ok", 1)])["messages"][1]["content"]
    assert dropped == [{"type": "text", "text": "ok"}]
    assert to_openai([user("x"), thought, assistant("ok", 1)])[1] == {
        "role": "assistant",
        "content": "ok",
    }


def test_validate_reports_role_order_and_empty_content() -> None:
    problems = validate_messages(
        [
            {"role": "assistant", "content": "hi"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": [{"type": "text", "text": " "}]},
        ],
        "anthropic",
    )
    assert any("first message" in p for p in problems)
    assert any("in a row" in p for p in problems)
    assert any("message 1: empty content" in p for p in problems)
    assert any("empty text block" in p for p in problems)
    late = validate_messages(
        [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "first"},
                    {"type": "tool_result", "tool_use_id": "t", "content": "r"},
                ],
            },
        ],
        "anthropic",
    )
    assert late == [
        "message 2 block 1: tool_result after other content (tool_result blocks must come first)"
    ]
    with pytest.raises(SourceError):
        validate_messages([], "gemini")


def test_to_text() -> None:
    text = to_text([summary(), call("t", "Read", {"file_path": "a"}), result("t", "body")])
    assert text == (
        f"[user/summary] {SUMMARY_TEXT}\n\n"
        '[assistant/tool_call] Read {"file_path":"a"}\n\n'
        "[tool/tool_result] body\n"
    )
    assert to_text([]) == ""


# ---------------------------------------------------------------- round trips

ANTHROPIC_DOC: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "system": "You are a careful coding agent.",
    "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}],
    "messages": [
        {"role": "user", "content": "Fix add() in src/app.py (REQ-1: keep the API stable)."},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Reading the file."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "Read",
                    "input": {"file_path": "src/app.py"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "def add(a, b):\n    return a - b"}],
                }
            ],
        },
        {"role": "assistant", "content": "The bug: subtraction instead of addition."},
        {"role": "user", "content": "Go ahead and fix it."},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "Edit",
                    "input": {"file_path": "src/app.py", "old": "a - b", "new": "a + b"},
                }
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "ok"}],
        },
        {"role": "assistant", "content": "Fixed. Shall I run the tests?"},
        {"role": "user", "content": [{"type": "text", "text": "Yes, run them."}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_3",
                    "name": "Bash",
                    "input": {"command": "pytest -q"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_3",
                    "content": "3 passed in 0.1s\n" + "log line\n" * 50,
                }
            ],
        },
        {"role": "assistant", "content": "All 3 tests pass."},
    ],
}


def _compact(items: list[Item], drop: set[int]) -> list[Item]:
    """Drop the items of messages in ``drop``, put a summary in their place, and stub
    the long Bash result."""
    kept: list[Item] = []
    placed = False
    for item in items:
        if item.message_index in drop:
            if not placed:
                kept.append(summary())
                placed = True
            continue
        if item.role is Role.TOOL and item.text.startswith("3 passed"):
            item = copy.copy(item)
            item.text = "[Bash pytest -q: 51 lines; first: 3 passed in 0.1s]"
        kept.append(item)
    return kept


def test_anthropic_round_trip_through_the_reader(tmp_path: Path) -> None:
    transcript = read_messages(copy.deepcopy(ANTHROPIC_DOC))
    kept = _compact(transcript.items, drop={3, 4, 5, 6, 7})
    # tools, system, message 0, message 1 (text, call), message 2 (result), the summary
    assert kept[6].kind is Kind.SUMMARY
    out = tmp_path / "compacted.json"
    write(kept, "same", transcript.format, out, model=transcript.model)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["model"] == "claude-sonnet-4-5"
    assert written["tools"] == ANTHROPIC_DOC["tools"]
    assert validate_messages(written, "anthropic") == []
    # The read's result, the summary and "Yes, run them." merge into one user message.
    roles = [m["role"] for m in written["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant"]
    merged = [b["type"] for b in written["messages"][2]["content"]]
    assert merged == ["tool_result", "text", "text"]
    again = read_messages(written)
    assert [i.text for i in again.items] == [i.text for i in kept]
    # A summary reads back as user text (an Anthropic request has no summary marker).
    kinds = [Kind.USER_TEXT if i.kind is Kind.SUMMARY else i.kind for i in kept]
    assert [i.kind for i in again.items] == kinds
    stub = written["messages"][-2]["content"][0]
    assert stub["content"] == "[Bash pytest -q: 51 lines; first: 3 passed in 0.1s]"


def test_openai_round_trip_through_the_reader(tmp_path: Path) -> None:
    doc = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is in a.txt?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a.txt"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "alpha"},
        {"role": "assistant", "content": "It says alpha."},
        {"role": "user", "content": "And b.txt?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "b.txt"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_b", "content": "beta"},
        {"role": "assistant", "content": "It says beta."},
    ]
    transcript = read_messages(doc)
    assert transcript.format == "openai-messages"
    kept = _compact(transcript.items, drop={2, 3, 4})
    out = tmp_path / "chat.json"
    write(kept, "same", transcript.format, out)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(written, list)
    assert validate_messages(written, "openai") == []
    # The raw arguments string is reused as it was sent.
    assert written[2]["tool_calls"][0]["function"]["arguments"] == '{"path": "b.txt"}'
    # The summary and the next user text merge into one user message.
    assert written[1] == {
        "role": "user",
        "content": "What is in a.txt?\n\n" + SUMMARY_TEXT + "\n\nAnd b.txt?",
    }
    again = read_messages(written)
    texts = [i.text for i in again.items]
    assert texts == [
        "Be brief.",
        written[1]["content"],
        'read_file {"path":"b.txt"}',
        "beta",
        "It says beta.",
    ]


CC_SESSION = "11111111-2222-3333-4444-555555555555"


def _cc(uuid: str, parent: str | None, rtype: str, content: Any, **extra: Any) -> str:
    message: dict[str, Any] = {"role": rtype, "content": content}
    if rtype == "assistant":
        message = {"id": f"msg_{uuid}", "type": "message", "model": "claude-sonnet-4-5", **message}
        message["usage"] = {"input_tokens": 10, "output_tokens": 5}
    record = {
        "parentUuid": parent,
        "isSidechain": False,
        "userType": "external",
        "cwd": "/home/dev/proj",
        "sessionId": CC_SESSION,
        "version": "1.0.56",
        "type": rtype,
        "uuid": uuid,
        "timestamp": "2025-07-20T10:00:00.000Z",
        "message": message,
        **extra,
    }
    return json.dumps(record)


CC_LINES = [
    _cc("u1", None, "user", "Fix add() in src/app.py; REQ-1 keep the API stable."),
    _cc(
        "a1",
        "u1",
        "assistant",
        [
            {"type": "text", "text": "Reading it."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "Read",
                "input": {"file_path": "src/app.py"},
            },
        ],
    ),
    _cc(
        "r1",
        "a1",
        "user",
        [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": "def add(a, b): return a - b",
            }
        ],
    ),
    _cc("a2", "r1", "assistant", [{"type": "text", "text": "Found the bug."}]),
    _cc("u2", "a2", "user", "Now run the tests, please."),
    _cc(
        "a3",
        "u2",
        "assistant",
        [{"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {"command": "pytest -q"}}],
    ),
    _cc(
        "r2",
        "a3",
        "user",
        [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_2",
                "content": [{"type": "text", "text": "3 passed in 0.1s\n" + "x\n" * 40}],
            }
        ],
    ),
    _cc("a4", "r2", "assistant", [{"type": "text", "text": "All green."}]),
]


def test_claude_code_round_trip_through_the_reader(tmp_path: Path) -> None:
    transcript = read_claude_code(CC_LINES)
    assert transcript.session_id == CC_SESSION
    items = transcript.items
    # Summarize the first exchange (messages 0..3); keep the last one, stubbing its result.
    kept = [summary()] + [copy.copy(i) for i in items if i.message_index >= 4]
    for item in kept:
        if item.role is Role.TOOL:
            item.text = "[Bash pytest -q: 41 lines; first: 3 passed in 0.1s]"
    records = to_claude_code(kept, CC_LINES)
    assert records[0]["type"] == "system" and records[0]["subtype"] == "compact_boundary"
    assert records[0]["logicalParentUuid"] == "a4"
    assert records[1]["isCompactSummary"] is True
    assert records[1]["message"] == {"role": "user", "content": SUMMARY_TEXT}
    for previous, record in itertools.pairwise(records):
        assert record["parentUuid"] == previous["uuid"]
    assert {r["sessionId"] for r in records} == {CC_SESSION}
    assert {r["cwd"] for r in records} == {"/home/dev/proj"}
    assert len({r["uuid"] for r in records}) == len(records)
    assert not {r["uuid"] for r in records} & {"u1", "a1", "r1", "a2", "u2", "a3", "r2", "a4"}
    assert validate_messages(records, "claude-code") == []

    out = tmp_path / "session.jsonl"
    write(kept, "same", "claude-code", out, session_id="sess-override", records_hint=CC_LINES)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert all(json.loads(line)["sessionId"] == "sess-override" for line in lines)
    again = read_claude_code(lines)
    assert again.items[0].kind is Kind.SUMMARY
    assert [i.text for i in again.items] == [i.text for i in kept]
    assert [i.kind for i in again.items] == [i.kind for i in kept]
    assert again.model == "claude-sonnet-4-5"
    # Appended to the original session, the reader's current context is the compacted one.
    appended = read_claude_code(CC_LINES + lines)
    assert [i.text for i in appended.items] == [i.text for i in kept]


def test_claude_code_without_summary_still_starts_with_user() -> None:
    items = read_claude_code(CC_LINES).items
    kept = [i for i in items if i.message_index >= 3]  # starts with the assistant's text
    records = to_claude_code(kept, session_id="s")
    assert records[1]["type"] == "user" and "isCompactSummary" not in records[1]
    assert records[1]["message"]["content"] == [{"type": "text", "text": CONTINUE_TEXT}]
    assert validate_messages(records, "claude-code") == []
    assert read_claude_code(json.dumps(r) for r in records).items[0].text == CONTINUE_TEXT


SWE_TRAJ: dict[str, Any] = {
    "history": [
        {"role": "system", "content": "SETTING: ...", "message_type": "system_prompt"},
        {"role": "user", "content": "ISSUE: lib.py crashes", "message_type": "observation"},
        {
            "role": "assistant",
            "content": "Look at it.",
            "message_type": "action",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "bash", "arguments": '{"command": "cat lib.py"}'},
                }
            ],
        },
        {
            "role": "tool",
            "content": [{"type": "text", "text": "x = 1/0"}],
            "tool_call_ids": ["call_1"],
            "message_type": "observation",
        },
        {
            "role": "assistant",
            "content": "Fix it.",
            "message_type": "action",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "bash",
                        "arguments": '{"command": "sed -i s/0/1/ lib.py"}',
                    },
                }
            ],
        },
        {
            "role": "tool",
            "content": [{"type": "text", "text": ""}],
            "tool_call_ids": ["call_1"],
            "message_type": "observation",
        },
    ]
}


def test_swe_agent_same_is_an_openai_list(tmp_path: Path) -> None:
    transcript = read_swe_agent(SWE_TRAJ)
    out = tmp_path / "traj.json"
    write(transcript.items, "same", transcript.format, out)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(written, list)
    assert validate_messages(written, "openai") == []
    ids = [c["id"] for m in written for c in m.get("tool_calls") or []]
    assert ids == ["call_1", "call_1#2"]  # the replayed id is kept unique
    assert validate_messages(to_anthropic(transcript.items), "anthropic") == []


# ---------------------------------------------------------------- write


def test_write_formats_and_atomic_replace(tmp_path: Path) -> None:
    items = [user("hello", 0), assistant("hi", 1)]
    out = tmp_path / "out.json"
    out.write_text("old content", encoding="utf-8")
    write(items, "messages", "claude-code", out)
    assert json.loads(out.read_text(encoding="utf-8")) == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"},
    ]
    write(items, "text", "claude-code", out)
    assert (
        out.read_text(encoding="utf-8")
        == "[user/user_text] hello\n\n[assistant/assistant_text] hi\n"
    )
    write(items, "same", "messages", out)
    assert json.loads(out.read_text(encoding="utf-8"))["messages"][0]["role"] == "user"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temp file left


@pytest.mark.parametrize(
    ("fmt", "source"),
    [
        ("same", "claude-code"),
        ("same", "messages"),
        ("same", "openai-messages"),
        ("messages", "claude-code"),
    ],
)
def test_half_an_emoji_is_written_as_json_writes_it(tmp_path: Path, fmt: str, source: str) -> None:
    """A text cut between the two UTF-16 halves of an emoji (a JavaScript slice cuts
    by UTF-16 unit) holds a lone surrogate, which UTF-8 cannot encode. JSON
    output escapes it, as JavaScript does, and reads back to the same text."""
    texts = ["the output was cut here: \ud83d", "noted \udc00"]
    out = tmp_path / "out.json"
    write([user(texts[0], 0), assistant(texts[1], 1)], fmt, source, out)
    written = out.read_bytes().decode("utf-8")  # valid UTF-8
    assert "\\ud83d" in written and "\\udc00" in written
    if fmt == "same" and source == "claude-code":
        back = read_claude_code(written.split("\n")).items
    else:
        back = read_messages(json.loads(written)).items
    assert [item.text for item in back] == texts


def test_half_an_emoji_in_plain_text_is_the_replacement_character(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    write([user("cut: \ud83d", 0)], "text", "claude-code", out)
    assert out.read_text(encoding="utf-8") == "[user/user_text] cut: \ufffd\n"


@pytest.mark.parametrize(
    ("fmt", "source", "target", "message"),
    [
        ("yaml", "claude-code", "out.json", "unknown output format"),
        ("same", "mystery", "out.json", "cannot write 'mystery'"),
        ("text", "claude-code", "missing/out.txt", "does not exist"),
        ("text", "claude-code", ".", "is a directory"),
    ],
)
def test_write_errors(tmp_path: Path, fmt: str, source: str, target: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        write([user("x")], fmt, source, tmp_path / target)
    assert [p.name for p in tmp_path.iterdir()] == []


def test_validation_names_calls_without_an_id_or_with_one_seen_before() -> None:
    use = {"type": "tool_use", "name": "Read", "input": {}}
    anthropic = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{**use, "id": "t1"}, {**use, "id": "t1"}, use]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]},
    ]
    problems = validate_messages(anthropic, "anthropic")
    assert "message 1 block 1: tool_use id t1 is not unique" in problems
    assert "message 1 block 2: tool_use without an id" in problems
    openai = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "c1"}, {"id": "c1"}, {"id": ""}]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ]
    problems = validate_messages(openai, "openai")
    assert "message 1: tool call id c1 is not unique" in problems
    assert "message 1: tool call without an id" in problems
    assert not any("not answered" in p and "c1" in p for p in problems)  # c1 answered
