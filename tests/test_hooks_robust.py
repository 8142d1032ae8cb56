"""Hooks that fail closed where they gate, never block by accident, lose no event,
and read a transcript incrementally (issue 11, points 3 and 4).

Transcripts are small Claude Code JSONL files written here (``test_hooks`` helpers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_hooks import hook, payload, pre_tool_use, stored_events, write_transcript

from ctxbudget.claude_code import hook_io, hook_session
from ctxbudget.claude_code.incremental import HookMemory, read_figure
from ctxbudget.cli import hooks as cli_hooks
from ctxbudget.errors import StoreError
from ctxbudget.tracker import Tracker


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "claude-home"


def _append(path: Path, line: bytes) -> None:
    with path.open("ab") as f:
        f.write(line + b"\n")


def test_invalid_utf8_and_wrong_typed_usage_still_deny_at_96(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 192_000)
    assert hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path))[0] == 2
    _append(path, b'{"type": "user", "message": {"content": "caf\xe9 \xff"}}')
    broken = {
        "type": "assistant",
        "isSidechain": False,
        "parentUuid": "a2",
        "message": {
            "id": "msg_x",
            "role": "assistant",
            "usage": {"input_tokens": "lots", "output_tokens": [1]},
            "content": [{"type": "text", "text": "ok"}],
        },
    }
    _append(path, json.dumps(broken).encode())
    code, _, err = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path))
    assert code == 2 and "not started" in err


def test_store_locked_denies_with_the_reason_or_fails_open(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 100_000)  # the figure alone would allow it
    monkeypatch.setattr(hook_session, "STORE_FIRST_PAUSE", 0.0)

    def locked(self: object, session_id: str) -> None:
        raise StoreError("the database stayed locked by another writer for more than 5 s")

    from ctxbudget.store.sqlite import SQLiteStore

    monkeypatch.setattr(SQLiteStore, "get_session", locked)
    code, _, err = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path))
    assert code == 2 and "store cannot be read" in err and "locked" in err
    assert "sub-agent 'code-reviewer' not started" in err  # its type, not "subagent"
    code, _, err = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path), "--fail-open")
    assert code == 1 and "allowed" in err
    monkeypatch.setenv(hook_io.FAIL_OPEN_ENV, "1")
    assert hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path))[0] == 1


def test_unreadable_transcript_decides_on_the_last_good_figure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 192_000)
    assert hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path))[0] == 2
    path.unlink()
    path.mkdir()  # no longer a file it can read
    code, _, err = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(path))
    assert code == 2 and "not started" in err


def test_a_transcript_never_read_and_unreadable_fails_closed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    """No figure read before and the transcript named cannot be read (gone, a folder):
    the gate cannot decide, so it refuses (unless fail-open); a transcript that holds no
    conversation yet is an empty context, and the spawn goes."""
    for unreadable in (home / "gone.jsonl", home):
        home.mkdir(parents=True, exist_ok=True)
        code, _, err = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(unreadable))
        assert code == 2 and "could not decide" in err and str(unreadable) in err
        allowed = hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(unreadable), "--fail-open")
        assert allowed[0] == 1 and "allowed" in allowed[2]
    empty = home / "new.jsonl"
    empty.write_text("", encoding="utf-8")
    assert hook(monkeypatch, capsys, "pre-tool-use", pre_tool_use(empty))[0] == 0


def _nested(levels: int) -> bytes:
    return b'{"tool_name": "Bash", "x": ' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize("event", cli_hooks.HOOK_EVENTS)
def test_deeply_nested_input_never_blocks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], event: str
) -> None:
    code, _, _ = hook(monkeypatch, capsys, event, _nested(5_000))
    assert code == 0


def test_deeply_nested_spawn_fails_closed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = b'{"tool_name": "Agent", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    code, _, err = hook(monkeypatch, capsys, "pre-tool-use", raw)
    assert code == 2 and "deeper than" in err
    assert hook(monkeypatch, capsys, "pre-tool-use", raw, "--fail-open")[0] == 1


def test_an_event_is_retried_while_the_store_is_briefly_locked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 100_000)
    monkeypatch.setattr(hook_session, "STORE_FIRST_PAUSE", 0.0)
    from ctxbudget.store.sqlite import SQLiteStore

    real = SQLiteStore.append_event
    failures = {"left": 2}

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args[1] == "session_started" and failures["left"]:
            failures["left"] -= 1
            raise StoreError("the database stayed locked by another writer")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SQLiteStore, "append_event", flaky)
    start = payload("SessionStart", path, source="startup")
    assert hook(monkeypatch, capsys, "session-start", start) == (0, "", "")
    assert len(stored_events("session_started")) == 1
    failures["left"] = 10  # locked for longer than the retries: said, not dropped silently
    code, _, err = hook(monkeypatch, capsys, "session-start", start)
    assert code == 1 and "not recorded" in err and "session_started" in err


def test_incremental_figure_equals_a_full_read_after_appends(home: Path, tmp_path: Path) -> None:
    path = write_transcript(home, 120_000)
    memory = HookMemory.load(str(path), str(tmp_path / "cache"))
    first = read_figure(str(path), memory)
    memory.save()
    lines = path.read_text().splitlines()
    for n in range(3):
        record = json.loads(lines[-1])
        record.update(uuid=f"z{n}", parentUuid=record["uuid"])
        record["message"] = {**record["message"], "id": f"msg_z{n}"}
        record["message"]["usage"] = {
            **record["message"]["usage"],
            "cache_read_input_tokens": 130_000 + n,
        }
        user = {
            **record,
            "type": "user",
            "uuid": f"zu{n}",
            "parentUuid": f"z{n}",
            "message": {"role": "user", "content": f"next step {n} " * 40},
        }
        with path.open("a") as f:
            f.write(json.dumps(record) + "\n" + json.dumps(user) + "\n")
        memory = HookMemory.load(str(path), str(tmp_path / "cache"))
        incremental = read_figure(str(path), memory)
        memory.save()
        full = read_figure(str(path), HookMemory(str(tmp_path / "other.json")))
        assert incremental == full
        assert incremental.used_tokens != first.used_tokens
    with Tracker() as tracker:
        assert tracker.load(path).used_tokens == incremental.used_tokens
