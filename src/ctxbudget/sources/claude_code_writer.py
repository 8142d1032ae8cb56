"""A compacted context as Claude Code JSONL records a session can be resumed from.

``to_claude_code`` writes a ``compact_boundary`` record, the summaries as Claude Code
writes its own compaction's (``isCompactSummary``), then the messages of
``writers.anthropic_messages`` as user and assistant records chained by
``parentUuid``, with the session fields (``sessionId``, ``cwd``, ``version``,
``gitBranch``, the model) taken from the original records.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..model import Carried, Item, Kind, Role
from .claude_code_context import CARRIED_FIELD
from .writers import ItemIds, anthropic_messages, continue_message, parse_json

__all__ = ["to_claude_code"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_HINT_KEYS = ("sessionId", "cwd", "version", "gitBranch", "userType")


def _hint_fields(hint: Any) -> dict[str, Any]:
    """Session fields from the original records (dicts or JSON lines) or a mapping."""
    if hint is None:
        return {}
    if isinstance(hint, Mapping):
        return dict(hint)
    fields: dict[str, Any] = {}
    for record in hint:
        if isinstance(record, str):
            ok, record = parse_json(record)
            if not ok:
                continue
        if not isinstance(record, dict) or record.get("isSidechain"):
            continue
        fields.update({k: record[k] for k in _HINT_KEYS if isinstance(record.get(k), str)})
        if isinstance(record.get("uuid"), str):
            fields["logicalParentUuid"] = record["uuid"]
        message = record.get("message")
        model = message.get("model") if isinstance(message, dict) else None
        if record.get("type") == "assistant" and isinstance(model, str) and model[:1] != "<":
            fields["model"] = model
    return fields


def to_claude_code(
    items: Sequence[Item],
    transcript_records_hint: Any = None,
    *,
    session_id: str | None = None,
    model: str | None = None,
    carried: Carried | None = None,
) -> list[dict[str, Any]]:
    """JSONL records (dicts) a Claude Code session can be resumed from.

    A ``compact_boundary`` system record first; then, when the items start with
    summaries, a user record with ``isCompactSummary`` holding them; then one record
    per (merged) message of ``to_anthropic``, each with a fresh ``uuid`` chained by
    ``parentUuid``. ``transcript_records_hint`` (the original records, as dicts or JSON
    lines, or a mapping of fields) supplies ``sessionId``, ``cwd``, ``version``,
    ``gitBranch`` and the model; ``session_id`` and ``model`` override it. System items
    and tool definitions are left out: Claude Code sends its own. ``carried``: what
    the session the items come from measured (what its provider counted beyond the
    transcript, its correction), written in the boundary (``CARRIED_FIELD``) so the new
    session's figure holds it before its first usage.
    """
    hint = _hint_fields(transcript_records_hint)
    sid = session_id or hint.get("sessionId") or str(uuid.uuid4())
    model = model or hint.get("model")
    conversation = [item for item in items if item.role is not Role.SYSTEM]
    lead = 0
    while lead < len(conversation) and conversation[lead].kind is Kind.SUMMARY:
        lead += 1
    summaries = [item.text for item in conversation[:lead]]
    messages = anthropic_messages(conversation[lead:], ItemIds("toolu_ctx_", sanitize=True))
    if not summaries and (not messages or messages[0]["role"] != "user"):
        messages.insert(0, continue_message())

    timestamp = _now()
    common: dict[str, Any] = {"isSidechain": False, "userType": hint.get("userType", "external")}
    common.update({k: hint[k] for k in ("cwd", "version", "gitBranch") if k in hint})
    common["sessionId"] = sid
    boundary_uuid = str(uuid.uuid4())
    records: list[dict[str, Any]] = [
        {
            "parentUuid": None,
            "logicalParentUuid": hint.get("logicalParentUuid"),
            **common,
            "type": "system",
            "subtype": "compact_boundary",
            "content": "Conversation compacted",
            "isMeta": False,
            "timestamp": timestamp,
            "uuid": boundary_uuid,
            "level": "info",
            "compactMetadata": {"trigger": "manual"},
        }
    ]
    if carried is not None and carried.overhead > 0:
        records[0][CARRIED_FIELD] = carried.to_data()
    parent = boundary_uuid
    if summaries:
        content: Any = (
            summaries[0]
            if len(summaries) == 1
            else [{"type": "text", "text": text} for text in summaries]
        )
        record_uuid = str(uuid.uuid4())
        records.append(
            {
                "parentUuid": parent,
                **common,
                "type": "user",
                "message": {"role": "user", "content": content},
                "isCompactSummary": True,
                "isVisibleInTranscriptOnly": True,
                "uuid": record_uuid,
                "timestamp": timestamp,
            }
        )
        parent = record_uuid
    for message in messages:
        record_uuid = str(uuid.uuid4())
        if message["role"] == "assistant":
            body: dict[str, Any] = {
                "id": f"msg_ctx_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
            }
            if model:
                body["model"] = model
            body.update({"content": message["content"], "stop_reason": None})
            body["stop_sequence"] = None
        else:
            body = {"role": "user", "content": message["content"]}
        records.append(
            {
                "parentUuid": parent,
                **common,
                "type": message["role"],
                "message": body,
                "uuid": record_uuid,
                "timestamp": timestamp,
            }
        )
        parent = record_uuid
    return records
