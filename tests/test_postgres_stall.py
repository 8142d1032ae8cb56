"""A PostgreSQL store whose network stalls: the connection's limits (libpq's connect
timeout, keepalives and TCP user timeout; the server's statement and
idle-in-transaction timeouts, each overridden by the URL), and a hook that answers
within its deadline, refusing the spawn, while the server ends the stalled session
and gives its write lock up to the other hosts."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_hooks import SID, payload, pre_tool_use, write_transcript

from ctxbudget.claude_code.hooks import HookOptions, run_hook
from ctxbudget.errors import ConfigurationError
from ctxbudget.store._postgres_connection import LIMITS, SESSION_LIMITS, connection_limits
from ctxbudget.store._postgres_schema import target
from ctxbudget.tracker import Tracker

psycopg = pytest.importorskip("psycopg")


@contextmanager
def stall_proxy(server: str, after: bytes, *, give_up: float = 20.0) -> Iterator[str]:
    """A TCP proxy to ``server``'s host and port that forwards what the client sends
    until a chunk holding ``after``, then nothing more, keeping every socket open (a
    network stall, each connection's). The server's answers still come through. After
    ``give_up`` seconds it closes everything (a test without the fix fails, not hangs).
    Yields ``server`` pointed at the proxy."""
    parts = urlsplit(server)
    upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    sockets: list[socket.socket] = [listener]
    done = threading.Event()

    def pump(source: socket.socket, sink: socket.socket, watch: bool) -> None:
        frozen = False
        try:
            while not done.is_set():
                data = source.recv(65536)
                if not data:
                    return
                if not frozen:
                    sink.sendall(data)
                    frozen = watch and after in data
        except OSError:
            return

    def serve() -> None:
        while not done.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream_socket = socket.create_connection(upstream)
            sockets.extend((client, upstream_socket))
            for args in ((client, upstream_socket, True), (upstream_socket, client, False)):
                threading.Thread(target=pump, args=args, daemon=True).start()

    def close_all() -> None:
        done.set()
        for s in list(sockets):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked on it
            s.close()

    threading.Thread(target=serve, daemon=True).start()
    timer = threading.Timer(give_up, close_all)
    timer.start()
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
    try:
        yield parts._replace(netloc=netloc).geturl()
    finally:
        timer.cancel()
        close_all()


def test_connection_limits_are_set_unless_the_url_gives_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    plain = target("postgresql://u@h:5432/db?schema=s")
    assert connection_limits(psycopg, plain, 10) == {**LIMITS, "connect_timeout": 10}
    assert LIMITS["keepalives"] == 1 and LIMITS["tcp_user_timeout"] > 0
    given = target(
        "postgresql://u@h/db?keepalives_idle=3&connect_timeout=4&tcp_user_timeout=0"
        "&statement_timeout=7s&idle_in_transaction_session_timeout=2500"
    )
    limits = connection_limits(psycopg, given, 10)
    assert not {"keepalives_idle", "connect_timeout", "tcp_user_timeout"} & set(limits)
    assert limits["keepalives_count"] == LIMITS["keepalives_count"]
    assert "statement_timeout" not in given.conninfo  # libpq would refuse it
    assert dict(given.settings) == {
        "statement_timeout": "7s",
        "idle_in_transaction_session_timeout": "2500",
    }
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "3")
    assert "connect_timeout" not in connection_limits(psycopg, plain, 10)
    with pytest.raises(ConfigurationError, match="statement_timeout"):
        target("postgresql://u@h/db?statement_timeout=1;drop")


def test_the_server_ends_what_stalls(postgres_url: str) -> None:
    with Tracker(store=postgres_url) as tracker:
        conn = tracker.store._postgres._conn  # type: ignore[attr-defined]
        shown = {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in SESSION_LIMITS}
    assert shown == {"statement_timeout": "1min", "idle_in_transaction_session_timeout": "10s"}
    url = f"{postgres_url}&statement_timeout=7s&idle_in_transaction_session_timeout=2500"
    with Tracker(store=url) as tracker:
        conn = tracker.store._postgres._conn  # type: ignore[attr-defined]
        shown = {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in SESSION_LIMITS}
    assert shown == {"statement_timeout": "7s", "idle_in_transaction_session_timeout": "2500ms"}


@pytest.mark.parametrize(
    "after",
    [b"pg_advisory_xact_lock", b"search_path"],
    ids=["inside-a-write-holding-the-lock", "outside-a-transaction"],
)
def test_a_stalled_hook_refuses_within_its_deadline_and_the_lock_is_given_up(
    postgres_url: str, tmp_path: Path, after: bytes
) -> None:
    home = tmp_path / "claude-home"
    transcript = write_transcript(home, 150_000)
    with Tracker(store=postgres_url) as tracker:
        started = payload("SessionStart", transcript, source="startup")
        run_hook(
            "SessionStart",
            json.dumps(started),
            tracker,
            HookOptions(cache_dir=str(tmp_path / "c0")),
        )
    stalled_url = f"{postgres_url}&idle_in_transaction_session_timeout=2s"
    with stall_proxy(stalled_url, after) as url:
        began = time.monotonic()
        with Tracker(store=url) as tracker:
            options = HookOptions(cache_dir=str(tmp_path / "c1"), deadline=4)
            result = run_hook("PreToolUse", json.dumps(pre_tool_use(transcript)), tracker, options)
        took = time.monotonic() - began
        assert result.exit_code == 2, result
        assert "could not decide" in result.stderr
        assert "the store did not answer within 4 s" in result.stderr
        assert took < 6, took
        # the server ended the stalled session (2 s of silence in a transaction): its
        # write lock is free for another host's writer, within the store's lock timeout
        with Tracker(store=postgres_url) as tracker:
            tracker.store.append_event(SID, "probe", {})
            assert tracker.store.events(SID, types="probe")


@contextmanager
def silent_server() -> Iterator[str]:
    """A PostgreSQL URL whose "server" takes connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"postgresql://postgres@127.0.0.1:{listener.getsockname()[1]}/test?schema=fix_x"
    finally:
        done.set()
        for s in [listener, *held]:
            s.close()


@pytest.mark.parametrize("where", ["main thread", "worker thread"])
def test_a_hook_gives_up_on_a_silent_server_within_its_deadline(tmp_path: Path, where: str) -> None:
    """The connection attempts of a hook and its retries fit in its deadline, in any
    thread (no alarm there) and on any platform: the spawn is refused saying the server
    cannot be reached. (Before, 3 attempts of 10 s each: 31.5 s.)"""
    transcript = write_transcript(tmp_path / "claude-home", 150_000)
    results: list[tuple[float, int, str]] = []

    def hook(url: str) -> None:
        began = time.monotonic()
        with Tracker(store=url) as tracker:
            options = HookOptions(cache_dir=str(tmp_path / "c"), deadline=5)
            result = run_hook("PreToolUse", json.dumps(pre_tool_use(transcript)), tracker, options)
        results.append((time.monotonic() - began, result.exit_code, result.stderr))

    with silent_server() as url:
        if where == "main thread":
            hook(url)
        else:
            worker = threading.Thread(target=hook, args=(url,))
            worker.start()
            worker.join(60)
    [(took, code, stderr)] = results
    assert code == 2 and "could not decide" in stderr
    assert "cannot reach the PostgreSQL server (connection timeout expired)" in stderr
    assert took < 5, took
