"""A ``Session``: one context window under management.

It holds its items and running totals, so adding an item and asking the status never
recount what was already counted, and it anchors on every usage the provider reports.
When the session is stored, each change is written through, with an event in its
append-only ledger. Compaction, restore and recall are applied here (the engine in
``ctxbudget.compaction`` only decides).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import archive, budgeting
from .accounting import Calibration, HistoryPoint, replay_history
from .archive import Compaction
from .budgeting import BudgetState
from .compaction import CompactionPolicy
from .compaction.engine import Summarizer
from .errors import SessionNotFoundError
from .model import MAIN_AGENT, Item, Kind, Level, Role, Transcript, Usage
from .policy import Policy
from .status import AgentUsage, Breakdown, Status, build_status
from .store import StoredSession
from .tokens.counters import CachedCounter, counter_name_for_model

if TYPE_CHECKING:
    from .tracker import Tracker

# Framing per item when no usage was ever reported (role markers of a message).
UNANCHORED_PER_ITEM = 5.0

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
        # What the provider itself said last (``_reported`` may add the response's
        # reported output to it).
        self._last_reported: int | None = None
        self._since_tokens = 0
        self._since_items = 0
        self._local_total = 0
        self._by: dict[str, dict[str, int]] = {"component": {}, "kind": {}, "tool": {}, "agent": {}}
        self._user_turns = 0
        self._user_times: deque[float] = deque(maxlen=11)  # pace of the last ten turns
        self._conversation_tokens = 0
        self._level = Level.NORMAL
        self._subagents: list[AgentUsage] = []
        self._unknown = 0
        self._recorded_calls = 0
        # What the provider counts beyond the items (system prompt, tool definitions),
        # kept when a compaction or restore drops the last reported usage.
        self._overhead = 0
        self.last_alert: str | None = None
        self.budget = BudgetState()
        self._extra: dict[str, Any] = {}
        self._policy_given = True  # Tracker.load says when the policy came from defaults
        self._recording: dict[str, Any] = {}
        self._auto_quiet_until = 0  # no auto-compaction below this size (after an alert)

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
            self._user_times.append(item.created_at)

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
        offset = self.items[-1].message_index + 1 if self.items else 0
        snapshot = self._snapshot()
        try:
            for item in new:
                item.message_index += offset
                if item.phase is None and self.budget.phase is not None:
                    item.phase = self.budget.phase
                self._tally(item)
                self._since_tokens += item.tokens or 0
                self._since_items += 1
            self.items.extend(new)
            if self._stored:
                if self._known_to_store:
                    with self.tracker.store.transaction():
                        self.tracker.store.append_items(self.id, new, version=self.version)
                        self.save()
                else:
                    self.save()  # the first save writes every item, these included
        except BaseException:
            self._rollback(snapshot)
            raise
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
        or the context size as an int. Add the response itself with ``add`` (role
        assistant): the next request carries it. Returns the new status.
        """
        if isinstance(usage, int):
            usage = Usage(input_tokens=usage)
        elif not isinstance(usage, Usage):
            usage = Usage.from_api(usage)
        reported = usage.context_tokens
        predicted = self.used_tokens
        snapshot = self._snapshot()
        try:
            if self._reported is not None:
                self.calibration.learn(
                    self._since_tokens, self._since_items, reported - self._reported
                )
            self._reported = reported
            self._last_reported = reported
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
        except BaseException:
            self._rollback(snapshot)
            raise
        self._check_level()
        return self.status()

    def _snapshot(self) -> dict[str, Any]:
        return {
            "items": len(self.items),
            "local_total": self._local_total,
            "by": {k: dict(v) for k, v in self._by.items()},
            "user_turns": self._user_turns,
            "user_times": list(self._user_times),
            "conversation_tokens": self._conversation_tokens,
            "since": (self._since_tokens, self._since_items),
            "reported": (self._reported, self._last_reported),
            "calibration": (
                self.calibration.per_token,
                self.calibration.per_item,
                list(self.calibration.samples),
            ),
            "level": self._level,
            "known": self._known_to_store,
        }

    def _rollback(self, snap: dict[str, Any]) -> None:
        del self.items[snap["items"] :]
        self._local_total = snap["local_total"]
        self._by = snap["by"]
        self._user_turns = snap["user_turns"]
        self._user_times = deque(snap["user_times"], maxlen=11)
        self._conversation_tokens = snap["conversation_tokens"]
        self._since_tokens, self._since_items = snap["since"]
        self._reported, self._last_reported = snap["reported"]
        k, c, samples = snap["calibration"]
        self.calibration.per_token, self.calibration.per_item = k, c
        self.calibration.samples = samples
        self._level = snap["level"]
        self._known_to_store = snap["known"]

    # -- reading ------------------------------------------------------------------

    @property
    def framing(self) -> float:
        """Tokens of framing per item: learned from usage; without any usage, a small
        default (a message's role markers), not the tool-heavy prior."""
        if self.calibration.samples or self._reported is not None:
            return self.calibration.per_item
        return min(self.calibration.per_item, UNANCHORED_PER_ITEM)

    @property
    def used_tokens(self) -> int:
        if self._reported is None:
            return self._overhead + round(
                self.calibration.per_token * self._local_total + self.framing * len(self.items)
            )
        return self._reported + self.calibration.predict(self._since_tokens, self._since_items)

    def status(self) -> Status:
        used = self.used_tokens
        k = self.calibration.per_token
        if self._local_total and k * self._local_total > used:
            # Local counts overshoot what the provider reported: shares must still add
            # up to the total, so scale them down to it.
            k = used / self._local_total
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
            reported_tokens=self._last_reported
            if self._last_reported is not None
            else (self._reported),
            estimated_since_report=used - (self._last_reported or self._reported or 0),
            counter=self.counter.name,
            tokens_per_exchange=per_exchange,
            model=self.policy.model,
            session_id=self.id,
            unknown_records=self._unknown,
            items=len(self.items),
            seconds_per_exchange=self._seconds_per_exchange(),
        )

    def _seconds_per_exchange(self) -> float | None:
        """Median time between the user's last ten turns: the pace of the work."""
        gaps = sorted(b - a for a, b in itertools.pairwise(self._user_times) if b - a > 0.5)
        return gaps[len(gaps) // 2] if gaps else None

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
        if self._since_items:
            self._since_tokens = sum(i.tokens or 0 for i in self.items[-self._since_items :])
        return total

    def _rebuild_totals(self) -> None:
        self._local_total = 0
        self._by = {"component": {}, "kind": {}, "tool": {}, "agent": {}}
        self._user_turns = 0
        self._user_times.clear()
        self._conversation_tokens = 0
        for item in self.items:
            self._tally(item)

    # -- compaction, restore, recall (applied by ctxbudget.archive) ---------------

    def plan_compaction(
        self, policy: CompactionPolicy | None = None, summarizer: Summarizer | None = None
    ) -> Compaction:
        """What a compaction would do: each action, tokens freed, facts at risk. Changes
        nothing. ``policy.summarizer == "llm"`` uses the LLM summarizer (from env)."""
        policy = policy or CompactionPolicy()
        if summarizer is None and policy.summarizer == "llm":
            from .compaction.llm import llm_summarizer

            summarizer = llm_summarizer()
        return archive.plan(self, policy, summarizer)

    def compact(
        self, policy: CompactionPolicy | None = None, summarizer: Summarizer | None = None
    ) -> Compaction:
        """Compact and persist as a new context version (one transaction); the removed
        items stay in the archive. When there is nothing to do (already under the target),
        the plan comes back unapplied (``applied_at`` is None) with the reason in its
        notes."""
        plan = self.plan_compaction(policy, summarizer)
        if not plan.result.actions:
            return plan  # nothing to do (e.g. already under the target): see plan.result.notes
        self.save()  # recording first can change the version: plan against it
        if plan.version_from != self.version:
            plan = self.plan_compaction(policy, summarizer)
        return archive.apply(self, plan)

    def apply_compaction(self, plan: Compaction) -> Compaction:
        """Apply a plan from ``plan_compaction`` (refused if the session changed since)."""
        return archive.apply(self, plan)

    def auto_compact(
        self, policy: CompactionPolicy | None = None, summarizer: Summarizer | None = None
    ) -> Compaction | None:
        """Compact if the trigger is reached (default: the critical threshold).

        Triggers early enough that the summarizer's own answer still fits the window.
        Never loops: a pass that would free less than ``min_freed_share`` of the window
        is not applied; an ``alert`` event is recorded instead (``last_alert``), and no
        new attempt is made until the context grows past where it was.
        """
        return archive.auto_compact(self, policy or CompactionPolicy(), summarizer)

    def restore(self, version: int | None = None, *, force: bool = False) -> tuple[int, int]:
        """Undo a compaction: back to ``version`` (default: the previous one)."""
        return archive.restore(self, version, force=force)

    def _remember_recording(self, count: int) -> None:
        """How much of the transcript is recorded, so recording it again adds only what
        is new, on top of the stored context (even a compacted one)."""
        store = self.tracker.store
        recorded = self.transcript.items[:count] if self.transcript else []
        self._recording = {"recorded_items": count, "recorded_hash": archive.context_hash(recorded)}
        stored = store.get_session(self.id)
        stored.meta = {**stored.meta, **self._recording}
        store.update_session(stored)

    def remember(self, key: str, value: Any) -> None:
        """Keep a small value in the session's stored metadata (e.g. auto-compaction's
        quiet mark, so a hook run in a new process does not try again)."""
        self._extra[key] = value
        if self._known_to_store:
            stored = self.tracker.store.get_session(self.id)
            stored.meta = {**stored.meta, "extra": dict(self._extra)}
            self.tracker.store.update_session(stored)

    def budget_meta_value(self, key: str, default: Any = 0) -> Any:
        return self._extra.get(key, default)

    def recall(self, query: str, budget: int = 500) -> list[Item]:
        """Archived items that best match ``query``, within ``budget`` tokens."""
        return archive.recall(self, query, budget)

    # -- budgets: allocation, the gate, phases (applied by ctxbudget.budgeting) ------

    def allocate(self, component: str, tokens: int, *, allow_partial: bool = True) -> Any:
        """Reserve ``tokens`` for a component (seed 002): full, after cleanup, partial or
        denied; returns the ``AllocationDecision`` and logs it."""
        return budgeting.allocate(self, component, tokens, allow_partial=allow_partial)

    def release(self, component: str, tokens: int | None = None) -> int:
        return budgeting.release(self, component, tokens)

    def budget_report(self) -> Any:
        """Utilization per component with the seed's bands, and overall."""
        return budgeting.report(self)

    def adjust_shares(self, *, apply: bool = True) -> Any:
        return budgeting.adjust(self, apply=apply)

    def gate(self, agent: str, tokens: int, *, compact: bool = True) -> Any:
        """May ``agent`` spawn needing ``tokens``? ``GateDecision``: allow, allow after
        compaction (applied), or deny; logged as a ``gate`` event."""
        return budgeting.gate(self, agent, tokens, compact=compact)

    def set_agent_budget(self, agent: str, tokens: int) -> None:
        budgeting.set_agent_budget(self, agent, tokens)

    def start_phase(self, name: str, budget: int | None = None) -> None:
        """New items belong to phase ``name`` until it completes (seed 004)."""
        budgeting.start_phase(self, name, budget)

    def complete_phase(self, name: str | None = None, pruning: str | None = None) -> Any:
        """Prune by policy (aggressive / moderate / minimal; archived) and report."""
        return budgeting.complete_phase(self, name, pruning)

    def plan_tasks(self, tasks: Any, *, cleanup_first: bool = True) -> dict[str, Any]:
        """Predict what coming ``Task``s need (seed 002, calibrated from stored use);
        compact first when they would not fit."""
        return budgeting.plan_tasks(self, tasks, cleanup_first=cleanup_first)

    def task_completed(self, task: Any, actual_tokens: int) -> None:
        """Record what a task used, so later predictions learn from it."""
        budgeting.task_completed(self, task, actual_tokens)

    def save_budget(self) -> None:
        if self._known_to_store:
            stored = self.tracker.store.get_session(self.id)
            stored.meta = {**stored.meta, "budget": self.budget.to_dict()}
            self.tracker.store.update_session(stored)

    def context_hash(self) -> str:
        return archive.context_hash(self.items)

    def _replace_context(
        self, items: list[Item], version: int, overhead: int, state: dict[str, Any] | None = None
    ) -> None:
        """Make ``items`` the context; ``state`` (a restored version's saved anchor)
        brings back the figures it had, else the count starts from local counts."""
        self.items = list(items)
        self.version = version
        self._reported = None
        self._last_reported = None
        self._since_tokens = 0
        self._since_items = 0
        self._overhead = overhead
        if state:
            self._reported = state.get("reported_tokens")
            self._last_reported = state.get("last_reported_tokens", self._reported)
            self._since_tokens = int(state.get("since_tokens", 0))
            self._since_items = int(state.get("since_items", 0))
            self._overhead = int(state.get("overhead", overhead) or 0)
        self._rebuild_totals()
        self._check_level()

    def history(self) -> list[HistoryPoint]:
        """Each API call: reported vs predicted context size.

        From the loaded transcript, or for a stored session from its ledger's
        ``usage_recorded`` events.
        """
        if self.transcript is None:
            if not self._known_to_store:
                return []
            events = self.tracker.store.events(
                self.id, types=["usage_recorded", "compacted", "pruned", "restored"]
            )
            points: list[HistoryPoint] = []
            compacted = False  # a compaction here: the next call starts a new context
            for e in events:
                if e.type != "usage_recorded":
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
            "last_reported_tokens": self._last_reported,
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
            "overhead": self._overhead,
            "budget": self.budget.to_dict(),
            "extra": dict(self._extra),
            **self._recording,
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
            previous_level = (
                Level((existing.meta or {}).get("level", "normal")) if existing else (Level.NORMAL)
            )
            to_append = list(self.items)
            adopt: list[Item] | None = None
            if existing is not None:
                # Recording a transcript again: what was stored stays (the ledger is
                # append-only) and only what is new is written. When the transcript
                # still starts with what was recorded last time, its new items go on top
                # of the stored context, compacted or not. Otherwise, if the stored
                # context is a prefix of this one, only the tail is added; else this
                # context becomes a new version.
                old = existing.meta or {}
                seen = int(old.get("recorded_items", 0) or 0)
                stored_items = store.load_items(self.id, version=existing.context_version)
                stored_hashes = [i.hash for i in stored_items]
                if (
                    self.transcript is not None
                    and old.get("recorded_hash")
                    and seen <= len(self.items)
                    and archive.context_hash(self.items[:seen]) == old.get("recorded_hash")
                ):
                    self.version = existing.context_version
                    to_append = self.items[seen:]
                    if stored_hashes != [i.hash for i in self.items[:seen]]:
                        adopt = stored_items + to_append  # the stored context was compacted
                elif [i.hash for i in self.items[: len(stored_items)]] == stored_hashes:
                    self.version = existing.context_version
                    to_append = self.items[len(stored_items) :]
                else:
                    self.version = existing.context_version + 1
                if not self._policy_given:
                    # a file recorded again without flags keeps the policy it was stored with
                    self.policy = Policy.from_mapping(existing.policy, origin="stored session")
                elif existing.policy != self.policy.to_dict():
                    store.append_event(
                        self.id,
                        "policy_changed",
                        {"from": existing.policy, "to": self.policy.to_dict()},
                    )
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
            if to_append:
                store.append_items(self.id, to_append, version=self.version)
                store.append_event(
                    self.id,
                    "items_added",
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
                self._replace_context(adopt, self.version, int(stored.meta.get("overhead", 0) or 0))

    def _record_transcript_calls(self, done: int, level: Level) -> None:
        """One usage event per API call not recorded before, and each threshold crossed."""
        if self.transcript is None:
            return
        store = self.tracker.store
        for point in self.history()[done:]:
            store.append_event(
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
            percent = 100.0 * point.reported_tokens / self.policy.window
            reached = self.policy.level_for(percent)
            if reached is not level:
                store.append_event(
                    self.id,
                    "threshold_crossed",
                    {
                        "from": level.value,
                        "to": reached.value,
                        "percent": round(percent, 2),
                        "used_tokens": point.reported_tokens,
                        "call": point.call,
                        "timestamp": point.timestamp,
                    },
                )
                level = reached
        self._recorded_calls = max(done, len(self.transcript.calls))
        self._level = self.policy.level_for(100.0 * self.used_tokens / self.policy.window)
        if self._level is not level:
            store.append_event(
                self.id,
                "threshold_crossed",
                {"from": level.value, "to": self._level.value, "used_tokens": self.used_tokens},
            )
        stored = store.get_session(self.id)
        stored.meta = self._meta()
        store.update_session(stored)

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
        self._last_reported = meta.get("last_reported_tokens", self._reported)
        self._since_tokens = int(meta.get("since_tokens", 0))
        self._since_items = int(meta.get("since_items", 0))
        self._level = Level(meta.get("level", "normal"))
        self._unknown = int(meta.get("unknown_records", 0))
        self._recorded_calls = int(meta.get("recorded_calls", 0))
        self._overhead = int(meta.get("overhead", 0) or 0)
        self.budget = BudgetState.from_dict(meta.get("budget"))
        self._extra = dict(meta.get("extra") or {})
        self._recording = {k: meta[k] for k in ("recorded_items", "recorded_hash") if k in meta}
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
            usage = transcript.calls[transcript.anchor_call].usage
            out_n = transcript.anchor_output_items if usage.output_tokens else 0
            # The latest response's size is reported too (output tokens): only what
            # came after it is estimated.
            self._last_reported = usage.context_tokens
            self._reported = (
                usage.context_tokens
                + usage.output_tokens * (out_n > 0)
                + round(self.calibration.per_item * out_n)
            )
            since = transcript.items[transcript.anchor_position + out_n :]
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
        if transcript.format == "claude-code" and transcript.path:
            # newer Claude Code keeps each sub-agent in a file of its own
            from .hooks import subagent_usages

            self._subagents.extend(subagent_usages(transcript.path, transcript.session_id))
        if MAIN_AGENT not in self._by["agent"] and self.items:
            self._by["agent"][MAIN_AGENT] = 0
