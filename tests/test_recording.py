"""Recording a context again on a stored session: only what is new is written, on top
of the stored context (compacted or not), or as a new version when it is another
context; the ledger's usages and thresholds; the history the ledger tells."""

from __future__ import annotations

from pathlib import Path

from ctxbudget import Item, Kind, Role
from ctxbudget.accounting import HistoryPoint
from ctxbudget.level import Level
from ctxbudget.model import EventType
from ctxbudget.policy import Policy
from ctxbudget.recording import (
    context_hash,
    history_from_events,
    plan_recording,
    usage_events,
)
from ctxbudget.store import Store, StoredSession, open_store


def _items(*texts: str) -> list[Item]:
    return [Item(role=Role.USER, kind=Kind.USER_TEXT, text=t, tokens=len(t)) for t in texts]


def _stored(context: list[Item], recorded: list[Item] | None = None) -> tuple[Store, StoredSession]:
    """A store holding ``context`` as version 1, recorded from ``recorded`` (the
    transcript's items as last read; ``context`` itself when not given)."""
    store = open_store("memory://")
    recorded = context if recorded is None else recorded
    meta = {"recorded_items": len(recorded), "recorded_hash": context_hash(recorded)}
    session = StoredSession("s1", None, None, None, {}, 0.0, 0.0, 1, meta)
    store.create_session(session)
    store.append_items("s1", context, version=1)
    return store, store.get_session("s1")


def test_the_same_transcript_grown_adds_only_its_new_items() -> None:
    first = _items("one", "two")
    store, existing = _stored(first)
    grown = _items("one", "two", "three")
    plan = plan_recording(store, existing, grown, from_transcript=True)
    assert plan.version == 1 and [i.text for i in plan.to_append] == ["three"]
    assert plan.adopt is None and plan.overtook is None


def test_a_context_compacted_in_the_store_gets_the_new_items_on_top() -> None:
    read = _items("one", "two", "three")
    store, existing = _stored(_items("summary of one and two", "three"), recorded=read)
    grown = [*read, *_items("four")]
    plan = plan_recording(store, existing, grown, from_transcript=True)
    assert plan.version == 1 and [i.text for i in plan.to_append] == ["four"]
    assert plan.adopt is not None
    assert [i.text for i in plan.adopt] == ["summary of one and two", "three", "four"]


def test_the_files_own_context_goes_on_top_of_a_compacted_one_when_asked() -> None:
    read = _items("one", "two", "three")
    store, existing = _stored(_items("summary", "three"), recorded=read)
    plan = plan_recording(store, existing, read, from_transcript=True, keep_transcript_context=True)
    assert plan.version == 2 and plan.overtook == 1 and plan.adopt is None
    assert [i.text for i in plan.to_append] == ["one", "two", "three"]


def test_another_context_becomes_a_new_version_and_a_longer_one_adds_its_tail() -> None:
    store, existing = _stored(_items("one", "two"))
    other = plan_recording(store, existing, _items("uno", "dos"), from_transcript=False)
    assert other.version == 2 and [i.text for i in other.to_append] == ["uno", "dos"]
    longer = plan_recording(store, existing, _items("one", "two", "tres"), from_transcript=False)
    assert longer.version == 1 and [i.text for i in longer.to_append] == ["tres"]


def test_usage_events_log_each_threshold_crossed_on_the_way() -> None:
    policy = Policy(window=1000)
    points = [
        HistoryPoint(
            call=n,
            reported_tokens=tokens,
            predicted_tokens=tokens,
            local_added_tokens=0,
            timestamp=None,
            after_compaction=False,
        )
        for n, tokens in enumerate([100, 900, 200])
    ]
    events, level = usage_events(points, policy, Level.NORMAL)
    kinds = [e for e, _ in events]
    assert kinds.count(str(EventType.USAGE_RECORDED)) == 3
    crossed = [d for e, d in events if e == str(EventType.THRESHOLD_CROSSED)]
    assert [(d["from"], d["to"]) for d in crossed] == [
        ("normal", policy.level_for(90.0).value),
        (policy.level_for(90.0).value, "normal"),
    ]
    assert level is Level.NORMAL


def test_the_ledgers_history_marks_the_first_call_after_a_compaction() -> None:
    store = open_store("memory://")
    store.create_session(StoredSession("s1", None, None, None, {}, 0.0, 0.0))
    for tokens in (500, 800):
        store.append_event("s1", str(EventType.USAGE_RECORDED), {"context_tokens": tokens})
    store.append_event("s1", str(EventType.COMPACTED), {})
    store.append_event("s1", str(EventType.USAGE_RECORDED), {"context_tokens": 300})
    points = history_from_events(store.events("s1"))
    assert [p.reported_tokens for p in points] == [500, 800, 300]
    assert [p.after_compaction for p in points] == [False, False, True]


def test_a_transcript_recorded_again_with_nothing_new_writes_nothing(tmp_path: Path) -> None:
    """Recording a file that holds nothing new leaves the stored row as it is: a
    compaction planned meanwhile (by another process) still applies."""
    from cc_session import shop_session

    from ctxbudget import Tracker
    from ctxbudget.compaction import CompactionPolicy

    path = shop_session(rounds=4).write(tmp_path / "s.jsonl", session_id="s-1")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with Tracker(store=url) as tracker:
        tracker.load(path).save()
        before = tracker.store.get_session("s-1")
        events = len(tracker.store.events("s-1"))
    with Tracker(store=url) as tracker:
        compactor = tracker.open("s-1")
        plan = compactor.plan_compaction(CompactionPolicy(target_ratio=3))
        with Tracker(store=url) as other:
            other.load(path).save()  # the same file again, by another process
        assert tracker.store.get_session("s-1").meta == before.meta
        assert len(tracker.store.events("s-1")) == events
        applied = compactor.apply_compaction(plan)
        assert applied.applied_at is not None
