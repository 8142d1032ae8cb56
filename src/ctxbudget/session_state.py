"""A session and its place in the store: the figures (``SessionFigures``) with the
context versions, the ledger and every write that keeps the store current.

``SessionState`` is the public inside of ``Session``: the services that act on a
session (``archive`` for compaction, restore and recall; ``budgeting`` for
allocation, the gate and phases; the shells) read and change it only through the
typed methods here, and every store write goes through it (and its ``SessionRow``,
which keeps concurrent writers from overwriting each other). It knows nothing of
those services: they sit above it, and ``Session`` (in ``session.py``) puts them
together.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from .accounting import Anchor, HistoryPoint
from .budget.state import BudgetState
from .errors import ConcurrentModificationError, SessionNotFoundError, SourceError
from .level import Level
from .model import AgentUsage, EventType, Item, Kind, Role, Usage
from .policy import Policy
from .recording import (
    HISTORY_EVENTS,
    context_hash,
    history_from_events,
    next_version,
    plan_recording,
    usage_events,
)
from .session_figures import SessionFigures, Workspace
from .session_row import SessionRow
from .status import Status
from .store import Store, StoredEvent, StoredSession

__all__ = ["SessionState"]


#: What a context version's saved figures bring back when it is restored: its anchor
#: (``Anchor.to_meta``), its level and its correction; not the session's bookkeeping.
_FIGURES = frozenset(
    {
        *Anchor().to_meta(),
        "level",
        "calibration",
    }
)


class SessionState(SessionFigures):
    """One context window: its figures, its context versions and its stored row."""

    def __init__(
        self,
        tracker: Workspace,
        *,
        policy: Policy,
        session_id: str | None = None,
        name: str | None = None,
        stored: bool = True,
    ) -> None:
        super().__init__(tracker, policy, session_id or uuid.uuid4().hex)
        self.name = name
        self.version = 1
        self.last_alert: str | None = None
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
        self._auto_quiet_until = 0  # no auto-compaction below this size (after an alert)

    # -- the public inside: what services and shells use ---------------------------

    @property
    def store(self) -> Store:
        return self.tracker.store

    @property
    def is_stored(self) -> bool:
        """Whether the store holds this session (its items and ledger)."""
        return self.row.known

    @property
    def auto_quiet_until(self) -> int:
        """No auto-compaction at or below this size (an alert said it would not help)."""
        return max(self._auto_quiet_until, int(self.remembered("auto_quiet_until", 0)))

    def quiet_auto_compaction(self, used_tokens: int, reason: str) -> None:
        """A compaction was not applied: alert (``last_alert`` and the ledger) and make
        no new attempt until the context grows past ``used_tokens``."""
        self.last_alert = reason
        self._auto_quiet_until = used_tokens
        self.remember("auto_quiet_until", used_tokens)
        self.log_event(EventType.ALERT, {"reason": reason, "used_tokens": used_tokens})

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
        self._extra[key] = value
        self.row.merge({"extra": dict(self._extra)})

    def remembered(self, key: str, default: Any = 0) -> Any:
        """A value kept with ``remember``."""
        return self._extra.get(key, default)

    def use_stored_settings(self, stored: StoredSession) -> None:
        """Take the budgets and remembered values of the stored session ``stored``
        (a transcript read afresh keeps what was decided about it)."""
        meta = stored.meta or {}
        self.budget = BudgetState.from_dict(meta.get("budget"))
        self._extra = dict(meta.get("extra") or {})

    def save_budget(self) -> None:
        """Write the budget state to the stored session."""
        self.row.merge({"budget": self.budget.to_dict()})

    def history(self) -> list[HistoryPoint]:
        """Each API call: reported vs predicted context size.

        From the loaded transcript, or for a stored session from its ledger's
        ``usage_recorded`` events.
        """
        if self.transcript is None:
            return history_from_events(self.row.events(HISTORY_EVENTS))
        return super().history()

    # -- context versions ---------------------------------------------------------

    def new_version(
        self,
        items: list[Item],
        *,
        event: EventType,
        data: Mapping[str, Any],
        overhead: int | None = None,
        expect_hash: str | None = None,
    ) -> int:
        """Make ``items`` the context, as a new context version, in one transaction.

        The items of the versions before stay in the store (the archive). ``event``
        is recorded with ``data``, the versions and context hashes, and the figures
        before (for ``restore``). The anchor is dropped: no usage applies to the new
        context until the provider reports again; ``overhead`` (default: as before)
        is what the provider adds beyond the items. With ``expect_hash``, refused
        (``ConcurrentModificationError``, nothing written) when the stored context is
        no longer the one that hash was taken from.
        """
        if not self.row.known:
            self.save()
        store = self.store
        overhead = self.anchor.overhead if overhead is None else overhead
        with store.transaction():
            stored = store.get_session(self.id)
            self.row.check_fresh(stored, self.version)
            if expect_hash is not None and not self._holds(expect_hash):
                raise ConcurrentModificationError(
                    f"session {self.id} changed in the store since it was read "
                    "(another process wrote to it): nothing applied; open it again"
                )
            new = next_version(store, self.id, stored)
            store.append_items(self.id, items, version=new)
            if items:  # an empty context has no items to make its version exist
                store.set_context_version(self.id, new)
            before = self.state()
            hashes = {"context_hash_after": context_hash(items)}
            written = [store.redacted_item(i) for i in items]
            if any(w is not i for w, i in zip(written, items, strict=True)):
                # what the store holds of it (secrets redacted), which a restore reads
                hashes["context_hash_stored"] = context_hash(written)
            store.append_event(
                self.id,
                str(event),
                {
                    **data,
                    "version_from": self.version,
                    "version_to": new,
                    "context_hash_before": context_hash(self.items),
                    **hashes,
                    "session_state_before": before,
                },
            )
            stored = store.get_session(self.id)
            stored.context_version = new
            self.row.write(stored, lambda: {**before, **Anchor(overhead=overhead).to_meta()})
        self.load_context(items, new, Anchor(overhead=overhead))
        # the level of the new context (its threshold_crossed just logged), or the next
        # to open the session takes the old one's and logs the same crossing again
        self.row.merge({"level": self.level.value})
        return new

    def _holds(self, expect_hash: str) -> bool:
        """Whether the stored context is still the one ``expect_hash`` was taken from
        (the store holds secrets redacted: then compared with what it wrote)."""
        store = self.store
        loaded = context_hash(store.load_items(self.id, version=self.version))
        return loaded == expect_hash or (
            context_hash(self.items) == expect_hash
            and loaded == context_hash([store.redacted_item(i) for i in self.items])
        )

    def restore_version(
        self,
        version: int,
        items: list[Item],
        state: Mapping[str, Any] | None,
        data: Mapping[str, Any],
    ) -> None:
        """Point the session back at a stored ``version`` (its ``items``), in one
        transaction; ``state`` (the figures saved when it was left) brings back its
        anchor. Records ``restored`` with ``data``."""
        store = self.store
        with store.transaction():
            stored = store.get_session(self.id)
            self.row.check_fresh(stored, self.version)
            store.set_context_version(self.id, version)
            # the figures of the version left, for a restore back to it (as a compaction
            # keeps them): without them, going forward again took this one's anchor
            left = {**data, "session_state_before": self.state()}
            store.append_event(self.id, str(EventType.RESTORED), left)
            stored = store.get_session(self.id)
            stored.context_version = version
            # the version's figures come back (its anchor, level and correction); the
            # bookkeeping does not: calls recorded, budgets and phases stay as they are
            # (none saved: the anchor is dropped, as for a new version, not this one's kept)
            figures = (
                {k: v for k, v in state.items() if k in _FIGURES}
                if state
                else Anchor(overhead=self.anchor.overhead).to_meta()
            )
            meta = {**stored.meta, **figures}
            self.row.write(stored, lambda: meta)
        anchor = Anchor(overhead=self.anchor.overhead)
        if state:
            anchor = Anchor.from_meta(state, overhead=self.anchor.overhead)
            if "calibration" in state:
                self._load_calibration(state)
        self.load_context(items, version, anchor)
        self.row.merge({"level": self.level.value})  # as load_context found it

    def _load_calibration(self, meta: Mapping[str, Any]) -> None:
        """The per-session correction as ``meta`` (a row's, or figures saved) holds it."""
        cal = meta.get("calibration") or {}
        self.calibration = self.new_calibration()
        self.calibration.per_token = float(cal.get("per_token", self.calibration.per_token))
        self.calibration.per_item = float(cal.get("per_item", self.calibration.per_item))
        self.calibration.samples = [(int(a), int(b), int(c)) for a, b, c in cal.get("samples", [])]

    def load_context(self, items: list[Item], version: int, anchor: Anchor) -> None:
        """Make ``items`` the context in memory (what the store already holds)."""
        self.version = version
        self.anchor = anchor
        self.set_items(list(items))
        self.check_level()

    def reload(self) -> None:
        """Read the session again from the store (after another writer changed it)."""
        stored = self.store.get_session(self.id)
        self.subagents = []
        self.load_stored(stored, self.store.load_items(self.id))

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
        """Add items in order; counted once each, written to the store in one go.

        If the store refuses the write, the session is left as it was.
        """
        new = list(items)
        if not new:
            return new
        indices = [item.message_index for item in new]

        def before_retry() -> None:
            for item, index in zip(new, indices, strict=True):
                item.message_index = index

        # an append is safe to apply on top of what another writer stored
        return self.row.reapplied(lambda: self._extend(new), self.reload, before_retry)

    def _extend(self, new: list[Item]) -> list[Item]:
        offset = self.items[-1].message_index + 1 if self.items else 0
        snapshot = self.snapshot()
        try:
            for item in new:
                item.message_index += offset
                if item.phase is None and self.budget.phase is not None:
                    item.phase = self.budget.phase
                self.tally(item)
                self.anchor.since_tokens += item.tokens or 0
                self.anchor.since_items += 1
            self.items.extend(new)
            if self.row.wanted:
                if self.row.known:
                    with self.store.transaction():
                        self.store.append_items(self.id, new, version=self.version)
                        self.save()
                else:
                    self.save()  # the first save writes every item, these included
        except BaseException:
            self.rollback(snapshot)
            raise
        self.check_level()
        return new

    def add_messages(self, messages: list[Any] | Mapping[str, Any]) -> list[Item]:
        """Add an Anthropic or OpenAI message list (as sent to the API)."""
        from .sources.messages import read_messages

        transcript = read_messages(messages)
        self.unknown_records += transcript.unknown_records
        return self.extend(transcript.items)

    def record_usage(self, usage: Usage | Mapping[str, Any] | Any | int) -> Status:
        """Anchor on what the provider reported for the request just made.

        ``usage`` is the response's usage (Anthropic or OpenAI shape), a ``Usage``,
        or the context size as an int. Add the response itself with ``add`` (role
        assistant): the next request carries it. Returns the new status.
        """
        if isinstance(usage, int):
            usage = Usage(input_tokens=usage)
        elif not isinstance(usage, Usage):
            try:
                usage = Usage.from_api(usage)
            except ValueError as exc:
                raise SourceError(f"the usage given is not usable: {exc}") from exc
        # a usage anchors whatever the context now is: safe to re-apply
        return self.row.reapplied(lambda: self._record_usage(usage), self.reload)

    def _record_usage(self, usage: Usage) -> Status:
        reported = usage.context_tokens
        predicted = self.used_tokens
        snapshot = self.snapshot()
        anchor = self.anchor
        try:
            if anchor.reported is not None:
                self.calibration.learn(
                    anchor.since_tokens, anchor.since_items, reported - anchor.reported
                )
            anchor.reported = reported
            anchor.last_reported = reported
            anchor.since_tokens = 0
            anchor.since_items = 0
            if self.row.wanted:
                with self.store.transaction():
                    self.save()
                    self.store.append_event(
                        self.id,
                        str(EventType.USAGE_RECORDED),
                        {
                            "context_tokens": reported,
                            "predicted_tokens": predicted,
                            "output_tokens": usage.output_tokens,
                        },
                    )
        except BaseException:
            self.rollback(snapshot)
            raise
        self.check_level()
        return self.status()

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "known": self.row.known, "revision": self.row.revision}

    def rollback(self, snap: dict[str, Any]) -> None:
        super().rollback(snap)
        self.row.known = snap["known"]
        self.row.revision = snap["revision"]

    # -- policy and persistence ---------------------------------------------------

    def set_policy(self, policy: Policy) -> None:
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
            recorded_calls = int((existing.meta or {}).get("recorded_calls", 0)) if existing else 0
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

    def _record_transcript_calls(self, done: int, level: Level) -> None:
        """One usage event per API call not recorded before, and each threshold crossed."""
        if self.transcript is None:
            return
        store = self.store
        events, level = usage_events(self.history()[done:], self.policy, level)
        for event, data in events:
            store.append_event(self.id, event, data)
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
        self._recorded_calls = int(meta.get("recorded_calls", 0))
        self.budget = BudgetState.from_dict(meta.get("budget"))
        self._extra = dict(meta.get("extra") or {})
        self._recording = {k: meta[k] for k in ("recorded_items", "recorded_hash") if k in meta}
        self._load_calibration(meta)
        self.subagents = [AgentUsage(**a) for a in meta.get("subagents", [])]
