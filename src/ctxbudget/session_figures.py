"""A session's figures in memory: its items counted once, the running totals, the
anchor on the provider's latest usage with the correction learned from the usages,
and the status they give. Nothing here reads or writes the store.

``SessionFigures`` is the first half of a session: ``SessionState`` (in
``session_state.py``) adds the store, the context versions and the ledger on top of
it, and ``Session`` the services. A transcript read from a file becomes figures here
(``load_transcript``): its current context, the anchor on its latest usage, the
history of its calls replayed, its sub-agents.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from .accounting import (
    Anchor,
    Calibration,
    HistoryPoint,
    Totals,
    replay_history,
    unmeasured_overhead,
)
from .level import Level
from .model import MAIN_AGENT, AgentUsage, Item, Kind, Transcript
from .policy import Policy
from .recording import context_hash
from .sources.media import local_tokens
from .status import Breakdown, Status, build_status
from .store import Store
from .tokens.counters import CachedCounter, counter_name_for_model
from .tokens.framing import EXACT_COUNTERS, response_reported

__all__ = ["SessionFigures", "Workspace"]


class Workspace(Protocol):
    """Where a session lives: its store and its counters (a ``Tracker``)."""

    @property
    def store(self) -> Store: ...

    def counter(self, name: str) -> CachedCounter: ...


class SessionFigures:
    """One context window in memory: items, the latest reported usage, what was added
    since, and the status they give. Adding an item and asking the status never
    recount what was already counted."""

    def __init__(self, tracker: Workspace, policy: Policy, session_id: str) -> None:
        self.tracker = tracker
        self.policy = policy
        self.id = session_id
        self.items: list[Item] = []
        self.transcript: Transcript | None = None
        self.calibration = self.new_calibration()
        self.anchor = Anchor()
        self.totals = Totals()
        self.unknown_records = 0
        # the sub-agents seen, each with its own context and calls
        self.subagents: list[AgentUsage] = []
        # local tokens of what the latest request sent beyond the messages (its system
        # prompt, each tool definition), where the transcript records it
        self.request_shape: dict[str, int] = {}
        self._level = Level.NORMAL
        self._counter: tuple[tuple[str | None, str | None], CachedCounter] | None = None
        # The transcript's history as its load replayed it, with what it depends on
        # beyond the items (the counter, the correction's prior): ``history`` reuses it.
        self._replayed: tuple[tuple[str, tuple[float, float]], list[HistoryPoint]] | None = None

    # -- counting -----------------------------------------------------------------

    @property
    def counter(self) -> CachedCounter:
        # asked once per item counted: found again only when the policy's counter or
        # model changed (the tracker keeps one counter per name)
        key = (self.policy.counter, self.policy.model)
        if self._counter is None or self._counter[0] != key:
            name = self.policy.counter or counter_name_for_model(self.policy.model)
            self._counter = (key, self.tracker.counter(name))
        return self._counter[1]

    def new_calibration(self) -> Calibration:
        """The starting correction for this session's counter and model."""
        name = self.policy.counter or counter_name_for_model(self.policy.model)
        carried = self.transcript.carried if self.transcript is not None else None
        correction = carried.correction_for(name) if carried is not None else None
        if correction is not None:  # a fork's: what the session it came from learned
            return Calibration.carried_over(*correction)
        exact = name in EXACT_COUNTERS and name == counter_name_for_model(self.policy.model)
        return Calibration.for_counter(exact_for_model=exact, counter=name)

    def count(self, item: Item) -> int:
        """The item's local token count (counted once, then kept on the item)."""
        if item.tokens is None:
            item.tokens = self._counted(item)
        return item.tokens

    def _counted(self, item: Item) -> int:
        counter = self.counter
        if counter.cheap:  # asked directly: the item's hash is not needed for it
            return local_tokens(item, counter.count, self.policy.model)
        return local_tokens(item, lambda text: counter.count(text, item.hash), self.policy.model)

    def tally(self, item: Item) -> None:
        """Count ``item`` into the running totals (not into ``items``)."""
        self.totals.add(item, self.count(item))

    def set_items(self, items: list[Item]) -> None:
        """Make ``items`` the context in memory, the totals counted afresh."""
        self.items = items
        self.totals = Totals()
        for item in items:
            self.tally(item)

    def recount(self) -> int:
        """Count every item again through the content-hash cache; returns the total.

        Needed after the counter changes; with the same counter, only texts never seen
        are tokenized.
        """
        total = 0
        self._replayed = None  # the counts change: the history is replayed again
        for item in self.items:
            if item.kind is not Kind.IMAGE:  # images are priced by size, not by text
                item.tokens = self._counted(item)
            total += item.tokens or 0
        self.set_items(self.items)
        if self.anchor.since_items:
            self.anchor.since_tokens = sum(
                i.tokens or 0 for i in self.items[-self.anchor.since_items :]
            )
        return total

    def context_hash(self) -> str:
        return context_hash(self.items)

    # -- the figures ----------------------------------------------------------------

    @property
    def overhead(self) -> int:
        """What the provider counts beyond the items (system prompt, tool definitions),
        as last measured."""
        return self.anchor.overhead

    @property
    def framing(self) -> float:
        """Tokens of framing per item: the calibration's (``Calibration.framing``), the
        learned one as soon as a usage anchors the figure."""
        if self.anchor.reported is not None:
            return self.calibration.per_item
        return self.calibration.framing

    @property
    def used_tokens(self) -> int:
        return self.anchor.used_tokens(
            self.calibration, self.totals.local_total, len(self.items), self.framing
        )

    @property
    def unattributed_tokens(self) -> int:
        """What the provider counts now beyond the corrected count of the items."""
        k = self.calibration.per_token
        return max(
            0,
            self.used_tokens - round(k * self.totals.local_total + self.framing * len(self.items)),
        )

    @property
    def level(self) -> Level:
        """The level the session was last seen at (thresholds crossed are logged)."""
        return self._level

    def level_now(self) -> Level:
        """The level the policy gives the context's size now."""
        return self.policy.level_for(100.0 * self.used_tokens / self.policy.window)

    def reach(self, level: Level) -> Level:
        """Make ``level`` the level the session is seen at; returns the one before."""
        previous, self._level = self._level, level
        return previous

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
            subagents=list(self.subagents),
        )
        breakdown.overhead = self.request_overhead(limit=breakdown.unattributed)
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

    def request_overhead(
        self, limit: int | None = None, calibration: Calibration | None = None
    ) -> dict[str, int]:
        """The system prompt and each tool definition of the latest request in provider
        units (corrected count and a block's framing), scaled down to ``limit`` when they
        would exceed it (what the provider reported beyond the transcript).
        ``calibration``: the correction to count with, when not the session's now."""
        if calibration is None:
            k, framing = self.calibration.per_token, max(0.0, self.framing)
        else:
            k, framing = calibration.per_token, max(0.0, calibration.framing)
        parts = {label: k * n + framing for label, n in self.request_shape.items()}
        total = sum(parts.values())
        scale = limit / total if limit is not None and total > limit else 1.0
        return {label: round(v * scale) for label, v in parts.items()}

    def _shape(self) -> Callable[[Calibration], int] | None:
        """The recorded request's system prompt and tools counted with a correction:
        the overhead of a context before any usage measured one."""
        if not self.request_shape:
            return None
        return lambda calibration: sum(self.request_overhead(calibration=calibration).values())

    # -- a transcript -----------------------------------------------------------------

    def history(self) -> list[HistoryPoint]:
        """Each API call of the loaded transcript: reported vs predicted context size."""
        if self.transcript is None:
            return []
        start = self.new_calibration()
        key = (self.counter.name, start.prior)
        if self._replayed is not None and self._replayed[0] == key:
            return list(self._replayed[1])  # the load's replay: the same items and counts
        points, _ = replay_history(
            self.transcript.calls, self.transcript.history_items, self.count, start, self._shape()
        )
        self._replayed = (key, points)
        return list(points)

    def load_transcript(self, transcript: Transcript) -> None:
        """Become the session a transcript holds: its items, and the anchor on its
        latest reported usage with the correction learned from its whole history."""
        self.transcript = transcript
        self.unknown_records = transcript.unknown_records
        for item in transcript.items:
            self.tally(item)
        self.items = list(transcript.items)
        # Learn the correction from the whole history, then anchor on the latest call.
        self.request_shape = {
            label: self.counter.count(text) for label, text in transcript.request_shape.items()
        }
        start = self.new_calibration()
        points, self.calibration = replay_history(
            transcript.calls, transcript.history_items, self.count, start, self._shape()
        )
        self._replayed = ((self.counter.name, start.prior), points)
        anchor = self.anchor
        if transcript.anchor_call is not None and transcript.anchor_position is not None:
            usage = transcript.calls[transcript.anchor_call].usage
            out_n = transcript.anchor_output_items
            response = transcript.items[transcript.anchor_position :][:out_n]
            if not response_reported(usage.output_tokens, sum(map(self.count, response))):
                out_n = 0  # a cut-off response's first figure: its items are counted
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
            # No usage in this context yet (after a compaction, before the first call, a
            # fork): the system prompt and tools as the status line takes them
            # (status().overhead_estimated says so)
            shape = self._shape()
            estimate = unmeasured_overhead(
                [p.overhead_tokens for p in points],
                (lambda: shape(self.calibration)) if shape is not None else None,
                transcript.carried.overhead if transcript.carried is not None else None,
            )
            anchor.overhead = estimate or anchor.overhead
        self._level = self.level_now()
        for name, agent_items in transcript.agents.items():
            calls = transcript.agent_calls.get(name, [])
            local = sum(self.count(i) for i in agent_items)
            self.subagents.append(
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

            self.subagents.extend(subagent_usages(transcript.path, transcript.session_id))
        if MAIN_AGENT not in self.totals.by["agent"] and self.items:
            self.totals.by["agent"][MAIN_AGENT] = 0

    # -- undo -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What a failed write puts back (``rollback``)."""
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
        }

    def rollback(self, snap: dict[str, Any]) -> None:
        """Put back the figures of ``snapshot`` (items added since are dropped)."""
        del self.items[snap["items"] :]
        self.totals = snap["totals"]
        self.anchor = snap["anchor"]
        k, c, samples = snap["calibration"]
        self.calibration.per_token, self.calibration.per_item = k, c
        self.calibration.samples = samples
        self._level = snap["level"]
