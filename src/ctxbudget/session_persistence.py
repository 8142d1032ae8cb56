"""A session as the store keeps it: its row, the metadata every save writes, its
ledger, and saving and loading it.

``StoredFigures`` is the middle of a session: it adds the store to the figures in
memory (``SessionFigures``) and ``SessionState`` (in ``session_state.py``) adds what
changes the context on top of it (items added, usage recorded, context versions).
Every store write goes through its ``SessionRow``, which keeps concurrent writers
from overwriting each other. The metadata (``state``) is what a save writes and what
``load_stored`` reads back: the anchor, level and correction, the sub-agents, the
calls recorded, the budgets, the values kept with ``remember`` and how much of a
transcript is recorded. A transcript recorded again adds only what is new
(``recording.plan_recording`` decides what).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .accounting import Anchor, HistoryPoint
from .budget.state import BudgetState
from .errors import ConfigurationError, SessionNotFoundError
from .level import Level
from .model import AgentUsage, EventType, Item
from .policy import Policy
from .recording import (
    HISTORY_EVENTS,
    Recording,
    context_hash,
    history_from_events,
    plan_recording,
    recorded_calls_of,
    usage_events,
)
from .session_figures import SessionFigures, Workspace
from .session_row import SessionRow
from .store import Store, StoredEvent, StoredSession

__all__ = ["StoredFigures"]


class StoredFigures(SessionFigures):
    """A session's figures with its stored row: its metadata, its ledger, save and load."""

    def __init__(
        self,
        tracker: Workspace,
        policy: Policy,
        session_id: str,
        *,
        name: str | None,
        stored: bool,
    ) -> None:
        super().__init__(tracker, policy, session_id)
        self.name = name
        self.version = 1
        self.budget = BudgetState()
        # Set by ``save(keep_transcript_context=True)``: the compacted stored version the
        # transcript's own context was stored on top of.
        self.overtook_compacted_version: int | None = None
        # False when the policy came from defaults (``Tracker.load`` says): a file
        # recorded again without flags then keeps the policy it was stored with.
        self.policy_given = True
        self.row = SessionRow(lambda: self.tracker.store, self.id, wanted=stored)
        self._recorded_calls = 0
        self._extra: dict[str, Any] = {}
        self._recording: dict[str, Any] = {}

    # -- the stored row, its metadata and its ledger --------------------------------

    @property
    def store(self) -> Store:
        return self.tracker.store

    @property
    def is_stored(self) -> bool:
        """Whether the store holds this session (its items and ledger)."""
        return self.row.known

    def log_event(self, event: EventType | str, data: Mapping[str, Any]) -> None:
        """Append ``event`` to the session's ledger (when the session is stored)."""
        self.row.log(event, data)

    def events(self, types: Iterable[str] | None = None) -> list[StoredEvent]:
        """The session's ledger (optionally only these event types)."""
        return self.row.events(types)

    def state(self) -> dict[str, Any]:
        """The session's figures as stored in its metadata (and saved before a new
        context version, so that ``restore`` gives them back exactly)."""
        return {
            **self.anchor.to_meta(),
            "level": self.level.value,
            "calibration": {
                "per_token": self.calibration.per_token,
                "per_item": self.calibration.per_item,
                "samples": self.calibration.samples,
                **(
                    {"carried": list(self.calibration.prior)}  # a fork's, learned elsewhere
                    if self.calibration.carried
                    else {}
                ),
            },
            "subagents": [a.to_dict() for a in self.subagents],
            "unknown_records": self.unknown_records,
            "recorded_calls": self._recorded_calls,
            "budget": self.budget.to_dict(),
            "extra": dict(self._extra),
            **self._recording,
            "revision": self.row.revision,
        }

    def remember(self, key: str, value: Any) -> None:
        """Keep a small value in the session's stored metadata (e.g. auto-compaction's
        quiet mark, so a hook run in a new process does not try again)."""
        self.remember_with(key, lambda _: value)

    def remember_with(self, key: str, update: Callable[[Any], Any]) -> Any:
        """Keep ``update(the value kept now)`` (None when none), read and written in one
        step: what another process kept meanwhile, under this key or another, stays."""

        def extra(stored: Any) -> dict[str, Any]:
            current = dict(stored) if isinstance(stored, dict) else {}
            current[key] = update(current.get(key))
            return current

        kept = self.row.change("extra", extra)
        self._extra = kept if kept is not None else extra(self._extra)
        return self._extra[key]

    def remembered(self, key: str, default: Any = 0) -> Any:
        """A value kept with ``remember``."""
        return self._extra.get(key, default)

    def use_stored_settings(self, stored: StoredSession) -> None:
        """Take the budgets and remembered values of the stored session ``stored``
        (a transcript read afresh keeps what was decided about it)."""
        meta = stored.meta or {}
        self.budget = BudgetState.from_dict(meta.get("budget"))
        self._extra = dict(meta.get("extra") or {})

    def save_budget(self, change: Callable[[BudgetState], None] | None = None) -> None:
        """Write the budget state to the stored session. ``change``: the change made,
        applied to the state as the store holds it now (another process may have
        started a phase meanwhile), which becomes this session's; without it the whole
        state is written as this session holds it."""
        if change is None:
            self.row.merge({"budget": self.budget.to_dict()})
            return
        change(self.budget)

        def changed(stored: Any) -> dict[str, Any]:
            state = BudgetState.from_dict(stored if isinstance(stored, dict) else None)
            change(state)
            return state.to_dict()

        kept = self.row.change("budget", changed)
        if kept is not None:
            self.budget = BudgetState.from_dict(kept)

    def history(self) -> list[HistoryPoint]:
        """Each API call: reported vs predicted context size.

        From the loaded transcript, or for a stored session from its ledger's
        ``usage_recorded`` events.
        """
        if self.transcript is None:
            return history_from_events(self.row.events(HISTORY_EVENTS))
        return super().history()

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "known": self.row.known, "revision": self.row.revision}

    def rollback(self, snap: dict[str, Any]) -> None:
        super().rollback(snap)
        self.row.known = snap["known"]
        self.row.revision = snap["revision"]

    # -- policy and persistence ---------------------------------------------------

    def set_policy(self, policy: Policy) -> None:
        if not isinstance(policy, Policy):
            raise ConfigurationError(
                f"set_policy takes a Policy (got {type(policy).__name__}): "
                "Policy(window=200_000), say, or session.policy.replace(...)"
            )
        old = self.policy
        self.policy = policy
        if self.row.wanted:
            with self.store.transaction():
                self.save()
                self.store.append_event(
                    self.id,
                    str(EventType.POLICY_CHANGED),
                    {"from": old.to_dict(), "to": policy.to_dict()},
                )
        self.check_level()

    def check_level(self) -> None:
        """Log a ``threshold_crossed`` event when the level changed."""
        level = self.level_now()
        if level is not self.level:
            previous = self.reach(level)
            if self.row.wanted:
                self.store.append_event(
                    self.id,
                    str(EventType.THRESHOLD_CROSSED),
                    {
                        "from": previous.value,
                        "to": level.value,
                        "percent": round(100.0 * self.used_tokens / self.policy.window, 2),
                        "used_tokens": self.used_tokens,
                    },
                )

    def save(self, *, keep_transcript_context: bool = False) -> None:
        """Write the session's row (creating it, with its items, the first time).

        A transcript recorded again adds only what is new, on top of the stored context
        (compacted or not). With ``keep_transcript_context`` (compacting a file: the plan
        was made on the file's own context), a stored context that was compacted since
        is not adopted: the transcript's context becomes a new version on top of the
        stored ones (which stay for ``restore``), and ``overtook_compacted_version``
        names the stored version it went past.
        """
        self.row.wanted = True
        store = self.store
        now = time.time()
        if self.row.known:
            with store.transaction():
                stored = store.get_session(self.id)
                self.row.check_fresh(stored, self.version)
                stored.policy = self.policy.to_dict()
                stored.model = self.policy.model
                stored.context_version = self.version
                stored.updated_at = now
                self.row.write(stored, self.state)
            return
        source = self.transcript.path if self.transcript else None
        with store.transaction():
            try:
                existing = store.get_session(self.id)
            except SessionNotFoundError:
                existing = None
            recorded_calls = recorded_calls_of(existing) if existing else 0
            previous_level = (
                Level((existing.meta or {}).get("level", "normal")) if existing else (Level.NORMAL)
            )
            to_append = list(self.items)
            adopt: list[Item] | None = None
            if existing is not None:
                # Recording a transcript again: what was stored stays (the ledger is
                # append-only) and only what is new is written.
                plan = plan_recording(
                    store,
                    existing,
                    self.items,
                    from_transcript=self.transcript is not None,
                    keep_transcript_context=keep_transcript_context,
                )
                self.version, to_append, adopt = plan.version, plan.to_append, plan.adopt
                if plan.overtook is not None:
                    self.overtook_compacted_version = plan.overtook
                if self._nothing_new(existing, plan, recorded_calls):
                    # recorded again with nothing new: the row stays as it is (a write
                    # would bump its revision and refuse a compaction planned meanwhile)
                    if not self.policy_given:
                        self.policy = Policy.from_mapping(existing.policy, origin="stored session")
                    self.row.adopt(existing)
                    self.row.known = True
                    self._recorded_calls = recorded_calls
                    meta = existing.meta or {}
                    self._recording = {
                        k: meta[k] for k in ("recorded_items", "recorded_hash") if k in meta
                    }
                    return
                if adopt is not None:
                    # the stored context, compacted since, stays the session's: its
                    # figures are written and shown, not the file's whole context's
                    overhead = int((existing.meta or {}).get("overhead", 0) or 0)
                    self.anchor = Anchor(overhead=overhead)
                    self.set_items(list(adopt))
                    self.reach(previous_level)
                if not self.policy_given:
                    # a file recorded again without flags keeps the policy it was stored with
                    self.policy = Policy.from_mapping(existing.policy, origin="stored session")
                elif existing.policy != self.policy.to_dict():
                    store.append_event(
                        self.id,
                        str(EventType.POLICY_CHANGED),
                        {"from": existing.policy, "to": self.policy.to_dict()},
                    )
                existing.policy = self.policy.to_dict()
                existing.context_version = self.version
                existing.updated_at = now
                self.row.adopt(existing)
                self.row.write(existing, self.state)
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
                        meta=self.state(),
                    )
                )
                store.append_event(
                    self.id,
                    str(EventType.SESSION_CREATED),
                    {
                        "model": self.policy.model,
                        "window": self.policy.window,
                        "source": source,
                    },
                )
            self.row.known = True
            if to_append:
                store.append_items(self.id, to_append, version=self.version)
                store.append_event(
                    self.id,
                    str(EventType.ITEMS_ADDED),
                    {
                        "count": len(to_append),
                        "version": self.version,
                        "tokens": sum(i.tokens or 0 for i in to_append),
                    },
                )
            self._record_transcript_calls(recorded_calls, previous_level)
            if self.transcript is not None:
                self._remember_recording(len(self.transcript.items))

    def _nothing_new(self, existing: StoredSession, plan: Recording, recorded_calls: int) -> bool:
        """A transcript recorded again that adds nothing: no item, no API call, no new
        version or policy. (Other sources keep the row written as before.)"""
        transcript = self.transcript
        if transcript is None or plan.to_append or plan.adopt is not None:
            return False
        if plan.overtook is not None or plan.version != existing.context_version:
            return False
        if self.policy_given and existing.policy != self.policy.to_dict():
            return False
        meta = existing.meta or {}
        return len(transcript.calls) <= recorded_calls and meta.get("recorded_items") == len(
            transcript.items
        )

    def _record_transcript_calls(self, done: int, level: Level) -> None:
        """One usage event per API call not recorded before, and each threshold crossed."""
        if self.transcript is None:
            return
        store = self.store
        events, level = usage_events(self.history()[done:], self.policy, level)
        if events:  # one write: the session row is moved once, not once per call
            store.append_events(self.id, events)
        self._recorded_calls = max(done, len(self.transcript.calls))
        self.reach(self.level_now())
        if self.level is not level:
            store.append_event(
                self.id,
                str(EventType.THRESHOLD_CROSSED),
                {"from": level.value, "to": self.level.value, "used_tokens": self.used_tokens},
            )
        stored = store.get_session(self.id)
        self.row.adopt(stored)
        self.row.write(stored, self.state)

    def _remember_recording(self, count: int) -> None:
        """How much of the transcript is recorded, so recording it again adds only what
        is new, on top of the stored context (even a compacted one)."""
        store = self.store
        recorded = self.transcript.items[:count] if self.transcript else []
        self._recording = {"recorded_items": count, "recorded_hash": context_hash(recorded)}
        stored = store.get_session(self.id)
        stored.meta = {**stored.meta, **self._recording}
        store.update_session(stored)

    def load_stored(self, stored: StoredSession, items: list[Item]) -> None:
        """Become the stored session ``stored`` with its current ``items``."""
        self.row.known = True
        self.row.wanted = True
        self.row.adopt(stored)
        self.version = stored.context_version
        self.policy = self.policy.replace(model=stored.model) if stored.model else self.policy
        self.set_items(items)
        meta = stored.meta or {}
        self.anchor = Anchor.from_meta(meta)
        self.reach(Level(meta.get("level", "normal")))
        self.unknown_records = int(meta.get("unknown_records", 0))
        self._recorded_calls = recorded_calls_of(stored)
        self.budget = BudgetState.from_dict(meta.get("budget"))
        self._extra = dict(meta.get("extra") or {})
        self._recording = {k: meta[k] for k in ("recorded_items", "recorded_hash") if k in meta}
        self.load_calibration(meta)
        self.subagents = [AgentUsage(**a) for a in meta.get("subagents", [])]

    def load_calibration(self, meta: Mapping[str, Any]) -> None:
        """The per-session correction as ``meta`` (a row's, or figures saved) holds it."""
        cal = meta.get("calibration") or {}
        self.calibration = self.new_calibration()
        self.calibration.per_token = float(cal.get("per_token", self.calibration.per_token))
        self.calibration.per_item = float(cal.get("per_item", self.calibration.per_item))
        self.calibration.samples = [(int(a), int(b), int(c)) for a, b, c in cal.get("samples", [])]
        carried = cal.get("carried")
        if isinstance(carried, list) and len(carried) == 2:
            self.calibration.prior = (float(carried[0]), float(carried[1]))
            self.calibration.carried = True
