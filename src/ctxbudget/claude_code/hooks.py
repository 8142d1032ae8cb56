"""Claude Code hooks: the spawn gate, warnings as the window fills, and the ledger.

Claude Code runs a hook command with one JSON object on stdin. The fields read here
(hooks reference, https://code.claude.com/docs/en/hooks):

- every event: ``session_id``, ``transcript_path``, ``cwd``, ``hook_event_name``;
- PreToolUse: ``tool_name``, ``tool_input``, ``tool_use_id``; the sub-agent tool is
  ``Task`` (``Agent`` in newer versions), its input ``description``, ``prompt``,
  ``subagent_type``;
- UserPromptSubmit: ``prompt``; PreCompact: ``trigger`` ("manual" | "auto"),
  ``custom_instructions``; SessionStart: ``source`` ("startup" | "resume" | "clear" |
  "compact");
- SubagentStop: ``agent_id``, ``agent_type``, ``agent_transcript_path`` (2.0.42+),
  ``stop_hook_active``.

What Claude Code does with the answer: exit 0 is success (for UserPromptSubmit and
SessionStart, stdout becomes context for the model; JSON stdout may carry
``systemMessage``, shown to the user, and ``hookSpecificOutput.additionalContext``);
exit 2 is a blocking error whose stderr is fed to the model (PreToolUse: the tool call
is blocked; UserPromptSubmit: the prompt is erased, so never used here); any other
code is a non-blocking error shown to the user.

A hook must never stop the user's work because of its own failure: ``run_hook`` turns
every exception into exit 0 (with a line on stderr when ``CTXBUDGET_DEBUG=1``). The
handlers only gather figures and call the facade; the decisions are the gate's and
the Status's, the same every other surface shows. Sub-agent transcripts are read by
``ctxbudget.sources.claude_code_agents``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model import Level
from ..render import pct
from ..sources.claude_code_agents import agent_dirs, read_agent_transcript
from ..sources.tools import AGENT_TOOLS

if TYPE_CHECKING:
    from ..session import Session
    from ..store import StoredSession
    from ..tracker import Tracker

__all__ = [
    "DEFAULT_REPORT_TOKENS",
    "EVENTS",
    "HookOptions",
    "HookResult",
    "failed",
    "run_hook",
]

# What a sub-agent's report is expected to add to the main context when it returns,
# on top of its prompt: a typical final report is 1–4k tokens; 5,000 errs on the side
# of keeping room. Change it with ``--report-tokens``.
DEFAULT_REPORT_TOKENS = 5_000

EXIT_OK, EXIT_ERROR, EXIT_BLOCK = 0, 1, 2

# What to do in Claude Code at each level (the Status's own recommendation names
# ctxbudget's compaction, which does not reach Claude Code's context).
CLAUDE_CODE_ACTIONS = {
    Level.WARNING: "Consider /compact soon, or finish the current task first.",
    Level.CRITICAL: (
        "Run /compact now, or finish the current task and start a fresh session (/clear)."
    ),
    Level.BLOCKED: "New sub-agents are refused. Run /compact now.",
}


@dataclass(slots=True, frozen=True)
class HookOptions:
    """Settings of a hook run: the report budget and policy fields (window…)."""

    report_tokens: int = DEFAULT_REPORT_TOKENS
    policy_fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class HookResult:
    """What the hook answers Claude Code: exit code, stdout, stderr."""

    exit_code: int = EXIT_OK
    stdout: str = ""
    stderr: str = ""


Handler = Callable[[dict[str, Any], "Tracker", HookOptions], HookResult]


def debug_enabled() -> bool:
    return os.environ.get("CTXBUDGET_DEBUG", "") not in ("", "0")


def failed(what: str, exc: BaseException | None = None) -> HookResult:
    """Exit 0 whatever went wrong: a broken hook must not stop the user's work."""
    if not debug_enabled():
        return HookResult()
    detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
    return HookResult(stderr=f"ctxbudget hook: {what}{detail} (ignored)\n")


def normalize_event(name: str) -> str:
    """``PreToolUse``, ``pre_tool_use`` and ``pre-tool-use`` all name one event."""
    return name.replace("-", "").replace("_", "").lower()


def run_hook(
    event: str, raw: str | bytes, tracker: Tracker, options: HookOptions | None = None
) -> HookResult:
    """Run the handler of ``event`` on the hook JSON ``raw``. Never raises."""
    handler = EVENTS.get(normalize_event(event))
    if handler is None:
        known = ", ".join(sorted(_EVENT_NAMES))
        return HookResult(EXIT_ERROR, stderr=f"ctxbudget hook: unknown event {event!r} ({known})\n")
    try:
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        payload = json.loads(text)
    except ValueError as exc:
        return failed("the hook input is not JSON", exc)
    if not isinstance(payload, dict):
        return failed("the hook input is not a JSON object")
    try:
        return handler(payload, tracker, options or HookOptions())
    except Exception as exc:
        return failed(f"{event} failed", exc)


# -- reading the session ------------------------------------------------------------


def _text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) and value else None


def _transcript(payload: Mapping[str, Any]) -> Path | None:
    path = _text(payload, "transcript_path")
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_file() else None


def _stored(tracker: Tracker, session_id: str | None) -> StoredSession | None:
    """The stored session of this id, or None (no store lookup without an id)."""
    from ..errors import SessionNotFoundError

    if session_id is None:
        return None
    try:
        return tracker.store.get_session(session_id)
    except SessionNotFoundError:
        return None


def _load(tracker: Tracker, payload: Mapping[str, Any], options: HookOptions) -> Session | None:
    """The session as its transcript says now, with the stored session's policy and
    budgets (agent budgets, roster) when one of the same id is stored."""
    from ..policy import Policy

    path = _transcript(payload)
    if path is None:
        return None
    session_id = _text(payload, "session_id")
    stored = _stored(tracker, session_id)
    policy = None
    if stored is not None:
        policy = Policy.from_mapping(stored.policy, origin=f"stored session {stored.id}")
    session = tracker.load(path, policy=policy, **dict(options.policy_fields))
    if session_id is not None:
        session.id = session_id  # the id Claude Code knows the session by
    if stored is not None:
        session.use_stored_settings(stored)
    return session


def _is_stored(tracker: Tracker, session_id: str | None) -> bool:
    return _stored(tracker, session_id) is not None


def _model(payload: Mapping[str, Any]) -> str | None:
    """SessionStart's ``model``: an id, or (as the status line gets it) ``{"id": …}``."""
    model = payload.get("model")
    if isinstance(model, dict):
        model = model.get("id")
    return model if isinstance(model, str) and model else None


def _register(
    tracker: Tracker, payload: Mapping[str, Any], options: HookOptions
) -> tuple[str | None, Session | None]:
    """Store the session (its transcript recorded; only what is new on a later call),
    or an empty one when there is no transcript yet. Returns its id and the session."""
    session = _load(tracker, payload, options)
    if session is not None:
        session.save()
        return session.id, session
    session_id = _text(payload, "session_id")
    if session_id is None:
        return None, None
    if not _is_stored(tracker, session_id):
        fields = dict(options.policy_fields)
        fields.setdefault("model", _model(payload))
        tracker.session(session_id, name=_text(payload, "cwd"), **fields)
    return session_id, None


def _event(tracker: Tracker, session_id: str, kind: str, data: dict[str, Any]) -> None:
    tracker.store.append_event(session_id, kind, {"source": "claude-code", **data})


# -- handlers ------------------------------------------------------------------------


def pre_tool_use(payload: dict[str, Any], tracker: Tracker, options: HookOptions) -> HookResult:
    """Gate a sub-agent spawn: exit 2 with the reason when the gate denies it."""
    if payload.get("tool_name") not in AGENT_TOOLS:
        return HookResult()  # not a sub-agent: nothing to decide, nothing read
    tool_input = payload.get("tool_input")
    tool_input = tool_input if isinstance(tool_input, dict) else {}
    agent = str(tool_input.get("subagent_type") or tool_input.get("description") or "subagent")
    session = _load(tracker, payload, options)
    if session is None:
        return failed("no readable transcript_path: the spawn is allowed")
    prompt = tool_input.get("prompt")
    prompt_tokens = tracker.counter("estimate").count(prompt if isinstance(prompt, str) else "")
    estimated = prompt_tokens + max(0, options.report_tokens)
    roster = session.budget.agent_budgets
    stored = _is_stored(tracker, session.id)
    if roster and agent not in roster:
        reason = (
            f"agent {agent!r} has no budget in this session (budgeted: "
            f"{', '.join(sorted(roster))}); give it one with "
            f'"ctxbudget gate {session.id} --agent {agent} --agent-budget N --tokens N"'
        )
        if stored:
            _event(
                tracker, session.id, "gate", {"agent": agent, "allowed": False, "reason": reason}
            )
        return HookResult(EXIT_BLOCK, stderr=_denied(agent, reason))
    decision = session.gate(agent, max(1, estimated), compact=False)
    if stored:
        data = decision.to_dict()
        data.update(tool=payload.get("tool_name"), tool_use_id=payload.get("tool_use_id"))
        _event(tracker, session.id, "gate", data)
    if decision.allowed:
        return HookResult()
    return HookResult(EXIT_BLOCK, stderr=_denied(agent, decision.reason))


def _denied(agent: str, reason: str) -> str:
    return (
        f"ctxbudget: sub-agent {agent!r} not started: {reason}. Go on in this thread "
        "without starting sub-agents, or ask the user to run /compact.\n"
    )


def user_prompt_submit(
    payload: dict[str, Any], tracker: Tracker, options: HookOptions
) -> HookResult:
    """At warning level and above: a line for the user and the same for the model."""
    session = _load(tracker, payload, options)
    if session is None:
        return HookResult()
    status = session.status()
    if status.level is Level.NORMAL:
        return HookResult()
    text = (
        f"ctxbudget: context window at {pct(status.percent)} "
        f"({status.used_tokens:,}/{status.max_tokens:,} tokens), {status.level.value} level. "
        f"{CLAUDE_CODE_ACTIONS[status.level]}"
    )
    out = {
        "systemMessage": text,  # shown to the user
        "hookSpecificOutput": {"hookEventName": "UserPromptSubmit", "additionalContext": text},
    }
    return HookResult(stdout=json.dumps(out) + "\n")


def pre_compact(payload: dict[str, Any], tracker: Tracker, options: HookOptions) -> HookResult:
    """Record Claude Code's compaction (trigger, tokens before) in the ledger."""
    session_id, session = _register(tracker, payload, options)
    if session_id is None:
        return failed("no session_id: compaction not recorded")
    data: dict[str, Any] = {
        "trigger": _text(payload, "trigger") or "unknown",
        "custom_instructions": _text(payload, "custom_instructions"),
    }
    if session is not None:
        status = session.status()
        data.update(
            tokens_before=status.used_tokens,
            reported_tokens_before=status.reported_tokens,
            percent_before=round(status.percent, 2),
            window=status.max_tokens,
        )
    _event(tracker, session_id, "external_compaction", data)
    return HookResult()


def session_start(payload: dict[str, Any], tracker: Tracker, options: HookOptions) -> HookResult:
    """Register the session; after a compaction, note the new context's size."""
    session_id, session = _register(tracker, payload, options)
    if session_id is None:
        return failed("no session_id: session not registered")
    source = _text(payload, "source") or "unknown"
    data: dict[str, Any] = {"trigger": source, "transcript": _text(payload, "transcript_path")}
    if session is not None:
        status = session.status()
        data.update(tokens=status.used_tokens, percent=round(status.percent, 2))
        if source == "compact":
            before = [
                e.data.get("tokens_before")
                for e in tracker.store.events(session_id, types=["external_compaction"])
            ]
            if before and isinstance(before[-1], int):
                data.update(tokens_before=before[-1], freed=before[-1] - status.used_tokens)
    _event(tracker, session_id, "session_started", data)
    return HookResult()  # stdout would become context for the model: say nothing


def subagent_stop(payload: dict[str, Any], tracker: Tracker, options: HookOptions) -> HookResult:
    """Record a finished sub-agent's own usage (last context size, calls, output)."""
    agent_id = _text(payload, "agent_id")
    path = _agent_transcript(payload, agent_id)
    if path is None:
        return failed("no agent transcript: sub-agent usage not recorded")
    stats = read_agent_transcript(path)
    agent_type = _text(payload, "agent_type")
    name = agent_type or stats.agent_type or f"agent-{agent_id or stats.agent_id or path.stem}"
    session_id, _ = _register(tracker, payload, options)
    if session_id is None:
        return failed("no session_id: sub-agent usage not recorded")
    usage = stats.usage(name)
    data = usage.to_dict()
    data.update(agent_id=agent_id or stats.agent_id, agent_type=agent_type, transcript=str(path))
    _event(tracker, session_id, "subagent_usage", data)
    return HookResult()


def _agent_transcript(payload: Mapping[str, Any], agent_id: str | None) -> Path | None:
    given = _text(payload, "agent_transcript_path")
    if given is not None:
        p = Path(given).expanduser()
        return p if p.is_file() else None
    main = _text(payload, "transcript_path")
    if main is None or agent_id is None:
        return None
    for candidate in agent_dirs(Path(main).expanduser(), _text(payload, "session_id")):
        p = candidate / f"agent-{agent_id}.jsonl"
        if p.is_file():
            return p
    return None


EVENTS: dict[str, Handler] = {
    "pretooluse": pre_tool_use,
    "userpromptsubmit": user_prompt_submit,
    "precompact": pre_compact,
    "sessionstart": session_start,
    "subagentstop": subagent_stop,
}
_EVENT_NAMES = (
    "pre-tool-use",
    "user-prompt-submit",
    "pre-compact",
    "session-start",
    "subagent-stop",
)
