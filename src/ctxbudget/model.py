"""Core data of ctxbudget: items, usage records, parsed transcripts, levels.

Plain ``dataclass(slots=True)`` values with no behaviour beyond small conveniences.
Everything above this module (readers, counters, store, services, facade) speaks in
these types; this module imports nothing of ours but ``errors``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

from .level import Level as Level  # its own module (the status line); here as before

TYPE_CHECKING = False  # typing costs milliseconds at import: the status line imports this
if TYPE_CHECKING:
    from typing import Any


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Kind(StrEnum):
    """What an item is, finer than its role."""

    SYSTEM_PROMPT = "system_prompt"
    INSTRUCTION = "instruction"
    USER_TEXT = "user_text"
    ASSISTANT_TEXT = "assistant_text"
    THINKING = "thinking"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    FILE_READ = "file_read"
    SEARCH_RESULT = "search_result"
    AGENT_REPORT = "agent_report"
    SUMMARY = "summary"
    IMAGE = "image"
    # what a client adds to the conversation on its own: Claude Code's system reminders
    # (environment, tool and skill listings, the date, hooks' additional context)
    REMINDER = "reminder"
    UNKNOWN = "unknown"


class Component(StrEnum):
    """The budget components (the default allocation shares are set per component)."""

    SYSTEM_CONTEXT = "system_context"
    WORKING_MEMORY = "working_memory"
    KNOWLEDGE_BASE = "knowledge_base"
    AGENT_CONTEXT = "agent_context"
    INTERACTION_BUFFER = "interaction_buffer"


class Layer(StrEnum):
    """How long an item lives: the layered-context model (permanent to transient)."""

    PERMANENT = "permanent"
    PHASE = "phase"
    METADATA = "metadata"
    TRANSIENT = "transient"


class EventType(StrEnum):
    """What a session's ledger (its append-only audit trail) records."""

    SESSION_CREATED = "session_created"
    ITEMS_ADDED = "items_added"
    USAGE_RECORDED = "usage_recorded"
    THRESHOLD_CROSSED = "threshold_crossed"
    POLICY_CHANGED = "policy_changed"
    COMPACTED = "compacted"
    PRUNED = "pruned"
    RESTORED = "restored"
    CONTEXT_REPLACED = "context_replaced"
    EXTERNAL_COMPACTION = "external_compaction"
    FACT_LEDGER = "fact_ledger"  # the facts of a context before Claude Code compacts it
    FACTS_REINJECTED = "facts_reinjected"  # what was put back after, beside its summary
    SESSION_STARTED = "session_started"
    SUBAGENT_USAGE = "subagent_usage"
    ALERT = "alert"
    ALLOCATION = "allocation"
    GATE = "gate"
    SHARES_ADJUSTED = "shares_adjusted"
    PHASE_STARTED = "phase_started"
    PHASE_COMPLETED = "phase_completed"
    PHASE_BUDGETS = "phase_budgets"
    TASKS_PLANNED = "tasks_planned"
    TASK_COMPLETED = "task_completed"


# Events that make a new context version (a compaction's archive begins there).
NEW_VERSION_EVENTS = (EventType.COMPACTED, EventType.PRUNED, EventType.CONTEXT_REPLACED)


MAIN_AGENT = "main"

#: The month names conversations write dates with ("25 May, 2023"): the dates of a
#: chat's sessions, the facts of a text and the words of an archive search know them.
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# Where each kind lives by default, when the source does not say.
DEFAULT_COMPONENT: dict[Kind, Component] = {
    Kind.SYSTEM_PROMPT: Component.SYSTEM_CONTEXT,
    Kind.INSTRUCTION: Component.SYSTEM_CONTEXT,
    Kind.USER_TEXT: Component.INTERACTION_BUFFER,
    Kind.ASSISTANT_TEXT: Component.INTERACTION_BUFFER,
    Kind.THINKING: Component.INTERACTION_BUFFER,
    Kind.TOOL_CALL: Component.WORKING_MEMORY,
    Kind.TOOL_RESULT: Component.WORKING_MEMORY,
    Kind.FILE_READ: Component.WORKING_MEMORY,
    Kind.SEARCH_RESULT: Component.KNOWLEDGE_BASE,
    Kind.AGENT_REPORT: Component.AGENT_CONTEXT,
    Kind.SUMMARY: Component.INTERACTION_BUFFER,
    Kind.IMAGE: Component.WORKING_MEMORY,
    Kind.REMINDER: Component.SYSTEM_CONTEXT,
    Kind.UNKNOWN: Component.INTERACTION_BUFFER,
}

DEFAULT_LAYER: dict[Kind, Layer] = {
    Kind.SYSTEM_PROMPT: Layer.PERMANENT,
    Kind.INSTRUCTION: Layer.PERMANENT,
    Kind.AGENT_REPORT: Layer.TRANSIENT,
    Kind.TOOL_RESULT: Layer.TRANSIENT,
    Kind.FILE_READ: Layer.TRANSIENT,
    Kind.SEARCH_RESULT: Layer.TRANSIENT,
    Kind.SUMMARY: Layer.METADATA,
    # The conversation itself stays unless it is tagged phase-scoped or transient: a
    # phase completing must not prune what the user asked and decided.
    Kind.USER_TEXT: Layer.PERMANENT,
    Kind.ASSISTANT_TEXT: Layer.PERMANENT,
}


def content_hash(text: str) -> str:
    """Stable hash of an item's text: the key of the token-count cache."""
    import hashlib  # only when hashing: the status line never does

    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(slots=True)
class Item:
    """One unit of context: a message, or one block of a message.

    ``text`` is what a counter counts. ``raw`` keeps the block as the source gave it,
    so a writer can emit the same format again. ``message_index`` groups blocks that
    belong to one API message; ``pair_id`` ties a tool call to its result.
    """

    role: Role
    kind: Kind
    text: str
    component: Component | None = None
    layer: Layer | None = None
    agent: str = MAIN_AGENT
    tool: str | None = None
    pair_id: str | None = None
    tokens: int | None = None
    pinned: bool = False
    phase: str | None = None
    message_index: int = 0
    id: str | None = None
    created_at: float = field(default_factory=time.time)
    last_used_at: float | None = None
    raw: Any = None
    _hash: tuple[str, str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.component is None:
            self.component = DEFAULT_COMPONENT[self.kind]
        if self.layer is None:
            self.layer = DEFAULT_LAYER.get(self.kind, Layer.PHASE)

    @property
    def hash(self) -> str:
        """Content hash of ``text``, computed once per text (the count cache's key)."""
        cached = self._hash
        if cached is not None and cached[0] is self.text:
            return cached[1]
        value = content_hash(self.text)
        self._hash = (self.text, value)
        return value


@dataclass(slots=True, frozen=True)
class Usage:
    """Token usage one API response reported.

    ``context_tokens`` is what the request held: input + cache creation + cache read
    (Anthropic) or prompt_tokens (OpenAI). It is the truth the session anchors on.
    ``output_tokens`` is the answer the next request carries: OpenAI's completion
    tokens less its reasoning tokens, which are never sent back.
    """

    input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    output_tokens: int = 0

    @property
    def context_tokens(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @classmethod
    def from_api(cls, usage: Any, *, strict: bool = False) -> Usage:
        """Build from an Anthropic or OpenAI usage object or dict.

        Raises ``ValueError`` naming the field (``usage.input_tokens is 'abc', not a
        token count``) when a count is not a whole number from 0 to 2**53: a string,
        NaN, Infinity, a list or a negative number is no usage to anchor on.
        ``strict``: also when ``usage`` holds none of the counts (None, a string, an
        empty dict): what a caller hands over live must be a usage (a transcript's
        record without counts is read as zeros).
        """
        if strict and not _has_counts(usage):
            shown = repr(usage)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ValueError(
                f"{shown} holds no token counts (input_tokens, prompt_tokens, ...): "
                "give the response's usage, or the context size as an int"
            )
        if type(usage) is dict and usage.get("prompt_tokens") is None:
            # the common case, read once per API call of a long transcript: four counts
            counts: list[Any] = [usage.get(name) for name in USAGE_FIELDS]
            if all(type(n) is int and 0 <= n <= MAX_TOKEN_COUNT for n in counts):
                return cls(*counts)
        get = usage.get if isinstance(usage, dict) else lambda k, d=None: getattr(usage, k, d)
        if get("prompt_tokens") is not None and get("input_tokens") is None:
            details = get("prompt_tokens_details") or {}
            cached = (
                details.get("cached_tokens")
                if isinstance(details, dict)
                else getattr(details, "cached_tokens", None)
            )
            prompt = token_count(get("prompt_tokens"), "prompt_tokens")
            cached_tokens = token_count(cached, "prompt_tokens_details.cached_tokens")
            if cached_tokens > prompt:
                raise ValueError(
                    f"usage.prompt_tokens_details.cached_tokens ({cached_tokens}) is more "
                    f"than usage.prompt_tokens ({prompt})"
                )
            completion = token_count(get("completion_tokens"), "completion_tokens")
            return cls(
                input_tokens=prompt - cached_tokens,
                cache_read_input_tokens=cached_tokens,
                # the answer the next request carries: reasoning tokens are not in it
                output_tokens=completion - min(completion, _reasoning_tokens(get)),
            )
        return cls(**{name: token_count(get(name), name) for name in USAGE_FIELDS})


# The four counts of ``Usage``, as Anthropic names them.
USAGE_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)
# Counts above this are not a provider's (and would lose precision as floats).
MAX_TOKEN_COUNT = 2**53


def _reasoning_tokens(get: Any) -> int:
    """OpenAI's ``completion_tokens_details.reasoning_tokens``: hidden reasoning, counted
    in ``completion_tokens`` but never sent back (0 when not reported)."""
    details = get("completion_tokens_details") or {}
    value = (
        details.get("reasoning_tokens")
        if isinstance(details, dict)
        else getattr(details, "reasoning_tokens", None)
    )
    try:
        return token_count(value, "completion_tokens_details.reasoning_tokens")
    except ValueError:
        return 0


def _has_counts(usage: Any) -> bool:
    """Whether ``usage`` (a dict or an SDK object) holds any of the counts it is read for."""
    names = (*USAGE_FIELDS, "prompt_tokens", "completion_tokens")
    if isinstance(usage, dict):
        return any(usage.get(name) is not None for name in names)
    if usage is None or isinstance(usage, str | bytes | int | float):
        return False
    return any(getattr(usage, name, None) is not None for name in names)


def token_count(value: Any, name: str) -> int:
    """``value`` as a token count (None is 0); ``ValueError`` naming ``usage.<name>``
    when it is not a whole number from 0 to ``MAX_TOKEN_COUNT``."""
    if value is None:
        return 0
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or not 0 <= value <= MAX_TOKEN_COUNT:
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ValueError(f"usage.{name} is {shown}, not a token count")
    return int(value)


@dataclass(slots=True)
class ApiCall:
    """One API call seen in a transcript.

    ``anchor_call`` is the index (in the same call list) of the latest earlier call
    whose context this call's context extends, and ``added_items`` the indices (in
    ``Transcript.history_items``) of what was added since that call: its output, the
    tool results, the user's next message. With no anchor (the first call, or the
    first after a compaction), ``added_items`` is the whole context the call sent.
    ``items_before`` is the call's position in ``history_items``. The first
    ``anchor_output_items`` of ``added_items`` are the anchor call's own response, whose
    size the anchor's ``usage.output_tokens`` reports exactly.
    """

    usage: Usage
    items_before: int
    agent: str = MAIN_AGENT
    message_id: str | None = None
    model: str | None = None
    timestamp: str | None = None
    after_compaction: bool = False
    anchor_call: int | None = None
    added_items: tuple[int, ...] = ()
    anchor_output_items: int = 0


@dataclass(slots=True, frozen=True)
class Carried:
    """What a context compacted into a new transcript (``compact --fork``, ``--output``)
    carries over from the session it came from, until a usage of its own measures it:
    what the provider counted beyond the transcript (system prompt, tools), in provider
    tokens, and the session's learned correction from local counts to provider tokens
    (``per_token``, ``per_item``), which holds for the counter it was learned with."""

    overhead: int
    counter: str | None = None
    per_token: float | None = None
    per_item: float | None = None

    def correction_for(self, counter: str) -> tuple[float, float] | None:
        """The carried (per_token, per_item) when counting with ``counter``, else None."""
        if self.counter != counter or self.per_token is None or self.per_item is None:
            return None
        return self.per_token, self.per_item

    def to_data(self) -> dict[str, Any]:
        """As a compact boundary holds it (``overheadTokens``, ``counter``, ``perToken``,
        ``perItem``; the last three only when known)."""
        data: dict[str, Any] = {"overheadTokens": self.overhead}
        if self.counter is not None and self.per_token is not None and self.per_item is not None:
            data.update(counter=self.counter, perToken=self.per_token, perItem=self.per_item)
        return data

    @classmethod
    def from_data(cls, data: Any) -> Carried | None:
        """What ``to_data`` wrote, else None (a correction not understood is left out)."""
        tokens = data.get("overheadTokens") if isinstance(data, dict) else None
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens <= 0:
            return None
        counter, k, c = data.get("counter"), data.get("perToken"), data.get("perItem")
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1e6 for v in (k, c)
        )
        if not isinstance(counter, str) or not numbers or not k:
            return cls(tokens)
        return cls(tokens, counter, float(k), float(c))


@dataclass(slots=True)
class Transcript:
    """What a reader returns: items of the current context and the calls seen.

    ``items`` is the main thread's current context (after the last compaction) in
    order. ``history_items`` holds every main-thread item of the whole session, which
    ``calls`` index into; ``agents`` holds each sub-agent's items. ``anchor_position``
    is the index in ``items`` where the output of the latest call (``calls[anchor_call]``)
    starts: items from there on were added after the last reported usage; the first
    ``anchor_output_items`` of them are that call's response. ``compactions`` holds the
    indices in ``calls`` of the first call after each compaction. ``unknown_records``
    counts what the reader kept but did not understand; ``problems`` says, one line
    each (``file:line: what``), which records or fields were bad and what was done
    with them.
    """

    format: str
    items: list[Item]
    calls: list[ApiCall] = field(default_factory=list)
    history_items: list[Item] = field(default_factory=list)
    agents: dict[str, list[Item]] = field(default_factory=dict)
    agent_calls: dict[str, list[ApiCall]] = field(default_factory=dict)
    compactions: list[int] = field(default_factory=list)
    anchor_position: int | None = None
    anchor_call: int | None = None
    anchor_output_items: int = 0
    unknown_records: int = 0
    records: int = 0
    model: str | None = None
    session_id: str | None = None
    path: str | None = None
    raw: Any = None
    problems: list[str] = field(default_factory=list)
    # What the latest request sent beyond the messages, where the transcript records it
    # (Claude Code 2.x ``api-request-shape``): label ("system prompt", "tool NAME") → text.
    request_shape: dict[str, str] = field(default_factory=dict)
    # The context window the session is known to have (a 1M-context beta in the request,
    # the window Claude Code reported), None when only the model table can tell.
    window: int | None = None
    # What the session this context was compacted from (a ``compact --fork``) measured:
    # its figures until a usage of this context measures them.
    carried: Carried | None = None
    # The context each compaction recorded in the file replaced (the main thread's
    # items as they were just before it), oldest compaction first: what ``recall``
    # searches once the compaction took it out.
    replaced: list[list[Item]] = field(default_factory=list)


@dataclass(slots=True)
class AgentUsage:
    """One agent's own context, as its latest call reported it (or counted locally)."""

    name: str
    context_tokens: int
    calls: int = 0
    output_tokens: int = 0
    items: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "context_tokens": self.context_tokens,
            "calls": self.calls,
            "output_tokens": self.output_tokens,
            "items": self.items,
        }
