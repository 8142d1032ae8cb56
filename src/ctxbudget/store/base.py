"""The contract every store backend keeps, and the records it keeps them in.

``Store`` is the abstract base class of the storage layer: sessions, their items
(one row per ``ctxbudget.model.Item``, grouped by context version), the append-only
event ledger and the persisted token-count cache, plus the archive of older context
versions (listing, switching back, full-text search). This module also holds what
every backend shares at the contract level: the "session not found" and "no such
version" messages and the lazy import of an optional driver; the row encoding lives
in ``_rows`` and the search rules in ``_search``. It holds no backend and no
registry (see ``ctxbudget.store``), and it makes no budget decision: it stores what
the facade gives it. Reservations, their states and the settlement rule every
backend shares: ``reservations``.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import ModuleType, TracebackType
from typing import Any, ClassVar, Self, TypedDict

from ..errors import MissingExtraError, SessionNotFoundError, StoreError
from ..model import Item
from ..redact import redact_data, redact_text, redaction_enabled
from .reservations import SETTLE_ON_USAGE, Cap, Reservation


@dataclass(slots=True)
class StoredSession:
    """One managed context window as the store keeps it.

    ``source`` is a transcript path or a description of where the items came from.
    ``policy`` and ``meta`` must be JSON-able. ``context_version`` names the items
    that form the current context; a compaction writes the kept items under the next
    version and bumps it, so older versions stay readable.
    """

    id: str
    name: str | None
    model: str | None
    source: str | None
    policy: dict[str, Any]
    created_at: float
    updated_at: float
    context_version: int = 1
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StoredEvent:
    """One entry of a session's ledger. ``id`` grows with every event of the store."""

    id: int
    session_id: str
    type: str
    at: float
    data: dict[str, Any]


class ItemAggregates(TypedDict):
    """Token sums of one context version, computed by the backend.

    ``uncounted`` is the number of items whose ``tokens`` is still ``None`` (they add
    0 to every sum). ``by_tool`` leaves out items that belong to no tool.
    """

    items: int
    tokens: int
    uncounted: int
    by_component: dict[str, int]
    by_kind: dict[str, int]
    by_tool: dict[str, int]
    by_agent: dict[str, int]


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One context version of a session, as ``Store.versions`` lists it.

    ``tokens`` sums the counted items (uncounted ones add 0). ``created_at`` is the
    store-clock time of the first write of an item of this version; ``None`` when the
    version has no item yet (a current version still empty) or was written before the
    store recorded it (SQLite schema 1).
    """

    version: int
    items: int
    tokens: int
    created_at: float | None


@dataclass(slots=True)
class ScrubReport:
    """What ``Store.scrub_secrets`` found (``dry_run``) or redacted in a store.

    ``items``/``events``: rows read; ``items_redacted``/``events_redacted``: rows whose
    text, raw block or data held a secret; ``secrets``: secrets replaced, by kind.
    """

    items: int = 0
    items_redacted: int = 0
    events: int = 0
    events_redacted: int = 0
    secrets: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def import_driver(
    module: str, *, backend: str, extra: str, package: str | None = None
) -> ModuleType:
    """Import an optional driver, or raise ``MissingExtraError`` naming the extra.

    A backend calls this when it is built, never at import time, so a user who does
    not choose that backend never needs the driver.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or module.split(".")[0] != exc.name.split(".")[0]:
            raise  # the driver is there but one of its own dependencies is broken
        raise MissingExtraError(f"the {backend} store", extra, package or module) from exc


#: The ``time.monotonic()`` by which the store's calls in this context should be over
#: (a Claude Code hook's deadline), or None: a backend fits its connection attempts in
#: what is left (PostgreSQL: a shorter ``connect_timeout``).
STORE_DEADLINE: ContextVar[float | None] = ContextVar("ctxbudget_store_deadline", default=None)


class Store(ABC):
    """Where sessions, items, events and cached token counts live.

    Every method is synchronous and atomic on its own. ``transaction()`` makes a
    block atomic: everything inside commits together or not at all, and blocks nest
    (an inner block that fails rolls back only its own part). Methods that take a
    session id raise ``SessionNotFoundError`` when no such session is stored.
    ``append_items``, ``append_event`` and ``append_events`` also move the session's
    ``updated_at`` forward (never back) to the store clock, so ``list_sessions`` shows
    the most recently active first.

    Secrets: every backend writes items through ``redacted_item`` and event data
    through ``redacted_data``, so well-known secret shapes (``ctxbudget.redact``)
    never reach the rows nor the full-text index, whoever writes. The item's token
    count stays the count of the text before redaction. ``redact_secrets`` (default:
    on unless ``$CTXBUDGET_REDACT`` is off) turns it off for this store.
    """

    scheme: ClassVar[str]
    url: str

    def __init__(self, url: str, *, clock: Callable[[], float] | None = None) -> None:
        # Every backend is built as cls(url, clock=...) by open_store.
        self.url = url
        self.clock: Callable[[], float] = clock or time.time
        self.redact_secrets: bool = redaction_enabled()

    # -- secrets: the one place where what is written is redacted ------------------------
    #
    # Here rather than in the facade: hooks and integrations also write events
    # straight to the store, and a backend is the last code every write goes through.

    def redacted_item(self, item: Item) -> Item:
        """``item`` as this store writes it: a copy with secrets redacted in its text
        and raw block (same id, tokens and times), or ``item`` itself when it holds
        none or redaction is off. The caller's object is never changed: the live
        context (what an agent sends) keeps its text."""
        if not self.redact_secrets:
            return item
        text = redact_text(item.text)
        raw = redact_data(item.raw) if item.raw is not None else None
        if text is item.text and raw is item.raw:
            return item
        return dataclasses.replace(item, text=text, raw=raw, _hash=None)

    def redacted_data(self, data: dict[str, Any]) -> dict[str, Any]:
        """Event ``data`` as this store writes it (secrets redacted in its strings)."""
        if not self.redact_secrets:
            return data
        redacted: dict[str, Any] = redact_data(data)
        return redacted

    def scrub_secrets(self, *, dry_run: bool = False) -> ScrubReport:
        """Redact the secrets already stored (items, their full-text index, events),
        whatever ``redact_secrets`` says; ``dry_run`` only counts them. Rows keep
        their token counts; ledger events are rewritten in place (the one exception
        to their append-only rule)."""
        raise self._unsupported("scrub_secrets")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def not_found(self, session_id: str) -> SessionNotFoundError:
        return SessionNotFoundError(
            f'no stored session "{session_id}" in {self.url}: list them with "ctxbudget sessions"'
        )

    # -- sessions -----------------------------------------------------------------

    @abstractmethod
    def create_session(self, session: StoredSession) -> None:
        """Store a new session; ``StoreError`` if its id is taken."""

    @abstractmethod
    def get_session(self, session_id: str) -> StoredSession: ...

    @abstractmethod
    def find_sessions(self, prefix: str) -> list[StoredSession]:
        """Sessions whose id starts with ``prefix`` (a short id typed by a user)."""

    @abstractmethod
    def list_sessions(self, limit: int | None = 50) -> list[StoredSession]:
        """Sessions, most recently updated first."""

    @abstractmethod
    def update_session(self, session: StoredSession) -> None:
        """Write every field of ``session`` over the stored one with the same id."""

    @abstractmethod
    def delete_session(self, session_id: str) -> None:
        """Delete a session with its items and events."""

    # -- items --------------------------------------------------------------------

    @abstractmethod
    def append_items(
        self, session_id: str, items: list[Item], version: int | None = None
    ) -> list[Item]:
        """Append ``items`` after the session's last item, all or none.

        ``version`` defaults to the session's ``context_version``. Items without an
        id get a uuid4 hex id (set on the given objects once the write succeeded),
        and the given list is returned. Ids are unique within a session's version.
        """

    @abstractmethod
    def load_items(self, session_id: str, version: int | None = None) -> list[Item]:
        """Items of one version (the current one by default), in append order."""

    @abstractmethod
    def item_aggregates(self, session_id: str, version: int | None = None) -> ItemAggregates:
        """Token sums by component, kind, tool and agent, without loading items."""

    # -- context versions and the archive ---------------------------------------------
    #
    # A compaction writes the kept context as version N+1 and points the session at
    # it; the items of older versions stay, and are the archive. ``versions`` and
    # ``search_archive`` are not abstract only so that wrappers written against the
    # earlier contract (``ctxbudget.testing.FaultyStore``) still build; every backend
    # overrides them.

    def versions(self, session_id: str) -> list[VersionInfo]:
        """The context versions of a session, ascending.

        A version exists once it holds an item; the session's current
        ``context_version`` is always listed, with 0 items if it has none yet.
        """
        raise self._unsupported("versions")

    def set_context_version(self, session_id: str, version: int) -> int:
        """Point the session at an existing ``version`` and return the previous one.

        ``StoreError`` (listing the versions there are) when ``version`` is not one of
        ``versions(session_id)``. Like the appends it moves ``updated_at`` forward to
        the store clock. It logs no event: the caller does, in the same transaction.
        """
        with self.transaction():
            stored = self.get_session(session_id)
            known = [info.version for info in self.versions(session_id)]
            if version not in known:
                raise StoreError(
                    f"session {session_id} has no context version {version!r}: its versions "
                    f"are {', '.join(map(str, known))} (current: {stored.context_version})"
                )
            previous = stored.context_version
            stored.context_version = version
            stored.updated_at = max(stored.updated_at, self.clock())
            self.update_session(stored)
        return previous

    def search_archive(
        self,
        session_id: str,
        query: str,
        *,
        exclude_version: int | None = None,
        limit: int = 50,
    ) -> list[tuple[Item, float]]:
        """Items of the session that match ``query``, best first, with a score.

        ``query`` is free text (a question): it is cut into words, stopwords are
        dropped and the rest are OR-ed, so no input is a syntax error; a query with no
        word left finds nothing. Every version is searched except ``exclude_version``
        (normally the current one), and a text that ``exclude_version`` also holds is
        left out: the caller already has it. Each distinct text comes once, as its
        copy in the most recent version. Scores are BM25 relevance, higher is better,
        comparable within one result list only.
        """
        raise self._unsupported("search_archive")

    def items_after(
        self,
        session_id: str,
        item_hash: str,
        *,
        exclude_version: int | None = None,
        limit: int = 2,
    ) -> list[Item]:
        """The ``limit`` items that came right after a text, in append order: after the
        first copy of ``item_hash`` (``Item.hash``) that something follows in its
        version, the earliest version first, ``exclude_version`` left out. Empty when
        no copy has anything after it. What came after an archived item, without
        loading its version."""
        raise self._unsupported("items_after")

    def _unsupported(self, method: str) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} does not implement {method}(); every store backend must"
        )

    # -- events -------------------------------------------------------------------

    @abstractmethod
    def append_event(self, session_id: str, type: str, data: dict[str, Any]) -> StoredEvent:
        """Append to the ledger. Events are never updated nor deleted on their own."""

    def append_events(
        self, session_id: str, events: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[StoredEvent]:
        """Append ``events`` (type, data), in order, as one atomic write: what
        ``append_event`` on each would store, with increasing ids. The backends stamp
        them with one store-clock time and move the session row once, writing them in
        one batch (a transcript's thousands of API calls recorded at once); this
        default, for wrappers written against the earlier contract, appends them one
        by one. No event: nothing is written (``SessionNotFoundError`` still when no
        such session is stored)."""
        with self.transaction():
            return [self.append_event(session_id, type, data) for type, data in events]

    @abstractmethod
    def events(
        self,
        session_id: str,
        types: Iterable[str] | None = None,
        since_id: int = 0,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Events with ``id > since_id``, oldest first, optionally of some types."""

    # -- budget reservations and agent budgets -------------------------------------------
    #
    # The atomic step of every budget grant. Reservations are keyed by session id but
    # need no session row (a hook may reserve for a session it only read). Not
    # abstract only so that wrappers written against the earlier contract still build.

    def reserve(
        self,
        session_id: str,
        scope: str,
        key: str,
        tokens: int,
        caps: Iterable[Cap] = (),
        *,
        ttl: float,
        settle: str = SETTLE_ON_USAGE,
        revision: int | None = None,
    ) -> Reservation | None:
        """Take a reservation of ``tokens`` in ``scope`` if it fits under every cap,
        in one atomic step (the check and the write together); None when it does not.

        First, live reservations whose time is up become ``EXPIRED``. A live
        reservation with the same ``key`` is returned as it is (``existing=True``,
        nothing taken twice); a settled one of that key is replaced. ``revision``
        (from ``budget_revision``, read before the figures the caps hold): None too
        when the session's revision has moved since, so the caller decides again.
        """
        raise self._unsupported("reserve")

    def budget_revision(self, session_id: str) -> int:
        """A count that moves whenever a figure a grant was decided on may have: the
        session's row written (``update_session``: a usage, an append, a compaction), a
        reservation confirmed (its tokens leave the live ones for a usage recorded with
        it, or before it) or an agent budget set. 0 for a session with none of them.

        A cap's ``used`` is read before the reservation is taken: a reservation
        confirmed in between would count neither as live nor in that figure. A grant
        reads the revision first, its figures next, and reserves at that revision."""
        raise self._unsupported("budget_revision")

    def reservations(
        self, session_id: str, scope: str | None = None, *, live: bool = True
    ) -> list[Reservation]:
        """The session's reservations (only the live, unexpired ones by default), in
        ``scope`` (a scope ending in ':' covers those under it), oldest first."""
        raise self._unsupported("reservations")

    def settle_reservations(
        self,
        session_id: str,
        state: str,
        *,
        key: str | None = None,
        scope: str | None = None,
        settle: str | None = None,
        tokens: int | None = None,
        oldest: bool = False,
    ) -> list[Reservation]:
        """Mark live reservations ``CONFIRMED`` or ``RELEASED`` and return them (as
        they were): the one of ``key``, or those in ``scope`` / with ``settle``.
        ``oldest``: only the oldest that matches. ``tokens``: at most that many,
        newest first, the last one cut down (its rest stays live). Confirming moves
        the ``budget_revision``: record the usage it stands for first, or in the same
        transaction."""
        raise self._unsupported("settle_reservations")

    def set_agent_budget(self, session_id: str, agent: str, tokens: int) -> None:
        """Store one agent's budget in its own row: concurrent writers of other
        agents' budgets never undo it. Moves the ``budget_revision``: a grant decided
        on the former budget is not taken."""
        raise self._unsupported("set_agent_budget")

    def agent_budgets(self, session_id: str) -> dict[str, int]:
        """The budgets stored with ``set_agent_budget``, by agent."""
        raise self._unsupported("agent_budgets")

    # -- token-count cache ----------------------------------------------------------

    @abstractmethod
    def token_cache_get(self, counter: str, hashes: list[str]) -> dict[str, int]:
        """Cached counts of the given content hashes; unknown hashes are left out."""

    @abstractmethod
    def token_cache_put(self, counter: str, counts: dict[str, int]) -> None: ...

    # -- lifecycle ------------------------------------------------------------------

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """A block whose writes commit together or not at all; nests."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; closing twice is fine."""
