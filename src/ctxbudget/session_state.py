"""A session and its place in the store: the figures (``SessionFigures``) kept in the
store (``StoredFigures``: the row, the metadata, the ledger, save and load), and what
changes the context: items added, usage recorded, context versions made and restored.

``SessionState`` is the public inside of ``Session``: the services that act on a
session (``archive`` for compaction, restore and recall; ``budgeting`` for
allocation, the gate and phases; the shells) read and change it only through the
typed methods here and in ``session_persistence.py``, and every store write goes
through it (and its ``SessionRow``, which keeps concurrent writers from overwriting
each other). It knows nothing of those services: they sit above it, and ``Session``
(in ``session.py``) puts them together.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from .accounting import Anchor
from .errors import ConcurrentModificationError, ConfigurationError, SourceError
from .model import USAGE_FIELDS, EventType, Item, Kind, Role, Usage, token_count
from .policy import MAX_WINDOW, Policy
from .recording import context_hash, next_version
from .session_figures import Workspace
from .session_persistence import StoredFigures
from .status import Status

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


class SessionState(StoredFigures):
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
        super().__init__(tracker, policy, session_id or uuid.uuid4().hex, name=name, stored=stored)
        self.last_alert: str | None = None
        self._auto_quiet_until = 0  # no auto-compaction below this size (after an alert)

    # -- auto-compaction's quiet mark ---------------------------------------------------

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
            # The revision just checked says the stored context is the one this process
            # holds (every write of items moves it in the same transaction; a scrub only
            # redacts, as every write does): the hash is compared in memory, without
            # loading the whole version again.
            if expect_hash is not None and context_hash(self.items) != expect_hash:
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
                self.load_calibration(state)
        self.load_context(items, version, anchor)
        self.row.merge({"level": self.level.value})  # as load_context found it

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
            role = _member(Role, role, "role")
            if kind is None:
                kind = {
                    Role.SYSTEM: Kind.SYSTEM_PROMPT,
                    Role.ASSISTANT: Kind.ASSISTANT_TEXT,
                    Role.TOOL: Kind.TOOL_RESULT,
                }.get(role, Kind.USER_TEXT)
            item = Item(role=role, kind=_member(Kind, kind, "kind"), text=item, **fields)
        return self.extend([item])[0]

    def extend(self, items: Iterable[Item]) -> list[Item]:
        """Add items in order; counted once each, written to the store in one go.

        If the store refuses the write, the session is left as it was.
        """
        new = list(items)
        for item in new:
            if not isinstance(item, Item):
                raise ConfigurationError(
                    f"the context holds items: add an Item or a text, or add_messages() a "
                    f"message list (got {type(item).__name__})"
                )
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
                self.anchor.added(item)
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
        try:
            if isinstance(usage, int | float) and not isinstance(usage, bool):
                usage = Usage(input_tokens=token_count(usage, "context size"))
            elif not isinstance(usage, Usage):
                usage = Usage.from_api(usage, strict=True)
        except ValueError as exc:
            raise SourceError(f"the usage given is not usable: {exc}") from exc
        counts = [getattr(usage, name) for name in USAGE_FIELDS]
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in counts):
            raise SourceError(f"the usage given is not usable: {usage} holds a count below 0")
        if usage.context_tokens + usage.output_tokens > MAX_WINDOW:
            raise SourceError(
                f"the usage given is not usable: {usage.context_tokens:,} tokens in context "
                f"is more than any window holds ({MAX_WINDOW:,})"
            )
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
                    anchor.since_tokens, anchor.items_since, reported - anchor.reported
                )
            anchor.anchor_on(reported, usage.output_tokens)
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


E = TypeVar("E", bound=StrEnum)


def _member(enum: type[E], value: E | str, what: str) -> E:
    """``value`` as a member of ``enum``, or one clear error naming the members."""
    try:
        return enum(value)
    except ValueError:
        known = ", ".join(m.value for m in enum)
        raise ConfigurationError(f"unknown {what} {value!r}: {known}") from None
