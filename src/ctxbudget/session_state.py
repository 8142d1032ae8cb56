"""What a session holds and how it is persisted: items, running totals, the anchor on
the provider's usage, context versions and the ledger.

``SessionState`` is the public inside of ``Session``: the services that act on a
session (``archive`` for compaction, restore and recall; ``budgeting`` for
allocation, the gate and phases; the shells) read and change it only through the
typed methods here, and every store write goes through it. It knows nothing of those
services: they sit above it, and ``Session`` (in ``session.py``) puts them together.
Adding an item and asking the status never recount what was already counted.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from .accounting import (
    Anchor,
    Calibration,
    HistoryPoint,
    Totals,
    estimate_overhead,
    replay_history,
)
from .budget.state import BudgetState
from .errors import ConcurrentModificationError, SessionNotFoundError, SourceError
from .level import Level
from .model import MAIN_AGENT, AgentUsage, EventType, Item, Kind, Role, Transcript, Usage
from .policy import Policy
from .recording import (
    HISTORY_EVENTS,
    context_hash,
    history_from_events,
    plan_recording,
    revision_of,
    usage_events,
)
from .status import Breakdown, Status, build_status
from .store import Store, StoredEvent, StoredSession
from .tokens.counters import CachedCounter, counter_name_for_model
from .tokens.framing import EXACT_COUNTERS, UNANCHORED_PER_ITEM

# Attempts of a write that another writer keeps beating (each re-reads the store).
_RETRIES = 5
_T = TypeVar("_T")


def _nothing() -> None:
    pass


class Workspace(Protocol):
    """Where a session lives: its store and its counters (a ``Tracker``)."""

    @property
    def store(self) -> Store: ...

    def counter(self, name: str) -> CachedCounter: ...


class SessionState:
    """One context window: items, the latest reported usage, and what was added since."""

    def __init__(
        self,
        tracker: Workspace,
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
        self.calibration = self.new_calibration()
        self.transcript: Transcript | None = None
        self.version = 1
        self.anchor = Anchor()
        self.last_alert: str | None = None
        self.budget = BudgetState()
        # Set by ``save(keep_transcript_context=True)``: the compacted stored version the
        # transcript's own context was stored on top of.
        self.overtook_compacted_version: int | None = None
        # False when the policy came from defaults (``Tracker.load`` says): a file
        # recorded again without flags then keeps the policy it was stored with.
        self.policy_given = True
        self._stored = stored
        self._known_to_store = False
        # How many full writes of this session's state the store had when it was read:
        # a write checks it (compare-and-set) so that it never overwrites another's.
        self._revision = 0
        self.totals = Totals()
        self._level = Level.NORMAL
        self._subagents: list[AgentUsage] = []
        self.unknown_records = 0
        self._recorded_calls = 0
        # local tokens of what the latest request sent beyond the messages (its system
        # prompt, each tool definition), where the transcript records it
        self._request_shape: dict[str, int] = {}
        self._extra: dict[str, Any] = {}
        self._recording: dict[str, Any] = {}
        self._auto_quiet_until = 0  # no auto-compaction below this size (after an alert)
        # The transcript's history as its load replayed it, with what it depends on
        # beyond the items (the counter, the correction's prior): ``history`` reuses it.
        self._replayed: tuple[tuple[str, tuple[float, float]], list[HistoryPoint]] | None = None

    # -- the public inside: what services and shells use ---------------------------

    @property
    def store(self) -> Store:
        return self.tracker.store

    @property
    def is_stored(self) -> bool:
        """Whether the store holds this session (its items and ledger)."""
        return self._known_to_store

    @property
    def overhead(self) -> int:
        """What the provider counts beyond the items (system prompt, tool definitions),
        as last measured."""
        return self.anchor.overhead

    @property
    def unattributed_tokens(self) -> int:
        """What the provider counts now beyond the corrected count of the items."""
        k = self.calibration.per_token
        return max(
            0,
            self.used_tokens - round(k * self.totals.local_total + self.framing * len(self.items)),
        )

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
        if self._known_to_store:
            self.store.append_event(self.id, str(event), dict(data))

    def state(self) -> dict[str, Any]:
        """The session's figures as stored in its metadata (and saved before a new
        context version, so that ``restore`` gives them back exactly)."""
        return {
            **self.anchor.to_meta(),
            "level": self._level.value,
            "calibration": {
                "per_token": self.calibration.per_token,
                "per_item": self.calibration.per_item,
                "samples": self.calibration.samples,
            },
            "subagents": [a.to_dict() for a in self._subagents],
            "unknown_records": self.unknown_records,
            "recorded_calls": self._recorded_calls,
            "budget": self.budget.to_dict(),
            "extra": dict(self._extra),
            **self._recording,
            "revision": self._revision,
        }

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
        if not self._known_to_store:
            self.save()
        store = self.store
        overhead = self.anchor.overhead if overhead is None else overhead
        with store.transaction():
            self._check_fresh(store.get_session(self.id))
            if expect_hash is not None:
                stored_now = store.get_session(self.id)
                loaded = context_hash(store.load_items(self.id, version=self.version))
                if stored_now.context_version != self.version or (
                    loaded != expect_hash
                    # the store holds secrets redacted: compare with what it wrote
                    and (
                        context_hash(self.items) != expect_hash
                        or loaded != context_hash([store.redacted_item(i) for i in self.items])
                    )
                ):
                    raise ConcurrentModificationError(
                        f"session {self.id} changed in the store since it was read "
                        "(another process wrote to it): nothing applied; open it again"
                    )
            versions = [v.version for v in store.versions(self.id)]
            new = max([*versions, self.version]) + 1
            store.append_items(self.id, items, version=new)
            if items:  # an empty context has no items to make its version exist
                store.set_context_version(self.id, new)
            before = self.state()
            store.append_event(
                self.id,
                str(event),
                {
                    **data,
                    "version_from": self.version,
                    "version_to": new,
                    "context_hash_before": context_hash(self.items),
                    "context_hash_after": context_hash(items),
                    "session_state_before": before,
                },
            )
            stored = store.get_session(self.id)
            stored.context_version = new
            anchor = Anchor(overhead=overhead)
            self._revision += 1
            stored.meta = {**before, **anchor.to_meta(), "revision": self._revision}
            store.update_session(stored)
        self.load_context(items, new, Anchor(overhead=overhead))
        return new

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
            self._check_fresh(store.get_session(self.id))
            store.set_context_version(self.id, version)
            store.append_event(self.id, str(EventType.RESTORED), dict(data))
            stored = store.get_session(self.id)
            stored.context_version = version
            self._revision += 1
            stored.meta = {**stored.meta, **(state or {}), "revision": self._revision}
            store.update_session(stored)
        anchor = Anchor(overhead=self.anchor.overhead)
        if state:
            anchor = Anchor.from_meta(state, overhead=self.anchor.overhead)
        self.load_context(items, version, anchor)

    def load_context(self, items: list[Item], version: int, anchor: Anchor) -> None:
        """Make ``items`` the context in memory (what the store already holds)."""
        self.items = list(items)
        self.version = version
        self.anchor = anchor
        self._rebuild_totals()
        self.check_level()

    def _check_fresh(self, stored: StoredSession) -> None:
        """Refuse to write over what another writer stored since this state was read."""
        if stored.context_version != self.version or revision_of(stored) != self._revision:
            raise ConcurrentModificationError(
                f"session {self.id} changed in the store since it was read (another "
                f"process wrote to it: context version {stored.context_version}, this "
                f"copy has {self.version}): nothing was overwritten; open it again"
            )

    def _reapplied(
        self, write: Callable[[], _T], before_retry: Callable[[], None] = _nothing
    ) -> _T:
        """Run ``write``; when another writer came first, read the session again and
        apply the write on top of what it stored (only for writes where that is safe)."""
        for _ in range(_RETRIES - 1):
            try:
                return write()
            except ConcurrentModificationError:
                before_retry()
                self.reload()
        return write()

    def reload(self) -> None:
        """Read the session again from the store (after another writer changed it)."""
        stored = self.store.get_session(self.id)
        self.totals = Totals()
        self._subagents = []
        self.load_stored(stored, self.store.load_items(self.id))

    def events(self, types: Iterable[str] | None = None) -> list[StoredEvent]:
        """The session's ledger (optionally only these event types)."""
        return self.store.events(self.id, types=types) if self._known_to_store else []

    def remember(self, key: str, value: Any) -> None:
        """Keep a small value in the session's stored metadata (e.g. auto-compaction's
        quiet mark, so a hook run in a new process does not try again)."""
        self._extra[key] = value
        if self._known_to_store:
            with self.store.transaction():  # the row as it is now, not as read before
                stored = self.store.get_session(self.id)
                stored.meta = {**stored.meta, "extra": dict(self._extra)}
                self.store.update_session(stored)

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
        if self._known_to_store:
            with self.store.transaction():  # the row as it is now, not as read before
                stored = self.store.get_session(self.id)
                stored.meta = {**stored.meta, "budget": self.budget.to_dict()}
                self.store.update_session(stored)

    def context_hash(self) -> str:
        return context_hash(self.items)

    # -- counting -----------------------------------------------------------------

    @property
    def counter(self) -> CachedCounter:
        return self.tracker.counter(
            self.policy.counter or counter_name_for_model(self.policy.model)
        )

    def new_calibration(self) -> Calibration:
        """The starting correction for this session's counter and model."""
        name = self.policy.counter or counter_name_for_model(self.policy.model)
        exact = name in EXACT_COUNTERS and name == counter_name_for_model(self.policy.model)
        return Calibration.for_counter(exact_for_model=exact, counter=name)

    def count(self, item: Item) -> int:
        """The item's local token count (counted once, then kept on the item)."""
        if item.tokens is None:
            item.tokens = self.counter.count(item.text, item.hash)
        return item.tokens

    def _tally(self, item: Item) -> None:
        self.totals.add(item, self.count(item))

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
        return self._reapplied(lambda: self._extend(new), before_retry)

    def _extend(self, new: list[Item]) -> list[Item]:
        offset = self.items[-1].message_index + 1 if self.items else 0
        snapshot = self._snapshot()
        try:
            for item in new:
                item.message_index += offset
                if item.phase is None and self.budget.phase is not None:
                    item.phase = self.budget.phase
                self._tally(item)
                self.anchor.since_tokens += item.tokens or 0
                self.anchor.since_items += 1
            self.items.extend(new)
            if self._stored:
                if self._known_to_store:
                    with self.store.transaction():
                        self.store.append_items(self.id, new, version=self.version)
                        self.save()
                else:
                    self.save()  # the first save writes every item, these included
        except BaseException:
            self._rollback(snapshot)
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
        return self._reapplied(lambda: self._record_usage(usage))

    def _record_usage(self, usage: Usage) -> Status:
        reported = usage.context_tokens
        predicted = self.used_tokens
        snapshot = self._snapshot()
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
            if self._stored:
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
            self._rollback(snapshot)
            raise
        self.check_level()
        return self.status()

    def _snapshot(self) -> dict[str, Any]:
        return {
            "items": len(self.items),
            "totals": self.totals.copy(),
            "anchor": dataclasses.replace(self.anchor),
            "calibration": (
                self.calibration.per_token,
                self.calibration.per_item,
                list(self.calibration.samples),
            ),
            "level": self._level,
            "known": self._known_to_store,
            "revision": self._revision,
        }

    def _rollback(self, snap: dict[str, Any]) -> None:
        del self.items[snap["items"] :]
        self.totals = snap["totals"]
        self.anchor = snap["anchor"]
        k, c, samples = snap["calibration"]
        self.calibration.per_token, self.calibration.per_item = k, c
        self.calibration.samples = samples
        self._level = snap["level"]
        self._known_to_store = snap["known"]
        self._revision = snap["revision"]

    # -- reading ------------------------------------------------------------------

    @property
    def framing(self) -> float:
        """Tokens of framing per item: learned from usage; without any usage, a small
        default (a message's role markers), not the tool-heavy prior."""
        if self.calibration.samples or self.anchor.reported is not None:
            return self.calibration.per_item
        return min(self.calibration.per_item, UNANCHORED_PER_ITEM)

    @property
    def used_tokens(self) -> int:
        return self.anchor.used_tokens(
            self.calibration, self.totals.local_total, len(self.items), self.framing
        )

    @property
    def level(self) -> Level:
        """The level the session was last seen at (thresholds crossed are logged)."""
        return self._level

    def status(self) -> Status:
        used = self.used_tokens
        k = self.calibration.per_token
        framing = self.framing
        # Each item in provider units: its corrected count and its framing, so that what
        # is left over (``unattributed``) is the provider's overhead, the figure
        # ``unattributed_tokens`` and the compaction use.
        local_total = self.totals.local_total
        counted = k * local_total + framing * len(self.items)
        if framing < 0:
            # a learnt framing below 0 (a fit that trades it against per_token): the same
            # total, spread over the tokens, so that no share is negative
            k, framing = (max(0.0, counted) / local_total if local_total else 0.0), 0.0
        if counted > used:
            # Local counts overshoot what the provider reported: shares must still add
            # up to the total, so scale them down to it.
            k, framing = k * used / counted, framing * used / counted
        scaled = self.totals.scaled(k, framing)
        attributed = sum(scaled["component"].values())
        breakdown = Breakdown(
            component=scaled["component"],
            kind=scaled["kind"],
            tool=scaled["tool"],
            agent=scaled["agent"],
            unattributed=max(0, used - attributed),
            subagents=list(self._subagents),
        )
        breakdown.overhead = self._shape_overhead(limit=breakdown.unattributed)
        anchor = self.anchor
        return build_status(
            used_tokens=used,
            policy=self.policy,
            breakdown=breakdown,
            anchored=anchor.reported is not None,
            reported_tokens=anchor.last_reported
            if anchor.last_reported is not None
            else (anchor.reported),
            estimated_since_report=used - (anchor.last_reported or anchor.reported or 0),
            counter=self.counter.name,
            recent_exchanges=self.totals.recent_exchanges(self.calibration.per_token, self.framing),
            exchange_gaps=self.totals.exchange_gaps(),
            model=self.policy.model,
            session_id=self.id,
            unknown_records=self.unknown_records,
            items=len(self.items),
            # no usage measured this context yet: its overhead came from earlier ones
            overhead_estimated=anchor.reported is None and anchor.overhead > 0,
        )

    def _shape_overhead(self, limit: int | None = None) -> dict[str, int]:
        """The system prompt and each tool definition of the latest request in provider
        units (corrected count and a block's framing), scaled down to ``limit`` when they
        would exceed it (what the provider reported beyond the transcript)."""
        k, framing = self.calibration.per_token, max(0.0, self.framing)
        parts = {label: k * n + framing for label, n in self._request_shape.items()}
        total = sum(parts.values())
        scale = limit / total if limit is not None and total > limit else 1.0
        return {label: round(v * scale) for label, v in parts.items()}

    def recount(self) -> int:
        """Count every item again through the content-hash cache; returns the total.

        Needed after the counter changes; with the same counter, only texts never seen
        are tokenized.
        """
        total = 0
        self._replayed = None  # the counts change: the history is replayed again
        for item in self.items:
            if item.kind is not Kind.IMAGE:  # images are priced by size, not by text
                item.tokens = self.counter.count(item.text, item.hash)
            total += item.tokens or 0
        self._rebuild_totals()
        if self.anchor.since_items:
            self.anchor.since_tokens = sum(
                i.tokens or 0 for i in self.items[-self.anchor.since_items :]
            )
        return total

    def _rebuild_totals(self) -> None:
        self.totals = Totals()
        for item in self.items:
            self._tally(item)

    def history(self) -> list[HistoryPoint]:
        """Each API call: reported vs predicted context size.

        From the loaded transcript, or for a stored session from its ledger's
        ``usage_recorded`` events.
        """
        if self.transcript is None:
            if not self._known_to_store:
                return []
            return history_from_events(self.store.events(self.id, types=HISTORY_EVENTS))
        start = self.new_calibration()
        key = (self.counter.name, start.prior)
        if self._replayed is not None and self._replayed[0] == key:
            return list(self._replayed[1])  # the load's replay: the same items and counts
        points, _ = replay_history(
            self.transcript.calls, self.transcript.history_items, self.count, start
        )
        self._replayed = (key, points)
        return list(points)

    # -- policy and persistence ---------------------------------------------------

    def set_policy(self, policy: Policy) -> None:
        old = self.policy
        self.policy = policy
        if self._stored:
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
        percent = 100.0 * self.used_tokens / self.policy.window
        level = self.policy.level_for(percent)
        if level is not self._level:
            previous, self._level = self._level, level
            if self._stored:
                self.store.append_event(
                    self.id,
                    str(EventType.THRESHOLD_CROSSED),
                    {
                        "from": previous.value,
                        "to": level.value,
                        "percent": round(percent, 2),
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
        self._stored = True
        store = self.store
        now = time.time()
        if self._known_to_store:
            with store.transaction():
                stored = store.get_session(self.id)
                self._check_fresh(stored)
                self._revision += 1
                stored.policy = self.policy.to_dict()
                stored.meta = self.state()
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
                self._revision = revision_of(existing) + 1
                existing.meta = self.state()
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
            self._known_to_store = True
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
            if adopt is not None:
                stored = store.get_session(self.id)
                overhead = int(stored.meta.get("overhead", 0) or 0)
                self.load_context(adopt, self.version, Anchor(overhead=overhead))

    def _record_transcript_calls(self, done: int, level: Level) -> None:
        """One usage event per API call not recorded before, and each threshold crossed."""
        if self.transcript is None:
            return
        store = self.store
        events, level = usage_events(self.history()[done:], self.policy, level)
        for event, data in events:
            store.append_event(self.id, event, data)
        self._recorded_calls = max(done, len(self.transcript.calls))
        self._level = self.policy.level_for(100.0 * self.used_tokens / self.policy.window)
        if self._level is not level:
            store.append_event(
                self.id,
                str(EventType.THRESHOLD_CROSSED),
                {"from": level.value, "to": self._level.value, "used_tokens": self.used_tokens},
            )
        stored = store.get_session(self.id)
        self._revision = revision_of(stored) + 1
        stored.meta = self.state()
        store.update_session(stored)

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
        self._known_to_store = True
        self._stored = True
        self.version = stored.context_version
        self.policy = self.policy.replace(model=stored.model) if stored.model else self.policy
        for item in items:
            self._tally(item)
        self.items = items
        meta = stored.meta or {}
        self._revision = revision_of(stored)
        self.anchor = Anchor.from_meta(meta)
        self._level = Level(meta.get("level", "normal"))
        self.unknown_records = int(meta.get("unknown_records", 0))
        self._recorded_calls = int(meta.get("recorded_calls", 0))
        self.budget = BudgetState.from_dict(meta.get("budget"))
        self._extra = dict(meta.get("extra") or {})
        self._recording = {k: meta[k] for k in ("recorded_items", "recorded_hash") if k in meta}
        cal = meta.get("calibration") or {}
        self.calibration = self.new_calibration()
        self.calibration.per_token = float(cal.get("per_token", self.calibration.per_token))
        self.calibration.per_item = float(cal.get("per_item", self.calibration.per_item))
        self.calibration.samples = [(int(a), int(b), int(c)) for a, b, c in cal.get("samples", [])]
        self._subagents = [AgentUsage(**a) for a in meta.get("subagents", [])]

    def load_transcript(self, transcript: Transcript) -> None:
        """Become the session a transcript holds: its items, and the anchor on its
        latest reported usage with the correction learned from its whole history."""
        self.transcript = transcript
        self.unknown_records = transcript.unknown_records
        for item in transcript.items:
            self._tally(item)
        self.items = list(transcript.items)
        # Learn the correction from the whole history, then anchor on the latest call.
        start = self.new_calibration()
        points, self.calibration = replay_history(
            transcript.calls, transcript.history_items, self.count, start
        )
        self._replayed = ((self.counter.name, start.prior), points)
        self._request_shape = {
            label: self.counter.count(text) for label, text in transcript.request_shape.items()
        }
        anchor = self.anchor
        if transcript.anchor_call is not None and transcript.anchor_position is not None:
            usage = transcript.calls[transcript.anchor_call].usage
            out_n = transcript.anchor_output_items if usage.output_tokens else 0
            # The latest response's size is reported too (output tokens): only what
            # came after it is estimated.
            anchor.last_reported = usage.context_tokens
            anchor.reported = (
                usage.context_tokens
                + usage.output_tokens * (out_n > 0)
                + round(self.calibration.per_item * out_n)
            )
            since = transcript.items[transcript.anchor_position + out_n :]
            anchor.since_tokens = sum(item.tokens or 0 for item in since)
            anchor.since_items = len(since)
        else:
            anchor.since_tokens = self.totals.local_total
            anchor.since_items = len(self.items)
            if points:
                # No usage in this context yet (Claude Code compacted it): the system
                # prompt and tools are estimated from what the earlier usages counted
                # beyond their transcript (status().overhead_estimated says so).
                estimate = estimate_overhead([p.overhead_tokens for p in points])
                anchor.overhead = estimate or anchor.overhead
            elif self._request_shape:
                # Before the first usage of all: the system prompt and tools the request
                # sent (Claude Code 2.x records them), counted and corrected.
                anchor.overhead = sum(self._shape_overhead().values())
        self._level = self.policy.level_for(100.0 * self.used_tokens / self.policy.window)
        for name, agent_items in transcript.agents.items():
            calls = transcript.agent_calls.get(name, [])
            local = sum(self.count(i) for i in agent_items)
            self._subagents.append(
                AgentUsage(
                    name=name,
                    context_tokens=calls[-1].usage.context_tokens if calls else local,
                    calls=len(calls),
                    output_tokens=sum(c.usage.output_tokens for c in calls),
                    items=len(agent_items),
                )
            )
        if transcript.format == "claude-code" and transcript.path:
            # newer Claude Code keeps each sub-agent in a file of its own
            from .sources.claude_code_agents import subagent_usages

            self._subagents.extend(subagent_usages(transcript.path, transcript.session_id))
        if MAIN_AGENT not in self.totals.by["agent"] and self.items:
            self.totals.by["agent"][MAIN_AGENT] = 0
