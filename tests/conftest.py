from __future__ import annotations

import multiprocessing
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

FIXTURES = Path(__file__).parent / "fixtures"

# Hypothesis budgets for the property tests that read their size from the profile
# (tests/test_readers_fuzz.py: 300 examples per test by default, which is "ci"):
# python -m pytest tests/test_readers_fuzz.py --hypothesis-profile=long  (3,000 each)
settings.register_profile("ci", max_examples=300, deadline=None)
settings.register_profile("long", max_examples=3000, deadline=None)


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own default store and an empty ~/.claude."""
    monkeypatch.setenv("CTXBUDGET_STORE", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-home"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path / "cache"))  # never ~/.cache


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def looked_up(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names ``importlib.util.find_spec`` is asked for during the test, in order."""
    import importlib.util

    names: list[str] = []
    real = importlib.util.find_spec

    def counting(name: str, *args: Any, **kwargs: Any) -> Any:
        names.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", counting)
    return names


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the ctxbudget command in-process: exit code, stdout, stderr."""
    from ctxbudget.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# Environment the official SDKs read: cleared so tests reach only their local server.
SDK_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_CUSTOM_HEADERS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
)


@contextmanager
def local_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def png(width: int, height: int) -> bytes:
    """A PNG of ``width`` × ``height`` pixels (a gradient, so that it is no blank one),
    built here: its header is what a counter of images reads."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b"".join(b"\x00" + bytes([y % 256, 90, 160]) * width for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def run_in_processes(
    target: Callable[..., None], args: list[tuple[Any, ...]], *, together: bool = False
) -> list[Any]:
    """``target(*a, out)`` in one process per ``a`` of ``args`` (``together``:
    ``target(*a, start, out)``, ``start`` a barrier they all wait at, to run at once);
    what each put on ``out``, once every process exited cleanly."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    out = ctx.Queue()
    start = (ctx.Barrier(len(args)),) if together else ()
    workers = [ctx.Process(target=target, args=(*a, *start, out)) for a in args]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    return results


# -- PostgreSQL: the machine's server, a fresh schema per test -------------------------------

POSTGRES_ENV = "CTXBUDGET_TEST_POSTGRES_URL"
POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
_postgres_absent: list[str] = []  # the reason, once a first test found no server


def postgres_server() -> str:
    """The URL of the PostgreSQL server the tests use (``$CTXBUDGET_TEST_POSTGRES_URL``,
    else ``postgresql://postgres@127.0.0.1:5432/test``); the calling test SKIPS, saying
    why, when psycopg is not installed or no server answers there."""
    url = os.environ.get(POSTGRES_ENV, "").strip() or POSTGRES_DEFAULT
    if _postgres_absent:
        pytest.skip(_postgres_absent[0])
    try:
        import psycopg
    except ImportError:
        _postgres_absent.append("psycopg is not installed: pip install -e '.[postgres]'")
        pytest.skip(_postgres_absent[0])
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _postgres_absent.append(
            f"no PostgreSQL server at {url} ({first}); set {POSTGRES_ENV} to test against one"
        )
        pytest.skip(_postgres_absent[0])
    return url


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A store URL on the tests' server in a schema of its own, dropped afterwards
    (skips as ``postgres_server`` does)."""
    import psycopg
    from psycopg import sql

    server = postgres_server()
    name = f"ctxbudget_test_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{server}{'&' if '?' in server else '?'}schema={name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new store that processes share: a SQLite file, a PostgreSQL schema (skipped,
    saying why, where there is no server)."""
    if request.param == "postgres":
        with postgres_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'shared.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL store URL (its own schema, dropped after the test)."""
    with postgres_schema() as url:
        yield url
