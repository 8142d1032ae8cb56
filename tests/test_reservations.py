"""Budgets that hold when many processes ask at once (issue 11, point 2).

A grant is a reservation taken in one atomic step in the store, with the limit check
inside it: N processes (SQLite file) or N threads (memory://) × M requests grant
exactly what fits, never more. Also: one key reserves once, expiry frees, a recorded
usage or a sub-agent's stop confirms, a release gives back, and agent budgets set by
concurrent processes are all kept.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import postgres_schema, run_in_processes

from ctxbudget import Tracker
from ctxbudget.errors import StoreError
from ctxbudget.spawning import GATE_SCOPE, spawn_finished
from ctxbudget.store import CONFIRMED, RELEASED, Cap, Store, open_store
from ctxbudget.store.memory import MemoryStore
from ctxbudget.testing import FakeClock

PROCESSES, REQUESTS = 8, 4  # 32 requests at once
THREADS = 8
ALLOCATION = 4_000
SPAWN = 5_000
WINDOW = 100_000
USED = 80_000  # the gate's room: 95,000 - 80,000 = 15,000 → two spawns of 5,000 (strictly under)


def _new_session(store: str | Store, used: int | None = None) -> str:
    tracker = Tracker(store=store)
    session = tracker.session(model="gpt-4o", window=WINDOW)
    session.save()
    if used is not None:
        session.record_usage(used)
    return session.id


# -- workers (module level: a spawned process imports them) -------------------------


def _allocate_worker(url: str, session_id: str, requests: int, out: Any) -> None:
    with Tracker(store=url) as tracker:
        session = tracker.open(session_id)
        granted = [
            session.allocate("working_memory", ALLOCATION, allow_partial=False).granted
            for _ in range(requests)
        ]
    out.put(granted)


def _gate_worker(url: str, session_id: str, requests: int, out: Any) -> None:
    with Tracker(store=url) as tracker:
        session = tracker.open(session_id)
        allowed = [
            session.gate(f"agent-{n}", SPAWN, compact=False).allowed for n in range(requests)
        ]
    out.put(allowed)


def _cli_budget_worker(url: str, session_id: str, agent: str, out: Any) -> None:
    import os

    from ctxbudget.cli.app import main

    os.environ["CTXBUDGET_STORE"] = url
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(
            ["gate", session_id, "--agent", agent, "--agent-budget", "1000", "--tokens", "10"]
        )
    out.put((agent, code, err.getvalue()))


def _run_threads(target: Callable[[], Any], count: int) -> list[Any]:
    results: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(count)

    def run() -> None:
        start.wait()
        result = target()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# -- the figures: exactly what fits ----------------------------------------------------


def _allocation_room(store: str | Store, session_id: str) -> int:
    report = Tracker(store=store).open(session_id).budget_report()
    return report.component("working_memory").available_tokens


def _gate_room(store: str | Store, session_id: str) -> int:
    """How many spawns of SPAWN fit under the gate's limit, one after the other."""
    session = Tracker(store=store).open(session_id)
    policy = session.policy
    limit = min(
        int(policy.window * policy.blocked_percent / 100),
        policy.window - policy.reserved_output - policy.safety_margin,
    )
    return max(0, (limit - 1 - session.used_tokens) // SPAWN)


def _reserved(store: str | Store, session_id: str) -> int:
    tracker = Tracker(store=store)
    return sum(r.tokens for r in tracker.store.reservations(session_id))


@pytest.mark.concurrency
def test_processes_allocate_exactly_what_fits(shared_url: str) -> None:
    url = shared_url
    session_id = _new_session(url)
    room = _allocation_room(url, session_id)
    assert room >= 2 * ALLOCATION  # the test means something: some fit, not all
    results = run_in_processes(
        _allocate_worker, [(url, session_id, REQUESTS) for _ in range(PROCESSES)]
    )
    granted = [g for worker in results for g in worker]
    assert sum(granted) == (room // ALLOCATION) * ALLOCATION < PROCESSES * REQUESTS * ALLOCATION
    assert sorted(set(granted)) == [0, ALLOCATION]
    assert _reserved(url, session_id) == sum(granted)


@pytest.mark.concurrency
def test_processes_gate_exactly_what_fits(shared_url: str) -> None:
    url = shared_url
    session_id = _new_session(url, used=USED)
    fits = _gate_room(url, session_id)
    assert fits == 2
    results = run_in_processes(
        _gate_worker, [(url, session_id, REQUESTS) for _ in range(PROCESSES)]
    )
    allowed = [a for worker in results for a in worker]
    assert sum(allowed) == fits
    assert _reserved(url, session_id) == fits * SPAWN


@pytest.mark.concurrency
def test_concurrent_agent_budgets_are_all_kept(shared_url: str) -> None:
    url = shared_url
    session_id = _new_session(url)
    agents = [f"agent-{n:02d}" for n in range(32)]
    results = run_in_processes(_cli_budget_worker, [(url, session_id, a) for a in agents])
    assert all(code == 0 for _, code, _ in results), results
    session = Tracker(store=url).open(session_id)
    from ctxbudget.spawning import agent_budgets

    assert agent_budgets(session) == dict.fromkeys(agents, 1000)


@pytest.mark.parametrize("kind", ["allocate", "gate"])
def test_threads_grant_exactly_what_fits_on_memory(kind: str) -> None:
    store = MemoryStore()
    session_id = _new_session(store, used=USED if kind == "gate" else None)
    tracker = Tracker(store=store)

    if kind == "allocate":
        room = _allocation_room(store, session_id) // ALLOCATION

        def ask() -> list[bool]:
            session = tracker.open(session_id)
            return [
                session.allocate("working_memory", ALLOCATION, allow_partial=False).granted > 0
                for _ in range(REQUESTS)
            ]
    else:
        room = _gate_room(store, session_id)

        def ask() -> list[bool]:
            session = tracker.open(session_id)
            return [session.gate("agent", SPAWN, compact=False).allowed for _ in range(REQUESTS)]

    granted = sum(sum(r) for r in _run_threads(ask, THREADS))
    assert 0 < granted == room < THREADS * REQUESTS


# -- the lease: one key, expiry, confirm, release ----------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def clocked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Tracker, FakeClock]]:
    clock = FakeClock()
    if request.param == "memory":
        with Tracker(store=MemoryStore(clock=clock)) as tracker:
            yield tracker, clock
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'lease.db'}"
        with Tracker(store=open_store(url, clock=clock)) as tracker:
            yield tracker, clock
    else:
        with postgres_schema() as url, Tracker(store=open_store(url, clock=clock)) as tracker:
            yield tracker, clock


def test_the_same_key_reserves_once(clocked: tuple[Tracker, FakeClock]) -> None:
    tracker, _ = clocked
    session = tracker.open(_new_session(tracker.store, used=USED))
    first = session.gate("reviewer", SPAWN, compact=False, key="toolu_01")
    again = session.gate("reviewer", SPAWN, compact=False, key="toolu_01")
    assert first.allowed and again.allowed and first.reservation == again.reservation == "toolu_01"
    assert "already holds" in again.reason
    assert _reserved(tracker.store, session.id) == SPAWN
    # another spawn still finds the room the first one left
    assert session.gate("reviewer", SPAWN, compact=False, key="toolu_02").allowed
    assert not session.gate("reviewer", SPAWN, compact=False, key="toolu_03").allowed


def test_an_agent_named_like_a_scope_keeps_its_own_budget(
    clocked: tuple[Tracker, FakeClock],
) -> None:
    """An agent named "qa:" beside "qa:unit": each spawn is counted against its own
    agent's budget, never another's (a name ending in ':' once read as a prefix, the
    decision and the store disagreed, and every spawn of "qa:" went through)."""
    tracker, _ = clocked
    session = tracker.open(_new_session(tracker.store))
    session.set_agent_budget("qa:unit", 2_000)
    session.set_agent_budget("qa:", 2_000)
    assert [session.gate("qa:unit", 1_000, compact=False).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]
    allowed = [session.gate("qa:", 1_000, compact=False) for _ in range(3)]
    assert [d.allowed for d in allowed] == [True, True, False]
    assert all(d.reservation for d in allowed[:2])
    assert _reserved(tracker.store, session.id) == 4_000


def test_a_spawn_that_never_gets_its_reservation_is_denied(
    clocked: tuple[Tracker, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other processes taking the room every round: the gate says no rather than
    letting a spawn through with nothing reserved."""
    tracker, _ = clocked
    session = tracker.open(_new_session(tracker.store, used=USED))
    monkeypatch.setattr(type(tracker.store), "reserve", lambda *args, **kwargs: None)
    decision = session.gate("reviewer", SPAWN, compact=False)
    assert not decision.allowed and decision.reservation is None
    assert "kept taking the room" in decision.reason


def test_a_gate_that_lost_the_compaction_race_decides_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process changed the session while the compaction that makes room was
    applied: the gate reads the session again and decides (it exited 2 before)."""
    from ctxbudget import archive, spawning
    from ctxbudget.errors import StaleCompactionError

    examples = Path(__file__).resolve().parent.parent / "examples"
    with Tracker(store=f"sqlite:///{tmp_path / 'race.db'}") as tracker:
        session = tracker.load(examples / "analyst-ep24.json", window=12_000)  # over it
        session.save()
        real, lost = archive.apply, []

        def apply_once_too_late(session: Any, plan: Any) -> Any:
            if not lost:
                lost.append(plan)
                raise StaleCompactionError("the session changed since the compaction was planned")
            return real(session, plan)

        monkeypatch.setattr(spawning.archive, "apply", apply_once_too_late)
        decision = session.gate("reviewer", 500)
        assert lost and decision.outcome == "allow_after_compaction"
        assert decision.reservation is not None


def test_expiry_frees_the_room(clocked: tuple[Tracker, FakeClock]) -> None:
    tracker, clock = clocked
    session = tracker.open(_new_session(tracker.store, used=USED))
    assert session.gate("a", SPAWN, compact=False, ttl=60).allowed
    assert session.gate("b", SPAWN, compact=False, ttl=60).allowed
    refused = session.gate("c", SPAWN, compact=False, ttl=60)
    assert not refused.allowed and "10,000 reserved" in refused.reason
    clock.advance(61)
    assert _reserved(tracker.store, session.id) == 0
    assert session.gate("c", SPAWN, compact=False, ttl=60).allowed


def test_a_settlement_as_neither_confirmed_nor_released_is_refused_and_changes_nothing(
    clocked: tuple[Tracker, FakeClock],
) -> None:
    tracker, _ = clocked
    session = tracker.open(_new_session(tracker.store, used=USED))
    assert session.gate("a", SPAWN, compact=False, key="toolu_01").allowed
    with pytest.raises(StoreError, match="confirmed or released"):
        tracker.store.settle_reservations(session.id, "expired", key="toolu_01")
    assert _reserved(tracker.store, session.id) == SPAWN


def test_a_refused_grant_reserves_nothing_and_release_gives_back(
    clocked: tuple[Tracker, FakeClock],
) -> None:
    tracker, _ = clocked
    session = tracker.open(_new_session(tracker.store))
    room = _allocation_room(tracker.store, session.id)
    assert session.allocate("working_memory", room).granted == room
    refused = session.allocate("working_memory", 1, allow_partial=False)
    assert refused.granted == 0 and _reserved(tracker.store, session.id) == room
    assert session.release("working_memory", 1_000) == 1_000
    assert _reserved(tracker.store, session.id) == room - 1_000
    assert session.allocate("working_memory", 1_000, allow_partial=False).granted == 1_000
    assert session.release("working_memory") == room
    assert _reserved(tracker.store, session.id) == 0
    released = tracker.store.reservations(session.id, live=False)
    assert {r.state for r in released} == {RELEASED}


def test_a_usage_confirms_only_what_the_context_grew_by(
    clocked: tuple[Tracker, FakeClock],
) -> None:
    """A usage of a request sent before the grants shows none of them: they stay
    reserved, so the room they hold is not granted twice. A usage that grew confirms
    that much."""
    tracker, _ = clocked
    session = tracker.open(_new_session(tracker.store, used=USED))
    assert session.gate("a", SPAWN, compact=False).allowed
    assert session.gate("b", SPAWN, compact=False).allowed
    session.record_usage(USED)  # a request in flight before the spawns: no growth
    assert _reserved(tracker.store, session.id) == 2 * SPAWN
    assert not session.gate("c", SPAWN, compact=False).allowed  # the room is still held
    session.record_usage(USED + SPAWN)  # one spawn's report arrived
    assert _reserved(tracker.store, session.id) == SPAWN


def test_usage_confirms_an_allocation_and_a_stop_confirms_a_spawn(
    clocked: tuple[Tracker, FakeClock],
) -> None:
    tracker, _ = clocked
    session = tracker.open(_new_session(tracker.store, used=USED))
    session.allocate("working_memory", 1_000)
    assert session.gate("reviewer", SPAWN, compact=False, key="toolu_R").allowed
    session.record_usage(USED + 1_000)  # the allocation's usage arrived; the spawn runs on
    live = tracker.store.reservations(session.id)
    assert [(r.scope, r.tokens) for r in live] == [(GATE_SCOPE + "reviewer", SPAWN)]
    done = spawn_finished(tracker.store, session.id, "reviewer")  # SubagentStop, no key
    assert done is not None and done.key == "toolu_R" and done.state == CONFIRMED
    assert tracker.store.reservations(session.id) == []
    states = {r.key: r.state for r in tracker.store.reservations(session.id, live=False)}
    assert set(states.values()) == {CONFIRMED}


# -- what moves while a grant is decided: it is taken on the figures as they are then ------


def _before_first_reserve(
    monkeypatch: pytest.MonkeyPatch, store: Store, action: Callable[[], None]
) -> None:
    """Run ``action`` once, just before the next reservation is taken: what another
    process does after a gate has read its figures and before it reserves."""
    real = type(store).reserve
    pending = [action]

    def reserve(self: Store, *args: Any, **kwargs: Any) -> Any:
        while pending:
            pending.pop()()  # taken out first: a gate inside the action reserves as usual
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(store), "reserve", reserve)


def test_the_budget_revision_moves_with_what_a_grant_reads(
    clocked: tuple[Tracker, FakeClock],
) -> None:
    """Confirming and setting a budget move it (what was reserved became usage, a limit
    changed); reserving, releasing and expiring do not (they only add to what is
    counted, or free room). A reservation asked at a revision that moved is refused."""
    tracker, clock = clocked
    store = tracker.store
    assert store.budget_revision("s") == 0
    assert store.reserve("s", "gate:a", "k1", 10, ttl=60, revision=0) is not None
    assert store.reserve("s", "gate:a", "k2", 10, ttl=60) is not None
    store.settle_reservations("s", RELEASED, key="k2")
    store.reserve("s", "gate:a", "k3", 10, ttl=1)
    clock.advance(2)
    assert store.reservations("s") != [] and store.budget_revision("s") == 0
    store.settle_reservations("s", CONFIRMED, key="k1")
    assert store.budget_revision("s") == 1
    store.settle_reservations("s", CONFIRMED, key="k1")  # nothing left to confirm
    store.set_agent_budget("s", "a", 100)
    assert store.budget_revision("s") == 2
    assert store.reserve("s", "gate:a", "k4", 10, ttl=60, revision=1) is None
    assert [r.key for r in store.reservations("s")] == []


def test_a_gate_never_reserves_under_a_budget_lowered_while_it_decided(
    clocked: tuple[Tracker, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget was read before the reservation: a gate in flight when another
    process lowered it reserved under the old one (8 grants after the lowering
    returned, with 38,300 already held against 5,000)."""
    tracker, _ = clocked
    session = tracker.open(_new_session(tracker.store))
    session.set_agent_budget("worker", 10_000)
    assert all(session.gate("worker", 1_000, compact=False).allowed for _ in range(3))
    other = tracker.open(session.id)
    _before_first_reserve(
        monkeypatch, tracker.store, lambda: other.set_agent_budget("worker", 2_000)
    )
    decision = session.gate("worker", 1_000, compact=False)
    assert not decision.allowed and "budget of 2,000" in decision.reason
    assert _reserved(tracker.store, session.id) == 3_000


def test_a_spawn_confirmed_while_a_gate_decides_is_counted_once(
    clocked: tuple[Tracker, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gate G reads spawn A as reserved; A stops (its usage recorded, its reservation
    confirmed) and G2 takes the room A left; then G reserves. A's tokens must count
    as usage or as reserved at every moment: 6,000 + 6,000 + 6,000 went under 12,000."""
    from ctxbudget.spawning import agent_usage

    tracker, _ = clocked
    store = tracker.store
    session = tracker.open(_new_session(store))
    session.set_agent_budget("worker", 12_000)
    assert session.gate("worker", 6_000, compact=False, key="toolu_A").allowed

    def a_stops_and_g2_spawns() -> None:
        with store.transaction():  # SubagentStop: the usage and the confirmation together
            data = {"name": "worker", "agent_id": "A", "context_tokens": 6_000}
            store.append_event(session.id, "subagent_usage", data)
            spawn_finished(store, session.id, "worker", "toolu_A")
        assert tracker.open(session.id).gate("worker", 6_000, compact=False, key="G2").allowed

    _before_first_reserve(monkeypatch, store, a_stops_and_g2_spawns)
    decision = session.gate("worker", 6_000, compact=False, key="toolu_G")
    assert not decision.allowed and "6,000 used, 6,000 reserved" in decision.reason
    used = agent_usage(tracker.open(session.id))["worker"]
    assert used + _reserved(store, session.id) == 12_000


def test_a_usage_recorded_while_a_gate_decides_is_counted_once(
    clocked: tuple[Tracker, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's limit: a spawn asked without a key is confirmed by the usage that
    holds it. Recorded by another process while a gate decided, it counted neither in
    the gate's figure (read before) nor as reserved (no longer live)."""
    tracker, _ = clocked
    session = tracker.open(_new_session(tracker.store, used=USED))
    assert _gate_room(tracker.store, session.id) == 2
    assert session.gate("first", SPAWN, compact=False).allowed

    def its_usage_arrives_and_another_spawns() -> None:
        tracker.open(session.id).record_usage(USED + SPAWN)  # confirms the first
        assert tracker.open(session.id).gate("second", SPAWN, compact=False).allowed

    _before_first_reserve(monkeypatch, tracker.store, its_usage_arrives_and_another_spawns)
    assert not session.gate("third", SPAWN, compact=False).allowed
    assert _gate_room(tracker.store, session.id) * SPAWN >= _reserved(tracker.store, session.id)


def test_a_usage_recorded_while_a_gate_decides_without_a_spawn_is_counted(
    clocked: tuple[Tracker, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process records a usage (nothing to confirm) between the gate's figures
    and its reservation: the gate decides again on it. Before, 16 gates beside 16
    usages granted up to 37,533 tokens past the limit."""
    tracker, _ = clocked
    session = tracker.open(_new_session(tracker.store, used=USED))
    assert _gate_room(tracker.store, session.id) == 2

    def the_context_grows() -> None:
        tracker.open(session.id).record_usage(USED + 2 * SPAWN)  # room for none now

    _before_first_reserve(monkeypatch, tracker.store, the_context_grows)
    decision = session.gate("first", SPAWN, compact=False)
    assert not decision.allowed and decision.used_tokens == USED + 2 * SPAWN
    assert _reserved(tracker.store, session.id) == 0


def test_a_session_kept_open_decides_on_what_is_stored_now(
    clocked: tuple[Tracker, FakeClock],
) -> None:
    """A copy opened before another process's spawn was confirmed by its usage, and
    another spawned: its figure was the old one (80,000 used), the confirmed spawn
    counted nowhere, and a third spawn went past the limit."""
    tracker, _ = clocked
    session_id = _new_session(tracker.store, used=USED)
    kept_open = tracker.open(session_id)
    assert tracker.open(session_id).gate("first", SPAWN, compact=False).allowed
    tracker.open(session_id).record_usage(USED + SPAWN)  # confirms the first
    assert tracker.open(session_id).gate("second", SPAWN, compact=False).allowed
    decision = kept_open.gate("third", SPAWN, compact=False)
    assert not decision.allowed and decision.used_tokens == USED + SPAWN
    assert _gate_room(tracker.store, session_id) * SPAWN >= _reserved(tracker.store, session_id)


# -- clocks: every process judges a lease by the same one ---------------------------------


@pytest.mark.parametrize("skew", [900.0, -900.0])
def test_a_process_with_a_skewed_clock_agrees_on_what_is_live(
    shared_url: str, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    """A process 15 minutes ahead took the others' live reservations for expired (11
    spawns where 7 fit); one 15 minutes behind wrote its own already expired for the
    others. Stores given no clock stamp and judge leases by the database's."""
    import time

    url = shared_url
    session_id = _new_session(url, used=USED)
    fits = _gate_room(url, session_id)
    with monkeypatch.context() as patched:
        real = time.time
        patched.setattr(time, "time", lambda: real() + skew)
        skewed = Tracker(store=open_store(url))  # its clock: time.time, skewed
    right = Tracker(store=open_store(url))
    order = [right, skewed, skewed, right, skewed]
    allowed = [t.open(session_id).gate("a", SPAWN, compact=False).allowed for t in order]
    assert sum(allowed) == fits == 2
    assert _reserved(url, session_id) == fits * SPAWN


# -- PostgreSQL: one cap, many processes at once ------------------------------------------

CAP_LIMIT, CAP_USED, CAP_ASK = 10_000, 2_500, 700  # room for 10 of 64 asks


def _reserve_worker(url: str, worker: int, start: Any, out: Any) -> None:
    with open_store(url) as store:
        start.wait()  # every process asks at once
        granted = [
            store.reserve(
                "s1",
                "gate:worker",
                f"w{worker}-r{n}",
                CAP_ASK,
                [Cap("gate:", CAP_LIMIT, CAP_USED), Cap("gate:worker", CAP_LIMIT)],
                ttl=600,
            )
            is not None
            for n in range(4)
        ]
    out.put(granted)


@pytest.mark.concurrency
def test_sixteen_processes_reserving_under_one_cap_on_postgres_get_exactly_what_fits() -> None:
    """16 processes × 4 asks of 700 at once, against 10,000 with 2,500 used: exactly 10
    are granted (7,000), whichever process asks, and the store holds exactly those."""
    with postgres_schema() as url:
        open_store(url).close()  # the schema made once, before the race
        results = run_in_processes(_reserve_worker, [(url, n) for n in range(16)], together=True)
        granted = sum(sum(worker) for worker in results)
        fits = (CAP_LIMIT - CAP_USED) // CAP_ASK
        assert granted == fits == 10 < 16 * 4
        with open_store(url) as store:
            assert sum(r.tokens for r in store.reservations("s1")) == fits * CAP_ASK
