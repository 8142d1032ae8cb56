"""The facade: ``Tracker`` and ``Session``, the one API every shell calls.

A ``Tracker`` owns a store and the shared counting cache. A ``Session`` is one
context window under management: it holds its items and running totals, so adding
an item and asking the status never recount what was already counted, and it
anchors on every usage the provider reports. When the session is stored, each
change is written through, with an event in its append-only ledger.

Decisions (levels, calibration, history replay) live in pure modules
(``policy``, ``status``, ``accounting``); this module does the I/O around them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .accounting import Calibration, HistoryPoint, replay_history
from .errors import SessionNotFoundError
from .model import MAIN_AGENT, Item, Kind, Level, Role, Transcript, Usage
from .policy import Policy
from .sources import load_source
from .status import AgentUsage, Breakdown, Status, build_status
from .store import Store, StoredSession, open_store
from .tokens.counters import CachedCounter, counter_name_for_model, get_counter

_CONVERSATION_KINDS = {
    Kind.USER_TEXT,
    Kind.ASSISTANT_TEXT,
    Kind.TOOL_CALL,
    Kind.TOOL_RESULT,
    Kind.FILE_READ,
    Kind.SEARCH_RESULT,
    Kind.AGENT_REPORT,
    Kind.THINKING,
}


class Tracker:
    """Entry point: ``Tracker(store="sqlite:///budget.db").session(model="claude-…")``."""

    def __init__(self, store: str | Store | None = None) -> None:
        # The store opens on first use: reading a transcript needs none.
        self._store: Store | None = store if isinstance(store, Store) else None
        self._store_url = None if isinstance(store, Store) else store
        self._counters: dict[str, CachedCounter] = {}

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self._store_url)
        return self._store

    def counter(self, name: str) -> CachedCounter:
        if name not in self._counters:
            self._counters[name] = CachedCounter(get_counter(name))
        return self._counters[name]

    def session(
        self,
        session_id: str | None = None,
        *,
        model: str | None = None,
        policy: Policy | None = None,
        name: str | None = None,
        **policy_fields: Any,
    ) -> Session:
        """Open the stored session ``session_id``, or start a new stored session."""
        if session_id is not None:
            try:
                return self.open(session_id)
            except SessionNotFoundError:
                pass
        policy = (policy or Policy.for_model(model)).replace(model=model, **policy_fields)
        session = Session(self, policy=policy, session_id=session_id, name=name)
        session.save()
        return session

    def open(self, session_id: str) -> Session:
        """Open a stored session by id or unique id prefix."""
        stored = self._resolve(session_id)
        policy = Policy.from_mapping(stored.policy, origin=f"stored session {stored.id}")
        session = Session(self, policy=policy, session_id=stored.id, name=stored.name)
        session._restore(stored, self.store.load_items(stored.id))
        return session

    def _resolve(self, session_id: str) -> StoredSession:
        try:
            return self.store.get_session(session_id)
        except SessionNotFoundError:
            matches = self.store.find_sessions(session_id)
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                ids = ", ".join(m.id for m in matches[:5])
                raise SessionNotFoundError(
                    f'session id "{session_id}" is ambiguous ({ids}…): type more of it'
                ) from None
            raise

    def load(
        self,
        source: str | Path | Transcript,
        *,
        model: str | None = None,
        policy: Policy | None = None,
        **policy_fields: Any,
    ) -> Session:
        """A session from a transcript or messages file (in memory until ``save()``)."""
        transcript = source if isinstance(source, Transcript) else load_source(source)
        model = model or (policy.model if policy else None) or transcript.model
        base = policy or Policy.for_model(model)
        if policy is not None and policy.window == Policy().window and model:
            base = policy.replace(window=Policy.for_model(model).window)
        session = Session(
            self,
            policy=base.replace(model=model, **policy_fields),
            session_id=transcript.session_id,
            stored=False,
        )
        session._from_transcript(transcript)
        return session

    def sessions(self, limit: int = 50) -> list[StoredSession]:
        return self.store.list_sessions(limit=limit)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Session:
    """One context window: items, the latest reported usage, and what was added since."""

    def __init__(
        self,
        tracker: Tracker,
        *,
        policy: Policy,
        session_id: str | None = None,
        name: str | None = None,
        stored: bool = True,
    ) -> None:
        self.tracker = tracker
        self.policy = policy
        self.id = session_id or uuid.uuid4().hex
        self.name = name
        self.items: list[Item] = []
        self.calibration = self._new_calibration()
        self.transcript: Transcript | None = None
        self.version = 1
        self._stored = stored
        self._known_to_store = False
        self._reported: int | None = None
        self._since_tokens = 0
        self._since_items = 0
        self._local_total = 0
        self._by: dict[str, dict[str, int]] = {"component": {}, "kind": {}, "tool": {}, "agent": {}}
        self._user_turns = 0
        self._conversation_tokens = 0
        self._level = Level.NORMAL
        self._subagents: list[AgentUsage] = []
        self._unknown = 0
        self._recorded_calls = 0

    # -- counting -----------------------------------------------------------------

    @property
    def counter(self) -> CachedCounter:
        return self.tracker.counter(
            self.policy.counter or counter_name_for_model(self.policy.model)
        )

    def _new_calibration(self) -> Calibration:
        name = self.policy.counter or counter_name_for_model(self.policy.model)
        exact = name in ("o200k_base", "cl100k_base") and name == counter_name_for_model(
            self.policy.model
        )
        return Calibration.for_counter(exact_for_model=exact)

    def _count(self, item: Item) -> int:
        if item.tokens is None:
            item.tokens = self.counter.count(item.text, item.hash)
        return item.tokens

    def _tally(self, item: Item) -> None:
        tokens = self._count(item)
        self._local_total += tokens
        for dimension, key in (
            ("component", item.component.value if item.component else None),
            ("kind", item.kind.value),
            ("tool", item.tool),
            ("agent", item.agent),
        ):
            if key:
                bucket = self._by[dimension]
                bucket[key] = bucket.get(key, 0) + tokens
        if item.kind in _CONVERSATION_KINDS:
            self._conversation_tokens += tokens
        if item.kind is Kind.USER_TEXT:
            self._user_turns += 1

    # -- building -----------------------------------------------------------------

    def add(
        self,
        item: Item | str,
        *,
        role: Role | str = Role.USER,
        kind: Kind | str | None = None,
        **fields: Any,
    ) -> Item:
        """Add one item (or a text, with its role and kind) to the context."""
        if isinstance(item, str):
            role = Role(role)
            if kind is None:
                kind = {
                    Role.SYSTEM: Kind.SYSTEM_PROMPT,
                    Role.ASSISTANT: Kind.ASSISTANT_TEXT,
                    Role.TOOL: Kind.TOOL_RESULT,
                }.get(role, Kind.USER_TEXT)
            item = Item(role=role, kind=Kind(kind), text=item, **fields)
        return self.extend([item])[0]

    def extend(self, items: Iterable[Item]) -> list[Item]:
        """Add items in order; counted once each, written to the store in one go."""
        new = list(items)
        for item in new:
            if item.message_index == 0 and self.items:
                item.message_index = self.items[-1].message_index + 1
            self._tally(item)
            self._since_tokens += item.tokens or 0
            self._since_items += 1
        self.items.extend(new)
        if self._stored and new:
            if self._known_to_store:
                with self.tracker.store.transaction():
                    self.tracker.store.append_items(self.id, new, version=self.version)
                    self.save()
            else:
                self.save()  # the first save writes every item, these included
        self._check_level()
        return new

    def add_messages(self, messages: list[Any] | Mapping[str, Any]) -> list[Item]:
        """Add an Anthropic or OpenAI message list (as sent to the API)."""
        from .sources.messages import read_messages

        transcript = read_messages(messages)
        self._unknown += transcript.unknown_records
        return self.extend(transcript.items)

    def record_usage(self, usage: Usage | Mapping[str, Any] | Any | int) -> Status:
        """Anchor on what the provider reported for the request just made.

        ``usage`` is the response's usage (Anthropic or OpenAI shape), a ``Usage``,
        or the context size as an int. Returns the new status.
        """
        if isinstance(usage, int):
            usage = Usage(input_tokens=usage)
        elif not isinstance(usage, Usage):
            usage = Usage.from_api(usage)
        reported = usage.context_tokens
        predicted = self.used_tokens
        if self._reported is not None:
            self.calibration.learn(self._since_tokens, self._since_items, reported - self._reported)
        self._reported = reported
        self._since_tokens = 0
        self._since_items = 0
        if self._stored:
            with self.tracker.store.transaction():
                self.save()
                self.tracker.store.append_event(
                    self.id,
                    "usage_recorded",
                    {
                        "context_tokens": reported,
                        "predicted_tokens": predicted,
                        "output_tokens": usage.output_tokens,
                    },
                )
        self._check_level()
        return self.status()

    # -- reading ------------------------------------------------------------------

    @property
    def used_tokens(self) -> int:
        if self._reported is None:
            return self.calibration.predict(self._local_total, len(self.items))
        return self._reported + self.calibration.predict(self._since_tokens, self._since_items)

    def status(self) -> Status:
        used = self.used_tokens
        k = self.calibration.per_token
        scaled = {
            dim: {key: round(v * k) for key, v in sorted(values.items(), key=lambda kv: -kv[1])}
            for dim, values in self._by.items()
        }
        attributed = sum(scaled["component"].values())
        breakdown = Breakdown(
            component=scaled["component"],
            kind=scaled["kind"],
            tool=scaled["tool"],
            agent=scaled["agent"],
            unattributed=max(0, used - attributed),
            subagents=list(self._subagents),
        )
        per_exchange = None
        if self._user_turns:
            per_exchange = k * self._conversation_tokens / self._user_turns
        return build_status(
            used_tokens=used,
            policy=self.policy,
            breakdown=breakdown,
            anchored=self._reported is not None,
            reported_tokens=self._reported,
            estimated_since_report=used - self._reported if self._reported is not None else used,
            counter=self.counter.name,
            tokens_per_exchange=per_exchange,
            model=self.policy.model,
            session_id=self.id,
            unknown_records=self._unknown,
            items=len(self.items),
        )

    def recount(self) -> int:
        """Count every item again through the content-hash cache; returns the total.

        Needed after the counter changes; with the same counter, only texts never seen
        are tokenized.
        """
        total = 0
        for item in self.items:
            if item.kind is not Kind.IMAGE:  # images are priced by size, not by text
                item.tokens = self.counter.count(item.text, item.hash)
            total += item.tokens or 0
        self._rebuild_totals()
        return total

    def _rebuild_totals(self) -> None:
        self._local_total = 0
        self._by = {"component": {}, "kind": {}, "tool": {}, "agent": {}}
        self._user_turns = 0
        self._conversation_tokens = 0
        for item in self.items:
            self._tally(item)

    def history(self) -> list[HistoryPoint]:
        """Each API call of the loaded transcript: reported vs predicted context size."""
        if self.transcript is None:
            return []
        points, _ = replay_history(
            self.transcript.calls,
            self.transcript.history_items,
            self._count,
            self._new_calibration(),
        )
        return points

    def events(self, types: Iterable[str] | None = None) -> list[Any]:
        return self.tracker.store.events(self.id, types=types) if self._known_to_store else []

    # -- policy and persistence ---------------------------------------------------

    def set_policy(self, policy: Policy) -> None:
        old = self.policy
        self.policy = policy
        if self._stored:
            with self.tracker.store.transaction():
                self.save()
                self.tracker.store.append_event(
                    self.id, "policy_changed", {"from": old.to_dict(), "to": policy.to_dict()}
                )
        self._check_level()

    def _check_level(self) -> None:
        percent = 100.0 * self.used_tokens / self.policy.window
        level = self.policy.level_for(percent)
        if level is not self._level:
            previous, self._level = self._level, level
            if self._stored:
                self.tracker.store.append_event(
                    self.id,
                    "threshold_crossed",
                    {
                        "from": previous.value,
                        "to": level.value,
                        "percent": round(percent, 2),
                        "used_tokens": self.used_tokens,
                    },
                )

    def _meta(self) -> dict[str, Any]:
        return {
            "reported_tokens": self._reported,
            "since_tokens": self._since_tokens,
            "since_items": self._since_items,
            "level": self._level.value,
            "calibration": {
                "per_token": self.calibration.per_token,
                "per_item": self.calibration.per_item,
                "samples": self.calibration.samples,
            },
            "subagents": [a.to_dict() for a in self._subagents],
            "unknown_records": self._unknown,
            "recorded_calls": self._recorded_calls,
        }

    def save(self) -> None:
        """Write the session's row (creating it, with its items, the first time)."""
        self._stored = True
        store = self.tracker.store
        now = time.time()
        if self._known_to_store:
            stored = store.get_session(self.id)
            stored.policy = self.policy.to_dict()
            stored.meta = self._meta()
            stored.model = self.policy.model
            stored.context_version = self.version
            stored.updated_at = now
            store.update_session(stored)
            return
        source = self.transcript.path if self.transcript else None
        with store.transaction():
            try:
                existing = store.get_session(self.id)
            except SessionNotFoundError:
                existing = None
            recorded_calls = int((existing.meta or {}).get("recorded_calls", 0)) if existing else 0
            if existing is not None:
                # Recording a transcript again: its items become a new context version;
                # the old ones and every event stay (the ledger is append-only).
                self.version = existing.context_version + 1
                existing.policy = self.policy.to_dict()
                existing.meta = self._meta()
                existing.context_version = self.version
                existing.updated_at = now
                store.update_session(existing)
            else:
                store.create_session(
                    StoredSession(
                        id=self.id,
                        name=self.name,
                        model=self.policy.model,
                        source=source,
                        policy=self.policy.to_dict(),
                        created_at=now,
                        updated_at=now,
                        context_version=self.version,
                        meta=self._meta(),
                    )
                )
                store.append_event(
                    self.id,
                    "session_created",
                    {
                        "model": self.policy.model,
                        "window": self.policy.window,
                        "source": source,
                    },
                )
            self._known_to_store = True
            if self.items:
                store.append_items(self.id, self.items, version=self.version)
                store.append_event(
                    self.id,
                    "items_added",
                    {
                        "count": len(self.items),
                        "version": self.version,
                        "tokens": self._local_total,
                    },
                )
            self._record_transcript_calls(recorded_calls)

    def _record_transcript_calls(self, done: int) -> None:
        """One usage event per API call of the transcript not recorded before."""
        if self.transcript is None:
            return
        for point in self.history()[done:]:
            self.tracker.store.append_event(
                self.id,
                "usage_recorded",
                {
                    "call": point.call,
                    "context_tokens": point.reported_tokens,
                    "predicted_tokens": point.predicted_tokens,
                    "timestamp": point.timestamp,
                    "after_compaction": point.after_compaction,
                },
            )
        self._recorded_calls = max(done, len(self.transcript.calls))
        stored = self.tracker.store.get_session(self.id)
        stored.meta = self._meta()
        self.tracker.store.update_session(stored)

    def _restore(self, stored: StoredSession, items: list[Item]) -> None:
        self._known_to_store = True
        self._stored = True
        self.version = stored.context_version
        self.policy = self.policy.replace(model=stored.model) if stored.model else self.policy
        for item in items:
            self._tally(item)
        self.items = items
        meta = stored.meta or {}
        self._reported = meta.get("reported_tokens")
        self._since_tokens = int(meta.get("since_tokens", 0))
        self._since_items = int(meta.get("since_items", 0))
        self._level = Level(meta.get("level", "normal"))
        self._unknown = int(meta.get("unknown_records", 0))
        self._recorded_calls = int(meta.get("recorded_calls", 0))
        cal = meta.get("calibration") or {}
        self.calibration = self._new_calibration()
        self.calibration.per_token = float(cal.get("per_token", self.calibration.per_token))
        self.calibration.per_item = float(cal.get("per_item", self.calibration.per_item))
        self.calibration.samples = [(int(a), int(b), int(c)) for a, b, c in cal.get("samples", [])]
        self._subagents = [AgentUsage(**a) for a in meta.get("subagents", [])]

    def _from_transcript(self, transcript: Transcript) -> None:
        self.transcript = transcript
        self._unknown = transcript.unknown_records
        for item in transcript.items:
            self._tally(item)
        self.items = list(transcript.items)
        # Learn the correction from the whole history, then anchor on the latest call.
        _, self.calibration = replay_history(
            transcript.calls, transcript.history_items, self._count, self._new_calibration()
        )
        if transcript.anchor_call is not None and transcript.anchor_position is not None:
            self._reported = transcript.calls[transcript.anchor_call].usage.context_tokens
            since = transcript.items[transcript.anchor_position :]
            self._since_tokens = sum(item.tokens or 0 for item in since)
            self._since_items = len(since)
        else:
            self._since_tokens = self._local_total
            self._since_items = len(self.items)
        self._level = self.policy.level_for(100.0 * self.used_tokens / self.policy.window)
        for name, agent_items in transcript.agents.items():
            calls = transcript.agent_calls.get(name, [])
            local = sum(self._count(i) for i in agent_items)
            self._subagents.append(
                AgentUsage(
                    name=name,
                    context_tokens=calls[-1].usage.context_tokens if calls else local,
                    calls=len(calls),
                    output_tokens=sum(c.usage.output_tokens for c in calls),
                    items=len(agent_items),
                )
            )
        if MAIN_AGENT not in self._by["agent"] and self.items:
            self._by["agent"][MAIN_AGENT] = 0
