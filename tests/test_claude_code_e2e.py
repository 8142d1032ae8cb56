"""The plugin inside the real Claude Code (``claude -p``, ``--resume``, ``--plugin-dir``),
against the fake API of ``fake_anthropic``: what Claude Code sends next is the truth.

One conversation runs once for the module (about ten ``claude -p`` runs, 2 s each); each
test asserts on its part. Skipped, with the reason, where Claude Code is not installed
(``npm ci --prefix .e2e`` installs the pinned version).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fake_anthropic import (
    CLAUDE,
    FakeAnthropic,
    Reply,
    ToolUse,
    Usage,
    claude_env,
    compare_with_request,
    is_summary_request,
    request_text,
    summary_reply,
    transcripts,
)

pytestmark = pytest.mark.skipif(
    not CLAUDE.exists(), reason=f"Claude Code is not installed at {CLAUDE} (npm ci --prefix .e2e)"
)

PLUGIN = Path(__file__).resolve().parent.parent / "plugin"
WINDOW = 1_000_000  # what Claude Code 2.1.328 reports for its default model
FIRST_PROMPT = "REQ-42: never push to main. Please edit src/app.py to add request logging."
LOSSY_SUMMARY = "The user asked for logging; we discussed the app."  # drops REQ-42 and more
MCP_STATUS = "mcp__plugin_ctxbudget_ctxbudget__status"


@dataclass
class Conversation:
    """The fake's script and what each step of the conversation made Claude Code send."""

    usage: int = 250_000
    queued: list[Reply] = field(default_factory=list)
    steps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    transcript: Path | None = None
    # the transcript as each step left it
    snapshots: dict[str, bytes] = field(default_factory=dict)

    def script(self, body: dict[str, Any], index: int) -> Reply:
        if is_summary_request(body):
            return summary_reply(LOSSY_SUMMARY, Usage(5, 50, 0, 2_000))
        if not body.get("tools"):  # a side request (a title)
            return Reply(text="t", usage=Usage(10, 2))
        if self.queued:
            return self.queued.pop(0)
        return Reply(text="Fine.", usage=Usage(5, 10, 0, self.usage - 5))


@pytest.fixture(scope="module")
def conversation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conversation]:
    home = tmp_path_factory.mktemp("claude-home")
    work = home / "proj"
    work.mkdir()
    talk = Conversation()
    session: str | None = None
    with FakeAnthropic(talk.script) as api:
        env = claude_env(
            home,
            api.url,
            CTXBUDGET_EXECUTABLE=f"{sys.executable} -m ctxbudget.cli",
            CTXBUDGET_STORE=f"sqlite:///{home / 'store.db'}",
            CTXBUDGET_CACHE_DIR=str(home / "cache"),
        )

        def step(name: str, prompt: str) -> None:
            nonlocal session
            cmd = [str(CLAUDE), "-p", prompt, "--output-format", "json"]
            cmd += ["--plugin-dir", str(PLUGIN), "--permission-mode", "bypassPermissions"]
            cmd += ["--resume", session] if session else []
            before = len(api.requests)
            done = subprocess.run(
                cmd, env=env, cwd=work, capture_output=True, text=True, timeout=180
            )
            assert done.returncode == 0, done.stderr[-2000:]
            result = json.loads(done.stdout)
            session = result["session_id"]
            talk.steps[name] = api.requests[before:]
            talk.results[name] = result
            [transcript] = transcripts(home)
            talk.snapshots[name] = transcript.read_bytes()

        step("first", FIRST_PROMPT)
        step("tokens", "/ctxbudget:tokens")
        step("dry run", "/compact --dry-run")
        step("compact", "/compact")
        step("after compact", "Go on.")
        step("recall", "/ctxbudget:recall request logging")
        talk.queued = [Reply(tool_uses=(ToolUse(MCP_STATUS, {}),), usage=Usage(5, 10, 0, 250_000))]
        step("mcp", "How full is the window?")
        talk.usage = 960_000
        step("fill", "Keep going.")
        spawn = ToolUse(
            "Agent",
            {"description": "review", "prompt": "Review it.", "subagent_type": "general-purpose"},
        )
        talk.queued = [Reply(tool_uses=(spawn,), usage=Usage(5, 10, 0, 960_000))]
        step("spawn", "Spawn a reviewer.")
        too_long = "prompt is too long: 1010000 tokens > 1000000 maximum"
        talk.queued = [Reply(error=(400, "invalid_request_error", too_long))]
        talk.usage = 300_000
        step("refused as too long", "One more thing.")
    [talk.transcript] = transcripts(home)
    yield talk


def _texts(bodies: list[dict[str, Any]]) -> str:
    return "\n".join(request_text(b) for b in bodies)


def _results_of(bodies: list[dict[str, Any]], tool: str) -> list[dict[str, Any]]:
    """The results of the calls of ``tool`` the requests sent, once each, wherever they
    are in a request (Claude Code may send a reminder after them, as a system message,
    when a hook's output comes in late)."""
    found: dict[str, dict[str, Any]] = {}
    for body in bodies:
        blocks = [
            block
            for message in body["messages"]
            if isinstance(message["content"], list)
            for block in message["content"]
            if isinstance(block, dict)
        ]
        calls = {b["id"] for b in blocks if b.get("type") == "tool_use" and b.get("name") == tool}
        for block in blocks:
            if block.get("type") == "tool_result" and block.get("tool_use_id") in calls:
                found[block["tool_use_id"]] = block
    return list(found.values())


def test_tokens_command_puts_the_live_figure_into_the_prompt(conversation: Conversation) -> None:
    sent = _texts(conversation.steps["tokens"])
    found = re.search(r"Tokens: ([\d,]+)/([\d,]+) \((\d+)%\)", sent)
    assert found, sent[-2000:]
    used, window = (int(found[i].replace(",", "")) for i in (1, 2))
    assert window == WINDOW
    # the provider's last figure (250,000) plus its answer: nothing else came since
    assert 250_000 <= used <= 250_000 * 1.01


def test_dry_run_is_blocked_with_the_preview(conversation: Conversation) -> None:
    result = str(conversation.results["dry run"].get("result"))
    assert "Compaction blocked by PreCompact hook" in result
    assert "nothing was compacted" in result and "Facts at risk" in result
    # /ctxbudget:tokens ran before: its figure is a report on the context, not a fact
    assert "Tokens: " not in result.split("Facts at risk", 1)[1]
    assert not any(is_summary_request(b) for b in conversation.steps["dry run"])


def test_facts_the_summary_lost_come_back_after_compact(conversation: Conversation) -> None:
    assert any(is_summary_request(b) for b in conversation.steps["compact"])
    [nxt] = [b for b in conversation.steps["after compact"] if b.get("tools")]
    sent = request_text(nxt)
    assert LOSSY_SUMMARY in sent  # Claude Code's own summary is there
    assert "SessionStart hook additional context" in sent
    for fact in ("REQ-42", "never push to main", "src/app.py"):
        assert fact in sent, fact
    assert "request: <local-command" not in sent  # Claude Code's own records are no request
    assert "Tokens: " not in sent.split(LOSSY_SUMMARY)[1]  # nor ctxbudget's own reports


def test_recall_brings_back_what_claude_codes_compaction_replaced(
    conversation: Conversation,
) -> None:
    """/compact replaced the first prompt with a summary that lost it; /ctxbudget:recall
    finds it in the transcript and puts it before the model."""
    sent = _texts(conversation.steps["recall"])
    assert "ctxbudget report" in sent
    assert FIRST_PROMPT in sent.split("ctxbudget report", 1)[1]


def test_facts_come_back_after_claude_codes_own_compaction_of_a_refused_request(
    conversation: Conversation,
) -> None:
    """The API refuses a request as too long; Claude Code compacts by itself (its summary
    drops the facts again) and sends the request anew. The plugin puts the facts back
    into that request, as after /compact."""
    bodies = conversation.steps["refused as too long"]
    assert any(is_summary_request(b) for b in bodies)
    sent = request_text([b for b in bodies if b.get("tools")][-1])
    assert LOSSY_SUMMARY in sent and "One more thing." in sent
    assert "SessionStart hook additional context" in sent
    for fact in ("REQ-42", "never push to main", "src/app.py"):
        assert fact in sent, fact


def test_an_mcp_tool_result_reaches_the_model(conversation: Conversation) -> None:
    [answer] = _results_of(conversation.steps["mcp"], MCP_STATUS)
    assert not answer.get("is_error"), answer
    status = json.loads(answer["content"] if isinstance(answer["content"], str) else "{}")
    assert status["window"] == WINDOW and status["level"] == "normal"
    assert 250_000 <= status["used_tokens"] <= 250_000 * 1.01


def test_a_spawn_at_96_percent_is_denied_with_the_reason(conversation: Conversation) -> None:
    [denied] = _results_of(conversation.steps["spawn"], "Agent")
    assert denied.get("is_error")
    assert "not started: denied" in str(denied["content"])
    assert f"of {WINDOW:,}" in str(denied["content"])
    # the warning reached the model when the window had crossed the thresholds, once
    # (the last request holds the whole conversation)
    last = request_text(conversation.steps["spawn"][-1]).replace("\\n", "\n")  # JSON's
    # the alert reaches the model once, marked as ctxbudget's report (no fact, no recall)
    marked = "hook additional context: <!-- ctxbudget report -->\nctxbudget: context window at 96%"
    assert last.count(marked) == 1


def test_every_surface_reads_the_same_window(conversation: Conversation) -> None:
    assert conversation.transcript is not None
    done = subprocess.run(
        [sys.executable, "-m", "ctxbudget.cli", "tokens", str(conversation.transcript), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["max_tokens"] == WINDOW


def _paragraph(seed: int) -> str:
    words = "alpha beta gamma delta orbit carbon ledger vector signal harbor river stone"
    pool = words.split()
    return " ".join(pool[(seed * 7 + k * 5) % len(pool)] for k in range(300)) + "."


def test_a_forked_compaction_resumes_in_claude_code(tmp_path: Path) -> None:
    def script(body: dict[str, Any], index: int) -> Reply:
        if not body.get("tools"):
            return Reply(text="t", usage=Usage(10, 2))
        return Reply(text="Done.", usage=Usage(5, 10, 0, 30_000 + 2_000 * index))

    work = tmp_path / "proj"
    work.mkdir()
    store = {
        "CTXBUDGET_STORE": f"sqlite:///{tmp_path / 'store.db'}",
        "CTXBUDGET_CACHE_DIR": str(tmp_path / "cache"),
    }
    with FakeAnthropic(script) as api:
        env = claude_env(tmp_path, api.url, **store)
        session: str | None = None
        for n in range(6):
            prompt = ("REQ-7: keep the public API stable. " if n == 0 else "") + (
                f"Part {n}: {_paragraph(n)}"
            )
            cmd = [str(CLAUDE), "-p", prompt, "--output-format", "json"]
            cmd += ["--resume", session] if session else []
            done = subprocess.run(
                cmd, env=env, cwd=work, capture_output=True, text=True, check=True
            )
            session = json.loads(done.stdout)["session_id"]
        [original] = transcripts(tmp_path)
        before = original.read_bytes()
        argv = ["compact", str(original), "--ratio", "4", "--fork", "--json"]
        compact = subprocess.run(
            [sys.executable, "-m", "ctxbudget.cli", *argv],
            env={**env, **store},
            capture_output=True,
            text=True,
        )
        assert compact.returncode == 0, compact.stderr
        fork = json.loads(compact.stdout)["fork"]
        assert fork["resume"] == f"claude --resume {fork['session_id']}"
        assert original.read_bytes() == before  # the running session is untouched
        sent = len(api.requests)
        resume = [str(CLAUDE), "-p", "Next.", "--output-format", "json"]
        resume += ["--resume", fork["session_id"]]
        subprocess.run(resume, env=env, cwd=work, capture_output=True, text=True, check=True)
        [body] = [b for b in api.requests[sent:] if b.get("tools")]
    first = json.dumps(body["messages"][0])
    assert "Summary of the compacted conversation" in first  # ctxbudget's summary leads
    text = request_text(body)
    assert "REQ-7" in text
    assert _paragraph(1) not in text  # the middle went into the summary and the archive
    assert _paragraph(5) in text  # the last exchanges are kept whole


@pytest.mark.parametrize(
    "name", ["first", "tokens", "after compact", "mcp", "fill", "spawn", "refused as too long"]
)
def test_the_reader_holds_what_each_request_carried(
    conversation: Conversation, tmp_path: Path, name: str
) -> None:
    """Each step of the plugin's conversation (the first prompt, ``/ctxbudget:tokens``,
    after Claude Code's compaction with the facts the plugin put back, an MCP tool's
    result, the 90% warning, a spawn refused by the gate): the step's last request
    carried exactly what the reader makes of the transcript as the step left it."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(conversation.snapshots[name])
    sent = [b for b in conversation.steps[name] if b.get("tools")][-1]
    seen = compare_with_request(path, sent)
    assert seen.sent_system == seen.held_system
    assert seen.held_texts == seen.sent_texts
    assert seen.held_calls == seen.sent_calls
