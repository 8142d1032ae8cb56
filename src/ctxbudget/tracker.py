"""The facade: ``Tracker`` opens sessions; ``Session`` (session.py) is one window.

A ``Tracker`` owns a store (opened on first use) and the shared counting cache. The
CLI, hooks and every later surface go through it. Decisions (levels, calibration,
history replay, compaction) live in pure modules; the facade does the I/O around them.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from .collector import Paused
from .errors import AmbiguousSessionError, SessionNotFoundError
from .model import Transcript
from .policy import Policy, window_assumption
from .session import Session
from .sources import load_source
from .store import Store, StoredSession, open_store
from .tokens.counters import CachedCounter, get_counter

__all__ = ["Session", "Tracker"]


class Tracker:
    """Entry point: ``Tracker(store="sqlite:///budget.db").session(model="claude-…")``."""

    def __init__(self, store: str | Store | None = None, *, create_store: bool = True) -> None:
        # The store opens on first use: reading a transcript needs none.
        # create_store=False: only reads; a store that does not exist is not created
        # (see ``open_store(create=False)``).
        self._store: Store | None = store if isinstance(store, Store) else None
        self._store_url = None if isinstance(store, Store) else store
        self._create_store = create_store
        self._counters: dict[str, CachedCounter] = {}

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self._store_url, create=self._create_store)
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
        """Open the stored session ``session_id`` (exact id), or start a new stored one.
        A model name no family matches gets a default window, with a ``UserWarning``
        saying which (give ``window=`` to choose it).

        Many processes may ask for the same new id at once (the hooks of one Claude
        Code session): one stores it and the others open what it stored, never writing
        an empty row over it."""
        found = self._stored_or_none(session_id)
        if found is not None:
            return self._open_stored(found)
        if policy is None and policy_fields.get("window") is None:
            assumed = window_assumption(model, how="window=N")
            if assumed is not None:
                warnings.warn(assumed, UserWarning, stacklevel=2)
        policy = (policy or Policy.for_model(model)).replace(model=model, **policy_fields)
        session = Session(self, policy=policy, session_id=session_id, name=name)
        from .budgeting import learned_shares

        shares = learned_shares(self)  # what the allocation history taught
        if shares:
            session.budget.shares = shares
        with self.store.transaction():  # the check and the write: one writer at a time
            found = self._stored_or_none(session_id)
            if found is not None:
                return self._open_stored(found)
            session.save()
        return session

    def _stored_or_none(self, session_id: str | None) -> StoredSession | None:
        if session_id is None:
            return None  # a new id: no one else has it
        try:
            return self.store.get_session(session_id)
        except SessionNotFoundError:
            return None

    def open(self, session_id: str) -> Session:
        """Open a stored session by id or unique id prefix."""
        return self._open_stored(self._resolve(session_id))

    def _open_stored(self, stored: StoredSession) -> Session:
        policy = Policy.from_mapping(stored.policy, origin=f"stored session {stored.id}")
        session = Session(self, policy=policy, session_id=stored.id, name=stored.name)
        session.load_stored(stored, self.store.load_items(stored.id))
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
                raise AmbiguousSessionError(
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
        """A session from a transcript or messages file (in memory until ``save()``).

        ``policy`` is used as given; without it the window follows the model (given, or
        the transcript's), and ``policy_fields`` (window, thresholds…) apply on top.
        """
        transcript = source if isinstance(source, Transcript) else load_source(source)
        model = (
            model
            or policy_fields.get("model")
            or (policy.model if policy else None)
            or transcript.model
        )
        policy_fields.pop("model", None)
        # the window the transcript knows (Claude Code's own report, a 1M beta) beats
        # the model table; a window given here beats both
        base = policy or Policy.for_model(model, window=transcript.window)
        session = Session(
            self,
            policy=base.replace(model=model, **policy_fields),
            session_id=transcript.session_id or _file_session_id(transcript.path),
            stored=False,
        )
        session.policy_given = policy is not None or bool(policy_fields)
        with Paused():  # the items and the replayed history hold no cycles
            session.load_transcript(transcript)
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


def _file_session_id(path: str | None) -> str | None:
    """A stable id for a file without a session id of its own: recording it again
    finds the same stored session."""
    if not path:
        return None
    resolved = str(Path(path).expanduser().resolve())
    return "file-" + hashlib.blake2b(resolved.encode(), digest_size=8).hexdigest()
