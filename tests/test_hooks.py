"""Claude Code hooks: the spawn gate, warnings, the ledger, sub-agent usage.

Hook inputs have the shapes of Claude Code's hooks reference (common fields
``session_id``, ``transcript_path``, ``cwd``, ``permission_mode``, ``hook_event_name``,
plus each event's own); transcripts are small Claude Code JSONL files written here.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ctxbudget.claude_code.hooks import DEFAULT_REPORT_TOKENS, HookOptions, run_hook
from ctxbudget.cli import hooks as cli_hooks
from ctxbudget.sources.claude_code_agents import find_subagent_transcripts, subagent_usages
from ctxbudget.tracker import Tracker

SID = "0c9f6e2a-5b7d-4e43-9a51-2f7c3b1d8e40"
WINDOW = 200_000
TASK_INPUT = {
    "description": "Review billing refactor",
    "prompt": "Review the refactor of src/billing.py for behaviour changes and report findings.",
    "subagent_type": "code-reviewer",
}


def _record(
    uuid: str, parent: str | None, rtype: str, message: dict[str, Any], **extra: Any
) -> str:
    record = {
        "parentUuid": parent,
        "isSidechain": False,
        "userType": "external",
        "cwd": "/home/dev/proj",
        "sessionId": SID,
        "version": "2.0.50",
        "gitBranch": "main",
        "type": rtype,
        "uuid": uuid,
        "timestamp": f"2025-11-02T10:00:{len(uuid):02d}.000Z",
        "message": message,
        **extra,
    }
    return json.dumps(record)


def _usage(context: int, output: int = 90) -> dict[str, int]:
    return {
        "input_tokens": 8,
        "cache_creation_input_tokens": 1_200,
        "cache_read_input_tokens": context - 1_208,
        "output_tokens": output,
    }


def write_transcript(
    home: Path,
    context_tokens: int,
    *,
    tool: str = "Task",
    model: str = "claude-sonnet-4-5-20250929",
) -> Path:
    """A session whose last API call reported ``context_tokens``; the model has just
    asked for ``tool`` (Claude Code writes that record before PreToolUse runs)."""
    project = home / "projects" / "-home-dev-proj"
    project.mkdir(parents=True, exist_ok=True)
    path = project / f"{SID}.jsonl"
    tool_input = TASK_INPUT if tool in ("Task", "Agent") else {"command": "pytest -q"}
    lines = [
        _record(
            "u1",
            None,
            "user",
            {"role": "user", "content": "Refactor the billing module, then have it reviewed."},
        ),
        _record(
            "a1",
            "u1",
            "assistant",
            {
                "id": "msg_01A",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": "I'll ask a reviewer to check it."}],
                "usage": _usage(context_tokens),
            },
        ),
        _record(
            "a2",
            "a1",
            "assistant",
            {
                "id": "msg_01A",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [
                    {"type": "tool_use", "id": "toolu_01Rev", "name": tool, "input": tool_input}
                ],
                "usage": _usage(context_tokens, 160),
            },
        ),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def payload(event: str, transcript: Path | str, **fields: Any) -> dict[str, Any]:
    return {
        "session_id": SID,
        "transcript_path": str(transcript),
        "cwd": "/home/dev/proj",
        "permission_mode": "default",
        "hook_event_name": event,
        **fields,
    }


def pre_tool_use(transcript: Path | str, tool: str = "Task") -> dict[str, Any]:
    tool_input = TASK_INPUT if tool in ("Task", "Agent") else {"command": "pytest -q"}
    return payload(
        "PreToolUse", transcript, tool_name=tool, tool_input=tool_input, tool_use_id="toolu_01Rev"
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "claude-home"  # $CLAUDE_CONFIG_DIR (conftest)


def hook(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    event: str,
    stdin: dict[str, Any] | str | bytes,
    *options: str,
) -> tuple[int, str, str]:
    """``ctxbudget hook EVENT`` in-process, with ``stdin`` as the hook input."""
    raw = (
        stdin
        if isinstance(stdin, bytes)
        else (stdin if isinstance(stdin, str) else json.dumps(stdin)).encode()
    )
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    code = cli_hooks.main(["hook", event, *options])
    out, err = capsys.readouterr()
    return code, out, err


def stored_events(kind: str) -> list[dict[str, Any]]:
    with Tracker() as tracker:
        return [e.data for e in tracker.open(SID).events(types=[kind])]


# -- pre-tool-use: the spawn gate ---------------------------------------------------------


@pytest.mark.parametrize("tool", ["Task", "Agent"])
def test_sub_agent_refused_at_96_percent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path, tool: str
) -> None:
    path = write_transcript(home, 192_000, tool=tool)  # 96% of 200k
    code, out, err = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path, tool))
    assert code == 2
    assert out == ""
    assert "sub-agent 'code-reviewer' not started" in err
    assert "blocked threshold (95%)" in err
    assert "/compact" in err


def test_sub_agent_allowed_below(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 160_000)  # 80%: + prompt + 5,000 stays under 95%
    assert hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path)) == (0, "", "")


def test_the_estimate_is_the_prompt_plus_the_report_budget(home: Path) -> None:
    # 184,000 + 5,000 + prompt < 190,000 (95%): allowed; with a 10,000 report: refused.
    path = write_transcript(home, 184_000)
    raw = json.dumps(pre_tool_use(path))
    with Tracker(store="memory://") as tracker:
        assert run_hook("pre-tool-use", raw, tracker).exit_code == 0
    # a store of its own: in the first, this spawn's room is reserved already
    with Tracker(store="memory://") as tracker:
        bigger = HookOptions(report_tokens=2 * DEFAULT_REPORT_TOKENS)
        assert run_hook("pre-tool-use", raw, tracker, bigger).exit_code == 2


@pytest.mark.parametrize("tool", ["Bash", "Read", "Edit", "mcp__github__create_issue"])
def test_other_tools_always_pass_without_reading_the_transcript(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path, tool: str
) -> None:
    path = write_transcript(home, 199_000, tool=tool)

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the transcript must not be read for other tools")

    monkeypatch.setattr(Tracker, "load", no_load)
    assert hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path, tool)) == (0, "", "")


@pytest.mark.parametrize(
    "stdin", [b"", b"{not json", b"[1, 2]", b'"PreToolUse"', b"\xff\xfe\x00garbage", b"{}"]
)
def test_malformed_input_never_blocks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: bytes
) -> None:
    for event in cli_hooks.HOOK_EVENTS:
        assert hook(monkeypatch, capsys, event, stdin) == (0, "", "")


def test_debug_line_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CTXBUDGET_DEBUG", "1")
    code, out, err = hook(monkeypatch, capsys, "pre-tool-use", b"{not json")
    assert (code, out) == (0, "")
    assert err.startswith("ctxbudget hook: the hook input is not JSON")


def test_a_missing_transcript_or_an_internal_failure_blocks_no_other_tool(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    gone = home / "projects" / "nowhere" / f"{SID}.jsonl"
    for event in cli_hooks.HOOK_EVENTS:  # a spawn is refused: tests/test_hooks_robust.py
        if event != "pre-tool-use":
            assert hook(monkeypatch, capsys, event, pre_tool_use(gone))[0] == 0
    assert hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(gone, "Bash")) == (0, "", "")

    path = write_transcript(home, 199_000)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("ctxbudget.claude_code.hook_session.read_figure", broken)
    for event in cli_hooks.HOOK_EVENTS:
        if event != "pre-tool-use":
            assert hook(monkeypatch, capsys, event, pre_tool_use(path))[0] == 0
    # A spawn gate that cannot decide refuses, saying why (tests/test_hooks_robust.py).
    code, _, err = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path))
    assert code == 2 and "could not decide" in err and "disk on fire" in err
    assert hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path, "Bash"))[0] == 0
    monkeypatch.setenv("CTXBUDGET_STORE", "nosuchscheme://x")  # the store cannot even open
    assert hook(monkeypatch, capsys, "pre-compact", payload("PreCompact", path))[0] == 0


def test_bad_options_and_unknown_events_are_non_blocking_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 192_000)
    code, _, err = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path), "--bogus")
    assert code == 1 and "--bogus" in err
    code, _, err = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path), "--window", "x")
    assert code == 1
    code, _, err = hook(monkeypatch, capsys, "notification", pre_tool_use(path))
    assert code == 1 and "unknown event" in err
    # Claude Code's own event names work too.
    assert hook(monkeypatch, capsys, "PreToolUse", pre_tool_use(path))[0] == 2


def test_policy_options_apply(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 192_000)  # 96% of 200k, but 19% of a 1M window
    code, _, _ = hook(
        monkeypatch, capsys, "pre-tool-use", pre_tool_use(path), "--window", "1000000"
    )
    assert code == 0


def test_stored_session_budgets_apply_and_the_decision_is_recorded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 100_000)
    with Tracker() as tracker:
        session = tracker.load(path)
        session.save()
        session.set_agent_budget("code-reviewer", 3_000)  # less than the 5,000 report
    code, _, err = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path))
    assert code == 2 and "over its budget of 3,000" in err
    gate = stored_events("gate")
    assert gate[-1]["allowed"] is False and gate[-1]["tool_use_id"] == "toolu_01Rev"

    with Tracker() as tracker:
        tracker.open(SID).set_agent_budget("code-reviewer", 50_000)
    assert hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path))[0] == 0
    assert stored_events("gate")[-1]["allowed"] is True
    # An agent the roster does not know is refused, with what to do about it.
    other = pre_tool_use(path)
    other["tool_input"] = {**TASK_INPUT, "subagent_type": "general-purpose"}
    code, _, err = hook(monkeypatch, capsys, "pre-tool-use", other)
    assert code == 2 and "has no budget" in err


def test_as_a_real_process(home: Path, tmp_path: Path) -> None:
    """What Claude Code runs: a process, JSON on stdin, the exit code and stderr."""
    path = write_transcript(home, 192_000)
    env = {
        "PATH": "/usr/bin:/bin",
        "CTXBUDGET_STORE": f"sqlite:///{tmp_path / 'proc.db'}",
        "HOME": str(tmp_path),
    }
    command = [sys.executable, "-m", "ctxbudget.cli.hooks", "hook", "pre-tool-use"]
    done = subprocess.run(
        command, input=json.dumps(pre_tool_use(path)), capture_output=True, text=True, env=env
    )
    assert done.returncode == 2 and "not started" in done.stderr
    done = subprocess.run(
        command,
        input=json.dumps(pre_tool_use(path, "Bash")),
        capture_output=True,
        text=True,
        env=env,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


# -- user-prompt-submit ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "level"), [(156_000, "warning"), (184_000, "critical"), (194_000, "blocked")]
)
def test_prompt_warning_at_each_level(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    home: Path,
    context: int,
    level: str,
) -> None:
    path = write_transcript(home, context)
    event = payload("UserPromptSubmit", path, prompt="Now add tests for the refund path.")
    code, out, err = hook(monkeypatch, capsys, "user-prompt-submit", event)
    assert (code, err) == (0, "")
    answer = json.loads(out)
    shown = answer["systemMessage"]  # what the user sees
    assert f"{level} level" in shown and f"{context // 2_000}%" in shown and "/compact" in shown
    assert answer["hookSpecificOutput"] == {
        "hookEventName": "UserPromptSubmit",
        # what the model is told: the same, marked as ctxbudget's report (never taken
        # for a fact, never offered by recall)
        "additionalContext": f"<!-- ctxbudget report -->\n{shown}",
    }


def test_no_prompt_warning_below_the_warning_level(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 100_000)
    event = payload("UserPromptSubmit", path, prompt="Carry on.")
    assert hook(monkeypatch, capsys, "user-prompt-submit", event) == (0, "", "")


def test_a_session_stored_before_its_first_answer_is_judged_by_its_models_window(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    """SessionStart stores the session before any answer names the model, with the
    default window (200,000). The hooks that come next judge by the window of the model
    the transcript names (1,000,000 for claude-opus-5-5), not that default: no warning
    at 80% of 200,000, no spawn refused at 97% of it."""
    start = payload("SessionStart", home / "projects" / "-home-dev-proj" / f"{SID}.jsonl")
    assert hook(monkeypatch, capsys, "session-start", {**start, "source": "startup"})[0] == 0
    with Tracker() as tracker:
        assert tracker.open(SID).policy.window == 200_000  # the default, for now
    path = write_transcript(home, 195_000, model="claude-opus-5-5")
    code, out, err = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path))
    assert code == 0 and "not started" not in err
    code, out, _ = hook(monkeypatch, capsys, "post-tool-use", pre_tool_use(path, "Bash"))
    assert code == 0 and "200,000" not in out and "warning" not in out.lower()
    with Tracker() as tracker:
        stored = tracker.open(SID)
        assert (stored.policy.model, stored.policy.window) == ("claude-opus-5-5", 1_000_000)


# -- pre-compact, session-start ------------------------------------------------------------


def test_compaction_and_the_session_after_it_are_recorded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    start = payload("SessionStart", home / "projects" / "-home-dev-proj" / f"{SID}.jsonl")
    assert hook(monkeypatch, capsys, "session-start", {**start, "source": "startup"})[0] == 0
    assert stored_events("session_started")[0]["trigger"] == "startup"  # registered, empty

    path = write_transcript(home, 170_000)
    event = payload("PreCompact", path, trigger="auto", custom_instructions="")
    assert hook(monkeypatch, capsys, "pre-compact", event) == (0, "", "")
    compaction = stored_events("external_compaction")[-1]
    assert compaction["trigger"] == "auto"
    assert compaction["reported_tokens_before"] == 170_000
    assert compaction["tokens_before"] >= 170_000
    assert stored_events("usage_recorded")  # the transcript was stored with it

    # Claude Code writes its summary after a compact boundary, then starts again.
    with path.open("a", encoding="utf-8") as f:
        f.write(
            json.dumps(
                {
                    "parentUuid": None,
                    "logicalParentUuid": "a2",
                    "isSidechain": False,
                    "type": "system",
                    "subtype": "compact_boundary",
                    "content": "Conversation compacted",
                    "sessionId": SID,
                    "uuid": "b1",
                    "timestamp": "2025-11-02T10:05:00.000Z",
                    "compactMetadata": {"trigger": "auto", "preTokens": 170_000},
                }
            )
            + "\n"
        )
        f.write(
            _record(
                "s1",
                "b1",
                "user",
                {"role": "user", "content": "This session is being continued. Summary: ..."},
                isCompactSummary=True,
            )
            + "\n"
        )
    code, out, _ = hook(monkeypatch, capsys, "session-start", {**start, "source": "compact"})
    assert code == 0
    # the summary lost the request: it comes back as context (tests/test_reinject.py)
    put_back = json.loads(out)["hookSpecificOutput"]["additionalContext"]
    assert "Refactor the billing module" in put_back
    after = stored_events("session_started")[-1]
    assert after["trigger"] == "compact"
    # no usage since the compaction: what the provider counted beyond the transcript
    # before it (nearly all of the 170,000 in this fixture) is estimated to remain
    assert after["tokens"] < compaction["tokens_before"]
    assert after["freed"] == compaction["tokens_before"] - after["tokens"]


# -- sub-agents ------------------------------------------------------------------------------


def _agent_lines(agent_id: str, prompt: str, calls: list[tuple[int, int]]) -> str:
    """A sub-agent transcript: its prompt, then one response per (context, output),
    each split over two records that repeat the usage (the last one is final)."""
    base = {"isSidechain": True, "agentId": agent_id, "sessionId": SID, "userType": "external"}
    lines = [
        {
            **base,
            "type": "user",
            "uuid": f"{agent_id}-u",
            "parentUuid": None,
            "timestamp": "2025-11-02T10:01:00.000Z",
            "message": {"role": "user", "content": prompt},
        },
    ]
    parent = f"{agent_id}-u"
    for n, (context, output) in enumerate(calls):
        for part, out in (("a", output // 3), ("b", output)):
            uuid = f"{agent_id}-{n}{part}"
            lines.append(
                {
                    **base,
                    "type": "assistant",
                    "uuid": uuid,
                    "parentUuid": parent,
                    "timestamp": f"2025-11-02T10:01:{10 + n:02d}.000Z",
                    "message": {
                        "id": f"msg_{agent_id}_{n}",
                        "role": "assistant",
                        "model": "claude-sonnet-4-5-20250929",
                        "content": [{"type": "text", "text": f"step {n}{part}"}],
                        "usage": _usage(context, out),
                    },
                }
            )
            parent = uuid
    return "\n".join(json.dumps(line) for line in lines) + "\n"


def _reviewer_spawned(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> tuple[Path, dict[str, Any]]:
    """A session at 20,000 whose code-reviewer (budget 25,000) was allowed a spawn,
    and the SubagentStop of that sub-agent, which used 21,500 in its own context."""
    path = write_transcript(home, 20_000)
    with Tracker() as tracker:
        tracker.session(SID, model="claude-sonnet-4-5").set_agent_budget("code-reviewer", 25_000)
    assert hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path))[0] == 0
    agents = path.parent / SID / "subagents"
    agents.mkdir(parents=True)
    agent_file = agents / "agent-a1b2c3d.jsonl"
    agent_file.write_text(_agent_lines("a1b2c3d", TASK_INPUT["prompt"], [(21_500, 350)]))
    stop = payload(
        "SubagentStop",
        path,
        agent_id="a1b2c3d",
        agent_type="code-reviewer",
        agent_transcript_path=str(agent_file),
        tool_use_id="toolu_01Rev",
    )
    return path, stop


def _result_arrives(path: Path, tool_use_id: str) -> None:
    """The main agent's next request carries the sub-agent's report: its tool result
    is written to the main transcript (after SubagentStop and PostToolUse)."""
    record = {
        "type": "user",
        "uuid": f"result-{tool_use_id}",
        "sessionId": SID,
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tool_use_id, "content": "OK."}],
        },
    }
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def test_an_agents_budget_counts_what_its_finished_sub_agents_used(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    """Once a spawn's result is in the main context, its reservation no longer counts:
    the sub-agent's recorded context does, so the agent's budget does not start over."""
    path, stop = _reviewer_spawned(monkeypatch, capsys, home)
    assert hook(monkeypatch, capsys, "subagent-stop", stop)[0] == 0
    _result_arrives(path, "toolu_01Rev")
    again = {**pre_tool_use(path), "tool_use_id": "toolu_02Rev"}
    code, _, err = hook(monkeypatch, capsys, "pre-tool-use", again)
    assert code == 2 and "over its budget of 25,000 (21,500 used)" in err


def test_a_spawns_room_is_held_until_its_result_is_in_the_main_context(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    """Claude Code runs SubagentStop, then PostToolUse, then writes the result with the
    main agent's next request. SubagentStop gave the spawn's room back: in that gap
    the report counted nowhere, and 14 spawns were allowed where 7 fit."""
    path, stop = _reviewer_spawned(monkeypatch, capsys, home)
    with Tracker() as tracker:
        held = tracker.store.reservations(SID)
    assert [r.key for r in held] == ["toolu_01Rev"]
    assert hook(monkeypatch, capsys, "subagent-stop", stop)[0] == 0
    with Tracker() as tracker:
        assert [r.key for r in tracker.store.reservations(SID)] == ["toolu_01Rev"]
    _result_arrives(path, "toolu_01Rev")
    other = {**pre_tool_use(path), "tool_use_id": "toolu_02Rev"}
    hook(monkeypatch, capsys, "pre-tool-use", other)
    with Tracker() as tracker:
        assert "toolu_01Rev" not in [r.key for r in tracker.store.reservations(SID)]


def test_the_last_spawn_of_a_turn_is_confirmed_by_the_next_prompt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    """A turn's last spawn has no later PreToolUse: its hold stayed until the lease
    expired (10 minutes), counted twice beside the report in the transcript. The next
    prompt's hook confirms it once its result is in the context."""
    path, stop = _reviewer_spawned(monkeypatch, capsys, home)
    assert hook(monkeypatch, capsys, "subagent-stop", stop)[0] == 0
    prompt = payload("UserPromptSubmit", path, prompt="Thanks. Now the tests.")
    assert hook(monkeypatch, capsys, "user-prompt-submit", prompt)[0] == 0
    with Tracker() as tracker:  # no result yet: still held
        assert [r.key for r in tracker.store.reservations(SID)] == ["toolu_01Rev"]
    _result_arrives(path, "toolu_01Rev")
    assert hook(monkeypatch, capsys, "user-prompt-submit", prompt)[0] == 0
    with Tracker() as tracker:
        assert tracker.store.reservations(SID) == []


def test_subagent_stop_records_the_agents_own_usage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 120_000)
    agents = path.parent / SID / "subagents"
    agents.mkdir(parents=True)
    agent_file = agents / "agent-a1b2c3d.jsonl"
    agent_file.write_text(
        _agent_lines("a1b2c3d", TASK_INPUT["prompt"], [(18_000, 400), (21_500, 350)])
    )
    event = payload(
        "SubagentStop",
        path,
        stop_hook_active=False,
        agent_id="a1b2c3d",
        agent_type="code-reviewer",
        agent_transcript_path=str(agent_file),
    )
    assert hook(monkeypatch, capsys, "subagent-stop", event) == (0, "", "")
    usage = stored_events("subagent_usage")[-1]
    assert usage["name"] == "code-reviewer"
    assert (usage["context_tokens"], usage["calls"], usage["output_tokens"]) == (21_500, 2, 750)
    assert usage["agent_id"] == "a1b2c3d"

    # Older versions send no agent_transcript_path: found from agent_id.
    del event["agent_transcript_path"]
    assert hook(monkeypatch, capsys, "subagent-stop", event)[0] == 0
    assert len(stored_events("subagent_usage")) == 2


def test_subagent_usages_in_both_layouts(home: Path) -> None:
    path = write_transcript(home, 120_000)
    project = path.parent
    nested = project / SID / "subagents"
    nested.mkdir(parents=True)
    (nested / "agent-a1b2c3d.jsonl").write_text(
        _agent_lines("a1b2c3d", TASK_INPUT["prompt"], [(18_000, 400), (21_500, 350)])
    )
    (nested / "agent-a1b2c3d.meta.json").write_text('{"agentType": "code-reviewer"}')
    (nested / "agent-f00d.jsonl").write_text(
        _agent_lines("f00d", "Find the tax tables", [(9_000, 80)])
    )
    (nested / "agent-f00d.meta.json").write_text('{"agentType": "Explore", "spawnDepth": 1}')
    (nested / "agent-acompact-77.jsonl").write_text(_agent_lines("acompact-77", "x", [(50_000, 9)]))
    (nested / "agent-warm.jsonl").write_text(_agent_lines("warm", "Warmup", [(3_000, 1)]))
    # Older layout: in the project directory, belonging by sessionId.
    (project / "agent-0ld1.jsonl").write_text(_agent_lines("0ld1", "Old style task", [(7_000, 70)]))
    foreign = _agent_lines("0th3r", "Someone else's", [(5_000, 50)]).replace(SID, "another-session")
    (project / "agent-0th3r.jsonl").write_text(foreign)

    found = {p.name for p in find_subagent_transcripts(path)}
    assert found == {
        "agent-a1b2c3d.jsonl",
        "agent-f00d.jsonl",
        "agent-warm.jsonl",
        "agent-0ld1.jsonl",
    }
    usages = {u.name: u for u in subagent_usages(path)}
    assert set(usages) == {"code-reviewer", "Explore", "agent-0ld1"}
    reviewer = usages["code-reviewer"]  # named after the Task call that started it
    assert (reviewer.context_tokens, reviewer.calls, reviewer.output_tokens) == (21_500, 2, 750)
    assert usages["Explore"].context_tokens == 9_000
    assert subagent_usages(project / "no-such-session.jsonl") == []


def test_budget_lists_sub_agents_apart_from_what_adds_up_to_the_context(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sub-agent's own context is not in this one: ``budget`` lists it apart, and the
    rows of this context with the provider's overhead add up to the figure."""
    from conftest import run_cli

    path = write_transcript(home, 120_000)
    nested = path.parent / SID / "subagents"
    nested.mkdir(parents=True)
    (nested / "agent-f00d.jsonl").write_text(
        _agent_lines("f00d", "Find the tax tables", [(9_000, 80)])
    )
    code, out, err = run_cli(capsys, "budget", str(path))
    assert code == 0, err
    here, apart = out.split("By agent, in this context\n", 1)[1].split("\n\nSub-agents", 1)
    rows = [int(line.rsplit(None, 1)[-1].replace(",", "")) for line in here.splitlines()]
    _, tokens, _ = run_cli(capsys, "tokens", str(path), "--json")
    assert sum(rows) == json.loads(tokens)["used_tokens"]
    assert "agent-f00d" in apart and "9,0" in apart  # its own context, 9,000 and its answer


def test_agents_already_in_the_main_transcript_are_not_counted_twice(home: Path) -> None:
    path = write_transcript(home, 120_000)
    inline = _agent_lines("a1b2c3d", TASK_INPUT["prompt"], [(18_000, 400)])
    with path.open("a", encoding="utf-8") as f:
        f.write(inline)  # the older layout: sidechain records in the main file
    nested = path.parent / SID / "subagents"
    nested.mkdir(parents=True)
    (nested / "agent-a1b2c3d.jsonl").write_text(inline)
    assert subagent_usages(path) == []


def test_plugin_session_start_says_how_to_install_the_mcp_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ctxbudget.claude_code import hook_compaction

    start = {"session_id": SID, "hook_event_name": "SessionStart", "source": "startup"}
    monkeypatch.setattr(hook_compaction, "mcp_installed", lambda: False)
    code, out, _ = hook(monkeypatch, capsys, "session-start", start, "--plugin")
    assert code == 0 and 'pip install \\"ctxbudget[mcp]\\"' in out
    assert "systemMessage" in json.loads(out)
    # settings.json hooks registered no MCP server: nothing to say there
    code, out, _ = hook(monkeypatch, capsys, "session-start", start)
    assert code == 0 and "ctxbudget[mcp]" not in out
    monkeypatch.setattr(hook_compaction, "mcp_installed", lambda: True)
    code, out, _ = hook(monkeypatch, capsys, "session-start", start, "--plugin")
    assert "ctxbudget[mcp]" not in out


def test_a_session_the_hooks_registered_is_read_by_its_id_from_its_transcript(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    # session-start stores the session with its usages alone: by its id, tokens and
    # the gate read its transcript (as the MCP tools do), not an empty stored context
    from conftest import run_cli

    path = write_transcript(home, 170_000)
    start = payload("SessionStart", path, source="startup")
    assert hook(monkeypatch, capsys, "session-start", start)[0] == 0
    _, by_file, _ = run_cli(capsys, "tokens", str(path), "--json")
    code, by_id, err = run_cli(capsys, "tokens", SID, "--json")
    assert code == 0, err
    assert json.loads(by_id)["used_tokens"] == json.loads(by_file)["used_tokens"] > 160_000
    _, by_prefix, _ = run_cli(capsys, "tokens", SID[:8], "--json")  # as `sessions` lists it
    assert json.loads(by_prefix)["used_tokens"] == json.loads(by_file)["used_tokens"]
    code, _, err = run_cli(capsys, "gate", SID, "--agent", "reviewer", "--tokens", "40000")
    assert code != 0 and "gate: deny" in err  # 170k + 40k does not fit in 200k


def test_a_session_the_hooks_registered_in_a_window_is_read_in_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    # the window the hooks were given is the session's: read from its transcript by
    # its id, the gate refuses what the hook refuses
    from conftest import run_cli

    path = write_transcript(home, 150_000)
    start = payload("SessionStart", path, source="startup")
    assert hook(monkeypatch, capsys, "session-start", start, "--window", "180000")[0] == 0
    code, out, err = run_cli(capsys, "tokens", SID, "--json")
    assert code == 0, err
    assert json.loads(out)["max_tokens"] == 180_000
    code, _, err = run_cli(capsys, "gate", SID, "--agent", "reviewer", "--tokens", "40000")
    assert code != 0 and "180,000" in err  # 150k + 40k is over 180k, not 200k
