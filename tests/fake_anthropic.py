"""A local fake of the Anthropic Messages API, for running the real Claude Code in tests.

Claude Code sends ``POST /v1/messages?beta=true`` with ``stream: true``; the fake answers
with the Server-Sent Events the real API sends (``message_start`` carrying ``usage``,
content blocks of text or ``tool_use``, ``message_delta`` with the stop reason,
``message_stop``). A test decides what each answer says and which ``usage`` it reports,
so it can put the context window at any percentage, and it sees every request body:
what Claude Code really sent is the truth of what was in the context.

    with FakeAnthropic(script) as api:
        env = claude_env(home, api.url)
        subprocess.run([claude, "-p", "hello"], env=env)
        api.requests  # the bodies Claude Code sent, in order

``script`` is a function of the request body (and how many message requests came before
it) returning a :class:`Reply`; without one, every request is answered "ok" with a usage
of about a quarter of the request's characters.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict[str, Any]
    id: str = field(default_factory=lambda: "toolu_" + uuid.uuid4().hex[:24])


@dataclass(frozen=True)
class Reply:
    """One answer: text and/or tool calls, with the usage the fake reports for it."""

    text: str = ""
    tool_uses: tuple[ToolUse, ...] = ()
    usage: Usage | None = None  # None: about a quarter of the request's characters
    thinking: str = ""  # a thinking block before the text, with a stand-in signature
    # an error answer instead: (HTTP status, error type, message), as the API sends one
    error: tuple[int, str, str] | None = None


Script = Callable[[dict[str, Any], int], Reply]

SUMMARY_MARKERS = ("summary of the conversation", "summarize the conversation")


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the request's last user message (all its text blocks)."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return "\n".join(
            block.get("text", "")
            for block in content or []
            if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""


def request_text(body: dict[str, Any]) -> str:
    """Everything a request carries as one string (system, tools, messages)."""
    return json.dumps(
        [body.get("system"), body.get("tools"), body.get("messages")], ensure_ascii=False
    )


def is_summary_request(body: dict[str, Any]) -> bool:
    """Whether Claude Code asks for its compaction summary (``/compact`` or auto)."""
    text = last_user_text(body).lower()
    return any(marker in text for marker in SUMMARY_MARKERS)


def is_title_request(body: dict[str, Any]) -> bool:
    """Side requests Claude Code makes without tools (titles, topic detection)."""
    return not body.get("tools") and not is_summary_request(body)


def summary_reply(summary: str, usage: Usage | None = None) -> Reply:
    """An answer to the compaction request in the shape Claude Code asks for."""
    return Reply(text=f"<analysis>done</analysis>\n<summary>\n{summary}\n</summary>", usage=usage)


def default_script(body: dict[str, Any], index: int) -> Reply:
    return Reply(text="ok")


class FakeAnthropic:
    """The fake API on 127.0.0.1, on a free port, in a background thread."""

    def __init__(self, script: Script | None = None) -> None:
        self.script: Script = script or default_script
        self.requests: list[dict[str, Any]] = []  # message requests, in arrival order
        self.paths: list[str] = []  # every request path, for debugging
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def main_requests(self) -> list[dict[str, Any]]:
        """The requests of the conversation itself (with tools), not side requests."""
        return [body for body in self.requests if body.get("tools")]

    def _answer(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            index = len(self.requests)
            self.requests.append(body)
        return self.script(body, index)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                fake.paths.append("GET " + self.path)
                self._json(404, {"type": "error", "error": {"type": "not_found_error"}})

            def do_POST(self) -> None:
                fake.paths.append("POST " + self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                path = self.path.split("?")[0]
                if path.endswith("/count_tokens"):
                    self._json(200, {"input_tokens": len(request_text(body)) // 4})
                    return
                if not path.endswith("/v1/messages"):
                    self._json(404, {"type": "error", "error": {"type": "not_found_error"}})
                    return
                reply = fake._answer(body)
                if reply.error is not None:
                    status, kind, message = reply.error
                    error = {"type": kind, "message": message}
                    self._json(status, {"type": "error", "error": error})
                    return
                usage = reply.usage or Usage(input_tokens=len(request_text(body)) // 4)
                model = body.get("model", "claude-sonnet-4-5")
                if body.get("stream"):
                    self._stream(reply, usage, model)
                else:
                    self._json(200, message_json(reply, usage, model))

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply, usage: Usage, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for event, data in sse_events(reply, usage, model):
                    chunk = f"event: {event}\ndata: {json.dumps(data)}\n\n"
                    self.wfile.write(chunk.encode())
                self.wfile.flush()
                self.close_connection = True

        return Handler


def message_json(reply: Reply, usage: Usage, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.thinking:
        content.append({"type": "thinking", "thinking": reply.thinking, "signature": "c2ln"})
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for tool in reply.tool_uses:
        content.append({"type": "tool_use", "id": tool.id, "name": tool.name, "input": tool.input})
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if reply.tool_uses else "end_turn",
        "stop_sequence": None,
        "usage": usage.as_dict(),
    }


def sse_events(reply: Reply, usage: Usage, model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The events of one streamed answer, as the Messages API sends them."""
    message = message_json(reply, usage, model)
    start = dict(message, content=[], stop_reason=None)
    start["usage"] = dict(usage.as_dict(), output_tokens=1)
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        if block["type"] == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            yield (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
            for delta in (
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ):
                yield (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
        elif block["type"] == "text":
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": block["text"]},
                },
            )
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
            partial = json.dumps(block["input"])
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": partial},
                },
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage.output_tokens},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def claude_env(home: Path, api_url: str, **extra: str) -> dict[str, str]:
    """The environment to run Claude Code headless against the fake, in a private HOME."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "CLAUDE", "VIRTUAL_ENV_PROMPT"))
    }
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=api_url,
        ANTHROPIC_API_KEY="sk-test",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        IS_SANDBOX="1",
    )
    env.update(extra)
    return env


CLAUDE = Path(__file__).resolve().parent.parent / ".e2e" / "node_modules" / ".bin" / "claude"


def converse(
    api: FakeAnthropic,
    home: Path,
    cwd: Path,
    prompts: Iterable[str | tuple[str, Sequence[str]]],
    *flags: str,
) -> str:
    """Send ``prompts`` to the real Claude Code one ``claude -p`` at a time, each
    resuming the session the first started, against the fake; returns its id. A prompt
    given as ``(prompt, its_flags)`` runs with its own flags after ``flags``."""
    session: str | None = None
    for given in prompts:
        prompt, own = (given, ()) if isinstance(given, str) else given
        cmd = [str(CLAUDE), "-p", prompt, "--output-format", "json", *flags, *own]
        cmd += ["--resume", session] if session else []
        done = subprocess.run(
            cmd,
            env=claude_env(home, api.url),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        session = json.loads(done.stdout)["session_id"]
    assert session is not None
    return session


def transcripts(home: Path) -> list[Path]:
    """The session transcripts Claude Code wrote under ``home``, oldest first."""
    root = home / ".claude" / "projects"
    return sorted(root.glob("*/*.jsonl"), key=lambda path: path.stat().st_mtime)


def sent_blocks(message: dict[str, Any]) -> list[tuple[str, Any]]:
    """A request message's blocks as (type, what the model reads of it): a text, a
    call's (name, input), a result's text, a thinking block's thinking."""
    content = message.get("content")
    if isinstance(content, str):
        return [("text", content)]
    out: list[tuple[str, Any]] = []
    for block in content or []:
        kind = block.get("type")
        if kind == "text":
            out.append(("text", block["text"]))
        elif kind == "tool_use":
            out.append(("tool_use", (block["name"], block["input"])))
        elif kind == "thinking":
            out.append(("thinking", block["thinking"]))
        elif kind == "tool_result":
            result = block.get("content")
            if isinstance(result, list):
                result = "\n".join(b.get("text", "") for b in result if isinstance(b, dict))
            out.append(("tool_result", result))
        else:
            out.append((str(kind), block))
    return out


@dataclass
class Comparison:
    """What a request carried beside what the reader made of the transcript's current
    context as that request sent it (without the request's own answer), each sorted."""

    held_texts: list[str]
    sent_texts: list[str]
    held_calls: list[str]
    sent_calls: list[str]
    held_system: str  # the system-role reminders, joined by a blank line
    sent_system: str  # the request's system messages, joined the same way
    items: list[Any]


def compare_with_request(path: Path, body: dict[str, Any]) -> Comparison:
    """The request ``body`` against the reader's current context of the transcript at
    ``path``. A reminder rendered for the system role is sent, without its tags, in a
    system message (one a turn); a user reminder with a newline more."""
    from ctxbudget.model import Kind, Role
    from ctxbudget.sources import load_source

    items = list(load_source(path).items)
    while items and items[-1].role is Role.ASSISTANT:
        items.pop()
    system_parts = [i.text for i in items if i.kind is Kind.REMINDER and not i.text.startswith("<")]
    sent_texts: list[str] = list(system_parts)
    sent_calls: list[str] = []
    system_messages: list[str] = []
    for message in body["messages"]:
        for kind, what in sent_blocks(message):
            if message["role"] == "system":
                system_messages.append(what)
            elif kind == "tool_use":
                sent_calls.append(json.dumps(list(what)))
            else:
                sent_texts.append(what.strip() if isinstance(what, str) else json.dumps(what))
    held_calls = [
        json.dumps([i.tool, json.loads(i.text[len(i.tool or "") + 1 :])])
        for i in items
        if i.kind is Kind.TOOL_CALL
    ]
    return Comparison(
        held_texts=sorted(i.text.strip() for i in items if i.kind is not Kind.TOOL_CALL),
        sent_texts=sorted(sent_texts),
        held_calls=sorted(held_calls),
        sent_calls=sorted(sent_calls),
        held_system="\n\n".join(system_parts),
        sent_system="\n\n".join(system_messages),
        items=items,
    )
