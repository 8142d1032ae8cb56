"""A session's row in the store: whether the store holds it, the revision every full
write compares and sets, and the small writes that merge one part of its metadata.

Many processes write the same session (every hook, every ``tokens --record``, a
gate in each sub-agent). A full write of the session's figures first checks that
the row is still the one this process read (its context version and revision) and
then sets the next revision, so that no writer silently overwrites another's; an
append that is safe on top of what another stored is retried after reading again
(``reapplied``). ``SessionState`` owns one row and makes every store write of the
session through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from .errors import ConcurrentModificationError
from .model import EventType
from .recording import HOOK_CALLS, recorded_calls_of, revision_of
from .store import Store, StoredEvent, StoredSession

__all__ = ["SessionRow"]

# The metadata only small writes change (``SessionRow.change`` / ``merge``), which a
# full write of the row keeps as stored.
_OWNED = ("budget", "extra", HOOK_CALLS)
# Attempts of a write that another writer keeps beating (each re-reads the store).
_RETRIES = 5
_T = TypeVar("_T")


def _nothing() -> None:
    pass


class SessionRow:
    """The stored row of one session, as this process last read or wrote it."""

    def __init__(self, store: Callable[[], Store], session_id: str, *, wanted: bool) -> None:
        self._store = store
        self.id = session_id
        # the session is to be kept in the store (False: in memory until ``save``)
        self.wanted = wanted
        # the store holds the session (its row, items and ledger)
        self.known = False
        # how many full writes the row had when this process read or last wrote it
        self.revision = 0

    @property
    def store(self) -> Store:
        return self._store()

    def check_fresh(self, stored: StoredSession, version: int) -> None:
        """Refuse to write over what another writer stored since this row was read:
        ``stored`` (read inside the write's transaction) must still have this process's
        context ``version`` and revision."""
        if not self.is_current(stored, version):
            raise ConcurrentModificationError(
                f"session {self.id} changed in the store since it was read (another "
                f"process wrote to it: context version {stored.context_version}, write "
                f"{revision_of(stored)}; this copy has {version}, write {self.revision}): "
                "nothing was overwritten; open it again"
            )

    def is_current(self, stored: StoredSession, version: int) -> bool:
        """Whether ``stored`` (read now) is the row as this process read or wrote it:
        the same context ``version`` and revision (no other writer since)."""
        return stored.context_version == version and revision_of(stored) == self.revision

    def adopt(self, stored: StoredSession) -> None:
        """Take the revision of ``stored``, read now (the next write builds on it)."""
        self.revision = revision_of(stored)

    def write(self, stored: StoredSession, meta: Callable[[], dict[str, Any]]) -> None:
        """Write ``stored`` as the next revision, its metadata ``meta()`` (called after
        the revision is set, so that the figures it returns carry it); inside the
        caller's transaction."""
        self.revision += 1
        new = meta()
        # The calls recorded only grow: a full write of a copy read before another
        # process recorded more would have those calls recorded again.
        calls = max(recorded_calls_of(stored), int(new.get("recorded_calls", 0) or 0))
        # The budgets and remembered values are changed by small writes of their own
        # (``change``, ``merge``: no revision): what the row holds of them is the truth,
        # not this copy's (a phase another process started since would be lost).
        own = {key: stored.meta[key] for key in _OWNED if stored.meta and key in stored.meta}
        stored.meta = {**new, **own, "recorded_calls": calls, "revision": self.revision}
        self.store.update_session(stored)

    def merge(self, part: Mapping[str, Any]) -> None:
        """Merge ``part`` into the stored metadata as the row is now, not as it was read
        (settings of the session's own: budgets, remembered values); no revision."""
        if self.known:
            with self.store.transaction():
                stored = self.store.get_session(self.id)
                stored.meta = {**stored.meta, **part}
                self.store.update_session(stored)

    def change(self, key: str, update: Callable[[Any], Any]) -> Any:
        """Set the stored metadata's ``key`` to ``update(its value as the row holds it
        now)``, in one transaction, and return it (None when the store does not hold
        the session): a change made by another process meanwhile is kept, not
        overwritten with what this one read earlier. No revision."""
        if not self.known:
            return None
        with self.store.transaction():
            stored = self.store.get_session(self.id)
            value = update(stored.meta.get(key))
            stored.meta = {**stored.meta, key: value}
            self.store.update_session(stored)
        return value

    def log(self, event: EventType | str, data: Mapping[str, Any]) -> None:
        """Append ``event`` to the session's ledger (when the store holds the session)."""
        if self.known:
            self.store.append_event(self.id, str(event), dict(data))

    def events(self, types: Iterable[str] | None = None) -> list[StoredEvent]:
        """The session's ledger (optionally only these event types)."""
        return self.store.events(self.id, types=types) if self.known else []

    def reapplied(
        self,
        write: Callable[[], _T],
        reload: Callable[[], None],
        before_retry: Callable[[], None] = _nothing,
    ) -> _T:
        """Run ``write``; when another writer came first, ``reload`` the session and
        apply the write on top of what it stored (only for writes where that is safe)."""
        for _ in range(_RETRIES - 1):
            try:
                return write()
            except ConcurrentModificationError:
                before_retry()
                reload()
        return write()
