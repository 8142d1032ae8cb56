"""The LangGraph / LangChain integration: conversion, the budget hook, the usage callback,
the middleware and the runnable example. Skipped without the ``langgraph`` extra."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langgraph")

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, LLMResult
from langgraph.graph.message import REMOVE_ALL_MESSAGES, add_messages

from ctxbudget import BudgetBlockedError, Kind, Level, Role, Tracker
from ctxbudget.compaction import CompactionPolicy
from ctxbudget.integrations.langgraph import (
    BudgetHook,
    UsageCallback,
    budget_hook,
    items_to_messages,
    messages_to_items,
    usage_from_message,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "langgraph_agent.py"


def _mid() -> str:
    return str(uuid.uuid4())


def _conversation(turns: int, *, result_words: int = 220) -> list[BaseMessage]:
    """System prompt, then per turn: a question, a tool call, its result, an answer."""
    messages: list[BaseMessage] = [SystemMessage("You are the analyst.", id=_mid())]
    for n in range(turns):
        body = " ".join(f"fact{n}-{k} holds" for k in range(result_words // 2))
        messages += [
            HumanMessage(f"Question {n}: what about module {n}?", id=_mid()),
            AIMessage(
                content=f"Looking up module {n}.",
                tool_calls=[
                    {"name": "read_file", "args": {"path": f"src/mod{n}.py"}, "id": f"c{n}"}
                ],
                id=_mid(),
            ),
            ToolMessage(f"REQ-{n}: module {n} must log. {body}", tool_call_id=f"c{n}", id=_mid()),
            AIMessage(f"Module {n} logs every failure (REQ-{n}).", id=_mid()),
        ]
    return messages


def _check_pairs(messages: list[BaseMessage]) -> None:
    """Every tool call is answered right after its message; every result has its call."""
    open_calls: set[str] = set()
    for message in messages:
        if isinstance(message, ToolMessage):
            assert message.tool_call_id in open_calls, message.tool_call_id
            open_calls.discard(message.tool_call_id)
            continue
        assert not open_calls, f"calls {open_calls} not answered before {message.type}"
        if isinstance(message, AIMessage):
            open_calls = {str(c["id"]) for c in message.tool_calls}
    assert not open_calls


def _session(window: int = 200_000) -> Any:
    return Tracker(store="memory://").session(model="gpt-4o", window=window)


# ---------------------------------------------------------------- conversion


def test_messages_to_items_and_back_with_tool_calls() -> None:
    messages: list[BaseMessage] = [
        SystemMessage("Be brief.", id="m0"),
        HumanMessage("Find the config and the tests.", id="m1"),
        AIMessage(
            content=[
                {"type": "text", "text": "Reading both."},
                # Anthropic repeats the calls in the content: not counted twice
                {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "a.toml"}},
            ],
            tool_calls=[
                {"name": "Read", "args": {"file_path": "a.toml"}, "id": "t1"},
                {"name": "Grep", "args": {"pattern": "def test_"}, "id": "t2"},
            ],
            id="m2",
        ),
        ToolMessage("[tool]\nname = 'x'", tool_call_id="t1", id="m3"),
        ToolMessage("tests/test_a.py:3: def test_a", tool_call_id="t2", id="m4"),
        AIMessage("The config names x; one test.", id="m5"),
    ]
    items = messages_to_items(messages)
    assert [(i.role, i.kind) for i in items] == [
        (Role.SYSTEM, Kind.SYSTEM_PROMPT),
        (Role.USER, Kind.USER_TEXT),
        (Role.ASSISTANT, Kind.ASSISTANT_TEXT),
        (Role.ASSISTANT, Kind.TOOL_CALL),
        (Role.ASSISTANT, Kind.TOOL_CALL),
        (Role.TOOL, Kind.FILE_READ),
        (Role.TOOL, Kind.SEARCH_RESULT),
        (Role.ASSISTANT, Kind.ASSISTANT_TEXT),
    ]
    assert [i.message_index for i in items] == [0, 1, 2, 2, 2, 3, 4, 5]
    assert items[2].text == "Reading both."
    assert items[3].text == 'Read {"file_path":"a.toml"}' and items[3].tool == "Read"
    assert (items[3].pair_id, items[4].pair_id) == ("t1", "t2")
    assert (items[5].pair_id, items[5].tool) == ("t1", "Read")
    assert (items[6].pair_id, items[6].tool) == ("t2", "Grep")

    # unchanged: the very same objects come back
    back = items_to_messages(items, messages)
    assert all(a is b for a, b in zip(back, messages, strict=True))

    # without the originals: rebuilt, equal in what the model sees
    rebuilt = items_to_messages(items)
    assert [type(m) for m in rebuilt] == [type(m) for m in messages]
    assert [m.id for m in rebuilt] == [m.id for m in messages]
    ai = rebuilt[2]
    assert isinstance(ai, AIMessage) and ai.content == "Reading both."
    assert [(c["name"], c["args"], c["id"]) for c in ai.tool_calls] == [
        ("Read", {"file_path": "a.toml"}, "t1"),
        ("Grep", {"pattern": "def test_"}, "t2"),
    ]
    assert [m.tool_call_id for m in rebuilt[3:5] if isinstance(m, ToolMessage)] == ["t1", "t2"]
    assert rebuilt[3].content == messages[3].content
    _check_pairs(rebuilt)

    # a shortened result is rebuilt with its new text, still answering its call
    items[5].text = "[Read a.toml: 2 lines, cleared]"
    again = items_to_messages(items, messages)
    assert again[3] is not messages[3] and again[3].content == items[5].text
    assert isinstance(again[3], ToolMessage) and again[3].tool_call_id == "t1"
    assert again[2] is messages[2] and again[4] is messages[4]


def test_repeated_call_ids_pair_with_the_latest_call() -> None:
    messages: list[BaseMessage] = []
    for n in range(2):
        messages += [
            AIMessage("", tool_calls=[{"name": "ls", "args": {}, "id": "same"}], id=f"a{n}"),
            ToolMessage(f"listing {n}", tool_call_id="same", id=f"t{n}"),
        ]
    items = messages_to_items(messages)
    assert [i.pair_id for i in items] == ["same", "same", "same#2", "same#2"]
    rebuilt = items_to_messages(items)
    assert [getattr(m, "tool_call_id", None) for m in rebuilt] == [None, "same", None, "same"]


# ---------------------------------------------------------------- the hook


def test_hook_returns_the_state_untouched_below_the_trigger() -> None:
    session = _session()
    hook = budget_hook(session)
    messages = _conversation(2)
    update = hook({"messages": messages})
    assert list(update) == ["llm_input_messages"]
    assert all(a is b for a, b in zip(update["llm_input_messages"], messages, strict=True))
    # the session holds the conversation: one item per text, call and result
    assert len(session.items) == len(messages_to_items(messages))
    assert session.status().level is Level.NORMAL
    # a second call adds only what is new
    more = [*messages, HumanMessage("and module 9?", id=_mid())]
    hook({"messages": more})
    assert len(session.items) == len(messages_to_items(messages)) + 1


def test_hook_compacts_over_the_trigger_and_keeps_pairs() -> None:
    session = _session(window=3_000)
    hook = budget_hook(session, compaction=CompactionPolicy(keep_last=2, keep_results=1))
    messages = _conversation(8)
    before = session.counter.count(" ".join(str(m.content) for m in messages))
    assert before > 0.9 * 3_000  # over the critical threshold, the default trigger
    update = hook({"messages": messages})
    view = update["llm_input_messages"]
    assert hook.compactions == 1 and hook.last_compaction is not None
    assert sum(session.counter.count(str(m.content)) for m in view) < 0.7 * before
    _check_pairs(view)
    # old tool results were shortened (new messages); the rest are the same objects
    shortened = [
        m for m in view if isinstance(m, ToolMessage) and not any(m is o for o in messages)
    ]
    assert shortened and all(m.id in {o.id for o in messages} for m in shortened)
    assert isinstance(view[0], SystemMessage) and view[0] is messages[0]
    assert view[-1] is messages[-1]  # the last exchange stays as it was
    assert session.status().percent < 90
    # the graph's history stays whole: nothing was changed in place
    assert len(messages) == 33 and all(m.id for m in messages)

    # the next call: the compacted context plus what came since
    question = HumanMessage("One more: module 8?", id=_mid())
    later = hook({"messages": [*messages, question]})["llm_input_messages"]
    assert later[:-1] == view and later[-1] is question
    assert hook.compactions == 1  # below the trigger again: no new compaction


def test_replace_mode_rewrites_the_history() -> None:
    session = _session(window=3_000)
    hook = budget_hook(session, mode="replace", compaction=CompactionPolicy(keep_last=2))
    state: list[BaseMessage] = _conversation(8)
    update = hook({"messages": state})
    removal, *view = update["messages"]
    assert isinstance(removal, RemoveMessage) and removal.id == REMOVE_ALL_MESSAGES
    assert "llm_input_messages" not in update
    _check_pairs(view)
    new_state: list[BaseMessage] = add_messages(state, update["messages"])  # type: ignore[arg-type,assignment]
    assert [m.id for m in new_state] == [m.id for m in view] and len(new_state) < len(state)
    # in step with the rewritten history: only the new message is added
    items = len(session.items)
    question = HumanMessage("next?", id=_mid())
    assert hook({"messages": [*new_state, question]}) == {"messages": []}
    assert len(session.items) == items + 1


def test_blocked_when_nothing_can_be_freed() -> None:
    session = _session(window=1_000)
    hook = budget_hook(session)
    huge = HumanMessage(" ".join(f"word{k}" for k in range(1_500)), id=_mid())
    with pytest.raises(BudgetBlockedError, match="blocked"):
        hook({"messages": [SystemMessage("sys", id=_mid()), huge]})
    assert session.status().level is Level.BLOCKED


def test_hook_resumes_on_a_stored_session_and_rebases_a_rewritten_history(
    tmp_path: Path,
) -> None:
    tracker = Tracker(store=f"sqlite:///{tmp_path / 'lg.db'}")
    session = tracker.session(model="gpt-4o", window=200_000)
    messages = _conversation(2)
    budget_hook(session)({"messages": messages})
    count = len(session.items)

    # another process: the stored session and a new hook pick up where it stopped
    reopened = Tracker(store=f"sqlite:///{tmp_path / 'lg.db'}").open(session.id)
    hook = BudgetHook(reopened)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hook({"messages": [*messages, HumanMessage("next?", id=_mid())]})
    assert len(reopened.items) == count + 1

    # a history that does not extend what was seen becomes the new context
    other = _conversation(1)
    with pytest.warns(RuntimeWarning, match="does not extend"):
        update = hook({"messages": other})
    assert update["llm_input_messages"] == other
    assert len(reopened.items) == len(messages_to_items(other))
    assert reopened.version > session.version


# ---------------------------------------------------------------- usage


def test_usage_callback_records_what_the_model_reports() -> None:
    session = _session()
    reply = AIMessage(
        "hello",
        usage_metadata={
            "input_tokens": 1_234,
            "output_tokens": 56,
            "total_tokens": 1_290,
            "input_token_details": {"cache_read": 1_000, "cache_creation": 200},
        },
    )
    callback = UsageCallback(session)
    model = GenericFakeChatModel(messages=iter([reply]), callbacks=[callback])
    model.invoke("hi")
    assert callback.calls == 1
    usage = callback.last_usage
    assert usage is not None and usage.context_tokens == 1_234
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (1_000, 200)
    assert usage.output_tokens == 56
    status = session.status()
    # the answer too (its output tokens): the next request carries it
    assert status.reported_tokens == 1_234 and status.used_tokens == 1_234 + 56
    assert usage_from_message(reply) == usage

    # no usage_metadata: the provider's own llm_output figures
    result = LLMResult(
        generations=[[ChatGeneration(message=AIMessage("x"))]],
        llm_output={"token_usage": {"prompt_tokens": 2_000, "completion_tokens": 5}},
    )
    callback.on_llm_end(result, run_id=uuid.uuid4())
    assert callback.calls == 2 and session.status().reported_tokens == 2_000
    # nothing reported: nothing recorded
    callback.on_llm_end(LLMResult(generations=[[]]), run_id=uuid.uuid4())
    assert callback.calls == 2


# ---------------------------------------------------------------- in a real graph


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("langgraph_agent_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_agent(kind: str, mode: str = "llm_input") -> tuple[Any, Any, Any, Any]:
    example = _example()
    session = Tracker(store="memory://").session(model="gpt-4o", window=example.WINDOW)
    model = example.ScriptedModel(callbacks=[UsageCallback(session)])
    agent, hook = example.build_agent(kind, session, model, mode)
    config = {"configurable": {"thread_id": "t"}}
    state: dict[str, Any] = {}
    for question in example.QUESTIONS:
        state = agent.invoke({"messages": [HumanMessage(question)]}, config)
        hook.sync(state["messages"])
    return session, model, hook, state


@pytest.mark.parametrize("mode", ["llm_input", "replace"])
def test_create_react_agent_with_the_hook(mode: str) -> None:
    session, model, hook, state = _run_agent("prebuilt", mode)
    assert hook.compactions >= 1
    # the usage the model reported is what the session anchors on, and the model was
    # sent fewer messages than the graph holds (llm_input) or the history shrank
    assert model.callbacks[0].calls == len(model.sent) == 2 * len(_example().QUESTIONS)
    assert session.status().reported_tokens == model.callbacks[0].last_usage.context_tokens
    assert session.status().level is not Level.BLOCKED
    if mode == "llm_input":
        assert model.sent[-1] < len(state["messages"]) == 4 * len(_example().QUESTIONS)
    else:
        assert len(state["messages"]) < 4 * len(_example().QUESTIONS)


def test_create_agent_with_the_middleware() -> None:
    pytest.importorskip("langchain.agents")
    session, model, hook, state = _run_agent("middleware")
    assert hook.compactions >= 1
    assert model.sent[-1] < len(state["messages"])
    assert session.status().reported_tokens == model.callbacks[0].last_usage.context_tokens


@pytest.mark.parametrize("kind", ["prebuilt", "middleware"])
def test_async_graphs(kind: str) -> None:
    if kind == "middleware":
        pytest.importorskip("langchain.agents")
    example = _example()
    session = Tracker(store="memory://").session(model="gpt-4o", window=example.WINDOW)
    model = example.ScriptedModel(callbacks=[UsageCallback(session)])
    agent, hook = example.build_agent(kind, session, model, "llm_input")

    async def run() -> dict[str, Any]:
        state: dict[str, Any] = {}
        for question in example.QUESTIONS:
            state = await agent.ainvoke(
                {"messages": [HumanMessage(question)]}, {"configurable": {"thread_id": "a"}}
            )
            hook.sync(state["messages"])
        return state

    state = asyncio.run(run())
    assert hook.compactions >= 1 and model.sent[-1] < len(state["messages"])
    assert session.status().reported_tokens == model.callbacks[0].last_usage.context_tokens


@pytest.mark.parametrize("flag", ["--prebuilt", "--middleware"])
def test_the_example_runs_and_prints_status_lines(flag: str) -> None:
    if flag == "--middleware":
        pytest.importorskip("langchain.agents")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), flag],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    turns = [line for line in lines if line.startswith("turn ")]
    assert len(turns) == 10
    assert all("Tokens: " in line and "/3,000 (" in line for line in turns)
    assert any("compacted before the model call" in line for line in lines)
    assert "Warning" not in done.stderr
