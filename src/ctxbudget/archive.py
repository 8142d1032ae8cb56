"""Applying compactions to a session: plan, apply as one transaction, restore.

The engine (``ctxbudget.compaction``) decides on items in local-counter units; this
module converts to the session's units (what the provider would report: the learned
correction plus what the transcript never shows, such as the system prompt), and
persists. A compaction becomes a new context version; the items of older versions
are the archive, brought back whole by ``restore`` and searched by ``recalling``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .compaction import Action, CompactionPolicy, CompactionResult
from .compaction.engine import Compactor
from .compaction.middle import SUMMARY_LEAST
from .compaction.types import Summarizer
from .errors import (
    CompactionError,
    ConcurrentModificationError,
    StaleCompactionError,
)
from .level import whole_percent
from .model import Carried, EventType, Item
from .recording import content_of, context_hash, hash_of_contents
from .session_state import SessionState


@dataclass(slots=True)
class Compaction:
    """A compaction of a session, in the session's token units."""

    result: CompactionResult
    used_before: int
    used_after: int
    target: int
    overhead: int
    version_from: int
    version_to: int | None = None
    applied_at: float | None = None
    # The context the plan was made from, as it was (``recording.content_of`` of each
    # item: strings, which no later edit of an item changes): hashed only when applied
    # (a dry run never is; hashing a 100k-item context is a sixth of a second).
    planned_from: tuple[tuple[str, ...], ...] = ()
    # The session's correction the figures were made with: its counter's name, per
    # local token, per item (``carried``).
    correction: tuple[str, float, float] | None = None
    _hash: str | None = field(default=None, repr=False, compare=False)

    @property
    def context_hash(self) -> str:
        """The hash of the context the plan was made from (``recording.context_hash``)."""
        if self._hash is None:
            self._hash = hash_of_contents(self.planned_from)
        return self._hash

    @property
    def carried(self) -> Carried:
        """What a new transcript of the compacted context carries over, so that its
        figure is this plan's until a usage of its own (``compact --fork``)."""
        counter, per_token, per_item = self.correction or (None, None, None)
        return Carried(self.overhead, counter, per_token, per_item)

    @property
    def freed(self) -> int:
        return self.used_before - self.used_after

    def to_dict(self) -> dict[str, object]:
        data = self.result.to_dict()
        data.update(
            tokens_before=self.used_before,
            tokens_after=self.used_after,
            tokens_freed=self.freed,
            target_tokens=self.target,
            met_target=self.used_after <= self.target,
            ratio=round(self.used_before / max(1, self.used_after), 2),
            unattributed_tokens=self.overhead,
            version_from=self.version_from,
            version_to=self.version_to,
            applied=self.applied_at is not None,
        )
        return data


def plan(
    session: SessionState,
    policy: CompactionPolicy,
    summarizer: Summarizer | None = None,
    protect: Callable[[Item], bool] | None = None,
) -> Compaction:
    """Compute a compaction of ``session`` without changing anything."""
    if not session.items:
        raise CompactionError("the session is empty: nothing to compact")
    k = session.calibration.per_token
    c = session.framing
    used = session.used_tokens
    overhead = session.unattributed_tokens
    if policy.target_tokens is None and policy.target_ratio is not None:
        # A ratio is of what compaction can change: the transcript, not the provider's
        # fixed overhead (system prompt, tools), which stays as it is.
        target = overhead + max(1, int((used - overhead) / policy.target_ratio))
    else:
        target = policy.target_for(used, session.policy.window)

    # The engine counts each item's framing too (in local units), so that the target it
    # aims at is the session's: one run, not one and then another aiming lower.
    item_cost = max(0, round(c / k)) if k > 0 else 0

    def after_of(result: CompactionResult) -> int:
        n = len(result.items)
        return overhead + round(k * (result.tokens_after - item_cost * n) + c * n)

    def count(text: str) -> int:
        return session.counter.count(text)

    if all(item.pinned for item in session.items):
        raise CompactionError("every item is pinned: nothing may be compacted")
    # What no compaction removes: the provider's own overhead, the protected items and
    # room for a summary. A target under that floor is aimed at the floor instead, so
    # an impossible target never strips the context down to nothing.
    # (the engine may relax to the last exchange alone to reach a target: that is the
    # floor, unless the policy keeps the exchanges it names whatever the target)
    compactor = Compactor(
        session.items,
        count=count,
        policy=policy,
        summarizer=summarizer,
        protect=protect,
        item_cost=item_cost,
    )
    if policy.shrink_kept:
        kept_tokens, kept_items = compactor.floor(0, min(1, policy.keep_last))
    else:
        kept_tokens, kept_items = compactor.floor(policy.keep_first, policy.keep_last)
    floor = overhead + round(k * (kept_tokens + SUMMARY_LEAST) + c * (kept_items + 1))
    aim = target
    if target < floor < used:
        aim = floor
    local_target = max(1, int((aim - overhead) / k))

    result = compactor.compact(local_target)
    # The framing rounded to whole local tokens can leave it a little over: aim again,
    # a little lower (not with an LLM summarizer: each try is a paid call).
    for _ in range(0 if summarizer is not None else 3):
        after = after_of(result)
        if after <= aim or result.tokens_after <= 1 or not result.actions:
            break
        if result.tokens_after > local_target:
            break  # the engine could not reach its own target: lower frees nothing more
        # below what came out, not below the last aim: a plan that lands on its aim
        # exactly (the steps fill up to it) would come out the same again
        local_target = max(1, min(local_target, result.tokens_after) - int((after - aim) / k) - 1)
        again = compactor.compact(local_target)
        if again.tokens_after >= result.tokens_after:
            break  # protected items and must-keep facts: aiming lower frees nothing more
        result = again
    # The engine speaks in local-counter units; say it in the session's.
    result.notes = [
        n for n in result.notes if not n.startswith(("target not reached", "already under"))
    ]
    if target >= used:
        result.notes.insert(0, f"already under the target ({used:,} ≤ {target:,} tokens)")
    elif aim > target:
        result.notes.append(
            f"target not reached: {target:,} tokens is below what must stay ({floor:,}: "
            f"{overhead:,} the provider counts beyond the transcript, the protected exchanges "
            "and the summary); aimed at that instead"
        )
    elif after_of(result) > target:
        result.notes.append(
            f"target not reached ({after_of(result):,} > {target:,} tokens): what is left is "
            "protected (system prompt, latest request, todo list, pinned items) or facts that "
            "must stay"
        )
    _to_session_units(result, k, used - after_of(result))
    return Compaction(
        result=result,
        used_before=used,
        used_after=after_of(result) if result.actions else used,  # no action: as it was
        target=target,
        overhead=overhead,
        version_from=session.version,
        planned_from=tuple(map(content_of, session.items)),
        correction=(session.counter.name, k, c),
    )


def _to_session_units(result: CompactionResult, k: float, freed: int) -> None:
    """Express each action in session tokens; framing of removed items goes to the last."""
    for action in result.actions:
        action.tokens_before = round(action.tokens_before * k)
        action.tokens_after = round(action.tokens_after * k)
    residual = freed - sum(a.tokens_freed for a in result.actions)
    if result.actions and residual > 0:
        result.actions.append(
            Action(
                step="framing",
                description="fewer messages: less per-message framing",
                tokens_before=residual,
            )
        )
    elif result.actions and residual:
        result.actions[-1].tokens_before += residual


def apply(session: SessionState, compaction: Compaction) -> Compaction:
    """Persist ``compaction`` as a new context version, in one transaction.

    Refused when the session changed since the plan (here, or in the store by another
    process): applying it would lose what came in since.
    """
    result = compaction.result
    if not result.actions:
        raise CompactionError("nothing to apply: " + ("; ".join(result.notes) or "no action"))
    changed = StaleCompactionError(
        "the session changed since the compaction was planned: plan again (nothing applied)"
    )
    if context_hash(session.items) != compaction.context_hash:
        raise changed
    if not session.is_stored:
        session.save()
    compaction.version_from = session.version
    try:
        new_version = session.new_version(
            result.items,
            event=EventType.COMPACTED,
            data={k: v for k, v in compaction.to_dict().items() if k != "notes"},
            overhead=compaction.overhead,
            expect_hash=compaction.context_hash,
        )
    except ConcurrentModificationError:
        raise changed from None
    compaction.version_to = new_version
    compaction.applied_at = time.time()
    return compaction


def auto_compact(
    session: SessionState, policy: CompactionPolicy, summarizer: Summarizer | None = None
) -> Compaction | None:
    """Compact when the trigger is reached; see ``Session.auto_compact``."""
    window = session.policy.window
    used = session.used_tokens
    trigger = policy.trigger_for(
        window, session.policy.critical_percent, used, summary_room=summarizer is not None
    )
    if used < trigger or used <= session.auto_quiet_until:
        return None
    try:
        compaction = plan(session, policy, summarizer)
    except CompactionError as exc:  # e.g. everything pinned: alert, don't raise mid-request
        compaction = None
        reason = str(exc)
    if compaction is not None and used <= compaction.target:
        session.last_alert = None
        return None  # over the trigger but under the target already: nothing to do
    if compaction is None or compaction.freed < policy.min_freed_share * window:
        freed = f"free only {compaction.freed:,} tokens" if compaction else f"fail ({reason})"
        session.quiet_auto_compaction(
            used,
            f"auto-compaction would {freed} (less than {policy.min_freed_share:.0%} of the "
            f"window) at {whole_percent(100 * used / window)}%: not applied; what is left is "
            "protected or must-keep facts. Start a fresh session or raise the window.",
        )
        return None
    session.last_alert = None
    return apply(session, compaction)


def restore(
    session: SessionState, version: int | None = None, *, force: bool = False
) -> tuple[int, int]:
    """Point the session back at ``version`` (default: the one before the current).

    Refused when items were added after the compaction or restore that made the current
    version (they would be dropped), unless ``force``. Returns the version it was at
    and the version it is at now.
    """
    if not session.is_stored:
        raise CompactionError(
            f"session {session.id} is not stored: it has no earlier version to restore "
            "(a compaction of a stored session keeps one; session.save() stores it)"
        )
    store = session.store
    available = [v.version for v in store.versions(session.id)]
    if version is None:
        earlier = [v for v in available if v < session.version]
        if not earlier:
            raise CompactionError(
                f"session {session.id} has no earlier context version to restore "
                f"(versions: {', '.join(map(str, available)) or 'none'})"
            )
        version = max(earlier)
    if version not in available:
        raise CompactionError(
            f"session {session.id} has no context version {version} "
            f"(versions: {', '.join(map(str, available))})"
        )
    if version == session.version:
        raise CompactionError(f"session {session.id} is at context version {version} already")
    previous = session.version
    # the events that changed the context version, oldest first
    moves = store.events(
        session.id, types=[EventType.COMPACTED, EventType.PRUNED, EventType.RESTORED]
    )
    if not force:
        # what the current version held when it was made, or last restored to: as it
        # was made, or as the store wrote it (secrets redacted), which a session
        # opened from the store holds
        made = [
            {e.data.get(k) for k in ("context_hash_after", "context_hash_stored", "context_hash")}
            for e in moves
            if e.data.get("version_to") == session.version
        ]
        if made and context_hash(session.items) not in made[-1]:
            raise CompactionError(
                f"the context changed since version {session.version} was made "
                "(items were added): restoring would drop them; pass force=True "
                "(--force) to restore anyway"
            )
    items = store.load_items(session.id, version=version)
    # the figures saved when that version was last left (by a compaction, a pruning
    # or a restore): its anchor comes back with it
    state = next(
        (
            e.data.get("session_state_before")
            for e in reversed(moves)
            if e.data.get("version_from") == version
        ),
        None,
    )
    session.restore_version(
        version,
        items,
        state,
        {"version_from": previous, "version_to": version, "context_hash": context_hash(items)},
    )
    return previous, version


def replace_context(session: SessionState, items: list[Item], *, reason: str) -> int:
    """Make ``items`` the context as a new version (one transaction); what is left out
    stays in the archive. Returns the new version."""
    session.save()
    return session.new_version(
        items,
        event=EventType.PRUNED,
        data={"reason": reason, "archived_items": len(session.items) - len(items)},
    )
