"""The store contract, run against every backend, plus SQLite's own promises."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from conftest import postgres_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ctxbudget.store as store_package
from ctxbudget.errors import (
    ConfigurationError,
    MissingExtraError,
    SessionNotFoundError,
    StoreError,
)
from ctxbudget.model import Component, Item, Kind, Layer, Role
from ctxbudget.store import (
    Store,
    StoredSession,
    VersionInfo,
    default_store_url,
    import_driver,
    open_store,
    register_backend,
)
from ctxbudget.store._search import Term, query_terms, rank, word_counts
from ctxbudget.store._sqlite_schema import fts_query
from ctxbudget.store.memory import MemoryStore
from ctxbudget.store.sqlite import SCHEMA_VERSION, SQLiteStore, database_path
from ctxbudget.testing import FakeClock, FaultyStore

BACKENDS = ["memory", "sqlite", "postgres"]


@contextmanager
def backend_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty store of ``backend``; a PostgreSQL one in a schema of its own,
    dropped afterwards (the test skips, saying why, where there is no server)."""
    if backend == "postgres":
        with postgres_schema() as url:
            yield url
    else:
        yield "memory://" if backend == "memory" else f"sqlite:///{tmp_path / 'store.db'}"


@contextmanager
def opened_store(backend: str, tmp_path: Path, **kwargs: Any) -> Iterator[Store]:
    with backend_url(backend, tmp_path) as url, open_store(url, **kwargs) as opened:
        yield opened


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with opened_store(request.param, tmp_path, clock=FakeClock(start=1_000.0, step=1.0)) as s:
        yield s


def session(session_id: str = "s1", at: float = 100.0, **changes: Any) -> StoredSession:
    fields: dict[str, Any] = {
        "id": session_id,
        "name": f"session {session_id}",
        "model": "claude-sonnet-4",
        "source": "/tmp/transcript.jsonl",
        "policy": {"window": 200_000, "thresholds": [0.75, 0.9, 0.95]},
        "created_at": at,
        "updated_at": at,
        "meta": {"host": "a"},
    }
    fields.update(changes)
    return StoredSession(**fields)


def item(text: str, kind: Kind = Kind.USER_TEXT, **changes: Any) -> Item:
    role = {Kind.TOOL_RESULT: Role.TOOL, Kind.TOOL_CALL: Role.ASSISTANT}.get(kind, Role.USER)
    return Item(role=role, kind=kind, text=text, created_at=50.0, **changes)


def snapshot(store: Store, session_id: str) -> tuple[Any, ...]:
    stored = store.get_session(session_id)
    return (
        stored,
        store.load_items(session_id),
        store.item_aggregates(session_id),
        store.events(session_id),
    )


# -- sessions ---------------------------------------------------------------------------


def test_session_round_trip_find_list_delete(store: Store) -> None:
    store.create_session(session("abc123", at=100.0))
    store.create_session(session("abd456", at=300.0, name=None, model=None, source=None))
    store.create_session(session("zzz", at=200.0))

    assert store.get_session("abc123") == session("abc123", at=100.0)
    assert [s.id for s in store.find_sessions("ab")] == ["abd456", "abc123"]
    assert [s.id for s in store.find_sessions("abc")] == ["abc123"]
    assert store.find_sessions("x") == []
    assert [s.id for s in store.list_sessions()] == ["abd456", "zzz", "abc123"]
    assert [s.id for s in store.list_sessions(limit=1)] == ["abd456"]

    changed = session("abc123", at=100.0, updated_at=400.0, context_version=2, policy={"w": 1})
    store.update_session(changed)
    assert store.get_session("abc123") == changed
    assert store.list_sessions()[0].id == "abc123"

    store.delete_session("abc123")
    with pytest.raises(SessionNotFoundError):
        store.get_session("abc123")
    assert [s.id for s in store.list_sessions()] == ["abd456", "zzz"]


def test_find_sessions_treats_like_wildcards_literally(store: Store) -> None:
    store.create_session(session("a_b"))
    store.create_session(session("axb"))
    store.create_session(session("A_B"))
    assert [s.id for s in store.find_sessions("a_")] == ["a_b"]


def test_duplicate_session_is_refused(store: Store) -> None:
    store.create_session(session("dup"))
    with pytest.raises(StoreError, match='session "dup" already exists'):
        store.create_session(session("dup"))


def test_loaded_session_is_a_copy(store: Store) -> None:
    store.create_session(session("s1"))
    loaded = store.get_session("s1")
    loaded.policy["window"] = 1
    assert store.get_session("s1").policy["window"] == 200_000


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get_session("nope"),
        lambda s: s.update_session(session("nope")),
        lambda s: s.delete_session("nope"),
        lambda s: s.append_items("nope", [item("x")]),
        lambda s: s.load_items("nope"),
        lambda s: s.item_aggregates("nope"),
        lambda s: s.append_event("nope", "usage_recorded", {}),
        lambda s: s.events("nope"),
        lambda s: s.events("nope", types=[]),
        lambda s: s.versions("nope"),
        lambda s: s.set_context_version("nope", 1),
        lambda s: s.search_archive("nope", "anything"),
        lambda s: s.search_archive("nope", ""),
    ],
)
def test_unknown_session_is_reported(store: Store, call: Any) -> None:
    with pytest.raises(SessionNotFoundError) as caught:
        call(store)
    message = str(caught.value)
    assert '"nope"' in message and store.url in message and "ctxbudget sessions" in message


# -- items ------------------------------------------------------------------------------


def test_items_round_trip_with_raw_json_and_enums(store: Store) -> None:
    store.create_session(session("s1"))
    items = [
        item("system prompt", Kind.SYSTEM_PROMPT, tokens=12, pinned=True),
        item(
            "ls -la",
            Kind.TOOL_CALL,
            tool="Bash",
            pair_id="call_1",
            tokens=5,
            raw={"type": "tool_use", "input": {"command": "ls -la"}, "n": [1, 2.5, None, True]},
        ),
        item(
            "total 0\n",
            Kind.TOOL_RESULT,
            tool="Bash",
            pair_id="call_1",
            id="fixed-id",
            agent="sub-1",
            phase="explore",
            message_index=3,
            last_used_at=60.0,
            raw=["a", {"b": "ünïcödé 🎉"}],
        ),
        item("no tokens yet", component=Component.KNOWLEDGE_BASE, layer=Layer.PERMANENT),
    ]
    returned = store.append_items("s1", items)

    assert returned is items
    assert all(isinstance(i.id, str) and i.id for i in items)
    assert items[2].id == "fixed-id"
    assert len({i.id for i in items}) == 4
    loaded = store.load_items("s1")
    assert loaded == items
    assert loaded[1].raw == {
        "type": "tool_use",
        "input": {"command": "ls -la"},
        "n": [1, 2.5, None, True],
    }
    assert isinstance(loaded[0].role, Role) and loaded[0].kind is Kind.SYSTEM_PROMPT
    assert loaded[3].component is Component.KNOWLEDGE_BASE and loaded[3].layer is Layer.PERMANENT

    loaded[1].raw["type"] = "changed"
    assert store.load_items("s1")[1].raw["type"] == "tool_use"


def test_items_are_ordered_and_versioned(store: Store) -> None:
    store.create_session(session("s1"))
    store.append_items("s1", [item("a"), item("b")])
    store.append_items("s1", [item("c")])
    store.append_items("s1", [item("kept", id="k")], version=2)
    assert [i.text for i in store.load_items("s1")] == ["a", "b", "c"]
    assert [i.text for i in store.load_items("s1", version=2)] == ["kept"]
    assert store.load_items("s1", version=7) == []

    stored = store.get_session("s1")
    stored.context_version = 2
    store.update_session(stored)
    assert [i.text for i in store.load_items("s1")] == ["kept"]
    assert store.item_aggregates("s1")["items"] == 1


def test_item_ids_are_unique_per_version(store: Store) -> None:
    store.create_session(session("s1"))
    store.append_items("s1", [item("a", id="same")])
    store.append_items("s1", [item("a", id="same")], version=2)  # another version: fine
    fresh = item("b")
    with pytest.raises(StoreError, match="unique within a version"):
        store.append_items("s1", [fresh, item("a", id="same")])
    with pytest.raises(StoreError, match="unique within a version"):
        store.append_items("s1", [item("x", id="twice"), item("y", id="twice")])
    assert fresh.id is None  # a failed append assigns nothing
    assert [i.text for i in store.load_items("s1")] == ["a"]


def test_unstorable_raw_is_a_store_error(store: Store) -> None:
    store.create_session(session("s1"))
    with pytest.raises(StoreError, match=r"raw of item \w+ cannot be stored"):
        store.append_items("s1", [item("a"), item("b", raw={"when": object()})])
    assert store.load_items("s1") == []


def test_aggregates_equal_python_sums(store: Store) -> None:
    store.create_session(session("s1"))
    items = [
        item("sys", Kind.SYSTEM_PROMPT, tokens=100),
        item("call", Kind.TOOL_CALL, tool="Read", tokens=10),
        item("result", Kind.TOOL_RESULT, tool="Read", tokens=900, agent="sub-1"),
        item("call", Kind.TOOL_CALL, tool="Bash", tokens=7),
        item("hi", tokens=3),
        item("uncounted"),
    ]
    store.append_items("s1", items)
    store.append_items("s1", [item("other version", tokens=10_000)], version=2)

    def sums(key: str) -> dict[str, int]:
        result: dict[str, int] = {}
        for i in items:
            value = getattr(i, key)
            if value is not None:
                value = getattr(value, "value", value)
                result[value] = result.get(value, 0) + (i.tokens or 0)
        return result

    aggregates = store.item_aggregates("s1")
    assert aggregates["items"] == len(items)
    assert aggregates["tokens"] == sum(i.tokens or 0 for i in items) == 1020
    assert aggregates["uncounted"] == 1
    assert aggregates["by_component"] == sums("component")
    assert aggregates["by_kind"] == sums("kind")
    assert aggregates["by_tool"] == sums("tool") == {"Read": 910, "Bash": 7}
    assert aggregates["by_agent"] == sums("agent") == {"main": 120, "sub-1": 900}
    assert store.item_aggregates("s1", version=2)["tokens"] == 10_000


def test_empty_session_aggregates(store: Store) -> None:
    store.create_session(session("s1"))
    assert store.item_aggregates("s1") == {
        "items": 0,
        "tokens": 0,
        "uncounted": 0,
        "by_component": {},
        "by_kind": {},
        "by_tool": {},
        "by_agent": {},
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(st.text(), min_size=1, max_size=4),
    raw=json_values,
    kind=st.sampled_from(Kind),
    tool=st.none() | st.text(max_size=8),
)
def test_items_round_trip_property(
    store: Store, texts: list[str], raw: Any, kind: Kind, tool: str | None
) -> None:
    # st.text() includes lone surrogates, which transcripts do contain.
    sid = f"p{len(store.list_sessions(limit=None))}"
    store.create_session(session(sid))
    items = [item(text, kind, tool=tool, raw=raw, tokens=len(text)) for text in texts]
    store.append_items(sid, items)
    assert store.load_items(sid) == items
    aggregates = store.item_aggregates(sid)
    assert aggregates["tokens"] == sum(len(t) for t in texts)
    assert aggregates["by_tool"] == ({} if tool is None else {tool: aggregates["tokens"]})


# -- events -----------------------------------------------------------------------------


def test_events_append_only_and_filtered(store: Store) -> None:
    store.create_session(session("s1"))
    store.create_session(session("s2"))
    first = store.append_event("s1", "session_created", {"model": "m"})
    store.append_event("s2", "session_created", {})
    usage = store.append_event("s1", "usage_recorded", {"input_tokens": 5, "nested": {"a": [1]}})
    crossed = store.append_event("s1", "threshold_crossed", {"level": "warning"})

    assert first.id < usage.id < crossed.id
    assert usage.session_id == "s1" and usage.data == {"input_tokens": 5, "nested": {"a": [1]}}
    all_events = store.events("s1")
    assert [e.type for e in all_events] == [
        "session_created",
        "usage_recorded",
        "threshold_crossed",
    ]
    assert all_events[1] == usage
    assert [e.id for e in store.events("s1", types=["usage_recorded", "threshold_crossed"])] == [
        usage.id,
        crossed.id,
    ]
    assert [e.id for e in store.events("s1", types="usage_recorded")] == [usage.id]
    assert store.events("s1", types=[]) == []
    assert [e.id for e in store.events("s1", since_id=usage.id)] == [crossed.id]
    assert [e.id for e in store.events("s1", limit=2)] == [first.id, usage.id]
    assert not hasattr(store, "update_event") and not hasattr(store, "delete_event")


@pytest.mark.parametrize("backend", BACKENDS)
def test_event_stamps_and_session_activity_use_the_store_clock(
    backend: str, tmp_path: Path
) -> None:
    clock = FakeClock(start=5_000.0)
    with opened_store(backend, tmp_path, clock=clock) as store:
        store.create_session(session("old", at=100.0))
        store.create_session(session("new", at=200.0))
        event = store.append_event("old", "usage_recorded", {})
        assert event.at == 5_000.0
        assert store.get_session("old").updated_at == 5_000.0
        assert [s.id for s in store.list_sessions()] == ["old", "new"]
        clock.advance(10)
        store.append_items("new", [item("x")])
        assert store.get_session("new").updated_at == 5_010.0


def test_unstorable_event_data_is_a_store_error(store: Store) -> None:
    store.create_session(session("s1"))
    with pytest.raises(StoreError, match="data of event 'usage_recorded' cannot be stored"):
        store.append_event("s1", "usage_recorded", {"x": {1, 2}})
    assert store.events("s1") == []


def test_append_events_is_one_write_in_order(store: Store) -> None:
    store.create_session(session("s1", at=100.0))
    store.create_session(session("s2", at=100.0))
    before = store.append_event("s1", "session_created", {})
    batch = [("usage_recorded", {"call": n, "nested": {"a": [n]}}) for n in range(5)]
    batch.append(("threshold_crossed", {"from": "normal", "to": "warning"}))
    appended = store.append_events("s1", batch)

    assert [(e.type, e.data) for e in appended] == batch
    assert [e.session_id for e in appended] == ["s1"] * 6
    ids = [e.id for e in appended]
    assert before.id < ids[0] and ids == sorted(set(ids))
    assert len({e.at for e in appended}) == 1  # one stamp, the store clock's
    assert store.get_session("s1").updated_at == appended[0].at
    assert store.get_session("s2").updated_at == 100.0
    assert store.events("s1") == [before, *appended]
    assert store.events("s1", types="threshold_crossed") == appended[-1:]

    assert store.append_events("s2", []) == []  # nothing, and nothing moved
    assert store.events("s2") == [] and store.get_session("s2").updated_at == 100.0
    for events in ([], batch):
        with pytest.raises(SessionNotFoundError):
            store.append_events("nope", events)
    with pytest.raises(StoreError, match="data of event 'usage_recorded' cannot be stored"):
        store.append_events("s2", [("items_added", {}), ("usage_recorded", {"x": {1, 2}})])
    assert store.events("s2") == []
    with pytest.raises(RuntimeError), store.transaction():
        store.append_events("s2", batch)
        raise RuntimeError
    assert store.events("s2") == [] and store.get_session("s2").updated_at == 100.0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_recording_a_transcript_moves_the_session_row_once_not_per_call(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording a transcript writes one usage event per API call; they go in one batch
    that updates the session row once. An update of the row per call made a recording
    quadratic on PostgreSQL (each update of one row in a transaction leaves a version
    the next walks past), the schema's write lock held all along."""
    from cc_session import SessionWriter

    from ctxbudget.store._sql_store import SQLStore
    from ctxbudget.tracker import Tracker

    w = SessionWriter(overhead=2_000)
    for n in range(300):
        w.user(f"step {n}: look at the order handler")
        w.respond({"type": "text", "text": f"Done with step {n}."})
    path = w.write(tmp_path / "t.jsonl")
    touches: list[str] = []
    touch = SQLStore._touch

    def counted(self: SQLStore, db: Any, session_id: str, now: float) -> bool:
        touches.append(session_id)
        return touch(self, db, session_id, now)

    monkeypatch.setattr(SQLStore, "_touch", counted)
    with backend_url(backend, tmp_path) as url, Tracker(store=url) as tracker:
        recorded = tracker.load(path)
        recorded.save()
        events = tracker.store.events(recorded.id, types="usage_recorded")
    assert len(events) == 300
    assert len(touches) <= 5, f"the session row was moved {len(touches)} times"


def test_sqlite_refuses_event_updates(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with open_store(f"sqlite:///{path}") as store:
        store.create_session(session("s1"))
        store.append_event("s1", "usage_recorded", {})
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE events SET type = 'forged'")


# -- token cache ------------------------------------------------------------------------


def test_token_cache(store: Store) -> None:
    assert store.token_cache_get("o200k_base", ["h1"]) == {}
    store.token_cache_put("o200k_base", {"h1": 10, "h2": 20})
    store.token_cache_put("estimate", {"h1": 11})
    store.token_cache_put("o200k_base", {"h2": 21})
    store.token_cache_put("o200k_base", {})
    assert store.token_cache_get("o200k_base", ["h1", "h2", "h3", "h1"]) == {"h1": 10, "h2": 21}
    assert store.token_cache_get("estimate", ["h1", "h2"]) == {"h1": 11}
    many = {f"hash{n}": n for n in range(1_200)}  # more than one SQL chunk
    store.token_cache_put("big", many)
    assert store.token_cache_get("big", list(many)) == many


# -- transactions -----------------------------------------------------------------------


def test_transaction_rollback_leaves_nothing(store: Store) -> None:
    store.create_session(session("s1"))
    store.append_items("s1", [item("before", tokens=1)])
    store.append_event("s1", "session_created", {})
    store.token_cache_put("c", {"h": 1})
    before = snapshot(store, "s1")

    with pytest.raises(RuntimeError, match="boom"), store.transaction():
        store.append_items("s1", [item("during", tokens=99)])
        store.append_event("s1", "items_added", {"count": 1})
        assert store.item_aggregates("s1")["tokens"] == 100  # visible inside
        store.update_session(session("s1", context_version=5))
        store.create_session(session("s2"))
        store.token_cache_put("c", {"h": 2, "new": 3})
        raise RuntimeError("boom")

    assert snapshot(store, "s1") == before
    assert [s.id for s in store.list_sessions()] == ["s1"]
    assert store.token_cache_get("c", ["h", "new"]) == {"h": 1}


def test_transaction_commits_and_nests(store: Store) -> None:
    store.create_session(session("s1"))
    with store.transaction():
        store.append_items("s1", [item("a")])
        with store.transaction():
            store.append_event("s1", "items_added", {"count": 1})
        with pytest.raises(KeyError), store.transaction():
            store.append_items("s1", [item("rolled back")])
            raise KeyError("inner only")
        store.append_items("s1", [item("b")])
    assert [i.text for i in store.load_items("s1")] == ["a", "b"]
    assert [e.type for e in store.events("s1")] == ["items_added"]


def test_failed_write_inside_a_transaction_rolls_back_only_itself(store: Store) -> None:
    store.create_session(session("s1"))
    with store.transaction():
        store.append_items("s1", [item("a", id="a")])
        with pytest.raises(StoreError):
            store.append_items("s1", [item("b"), item("dup", id="a")])
        store.append_event("s1", "items_added", {})
    assert [i.text for i in store.load_items("s1")] == ["a"]
    assert len(store.events("s1")) == 1


@pytest.mark.parametrize("when", ["before", "after"])
def test_faulty_store_inside_a_transaction_leaves_the_session_as_it_was(
    store: Store, when: Any
) -> None:
    store.create_session(session("s1"))
    store.append_items("s1", [item("kept", tokens=4)])
    before = snapshot(store, "s1")
    faulty = FaultyStore(store, fail_on="append_event", after=0, when=when)

    with pytest.raises(StoreError, match="injected fault"), faulty.transaction():
        faulty.append_items("s1", [item("new", tokens=40)], version=2)
        faulty.update_session(session("s1", context_version=2))
        faulty.append_event("s1", "items_added", {"count": 1})

    assert faulty.failed and faulty.calls["append_event"] == 1
    assert snapshot(store, "s1") == before
    faulty.append_event("s1", "items_added", {})  # only the chosen call fails
    assert len(store.events("s1")) == 1


def test_faulty_store_checks_the_method_name(store: Store) -> None:
    with pytest.raises(ValueError, match="no method"):
        FaultyStore(store, fail_on="append_evnt")


def test_fake_clock() -> None:
    clock = FakeClock(start=10.0, step=0.5)
    assert (clock(), clock()) == (10.0, 10.5)
    assert clock.advance(100) == 111.0


# -- context versions and the archive ---------------------------------------------------

ARCHIVE_BACKENDS = ["memory", "sqlite", "sqlite-python", "postgres"]


@pytest.fixture(params=ARCHIVE_BACKENDS)
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The stores with every archive search path: memory, SQLite FTS5, SQLite Python,
    PostgreSQL (scored in Python)."""
    clock = FakeClock(start=1_000.0, step=1.0)
    if request.param == "sqlite-python":  # what a driver without FTS5 gets
        with SQLiteStore(
            f"sqlite:///{tmp_path / 'store.db'}", clock=clock, full_text=False
        ) as opened:
            assert not opened.full_text
            yield opened
    else:
        with opened_store(request.param, tmp_path, clock=clock) as opened:
            yield opened


def test_versions_listing(store: Store) -> None:
    store.create_session(session("s1"))
    assert store.versions("s1") == [VersionInfo(1, 0, 0, None)]  # current, still empty

    store.append_items("s1", [item("a", tokens=3), item("b")])  # clock: 1000
    store.append_items("s1", [item("c", tokens=4)])  # 1001: same version
    store.append_items("s1", [item("kept", tokens=5)], version=2)  # 1002
    store.append_items("s1", [], version=9)  # no item: no version
    assert store.versions("s1") == [
        VersionInfo(1, 3, 7, 1_000.0),
        VersionInfo(2, 1, 5, 1_002.0),
    ]

    stored = store.get_session("s1")
    stored.context_version = 3  # what the tracker does before writing version 3
    store.update_session(stored)
    assert [v.version for v in store.versions("s1")] == [1, 2, 3]
    assert store.versions("s1")[-1] == VersionInfo(3, 0, 0, None)


def test_versions_vanish_with_a_rolled_back_write(store: Store) -> None:
    store.create_session(session("s1"))
    store.append_items("s1", [item("a")])
    with pytest.raises(RuntimeError), store.transaction():
        store.append_items("s1", [item("b")], version=2)
        assert [v.version for v in store.versions("s1")] == [1, 2]
        raise RuntimeError
    assert [v.version for v in store.versions("s1")] == [1]
    store.delete_session("s1")
    store.create_session(session("s1"))
    assert store.versions("s1") == [VersionInfo(1, 0, 0, None)]


def test_set_context_version(store: Store) -> None:
    store.create_session(session("s1", at=100.0))
    store.append_items("s1", [item("original", tokens=50)])
    store.append_items("s1", [item("compacted", tokens=5)], version=2)
    store.set_context_version("s1", 2)
    assert store.get_session("s1").context_version == 2
    assert [i.text for i in store.load_items("s1")] == ["compacted"]

    before = store.get_session("s1").updated_at
    assert store.set_context_version("s1", 1) == 2  # returns the previous version
    restored = store.get_session("s1")
    assert restored.context_version == 1 and restored.updated_at > before
    assert [i.text for i in store.load_items("s1")] == ["original"]
    assert store.item_aggregates("s1")["tokens"] == 50
    assert store.set_context_version("s1", 1) == 1  # already there: fine

    unchanged = snapshot(store, "s1")
    with pytest.raises(StoreError) as caught:
        store.set_context_version("s1", 7)
    assert str(caught.value) == (
        "session s1 has no context version 7: its versions are 1, 2 (current: 1)"
    )
    assert snapshot(store, "s1") == unchanged


def test_set_context_version_rolls_back_with_its_transaction(store: Store) -> None:
    store.create_session(session("s1"))
    store.append_items("s1", [item("a")])
    store.append_items("s1", [item("b")], version=2)
    before = snapshot(store, "s1")
    with pytest.raises(RuntimeError), store.transaction():
        store.set_context_version("s1", 2)
        store.append_event("s1", "context_restored", {"to": 2})
        raise RuntimeError
    assert snapshot(store, "s1") == before


def _two_versions(store: Store) -> None:
    """Version 1: a conversation; version 2: its compaction, one text kept verbatim."""
    store.create_session(session("s1"))
    store.append_items(
        "s1",
        [
            item("Caroline went to the LGBTQ support group on 7 May 2023.", id="v1-group"),
            item("Melanie painted a sunrise over the lake last year.", id="v1-paint"),
            item("The system prompt: you are a helpful assistant.", id="v1-system"),
        ],
    )
    store.append_items(
        "s1",
        [
            item("The system prompt: you are a helpful assistant.", id="v2-system"),
            item("Summary: Caroline and Melanie talked about art and support.", id="v2-summary"),
        ],
        version=2,
    )
    store.set_context_version("s1", 2)


def test_items_after_reads_what_followed_a_text(store: Store) -> None:
    store.create_session(session("s1"))
    v1 = ["Where did you go?", "To Paris?", "Yes, in May.", "ok", "Where did you go?"]
    store.append_items("s1", [item(text, id=f"v1-{n}") for n, text in enumerate(v1)])
    v2 = ["ok", "Where did you go?", "Home.", "Summary."]
    store.append_items("s1", [item(text, id=f"v2-{n}") for n, text in enumerate(v2)], version=2)
    store.set_context_version("s1", 2)
    after = store.items_after

    def ids(text: str, **kwargs: Any) -> list[str | None]:
        return [found.id for found in after("s1", item(text).hash, **kwargs)]

    # the first copy in the earliest version, in append order
    assert ids("Where did you go?") == ["v1-1", "v1-2"]
    assert ids("Where did you go?", limit=1) == ["v1-1"]
    assert ids("Where did you go?", exclude_version=1) == ["v2-2", "v2-3"]
    # a copy that ends its version is passed over for one that something follows
    assert ids("Summary.") == [] and ids("Home.", exclude_version=1) == ["v2-3"]
    assert ids("ok") == ["v1-4"]
    assert ids("ok", exclude_version=1) == ["v2-1", "v2-2"]
    assert ids("never said") == [] and ids("ok", limit=0) == []
    with pytest.raises(SessionNotFoundError):
        after("nope", item("ok").hash)


def test_search_archive_leaves_out_the_current_version(archive: Store) -> None:
    _two_versions(archive)
    hits = archive.search_archive("s1", "support group painted sunrise prompt", exclude_version=2)
    assert {found.id for found, _ in hits} == {"v1-group", "v1-paint"}  # v1-only texts
    assert archive.search_archive("s1", "helpful assistant", exclude_version=2) == []

    # The whole archive: each text once, as its most recent copy.
    everything = archive.search_archive("s1", "helpful assistant")
    assert [found.id for found, _ in everything] == ["v2-system"]
    assert [
        found.id for found, _ in archive.search_archive("s1", "summary", exclude_version=1)
    ] == ["v2-summary"]
    found, score = hits[0]
    assert isinstance(found, Item) and isinstance(score, float) and score > 0


def test_search_archive_ranks_the_best_match_first(archive: Store) -> None:
    archive.create_session(session("s1"))
    archive.create_session(session("other"))
    archive.append_items(
        "other", [item("Caroline LGBTQ support group support group support group")]
    )
    texts = [
        "We support Python 3.11 and newer.",
        "Caroline likes pottery and camping with her kids.",
        "Caroline went to the LGBTQ support group yesterday; it was powerful.",
        "The group chat was quiet today.",
        "Melanie went to a charity race for mental health.",
    ]
    archive.append_items("s1", [item(text) for text in texts])
    archive.append_items("s1", [item("compacted")], version=2)

    hits = archive.search_archive(
        "s1", "When did Caroline go to the LGBTQ support group?", exclude_version=2
    )
    assert hits[0][0].text == texts[2]
    assert {found.text for found, _ in hits} == set(texts[:4])  # each shares a word
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True) and all(score > 0 for score in scores)
    assert len(archive.search_archive("s1", "caroline group", limit=2)) == 2
    assert archive.search_archive("s1", "caroline", limit=0) == []


def test_search_archive_matches_word_forms_and_diacritics(archive: Store) -> None:
    archive.create_session(session("s1"))
    archive.append_items("s1", [item("She keeps painting landscapes."), item("Un café à Zürich.")])
    assert [f.text for f, _ in archive.search_archive("s1", "paints")] == [
        "She keeps painting landscapes."
    ]
    assert [f.text for f, _ in archive.search_archive("s1", "ZURICH CAFÉ")] == ["Un café à Zürich."]


HOSTILE_QUERIES = [
    '"',
    "*",
    "NEAR(",
    "a OR",
    "-",
    ":",
    "",
    "   ",
    "the of and to what when",
    '"unbalanced quote',
    "text:caroline",
    "caroline*",
    "^caroline",
    "AND OR NOT NEAR",
    "(((caroline",
    "caroline NOT group",
    "'; DROP TABLE items; --",
    "\x00caroline\x00",
    "lone \ud800 surrogate",
    "{col1 col2}: caroline",
    "+ - * / % & | ~ < > = ! @ # $ [ ] ( )",
    "é" * 500,
    " ".join(f"word{n}" for n in range(200)),
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_queries_never_raise(archive: Store, query: str) -> None:
    archive.create_session(session("s1"))
    archive.append_items("s1", [item("Caroline went to the group"), item("NEAR the text")])
    hits = archive.search_archive("s1", query)
    assert isinstance(hits, list)
    if not query_terms(query):
        assert hits == []


def test_queries_without_words_find_nothing(archive: Store) -> None:
    archive.create_session(session("s1"))
    archive.append_items("s1", [item("the and of what when")])  # only stopwords
    for query in ("", "?!", "the and", "what when", "a b c"):
        assert archive.search_archive("s1", query) == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(max_size=40) | st.text(alphabet='"*():^-+NEARORTnot {}', max_size=20))
def test_any_query_is_safe(archive: Store, query: str) -> None:
    if not archive.list_sessions():
        archive.create_session(session("s1"))
        archive.append_items("s1", [item("Caroline went to the LGBTQ support group NEAR me")])
    assert isinstance(archive.search_archive("s1", query), list)


def test_search_sees_its_own_transaction(archive: Store) -> None:
    archive.create_session(session("s1"))
    archive.append_items("s1", [item("old text")])
    with pytest.raises(RuntimeError), archive.transaction():
        archive.append_items("s1", [item("freshly written zebra")], version=2)
        hits = archive.search_archive("s1", "zebra")
        assert [found.text for found, _ in hits] == ["freshly written zebra"]
        raise RuntimeError
    assert archive.search_archive("s1", "zebra") == []


def test_search_is_per_session_and_forgets_deleted_sessions(archive: Store) -> None:
    for sid in ("s1", "s2"):
        archive.create_session(session(sid))
        archive.append_items(sid, [item(f"zebra crossing in {sid}")])
    archive.delete_session("s1")
    assert [f.text for f, _ in archive.search_archive("s2", "zebra")] == ["zebra crossing in s2"]
    archive.create_session(session("s1"))
    assert archive.search_archive("s1", "zebra") == []
    if isinstance(archive, SQLiteStore) and archive.full_text:
        with sqlite3.connect(archive.path) as conn:  # the index matches the items
            conn.execute("INSERT INTO items_fts (items_fts) VALUES ('integrity-check')")


@pytest.mark.parametrize("other", ["sqlite-python", "postgres"])
def test_memory_and_sqlite_python_scores_agree(tmp_path: Path, other: str) -> None:
    """The Python scorers score alike, to the digit, whichever store holds the texts."""
    texts = [f"note {n}: " + " ".join(["alpha", "beta", "gamma"][: n % 3 + 1]) for n in range(12)]

    def scores(store: Store) -> list[tuple[str, float]]:
        store.create_session(session("s1"))
        store.append_items("s1", [item(text) for text in texts])
        hits = store.search_archive("s1", "gamma beta")
        return [(found.text, round(score, 9)) for found, score in hits]

    with open_store("memory://") as memory:
        expected = scores(memory)
    if other == "sqlite-python":
        with SQLiteStore(f"sqlite:///{tmp_path / 'x.db'}", full_text=False) as sqlite:
            found = scores(sqlite)
    else:
        with opened_store("postgres", tmp_path) as postgres:
            found = scores(postgres)
    assert found == expected and len(expected) == 8


def test_query_rule() -> None:
    terms = query_terms("When did Caroline go to the LGBTQ support group's meetings?")
    assert terms == [
        Term("caroline", True),
        Term("go", False),
        Term("lgbtq", True),
        Term("support", True),
        Term("group", True),
        Term("meeting", True),
    ]
    assert fts_query(terms) == (
        '"caroline"* OR "go" OR "lgbtq"* OR "support"* OR "group"* OR "meeting"*'
    )
    assert query_terms('NEAR("x" y) OR 4096 v2 *') == [
        Term("near", True),
        Term("4096", False),
        Term("v2", False),
    ]
    # months and years name when something was said (a session's date header), not
    # what: left out while other words remain
    assert query_terms("What event did John attend in June 2023?") == [
        Term("event", True),
        Term("john", True),
        Term("attend", True),
    ]
    assert query_terms("June 2023") == [Term("june", True), Term("2023", False)]
    assert query_terms("the, of; and? I") == []
    assert len(query_terms(" ".join(f"w{n}" for n in range(100)))) == 32


# -- sqlite archive: migration and FTS5 fallback ------------------------------------------

# Schema 1, as ctxbudget 0.x created it: items keyed by (session_id, seq), no FTS.
SCHEMA_1 = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, name TEXT, model TEXT, source TEXT, policy TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    context_version INTEGER NOT NULL DEFAULT 1, meta TEXT NOT NULL);
CREATE INDEX sessions_recent ON sessions (updated_at, created_at);
CREATE TABLE items (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, version INTEGER NOT NULL, id TEXT NOT NULL,
    role TEXT NOT NULL, kind TEXT NOT NULL, component TEXT NOT NULL, layer TEXT NOT NULL,
    agent TEXT NOT NULL, tool TEXT, pair_id TEXT, tokens INTEGER,
    pinned INTEGER NOT NULL, phase TEXT, message_index INTEGER NOT NULL,
    created_at REAL NOT NULL, last_used_at REAL, text TEXT NOT NULL, hash TEXT NOT NULL,
    raw TEXT, PRIMARY KEY (session_id, seq));
CREATE INDEX items_by_version ON items (session_id, version, seq);
CREATE UNIQUE INDEX items_unique_id ON items (session_id, version, id);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    type TEXT NOT NULL, at REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX events_by_session ON events (session_id, id);
CREATE TRIGGER events_append_only BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TABLE token_cache (
    counter TEXT NOT NULL, hash TEXT NOT NULL, tokens INTEGER NOT NULL,
    PRIMARY KEY (counter, hash)) WITHOUT ROWID;
PRAGMA user_version = 1;
"""


def _schema_1_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_1)
    conn.execute("INSERT INTO sessions VALUES ('s1', 'n', 'm', NULL, '{}', 1.0, 2.0, 2, '{}')")
    rows = [
        (1, "v1-group", "Caroline went to the LGBTQ support group."),
        (1, "v1-system", "You are a helpful assistant."),
        (2, "v2-system", "You are a helpful assistant."),
        (2, "v2-summary", "Summary: Caroline talked about support."),
    ]
    for seq, (version, item_id, text) in enumerate(rows):
        conn.execute(
            "INSERT INTO items VALUES ('s1', ?, ?, ?, 'user', 'user_text', 'interaction_buffer',"
            " 'transient', 'main', NULL, NULL, 10, 0, NULL, ?, 50.0, NULL, ?, ?, NULL)",
            (seq, version, item_id, seq, text, Item(Role.USER, Kind.USER_TEXT, text).hash),
        )
    conn.execute("INSERT INTO events (session_id, type, at, data) VALUES ('s1', 'x', 3.0, '{}')")
    conn.commit()
    conn.close()


def test_migration_from_schema_1_back_fills_the_index(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _schema_1_database(path)
    with open_store(f"sqlite:///{path}", clock=FakeClock(start=9_000.0)) as store:
        assert isinstance(store, SQLiteStore) and store.full_text
        assert [i.id for i in store.load_items("s1")] == ["v2-system", "v2-summary"]
        assert [i.id for i in store.load_items("s1", version=1)] == ["v1-group", "v1-system"]
        assert store.versions("s1") == [VersionInfo(1, 2, 20, None), VersionInfo(2, 2, 20, None)]
        hits = store.search_archive("s1", "LGBTQ support assistant", exclude_version=2)
        assert [found.id for found, _ in hits] == ["v1-group"]
        assert len(store.events("s1")) == 1
        store.append_items("s1", [item("brand new zebra")], version=3)
        assert store.versions("s1")[-1] == VersionInfo(3, 1, 0, 9_000.0)
        assert [f.text for f, _ in store.search_archive("s1", "zebra")] == ["brand new zebra"]
        store.delete_session("s1")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO items_fts (items_fts) VALUES ('integrity-check')")
        columns = [row[1] for row in conn.execute("PRAGMA table_info(items)")]
        assert columns[0] == "rid" and columns[-1] == "stored_at"


def test_index_survives_vacuum(tmp_path: Path) -> None:
    # The FTS rowid is items.rid, an INTEGER PRIMARY KEY: VACUUM keeps it (it may
    # renumber an implicit rowid, which would point the index at the wrong items).
    with SQLiteStore(f"sqlite:///{tmp_path / 'store.db'}") as store:
        store.create_session(session("s1"))
        store.create_session(session("s2"))
        for n in range(50):
            store.append_items("s1" if n % 2 else "s2", [item(f"filler {n}")])
        store.append_items("s1", [item("the zebra note")])
        store.delete_session("s2")  # gaps in the rowids
        with sqlite3.connect(store.path) as conn:
            conn.execute("VACUUM")
        assert [f.text for f, _ in store.search_archive("s1", "zebra")] == ["the zebra note"]


def test_fallback_without_fts5_then_index_built_on_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with SQLiteStore(url, full_text=False) as store:
        store.create_session(session("s1"))
        store.append_items("s1", [item("Caroline went to the support group"), item("other")])
        store.append_items("s1", [item("compacted")], version=2)
        python_hits = [f.id for f, _ in store.search_archive("s1", "support", exclude_version=2)]
    with sqlite3.connect(tmp_path / "store.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "items_fts" not in tables
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with SQLiteStore(url) as store:  # a driver with FTS5 builds and back-fills the index
        assert store.full_text
        fts_hits = [f.id for f, _ in store.search_archive("s1", "support", exclude_version=2)]
    assert fts_hits == python_hits and len(fts_hits) == 1


def test_database_with_an_index_read_without_fts5(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url) as store:
        store.create_session(session("s1"))
        store.append_items("s1", [item("zebra")])
    with SQLiteStore(url, full_text=False) as store:  # the Python scorer, same answers
        assert [f.text for f, _ in store.search_archive("s1", "zebra")] == ["zebra"]
        # A driver really without FTS5 cannot write through the index's triggers:
        error = store._db.error(sqlite3.OperationalError("no such module: fts5"), "appending items")
        assert "lacks FTS5" in str(error) and store.path in str(error)


# -- concurrency ------------------------------------------------------------------------


def test_two_threads_appending_concurrently(store: Store) -> None:
    store.create_session(session("s1"))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def append(name: str) -> None:
        try:
            barrier.wait()
            for n in range(200):
                store.append_items("s1", [item(f"{name}-{n}", tokens=1)])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(name,)) for name in ("a", "b")]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so the appends really interleave
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)

    assert errors == []
    texts = [i.text for i in store.load_items("s1")]
    assert len(texts) == 400 and len({i.id for i in store.load_items("s1")}) == 400
    for name in ("a", "b"):  # seq order keeps each writer's own order
        assert [t for t in texts if t.startswith(name)] == [f"{name}-{n}" for n in range(200)]
    assert store.item_aggregates("s1")["tokens"] == 400
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as conn:
            assert conn.execute("SELECT count(DISTINCT seq) FROM items").fetchone()[0] == 400


WRITER = textwrap.dedent(
    """
    import sys
    import time
    from ctxbudget.model import Item, Kind, Role
    from ctxbudget.store import open_store

    store = open_store(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()  # start together with the parent
    for n in range(int(sys.argv[2])):
        with store.transaction():
            store.append_items("s1", [Item(Role.USER, Kind.USER_TEXT, f"child-{n}", tokens=1)])
            store.append_event("s1", "items_added", {"n": n})
        time.sleep(0.002)  # some work between writes, as a real agent has
    store.close()
    """
)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_second_process_writing_concurrently(backend: str, tmp_path: Path) -> None:
    with backend_url(backend, tmp_path) as url, open_store(url) as store:
        store.create_session(session("s1"))
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, "200"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        child.stdin.write("go\n")
        child.stdin.flush()
        for n in range(200):
            with store.transaction():
                store.append_items("s1", [item(f"parent-{n}", tokens=1)])
                store.append_event("s1", "items_added", {"n": n})
            time.sleep(0.002)
        _, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr

        texts = [i.text for i in store.load_items("s1")]
        assert len(texts) == 400
        for name in ("parent", "child"):
            assert [t for t in texts if t.startswith(name)] == [f"{name}-{n}" for n in range(200)]
        assert len(store.events("s1")) == 400
        assert store.item_aggregates("s1")["tokens"] == 400
        # The writers really overlapped, rather than one running after the other.
        assert sum(a[0] != b[0] for a, b in pairwise(texts)) > 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_processes_creating_the_schema_at_once(backend: str, tmp_path: Path) -> None:
    script = "import sys; from ctxbudget.store import open_store; open_store(sys.argv[1]).close()"
    with backend_url(backend, tmp_path) as url:
        children = [
            subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE)
            for _ in range(8)
        ]
        for child in children:
            _, stderr = child.communicate(timeout=120)
            assert child.returncode == 0, stderr.decode()
        with open_store(url) as store:
            assert store.list_sessions() == []


# -- sqlite specifics -------------------------------------------------------------------


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with open_store(f"sqlite:///{path}") as store:
        assert isinstance(store, SQLiteStore) and store.journal_mode == "wal"
        with store._db.guard("a test") as db:  # the setting is per connection
            # NORMAL: a commit is not synced on its own (WAL keeps it safe; README)
            assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2


def test_sqlite_writer_locked_out_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SQLiteStore(f"sqlite:///{path}", busy_timeout_ms=50) as store:
        store.create_session(session("s1"))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(StoreError, match=r"locked by another writer for more than 0\.05 s"):
                store.append_event("s1", "usage_recorded", {})
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.append_event("s1", "usage_recorded", {})  # usable again once released
        assert len(store.events("s1")) == 1


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_path("sqlite:///rel/x.db") == str(tmp_path / "rel" / "x.db")
    assert database_path(f"sqlite:///{tmp_path}/abs.db") == str(tmp_path / "abs.db")
    assert database_path("sqlite://:memory:") == ":memory:"
    assert database_path("sqlite://") == ":memory:"
    with pytest.raises(ConfigurationError, match=r"sqlite:///relative/path\.db"):
        database_path("sqlite://host/x.db")

    with open_store("sqlite:///nested/dir/x.db") as store:  # parents are created
        store.create_session(session("s1"))
    assert (tmp_path / "nested" / "dir" / "x.db").is_file()
    assert store.url == f"sqlite:///{tmp_path / 'nested' / 'dir' / 'x.db'}"

    with open_store("sqlite://:memory:") as memory:
        memory.create_session(session("s1"))
        assert memory.get_session("s1").id == "s1"


def test_sqlite_persists_across_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url) as store:
        store.create_session(session("s1"))
        store.append_items("s1", [item("a", tokens=2)])
    with open_store(url) as store:
        assert [i.text for i in store.load_items("s1")] == ["a"]


def test_closed_store_says_so(store: Store) -> None:
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreError, match="is closed"):
        store.list_sessions()


# -- postgresql specifics ---------------------------------------------------------------


def test_postgres_urls_keep_the_password_out_of_messages() -> None:
    from ctxbudget.store._postgres_schema import target

    found = target("postgresql://me:s3cret@db.example:6543/prod?schema=team_a&sslmode=require")
    assert found.schema == "team_a"
    assert found.url == "postgresql://me@db.example:6543/prod?sslmode=require&schema=team_a"
    assert found.conninfo == "postgresql://me:s3cret@db.example:6543/prod?sslmode=require"
    assert target("postgres://db/x").schema == "ctxbudget"
    for bad in ("a;drop", "1st", "x" * 64, ""):
        with pytest.raises(ConfigurationError, match="name a schema with letters"):
            target(f"postgresql://db/x?schema={bad}")


def test_no_store_message_keeps_a_urls_password_out() -> None:
    """A misspelt scheme, a malformed URL ("internal error: ValueError") printed the
    password a store URL held (found by a trial)."""
    for url, said in (
        ("postgressql://me:s3cret@db/x", "unknown store URL scheme"),
        ("postgresql://me:s3cret@[::1:5432/x?schema=a", "is malformed: Invalid IPv6 URL"),
        ("postgresql://me:s3cret@db:port/x", "is malformed"),
    ):
        with pytest.raises(ConfigurationError, match=said) as caught:
            open_store(url)
        assert "s3cret" not in str(caught.value) and "me:***@" in str(caught.value)


def test_a_read_of_no_store_keeps_the_password_out(postgres_url: str) -> None:
    with_password = postgres_url.replace("://", "://postgres:s3cret@", 1)
    if "@" in postgres_url:  # the URL names a user already: put the password after it
        user, _, rest = postgres_url.partition("://")[2].partition("@")
        with_password = f"postgresql://{user.partition(':')[0]}:s3cret@{rest}"
    with pytest.raises(StoreError, match="no store at") as caught:
        open_store(with_password, create=False)
    assert "s3cret" not in str(caught.value)


def test_postgres_backend_imports_its_driver_only_when_built() -> None:
    code = (
        "import sys, ctxbudget.store.postgres, ctxbudget.store as store; "
        "print('psycopg' in sys.modules, store.available_schemes())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False ['memory', 'postgres', 'postgresql', 'sqlite']"


def test_postgres_without_its_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match=r'pip install "ctxbudget\[postgres\]"'):
        open_store("postgresql://127.0.0.1/test")


def test_postgres_server_out_of_reach_is_a_clear_error() -> None:
    psycopg = pytest.importorskip("psycopg")
    with pytest.raises(StoreError, match="cannot reach the PostgreSQL server") as caught:
        open_store("postgres://me:s3cret@127.0.0.1:1/test?connect_timeout=3")
    assert isinstance(caught.value.__cause__, psycopg.Error)
    assert "s3cret" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)


def test_postgres_refuses_event_updates(postgres_url: str) -> None:
    import psycopg

    from ctxbudget.store.postgres import PostgresStore

    with open_store(postgres_url) as store:
        assert isinstance(store, PostgresStore)
        store.create_session(session("s1"))
        store.append_event("s1", "usage_recorded", {})
    server, _, schema = postgres_url.rpartition("schema=")
    with (
        psycopg.connect(server.rstrip("?&"), autocommit=True) as conn,
        pytest.raises(psycopg.Error, match="append-only"),
    ):
        conn.execute(f"UPDATE {schema}.events SET type = 'changed'")


def test_postgres_persists_across_reopen_and_keeps_schemas_apart(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        store.create_session(session("s1"))
        store.append_items("s1", [item("a", tokens=2)])
    with open_store(postgres_url) as store:
        assert [i.text for i in store.load_items("s1")] == ["a"]
    with postgres_schema() as other, open_store(other) as store:
        assert store.list_sessions() == []


def test_a_read_creates_no_postgres_store(postgres_url: str) -> None:
    """``create=False`` (what every reading command opens): a schema without a store
    is "no store" (named URL) or reads as empty and refuses writes (the default
    store), and is not created either way."""
    import psycopg

    from ctxbudget.store.postgres import PostgresStore

    server, _, schema = postgres_url.rpartition("schema=")

    def schema_exists() -> bool:
        with psycopg.connect(server.rstrip("?&")) as conn:
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
            return found.fetchone() is not None

    with pytest.raises(StoreError, match=r"no store at .* a read creates none"):
        open_store(postgres_url, create=False)
    with PostgresStore(postgres_url, create=False) as store:
        assert store.absent and store.list_sessions() == []
        with pytest.raises(SessionNotFoundError):
            store.get_session("s1")
        with pytest.raises(StoreError, match="opened only to read: nothing was written"):
            store.create_session(session("s1"))
        store.token_cache_put("counter", {"h": 1})  # a cache: quietly not kept
    assert not schema_exists()
    with open_store(postgres_url) as store:  # a write creates it
        store.create_session(session("s1"))
    with open_store(postgres_url, create=False) as store:
        assert [s.id for s in store.list_sessions()] == ["s1"]
    assert schema_exists()


def test_postgres_store_from_a_newer_ctxbudget(postgres_url: str) -> None:
    from ctxbudget.store.postgres import SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION

    with open_store(postgres_url) as store:
        assert isinstance(store, Store)
    server, _, schema = postgres_url.rpartition("schema=")
    import psycopg

    with psycopg.connect(server.rstrip("?&"), autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO {schema}.schema_migrations (version, name) VALUES (%s, 'later')",
            (POSTGRES_SCHEMA_VERSION + 1,),
        )
    with pytest.raises(StoreError, match="newer than this ctxbudget understands"):
        open_store(postgres_url)


def test_postgres_writer_locked_out_gets_a_clear_error(postgres_url: str) -> None:
    from ctxbudget.store.postgres import PostgresStore

    with (
        PostgresStore(postgres_url, lock_timeout_ms=100) as store,
        open_store(postgres_url) as other,
    ):
        with other.transaction():  # another writer holds the store
            other.create_session(session("other"))
            started = time.monotonic()
            with pytest.raises(StoreError, match=r"held the store for more than 0\.1 s"):
                store.create_session(session("s1"))
            assert time.monotonic() - started < 5
            assert [s.id for s in store.list_sessions()] == []  # a read waits for no one
        store.create_session(session("s1"))
        assert {s.id for s in store.list_sessions()} == {"s1", "other"}


def test_postgres_connects_again_when_the_server_dropped_the_connection(
    postgres_url: str,
) -> None:
    import psycopg

    from ctxbudget.store.postgres import PostgresStore

    with PostgresStore(postgres_url) as store:
        store.create_session(session("s1"))
        pid = store._postgres._connection().info.backend_pid
        server = postgres_url.rpartition("schema=")[0].rstrip("?&")
        with psycopg.connect(server, autocommit=True) as conn:  # a restart, an idle timeout
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreError, match="reading a session failed"):
            store.get_session("s1")  # the call in flight when it dropped fails, and says so
        assert [s.id for s in store.list_sessions()] == ["s1"]  # the next one connects again
        store.append_event("s1", "usage_recorded", {})
        assert store._postgres._connection().info.backend_pid != pid


def test_postgres_holds_what_its_text_type_cannot(postgres_url: str) -> None:
    """NUL and lone surrogates (transcripts hold both) and the escape's own marker
    round-trip, in ids, texts, tools, JSON and events; prefixes still find them."""
    odd = "nul\x00 surrogate \ud800 marker \ufdd0 end"
    with open_store(postgres_url) as store:
        store.create_session(session("id\x00one", name=odd, meta={"k": odd}))
        store.create_session(session("id\x00two"))
        stored = store.append_items(
            "id\x00one", [item(odd, Kind.TOOL_RESULT, tool="T\x00", raw={odd: [odd]}, tokens=3)]
        )
        assert store.load_items("id\x00one") == stored
        assert store.get_session("id\x00one").meta == {"k": odd}
        assert store.item_aggregates("id\x00one")["by_tool"] == {"T\x00": 3}
        assert store.append_event("id\x00one", "x", {"v": odd}).data == {"v": odd}
        assert store.events("id\x00one")[0].data == {"v": odd}
        assert {s.id for s in store.find_sessions("id\x00")} == {"id\x00one", "id\x00two"}
        assert [s.id for s in store.find_sessions("id\x00o")] == ["id\x00one"]
        assert [found.text for found, _ in store.search_archive("id\x00one", "surrogate")] == [odd]


# -- errors and registry ----------------------------------------------------------------


def test_directory_as_database_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory") as caught:
        open_store(f"sqlite:///{tmp_path}")
    assert str(tmp_path) in str(caught.value)


def test_unwritable_location(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create the directory"):
        open_store(f"sqlite:///{blocker}/sub/x.db")


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="is not a SQLite database") as caught:
        open_store(f"sqlite:///{path}")
    assert str(path) in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def test_database_from_a_newer_ctxbudget(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="upgrade ctxbudget"):
        open_store(f"sqlite:///{path}")


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store("mongodb://localhost/x")
    message = str(caught.value)
    assert "'mongodb'" in message and "memory://" in message and "sqlite://" in message


@pytest.mark.parametrize("url", ["/tmp/x.db", "C:\\data\\x.db", "ctxbudget.db"])
def test_not_a_url(url: str) -> None:
    with pytest.raises(ConfigurationError, match="not a store URL"):
        open_store(url)


def test_default_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CTXBUDGET_STORE", raising=False)
    url = default_store_url()
    assert url.startswith("sqlite:///") and url.endswith("/ctxbudget.db")
    assert Path(database_path(url)).is_absolute()

    monkeypatch.setenv("CTXBUDGET_STORE", "memory://")
    assert default_store_url() == "memory://"
    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store(""), MemoryStore)


class _NeedsDriver(MemoryStore):
    scheme = "needsdriver"

    def __init__(self, url: str, **kwargs: Any) -> None:
        import_driver("ctxbudget_no_such_driver", backend="test", extra="testextra")
        super().__init__(url, **kwargs)


def test_registry_by_class_and_by_lazy_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_package, "_BACKENDS", dict(store_package._BACKENDS))
    register_backend("mem2", "ctxbudget.store.memory:MemoryStore")
    assert isinstance(open_store("mem2://"), MemoryStore)
    assert "mem2" in store_package.available_schemes()

    register_backend("needsdriver", _NeedsDriver)
    with pytest.raises(MissingExtraError, match=r'pip install "ctxbudget\[testextra\]"'):
        open_store("needsdriver://x")

    register_backend("broken", "ctxbudget.store.memory:NoSuchClass")
    with pytest.raises(ConfigurationError, match="not a Store subclass"):
        open_store("broken://")
    with pytest.raises(ConfigurationError, match="module:Class"):
        register_backend("bad", "no_colon")
    with pytest.raises(ConfigurationError, match="not a Store subclass"):
        register_backend("bad", dict)  # type: ignore[arg-type]


def test_public_names() -> None:
    assert all(hasattr(store_package, name) for name in store_package.__all__)
    assert {
        "Store",
        "StoredSession",
        "StoredEvent",
        "open_store",
        "default_store_url",
        "register_backend",
    } <= set(store_package.__all__)


_PIECES = [
    "budget",
    "Budgets",
    "BUDGETING",
    "writer",
    "writers",
    "rewriter",
    "budget_writer",
    "über",
    "Zürich",
    "café",
    "ﬁle",
    "ｂudget",
    "e\u0301",
    "→",
    "—",
    "中文",
    "\u212a",
    " ",
    "  ",
    "\n",
    ".",
    "-",
    "_",
    "'",
    "42",
    "x9",
    "ß",
    "İ",
    "\ud800",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(st.lists(st.sampled_from(_PIECES), max_size=12), min_size=1, max_size=8),
    query=st.sampled_from(["budget writer", "writer", "budgets", "zurich cafe", "file x9 42"]),
)
def test_search_texts_scores_as_word_counts(texts: list[list[str]], query: str) -> None:
    """``search_texts`` finds each term's words and counts a text's words without
    cutting it into words: the same hits and scores as BM25 over the texts' word
    counts (``rank``), whatever the characters beyond ASCII (letters, symbols, marks,
    a lone surrogate), when every text holds a term (no length is sampled then)."""
    from ctxbudget.store import search_texts

    terms = query_terms(query)
    documents = ["".join(pieces) + " " + terms[0].text for pieces in texts]
    expected = rank(terms, [(n, word_counts(text)) for n, text in enumerate(documents)], 50)
    assert search_texts(query, list(enumerate(documents)), 50) == expected


def test_a_transcripts_own_search_ranks_as_the_store(archive: Store) -> None:
    """``search_texts`` (what recall runs on what Claude Code's /compact took out)
    finds and orders what the store's archive search does, also among thousands of
    texts that cannot match (5,000: it samples their lengths)."""
    from ctxbudget.store import search_texts

    texts = [
        "We support Python 3.11 and newer.",
        "Caroline likes pottery and camping with her kids.",
        "Caroline went to the LGBTQ support group yesterday; it was powerful.",
        "The group chat was quiet today, the supporters' groups too.",
        "Un café à Zürich with Caroline.",
    ]
    filler = [f"filler line {n}: " + "nothing of note here " * (n % 7 + 1) for n in range(5000)]
    archive.create_session(session("s1"))
    archive.append_items("s1", [item(text) for text in [*filler[:2500], *texts, *filler[2500:]]])
    everything = [*filler[:2500], *texts, *filler[2500:]]
    for query in ("When did Caroline go to the LGBTQ support group?", "zurich cafe", "groups"):
        stored = [found.text for found, _ in archive.search_archive("s1", query)]
        assert stored
        found = search_texts(query, [(text, text) for text in everything], 50)
        assert [text for text, _ in found] == stored
