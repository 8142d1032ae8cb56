"""How stored records are encoded: item and session rows, JSON, aggregates.

Every backend writes and reads the same plain tuples (``ITEM_COLUMNS`` and
``SESSION_COLUMNS`` order), so both ends of a round trip are shared code and the
backends agree on every detail: enum fields checked and stored by value, JSON with
a readable error, a uuid4 hex id for items that have none.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from ..errors import StoreError
from ..model import Component, Item, Kind, Layer, Role
from .base import ItemAggregates, StoredSession

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
