"""The contract every store backend keeps, and the records it keeps them in.

``Store`` is the abstract base class of the storage layer: sessions, their items
(one row per ``ctxbudget.model.Item``, grouped by context version), the append-only
event ledger and the persisted token-count cache. This module also holds what all
backends share so they behave alike: item rows as plain tuples, JSON encoding with
a readable error, the "session not found" message, and the lazy import of an
optional driver. It holds no backend and no registry (see ``ctxbudget.store``), and
it makes no budget decision: it stores what the facade gives it.
"""

from __future__ import annotations

import importlib
import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import ModuleType, TracebackType
from typing import Any, ClassVar, Self, TypedDict

from ..errors import MissingExtraError, SessionNotFoundError, StoreError
from ..model import Component, Item, Kind, Layer, Role


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


# The stored columns of an item, in the order of an item row tuple. Every backend
# writes and reads this same tuple, so both ends of a round trip are shared code.
ITEM_COLUMNS: tuple[str, ...] = (
    "session_id",
    "seq",
    "version",
    "id",
    "role",
    "kind",
    "component",
    "layer",
    "agent",
    "tool",
    "pair_id",
    "tokens",
    "pinned",
    "phase",
    "message_index",
    "created_at",
    "last_used_at",
    "text",
    "hash",
    "raw",
)
ItemRow = tuple[Any, ...]


SESSION_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "model",
    "source",
    "policy",
    "created_at",
    "updated_at",
    "context_version",
    "meta",
)
SessionRow = tuple[Any, ...]
UPDATED_AT = SESSION_COLUMNS.index("updated_at")


def session_to_row(session: StoredSession) -> SessionRow:
    """The stored row of ``session``, policy and meta as JSON text."""
    return (
        session.id,
        session.name,
        session.model,
        session.source,
        dump_json(session.policy, f"policy of session {session.id}"),
        float(session.created_at),
        float(session.updated_at),
        int(session.context_version),
        dump_json(session.meta, f"meta of session {session.id}"),
    )


def session_from_row(row: SessionRow) -> StoredSession:
    sid, name, model, source, policy, created_at, updated_at, version, meta = row
    return StoredSession(
        sid,
        name,
        model,
        source,
        load_json(policy),
        created_at,
        updated_at,
        version,
        load_json(meta),
    )


def new_item_id() -> str:
    return uuid.uuid4().hex


def dump_json(value: Any, what: str) -> str:
    """Encode ``value`` as compact JSON, or say which value cannot be stored."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{what} cannot be stored: {exc}; store only JSON data "
            "(dict, list, str, int, float, bool, None)"
        ) from exc


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def item_to_row(item: Item, session_id: str, seq: int, version: int, item_id: str) -> ItemRow:
    """The stored row of ``item``; enum fields are checked and stored by value."""
    try:
        role = Role(item.role).value
        kind = Kind(item.kind).value
        component = Component(str(item.component)).value
        layer = Layer(str(item.layer)).value
    except ValueError as exc:
        raise StoreError(f"item {item_id} cannot be stored: {exc}") from exc
    raw = None if item.raw is None else dump_json(item.raw, f"raw of item {item_id}")
    return (
        session_id,
        seq,
        version,
        item_id,
        role,
        kind,
        component,
        layer,
        item.agent,
        item.tool,
        item.pair_id,
        None if item.tokens is None else int(item.tokens),
        bool(item.pinned),
        item.phase,
        int(item.message_index),
        float(item.created_at),
        None if item.last_used_at is None else float(item.last_used_at),
        item.text,
        item.hash,
        raw,
    )


def item_from_row(row: ItemRow) -> Item:
    """Rebuild an ``Item`` from a row in ``ITEM_COLUMNS`` order."""
    (
        _session_id,
        _seq,
        _version,
        item_id,
        role,
        kind,
        component,
        layer,
        agent,
        tool,
        pair_id,
        tokens,
        pinned,
        phase,
        message_index,
        created_at,
        last_used_at,
        text,
        _hash,
        raw,
    ) = row
    return Item(
        role=Role(role),
        kind=Kind(kind),
        text=text,
        component=Component(component),
        layer=Layer(layer),
        agent=agent,
        tool=tool,
        pair_id=pair_id,
        tokens=tokens,
        pinned=bool(pinned),
        phase=phase,
        message_index=message_index,
        id=item_id,
        created_at=created_at,
        last_used_at=last_used_at,
        raw=load_json(raw),
    )


GROUPED_BY = ("component", "kind", "tool", "agent")


def make_aggregates(
    items: int, tokens: int, uncounted: int, groups: dict[str, dict[str, int]]
) -> ItemAggregates:
    """Build the aggregates from per-column groups keyed by ``GROUPED_BY`` names."""
    return ItemAggregates(
        items=items,
        tokens=tokens,
        uncounted=uncounted,
        by_component=groups.get("component", {}),
        by_kind=groups.get("kind", {}),
        by_tool=groups.get("tool", {}),
        by_agent=groups.get("agent", {}),
    )


def event_types(types: Iterable[str] | None) -> tuple[str, ...] | None:
    # A bare string is one type, not an iterable of one-letter types.
    if types is None:
        return None
    return (types,) if isinstance(types, str) else tuple(types)


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


class Store(ABC):
    """Where sessions, items, events and cached token counts live.

    Every method is synchronous and atomic on its own. ``transaction()`` makes a
    block atomic: everything inside commits together or not at all, and blocks nest
    (an inner block that fails rolls back only its own part). Methods that take a
    session id raise ``SessionNotFoundError`` when no such session is stored.
    ``append_items`` and ``append_event`` also move the session's ``updated_at``
    forward (never back) to the store clock, so ``list_sessions`` shows the most
    recently active first.
    """

    scheme: ClassVar[str]
    url: str

    def __init__(self, url: str, *, clock: Callable[[], float] | None = None) -> None:
        # Every backend is built as cls(url, clock=...) by open_store.
        self.url = url
        self.clock: Callable[[], float] = clock or time.time

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

    # -- events -------------------------------------------------------------------

    @abstractmethod
    def append_event(self, session_id: str, type: str, data: dict[str, Any]) -> StoredEvent:
        """Append to the ledger. Events are never updated nor deleted on their own."""

    @abstractmethod
    def events(
        self,
        session_id: str,
        types: Iterable[str] | None = None,
        since_id: int = 0,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Events with ``id > since_id``, oldest first, optionally of some types."""

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
