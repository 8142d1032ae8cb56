"""Helpers for testing code that uses ctxbudget, shipped with the package.

``FakeClock`` stands in for ``time.time`` wherever ctxbudget takes a clock, so
timestamps and orderings in a test are exact. ``FaultyStore`` wraps a real store
and fails one chosen call, so a test can prove that a failure half-way through an
operation leaves the stored session as it was. Nothing here is used by ctxbudget
itself at run time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal

from .errors import StoreError
from .model import Item
from .store.base import (
    ItemAggregates,
    ScrubReport,
    Store,
    StoredEvent,
    StoredSession,
    VersionInfo,
)
from .store.reservations import Reservation

__all__ = ["FakeClock", "FaultyStore"]


class FakeClock:
    """A clock that moves only when told: ``clock()`` returns ``clock.now``.

    ``step`` seconds are added after every reading, for code that needs distinct
    times without calling ``advance`` between each one.
    """

    def __init__(self, start: float = 1_700_000_000.0, step: float = 0.0) -> None:
        self.now = float(start)
        self.step = float(step)

    def __call__(self) -> float:
        now = self.now
        self.now += self.step
        return now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` and return the new time."""
        self.now += seconds
        return self.now


class FaultyStore(Store):
    """A store that raises ``StoreError("injected fault")`` on one chosen call.

    The call to ``fail_on`` numbered ``after`` (counting from 0, so ``after=0`` is the
    first call) fails; every other call goes to ``inner``. With ``when="before"``
    the failing call does nothing, with ``when="after"`` it reaches the inner store
    first, like a write whose acknowledgement was lost. ``calls`` counts the calls
    per method name, ``failed`` says whether the fault fired.
    """

    scheme = "faulty"

    def __init__(
        self,
        inner: Store,
        fail_on: str,
        after: int = 0,
        when: Literal["before", "after"] = "before",
    ) -> None:
        super().__init__(inner.url, clock=inner.clock)
        if not callable(getattr(Store, fail_on, None)):
            raise ValueError(f"Store has no method {fail_on!r} to fail")
        self.inner = inner
        self.fail_on = fail_on
        self.after = after
        self.when = when
        self.calls: dict[str, int] = {}
        self.failed = False

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        number = self.calls.get(method, 0)
        self.calls[method] = number + 1
        fire = method == self.fail_on and number == self.after
        if fire and self.when == "before":
            self.failed = True
            raise StoreError("injected fault")
        result = getattr(self.inner, method)(*args, **kwargs)
        if fire:
            self.failed = True
            raise StoreError("injected fault")
        return result

    def create_session(self, session: StoredSession) -> None:
        self._call("create_session", session)

    def get_session(self, session_id: str) -> StoredSession:
        result: StoredSession = self._call("get_session", session_id)
        return result

    def find_sessions(self, prefix: str) -> list[StoredSession]:
        result: list[StoredSession] = self._call("find_sessions", prefix)
        return result

    def list_sessions(self, limit: int | None = 50) -> list[StoredSession]:
        result: list[StoredSession] = self._call("list_sessions", limit)
        return result

    def update_session(self, session: StoredSession) -> None:
        self._call("update_session", session)

    def delete_session(self, session_id: str) -> None:
        self._call("delete_session", session_id)

    def append_items(
        self, session_id: str, items: list[Item], version: int | None = None
    ) -> list[Item]:
        result: list[Item] = self._call("append_items", session_id, items, version)
        return result

    def load_items(self, session_id: str, version: int | None = None) -> list[Item]:
        result: list[Item] = self._call("load_items", session_id, version)
        return result

    def item_aggregates(self, session_id: str, version: int | None = None) -> ItemAggregates:
        result: ItemAggregates = self._call("item_aggregates", session_id, version)
        return result

    def append_event(self, session_id: str, type: str, data: dict[str, Any]) -> StoredEvent:
        result: StoredEvent = self._call("append_event", session_id, type, data)
        return result

    def append_events(
        self, session_id: str, events: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[StoredEvent]:
        result: list[StoredEvent] = self._call("append_events", session_id, events)
        return result

    def events(
        self,
        session_id: str,
        types: Iterable[str] | None = None,
        since_id: int = 0,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        result: list[StoredEvent] = self._call("events", session_id, types, since_id, limit)
        return result

    def versions(self, session_id: str) -> list[VersionInfo]:
        result: list[VersionInfo] = self._call("versions", session_id)
        return result

    def set_context_version(self, session_id: str, version: int) -> int:
        result: int = self._call("set_context_version", session_id, version)
        return result

    def search_archive(
        self,
        session_id: str,
        query: str,
        *,
        exclude_version: int | None = None,
        limit: int = 50,
    ) -> list[tuple[Item, float]]:
        result: list[tuple[Item, float]] = self._call(
            "search_archive", session_id, query, exclude_version=exclude_version, limit=limit
        )
        return result

    def items_after(
        self,
        session_id: str,
        item_hash: str,
        *,
        exclude_version: int | None = None,
        limit: int = 2,
    ) -> list[Item]:
        result: list[Item] = self._call(
            "items_after", session_id, item_hash, exclude_version=exclude_version, limit=limit
        )
        return result

    def token_cache_get(self, counter: str, hashes: list[str]) -> dict[str, int]:
        result: dict[str, int] = self._call("token_cache_get", counter, hashes)
        return result

    def token_cache_put(self, counter: str, counts: dict[str, int]) -> None:
        self._call("token_cache_put", counter, counts)

    # budgets and secrets: the same pass-through, so a fault can be injected there too

    def reserve(self, *args: Any, **kwargs: Any) -> Reservation | None:
        result: Reservation | None = self._call("reserve", *args, **kwargs)
        return result

    def budget_revision(self, session_id: str) -> int:
        result: int = self._call("budget_revision", session_id)
        return result

    def reservations(self, *args: Any, **kwargs: Any) -> list[Reservation]:
        result: list[Reservation] = self._call("reservations", *args, **kwargs)
        return result

    def settle_reservations(self, *args: Any, **kwargs: Any) -> list[Reservation]:
        result: list[Reservation] = self._call("settle_reservations", *args, **kwargs)
        return result

    def set_agent_budget(self, session_id: str, agent: str, tokens: int) -> None:
        self._call("set_agent_budget", session_id, agent, tokens)

    def agent_budgets(self, session_id: str) -> dict[str, int]:
        result: dict[str, int] = self._call("agent_budgets", session_id)
        return result

    def scrub_secrets(self, *, dry_run: bool = False) -> ScrubReport:
        result: ScrubReport = self._call("scrub_secrets", dry_run=dry_run)
        return result

    def transaction(self) -> AbstractContextManager[None]:
        result: AbstractContextManager[None] = self._call("transaction")
        return result

    def close(self) -> None:
        self._call("close")
