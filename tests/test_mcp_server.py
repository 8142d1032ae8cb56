"""``ctxbudget mcp``: each tool through the SDK's in-process client, one over stdio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from ctxbudget import Session, Tracker
from ctxbudget.claude_code.hooks import HookOptions, pre_tool_use
from ctxbudget.cli import main

HAS_MCP = find_spec("mcp") is not None
needs_mcp = pytest.mark.skipif(
    not HAS_MCP, reason='the optional MCP SDK is not installed (pip install "ctxbudget[mcp]")'
)

SESSION = "aaaaaaaa-1111-2222-3333-444444444444"
CWD = "/home/dev/proj"
MODEL = "claude-sonnet-4-20250514"  # a 200,000-token window


def _record(kind: str, uuid: str, message: dict[str, Any], **extra: Any) -> str:
    return json.dumps(
        {
            "type": kind,
            "uuid": uuid,
            "sessionId": SESSION,
            "cwd": CWD,
            "isSidechain": False,
            "timestamp": f"2026-01-01T10:00:{len(uuid):02d}.000Z",
            "message": message,
            **extra,
        }
    )


def _exchange(n: int, text: str, context_tokens: int) -> list[str]:
    """A user turn and the answer, whose usage puts the window at ``context_tokens``."""
    return [
        _record("user", f"u{n}", {"role": "user", "content": text}),
        _record(
            "assistant",
            f"a{n}",
            {
                "id": f"msg_{n}",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [{"type": "text", "text": f"Done with step {n}: {text}"}],
                "usage": {
                    "input_tokens": 10,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": context_tokens - 10,
                    "output_tokens": 30,
                },
            },
        ),
    ]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _transcript(home: Path, lines: list[str], name: str = SESSION) -> Path:
    folder = home / ".claude" / "projects" / "-home-dev-proj"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(line.replace(SESSION, name) for line in lines) + "\n")
    return path


def _env(home: Path, session: str | None = SESSION) -> dict[str, str]:
    env = {"HOME": str(home)}
    if session:
        env["CLAUDE_CODE_SESSION_ID"] = session
    return env


def _with_client(
    tracker: Tracker,
    env: dict[str, str],
    body: Callable[[Any], Awaitable[None]],
    *,
    session: str | None = None,
) -> None:
    import anyio
    from mcp import Client

    from ctxbudget.claude_code.mcp_server import McpWorkspace, build_server

    server = build_server(McpWorkspace(tracker, session=session, environ=env, cwd=CWD))

    async def run() -> None:
        async with Client(server) as client:
            await body(client)

    anyio.run(run)


def _call(
    tracker: Tracker, env: dict[str, str], tool: str, args: dict[str, Any] | None = None
) -> Any:
    out: dict[str, Any] = {}

    async def body(client: Any) -> None:
        out["result"] = await client.call_tool(tool, args or {})

    _with_client(tracker, env, body)
    return out["result"]


def _ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data = result.structured_content
    assert isinstance(data, dict)
    return data


@pytest.fixture
def tracker(tmp_path: Path) -> Tracker:
    return Tracker(store=f"sqlite:///{tmp_path / 'store.db'}")


@needs_mcp
def test_every_tool_is_listed_with_typed_input_and_output(home: Path, tracker: Tracker) -> None:
    from ctxbudget.claude_code.mcp_server import TOOLS

    listed: dict[str, Any] = {}

    async def body(client: Any) -> None:
        for tool in (await client.list_tools()).tools:
            listed[tool.name] = tool

    _with_client(tracker, _env(home), body)
    assert tuple(listed) == TOOLS
    assert all(t.output_schema and t.output_schema.get("properties") for t in listed.values())
    gate = listed["gate"].input_schema
    assert gate["properties"]["tokens"]["type"] == "integer"
    assert set(gate["required"]) == {"agent", "tokens"}


@needs_mcp
def test_status_is_the_figure_of_ctxbudget_tokens(
    home: Path, tracker: Tracker, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _transcript(home, _exchange(1, "Fix REQ-7 in src/app.py", 120_000))
    data = _ok(_call(tracker, _env(home), "status"))
    assert main(["tokens", str(path), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert data["session_id"] == SESSION and data["source"] == str(path)
    assert data["used_tokens"] == cli["used_tokens"] > 120_000
    assert data["window"] == cli["max_tokens"] == 200_000
    assert data["percent"] == cli["percent"]
    assert data["level"] == cli["level"] == "normal"
    assert data["remaining_tokens"] == cli["remaining_tokens"]
    assert data["exchanges_left"] == cli["estimated_exchanges_left"]
    assert data["overhead_tokens"] == cli["overhead_tokens"]


@needs_mcp
def test_the_session_is_named_or_the_newest_of_the_project(home: Path, tracker: Tracker) -> None:
    old = _transcript(home, _exchange(1, "old work", 50_000), name="old-session")
    os.utime(old, (1, 1))
    _transcript(home, _exchange(1, "new work", 90_000))
    # no CLAUDE_CODE_SESSION_ID: the newest transcript of the working directory's project
    assert _ok(_call(tracker, _env(home, None), "status"))["session_id"] == SESSION
    named = _ok(_call(tracker, _env(home), "status", {"session": "old-session"}))
    assert named["session_id"] == "old-session" and named["used_tokens"] < 90_000
    by_path = _ok(_call(tracker, _env(home), "status", {"session": str(old)}))
    assert by_path["used_tokens"] == named["used_tokens"]
    missing = _call(tracker, _env(home), "status", {"session": "no-such-session"})
    assert missing.is_error
    (text,) = [c.text for c in missing.content]
    assert "no-such-session: no such transcript" in text and "\n" not in text


@needs_mcp
def test_breakdown_and_history(home: Path, tracker: Tracker) -> None:
    _transcript(
        home, _exchange(1, "Read the spec", 40_000) + _exchange(2, "Write the code", 60_000)
    )
    breakdown = _ok(_call(tracker, _env(home), "breakdown"))
    assert breakdown["used_tokens"] > 60_000
    assert breakdown["overhead_tokens"] > 0 and sum(breakdown["agent"].values()) > 0
    history = _ok(_call(tracker, _env(home), "history"))
    points = history["points"]
    assert [p["used_tokens"] for p in points[:2]] == [40_000, 60_000]
    assert points[-1]["now"] and points[-1]["used_tokens"] == breakdown["used_tokens"]


@needs_mcp
def test_gate_allows_below_and_denies_at_the_blocked_level(home: Path, tracker: Tracker) -> None:
    _transcript(home, _exchange(1, "Plan the sprint", 100_000))
    allowed = _ok(_call(tracker, _env(home), "gate", {"agent": "researcher", "tokens": 20_000}))
    assert allowed["allowed"] and allowed["outcome"] == "allow"
    assert allowed["reservation"] is None  # not stored: nothing to share a reservation with
    _transcript(home, _exchange(1, "Plan the sprint", 188_000))
    denied = _ok(_call(tracker, _env(home), "gate", {"agent": "researcher", "tokens": 5_000}))
    assert not denied["allowed"] and denied["outcome"] == "deny"
    assert "95" in denied["reason"]
    bad = _call(tracker, _env(home), "gate", {"agent": "researcher", "tokens": 0})
    assert bad.is_error


@needs_mcp
def test_gate_and_the_hook_reserve_once_for_one_spawn(
    home: Path, tracker: Tracker, tmp_path: Path
) -> None:
    path = _transcript(home, _exchange(1, "Plan the sprint", 100_000))
    tracker.session(SESSION, model=MODEL)  # stored, as the hooks register it
    args = {"agent": "researcher", "tokens": 20_000, "key": "toolu_42"}
    first = _ok(_call(tracker, _env(home), "gate", args))
    again = _ok(_call(tracker, _env(home), "gate", args))
    assert first["allowed"] and first["reservation"] == "toolu_42"
    assert again["allowed"] and again["reservation"] == "toolu_42"
    payload = {
        "hook_event_name": "PreToolUse",
        "session_id": SESSION,
        "transcript_path": str(path),
        "tool_name": "Agent",
        "tool_use_id": "toolu_42",
        "tool_input": {"subagent_type": "researcher", "prompt": "Find the spec."},
    }
    result = pre_tool_use(payload, tracker, HookOptions(cache_dir=str(tmp_path / "cache")))
    assert result.exit_code == 0
    held = tracker.store.reservations(SESSION, "gate:")
    assert [(r.key, r.tokens) for r in held] == [("toolu_42", 20_000)]
    gates = tracker.store.events(SESSION, types=["gate"])
    assert len(gates) >= 3 and gates[0].data["tool"] == "mcp"
    # status says what spawns hold; a gate's reserved_tokens are the others' alone
    assert _ok(_call(tracker, _env(home), "status", {}))["reserved_tokens"] == 20_000
    assert again["reserved_tokens"] == 0
    other = _ok(_call(tracker, _env(home), "gate", {**args, "key": "toolu_43"}))
    assert other["reserved_tokens"] == 20_000


@needs_mcp
def test_a_gate_with_a_key_stores_a_session_the_hooks_never_registered(
    home: Path, tracker: Tracker
) -> None:
    """No SessionStart stored it (hooks installed mid-session): a spawn's gate stores
    the session first, so its room is reserved (before: allowed, nothing held)."""
    _transcript(home, _exchange(1, "Plan the sprint", 100_000))
    args = {"agent": "researcher", "tokens": 20_000, "key": "toolu_9"}
    first = _ok(_call(tracker, _env(home), "gate", args))
    assert first["allowed"] and first["reservation"] == "toolu_9"
    assert tracker.store.get_session(SESSION).policy["window"] == 200_000
    held = tracker.store.reservations(SESSION, "gate:")
    assert [(r.key, r.tokens) for r in held] == [("toolu_9", 20_000)]
    assert [e.data["tool"] for e in tracker.store.events(SESSION, types=["gate"])] == ["mcp"]


@needs_mcp
def test_a_gate_asked_without_a_key_leaves_the_reservation_to_the_hook(
    home: Path, tracker: Tracker, tmp_path: Path
) -> None:
    path = _transcript(home, _exchange(1, "Plan the sprint", 100_000))
    tracker.session(SESSION, model=MODEL)
    asked = _ok(_call(tracker, _env(home), "gate", {"agent": "researcher", "tokens": 20_000}))
    assert asked["allowed"] and asked["reservation"] is None
    assert tracker.store.reservations(SESSION, "gate:") == []
    payload = {
        "hook_event_name": "PreToolUse",
        "session_id": SESSION,
        "transcript_path": str(path),
        "tool_name": "Agent",
        "tool_use_id": "toolu_7",
        "tool_input": {"subagent_type": "researcher", "prompt": "Find the spec."},
    }
    assert pre_tool_use(payload, tracker, HookOptions(cache_dir=str(tmp_path / "c"))).exit_code == 0
    assert [r.key for r in tracker.store.reservations(SESSION, "gate:")] == ["toolu_7"]


@needs_mcp
def test_an_agent_outside_the_roster_is_denied_with_the_reason(
    home: Path, tracker: Tracker
) -> None:
    _transcript(home, _exchange(1, "Plan", 50_000))
    tracker.session(SESSION, model=MODEL).set_agent_budget("coder", 30_000)
    denied = _ok(_call(tracker, _env(home), "gate", {"agent": "reseacher", "tokens": 1_000}))
    assert not denied["allowed"] and "unknown agent 'reseacher'" in denied["reason"]
    assert _ok(_call(tracker, _env(home), "gate", {"agent": "coder", "tokens": 1_000}))["allowed"]


@needs_mcp
def test_a_sprint_counts_what_agents_use_after_it_starts(home: Path, tracker: Tracker) -> None:
    lines = _exchange(1, "Set up the project", 30_000)
    _transcript(home, lines)
    started = _ok(_call(tracker, _env(home), "sprint_start", {"name": "sprint-1", "budget": 150}))
    assert started["sprint"] == "sprint-1" and started["agents_at_start"]["main"] > 0
    report = _ok(_call(tracker, _env(home), "sprint_report"))
    assert report["sprint"] == "sprint-1" and report["used_tokens"] == 0
    assert report["remaining_tokens"] == 150 and report["alerts"] == []
    # the main agent works on: its new messages count against the sprint
    _transcript(home, lines + _exchange(2, "Implement REQ-12 " + "with care " * 30, 32_000))
    report = _ok(_call(tracker, _env(home), "sprint_report"))
    main_agent = next(a for a in report["agents"] if a["agent"] == "main")
    assert report["used_tokens"] == main_agent["tokens"] > 0
    assert report["remaining_tokens"] == 150 - report["used_tokens"]
    _transcript(
        home,
        lines
        + _exchange(2, "Implement REQ-12 " + "with care " * 30, 32_000)
        + _exchange(3, "Now the tests " * 60, 34_000),
    )
    over = _ok(_call(tracker, _env(home), "sprint_report", {"name": "sprint-1"}))
    assert over["level"] == "over" and over["remaining_tokens"] < 0
    assert over["alerts"][0].startswith("sprint 'sprint-1' is over budget")
    unknown = _call(tracker, _env(home), "sprint_report", {"name": "sprint-9"})
    assert unknown.is_error


def test_one_server_reads_a_transcript_again_only_when_it_changed(
    home: Path, tracker: Tracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ctxbudget.sources
    from ctxbudget.claude_code.mcp_tools import (
        breakdown_of,
        preview_of,
        sprint_report_of,
        sprint_start_of,
        status_of,
    )
    from ctxbudget.claude_code.mcp_workspace import McpWorkspace

    reads: list[str] = []
    load_source = ctxbudget.sources.load_source

    def counted(path: Any) -> Any:
        reads.append(str(path))
        return load_source(path)

    monkeypatch.setattr(ctxbudget.sources, "load_source", counted)
    workspace = McpWorkspace(tracker, environ=_env(home), cwd=CWD)
    lines = _exchange(1, "Set up the project", 30_000)
    path = _transcript(home, lines)
    first = status_of(workspace)
    assert status_of(workspace) == first
    breakdown_of(workspace)
    preview_of(workspace)
    assert len(reads) == 1  # three calls and a preview: the file read once

    # grown: read again
    _transcript(home, lines + _exchange(2, "Implement REQ-12", 32_000))
    grown = status_of(workspace)
    assert len(reads) == 2 and grown["used_tokens"] > first["used_tokens"]
    # rewritten to the same size: its modification time says so
    size = path.stat().st_size
    _transcript(home, lines + _exchange(2, "Implement REQ-13", 33_000))
    assert path.stat().st_size == size
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000))
    assert status_of(workspace)["used_tokens"] != grown["used_tokens"] and len(reads) == 3

    # its stored row changed (here by this server, as by another process): read again
    sprint_start_of(workspace, "sprint-1", 150)
    assert sprint_report_of(workspace)["sprint"] == "sprint-1" and len(reads) == 4
    other = McpWorkspace(Tracker(store=tracker.store.url), environ=_env(home), cwd=CWD)
    sprint_start_of(other, "sprint-2", 300)
    assert sprint_report_of(workspace)["sprints"] == ["sprint-1", "sprint-2"]
    assert sprint_report_of(workspace)["sprint"] == "sprint-2" and len(reads) == 6


def _orders(tracker: Tracker, session_id: str | None = None) -> Session:
    """A stored session of twelve steps, each about its own table ("orders_3")."""
    session = tracker.session(session_id, model=MODEL, window=5_000)
    for n in range(12):
        session.add_messages(
            [
                {"role": "user", "content": f"Step {n}: look at table orders_{n} " * 20},
                {"role": "assistant", "content": f"Table orders_{n} has {n} rows. " * 20},
            ]
        )
    return session


@needs_mcp
def test_recall_and_preview_of_a_stored_session(tmp_path: Path, tracker: Tracker) -> None:
    from ctxbudget.compaction import CompactionPolicy

    session = _orders(tracker)
    preview = _ok(_call(tracker, {"HOME": str(tmp_path)}, "preview", {"session": session.id}))
    plan = session.plan_compaction()
    assert preview["tokens_before"] == session.used_tokens == plan.used_before
    assert preview["tokens_after"] == plan.used_after < plan.used_before
    assert len(preview["actions"]) == len(plan.result.actions) > 0
    assert preview["claude_code"] is None
    done = session.compact(CompactionPolicy(target_tokens=session.used_tokens // 3))
    assert done.applied_at is not None
    found = _ok(
        _call(
            tracker,
            {"HOME": str(tmp_path)},
            "recall",
            {"query": "orders_1", "budget": 300, "session": session.id},
        )
    )
    assert found["items"] and 0 < found["tokens"] <= 300
    assert any("orders_1" in item["text"] for item in found["items"])


@needs_mcp
def test_preview_and_recall_of_a_claude_code_session(home: Path, tracker: Tracker) -> None:
    _transcript(home, _exchange(1, "Fix REQ-7 in src/app.py; never push to main", 60_000))
    preview = _ok(_call(tracker, _env(home), "preview"))
    status = _ok(_call(tracker, _env(home), "status"))
    assert preview["tokens_before"] == status["used_tokens"]
    claude_code = preview["claude_code"]
    assert claude_code is not None and claude_code["reinjected_tokens"] > 0
    assert "REQ-7" in claude_code["reinjected"]
    recalled = _ok(_call(tracker, _env(home), "recall", {"query": "REQ-7"}))
    assert recalled["items"] == [] and "took out matches" in recalled["note"]


@needs_mcp
def test_recall_of_what_claude_codes_own_compaction_took_out(
    home: Path, tracker: Tracker, fixtures: Path
) -> None:
    lines = (fixtures / "claude_code_compacted.jsonl").read_text().splitlines()
    _transcript(home, lines)
    found = _ok(_call(tracker, _env(home), "recall", {"query": "failing test"}))
    texts = [item["text"] for item in found["items"]]
    assert texts[0] == "Please fix the failing test in src/app.py and keep the API stable."
    assert found["note"] is None and 0 < found["tokens"] <= 500


@needs_mcp
def test_over_stdio_lists_tools_and_answers_status(home: Path, tmp_path: Path) -> None:
    import anyio
    from mcp import Client, StdioServerParameters

    path = _transcript(home, _exchange(1, "Fix REQ-7", 120_000))
    src = Path(__file__).resolve().parent.parent / "src"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTXBUDGET_", "CLAUDE"))}
    env.update(_env(home), PYTHONPATH=str(src))
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "ctxbudget.cli", "mcp", "--store", f"sqlite:///{tmp_path / 's.db'}"],
        env=env,
        cwd=str(tmp_path),
    )
    out: dict[str, Any] = {}

    async def run() -> None:
        with anyio.fail_after(60):
            async with Client(params) as client:
                out["tools"] = [t.name for t in (await client.list_tools()).tools]
                out["status"] = await client.call_tool("status", {})

    anyio.run(run)
    assert "gate" in out["tools"] and "sprint_report" in out["tools"]
    status = _ok(out["status"])
    assert status["source"] == str(path) and status["used_tokens"] > 120_000


def test_without_the_sdk_the_command_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "mcp.server.mcpserver", None)
    assert main(["mcp", "--store", "memory://"]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert 'pip install "ctxbudget[mcp]"' in line and captured.out == ""


def test_the_subprocess_check_runs_without_sdk_too() -> None:
    # "ctxbudget mcp --help" needs no SDK: it is listed and parsed like any command
    proc = subprocess.run(
        [sys.executable, "-m", "ctxbudget.cli", "mcp", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "--session" in proc.stdout


@needs_mcp
def test_recall_is_one_search_by_the_cli_and_by_mcp(
    tmp_path: Path, tracker: Tracker, fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both surfaces search what Claude Code's /compact took out (the context it
    replaced, in the live transcript) and what ctxbudget's compactions archived (the
    stored session of that id), and give the same answer; never a branch the user
    abandoned, never an earlier ctxbudget report."""
    from ctxbudget.compaction import CompactionPolicy
    from ctxbudget.compaction.fact_rules import REPORT_MARKER

    session_id = "11111111-2222-3333-4444-555555555555"  # the fixture's
    lines = (fixtures / "claude_code_compacted.jsonl").read_text().splitlines()
    boundary = next(i for i, line in enumerate(lines) if "compact_boundary" in line)
    report = {
        "type": "user",
        "uuid": "rep",
        "parentUuid": "a4",
        "isSidechain": False,
        "sessionId": session_id,
        "message": {"role": "user", "content": f"{REPORT_MARKER}\nTokens: 3,035 (failing test)"},
    }
    lines.insert(boundary, json.dumps(report))
    folder = tmp_path / "claude-home" / "projects" / "-home-dev-proj"
    folder.mkdir(parents=True)
    (folder / f"{session_id}.jsonl").write_text("\n".join(lines) + "\n")
    stored = _orders(tracker, session_id)
    stored.compact(CompactionPolicy(target_tokens=stored.used_tokens // 3))

    query = ["failing test orders_1 rewrite", "--budget", "3000", "--json"]
    code, out, err = run_cli(capsys, "recall", session_id, *query)
    assert code == 0, err
    by_cli = [item["text"] for item in json.loads(out)]
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(tmp_path / "claude-home")}
    found = _ok(
        _call(tracker, env, "recall", {"query": query[0], "budget": 3000, "session": session_id})
    )
    assert [item["text"] for item in found["items"]] == by_cli
    assert "Please fix the failing test in src/app.py and keep the API stable." in by_cli
    assert any("orders_1 " in text for text in by_cli)
    assert not any("abandoned branch" in text or REPORT_MARKER in text for text in by_cli)
