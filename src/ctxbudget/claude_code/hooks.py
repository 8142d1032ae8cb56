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

A hook must never stop the user's work because of its own failure, and a gate that
cannot decide must not wave a spawn through. So: a hook exits 2 only to block (a
sub-agent spawn the gate denies); any other failure (bad stdin, a bug, a busy store)
is exit 0, or exit 1 with one line on stderr when something the user should know was
not done (an event not recorded after retries). The exception is PreToolUse on a
sub-agent spawn (``Task`` / ``Agent``): when it cannot decide (stdin unreadable, the
store unreachable, a bug) it denies with the reason, and when the transcript cannot be
read it decides on the last figure it could establish; ``fail_open``
(``--fail-open``, ``CTXBUDGET_HOOK_FAIL_OPEN=1``) lets such spawns through instead.
Records of the transcript that cannot be decoded or carry fields of the wrong type are
skipped or read as far as they can be: they never turn a refusal into a pass.

The transcript is read incrementally (``ctxbudget.claude_code.incremental``): a run
reads what was appended since the last one, with the status line's arithmetic, so a
hook's cost follows the appended bytes, not the transcript's size. The hooks record in
the store the session's row and its ledger (gate decisions, usage, compactions,
sub-agent usage), not the transcript's items: ``ctxbudget tokens TRANSCRIPT --record``
records those. The decisions are the gate's and the Status's, the same every other
surface shows. Sub-agent transcripts are read by
``ctxbudget.sources.claude_code_agents``.

Here: the dispatch, the spawn gate, the warnings and the sub-agents' usage; the
handlers around a compaction (PreCompact, SessionStart: the ledger kept and the facts
put back) are ``hook_compaction``. The hook's input and answer are ``hook_io``; what
every handler reads of its session (the stored row, retried; the transcript's figure;
the registration) is ``hook_session``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..compaction.fact_rules import REPORT_MARKER
from ..level import Level
from ..render import pct
from ..sources.claude_code_agents import agent_dirs, read_agent_transcript
from ..sources.tools import AGENT_TOOLS
from .hook_compaction import pre_compact, session_start
from .hook_io import (
    DEFAULT_REPORT_TOKENS,
    EXIT_BLOCK,
    EXIT_ERROR,
    FAIL_OPEN_ENV,
    MAX_STDIN_BYTES,
    REINJECT_ENV,
    HookInputError,
    HookOptions,
    HookResult,
    failed,
    normalize_event,
    parse_hook_input,
    with_notes,
)
from .hook_session import (
    HookDeadline,
    hook_deadline,
    hook_memory,
    payload_figure,
    payload_text,
    payload_transcript,
    record_event,
    register,
    retrying,
    session_at,
    store_row,
    stored_session,
)

if TYPE_CHECKING:
    from ..policy import Policy
    from ..status import Status
    from ..tracker import Tracker

__all__ = [
    "DEFAULT_REPORT_TOKENS",
    "EVENTS",
    "FAIL_OPEN_ENV",
    "MAX_STDIN_BYTES",
    "REINJECT_ENV",
    "HookOptions",
    "HookResult",
    "failed",
    "parse_hook_input",
    "run_hook",
]

# What to do in Claude Code at each level (the Status's own recommendation names
# ctxbudget's compaction, which does not reach Claude Code's context).
CLAUDE_CODE_ACTIONS = {
    Level.WARNING: "Consider /compact soon, or finish the current task first.",
    Level.CRITICAL: (
        "Run /compact now, or finish the current task and start a fresh session (/clear)."
    ),
    Level.BLOCKED: "New sub-agents are refused. Run /compact now.",
}

Handler = Callable[[dict[str, Any], "Tracker", HookOptions], HookResult]

_SPAWN_RE = re.compile(
    rb'"tool_name"\s*:\s*"(?:%s)"' % b"|".join(re.escape(t.encode()) for t in sorted(AGENT_TOOLS))
)


def run_hook(
    event: str, raw: str | bytes, tracker: Tracker, options: HookOptions | None = None
) -> HookResult:
    """Run the handler of ``event`` on the hook JSON ``raw``. Never raises."""
    options = options or HookOptions()
    key = normalize_event(event)
    handler = EVENTS.get(key)
    if handler is None:
        known = ", ".join(sorted(HOOK_EVENTS))
        return HookResult(EXIT_ERROR, stderr=f"ctxbudget hook: unknown event {event!r} ({known})\n")
    try:
        payload = parse_hook_input(raw)
    except HookInputError as exc:
        if key == "pretooluse" and _looks_like_spawn(raw):
            return _undecided(options, str(exc))
        return failed(str(exc))
    except Exception as exc:  # MemoryError and the like: still never a blocking exit
        return failed("the hook input cannot be read", exc)
    if options.plugin and _settings_handle(key, payload):
        return HookResult()  # settings.json runs ctxbudget for this event: once is enough
    spawn = key == "pretooluse" and payload.get("tool_name") in AGENT_TOOLS
    try:
        with hook_deadline(options.time_limit):
            return handler(payload, tracker, options)
    except HookDeadline as exc:  # a store that stopped answering: as one out of reach
        if spawn:
            return _undecided(options, str(exc))
        return HookResult(EXIT_ERROR, stderr=f"ctxbudget hook: {event} not done: {exc}\n")
    except Exception as exc:
        if spawn:
            return _undecided(options, f"{type(exc).__name__}: {exc}")
        return failed(f"{event} failed", exc)


def _settings_handle(key: str, payload: Mapping[str, Any]) -> bool:
    """Whether a settings.json of this session runs ctxbudget's hook for event ``key``
    (then the plugin's hook stands down: no event is recorded twice)."""
    from .plugin import settings_run_hook

    try:
        name = next(n for n in HOOK_EVENTS if normalize_event(n) == key)
        return settings_run_hook(name, payload_text(payload, "cwd"))
    except Exception:
        return False  # cannot tell: the plugin's hook runs


def _looks_like_spawn(raw: str | bytes) -> bool:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return _SPAWN_RE.search(data[:MAX_STDIN_BYTES]) is not None


def _undecided(options: HookOptions, why: str, agent: str = "subagent") -> HookResult:
    """A spawn the gate cannot decide: denied with the reason, unless fail-open."""
    if options.fails_open:
        return HookResult(
            EXIT_ERROR,
            stderr=f"ctxbudget: spawn gate could not decide ({why}); allowed ({FAIL_OPEN_ENV})\n",
        )
    reason = (
        f"ctxbudget could not decide on this spawn ({why}), so it is refused; "
        f"to let spawns through when it cannot decide, set {FAIL_OPEN_ENV}=1 "
        "or run the hook with --fail-open"
    )
    return HookResult(EXIT_BLOCK, stderr=_denied(agent, reason))


# -- handlers ------------------------------------------------------------------------


def pre_tool_use(payload: dict[str, Any], tracker: Tracker, options: HookOptions) -> HookResult:
    """Gate a sub-agent spawn: exit 2 with the reason when the gate denies it, or when
    it cannot decide (unless fail-open)."""
    if payload.get("tool_name") not in AGENT_TOOLS:
        return HookResult()  # not a sub-agent: nothing to decide, nothing read
    tool_input = payload.get("tool_input")
    tool_input = tool_input if isinstance(tool_input, dict) else {}
    agent = str(tool_input.get("subagent_type") or tool_input.get("description") or "subagent")
    session_id = payload_text(payload, "session_id")
    memory = hook_memory(payload, options)
    figure = payload_figure(payload, memory)
    try:
        stored = stored_session(tracker, session_id)
        if stored is None and session_id is not None:
            # SessionStart never stored it (hooks installed mid-session, a store busy
            # then): stored now as it would have been, so this spawn's room is
            # reserved like every other's (unreserved, 32 spawns at once all passed)
            new = session_at(tracker, session_id, figure, None, options)
            stored = store_row(tracker, session_id, new, payload, options)
        if stored is not None and session_id is not None and figure is not None:
            results = figure.results
            retrying(lambda: _results_arrived(tracker, session_id, results))
    except Exception as exc:
        return _undecided(options, f"the store cannot be read or written: {exc}", agent)
    session = session_at(tracker, session_id, figure, stored, options)
    if figure is None:
        last = memory.last_good if memory is not None else None
        if not last or not isinstance(last.get("used_tokens"), int):
            named = payload_text(payload, "transcript_path")
            if named is not None and payload_transcript(payload) is None:
                # a transcript named that cannot be read (gone, a folder): nothing known
                return _undecided(options, f"its transcript {named} cannot be read", agent)
            # none named, or one that holds no conversation yet: an empty context
            return failed("no conversation in the transcript yet: the spawn is allowed")
        # The transcript cannot be read now: decide on the last figure read from it.
        from ..accounting import Anchor

        session.anchor = Anchor(reported=last["used_tokens"])
    elif memory is not None:
        memory.remember_figure(session.used_tokens, session.policy.window)
        memory.save()
    prompt = tool_input.get("prompt")
    prompt_tokens = tracker.counter("estimate").count(prompt if isinstance(prompt, str) else "")
    estimated = prompt_tokens + max(0, options.report_tokens)
    from ..spawning import agent_budgets

    roster = agent_budgets(session)  # its own rows: budgets set concurrently all count
    stored_id = stored.id if stored is not None else None
    if roster and agent not in roster:
        reason = (
            f"agent {agent!r} has no budget in this session (budgeted: "
            f"{', '.join(sorted(roster))}); give it one with "
            f'"ctxbudget gate {session.id} --agent {agent} --agent-budget N --tokens N"'
        )
        notes = []
        if stored_id:
            notes.append(
                record_event(
                    tracker, stored_id, "gate", {"agent": agent, "allowed": False, "reason": reason}
                )
                or ""
            )
        return with_notes(HookResult(EXIT_BLOCK, stderr=_denied(agent, reason)), notes)
    # A stored session's allowed spawn holds a reservation keyed by its tool_use_id
    # (an MCP gate for the same spawn reserves once) until its result is in the
    # context: a later hook confirms it then (``_results_arrived``).
    # Retried as every store write of a hook is: a long write of another process (a
    # big "tokens --record", one transaction) can hold the store past its busy
    # timeout, and a gate that gives up there refuses the spawn. Asking again is safe:
    # a gate that failed holds nothing, and the key reserves once.
    tool_use_id = payload_text(payload, "tool_use_id")
    decision = retrying(
        lambda: session.gate(
            agent, max(1, estimated), compact=False, key=tool_use_id, reserve=stored is not None
        )
    )
    notes = []
    if stored_id:
        data = decision.to_dict()
        data.update(tool=payload.get("tool_name"), tool_use_id=payload.get("tool_use_id"))
        if figure is None:
            data.update(figure="last known")
        notes.append(record_event(tracker, stored_id, "gate", data) or "")
    if decision.allowed:
        return with_notes(HookResult(), notes)
    return with_notes(HookResult(EXIT_BLOCK, stderr=_denied(agent, decision.reason)), notes)


def _denied(agent: str, reason: str) -> str:
    return (
        f"ctxbudget: sub-agent {agent!r} not started: {reason}. Go on in this thread "
        "without starting sub-agents, or ask the user to run /compact.\n"
    )


def user_prompt_submit(
    payload: dict[str, Any], tracker: Tracker, options: HookOptions
) -> HookResult:
    """The warning (75%) and the critical alert (90%), once per crossing."""
    return _crossing_warning(payload, tracker, options, "UserPromptSubmit")


def post_tool_use(payload: dict[str, Any], tracker: Tracker, options: HookOptions) -> HookResult:
    """The same as UserPromptSubmit, after a tool's result (the window grows there)."""
    return _crossing_warning(payload, tracker, options, "PostToolUse")


def _crossing_warning(
    payload: dict[str, Any], tracker: Tracker, options: HookOptions, event: str
) -> HookResult:
    """A line for the user (``systemMessage``) and the same for the model
    (``additionalContext``) when the level rose past a threshold since the last run
    of the session: once per crossing, again after it fell back (a compaction)."""
    memory = hook_memory(payload, options)
    figure = payload_figure(payload, memory)
    if figure is None or memory is None:
        return HookResult()
    session_id = payload_text(payload, "session_id")
    try:
        stored = stored_session(tracker, session_id)
        if stored is not None and session_id is not None and figure.results:
            # the spawns whose reports are in the context now (the last spawn of a
            # turn has no later PreToolUse to confirm it; the next prompt does)
            results = figure.results
            if retrying(lambda: _results_arrived(tracker, session_id, results)):
                stored = stored_session(tracker, session_id)  # its row moved
    except Exception:
        stored = None  # the store is busy: the transcript and the options still tell
    session = session_at(tracker, session_id, figure, stored, options)
    status = session.status()
    memory.remember_figure(status.used_tokens, status.max_tokens)
    try:
        previous = Level(str(memory.extra.get("warned_level"))).rank
    except ValueError:
        previous = 0  # first run, or a state file of another version
    memory.extra["warned_level"] = status.level.value
    memory.save()
    if status.level.rank <= previous:
        return HookResult()  # the same level as last time (or lower): said already
    text = warning_text(status, session.policy, options.report_tokens)
    out = {
        "systemMessage": text,  # shown to the user
        # marked for the model's copy: a figure stale by the next message, never a fact
        # nor a recall hit
        "hookSpecificOutput": {
            "hookEventName": event,
            "additionalContext": f"{REPORT_MARKER}\n{text}",
        },
    }
    return HookResult(stdout=json.dumps(out) + "\n")


def warning_text(status: Status, policy: Policy, report_tokens: int) -> str:
    """The warning of ``status``'s level: the figure, the sub-agent invocations left
    before spawns are refused, Claude Code's own compaction threshold, what to do."""
    from .autocompact import autocompact_threshold

    blocked_at = policy.threshold_tokens(Level.BLOCKED)
    per_agent = max(1, report_tokens)
    agents_left = max(0, (blocked_at - status.used_tokens) // per_agent)
    auto = autocompact_threshold(status.max_tokens)
    until = auto.percent - status.percent
    auto_text = f"{auto.describe()}: {pct(until)} from here" if until > 0 else auto.describe()
    return (
        f"ctxbudget: context window at {pct(status.percent)} "
        f"({status.used_tokens:,}/{status.max_tokens:,} tokens), {status.level.value} level. "
        f"About {agents_left:,} sub-agent invocation{'s' if agents_left != 1 else ''} left "
        f"before new ones are refused at {pct(policy.blocked_percent)} (~{per_agent:,} "
        f"tokens each). {auto_text}. {CLAUDE_CODE_ACTIONS[status.level]}"
    )


def subagent_stop(payload: dict[str, Any], tracker: Tracker, options: HookOptions) -> HookResult:
    """Record a finished sub-agent's own usage (last context size, calls, output)."""
    agent_id = payload_text(payload, "agent_id")
    path = _agent_transcript(payload, agent_id)
    if path is None:
        return failed("no agent transcript: sub-agent usage not recorded")
    stats = read_agent_transcript(path)
    agent_type = payload_text(payload, "agent_type")
    name = agent_type or stats.agent_type or f"agent-{agent_id or stats.agent_id or path.stem}"
    registered = register(tracker, payload, options)
    if registered is None:
        return failed("no session_id: sub-agent usage not recorded")
    usage = stats.usage(name)
    data = usage.to_dict()
    data.update(agent_id=agent_id or stats.agent_id, agent_type=agent_type, transcript=str(path))
    # The spawn's reservation stays: its report enters the main context only with the
    # main agent's next request (Claude Code 2.1.328: SubagentStop, then PostToolUse,
    # then the tool result written), and until then the room it holds is the report's
    # (``_results_arrived`` confirms it once the result is in the transcript).
    note = record_event(tracker, registered.session_id, "subagent_usage", data)
    return with_notes(HookResult(), [n or "" for n in [*registered.notes, note]])


def _results_arrived(tracker: Tracker, session_id: str, results: Sequence[str]) -> bool:
    """The spawns whose tool results are in the main context now (counted in its
    figure): their reservations become usage (confirmed), by their ``tool_use_id``.
    Whether any was."""
    from ..spawning import GATE_SCOPE, spawn_finished

    arrived = set(results)
    confirmed = False
    for held in tracker.store.reservations(session_id, GATE_SCOPE):
        if held.key in arrived:
            spawn_finished(tracker.store, session_id, key=held.key)
            confirmed = True
    return confirmed


def _agent_transcript(payload: Mapping[str, Any], agent_id: str | None) -> Path | None:
    given = payload_text(payload, "agent_transcript_path")
    if given is not None:
        p = Path(given).expanduser()
        return p if p.is_file() else None
    main = payload_text(payload, "transcript_path")
    if main is None or agent_id is None:
        return None
    for candidate in agent_dirs(Path(main).expanduser(), payload_text(payload, "session_id")):
        p = candidate / f"agent-{agent_id}.jsonl"
        if p.is_file():
            return p
    return None


EVENTS: dict[str, Handler] = {
    "pretooluse": pre_tool_use,
    "posttooluse": post_tool_use,
    "userpromptsubmit": user_prompt_submit,
    "precompact": pre_compact,
    "sessionstart": session_start,
    "subagentstop": subagent_stop,
}
# The events, as ``ctxbudget hook EVENT`` names them.
HOOK_EVENTS = (
    "pre-tool-use",
    "post-tool-use",
    "user-prompt-submit",
    "pre-compact",
    "session-start",
    "subagent-stop",
)
