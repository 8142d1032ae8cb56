"""Claude Code hooks around a compaction: PreCompact and SessionStart.

PreCompact records Claude Code's compaction in the ledger and stores the fact ledger of
the context about to go; with ``/compact --dry-run`` it shows the preview instead and
compacts nothing. SessionStart registers the session; after a compaction it compares
the stored ledger with the summary Claude Code wrote and puts back, as
``additionalContext``, what the summary lost (``compaction.reinject``). The dispatch
and the other events are ``hooks``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .hook_io import EXIT_BLOCK, HookOptions, HookResult, failed, with_notes
from .hook_session import payload_text, payload_transcript, record_event, register, retrying

if TYPE_CHECKING:
    from ..tracker import Tracker

__all__ = ["MCP_HINT", "mcp_installed", "pre_compact", "session_start"]


def pre_compact(payload: dict[str, Any], tracker: Tracker, options: HookOptions) -> HookResult:
    """Record Claude Code's compaction (trigger, tokens before) in the ledger; on
    ``/compact --dry-run``, the preview on stderr and exit 2: Claude Code shows it and
    compacts nothing (nothing is recorded either)."""
    from .preview import is_dry_run

    if is_dry_run(payload_text(payload, "custom_instructions")):
        return _compaction_preview(payload, tracker, options)
    registered = register(tracker, payload, options)
    if registered is None:
        return failed("no session_id: compaction not recorded")
    data: dict[str, Any] = {
        "trigger": payload_text(payload, "trigger") or "unknown",
        "custom_instructions": payload_text(payload, "custom_instructions"),
    }
    if registered.session is not None:
        status = registered.session.status()
        data.update(
            tokens_before=status.used_tokens,
            reported_tokens_before=status.reported_tokens,
            percent_before=round(status.percent, 2),
            window=status.max_tokens,
        )
    notes = [
        *registered.notes,
        record_event(tracker, registered.session_id, "external_compaction", data),
        _store_ledger(tracker, registered.session_id, payload, options.cache_dir),
    ]
    return with_notes(HookResult(), [n or "" for n in notes])


def _compaction_preview(
    payload: dict[str, Any], tracker: Tracker, options: HookOptions
) -> HookResult:
    from .preview import preview_compaction

    path = payload_transcript(payload)
    if path is None:
        text = "ctxbudget: /compact --dry-run: no transcript to preview; nothing was compacted.\n"
        return HookResult(EXIT_BLOCK, stderr=text)
    try:
        preview = preview_compaction(str(path), tracker, options.policy_fields)
    except Exception as exc:  # a dry run never compacts, even when the preview fails
        text = f"ctxbudget: /compact --dry-run: no preview ({exc}); nothing was compacted.\n"
        return HookResult(EXIT_BLOCK, stderr=text)
    return HookResult(EXIT_BLOCK, stderr=preview.render())


def session_start(payload: dict[str, Any], tracker: Tracker, options: HookOptions) -> HookResult:
    """Register the session; after a compaction, note the new context's size."""
    registered = register(tracker, payload, options)
    if registered is None:
        return failed("no session_id: session not registered")
    session_id = registered.session_id
    source = payload_text(payload, "source") or "unknown"
    data: dict[str, Any] = {
        "trigger": source,
        "transcript": payload_text(payload, "transcript_path"),
    }
    if registered.session is not None:
        status = registered.session.status()
        data.update(tokens=status.used_tokens, percent=round(status.percent, 2))
        if source == "compact":
            events = retrying(
                lambda: tracker.store.events(session_id, types=["external_compaction"])
            )
            before = [e.data.get("tokens_before") for e in events]
            if before and isinstance(before[-1], int):
                data.update(tokens_before=before[-1], freed=before[-1] - status.used_tokens)
    notes = [*registered.notes, record_event(tracker, session_id, "session_started", data)]
    # stdout becomes context for the model: only what the compaction's summary lost
    result = HookResult()
    if source == "compact":
        result, note = _reinject(payload, tracker, session_id, options)
        notes.append(note)
    elif source == "startup" and options.plugin and not mcp_installed():
        result = HookResult(stdout=json.dumps({"systemMessage": MCP_HINT}) + "\n")
    return with_notes(result, [n or "" for n in notes])


#: What the plugin's SessionStart says when its MCP server cannot start.
MCP_HINT = (
    "ctxbudget: the MCP tools (status, gate, sprint budgets, recall) need the mcp extra: "
    'pip install "ctxbudget[mcp]" in the environment ctxbudget runs from.'
)


def mcp_installed() -> bool:
    """Whether the ``mcp`` SDK the plugin's MCP server runs on can be imported."""
    import importlib.util

    return importlib.util.find_spec("mcp") is not None


# -- facts that survive Claude Code's compaction -------------------------------------


def _store_ledger(
    tracker: Tracker, session_id: str, payload: Mapping[str, Any], cache_dir: str | None
) -> str | None:
    """Before Claude Code compacts: the fact ledger of the context about to go, stored
    (a ``fact_ledger`` event) with where the transcript ends now; read from where the
    last run stopped (``fact_memory``). None when done (or no transcript), else the line
    saying it was not."""
    from ..compaction.reinject import carried_forward, ledger_from_data, ledger_to_data
    from .fact_memory import current_facts

    path = payload_transcript(payload)
    if path is None:
        return None
    try:
        size = path.stat().st_size
        facts = current_facts(str(path), cache_dir)
    except Exception as exc:
        return f"ctxbudget hook: the facts before this compaction were not read: {exc}\n"
    # what the model had from before the compaction this context began with
    events = retrying(lambda: tracker.store.events(session_id, types=["facts_reinjected"]))
    if events:
        facts = carried_forward(facts, ledger_from_data(events[-1].data.get("facts")))
    data = {"facts": ledger_to_data(facts), "transcript_bytes": size}
    return record_event(tracker, session_id, "fact_ledger", data)


def _reinject(
    payload: Mapping[str, Any], tracker: Tracker, session_id: str, options: HookOptions
) -> tuple[HookResult, str | None]:
    """After Claude Code compacted: the stored ledger compared with the summary it
    wrote, and what the summary lost as ``additionalContext`` (within the budget and
    the hook output cap), recorded as a ``facts_reinjected`` event."""
    from ..compaction.reinject import (
        HOOK_OUTPUT_CHARS,
        in_context,
        ledger_from_data,
        ledger_to_data,
        reinjection,
    )

    events = retrying(
        lambda: tracker.store.events(session_id, types=["fact_ledger", "facts_reinjected"])
    )
    if not events or events[-1].type != "fact_ledger":
        return HookResult(), None  # no ledger of this compaction (or it was put back)
    ledger = ledger_from_data(events[-1].data.get("facts"))
    summary = payload_text(payload, "compact_summary")
    if summary is None:
        offset = events[-1].data.get("transcript_bytes")
        summary = _compact_summary(payload, offset if isinstance(offset, int) else 0)
    count = tracker.counter("estimate").count
    max_chars, stdout = HOOK_OUTPUT_CHARS, ""
    while max_chars > 0:
        result = reinjection(
            ledger,
            summary or "",
            budget_tokens=options.reinject_budget,
            count=count,
            max_chars=max_chars,
        )
        if not result.text:
            stdout = ""
            break
        out = {
            "hookSpecificOutput": {
                "hookEventName": "SessionStart",
                "additionalContext": result.text,
            }
        }
        stdout = json.dumps(out, ensure_ascii=False) + "\n"
        if len(stdout) <= HOOK_OUTPUT_CHARS:
            break
        max_chars -= len(stdout) - HOOK_OUTPUT_CHARS + 16  # the JSON escapes took the rest
    data = result.to_dict()
    # what the model has of the ledger now, carried into the next compaction's ledger
    had = in_context(ledger, result.lost, result.injected if stdout else ())
    data.update(summary_found=summary is not None, facts=ledger_to_data(had))
    return HookResult(stdout=stdout), record_event(tracker, session_id, "facts_reinjected", data)


def _compact_summary(payload: Mapping[str, Any], offset: int) -> str | None:
    """The text of the last compaction summary written after ``offset`` in the
    transcript (Claude Code writes it before SessionStart runs), or None."""
    from ..sources.problems import loads

    path = payload_transcript(payload)
    if path is None:
        return None
    found: str | None = None
    with path.open("rb") as lines:
        if 0 < offset <= path.stat().st_size:
            lines.seek(offset)
        for line in lines:
            if b'"isCompactSummary"' not in line:
                continue
            try:
                record = loads(line)  # a line nested too deeply is skipped, as a bad one
            except ValueError:
                continue
            message = record.get("message") if isinstance(record, dict) else None
            if not (isinstance(message, dict) and record.get("isCompactSummary")):
                continue
            content = message.get("content")
            if isinstance(content, list):
                content = "\n".join(
                    str(b.get("text", ""))
                    for b in content
                    if isinstance(b, dict) and b.get("type") == "text"
                )
            found = str(content or "")
    return found
