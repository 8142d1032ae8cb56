"""The hooks of one Claude Code session run at once, in many processes, on one store:
the spawn gate never grants more than fits (even when SessionStart never stored the
session), each API call's usage is recorded once whichever hook gets there first, and
a write holding the store past its busy timeout does not refuse a spawn.

The multi-process tests assert invariants of what the store holds, never timings.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, run_in_processes
from test_hooks import SID, payload, pre_tool_use, write_transcript

from ctxbudget.claude_code import hook_session
from ctxbudget.claude_code.hooks import HookOptions, run_hook
from ctxbudget.errors import StoreError
from ctxbudget.store.sqlite import SQLiteStore
from ctxbudget.tracker import Tracker

PROCESSES = 12
LIMIT = 190_000  # the gate's: 95% of the 200,000 window


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "claude-home"  # $CLAUDE_CONFIG_DIR (conftest)


def _hook_worker(
    url: str, cache: str, event: str, hook_input: dict[str, Any], start: Any, out: Any
) -> None:
    start.wait()  # all at once
    with Tracker(store=url) as tracker:
        result = run_hook(event, json.dumps(hook_input), tracker, HookOptions(cache_dir=cache))
    out.put((hook_input.get("tool_use_id"), result.exit_code, result.stderr))


def _run_hooks(url: str, cache: str, event: str, inputs: list[dict[str, Any]]) -> list[Any]:
    """``ctxbudget hook EVENT`` in one process per input, started together."""
    return run_in_processes(_hook_worker, [(url, cache, event, i) for i in inputs], together=True)


def _events(url: str, kind: str) -> list[dict[str, Any]]:
    with Tracker(store=url) as tracker:
        return [e.data for e in tracker.store.events(SID, types=[kind])]


def _answer(path: Path, n: int, context: int) -> None:
    """Append one exchange: a prompt, then the API call ``msg_<n>`` reporting
    ``context``."""
    parent = "a2" if n == 2 else f"answer{n - 1}"  # write_transcript's last record, or ours
    records = [
        {
            "type": "user",
            "uuid": f"prompt{n}",
            "parentUuid": parent,
            "message": {"role": "user", "content": f"Step {n}."},
        },
        {
            "type": "assistant",
            "uuid": f"answer{n}",
            "parentUuid": f"prompt{n}",
            "message": {
                "id": f"msg_{n}",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [{"type": "text", "text": f"Step {n} done."}],
                "usage": {"input_tokens": 8, "cache_read_input_tokens": context - 8},
            },
        },
    ]
    with path.open("a", encoding="utf-8") as f:
        for record in records:
            common = {"isSidechain": False, "sessionId": SID, "cwd": "/home/dev/proj"}
            f.write(json.dumps({**common, **record}) + "\n")


def _agent_stop(path: Path, n: int) -> dict[str, Any]:
    """SubagentStop of sub-agent ``n`` (its transcript: a prompt and one answer)."""
    agent = path.parent / f"agent-s{n}.jsonl"
    base = {"isSidechain": True, "agentId": f"s{n}", "sessionId": SID}
    lines = [
        {**base, "type": "user", "message": {"role": "user", "content": "Review it."}},
        {
            **base,
            "type": "assistant",
            "message": {
                "id": f"msg_s{n}",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [{"type": "text", "text": "Reviewed."}],
                "usage": {"input_tokens": 3_000, "output_tokens": 100},
            },
        },
    ]
    agent.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return payload(
        "SubagentStop",
        path,
        agent_id=f"s{n}",
        agent_type="code-reviewer",
        agent_transcript_path=str(agent),
        stop_hook_active=False,
    )


# -- the spawn gate of a session SessionStart never stored ------------------------------


@pytest.mark.concurrency
def test_gates_at_once_on_a_session_never_registered_grant_only_what_fits(
    home: Path, tmp_path: Path, shared_url: str
) -> None:
    """Hooks installed mid-session (or a SessionStart that failed): the first gates
    store the session, as SessionStart would, and every allowed spawn holds a
    reservation. Before, with no stored row, all 12 were allowed, none reserved."""
    url = shared_url
    path = write_transcript(home, 150_000)  # room for about 7 spawns of ~5,000
    inputs = [{**pre_tool_use(path), "tool_use_id": f"toolu_{n:02d}"} for n in range(PROCESSES)]
    results = _run_hooks(url, str(tmp_path / "cache"), "pre-tool-use", inputs)
    assert {code for _, code, _ in results} <= {0, 2}
    allowed = {key for key, code, _ in results if code == 0}
    with Tracker(store=url) as tracker:
        held = tracker.store.reservations(SID, "gate:")
        assert [s.id for s in tracker.store.list_sessions()] == [SID]  # stored once
    assert {r.key for r in held} == allowed  # every allowed spawn holds its room
    assert 0 < len(allowed) < PROCESSES  # the room ran out: some were refused
    gates = _events(url, "gate")
    assert len(gates) == PROCESSES  # every decision is in the ledger
    used = max(g["used_tokens"] for g in gates)
    assert used + sum(r.tokens for r in held) < LIMIT
    assert len(_events(url, "session_created")) == 1


@pytest.mark.concurrency
def test_a_sessions_row_stored_by_many_hooks_at_once_is_stored_once(
    home: Path, tmp_path: Path, shared_url: str
) -> None:
    """Sibling sub-agents stop before any SessionStart stored the session: one hook
    stores the row, the others write nothing over it (an empty row written over it
    took back the calls recorded, which were then recorded again)."""
    url = shared_url
    path = write_transcript(home, 60_000)
    _answer(path, 2, 62_000)
    inputs = [_agent_stop(path, n) for n in range(PROCESSES)]
    results = _run_hooks(url, str(tmp_path / "cache"), "subagent-stop", inputs)
    assert {code for _, code, _ in results} == {0}
    assert len(_events(url, "session_created")) == 1
    assert len(_events(url, "subagent_usage")) == PROCESSES
    assert sum(e["calls_since_last"] for e in _events(url, "usage_recorded")) == 2


# -- each API call's usage, once ----------------------------------------------------------


@pytest.mark.concurrency
def test_sibling_stops_at_once_record_each_new_call_once(
    home: Path, tmp_path: Path, shared_url: str
) -> None:
    """The transcript grew by three calls since SessionStart, then 12 sub-agents stop
    together: their hooks all read the new calls, and one records them. Before, the
    hooks' own memory decided, unlocked, and call 4 was recorded up to 8 times."""
    url = shared_url
    cache = str(tmp_path / "cache")
    path = write_transcript(home, 60_000)
    start = payload("SessionStart", path, source="startup")
    assert _run_hooks(url, cache, "session-start", [start])[0][1] == 0
    for n in (2, 3, 4):
        _answer(path, n, 60_000 + 2_000 * n)
    results = _run_hooks(url, cache, "subagent-stop", [_agent_stop(path, n) for n in range(12)])
    assert {code for _, code, _ in results} == {0}
    usage = _events(url, "usage_recorded")
    assert [e["call"] for e in usage] == [1, 4]
    assert [e["calls_since_last"] for e in usage] == [1, 3]


def test_a_call_is_recorded_once_whatever_the_hook_remembers(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    """What the hooks recorded is the store's to say, not the hook's cache: a hook with
    a cache of its own (another install, the cache cleared) records no call the hooks
    recorded. ``tokens --record`` still writes its point per call (the history)."""
    path = write_transcript(home, 60_000)
    _answer(path, 2, 62_000)
    start = json.dumps(payload("SessionStart", path, source="startup"))
    stop = json.dumps(_agent_stop(path, 1))
    with Tracker() as tracker:
        first = HookOptions(cache_dir=str(tmp_path / "cache-a"))
        assert run_hook("session-start", start, tracker, first).exit_code == 0
        other = HookOptions(cache_dir=str(tmp_path / "cache-b"))
        assert run_hook("subagent-stop", stop, tracker, other).exit_code == 0
    recorded = run_cli(capsys, "tokens", str(path), "--record")
    assert recorded[0] == 0, recorded[2]
    with Tracker() as tracker:
        usage = tracker.store.events(SID, types=["usage_recorded"])
    hooks = [e.data for e in usage if "calls_since_last" in e.data]
    assert [(d["call"], d["calls_since_last"]) for d in hooks] == [(2, 2)]  # SessionStart's
    assert len(usage) - len(hooks) == 2  # --record's point per call
    history = json.loads(run_cli(capsys, "tokens", SID, "--history", "--json")[1])["history"]
    assert [p["reported_tokens"] for p in history if not p.get("now")][-2:] == [60_000, 62_000]


def test_a_full_write_keeps_the_calls_hooks_recorded_since_it_read_the_row(
    home: Path, tmp_path: Path
) -> None:
    """A process that opened the session before a hook recorded a call writes the
    session's figures: the count of recorded calls stays, or the call would be
    recorded again."""
    path = write_transcript(home, 60_000)
    start = json.dumps(payload("SessionStart", path, source="startup"))
    first = HookOptions(cache_dir=str(tmp_path / "cache-a"))
    other = HookOptions(cache_dir=str(tmp_path / "cache-b"))
    with Tracker() as tracker:
        assert run_hook("session-start", start, tracker, first).exit_code == 0
        opened = tracker.open(SID)  # read now, written after the hook below
        _answer(path, 2, 62_000)
        stop = json.dumps(_agent_stop(path, 1))
        assert run_hook("subagent-stop", stop, tracker, first).exit_code == 0
        opened.save()
        assert run_hook("subagent-stop", stop, tracker, other).exit_code == 0
        calls = [e.data["call"] for e in tracker.store.events(SID, types=["usage_recorded"])]
    assert calls == [1, 2]


# -- a long write of another process ----------------------------------------------------


@contextmanager
def _another_writer(url: str) -> Iterator[Callable[[], None]]:
    """Another process's long write holding the store's write lock (SQLite's BEGIN
    IMMEDIATE; PostgreSQL's schema lock); yields what ends it."""
    if url.startswith("sqlite:"):
        writer = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")

        def commit() -> None:
            writer.execute("COMMIT")

        try:
            yield commit
        finally:
            writer.close()
        return
    import psycopg

    from ctxbudget.store._postgres_schema import WRITE_LOCK, target

    found = target(url)
    with psycopg.connect(found.conninfo) as conn:  # not autocommit: a transaction
        conn.execute(WRITE_LOCK, (found.schema,))
        yield conn.commit


def test_a_gate_waits_out_a_write_holding_the_store_past_its_busy_timeout(
    monkeypatch: pytest.MonkeyPatch, home: Path, tmp_path: Path, shared_url: str
) -> None:
    """Another process holds the store's write lock longer than the busy timeout (a
    big ``tokens --record``, one transaction): the gate's reservation fails once for
    real ("database is locked"; PostgreSQL: "held the store"), is asked again, and the
    spawn is decided (before, it was refused as undecided)."""
    from ctxbudget.store import Store, open_store
    from ctxbudget.store.postgres import PostgresStore

    url = shared_url
    path = write_transcript(home, 100_000)
    monkeypatch.setattr(hook_session, "STORE_FIRST_PAUSE", 0.0)
    options = HookOptions(cache_dir=str(tmp_path / "cache"))
    store: Store = (
        SQLiteStore(url, busy_timeout_ms=50)
        if url.startswith("sqlite:")
        else PostgresStore(url, lock_timeout_ms=50)
    )
    with Tracker(store=store) as tracker:
        start = json.dumps(payload("SessionStart", path, source="startup"))
        assert run_hook("session-start", start, tracker, options).exit_code == 0
        with _another_writer(url) as end_the_write:
            real = type(store).reserve
            failures: list[str] = []

            def reserve(self: Store, *args: Any, **kwargs: Any) -> Any:
                try:
                    return real(self, *args, **kwargs)
                except StoreError as exc:
                    failures.append(str(exc))
                    end_the_write()
                    raise

            monkeypatch.setattr(type(store), "reserve", reserve)
            result = run_hook("pre-tool-use", json.dumps(pre_tool_use(path)), tracker, options)
            held = tracker.store.reservations(SID, "gate:")
    assert len(failures) == 1 and ("locked" in failures[0] or "held the store" in failures[0])
    assert result.exit_code == 0, result.stderr
    assert [r.key for r in held] == ["toolu_01Rev"]
    with open_store(url) as again:
        assert [r.key for r in again.reservations(SID, "gate:")] == ["toolu_01Rev"]


def test_after_an_upgrade_the_hooks_record_no_call_the_earlier_version_did(
    home: Path, tmp_path: Path
) -> None:
    """An earlier ctxbudget counted the calls its hooks recorded in the hook's cache
    file only: a session under way at the upgrade had its last calls recorded again."""
    path = write_transcript(home, 60_000)
    _answer(path, 2, 62_000)
    options = HookOptions(cache_dir=str(tmp_path / "cache"))
    start = json.dumps(payload("SessionStart", path, source="startup"))
    with Tracker() as tracker:
        assert run_hook("session-start", start, tracker, options).exit_code == 0
        # as the earlier version left it: the count in the cache file, none in the row
        stored = tracker.store.get_session(SID)
        stored.meta = {k: v for k, v in stored.meta.items() if k != "hook_recorded_calls"}
        tracker.store.update_session(stored)
    (cache,) = [p for p in (tmp_path / "cache").rglob("*.json") if "transcript" in p.read_text()]
    data = json.loads(cache.read_text())
    cache.write_text(json.dumps({**data, "recorded_calls": 2}))
    with Tracker() as tracker:
        stop = json.dumps(_agent_stop(path, 1))
        assert run_hook("subagent-stop", stop, tracker, options).exit_code == 0
        usage = tracker.store.events(SID, types=["usage_recorded"])
    assert len(usage) == 1
