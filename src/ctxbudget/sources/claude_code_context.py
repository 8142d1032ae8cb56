"""Which records of a Claude Code transcript form a context, and what each API call
sent beyond its anchor.

Records form a tree through ``parentUuid``; the context of a record is the path from it
back to the start of its context (the file's root, or a compaction's boundary), with
what that path branches to:

- the other blocks of a response on the path (Claude Code writes a response a record
  per block) and the result of every call on it (2.x hangs each result on its own
  call's record, so the path passes through one of a response's parallel calls only);
- after a compaction (2.x), the reminders written between its boundary and its summary,
  and the messages it kept (``compactMetadata.preservedMessages``), which follow the
  summary.

Where a parent is missing from the file, the previous record in file order stands in
for it (``link_records``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import MAIN_AGENT, ApiCall, Carried, Item, Kind, Role, Transcript, Usage

__all__ = [
    "CARRIED_FIELD",
    "CONTEXT_RECORDS",
    "Record",
    "build_calls",
    "build_current",
    "build_replaced",
    "carried_of",
    "is_compact_boundary",
    "is_context_record",
    "link_records",
    "message_of",
    "named_model",
    "opens_context",
    "preserved_messages",
    "resolve_preserved",
    "sends_system_messages",
    "starts_new_context",
    "string_of",
    "system_blob",
]

# Records whose items are context: the conversation, and Claude Code 2.x attachments
# that carry ``rendered`` text (system reminders it sends with the next message).
CONTEXT_RECORDS = ("user", "assistant", "attachment")
# ``system`` records Claude Code sends the model as the user's: a local command's output
# ("<local-command-stderr>…", "recorded here as context for later messages").
CONTEXT_SYSTEM_SUBTYPES = ("local_command",)


@dataclass(slots=True)
class Record:
    """One record of the file, as the context builders need it."""

    index: int
    data: dict[str, Any]
    uuid: str | None
    parent: str | None
    sidechain: bool
    items: list[Item] = field(default_factory=list)
    prev: int | None = None
    call_index: int | None = None
    line: int | None = None  # in the file, for problem lines
    usage: Usage | None = None  # valid usage of an assistant record, else None
    message_id: str | None = None  # the API message it is (or is a block of)


def string_of(value: Any) -> str | None:
    """``value`` when it is a string, else None."""
    return value if isinstance(value, str) else None


def message_of(data: dict[str, Any]) -> dict[str, Any]:
    """A record's ``message``, or {} when it has none (or not an object)."""
    message = data.get("message")
    return message if isinstance(message, dict) else {}


def is_context_record(data: dict[str, Any]) -> bool:
    """Whether the record's items are context (``CONTEXT_RECORDS``, and the ``system``
    records of ``CONTEXT_SYSTEM_SUBTYPES``)."""
    rtype = data.get("type")
    return rtype in CONTEXT_RECORDS or (
        rtype == "system" and data.get("subtype") in CONTEXT_SYSTEM_SUBTYPES
    )


def is_compact_boundary(data: dict[str, Any]) -> bool:
    """A ``system`` record of subtype ``compact_boundary``: a compaction happened here."""
    return data.get("type") == "system" and data.get("subtype") == "compact_boundary"


def starts_new_context(data: dict[str, Any]) -> bool:
    """Whether this record starts a new context: a compaction boundary, or the
    ``isCompactSummary`` record that holds the summary the new context starts with."""
    return bool(is_compact_boundary(data) or data.get("isCompactSummary"))


def opens_context(data: dict[str, Any], after_boundary: bool) -> bool:
    """Whether a main-thread record, read in file order, opens the context the records
    after it belong to: a compaction's boundary or summary (not the summary right after
    its boundary: ``after_boundary``, a boundary read and no message since, continues
    that context), or a message with no parent (a root)."""
    if starts_new_context(data) and not (data.get("isCompactSummary") and after_boundary):
        return True
    return data.get("type") in ("user", "assistant") and data.get("parentUuid") is None


def system_blob(data: dict[str, Any]) -> str | None:
    """The hash of an ``api-request-blob`` record holding a system-role message (a
    model that takes system messages in the conversation gets its system-role reminders
    that way), else None."""
    message = data.get("message")
    if data.get("type") != "api-request-blob" or not isinstance(message, dict):
        return None
    return string_of(data.get("hash")) if message.get("role") == "system" else None


def sends_system_messages(
    data: dict[str, Any], system_hashes: set[str], before: bool | None
) -> bool | None:
    """For an ``api-request`` record: whether that request sent system messages, one of
    its messages (``tail``, by hash; a blob is written once, at its first request) being
    a system one, or one of those it kept of the request ``before`` (``keep``). Claude
    Code sends the system-role reminders that way to a model that takes them (Claude
    Opus 4.8 and later) and as the user's text, tags and all, to the others. None:
    the record does not say."""
    tail = data.get("tail")
    if data.get("type") != "api-request" or not isinstance(tail, list):
        return None
    kept = before if isinstance(data.get("keep"), int) and data["keep"] > 0 else False
    return any(h in system_hashes for h in tail if isinstance(h, str)) or bool(kept)


def named_model(data: dict[str, Any]) -> str | None:
    """The model a record names before any answer does: an ``api-request``'s
    ``params.model``, or Claude Code 2.x's ``model`` attachment (``identity.modelId``,
    written with the first prompt, and again after ``/model``)."""
    model: Any = None
    if data.get("type") == "api-request":
        params = data.get("params")
        model = params.get("model") if isinstance(params, dict) else None
    elif data.get("type") == "attachment":
        attachment = data.get("attachment")
        if isinstance(attachment, dict) and attachment.get("type") == "model":
            identity = attachment.get("identity")
            model = identity.get("modelId") if isinstance(identity, dict) else None
    if isinstance(model, str) and model and not model.startswith("<"):
        return model
    return None


#: The key of a compact boundary ctxbudget wrote (``compact --fork``): what the
#: session it came from measured (``model.Carried``): the figure of the new context
#: until its first usage measures it.
CARRIED_FIELD = "ctxbudget"


def carried_of(boundary: dict[str, Any]) -> Carried | None:
    """What a compact boundary carries over (``CARRIED_FIELD``), else None."""
    return Carried.from_data(boundary.get(CARRIED_FIELD))


def preserved_messages(boundary: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The messages a compaction kept (Claude Code 2.x: ``compactMetadata``'s
    ``preservedMessages``): the uuid of the record they follow in the new context (the
    summary) and theirs, in order; none when the boundary keeps none."""
    meta = boundary.get("compactMetadata")
    kept = meta.get("preservedMessages") if isinstance(meta, dict) else None
    if not isinstance(kept, dict):
        return []
    anchor, uuids = kept.get("anchorUuid"), kept.get("uuids")
    if not isinstance(anchor, str) or not isinstance(uuids, list):
        return []
    return [(anchor, [u for u in uuids if isinstance(u, str)])]


def link_records(records: list[Record]) -> None:
    """Give each record the index of its predecessor in its context (or None at a root)."""
    by_uuid = {r.uuid: r.index for r in records if r.uuid}
    last_in_thread: dict[bool, int] = {}
    for r in records:
        if is_compact_boundary(r.data) or r.parent is None:
            r.prev = None
        elif r.parent in by_uuid and by_uuid[r.parent] < r.index:
            r.prev = by_uuid[r.parent]
        else:
            r.prev = last_in_thread.get(r.sidechain)
        last_in_thread[r.sidechain] = r.index


def _chain(records: list[Record], start: int | None) -> list[int]:
    """Indices from the root of ``start``'s context to ``start``, oldest first."""
    out = []
    seen = set()
    i = start
    while i is not None and i not in seen:
        seen.add(i)
        out.append(i)
        data = records[i].data
        if starts_new_context(data):
            out.extend(_lead(records, i))
            break
        i = records[i].prev
    out.reverse()
    return out


def _with_branches(records: list[Record], path: list[int], end: int | None = None) -> list[int]:
    """``path`` (record indices, oldest first) with the records its messages branch to
    (``_branches``, among the records before ``end``), in conversation order
    (``_in_order``)."""
    if not path:
        return path
    hi = len(records) if end is None else end
    return _in_order(records, {*path, *_branches(records, set(path), path[0], hi)})


def _in_order(records: list[Record], indices: set[int]) -> list[int]:
    """``indices`` in file order, except that the blocks of a response stay together at
    its first record: a tool result written between two blocks of the response that
    called it (a tool run while the response streamed) comes after the response."""
    first: dict[str, int] = {}
    for j in sorted(indices):
        mid = records[j].message_id
        if mid and mid not in first:
            first[mid] = j

    def key(j: int) -> tuple[int, int]:
        mid = records[j].message_id
        return (first[mid] if mid else j, j)

    return sorted(indices, key=key)


def _branches(records: list[Record], on: set[int], lo: int, hi: int) -> list[int]:
    """The records between ``lo`` and ``hi`` that the messages of the records ``on`` a
    path branch to. Claude Code 2.x writes each block of a response as a record of its
    own and hangs each tool result on its own call's record, so a path from a record
    back to the start passes through one of a response's parallel calls only: the
    response's other blocks (the same message id) and the results of every call on the
    path are context too."""
    ids = {records[i].message_id for i in on if records[i].message_id}
    found: set[int] = set()
    calls: set[str] = set()
    while True:
        calls_now = {
            item.pair_id
            for i in (*on, *found)
            for item in records[i].items
            if item.kind is Kind.TOOL_CALL and item.pair_id
        }
        if found and calls_now <= calls:
            return sorted(found)
        calls = calls_now
        for r in records[lo:hi]:
            if r.index in on or r.index in found or r.sidechain:
                continue
            if r.message_id in ids or any(
                item.role is Role.TOOL and item.pair_id in calls for item in r.items
            ):
                found.add(r.index)
        if not found:
            return []


def _lead(records: list[Record], summary: int) -> list[int]:
    """The records between a compaction's boundary and its summary, newest first (the
    reminders Claude Code 2.x writes there, the date among them, are sent after the
    summary), the boundary last; none when the summary does not follow a boundary."""
    lead = []
    i = records[summary].prev
    while i is not None and records[i].data.get("type") == "attachment":
        lead.append(i)
        i = records[i].prev
    if i is None or not is_compact_boundary(records[i].data):
        return []
    return [*lead, i]


def resolve_preserved(
    records: list[Record], kept: list[tuple[str, list[str]]]
) -> dict[int, list[int]]:
    """For each record a compaction's kept messages follow (``preserved_messages``),
    the indices of those messages' main-thread records found earlier in the file."""
    by_uuid = {r.uuid: r.index for r in records if r.uuid and not r.sidechain}
    out: dict[int, list[int]] = {}
    for anchor, uuids in kept:
        at = by_uuid.get(anchor)
        if at is not None:
            out[at] = [by_uuid[u] for u in uuids if by_uuid.get(u, at) < at]
    return out


def build_calls(
    records: list[Record], transcript: Transcript, preserved: dict[int, list[int]]
) -> None:
    """Find each agent's API calls and what each added to the context since its anchor."""
    positions: dict[int, list[int]] = {}  # record index -> its item indices in history
    seen_ids: set[str] = set()
    # Streaming writes one record per block; the last one carries the final output count.
    final_output: dict[str, int] = {}
    for r in records:
        mid = r.message_id
        if r.usage is not None and mid is not None:
            final_output[mid] = max(r.usage.output_tokens, final_output.get(mid, 0))
    for r in records:
        agent = r.items[0].agent if r.items else MAIN_AGENT
        if r.sidechain:
            transcript.agents.setdefault(agent, []).extend(r.items)
        else:
            start = len(transcript.history_items)
            transcript.history_items.extend(r.items)
            positions[r.index] = list(range(start, len(transcript.history_items)))
        usage = r.usage
        message_id = r.message_id
        if usage is None or (message_id and message_id in seen_ids):
            continue
        if message_id:
            seen_ids.add(message_id)
            usage = Usage(
                input_tokens=usage.input_tokens,
                cache_creation_input_tokens=usage.cache_creation_input_tokens,
                cache_read_input_tokens=usage.cache_read_input_tokens,
                output_tokens=final_output.get(message_id, usage.output_tokens),
            )
        call = ApiCall(
            usage=usage,
            items_before=positions[r.index][0] if positions.get(r.index) else 0,
            agent=agent if r.sidechain else MAIN_AGENT,
            message_id=message_id,
            model=string_of(message_of(r.data).get("model")),
            timestamp=string_of(r.data.get("timestamp")),
        )
        if r.sidechain:
            transcript.agent_calls.setdefault(call.agent, []).append(call)
            continue
        r.call_index = len(transcript.calls)
        walked: list[int] = []
        i = r.prev
        anchor = None
        started = None  # the summary the context started with, when the walk met it
        while i is not None:
            rec = records[i]
            walked.append(i)
            if rec.call_index is not None:
                anchor = rec.call_index
                break
            if starts_new_context(rec.data):
                started = i
                break
            i = rec.prev
        on = set(walked)
        if walked:  # the parallel calls' other blocks and results (Claude Code 2.x)
            on.update(_branches(records, on, min(walked), r.index))
        if started is not None:
            # the reminders written between the boundary and the summary, and the
            # messages the compaction kept
            on.update(_lead(records, started))
            on.update(preserved.get(started, ()))
        anchor_id = transcript.calls[anchor].message_id if anchor is not None else None
        # the anchor's response first (its size is reported: the oldest on the path)
        order = _in_order(records, on)
        added = [p for j in order for p in positions.get(j, [])]
        if anchor_id:
            call.anchor_output_items = sum(
                len(positions.get(j, [])) for j in order if records[j].message_id == anchor_id
            )
        call.anchor_call = anchor
        call.added_items = tuple(added)
        if anchor is None and transcript.calls:
            call.after_compaction = True
            transcript.compactions.append(len(transcript.calls))
        transcript.calls.append(call)


def build_current(
    records: list[Record], transcript: Transcript, preserved: dict[int, list[int]]
) -> None:
    """The current context: the chain of the newest main-thread record."""
    # Claude Code appends records that are not conversation (file-history snapshots,
    # summaries, queue operations) with no parent: the context ends at the newest
    # user or assistant record.
    last = next(
        (
            r.index
            for r in reversed(records)
            if not r.sidechain and (is_context_record(r.data) or is_compact_boundary(r.data))
        ),
        None,
    )
    chain = _with_branches(records, _chain(records, last))
    anchor_record = next((i for i in reversed(chain) if records[i].call_index is not None), None)
    anchor_id = records[anchor_record].message_id if anchor_record is not None else None
    for i in chain:
        if i == anchor_record:
            transcript.anchor_position = len(transcript.items)
            transcript.anchor_call = records[i].call_index
        if anchor_id and records[i].message_id == anchor_id:
            transcript.anchor_output_items += len(records[i].items)
        _extend(transcript.items, records, i, preserved)


def _extend(
    items: list[Item], records: list[Record], i: int, preserved: dict[int, list[int]]
) -> None:
    """``items`` with record ``i``'s, and after a summary the messages its compaction kept."""
    items.extend(records[i].items)
    for j in preserved.get(i, ()):
        items.extend(records[j].items)


def build_replaced(
    records: list[Record],
    transcript: Transcript,
    preserved: dict[int, list[int]],
    compactions: list[tuple[int, int | None, str | None]],
) -> None:
    """The context each compaction replaced: the context of the main-thread message
    just before it (the one its boundary names, ``logicalParentUuid``, else the latest
    main-thread message before it in the file), branches of abandoned edits left out.
    ``compactions``: each compaction's record, that latest message and the name, as
    the reader found them."""
    if not compactions:
        return
    by_uuid = {r.uuid: r.index for r in records if r.uuid and not r.sidechain}
    for at, latest, named in compactions:
        before = by_uuid.get(named, latest) if named else latest
        if before is not None and before >= at:
            before = latest  # a parent written after its boundary: no such message
        if before is not None:
            items: list[Item] = []
            for i in _with_branches(records, _chain(records, before), at):
                _extend(items, records, i, preserved)
            if items:
                transcript.replaced.append(items)
