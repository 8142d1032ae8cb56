"""Recording a session in the store: what a transcript recorded again adds, the ledger
events of its API calls, and the history a stored session's ledger tells.

Pure decisions over what the store holds and what was read: ``SessionState.save``
asks them and writes the answer in its own transaction. A transcript is recorded
again and again (every hook, every ``tokens --record``); the ledger is append-only,
so only what is new is written, and a context that was compacted in the store since
stays compacted unless the file's own context is asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .accounting import HistoryPoint
from .level import Level, shown_percent
from .model import EventType, Item
from .policy import Policy
from .store import Store, StoredEvent, StoredSession

__all__ = [
    "HOOK_CALLS",
    "Recording",
    "content_of",
    "context_hash",
    "hash_of_contents",
    "history_from_events",
    "next_version",
    "plan_recording",
    "recorded_calls_of",
    "revision_of",
    "usage_events",
]

Event = tuple[str, dict[str, Any]]


def context_hash(items: Iterable[Item]) -> str:
    """A hash of a context's content and order: equal hashes, identical contexts."""
    return hash_of_contents(map(content_of, items))


def content_of(item: Item) -> tuple[str, str, str, str, str]:
    """What ``context_hash`` hashes of an item (strings: a copy no later edit of the
    item changes)."""
    return (item.role.value, item.kind.value, item.tool or "", item.pair_id or "", item.text)


def hash_of_contents(contents: Iterable[tuple[str, ...]]) -> str:
    """``context_hash`` of the items whose ``content_of`` are ``contents``."""
    digest = hashlib.blake2b(digest_size=16)
    for parts in contents:
        # each part then \x1f, the item then \x1e: one encode and update per item
        digest.update(("\x1f".join(parts) + "\x1f\x1e").encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def next_version(store: Store, session_id: str, stored: StoredSession) -> int:
    """A context version number no stored version has (restore can leave later ones)."""
    return max([stored.context_version, *(v.version for v in store.versions(session_id))]) + 1


def revision_of(stored: StoredSession) -> int:
    """How many full writes of the session's state the store has had."""
    return int((stored.meta or {}).get("revision", 0) or 0)


#: The stored row's count of the API calls the Claude Code hooks recorded (one event for
#: the calls since the last: ``claude_code.hook_session.record_usage``), beside
#: ``recorded_calls`` (``tokens --record``: a point per call).
HOOK_CALLS = "hook_recorded_calls"


def recorded_calls_of(stored: StoredSession) -> int:
    """How many of the transcript's API calls ``tokens --record`` put in the ledger as
    usage events (a point each): recording again adds only the calls after them."""
    return int((stored.meta or {}).get("recorded_calls", 0) or 0)


@dataclass(slots=True)
class Recording:
    """What recording a context on top of a stored session writes."""

    version: int  # the context version the items go to
    to_append: list[Item]
    # the stored context, compacted since, with the new items on top: the session's
    # context once written
    adopt: list[Item] | None = None
    # the compacted stored version the file's own context was put on top of
    overtook: int | None = None


def plan_recording(
    store: Store,
    existing: StoredSession,
    items: Sequence[Item],
    *,
    from_transcript: bool,
    keep_transcript_context: bool = False,
) -> Recording:
    """What to write when ``items`` are recorded again on the stored ``existing``.

    When the transcript still starts with what was recorded last time, its new items
    go on top of the stored context, compacted or not (with ``keep_transcript_context``
    a compacted one is passed by: the file's whole context becomes a new version).
    Otherwise, when the stored context is a prefix of these items, only the tail is
    added; else these items become a new version.
    """
    old = existing.meta or {}
    seen = int(old.get("recorded_items", 0) or 0)
    stored_items = store.load_items(existing.id, version=existing.context_version)
    stored_hashes = [i.hash for i in stored_items]
    if (
        from_transcript
        and old.get("recorded_hash")
        and seen <= len(items)
        and context_hash(items[:seen]) == old.get("recorded_hash")
    ):
        new = list(items[seen:])
        if _stored(store, stored_hashes, items[:seen]):
            return Recording(existing.context_version, new)
        if keep_transcript_context:  # the file's own context, on top
            version = next_version(store, existing.id, existing)
            return Recording(version, list(items), overtook=existing.context_version)
        # the stored context was compacted since
        return Recording(existing.context_version, new, adopt=stored_items + new)
    if _stored(store, stored_hashes, items[: len(stored_items)]):
        return Recording(existing.context_version, list(items[len(stored_items) :]))
    return Recording(next_version(store, existing.id, existing), list(items))


def _stored(store: Store, stored_hashes: list[str], items: Sequence[Item]) -> bool:
    """Are ``items`` what the store holds (``stored_hashes``), as they are or as the
    store wrote them (secrets redacted: a test log's token, a key in a command)?"""
    return [i.hash for i in items] == stored_hashes or [
        store.redacted_item(i).hash for i in items
    ] == stored_hashes


def usage_events(
    points: Sequence[HistoryPoint], policy: Policy, level: Level
) -> tuple[list[Event], Level]:
    """The ledger events of API calls not recorded before: one usage each, and each
    threshold crossed on the way (from ``level``); returns them and the level reached."""
    events: list[Event] = []
    for point in points:
        events.append(
            (
                str(EventType.USAGE_RECORDED),
                {
                    "call": point.call,
                    "context_tokens": point.reported_tokens,
                    "predicted_tokens": point.predicted_tokens,
                    "timestamp": point.timestamp,
                    "after_compaction": point.after_compaction,
                },
            )
        )
        percent = 100.0 * point.reported_tokens / policy.window
        reached = policy.level_for(percent)
        if reached is not level:
            events.append(
                (
                    str(EventType.THRESHOLD_CROSSED),
                    {
                        "from": level.value,
                        "to": reached.value,
                        "percent": shown_percent(percent),
                        "used_tokens": point.reported_tokens,
                        "call": point.call,
                        "timestamp": point.timestamp,
                    },
                )
            )
            level = reached
    return events, level


# The ledger events that tell a stored session's history: its usages, and what started
# a new context (the next call after one is the first of that context).
HISTORY_EVENTS = (
    EventType.USAGE_RECORDED,
    EventType.COMPACTED,
    EventType.PRUNED,
    EventType.RESTORED,
)


def history_from_events(events: Iterable[StoredEvent]) -> list[HistoryPoint]:
    """Each recorded API call, reported vs predicted, from the ledger's
    ``usage_recorded`` events (``HISTORY_EVENTS``)."""
    points: list[HistoryPoint] = []
    compacted = False  # a compaction here: the next call starts a new context
    for e in events:
        if e.type != EventType.USAGE_RECORDED:
            compacted = True
            continue
        if not e.data.get("context_tokens"):
            continue
        points.append(
            HistoryPoint(
                call=len(points),
                reported_tokens=int(e.data.get("context_tokens", 0)),
                predicted_tokens=int(e.data.get("predicted_tokens", 0)),
                local_added_tokens=0,
                timestamp=e.data.get("timestamp"),
                after_compaction=compacted or bool(e.data.get("after_compaction")),
            )
        )
        compacted = False
    return points
