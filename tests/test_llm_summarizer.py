"""The LLM summarizer against a local server that answers in the Anthropic / OpenAI shape.

Never the network: the server listens on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import SDK_ENV, local_http_server

pytest.importorskip("anthropic")
pytest.importorskip("openai")

from ctxbudget.compaction import compact
from ctxbudget.compaction.llm import (
    SECTIONS,
    clip_middle,
    llm_summarizer,
    render_item,
)
from ctxbudget.compaction.types import Fact
from ctxbudget.errors import (
    CompactionError,
    ConfigurationError,
    MissingExtraError,
)
from ctxbudget.model import Item, Kind, Role

SUMMARY = "## Requests\n- port the parser\n## Files\n- src/app/parser.py"


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeAPI:
    """What the server answers, and what it was asked."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    status: int = 200
    text: str = SUMMARY
    input_tokens: int = 1234
    output_tokens: int = 56
    numbered: bool = False  # answer "part N" so map-reduce answers can be told apart

    def answer(self) -> str:
        return f"{self.text}\n- part {len(self.requests)}" if self.numbered else self.text


def _error_body(path: str, status: int) -> dict[str, Any]:
    if path.endswith("/messages"):
        kind = "authentication_error" if status == 401 else "api_error"
        return {"type": "error", "error": {"type": kind, "message": f"status {status}"}}
    code = "invalid_api_key" if status == 401 else "server_error"
    return {"error": {"message": f"status {status}", "type": "invalid_request_error", "code": code}}


def _handler(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("retry-after-ms", "1")  # keep retries quick
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            api.requests.append(
                Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            if api.status != 200:
                self._reply(api.status, _error_body(self.path, api.status))
                return
            text = api.answer()
            if self.path == "/v1/messages":
                self._reply(
                    200,
                    {
                        "id": f"msg_{len(api.requests):04d}",
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model"),
                        "content": [{"type": "text", "text": text}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": api.input_tokens,
                            "output_tokens": api.output_tokens,
                        },
                    },
                )
            elif self.path == "/v1/chat/completions":
                self._reply(
                    200,
                    {
                        "id": f"chatcmpl-{len(api.requests):04d}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": api.input_tokens,
                            "completion_tokens": api.output_tokens,
                            "total_tokens": api.input_tokens + api.output_tokens,
                        },
                    },
                )
            else:
                self._reply(404, {"error": {"message": f"no route {self.path}"}})

    return Handler


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPI]:
    for name in (
        "CTXBUDGET_LLM_PROVIDER",
        "CTXBUDGET_LLM_MODEL",
        "CTXBUDGET_LLM_BASE_URL",
        "CTXBUDGET_LLM_API_KEY",
        "CTXBUDGET_LLM_INPUT_CHARS",
        *SDK_ENV,
    ):
        monkeypatch.delenv(name, raising=False)
    state = FakeAPI()
    with local_http_server(_handler(state)) as url:
        state.url = url
        yield state


def _base(api: FakeAPI, provider: str) -> str:
    return api.url if provider == "anthropic" else api.url + "/v1"


def _conversation(requests: int = 2, filler: int = 0) -> list[Item]:
    items = [Item(Role.SYSTEM, Kind.SYSTEM_PROMPT, "You are a coding agent.")]
    for n in range(requests):
        items += [
            Item(
                Role.USER,
                Kind.USER_TEXT,
                f"Request {n}: port the parser in src/app/parser.py "
                f"to the new grammar (REQ-{n:03d})." + " more context" * filler,
            ),
            Item(
                Role.ASSISTANT,
                Kind.TOOL_CALL,
                json.dumps({"file_path": "src/app/parser.py"}),
                tool="Read",
                pair_id=f"t{n}",
            ),
            Item(Role.TOOL, Kind.TOOL_RESULT, "x = 1\n" * 2000, tool="Read", pair_id=f"t{n}"),
            Item(Role.ASSISTANT, Kind.ASSISTANT_TEXT, f"Done with request {n}: 42 ms per file."),
        ]
    return items


FACTS = [
    Fact("requirement", "REQ-000", "port the parser (REQ-000)"),
    Fact("file", "src/app/parser.py", "src/app/parser.py"),
    Fact("number", "42 ms", "42 ms per file"),
]


def _key(recorded: Recorded) -> str:
    """The API key a request carried (Anthropic SDKs send x-api-key or a bearer token)."""
    if "x-api-key" in recorded.headers:
        return recorded.headers["x-api-key"]
    return recorded.headers.get("authorization", "").removeprefix("Bearer ")


def _prompt_text(recorded: Recorded) -> str:
    """The system instruction and the user prompt of a request, either provider."""
    body = recorded.body
    if "system" in body:
        return f"{body['system']}\n{body['messages'][0]['content']}"
    return "\n".join(m["content"] for m in body["messages"])


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_returns_the_servers_text_and_sends_the_prompt(api: FakeAPI, provider: str) -> None:
    summarize = llm_summarizer(
        provider,
        model="test-model",
        base_url=_base(api, provider),
        api_key="sk-test",
        max_retries=0,
    )
    text = summarize(_conversation(), FACTS, 1500)
    assert text == SUMMARY
    assert len(api.requests) == 1
    req = api.requests[0]
    assert req.path == ("/v1/messages" if provider == "anthropic" else "/v1/chat/completions")
    assert req.body["model"] == "test-model"
    assert req.body["max_tokens"] == 1500
    prompt = _prompt_text(req)
    for name in SECTIONS:
        assert f"## {name}" in prompt
    assert "1500 tokens" in prompt
    assert "MUST-KEEP" in prompt
    assert "- requirement: REQ-000" in prompt
    assert "- file: src/app/parser.py" in prompt
    assert "- number: 42 ms" in prompt
    assert "[user/user_text] Request 1: port the parser" in prompt
    assert "[assistant/tool_call Read]" in prompt
    assert "[tool/tool_result Read]" in prompt
    # the 12,000-character tool outputs went in clipped to about 2,000 characters
    assert "characters clipped" in prompt
    assert len(prompt) < 12_000
    assert _key(req) == "sk-test"
    if provider == "anthropic":
        assert req.body["messages"][0]["role"] == "user"
    else:
        assert [m["role"] for m in req.body["messages"]] == ["system", "user"]
    assert summarize.last_usage.input_tokens == 1234
    assert summarize.last_usage.output_tokens == 56
    assert summarize.last_requests == 1


@pytest.mark.parametrize(("budget", "expected"), [(100, 256), (3000, 3000), (100_000, 8192)])
def test_max_tokens_follows_the_budget_within_bounds(
    api: FakeAPI, budget: int, expected: int
) -> None:
    summarize = llm_summarizer("anthropic", base_url=api.url, api_key="k", max_retries=0)
    summarize(_conversation(1), [], budget)
    assert api.requests[0].body["max_tokens"] == expected
    assert f"under {budget} tokens" in _prompt_text(api.requests[0])


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_settings_from_the_environment(
    api: FakeAPI, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    monkeypatch.setenv("CTXBUDGET_LLM_PROVIDER", provider)
    monkeypatch.setenv("CTXBUDGET_LLM_MODEL", "local-model")
    monkeypatch.setenv("CTXBUDGET_LLM_BASE_URL", _base(api, provider))
    monkeypatch.setenv("CTXBUDGET_LLM_API_KEY", "sk-env")
    summarize = llm_summarizer(max_retries=0)
    assert summarize.provider == provider
    assert summarize(_conversation(1), FACTS, 800) == SUMMARY
    req = api.requests[0]
    assert req.body["model"] == "local-model"
    assert _key(req) == "sk-env"


def test_provider_key_env_var_and_default_models(
    api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    summarize = llm_summarizer(base_url=api.url + "/v1", max_retries=0)
    assert (summarize.provider, summarize.model) == ("openai", "gpt-4o-mini")
    summarize(_conversation(1), [], 500)
    assert _key(api.requests[-1]) == "sk-openai"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant")  # anthropic wins when both are set
    summarize = llm_summarizer(base_url=api.url, max_retries=0)
    assert (summarize.provider, summarize.model) == ("anthropic", "claude-haiku-4-5")
    summarize(_conversation(1), [], 500)
    assert _key(api.requests[-1]) == "sk-ant"


def test_local_endpoint_needs_no_key(api: FakeAPI) -> None:
    summarize = llm_summarizer("openai", base_url=api.url + "/v1", max_retries=0)
    assert summarize(_conversation(1), [], 500) == SUMMARY


def test_configuration_errors(api: FakeAPI) -> None:
    with pytest.raises(ConfigurationError, match="CTXBUDGET_LLM_PROVIDER"):
        llm_summarizer()
    with pytest.raises(ConfigurationError, match="unknown LLM provider"):
        llm_summarizer("gemini")
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        llm_summarizer("anthropic")


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize("status", [500, 401])
def test_api_errors_become_compaction_errors(api: FakeAPI, provider: str, status: int) -> None:
    api.status = status
    summarize = llm_summarizer(
        provider, model="m1", base_url=_base(api, provider), api_key="bad", max_retries=0
    )
    with pytest.raises(CompactionError, match=f"LLM summarizer failed \\({provider} m1 at ") as err:
        summarize(_conversation(1), FACTS, 500)
    assert err.value.__cause__ is not None
    assert str(status) in str(err.value)
    assert len(api.requests) == 1


def test_server_errors_are_retried_before_failing(api: FakeAPI) -> None:
    api.status = 500
    summarize = llm_summarizer("anthropic", base_url=api.url, api_key="k", max_retries=1)
    with pytest.raises(CompactionError, match="anthropic"):
        summarize(_conversation(1), [], 500)
    assert len(api.requests) == 2


def test_unreachable_endpoint(api: FakeAPI) -> None:
    # a port nothing listens on, on 127.0.0.1: a connection error, never the network
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    summarize = llm_summarizer(
        "openai", base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0, timeout=5
    )
    with pytest.raises(CompactionError, match="openai"):
        summarize(_conversation(1), [], 500)


def test_empty_answer_is_an_error(api: FakeAPI) -> None:
    api.text = "   "
    summarize = llm_summarizer("anthropic", base_url=api.url, api_key="k", max_retries=0)
    with pytest.raises(CompactionError, match="no text"):
        summarize(_conversation(1), [], 500)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    monkeypatch.setitem(sys.modules, provider, None)
    with pytest.raises(MissingExtraError, match=r"ctxbudget\[llm\]") as err:
        llm_summarizer(provider, api_key="k")
    assert err.value.extra == "llm"
    assert err.value.package == provider


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_map_reduce_over_the_input_limit(api: FakeAPI, provider: str) -> None:
    api.numbered = True
    items = _conversation(requests=6, filler=40)  # each segment ≈ 2,600 characters
    summarize = llm_summarizer(
        provider, base_url=_base(api, provider), api_key="k", max_retries=0, input_limit=6_000
    )
    text = summarize(items, FACTS, 2000)
    assert len(api.requests) >= 3  # at least two chunks, then the merge
    chunks, merge = api.requests[:-1], api.requests[-1]
    for req in chunks:
        prompt = _prompt_text(req)
        assert "CONVERSATION:" in prompt
        transcript = prompt.split("CONVERSATION:", 1)[1]
        assert len(transcript) < 6_000 + 200
    # each chunk starts at a user request: segments are not split
    starts = [_prompt_text(r).split("CONVERSATION:\n", 1)[1] for r in chunks]
    assert all(s.startswith(("[system/system_prompt]", "[user/user_text] Request")) for s in starts)
    # every request went to exactly one chunk, in order
    seen = [n for r in chunks for n in range(6) if f"Request {n}:" in _prompt_text(r)]
    assert seen == list(range(6))
    merged = _prompt_text(merge)
    assert "PARTIAL SUMMARIES" in merged
    for n in range(1, len(chunks) + 1):
        assert f"- part {n}" in merged
    assert "- requirement: REQ-000" in merged  # the whole MUST-KEEP list in the merge
    assert text.endswith(f"- part {len(api.requests)}")
    assert summarize.last_requests == len(api.requests)
    assert summarize.last_usage.input_tokens == 1234 * len(api.requests)
    # the chunk that holds REQ-000 had it in its own MUST-KEEP list; the others did not
    musts = ["- requirement: REQ-000" in _prompt_text(r) for r in chunks]
    assert musts[0] and not any(musts[1:])


def test_without_map_reduce_the_transcript_is_clipped(api: FakeAPI) -> None:
    items = _conversation(requests=6, filler=40)
    summarize = llm_summarizer(
        "anthropic",
        base_url=api.url,
        api_key="k",
        max_retries=0,
        input_limit=6_000,
        map_reduce=False,
    )
    summarize(items, FACTS, 2000)
    assert len(api.requests) == 1
    prompt = _prompt_text(api.requests[0])
    assert "Request 0:" in prompt  # the beginning
    assert "Done with request 5" in prompt  # and the end
    assert "Request 3:" not in prompt
    assert "characters clipped" in prompt


def test_input_limit_from_env(api: FakeAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXBUDGET_LLM_INPUT_CHARS", "5000")
    assert llm_summarizer("openai", base_url=api.url, api_key="k").input_limit == 5000
    monkeypatch.setenv("CTXBUDGET_LLM_INPUT_CHARS", "lots")
    with pytest.raises(ConfigurationError, match="CTXBUDGET_LLM_INPUT_CHARS"):
        llm_summarizer("openai", base_url=api.url, api_key="k")


def test_rendering_helpers() -> None:
    item = Item(Role.TOOL, Kind.TOOL_RESULT, "a" * 5000, tool="Bash")
    line = render_item(item)
    assert line.startswith("[tool/tool_result Bash] aaa")
    assert len(line) <= 2_000 + len("[tool/tool_result Bash] ")
    assert line.endswith("aaa")
    text = "BEGIN" + "x" * 1000 + "END"
    clipped = clip_middle(text, 300)
    assert len(clipped) <= 300 and clipped.startswith("BEGIN") and clipped.endswith("END")
    assert clip_middle("short", 300) == "short"


def test_compaction_through_the_engine(api: FakeAPI) -> None:
    items = _conversation(requests=12)
    summarize = llm_summarizer("openai", base_url=api.url + "/v1", api_key="k", max_retries=0)
    result = compact(
        items, count=lambda s: max(1, len(s) // 4), target_tokens=4_000, summarizer=summarize
    )
    assert len(api.requests) >= 1  # a pass that overshoots the target summarizes again
    assert SUMMARY in result.summary
    assert summarize.total_requests == len(api.requests)
    assert summarize.total_usage.output_tokens == 56 * len(api.requests)
    api.status = 500
    with pytest.raises(CompactionError, match="openai"):
        compact(
            items, count=lambda s: max(1, len(s) // 4), target_tokens=4_000, summarizer=summarize
        )
