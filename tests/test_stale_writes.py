"""A session object that another writer overtook never undoes that writer's work.

Two ``Tracker``s on one SQLite file stand for two processes: each write of a session's
state checks the revision it read (compare-and-set); an append or a usage is applied
again on top of what the other stored, and what cannot be re-applied is refused with
``ConcurrentModificationError``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ctxbudget import Tracker
from ctxbudget.compaction import CompactionPolicy
from ctxbudget.errors import ConcurrentModificationError
from ctxbudget.policy import Policy


def _long_session(tracker: Tracker) -> str:
    session = tracker.session(model="gpt-4o", window=20_000)
    session.add("You are a careful analyst.", role="system")
    for n in range(12):
        session.add(f"Question {n}: what does REQ-{n:03d} say about the export format? " * 8)
        session.add(f"Answer {n}: REQ-{n:03d} needs CSV and JSON exports. " * 12, role="assistant")
    return session.id


@pytest.fixture
def two_trackers(shared_url: str) -> Iterator[tuple[Tracker, Tracker]]:
    """Two processes' trackers on one store (SQLite, PostgreSQL)."""
    with Tracker(shared_url) as first, Tracker(shared_url) as second:
        yield first, second


def test_stale_add_keeps_the_other_writers_compaction(
    two_trackers: tuple[Tracker, Tracker],
) -> None:
    first, second = two_trackers
    session_id = _long_session(first)
    stale = first.open(session_id)
    other = second.open(session_id)
    compaction = other.compact(CompactionPolicy(target_ratio=3, keep_last=1))
    assert compaction.version_to == 2

    stale.add("One more question about REQ-011.")

    fresh = Tracker(second.store).open(session_id)
    assert fresh.version == 2  # the compaction stands
    assert fresh.items[-1].text == "One more question about REQ-011."
    assert stale.version == 2 and stale.used_tokens == fresh.used_tokens
    fresh.restore(force=True)  # and it can still be undone
    assert fresh.version == 1


def test_two_writers_appending_both_count(two_trackers: tuple[Tracker, Tracker]) -> None:
    first, second = two_trackers
    session_id = _long_session(first)
    a = first.open(session_id)
    b = second.open(session_id)
    a.add("Appended by the first process: REQ-100 is new.")
    b.add("Appended by the second process: REQ-200 is new.")
    b.record_usage(9_000)
    a.add("The first process again.")

    final = Tracker(first.store).open(session_id)
    texts = [item.text for item in final.items]
    assert texts[-3:] == [
        "Appended by the first process: REQ-100 is new.",
        "Appended by the second process: REQ-200 is new.",
        "The first process again.",
    ]
    # the usage the second process recorded anchors the figure; the first's later
    # item is counted on top of it
    assert final.status().reported_tokens == 9_000
    assert final.used_tokens > 9_000
    assert a.used_tokens == final.used_tokens


def test_a_stale_restore_is_refused(two_trackers: tuple[Tracker, Tracker]) -> None:
    first, second = two_trackers
    session_id = _long_session(first)
    compacting = first.open(session_id)
    compacting.compact(CompactionPolicy(target_ratio=3, keep_last=1))
    stale = second.open(session_id)  # at version 2
    first.open(session_id).add("Work after the compaction.")
    before = Tracker(first.store).open(session_id)

    with pytest.raises(ConcurrentModificationError, match="changed in the store"):
        stale.restore(force=True)

    after = Tracker(first.store).open(session_id)
    assert (after.version, after.context_hash()) == (before.version, before.context_hash())


def test_the_hooks_window_update_keeps_what_another_process_wrote_since(
    two_trackers: tuple[Tracker, Tracker],
) -> None:
    from ctxbudget.claude_code import hook_session

    first, second = two_trackers
    session_id = _long_session(first)
    first.open(session_id).set_policy(Policy.for_model("gpt-4o"))  # the model's window
    stale = first.store.get_session(session_id)  # a hook read the row ...
    other = second.open(session_id)  # ... then another process compacted the session
    other.compact(CompactionPolicy(target_ratio=3))
    version = second.store.get_session(session_id).context_version
    hook_session.follow_model(first, stale, "gpt-4o", 400_000)  # Claude Code reported 400k
    row = first.store.get_session(session_id)
    assert row.policy["window"] == 400_000
    assert row.context_version == version  # the compaction is still the current context
    assert row.meta["revision"] == second.store.get_session(session_id).meta["revision"]
    assert first.open(session_id).version == version


def test_phases_and_remembered_values_of_two_writers_are_both_kept(
    two_trackers: tuple[Tracker, Tracker],
) -> None:
    """Each writer changes what it changes, on the row as stored now: two processes
    starting a phase (or an MCP sprint) at once both keep theirs. Before, each wrote its
    whole budget state as it had read it: 3 of 12 concurrent sprints were kept."""
    first, second = two_trackers
    session_id = _long_session(first)
    a, b = first.open(session_id), second.open(session_id)  # both read before either writes
    a.start_phase("research", 4_000)
    b.start_phase("build", 6_000)
    a.remember_with("sprints", lambda kept: {**(kept or {}), "one": 1})
    b.remember_with("sprints", lambda kept: {**(kept or {}), "two": 2})
    stored = Tracker(first.store.url).open(session_id)
    assert stored.budget.phases == ["research", "build"]
    assert stored.budget.phase_budgets == {"research": 4_000, "build": 6_000}
    assert stored.budget.phase == "build"
    assert stored.remembered("sprints") == {"one": 1, "two": 2}
    assert b.remembered("sprints") == {"one": 1, "two": 2}  # the writer sees what is kept


def test_a_full_write_keeps_the_phases_and_values_another_process_kept_since(
    two_trackers: tuple[Tracker, Tracker],
) -> None:
    """A copy opened before another process started a phase (or kept a value) writes
    its figures, not its old budgets: the phase stays. Before, its next usage wrote the
    phases back to none."""
    first, second = two_trackers
    session_id = _long_session(first)
    a, b = first.open(session_id), second.open(session_id)
    b.start_phase("review", 5_000)
    b.remember("marker", 1)
    a.add("One more question about the exports.")
    a.record_usage(3_000)
    stored = Tracker(first.store.url).open(session_id)
    assert stored.budget.phases == ["review"] and stored.budget.phase == "review"
    assert stored.remembered("marker") == 1
    assert stored.status().reported_tokens == 3_000
