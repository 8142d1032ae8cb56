"""Every reader survives mutated transcripts with ctxbudget's own errors only.

Small valid fixtures of each format (Claude Code JSONL, a Claude Code sub-agent file,
Anthropic and OpenAI message lists as JSON and JSONL, SWE-agent ``.traj``) are
mutated by hypothesis: any JSON value at any path replaced by a string, NaN,
Infinity, -1, 1e308, a list, a dict, null or a deeply nested structure; keys dropped
or added with bad values; lines cut short; invalid UTF-8 inserted. Each reader, the
loader and ``ctxbudget tokens FILE`` must then either read the file (bad records
counted and noted, never fatal) or refuse it with a ``CtxBudgetError`` (the CLI: exit
code 2 and one line), never with another exception or a traceback.

Budget: 300 examples per test by default (the ``ci`` profile registered in
conftest.py); for the long run (3,000 per test)::

    python -m pytest -p no:cacheprovider tests/test_readers_fuzz.py --hypothesis-profile=long
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctxbudget.errors import CtxBudgetError, SourceError
from ctxbudget.model import Transcript
from ctxbudget.sources import load_source, parse_source
from ctxbudget.sources.claude_code import read_claude_code
from ctxbudget.sources.claude_code_agents import read_agent_transcript, subagent_usages
from ctxbudget.sources.messages import read_messages
from ctxbudget.sources.problems import javascript_loads, loads
from ctxbudget.sources.swe_agent import read_swe_agent

# ---------------------------------------------------------------- fixtures (valid)

SID = "11111111-2222-3333-4444-555555555555"
USAGE = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 1000,
    "cache_read_input_tokens": 2000,
    "output_tokens": 50,
}


def _cc(kind: str, uuid: str, parent: str | None, message: Any = None, **extra: Any) -> Any:
    record = {
        "type": kind,
        "uuid": uuid,
        "parentUuid": parent,
        "sessionId": SID,
        "timestamp": "2025-07-21T18:16:56.261Z",
        "isSidechain": False,
        **extra,
    }
    if message is not None:
        record["message"] = message
    return record


CLAUDE_CODE = [
    _cc("user", "u1", None, {"role": "user", "content": "Fix the bug in app.py"}),
    _cc(
        "assistant",
        "a1",
        "u1",
        {
            "id": "msg_1",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [
                {"type": "thinking", "thinking": "look first"},
                {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "a.py"}},
            ],
            "usage": dict(USAGE),
        },
    ),
    _cc(
        "user",
        "u2",
        "a1",
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "text", "text": "x=1"}],
                }
            ],
        },
    ),
    _cc(
        "assistant",
        "a2",
        "u2",
        {
            "id": "msg_2",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [
                {
                    "type": "tool_use",
                    "id": "t2",
                    "name": "Task",
                    "input": {"subagent_type": "explorer", "description": "d", "prompt": "Find it"},
                }
            ],
            "usage": dict(USAGE, output_tokens=70),
        },
    ),
    _cc(
        "user", "s1", None, {"role": "user", "content": "Find it"}, isSidechain=True, agentId="ag1"
    ),
    _cc(
        "assistant",
        "s2",
        "s1",
        {"id": "msg_s", "content": [{"type": "text", "text": "found"}], "usage": dict(USAGE)},
        isSidechain=True,
        agentId="ag1",
    ),
    _cc(
        "user",
        "u3",
        "a2",
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t2", "content": "found"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "aGk="},
                },
            ],
        },
    ),
    _cc("system", "c1", None, subtype="compact_boundary", content="Conversation compacted"),
    _cc("user", "u4", "c1", {"role": "user", "content": "Summary: fixed"}, isCompactSummary=True),
    _cc(
        "assistant",
        "a3",
        "u4",
        {"id": "msg_3", "content": [{"type": "text", "text": "done"}], "usage": dict(USAGE)},
    ),
    {"type": "file-history-snapshot", "messageId": "x", "snapshot": {"files": {}}},
    {"type": "summary", "summary": "earlier work", "leafUuid": "u0"},
]

# Claude Code 2.x: a compaction keeping a message (``preservedMessages``) with a reminder
# between its boundary and its summary, two calls at once (each result hanging on its
# own call's record) and an error Claude Code shows the user.
CLAUDE_CODE_2X = [
    *CLAUDE_CODE[:3],
    _cc(
        "system",
        "c2",
        None,
        subtype="compact_boundary",
        compactMetadata={"preservedMessages": {"anchorUuid": "u9", "uuids": ["a1", "u2"]}},
    ),
    _cc(
        "attachment",
        "r1",
        "c2",
        attachment={"type": "date"},
        rendered=[{"content": "<system-reminder>\nToday is Monday.\n</system-reminder>"}],
        renderedRole="system",
    ),
    _cc(
        "user", "u9", "r1", {"role": "user", "content": "Summary: read a.py"}, isCompactSummary=True
    ),
    *(
        _cc(
            "assistant",
            f"p{n}",
            "u9" if n == 0 else "p0",
            {
                "id": "msg_p",
                "content": [{"type": "tool_use", "id": f"tp{n}", "name": "Read", "input": {}}],
                "usage": dict(USAGE),
            },
        )
        for n in range(2)
    ),
    *(
        _cc(
            "user",
            f"q{n}",
            f"p{n}",
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"tp{n}", "content": "r"}],
            },
        )
        for n in range(2)
    ),
    _cc(
        "assistant",
        "e1",
        "q1",
        {"id": "e", "model": "<synthetic>", "content": [{"type": "text", "text": "API Error"}]},
        isApiErrorMessage=True,
    ),
]

ANTHROPIC = {
    "model": "claude-sonnet-4-5",
    "system": [{"type": "text", "text": "You are helpful"}],
    "tools": [{"name": "read_file", "description": "d", "input_schema": {"type": "object"}}],
    "messages": [
        {"role": "user", "content": "Read a.py"},
        {
            "role": "assistant",
            "id": "msg_1",
            "model": "claude-sonnet-4-5",
            "content": [
                {"type": "text", "text": "ok"},
                {"type": "tool_use", "id": "tu1", "name": "read_file", "input": {"path": "a.py"}},
            ],
            "usage": dict(USAGE),
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "tu1",
                    "content": [{"type": "text", "text": "x"}],
                },
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "aGk="},
                },
                {"type": "document", "source": {"type": "text", "data": "doc"}, "title": "t"},
            ],
        },
    ],
}

OPENAI = [
    {"role": "system", "content": "sys"},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "hi"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "grep", "arguments": '{"q": "x"}'},
            }
        ],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 10},
        },
    },
    {"role": "tool", "tool_call_id": "c1", "name": "grep", "content": "a.py:1"},
    {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
    {"role": "function", "name": "f", "content": "r"},
    {
        "id": "chatcmpl-1",
        "model": "gpt-4o",
        "choices": [{"message": {"role": "assistant", "content": "done", "refusal": None}}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 3},
    },
]

OPENAI_REQUEST = {
    "model": "gpt-4o",
    "tools": [{"type": "function", "function": {"name": "grep", "parameters": {}}}],
    "messages": OPENAI,
}

SWE_AGENT = {
    "history": [
        {"role": "system", "content": "sys", "agent": "main", "message_type": "system_prompt"},
        {"role": "user", "content": [{"type": "text", "text": "demo"}], "is_demo": True},
        {
            "role": "user",
            "content": "Fix the issue",
            "agent": "main",
            "message_type": "observation",
        },
        {
            "role": "assistant",
            "content": "Look\n```\ncat a.py\n```",
            "thought": "Look\n",
            "action": "cat a.py",
            "message_type": "action",
            "thinking_blocks": [{"type": "thinking", "thinking": "hm"}],
        },
        {"role": "user", "content": "x=1", "message_type": "observation"},
        {
            "role": "assistant",
            "content": "grep",
            "thought": "grep",
            "action": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "bash", "arguments": '{"command": "grep -r x ."}'},
                }
            ],
            "message_type": "action",
        },
        {
            "role": "tool",
            "content": [{"type": "text", "text": "a.py:x"}],
            "tool_call_ids": ["call_1"],
        },
    ],
    "trajectory": [{"thought": "t", "action": "cat a.py", "observation": "x=1", "response": "r"}],
    "info": {"model_stats": {"tokens_sent": 10, "tokens_received": 2, "api_calls": 1}},
    "replay_config": '{"agent": {"model": {"name": "gpt-4o"}}}',
}

# Keys the readers look at: "add" mutations put bad values under them.
KEYS = [
    "type", "uuid", "parentUuid", "sessionId", "isSidechain", "agentId", "message", "usage",
    "content", "role", "id", "model", "timestamp", "isCompactSummary", "subtype", "tools",
    "system", "messages", "tool_calls", "function_call", "tool_call_id", "tool_use_id", "name",
    "input", "arguments", "input_tokens", "output_tokens", "cache_read_input_tokens",
    "cache_creation_input_tokens", "prompt_tokens", "completion_tokens",
    "prompt_tokens_details", "cached_tokens", "choices", "history", "trajectory", "info",
    "model_stats", "tool_call_ids", "thought", "action", "observation", "is_demo",
    "message_type", "thinking_blocks", "replay_config", "source", "image_url", "text",
    "refusal", "function", "title", "file",
]  # fmt: skip


# ---------------------------------------------------------------- mutations


@dataclass(frozen=True)
class Deep:
    """A structure nested ``depth`` levels: built in Python (capped) or spliced into
    the file's text as brackets (uncapped: the parser's own limit is what is tested)."""

    depth: int
    brackets: str = "[]"

    def build(self) -> Any:
        value: Any = 1
        for n in range(min(self.depth, 200)):
            value = [value] if self.brackets == "[]" or n % 2 else {"content": value}
        return value

    @property
    def marker(self) -> str:
        return f"__ctxbudget_deep_{self.depth}_{self.brackets}__"


LEAVES = st.one_of(
    st.sampled_from(
        [math.nan, math.inf, -math.inf, -1, 1e308, -1e308, 0, 10**30, "", "12", "-1", "NaN", "abc"]
    ),
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
BAD = st.one_of(
    LEAVES,
    st.lists(LEAVES, max_size=3),
    st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), LEAVES, max_size=3),
    st.builds(Deep, st.integers(2, 5000), st.sampled_from(["[]", "{}"])),
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with one to four values replaced, dropped or added."""
    value = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_paths(value))))
        op = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        target = _at(value, path)
        if op == "add" and isinstance(target, (dict, list)):
            bad = draw(BAD)
            if isinstance(target, dict):
                target[draw(st.sampled_from(KEYS))] = bad
            else:
                target.insert(draw(st.integers(0, len(target))), bad)
        elif op == "drop" and path:
            del _at(value, path[:-1])[path[-1]]
        elif path:
            _at(value, path[:-1])[path[-1]] = draw(BAD)
        else:
            value = draw(BAD)
    return value


def _python(value: Any) -> Any:
    """The mutated value as a reader gets it from ``json.loads`` (deep ones capped)."""
    if isinstance(value, Deep):
        return value.build()
    if isinstance(value, dict):
        return {k: _python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_python(v) for v in value]
    return value


def _dumps(value: Any) -> str:
    """JSON text (NaN and Infinity as Python writes them), deep values spliced in."""
    markers: dict[str, str] = {}

    def swap(v: Any) -> Any:
        if isinstance(v, Deep):
            open_ = v.brackets[0]
            inner = '"content":1' if open_ == "{" else "1"
            nested = ('{"content":' * (v.depth - 1) + "{" + inner + "}" + "}" * (v.depth - 1)
                      if open_ == "{" else "[" * v.depth + inner + "]" * v.depth)  # fmt: skip
            markers[f'"{v.marker}"'] = nested
            return v.marker
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(value), ensure_ascii=False)
    for marker, nested in markers.items():
        text = text.replace(marker, nested)
    return text


@st.composite
def damaged_bytes(draw: st.DrawFn, lines: list[str]) -> bytes:
    """JSONL text with, maybe, a line cut short and invalid UTF-8 inserted."""
    lines = list(lines)
    if lines and draw(st.booleans()):
        n = draw(st.integers(0, len(lines) - 1))
        lines[n] = lines[n][: draw(st.integers(0, max(len(lines[n]) - 1, 0)))]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b"\xfe\xff"]))
        data = data[:at] + bad + data[at:]
    return data


# ---------------------------------------------------------------- the checks

# The autouse store fixture and capsys are the same for every example: the file is
# rewritten in place and the output read after each run.
FUZZ = settings(
    max_examples=max(300, settings.default.max_examples),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _sound(transcript: Transcript) -> None:
    """What the rest of ctxbudget relies on: text is text, usage counts are counts."""
    for item in [*transcript.items, *transcript.history_items]:
        assert isinstance(item.text, str)
    for calls in [transcript.calls, *transcript.agent_calls.values()]:
        for call in calls:
            for count in (
                call.usage.input_tokens,
                call.usage.cache_creation_input_tokens,
                call.usage.cache_read_input_tokens,
                call.usage.output_tokens,
            ):
                assert isinstance(count, int) and not isinstance(count, bool) and count >= 0
    assert transcript.session_id is None or isinstance(transcript.session_id, str)
    problems = getattr(transcript, "problems", [])  # (absent before readers named them)
    assert all(isinstance(p, str) and "\n" not in p for p in problems)


def _read(reader: Callable[[], Transcript]) -> None:
    try:
        transcript = reader()
    except CtxBudgetError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    _sound(transcript)


def _through_file_and_cli(capsys: pytest.CaptureFixture[str], data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"session{suffix}"
        path.write_bytes(data)
        _read(lambda: load_source(path))
        code, _out, err = run_cli(capsys, "tokens", str(path))
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 2:
        assert err.count("ctxbudget: error:") == 1, err


def _jsonl(records: Any) -> list[str]:
    if not isinstance(records, list):
        return [_dumps(records)]
    return [_dumps(record) for record in records]


@FUZZ
@pytest.mark.parametrize("fixture", [CLAUDE_CODE, CLAUDE_CODE_2X], ids=["1.0.x", "2.x"])
@given(data=st.data())
def test_claude_code_reader_survives_mutations(
    fixture: Any, data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    """Claude Code transcripts of both generations, mutated then damaged as bytes."""
    records = data.draw(mutated(fixture))
    raw = data.draw(damaged_bytes(_jsonl(records)))
    _read(lambda: read_claude_code(raw.decode("utf-8", "replace").splitlines(), path="s.jsonl"))
    _through_file_and_cli(capsys, raw, ".jsonl")


def test_the_2x_fixture_reads_as_claude_code_sends_it(tmp_path: Path) -> None:
    """The fixture the 2.x fuzzing starts from: the context after the compaction holds
    the reminder, the summary, the kept call and result, both parallel calls and their
    results, and no error message."""
    transcript = load_source(_write(tmp_path, "s.jsonl", CLAUDE_CODE_2X))
    texts = [i.text for i in transcript.items]
    assert texts[:2] == ["Today is Monday.", "Summary: read a.py"]
    assert 'Read {"file_path": "a.py"}' in texts and "x=1" in texts  # kept by the compaction
    assert texts.count("r") == 2 and "API Error" not in texts


@FUZZ
@given(records=mutated(CLAUDE_CODE), data=st.data())
def test_subagent_reader_survives_mutations(records: Any, data: st.DataObject) -> None:
    raw = data.draw(damaged_bytes(_jsonl(records)))
    main = "\n".join(_jsonl(CLAUDE_CODE)) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"{SID}.jsonl").write_text(main, encoding="utf-8")
        (Path(tmp) / "agent-ag1.jsonl").write_bytes(raw)
        (Path(tmp) / "agent-ag1.meta.json").write_bytes(raw.split(b"\n", 1)[0])
        try:
            read_agent_transcript(Path(tmp) / "agent-ag1.jsonl")
            for usage in subagent_usages(Path(tmp) / f"{SID}.jsonl"):
                assert isinstance(usage.context_tokens, int) and usage.context_tokens >= 0
        except CtxBudgetError:
            pass


@FUZZ
@given(
    messages=st.sampled_from([ANTHROPIC, OPENAI, OPENAI_REQUEST, ANTHROPIC["messages"]]).flatmap(
        mutated
    ),
    as_lines=st.booleans(),
    data=st.data(),
)
def test_messages_reader_survives_mutations(
    messages: Any, as_lines: bool, data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    _read(lambda: read_messages(_python(messages)))
    if as_lines and isinstance(messages, list):
        raw = data.draw(damaged_bytes(_jsonl(messages)))
        _through_file_and_cli(capsys, raw, ".jsonl")
    else:
        _through_file_and_cli(capsys, _dumps(messages).encode("utf-8"), ".json")


@FUZZ
@given(trajectory=mutated(SWE_AGENT))
def test_swe_agent_reader_survives_mutations(
    trajectory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _read(lambda: read_swe_agent(_python(trajectory)))
    _through_file_and_cli(capsys, _dumps(trajectory).encode("utf-8"), ".traj")


# ---------------------------------------------------------------- the kinds, one by one


def _write(tmp_path: Path, name: str, records: list[Any]) -> Path:
    path = tmp_path / name
    path.write_text("".join(_dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _with(records: list[Any], index: int, *path: Any, value: Any) -> list[Any]:
    out = copy.deepcopy(records)
    _at(out[index], path[:-1])[path[-1]] = value
    return out


# CLAUDE_CODE[1] (line 2) is the first assistant record, with usage.
@pytest.mark.parametrize(
    "value", ["12", math.nan, math.inf, -1, 1e308, [12], {"n": 12}, True, 2**60]
)
def test_claude_code_bad_usage_count_skips_the_call_and_names_the_line(
    tmp_path: Path, value: Any
) -> None:
    good = load_source(_write(tmp_path, "good.jsonl", CLAUDE_CODE))
    path = _write(
        tmp_path, "s.jsonl", _with(CLAUDE_CODE, 1, "message", "usage", "input_tokens", value=value)
    )
    transcript = load_source(path)
    assert [c.message_id for c in transcript.calls] == [
        c.message_id for c in good.calls if c.message_id != "msg_1"
    ]
    assert len(transcript.problems) == 1
    assert transcript.problems[0].startswith(f"{path}:2: message.usage.input_tokens is ")
    assert "not a token count" in transcript.problems[0]
    assert [i.text for i in transcript.items] == [i.text for i in good.items]


@pytest.mark.parametrize(
    ("index", "path", "value", "expected"),
    [
        (0, ("message",), "hello", ":1: message is 'hello', not an object"),
        (1, ("type",), ["assistant"], ":2: type is ['assistant'], not a record type"),
        (1, ("message", "usage"), "lots", ":2: message.usage is 'lots', not an object"),
    ],
)
def test_claude_code_bad_record_is_named_and_reading_goes_on(
    tmp_path: Path, index: int, path: tuple[str, ...], value: Any, expected: str
) -> None:
    file = _write(tmp_path, "s.jsonl", _with(CLAUDE_CODE, index, *path, value=value))
    transcript = load_source(file)
    assert transcript.problems == [p for p in transcript.problems if p.startswith(str(file))]
    assert any(expected in p for p in transcript.problems), transcript.problems
    assert transcript.items[-1].text == "done"  # the records after it were read


def test_claude_code_list_session_id_is_no_session_id(tmp_path: Path) -> None:
    records = [
        {k: v for k, v in r.items() if k != "sessionId"} if i > 0 else r
        for i, r in enumerate(_with(CLAUDE_CODE, 0, "sessionId", value=[SID]))
    ]
    assert load_source(_write(tmp_path, "s.jsonl", records)).session_id is None
    records[1]["sessionId"] = SID
    assert load_source(_write(tmp_path, "s.jsonl", records)).session_id == SID


def test_claude_code_cut_line_is_named_unless_it_is_the_last(tmp_path: Path) -> None:
    lines = [_dumps(r) for r in CLAUDE_CODE]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join([*lines, lines[-1][:20]]) + "\n", encoding="utf-8")
    last = load_source(path)
    # still being written: left out and said so, not counted as a record not understood
    cut = len(lines) + 1
    assert last.problems == [f"{path}:{cut}: incomplete (still being written?): left out"]
    assert last.unknown_records == 0
    lines[4] = lines[4][:30]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    middle = load_source(path)
    assert len(middle.problems) == 1 and middle.problems[0].startswith(f"{path}:5: not a JSON")


def test_invalid_utf8_in_one_line_keeps_the_session(tmp_path: Path) -> None:
    data = "".join(_dumps(r) + "\n" for r in CLAUDE_CODE).encode("utf-8")
    at = data.index(b"Fix the bug")
    path = tmp_path / "s.jsonl"
    path.write_bytes(data[:at] + b"\xff\xfe" + data[at:])
    transcript = load_source(path)
    assert transcript.problems == [f"{path}:1: not UTF-8 (byte {at}): invalid bytes replaced"]
    assert transcript.items[-1].text == "done"


def test_invalid_utf8_in_a_later_line_is_named_by_line_and_kept(tmp_path: Path) -> None:
    # Claude Code files are read line by line as bytes: the bad bytes are named in the
    # line they are in, and that record is kept with them replaced.
    lines = [_dumps(r).encode("utf-8") for r in CLAUDE_CODE]
    number = next(n for n, line in enumerate(lines, start=1) if b'"done"' in line)
    at = lines[number - 1].index(b'"done"') + 1
    lines[number - 1] = lines[number - 1][:at] + b"\xff" + lines[number - 1][at:]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    transcript = load_source(path)
    assert transcript.problems == [
        f"{path}:{number}: not UTF-8 (byte {at} of the line): invalid bytes replaced"
    ]
    assert transcript.items[-1].text == "\ufffddone"


@pytest.mark.parametrize("head", ["\ufeff", "\n\n", "\ufeff\r\n  \n"])
def test_claude_code_file_reads_as_its_text_does(tmp_path: Path, head: str) -> None:
    # the file is read as bytes, its text through parse_source: the same transcript,
    # after a byte order mark or blank lines before the first record too
    text = head + "".join(_dumps(r) + "\n" for r in CLAUDE_CODE)
    path = tmp_path / "s.jsonl"
    path.write_text(text, encoding="utf-8")
    read = load_source(path)
    parsed = parse_source(text.removeprefix("\ufeff"), name=str(path), path=str(path))
    assert read.format == "claude-code"
    assert [(i.kind, i.text, i.tokens) for i in read.items] == [
        (i.kind, i.text, i.tokens) for i in parsed.items
    ]
    assert read.problems == parsed.problems == []
    assert len(read.calls) == len(parsed.calls) > 0


def _through_fifo(tmp_path: Path, name: str, data: bytes) -> Transcript:
    """``load_source`` of ``data`` written into a named pipe (as ``/dev/stdin`` or a
    shell's ``<(…)`` give it), by a thread."""
    fifo = tmp_path / name
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as f:
            f.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        return load_source(fifo)
    finally:
        writer.join(timeout=10)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_a_pipe_is_read_whole(tmp_path: Path) -> None:
    # a look at a pipe's first line takes bytes that cannot be read again: every one of
    # 1,000 message lines, a gzip stream and Claude Code lines arrive all the same
    messages = b"".join(
        json.dumps({"role": "user", "content": f"message {n} " + "x" * 90}).encode() + b"\n"
        for n in range(1000)
    )
    assert len(_through_fifo(tmp_path, "m.jsonl", messages).items) == 1000
    claude = "".join(_dumps(r) + "\n" for r in CLAUDE_CODE).encode("utf-8")
    whole = load_source(_write(tmp_path, "s.jsonl", CLAUDE_CODE))
    for name, data in (("c.jsonl", claude), ("c.jsonl.gz", gzip.compress(claude))):
        piped = _through_fifo(tmp_path, name, data)
        assert [i.text for i in piped.items] == [i.text for i in whole.items]


def test_surrogates_written_as_utf8_are_not_utf8(tmp_path: Path) -> None:
    # b"\xed\xa0\x80" is half a surrogate pair written as UTF-8: not UTF-8, so replaced
    # and named (json would take it and give a text nothing can write back)
    lines = [_dumps(r).encode("utf-8") for r in CLAUDE_CODE]
    number = next(n for n, line in enumerate(lines, start=1) if b'"done"' in line)
    lines[number - 1] = lines[number - 1].replace(b'"done"', b'"\xed\xa0\x80done"')
    at = lines[number - 1].index(b"\xed")
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    transcript = load_source(path)
    assert transcript.items[-1].text == "\ufffd\ufffd\ufffddone"
    assert transcript.problems == [
        f"{path}:{number}: not UTF-8 (byte {at} of the line): invalid bytes replaced"
    ]
    transcript.items[-1].text.encode("utf-8")  # writable, as every text must be


def test_a_line_of_unicode_whitespace_is_blank(tmp_path: Path) -> None:
    # U+2028 and a no-break space are whitespace to the text as to the file's bytes
    lines = [_dumps(r) for r in CLAUDE_CODE]
    lines[1:1] = ["\u2028", "\u00a0 "]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    transcript = load_source(path)
    assert transcript.problems == []
    assert transcript.items[-1].text == "done"


def test_reading_ends_at_a_line_still_being_written(tmp_path: Path) -> None:
    # The file's end as it was reached: a line without its newline is the last one
    # read. Its rest, appended after, is for the next read, not a record of its own.
    from ctxbudget.sources import _claude_code_lines

    text = "".join(_dumps(r) + "\n" for r in CLAUDE_CODE)
    last = _dumps(CLAUDE_CODE[-1]) + "\n"
    path = tmp_path / "s.jsonl"
    path.write_text(text + last[:30], encoding="utf-8")
    lines = _claude_code_lines(path)
    assert lines is not None
    read = []
    for line in lines:
        read.append(line)
        if not line.endswith(b"\n"):
            with path.open("a", encoding="utf-8") as f:
                f.write(last[30:])  # Claude Code finishes the line meanwhile
    assert read[-1] == last[:30].encode("utf-8")
    assert len(read) == len(CLAUDE_CODE) + 1
    assert load_source(path).problems == []  # the next read has the whole record


def test_a_name_too_long_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        load_source(tmp_path / ("x" * 5000 + ".jsonl"))


def test_deep_nesting_is_a_source_error_or_a_skipped_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(CtxBudgetError, match="nested too deeply"):
        load_source(path)
    records = [*CLAUDE_CODE[:3], Deep(100_000), *CLAUDE_CODE[3:]]
    transcript = load_source(_write(tmp_path, "s.jsonl", records))
    assert any(":4: not a JSON record (nested too deeply)" in p for p in transcript.problems)
    assert transcript.items[-1].text == "done"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({**ANTHROPIC, "tools": True}, None),
        (
            _with(OPENAI, 2, "usage", "prompt_tokens", value="50"),
            "messages[2]: usage.prompt_tokens is '50', not a token count",
        ),
        (
            _with(OPENAI, 2, "usage", "prompt_tokens_details", "cached_tokens", value=99),
            "messages[2]: usage.prompt_tokens_details.cached_tokens (99) is more than",
        ),
        (_with(OPENAI, 1, "role", value=["user"]), "messages[1]: role ['user'] is not a"),
        (_with(OPENAI, 2, "tool_calls", 0, "type", value=["function"]), None),
        (_with(OPENAI, 1, "content", 0, "type", value={"t": 1}), None),
    ],
)
def test_messages_bad_fields(data: Any, expected: str | None) -> None:
    transcript = read_messages(data, name="m.json")
    if expected is None:
        assert transcript.problems == []
    else:
        assert [p for p in transcript.problems if expected in p], transcript.problems
        assert all(p.startswith("m.json:messages[") for p in transcript.problems)
    assert transcript.items  # the rest was read


def test_messages_bad_usage_is_not_an_anchor() -> None:
    good = read_messages(OPENAI)
    bad = read_messages(_with(OPENAI, 6, "usage", "completion_tokens", value=math.nan))
    assert len(good.calls) == 2 and len(bad.calls) == 1
    assert bad.anchor_call == 0 and bad.calls[0].usage == good.calls[0].usage


def test_swe_agent_bad_fields() -> None:
    data = copy.deepcopy(SWE_AGENT)
    data["history"][3]["thinking_blocks"] = True
    data["history"][4]["role"] = ["user"]
    transcript = read_swe_agent(data, name="run.traj")
    assert transcript.problems == ["run.traj:history[4]: role ['user'] is not a message role: "
                                   "kept as unknown"]  # fmt: skip
    assert transcript.unknown_records == 1
    assert transcript.items[-1].text == "a.py:x"


def test_claude_code_file_may_start_with_a_summary(tmp_path: Path) -> None:
    transcript = load_source(_write(tmp_path, "s.jsonl", [CLAUDE_CODE[-1], *CLAUDE_CODE[:-1]]))
    assert transcript.format == "claude-code" and transcript.items[-1].text == "done"


def test_readers_survive_unknown_record_types(tmp_path: Path) -> None:
    future = _cc("hologram", "h1", "a3", {"role": "user", "content": "?"})
    cc = load_source(_write(tmp_path, "s.jsonl", [*CLAUDE_CODE, future]))
    assert cc.unknown_records == 1 and cc.problems == []
    assert cc.items[-1].text == "done"
    messages = read_messages([*OPENAI, {"role": "narrator", "content": "x"}])
    assert messages.unknown_records == 1 and messages.problems == []
    traj = read_swe_agent({**SWE_AGENT, "history": [*SWE_AGENT["history"], {"role": "critic"}]})
    assert traj.unknown_records == 1 and traj.problems == []


def test_cli_names_the_bad_record_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path, "s.jsonl", _with(CLAUDE_CODE, 9, "message", "usage", "output_tokens", value=-1)
    )
    code, out, err = run_cli(capsys, "tokens", str(path))
    assert code == 0 and "Traceback" not in err
    assert (
        f"ctxbudget: note: {path}:10: message.usage.output_tokens is -1, not a token count" in err
    )
    assert out.startswith("Tokens: ")
    cut = tmp_path / "cut.json"
    cut.write_text(_dumps(OPENAI)[:-40], encoding="utf-8")
    code, out, err = run_cli(capsys, "tokens", str(cut))
    assert code == 2 and err.startswith("ctxbudget: error: ") and err.count("\n") == 1


_JS_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_JS_VALUES, ascii_only=st.booleans())
def test_javascript_loads_reads_what_json_reads(value: Any, ascii_only: bool) -> None:
    """The Claude Code reader's fast parser (orjson) gives what ``json.loads`` gives:
    the same values, halves of surrogate pairs and all."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert javascript_loads()(text) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    ['{"a": NaN}', '{"a": Infinity}', '["\\ud83d"]', "[" * 2000 + "]" * 2000, '{"a": 1,}'],
)
def test_javascript_loads_takes_or_refuses_what_loads_does(text: str) -> None:
    """What orjson refuses (NaN, half a surrogate pair, deep nesting) ``loads`` decides,
    with its own words for an error."""
    try:
        expected: Any = loads(text)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)[:20].replace("(", r"\(")):
            javascript_loads()(text)
        return
    got = javascript_loads()(text)
    assert json.dumps(got) == json.dumps(expected)  # NaN == NaN as text
