"""``ctxbudget.wrap`` on the official Anthropic and OpenAI SDKs, against a local server.

The server listens on 127.0.0.1 (a free port) and answers ``POST /v1/messages`` and
``POST /v1/chat/completions`` (JSON, or server-sent events when ``stream`` is set) in
the APIs' shapes, plus ``GET /v1/models`` and ``POST /v1/messages/count_tokens`` for the
calls that must pass through untouched. It records every request it receives. Never
the network. Each test skips cleanly when its SDK is not installed.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import SDK_ENV, local_http_server

from ctxbudget import BudgetBlockedError, Policy, Tracker
from ctxbudget.compaction import CompactionPolicy
from ctxbudget.errors import ConfigurationError
from ctxbudget.integrations import RequestBlockedError, WrappedClient, wrap
from ctxbudget.sources.validation import validate_messages
from ctxbudget.status import Status

CLAUDE = "claude-test-1"
GPT = "gpt-4o-mini"


# ---------------------------------------------------------------- the local API


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeAPI:
    """What the server answers, and what it was asked."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    # Reported usage: fixed figures, or (None) a quarter of the request body's length,
    # so that a smaller request reports fewer tokens.
    input_tokens: int | None = 1200
    cache_creation: int = 300
    cache_read: int = 500
    output_tokens: int = 42
    words: tuple[str, ...] = ("All ", "done", ".")
    # an Anthropic stream fails after its first events (an overloaded_error event)
    fail_stream: bool = False

    def posts(self, path: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.method == "POST" and r.path == path]

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        if self.input_tokens is not None:
            return self.input_tokens
        sent = [body.get("system"), body.get("tools"), body.get("messages")]
        return len(json.dumps(sent)) // 4


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


def _anthropic_message(api: FakeAPI, body: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "id": f"msg_{n:04d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [{"type": "text", "text": "".join(api.words)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": api.prompt_tokens(body),
            "cache_creation_input_tokens": api.cache_creation,
            "cache_read_input_tokens": api.cache_read,
            "output_tokens": api.output_tokens,
        },
    }


def _anthropic_events(api: FakeAPI, body: dict[str, Any], n: int) -> Iterator[bytes]:
    start = _anthropic_message(api, body, n)
    start.update(content=[], stop_reason=None)
    start["usage"] = {**start["usage"], "output_tokens": 1}
    yield _sse("message_start", {"type": "message_start", "message": start})
    yield _sse(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    yield _sse("ping", {"type": "ping"})
    if api.fail_stream:
        error = {"type": "overloaded_error", "message": "Overloaded"}
        yield _sse("error", {"type": "error", "error": error})
        return
    for word in api.words:
        yield _sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": word},
            },
        )
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": api.output_tokens},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


def _openai_usage(api: FakeAPI, body: dict[str, Any]) -> dict[str, Any]:
    prompt = api.prompt_tokens(body)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": api.output_tokens,
        "total_tokens": prompt + api.output_tokens,
        "prompt_tokens_details": {"cached_tokens": api.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _openai_completion(api: FakeAPI, body: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{n:04d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "system_fingerprint": "fp_test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(api.words), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _openai_usage(api, body),
    }


def _openai_chunks(api: FakeAPI, body: dict[str, Any], n: int) -> Iterator[bytes]:
    include = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": f"chatcmpl-{n:04d}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model"),
        "system_fingerprint": "fp_test",
    }
    if include:
        base["usage"] = None  # every chunk carries the key; only the last one a value

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse(None, {**base, "choices": [choice]})

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for word in api.words:
        yield chunk({"content": word})
    yield chunk({}, "stop")
    if include:
        yield _sse(None, {**base, "choices": [], "usage": _openai_usage(api, body)})
    yield _sse(None, "[DONE]")


def _handler(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _record(self, body: dict[str, Any]) -> int:
            headers = {k.lower(): v for k, v in self.headers.items()}
            api.requests.append(Recorded(self.command, self.path, headers, body))
            return len(api.requests)

        def _json(self, payload: dict[str, Any], status: int = 200) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, events: Iterator[bytes]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()  # HTTP/1.0: the body ends when the connection closes
            try:
                for event in events:
                    self.wfile.write(event)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client closed the stream early (a test does)

        def do_GET(self) -> None:
            self._record({})
            if self.path.startswith("/v1/models") and "anthropic-version" in self.headers:
                model: dict[str, Any] = {
                    "type": "model",
                    "id": CLAUDE,
                    "display_name": "Claude Sonnet 4.5",
                    "created_at": "2025-09-29T00:00:00Z",
                }
                self._json(
                    {"data": [model], "has_more": False, "first_id": CLAUDE, "last_id": CLAUDE}
                )
            elif self.path.startswith("/v1/models"):
                model = {"id": GPT, "object": "model", "created": 1, "owned_by": "test"}
                self._json({"object": "list", "data": [model]})
            else:
                self._json({"error": {"message": f"no route {self.path}"}}, 404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            n = self._record(body)
            if self.path == "/v1/messages":
                if body.get("stream"):
                    self._stream(_anthropic_events(api, body, n))
                else:
                    self._json(_anthropic_message(api, body, n))
            elif self.path == "/v1/messages/count_tokens":
                self._json({"input_tokens": api.prompt_tokens(body)})
            elif self.path == "/v1/chat/completions":
                if body.get("stream"):
                    self._stream(_openai_chunks(api, body, n))
                else:
                    self._json(_openai_completion(api, body, n))
            else:
                self._json({"error": {"message": f"no route {self.path}"}}, 404)

    return Handler


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPI]:
    for name in SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    state = FakeAPI()
    with local_http_server(_handler(state)) as url:
        state.url = url
        yield state


@pytest.fixture
def anthropic() -> ModuleType:
    module: ModuleType = pytest.importorskip("anthropic")
    return module


@pytest.fixture
def openai() -> ModuleType:
    module: ModuleType = pytest.importorskip("openai")
    return module


def anthropic_client(sdk: ModuleType, api: FakeAPI, *, aio: bool = False) -> Any:
    cls = sdk.AsyncAnthropic if aio else sdk.Anthropic
    return cls(api_key="test-key", base_url=api.url, max_retries=0)


def openai_client(sdk: ModuleType, api: FakeAPI, *, aio: bool = False) -> Any:
    cls = sdk.AsyncOpenAI if aio else sdk.OpenAI
    return cls(api_key="test-key", base_url=api.url + "/v1", max_retries=0)


def usage_events(client: WrappedClient) -> list[dict[str, Any]]:
    session = client.ctxbudget_session
    assert session is not None
    return [e.data for e in session.events(["usage_recorded"])]


def statuses() -> tuple[list[Status], Any]:
    seen: list[Status] = []
    return seen, seen.append


# ---------------------------------------------------------------- conversations

README = "# Parser\n" + "The parser reads the grammar file and builds the tables.\n" * 40


def anthropic_conversation(pairs: int, *, result: str = README) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Port the parser in src/app/parser.py (REQ-001)."}
    ]
    for n in range(pairs):
        use = {
            "type": "tool_use",
            "id": f"toolu_{n:02d}",
            "name": "Read",
            "input": {"file_path": f"src/app/part_{n}.py"},
        }
        messages.append(
            {"role": "assistant", "content": [{"type": "text", "text": f"Reading part {n}."}, use]}
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": use["id"],
                        "content": f"part {n}\n" + result,
                    },
                ],
            }
        )
    messages.append({"role": "assistant", "content": "I have read every part."})
    messages.append({"role": "user", "content": "Now write the summary of the port (REQ-002)."})
    return messages


def openai_conversation(pairs: int, *, result: str = README) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "developer", "content": "You are a careful coding agent.", "name": "rules"},
        {"role": "user", "content": "Port the parser in src/app/parser.py (REQ-001)."},
    ]
    for n in range(pairs):
        call = {
            "id": f"call_{n:02d}",
            "type": "function",
            "function": {
                "name": "read_file",
                "arguments": json.dumps({"path": f"src/app/part_{n}.py"}),
            },
        }
        messages.append(
            {"role": "assistant", "content": f"Reading part {n}.", "tool_calls": [call]}
        )
        messages.append(
            {"role": "tool", "tool_call_id": call["id"], "content": f"part {n}\n" + result}
        )
    messages.append({"role": "assistant", "content": "I have read every part."})
    messages.append({"role": "user", "content": "Now write the summary of the port (REQ-002)."})
    return messages


# ---------------------------------------------------------------- usage: Anthropic


def test_anthropic_sync_create_records_the_reported_usage(
    anthropic: ModuleType, api: FakeAPI
) -> None:
    seen, on_status = statuses()
    client = wrap(anthropic_client(anthropic, api), on_status=on_status)
    messages: list[Any] = [{"role": "user", "content": "What does the parser do?"}]
    first = client.messages.create(
        model=CLAUDE, max_tokens=256, system="Be brief.", messages=messages
    )
    assert isinstance(first, anthropic.types.Message)  # the SDK's own response
    # the conversation goes on with the response's own content blocks (SDK models)
    messages += [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": "And the lexer?"},
    ]
    api.input_tokens, api.output_tokens = 1500, 17
    client.messages.create(model=CLAUDE, max_tokens=256, system="Be brief.", messages=messages)

    sent = api.posts("/v1/messages")
    assert len(sent) == 2 and sent[0]["system"] == "Be brief."
    assert sent[1]["messages"][1]["content"][0]["text"] == "All done."  # sent as given
    assert [(e["context_tokens"], e["output_tokens"]) for e in usage_events(client)] == [
        (1200 + 300 + 500, 42),
        (1500 + 300 + 500, 17),
    ]
    assert [s.reported_tokens for s in seen] == [2000, 2300]
    assert all(s.anchored and s.max_tokens == 200_000 for s in seen)
    session = client.ctxbudget_session
    assert session is not None and session.version == 1  # the second request continued
    # system, question; then only the reply and the next question were added
    assert len(session.items) == 4
    assert len(session.tracker.store.load_items(session.id)) == 4
    assert session.events(["context_replaced"]) == []
    call = client.ctxbudget_last_call
    assert call is not None and call.usage is not None and call.usage.output_tokens == 17
    assert call.reserved_output == 256 and call.messages_sent == call.messages_given == 3


def test_anthropic_async_create_records_the_reported_usage(
    anthropic: ModuleType, api: FakeAPI
) -> None:
    async def run() -> tuple[Any, WrappedClient]:
        client = wrap(anthropic_client(anthropic, api, aio=True))
        async with client:
            response = await client.messages.create(
                model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
            )
        return response, client

    response, client = asyncio.run(run())
    assert isinstance(response, anthropic.types.Message)
    assert usage_events(client) == [
        {
            "context_tokens": 2000,
            "predicted_tokens": usage_events(client)[0]["predicted_tokens"],
            "output_tokens": 42,
        }
    ]


def test_anthropic_stream_true_passes_the_same_events_and_records_usage(
    anthropic: ModuleType, api: FakeAPI
) -> None:
    plain = anthropic_client(anthropic, api)
    kwargs: dict[str, Any] = {
        "model": CLAUDE,
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    expected = [event.to_dict() for event in plain.messages.create(**kwargs)]
    seen, on_status = statuses()
    client = wrap(anthropic_client(anthropic, api), on_status=on_status)
    with client.messages.create(**kwargs) as stream:
        got = [event.to_dict() for event in stream]
    assert [e["type"] for e in got] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert _without_ids(got) == _without_ids(expected)
    # message_start's input figures, message_delta's cumulative output
    assert [(e["context_tokens"], e["output_tokens"]) for e in usage_events(client)] == [(2000, 42)]
    assert len(seen) == 1 and seen[0].reported_tokens == 2000


def _without_ids(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = copy.deepcopy(events)
    for event in out:
        event.get("message", {}).pop("id", None)
    return out


def test_anthropic_messages_stream_helper_sync_and_async(
    anthropic: ModuleType, api: FakeAPI
) -> None:
    from anthropic.lib.streaming import AsyncMessageStream, MessageStream

    client = wrap(anthropic_client(anthropic, api))
    messages = [{"role": "user", "content": "Hi"}]
    with client.messages.stream(model=CLAUDE, max_tokens=64, messages=messages) as stream:
        assert isinstance(stream, MessageStream)  # the SDK's own helper, unchanged
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        assert len(usage_events(client)) == 1  # recorded at message_stop, not at exit
    assert text == "All done." and final.usage.output_tokens == 42
    assert [(e["context_tokens"], e["output_tokens"]) for e in usage_events(client)] == [(2000, 42)]

    api.output_tokens = 7

    async def run() -> WrappedClient:
        aclient = wrap(anthropic_client(anthropic, api, aio=True))
        async with aclient.messages.stream(model=CLAUDE, max_tokens=64, messages=messages) as s:
            assert isinstance(s, AsyncMessageStream)
            assert await s.get_final_text() == "All done."
        return aclient

    aclient = asyncio.run(run())
    assert [(e["context_tokens"], e["output_tokens"]) for e in usage_events(aclient)] == [(2000, 7)]


def test_anthropic_async_stream_true(anthropic: ModuleType, api: FakeAPI) -> None:
    async def run() -> tuple[list[str], WrappedClient]:
        client = wrap(anthropic_client(anthropic, api, aio=True))
        stream = await client.messages.create(
            model=CLAUDE, max_tokens=64, stream=True, messages=[{"role": "user", "content": "Hi"}]
        )
        async with stream:
            types = [event.type async for event in stream]
        return types, client

    types, client = asyncio.run(run())
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert [(e["context_tokens"], e["output_tokens"]) for e in usage_events(client)] == [(2000, 42)]


# ---------------------------------------------------------------- usage: OpenAI


def test_openai_sync_and_async_create_record_the_reported_usage(
    openai: ModuleType, api: FakeAPI
) -> None:
    seen, on_status = statuses()
    client = wrap(openai_client(openai, api), on_status=on_status)
    messages: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What does the parser do?"},
    ]
    response = client.chat.completions.create(model=GPT, messages=messages, max_tokens=100)
    assert isinstance(response, openai.types.chat.ChatCompletion)
    messages += [response.choices[0].message, {"role": "user", "content": "And the lexer?"}]
    api.input_tokens = 1700
    client.chat.completions.create(model=GPT, messages=messages)
    # prompt_tokens is the context (cached tokens are part of it)
    assert [(e["context_tokens"], e["output_tokens"]) for e in usage_events(client)] == [
        (1200, 42),
        (1700, 42),
    ]
    assert [s.reported_tokens for s in seen] == [1200, 1700]
    session = client.ctxbudget_session
    assert session is not None and session.version == 1 and session.policy.window == 128_000

    async def run() -> WrappedClient:
        aclient = wrap(openai_client(openai, api, aio=True))
        await aclient.chat.completions.create(model=GPT, messages=messages[:2])
        return aclient

    aclient = asyncio.run(run())
    assert [(e["context_tokens"], e["output_tokens"]) for e in usage_events(aclient)] == [
        (1700, 42)
    ]


def _chunk_view(chunks: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            c.choices[0].delta.content if c.choices else None,
            c.choices[0].finish_reason if c.choices else None,
            c.usage is not None,
        )
        for c in chunks
    ]


def test_openai_stream_with_include_usage_records_the_final_chunk(
    openai: ModuleType, api: FakeAPI
) -> None:
    client = wrap(openai_client(openai, api))
    messages = [{"role": "user", "content": "Hi"}]
    stream = client.chat.completions.create(
        model=GPT, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    with stream:
        chunks = list(stream)
    # the caller asked for the usage chunk: it gets it, unchanged
    assert _chunk_view(chunks)[-1] == (None, None, True)
    assert chunks[-1].usage.prompt_tokens == 1200
    assert [(e["context_tokens"], e["output_tokens"]) for e in usage_events(client)] == [(1200, 42)]

    async def run() -> WrappedClient:
        aclient = wrap(openai_client(openai, api, aio=True))
        astream = await aclient.chat.completions.create(
            model=GPT, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        got = [chunk async for chunk in astream]
        assert got[-1].usage.completion_tokens == 42
        return aclient

    aclient = asyncio.run(run())
    assert [(e["context_tokens"], e["output_tokens"]) for e in usage_events(aclient)] == [
        (1200, 42)
    ]


def test_openai_stream_without_usage_is_not_changed_and_stays_estimated(
    openai: ModuleType, api: FakeAPI
) -> None:
    seen, on_status = statuses()
    client = wrap(openai_client(openai, api), on_status=on_status)
    messages = [{"role": "user", "content": "Hi"}]
    chunks = list(client.chat.completions.create(model=GPT, messages=messages, stream=True))
    body = api.posts("/v1/chat/completions")[-1]
    assert "stream_options" not in body  # the wrapper did not ask for usage on its own
    assert _chunk_view(chunks) == [
        ("", None, False),
        ("All ", None, False),
        ("done", None, False),
        (".", None, False),
        (None, "stop", False),
    ]
    assert usage_events(client) == []  # nothing reported: nothing recorded as reported
    assert len(seen) == 1 and not seen[0].anchored and seen[0].used_tokens > 0
    call = client.ctxbudget_last_call
    assert call is not None and call.usage is None and call.stream


def test_openai_stream_usage_option_asks_for_it_and_hides_the_extra_chunk(
    openai: ModuleType, api: FakeAPI
) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    plain = list(
        openai_client(openai, api).chat.completions.create(
            model=GPT, messages=messages, stream=True
        )
    )
    client = wrap(openai_client(openai, api), stream_usage=True)
    got = list(client.chat.completions.create(model=GPT, messages=messages, stream=True))
    assert api.posts("/v1/chat/completions")[-1]["stream_options"] == {"include_usage": True}
    assert _chunk_view(got) == _chunk_view(plain)  # the caller's chunks, as without it
    assert [(e["context_tokens"], e["output_tokens"]) for e in usage_events(client)] == [(1200, 42)]


# ---------------------------------------------------------------- compaction before sending


def _tool_pairs_intact(messages: list[dict[str, Any]]) -> None:
    uses = [
        b["id"]
        for m in messages
        if isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_use"
    ]
    results = [
        b["tool_use_id"]
        for m in messages
        if isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_result"
    ]
    assert sorted(uses) == sorted(results)


def test_anthropic_request_over_budget_is_compacted_before_it_is_sent(
    anthropic: ModuleType, api: FakeAPI
) -> None:
    api.input_tokens = None  # the server reports what it received
    # the fake server counts chars/4: a counter that counts at least that much keeps
    # the figures after compaction under the trigger by the server's count too
    window = 12_000
    seen, on_status = statuses()
    client = wrap(
        anthropic_client(anthropic, api),
        policy=Policy(window=window, counter="estimate"),
        on_status=on_status,
    )
    messages = anthropic_conversation(24)  # well over the trigger, by any counter's count
    messages[-1] = mark(messages[-1])  # prompt caching: the last message is marked
    given = copy.deepcopy(messages)
    uncompacted = len(json.dumps([None, None, messages])) // 4
    client.messages.create(model=CLAUDE, max_tokens=1024, messages=messages)

    assert messages == given  # the caller's list is never modified
    sent = api.posts("/v1/messages")[-1]
    assert len(sent["messages"]) <= len(messages)
    assert len(json.dumps(sent["messages"])) < 0.7 * len(json.dumps(messages))
    assert validate_messages(sent["messages"], "anthropic") == []
    _tool_pairs_intact(sent["messages"])
    assert sent["max_tokens"] == 1024 and sent["model"] == CLAUDE  # other arguments as given
    assert sent["messages"][-1]["content"][-1]["text"].endswith("(REQ-002).")  # latest request
    reported = usage_events(client)[-1]["context_tokens"] - 800
    assert reported < 0.7 * uncompacted  # the server saw far fewer tokens
    assert 100 * reported / window < 90  # and the window is under the trigger again
    session = client.ctxbudget_session
    assert session is not None
    (event,) = session.events(["compacted"])
    assert event.data["tokens_after"] < event.data["tokens_before"]
    call = client.ctxbudget_last_call
    assert call is not None and call.compaction is not None
    assert call.tokens_sent < call.tokens_given and call.messages_sent == len(sent["messages"])
    assert seen[-1].level.value == "normal"

    assert json.dumps(sent).count("cache_control") == 1  # the caller's mark, kept

    # The conversation goes on from the caller's full list (the cache mark moved to the
    # new last message): the compacted messages are sent in place of the ones they
    # replaced, and nothing is compacted again.
    del messages[-1]["content"][0]["cache_control"]
    del given[-1]["content"][0]["cache_control"]
    messages += [
        {"role": "assistant", "content": "Here is the summary."},
        mark({"role": "user", "content": "Thanks, now the tests."}),
    ]
    client.messages.create(model=CLAUDE, max_tokens=1024, messages=messages)
    again = api.posts("/v1/messages")[-1]
    k = len(sent["messages"])
    assert json.dumps(again["messages"][:k]) == json.dumps(sent["messages"]).replace(
        ', "cache_control": {"type": "ephemeral"}', ""
    )
    assert again["messages"][k:] == messages[-2:]
    assert json.dumps(again).count("cache_control") == 1  # never more marks than the caller's
    assert len(session.events(["compacted"])) == 1
    assert session.events(["context_replaced"]) == []
    assert messages[:-2] == given  # still untouched


def mark(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with its text as a block marked for prompt caching."""
    text = message["content"]
    block = {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}
    return {"role": message["role"], "content": [block]}


def test_openai_request_over_budget_is_compacted_before_it_is_sent(
    openai: ModuleType, api: FakeAPI
) -> None:
    api.input_tokens = None
    tools = [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": "Read a file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        }
    ]
    # o200k_base counts these 44 messages exactly: 9.6k tokens, over 90% of 10.5k
    client = wrap(openai_client(openai, api), policy=Policy(window=10_500))
    messages = openai_conversation(20)
    uncompacted = len(json.dumps([None, tools, messages])) // 4
    client.chat.completions.create(
        model=GPT, messages=messages, tools=tools, max_completion_tokens=1000, temperature=0.2
    )
    sent = api.posts("/v1/chat/completions")[-1]
    assert len(sent["messages"]) <= len(messages)
    assert len(json.dumps(sent["messages"])) < 0.7 * len(json.dumps(messages))
    assert validate_messages(sent["messages"], "openai") == []
    assert sent["messages"][0] == messages[0]  # the developer message, exactly as given
    assert sent["tools"] == tools and sent["temperature"] == 0.2
    calls = [c["id"] for m in sent["messages"] for c in m.get("tool_calls") or []]
    answered = [m["tool_call_id"] for m in sent["messages"] if m["role"] == "tool"]
    assert calls == answered  # every call sent keeps its result
    assert usage_events(client)[-1]["context_tokens"] < 0.7 * uncompacted


# a 1x1 PNG: the image parts must reach the server as the caller gave them
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6"
    "kgAAAABJRU5ErkJggg=="
)


def chat_history(exchanges: int) -> list[dict[str, Any]]:
    """Questions and long answers, no tool calls: only a summary can make room."""
    messages: list[dict[str, Any]] = []
    for n in range(exchanges):
        messages.append({"role": "user", "content": f"Explain part {n} of the parser."})
        messages.append({"role": "assistant", "content": f"Part {n}.\n" + README})
    return messages


def _rewritten(sent: list[dict[str, Any]], given: list[Any]) -> list[int]:
    """The positions of the messages sent that are none of the caller's, byte for byte."""
    own = {json.dumps(m) for m in given}
    return [i for i, m in enumerate(sent) if json.dumps(m) not in own]


def _steps(client: WrappedClient) -> list[str]:
    call = client.ctxbudget_last_call
    assert call is not None and call.compaction is not None
    return [action.step for action in call.compaction.result.actions]


def test_openai_messages_the_compaction_kept_are_sent_as_the_caller_gave_them(
    openai: ModuleType, api: FakeAPI
) -> None:
    api.input_tokens = None
    client = wrap(openai_client(openai, api), policy=Policy(window=10_000))
    question = {
        "role": "user",
        "name": "alice",
        "content": [
            {"type": "text", "text": "What does this screenshot show (REQ-009)?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ],
    }
    developer = {"role": "developer", "content": "You are a careful agent.", "name": "rules"}
    messages: list[Any] = [developer, *chat_history(20), question]  # 9.2k tokens: critical
    given = copy.deepcopy(messages)
    client.chat.completions.create(model=GPT, messages=messages, max_completion_tokens=500)

    assert "summarize" in _steps(client)  # older messages were summarized
    sent = api.posts("/v1/chat/completions")[-1]["messages"]
    assert messages == given
    assert validate_messages(sent, "openai") == []
    assert len(sent) < len(messages)
    # the image part and the name reach the server byte-identical
    assert json.dumps(sent[-1]) == json.dumps(question)
    assert json.dumps(sent[0]) == json.dumps(developer)
    # only the summary is written by ctxbudget; every other message is the caller's
    (summary,) = _rewritten(sent, messages)
    kept_tail = sent[summary + 1 :]
    assert kept_tail == messages[len(messages) - len(kept_tail) :]

    # The next request (the caller's full list again, plus the new turn) is sent with
    # the same compacted messages, the kept ones still the caller's own
    messages += [
        {"role": "assistant", "content": "A login form."},
        {"role": "user", "content": "Thanks.", "name": "alice"},
    ]
    client.chat.completions.create(model=GPT, messages=messages, max_completion_tokens=500)
    again = api.posts("/v1/chat/completions")[-1]["messages"]
    assert json.dumps(again[: len(sent)]) == json.dumps(sent)
    assert again[len(sent) :] == messages[-2:]
    session = client.ctxbudget_session
    assert session is not None and len(session.events(["compacted"])) == 1


def test_anthropic_messages_the_compaction_kept_are_sent_as_the_caller_gave_them(
    anthropic: ModuleType, api: FakeAPI
) -> None:
    api.input_tokens = None
    client = wrap(anthropic_client(anthropic, api), policy=Policy(window=11_000))
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
        "cache_control": {"type": "ephemeral"},
    }
    question = {
        "role": "user",
        "content": [{"type": "text", "text": "What does this screenshot show (REQ-009)?"}, image],
    }
    messages: list[Any] = [*chat_history(20), question]  # 10.5k tokens: critical
    given = copy.deepcopy(messages)
    client.messages.create(
        model=CLAUDE, max_tokens=500, system="You are a careful agent.", messages=messages
    )

    assert "summarize" in _steps(client)
    body = api.posts("/v1/messages")[-1]
    sent = body["messages"]
    assert messages == given
    assert validate_messages(sent, "anthropic") == []
    assert len(sent) < len(messages) and body["system"] == "You are a careful agent."
    assert json.dumps(sent[-1]) == json.dumps(question)  # image and cache mark as given
    rewritten = _rewritten(sent, messages)
    assert len(rewritten) == 1  # the summary; the others are the caller's
    kept_tail = sent[rewritten[0] + 1 :]
    assert kept_tail == messages[len(messages) - len(kept_tail) :]
    assert json.dumps(body).count("cache_control") == 1


def test_kept_tool_calls_keep_their_ids_when_their_results_are_stubbed(
    openai: ModuleType, anthropic: ModuleType, api: FakeAPI
) -> None:
    """A result rewritten as a stub answers the caller's own call message, by its id."""
    api.input_tokens = None
    client = wrap(openai_client(openai, api), policy=Policy(window=10_500))
    messages = openai_conversation(20)
    for n, message in enumerate(messages):
        if message.get("tool_calls"):
            message["tool_calls"][0]["id"] = f"call_Zx{n}-abc"  # the API's own ids
        elif message["role"] == "tool":
            message["tool_call_id"] = f"call_Zx{n - 1}-abc"
    client.chat.completions.create(model=GPT, messages=messages, max_completion_tokens=1000)
    sent = api.posts("/v1/chat/completions")[-1]["messages"]
    assert validate_messages(sent, "openai") == []
    stubs = [m for m in sent if m["role"] == "tool" and m not in messages]
    assert stubs and all(m["tool_call_id"].startswith("call_Zx") for m in stubs)
    calls = [m for m in sent if m.get("tool_calls")]
    assert calls and all(m in messages for m in calls)  # the calls: the caller's own

    aclient = wrap(anthropic_client(anthropic, api), policy=Policy(window=12_000))
    conversation = anthropic_conversation(20)
    aclient.messages.create(model=CLAUDE, max_tokens=1024, messages=conversation)
    sent = api.posts("/v1/messages")[-1]["messages"]
    assert validate_messages(sent, "anthropic") == []
    assert [m for m in sent if m["role"] == "assistant" and m not in conversation] == []
    _tool_pairs_intact(sent)


def test_create_stream_returns_the_sdks_own_stream(
    openai: ModuleType, anthropic: ModuleType, api: FakeAPI
) -> None:
    client = wrap(openai_client(openai, api))
    hi = [{"role": "user", "content": "Hi"}]
    stream = client.chat.completions.create(model=GPT, messages=hi, stream=True)
    assert isinstance(stream, openai.Stream)
    with stream:
        assert [c.choices[0].delta.content for c in stream][1:4] == ["All ", "done", "."]
    aclient = wrap(anthropic_client(anthropic, api))
    events = aclient.messages.create(model=CLAUDE, max_tokens=10, messages=hi, stream=True)
    assert isinstance(events, anthropic.Stream)
    assert next(events).type == "message_start"
    events.close()
    assert [e["output_tokens"] for e in usage_events(aclient)] == [1]

    async def run() -> tuple[bool, bool]:
        oa = wrap(openai_client(openai, api, aio=True), stream_usage=True)
        ostream = await oa.chat.completions.create(model=GPT, messages=hi, stream=True)
        chunks = [c async for c in ostream]
        an = wrap(anthropic_client(anthropic, api, aio=True))
        astream = await an.messages.create(model=CLAUDE, max_tokens=10, messages=hi, stream=True)
        async with astream:
            first = await astream.__anext__()
        assert first.type == "message_start" and all(c.choices for c in chunks)
        assert usage_events(oa)[0]["context_tokens"] == 1200
        assert len(usage_events(an)) == 1
        return isinstance(ostream, openai.AsyncStream), isinstance(astream, anthropic.AsyncStream)

    assert asyncio.run(run()) == (True, True)


HUGE = "The requirements of the port, in full. " * 1600  # ~ 15k tokens, one message


def test_blocked_request_with_nothing_to_compact_is_refused_and_not_sent(
    anthropic: ModuleType, api: FakeAPI
) -> None:
    huge = HUGE
    seen, on_status = statuses()
    client = wrap(
        anthropic_client(anthropic, api), policy=Policy(window=10_000), on_status=on_status
    )
    with pytest.raises(BudgetBlockedError) as caught:
        client.messages.create(
            model=CLAUDE, max_tokens=500, messages=[{"role": "user", "content": huge}]
        )
    message = str(caught.value)
    assert "did not send this request" in message and "Nothing was sent" in message
    assert "10,000-token window" in message and "max_tokens" in message
    assert isinstance(caught.value, RequestBlockedError)
    assert caught.value.status.level.value == "blocked"
    assert api.requests == [] and seen == []  # the server received nothing


def test_openai_blocked_request_is_refused_and_not_sent(openai: ModuleType, api: FakeAPI) -> None:
    client = wrap(openai_client(openai, api), policy=Policy(window=10_000))
    with pytest.raises(BudgetBlockedError, match="Nothing was sent"):
        client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": HUGE}])
    assert api.requests == []


def test_max_tokens_counts_against_the_window(anthropic: ModuleType, api: FakeAPI) -> None:
    client = wrap(anthropic_client(anthropic, api), policy=Policy(window=10_000))
    messages = [{"role": "user", "content": "Write the whole port. " * 300}]  # ~1.5k tokens
    with pytest.raises(RequestBlockedError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=9_000, messages=messages)
    assert "9,000 kept for the answer (max_tokens)" in str(caught.value)
    assert caught.value.status.percent < 50  # not the share: the room for the answer
    assert api.requests == []
    client.messages.create(model=CLAUDE, max_tokens=4_000, messages=messages)
    assert len(api.posts("/v1/messages")) == 1


def test_compaction_none_refuses_without_compacting(anthropic: ModuleType, api: FakeAPI) -> None:
    client = wrap(anthropic_client(anthropic, api), policy=Policy(window=12_000), compaction=None)
    with pytest.raises(RequestBlockedError, match="Auto-compaction is off"):
        client.messages.create(model=CLAUDE, max_tokens=1024, messages=anthropic_conversation(24))
    assert api.requests == []


def test_gate_agent_refuses_over_its_budget(anthropic: ModuleType, api: FakeAPI) -> None:
    session = Tracker(store="memory://").session(model=CLAUDE)
    session.set_agent_budget("researcher", 2_000)
    client = wrap(anthropic_client(anthropic, api), session=session, gate_agent="researcher")
    with pytest.raises(RequestBlockedError, match="gate refused agent 'researcher'"):
        client.messages.create(
            model=CLAUDE, max_tokens=4_000, messages=[{"role": "user", "content": "Go."}]
        )
    assert api.requests == []
    client.messages.create(
        model=CLAUDE, max_tokens=1_000, messages=[{"role": "user", "content": "Go."}]
    )
    assert len(api.posts("/v1/messages")) == 1
    assert client.ctxbudget_session is session


def test_gate_agent_holds_room_only_while_a_request_is_out(
    anthropic: ModuleType, api: FakeAPI, tmp_path: Path
) -> None:
    """Each request's max_tokens is held for the agent while the request is out; its
    usage settles it, a failed request gives it back. The conversation is the agent's:
    its budget counts it. Before, every request's room stayed held for ten minutes: the
    ninth request of a conversation at 8% was refused, and the agent's budget counted
    nothing but those holds."""
    api.input_tokens = None  # a quarter of the request's length
    api.cache_creation = api.cache_read = 0
    tracker = Tracker(store=f"sqlite:///{tmp_path / 's.db'}")
    session = tracker.session(model=CLAUDE, window=10_000)
    session.set_agent_budget("coder", 3_000)
    client = wrap(anthropic_client(anthropic, api), session=session, gate_agent="coder")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Start the port."}]
    for turn in range(12):
        reply = client.messages.create(model=CLAUDE, max_tokens=1_000, messages=messages)
        messages.append({"role": "assistant", "content": reply.content[0].text})
        messages.append({"role": "user", "content": f"Go on with step {turn}."})
    assert len(api.posts("/v1/messages")) == 12
    assert tracker.store.reservations(session.id, "gate:") == []
    assert session.status().breakdown.agent.get("coder", 0) > 0  # the conversation is its
    failing = wrap(
        anthropic_client(anthropic, dataclasses.replace(api, url=api.url + "/nowhere")),
        session=session,
        gate_agent="coder",
    )
    with pytest.raises(anthropic.NotFoundError):
        failing.messages.create(model=CLAUDE, max_tokens=1_000, messages=messages)
    assert tracker.store.reservations(session.id, "gate:") == []  # given back at once
    with pytest.raises(RequestBlockedError, match="gate refused agent 'coder'"):
        client.messages.create(model=CLAUDE, max_tokens=2_990, messages=messages)


# ---------------------------------------------------------------- the rest of the client


def test_other_anthropic_methods_pass_through(anthropic: ModuleType, api: FakeAPI) -> None:
    raw = anthropic_client(anthropic, api)
    client = wrap(raw)
    assert client.ctxbudget_client is raw and client.api_key == "test-key"
    assert [m.id for m in client.models.list()] == [CLAUDE]
    counted = client.messages.count_tokens(
        model=CLAUDE, messages=[{"role": "user", "content": "Hi"}]
    )
    assert counted.input_tokens == 1200
    configured = client.with_options(timeout=5.0)
    assert isinstance(configured, WrappedClient) and configured.ctxbudget_client is not raw
    configured.messages.create(
        model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
    )
    assert configured.ctxbudget_session is client.ctxbudget_session  # the same session
    assert len(usage_events(client)) == 1  # only the conversation call was recorded
    assert [r.path for r in api.requests] == [
        "/v1/models",
        "/v1/messages/count_tokens",
        "/v1/messages",
    ]


def test_other_openai_methods_pass_through(openai: ModuleType, api: FakeAPI) -> None:
    raw = openai_client(openai, api)
    client = wrap(raw)
    assert [m.id for m in client.models.list()] == [GPT]
    assert client.chat.completions.with_raw_response is not None
    assert client.base_url == raw.base_url
    assert client.ctxbudget_session is None  # nothing sent through the chat API yet
    assert [r.path for r in api.requests] == ["/v1/models"]


def test_wrap_refuses_what_is_not_an_sdk_client() -> None:
    with pytest.raises(ConfigurationError, match="Anthropic or OpenAI SDK client"):
        wrap(object())


def test_a_request_that_does_not_continue_replaces_the_context(
    anthropic: ModuleType, api: FakeAPI
) -> None:
    client = wrap(anthropic_client(anthropic, api))
    client.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "A"}])
    client.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "B"}])
    session = client.ctxbudget_session
    assert session is not None
    (event,) = session.events(["context_replaced"])
    assert event.data["version_to"] == session.version == 2
    assert [item.text for item in session.items] == ["B"]
    assert usage_events(client)[-1]["context_tokens"] == 2000
    # the same request again (a retry): nothing new, nothing replaced
    client.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "B"}])
    assert session.version == 2 and len(session.items) == 1


def test_a_failing_store_never_stops_the_request(anthropic: ModuleType, api: FakeAPI) -> None:
    from ctxbudget.store.memory import MemoryStore
    from ctxbudget.testing import FaultyStore

    store = FaultyStore(MemoryStore("memory://"), fail_on="append_items")
    client = wrap(anthropic_client(anthropic, api), tracker=Tracker(store=store))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = client.messages.create(
            model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert response.content[0].text == "All done."
    assert len(api.posts("/v1/messages")) == 1
    (warning,) = [w for w in caught if "could not check this request" in str(w.message)]
    assert warning.filename == __file__  # it points at the caller's line


def test_a_gated_client_sends_nothing_the_gate_could_not_decide(
    anthropic: ModuleType, api: FakeAPI
) -> None:
    """With gate_agent every request must be allowed: one ctxbudget could not check
    is refused (the hooks' gate fails closed too). It was sent, ungated."""
    from ctxbudget.store.memory import MemoryStore
    from ctxbudget.testing import FaultyStore

    store = FaultyStore(MemoryStore("memory://"), fail_on="append_items")
    client = wrap(anthropic_client(anthropic, api), tracker=Tracker(store=store), gate_agent="a")
    with pytest.raises(BudgetBlockedError, match="the gate for agent 'a' could not be asked"):
        client.messages.create(
            model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert api.posts("/v1/messages") == []


def test_clients_in_two_processes_on_one_stored_session_are_both_checked(
    anthropic: ModuleType, api: FakeAPI, tmp_path: Path
) -> None:
    """Each process's copy of the session is overtaken by the other's writes: it is
    read again and the request checked on it. Before, 140 of 160 requests of 16
    processes went out unchecked and untracked."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    session_id = Tracker(url).session(model=CLAUDE, window=200_000).id
    clients = [
        wrap(anthropic_client(anthropic, api), session=Tracker(url).open(session_id))
        for _ in range(2)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for turn in range(3):
            for n, client in enumerate(clients):
                text = f"Conversation {n}, turn {turn}."
                client.messages.create(
                    model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": text}]
                )
    events = Tracker(url).open(session_id).events(["usage_recorded"])
    assert len(events) == 6


def test_the_extra_is_optional() -> None:
    # the middleware imports no SDK: recognising clients needs none installed
    import sys

    import ctxbudget.integrations.sdk as sdk

    assert "anthropic" not in sdk.__dict__ and "openai" not in sdk.__dict__
    assert sys.modules["ctxbudget.integrations.sdk"] is sdk
    assert CompactionPolicy().trigger_percent is None  # the default trigger: critical


def test_critical_with_nothing_to_compact_is_sent_with_an_alert_once(
    anthropic: ModuleType, api: FakeAPI
) -> None:
    messages = [{"role": "user", "content": "The requirements of the port. " * 2000}]
    probe = Tracker(store="memory://").session(model=CLAUDE)
    probe.add_messages(messages)
    window = int(probe.status().used_tokens / 0.92)  # critical, not blocked
    seen, on_status = statuses()
    client = wrap(
        anthropic_client(anthropic, api), policy=Policy(window=window), on_status=on_status
    )
    client.messages.create(model=CLAUDE, max_tokens=100, messages=messages)
    assert len(api.posts("/v1/messages")) == 1  # sent: critical is not blocked
    session = client.ctxbudget_session
    assert session is not None and session.last_alert is not None
    assert "nothing to remove" in session.last_alert
    assert len(session.events(["alert"])) == 1
    client.messages.create(model=CLAUDE, max_tokens=100, messages=messages)
    assert len(session.events(["alert"])) == 1  # not tried again until the context grows
    # on_status sees the request's max_tokens kept free
    status = seen[-1]
    assert status.remaining_tokens == window - 100 - status.used_tokens


def test_an_alert_says_why_the_compaction_freed_nothing(
    anthropic: ModuleType, api: FakeAPI
) -> None:
    """Requirement ids a compaction must keep fill the context: the alert says so (it
    said that what is left is protected: the system prompt, the last exchanges)."""
    messages: list[dict[str, Any]] = []
    for part in range(8):
        ids = " ".join(f"REQ-{part:02d}{k:03d} must hold." for k in range(60))
        messages.append({"role": "user", "content": f"Requirements, part {part}: {ids}"})
        messages.append({"role": "assistant", "content": f"Noted part {part}."})
    messages.append({"role": "user", "content": "Go on."})
    probe = Tracker(store="memory://").session(model=CLAUDE)
    probe.add_messages(messages)
    window = int(probe.status().used_tokens / 0.92)  # critical, not blocked
    client = wrap(anthropic_client(anthropic, api), policy=Policy(window=window))
    client.messages.create(model=CLAUDE, max_tokens=100, messages=messages)
    session = client.ctxbudget_session
    assert session is not None and session.last_alert is not None
    assert "facts that must stay" in session.last_alert, session.last_alert


def test_a_stored_session_is_the_one_the_cli_shows(
    anthropic: ModuleType, api: FakeAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import run_cli

    client = wrap(anthropic_client(anthropic, api), tracker=Tracker())  # the default store
    client.messages.create(
        model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
    )
    session = client.ctxbudget_session
    assert session is not None
    code, out, _ = run_cli(capsys, "tokens", session.id, "--json")
    assert code == 0
    shown = json.loads(out)
    # the context sent and the answer, which the next request carries (its output tokens)
    answer = client.ctxbudget_last_call.usage.output_tokens
    assert answer > 0
    assert shown["used_tokens"] == session.status().used_tokens == 2000 + answer
    assert shown["level"] == session.status().level.value


def test_a_stream_that_fails_gives_back_the_room_it_held(
    anthropic: ModuleType, api: FakeAPI, tmp_path: Path
) -> None:
    """The API fails mid-stream: what it reported is recorded, and the gate's hold for
    the request is settled then, not left for its lease to run out."""
    tracker = Tracker(store=f"sqlite:///{tmp_path / 's.db'}")
    session = tracker.session(model=CLAUDE, window=100_000)
    client = wrap(anthropic_client(anthropic, api), session=session, gate_agent="coder")
    api.fail_stream = True
    stream = client.messages.create(
        model=CLAUDE, max_tokens=4_000, stream=True, messages=[{"role": "user", "content": "Hi"}]
    )
    with pytest.raises(anthropic.APIError):
        for _ in stream:
            pass
    assert tracker.store.reservations(session.id, "gate:") == []
    assert [e["context_tokens"] for e in usage_events(client)] == [2000]


def test_an_abandoned_stream_records_what_it_reported(anthropic: ModuleType, api: FakeAPI) -> None:
    seen, on_status = statuses()
    client = wrap(anthropic_client(anthropic, api), on_status=on_status)
    stream = client.messages.create(
        model=CLAUDE, max_tokens=64, stream=True, messages=[{"role": "user", "content": "Hi"}]
    )
    first = next(stream)
    assert first.type == "message_start"
    stream.close()  # the caller stops early
    # the input is known from message_start; the output so far is what it said (1)
    assert [(e["context_tokens"], e["output_tokens"]) for e in usage_events(client)] == [(2000, 1)]
    assert len(seen) == 1
    stream.close()
    assert len(seen) == 1  # recorded once
