"""SDK middleware: ``wrap(anthropic.Anthropic())`` and ``wrap(openai.OpenAI())``.

    from ctxbudget import wrap

    client = wrap(anthropic.Anthropic(), on_status=lambda s: print(s.percent))
    client.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=[...])
    client.ctxbudget_session.status()

The wrapper forwards every attribute to the client unchanged and intercepts only the
calls that send a conversation: ``messages.create`` and ``messages.stream``
(Anthropic, sync and async) and ``chat.completions.create`` (OpenAI, sync and async,
``stream=True`` included). Around each of them:

1. **The request is the truth.** The context is read from the request itself
   (``messages``, plus ``system`` and ``tools``), and the session is synced to it: when
   the request continues the previous one (the usual case: the same list with new
   messages appended), only the new items are counted and added, and the usage the
   last response reported stays the anchor; otherwise the session's context is
   replaced by the request's (a new context version, the old one archived).
2. **The budget is checked** with the session's policy (the window follows the model
   unless a policy is given). The request's ``max_tokens`` (OpenAI:
   ``max_completion_tokens`` or ``max_tokens``) counts against the window: the answer
   needs that room, and the APIs refuse a request whose context plus ``max_tokens``
   exceeds the window. It is kept free like the policy's ``reserved_output`` (the
   larger of the two): it lowers ``remaining_tokens``, and a request with no room
   left for it is at the blocked level; the percentages stay shares of the window.
3. **Auto-compaction.** At the trigger (``CompactionPolicy.trigger_tokens`` /
   ``trigger_percent``, else the policy's critical threshold), or whenever the request
   is blocked, the session is compacted (``ctxbudget.compaction``; archived and
   undoable like ``session.compact()``) towards the target share of what the window
   leaves once the answer's room is kept, and the request goes out with the compacted
   messages (every other argument as the caller gave it; tool calls never separated
   from their results). Every message the compaction left as it was is sent as the
   caller's own message object (the same dict: its parts, images included, and its
   other keys, ``name``, ``cache_control``, tool ids); only what it rewrote (a
   summary, stubbed tool results, shortened calls) is written from the compacted
   items (as ``to_anthropic`` / ``to_openai`` do, with the kept messages' tool ids;
   Anthropic messages of one role in a row are merged into one). The system prompt,
   system and developer messages and tools go out as given. The caller's list is never
   modified: later requests that start with the same messages are sent with the
   compacted ones in their place (the kept ones as the caller's messages of that
   request), so a conversation is compacted once, not on every request. A compaction
   that would free less than ``min_freed_share`` of the window is not applied
   (``session.last_alert`` says why) and is not retried until the context grows.
4. **Refusal.** If the request is still at the blocked level after that, it is not
   sent: ``RequestBlockedError`` (a ``BudgetBlockedError``) says what happened, with
   the figures and what to do. With ``gate_agent``, the gate (``session.gate``) must
   also allow the request's ``max_tokens`` for that agent.
5. **Usage.** The usage the response reports is recorded (``session.record_usage``):
   for a stream, from its events as they pass (Anthropic: ``message_start`` usage
   updated by ``message_delta``; OpenAI: the final chunk's ``usage``). The caller gets
   the same events, unchanged, from the SDK's own stream object: ``create(stream=True)``
   returns it with its class swapped for a subclass of its own that watches the events
   (``isinstance(s, openai.Stream)`` / ``anthropic.Stream`` holds; a stream class
   that does not allow it is returned in a proxy that forwards every attribute, and
   ``isinstance`` does not hold then). OpenAI sends usage in a stream only when asked
   (``stream_options={"include_usage": True}``), which adds a final chunk with no
   choices: the wrapper does not ask on its own. Without it the call is not anchored
   and the context stays estimated (the reply is counted when the next request
   carries it). ``wrap(..., stream_usage=True)`` asks for it and removes that extra
   chunk again, so the caller's chunks are the same as without it.

``on_status(status)`` is called after each request (when a stream ends), with the
status of the window that request used. ``wrapped.ctxbudget_session`` is the session
(created at the first request unless given; in memory unless ``tracker=Tracker()`` or
a stored ``session`` is given, then ``ctxbudget tokens ID`` shows the same figures),
``wrapped.ctxbudget_last_call`` a ``CallRecord`` of the latest request.
``with_options()`` and ``copy()`` give a wrapped copy that keeps the same session.

The cost per request is reading its messages (no tokenizing of what was counted
before) and, after a compaction, one JSON fingerprint per replaced message: a few
milliseconds for a 200k-token conversation. Prompt-caching marks
(``cache_control``) may move between requests; they do not make a message another
one. Should ctxbudget itself fail (a store error, a bug), the request is sent as
given, untracked, with a ``RuntimeWarning``: only a refusal stops it.

One wrapped client follows one conversation: a request that does not continue the
previous one replaces the session's context. Wrap the client again (another session)
for another conversation. Not intercepted, so not counted: ``beta.messages``,
``messages.parse``, ``messages.count_tokens`` (it sends nothing to the model),
``with_raw_response`` / ``with_streaming_response``, ``chat.completions.parse`` and
``.stream``, ``batches``, the Responses API. The SDKs are optional extras: this module
never imports them; clients are recognised by their module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..compaction import CompactionPolicy
from ..errors import BudgetBlockedError, CompactionError, ConfigurationError
from ..model import Item, Kind, Level, Role, Transcript, Usage
from ..policy import Policy, window_for_model
from ..status import RECOMMENDATIONS, Status

if TYPE_CHECKING:
    from ..archive import Compaction
    from ..session import Session
    from ..tracker import Tracker

__all__ = ["ANTHROPIC", "OPENAI", "CallRecord", "RequestBlockedError", "WrappedClient", "wrap"]

ANTHROPIC = "anthropic"
OPENAI = "openai"

StatusCallback = Callable[[Status], object]


class RequestBlockedError(BudgetBlockedError):
    """A request was not sent: the window is at the blocked level (or the gate said no).

    ``status`` is the window as the request would have used it; ``compaction`` the
    compaction that was tried (None when none was possible or allowed).
    """

    def __init__(self, message: str, status: Status, compaction: Compaction | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.compaction = compaction


@dataclass(slots=True)
class CallRecord:
    """What the wrapper did for one request.

    ``tokens_given``: the context of the request as the caller gave it (estimated, or
    anchored on the last reported usage); ``tokens_sent``: the same for what was sent
    (different only after a compaction); ``reserved_output``: the room kept for the
    answer (``max_tokens``, at least the policy's ``reserved_output``). ``usage`` is
    what the provider reported (None: not reported, e.g. an OpenAI stream without
    ``include_usage``); ``status`` the window after the response.
    """

    provider: str
    model: str | None
    stream: bool
    messages_given: int
    messages_sent: int
    tokens_given: int
    tokens_sent: int
    reserved_output: int
    compaction: Compaction | None = field(default=None, repr=False)
    usage: Usage | None = None
    status: Status | None = field(default=None, repr=False)


# ---------------------------------------------------------------- small helpers


def _given(value: Any) -> bool:
    """False for None and the SDKs' ``NOT_GIVEN`` / ``omit`` sentinels."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


def _materialize(value: Any) -> Any:
    """A one-shot iterable (a generator) as a list, so it can be read and still sent."""
    if isinstance(value, str | bytes | list | tuple | Mapping) or not _given(value):
        return value
    if hasattr(value, "__iter__") and not hasattr(value, "model_dump"):
        return list(value)
    return value


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data: SDK models (a response's content blocks appended to
    the conversation) become dicts. Returns ``value`` itself when nothing changes."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for key, sub in value.items():
            new = _plain(sub)
            if new is not sub:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out
    if isinstance(value, list | tuple):
        items = [_plain(sub) for sub in value]
        if isinstance(value, list) and all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _plain(dump(mode="json", exclude_none=True))
    if not _given(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return None if not _given(value) else str(value)


# Prompt-caching marks move from message to message between requests (the last one is
# marked each turn): they do not make a message another one.
_CACHE_CONTROL = re.compile(r'"cache_control":\{[^{}]*\},?')


def _fingerprint(message: Any) -> bytes:
    """A message's identity: its JSON (SDK models as dicts), cache marks left out."""
    text = json.dumps(message, sort_keys=True, separators=(",", ":"), default=_json_default)
    text = _CACHE_CONTROL.sub("", text)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _unmarked(blocks: Any) -> Any:
    if not isinstance(blocks, list):
        return blocks
    out = []
    for block in blocks:
        if isinstance(block, dict) and (
            "cache_control" in block or isinstance(block.get("content"), list)
        ):
            block = {k: v for k, v in block.items() if k != "cache_control"}
            if isinstance(block.get("content"), list):
                block["content"] = _unmarked(block["content"])
        out.append(block)
    return out


def _without_cache_marks(message: Any) -> Any:
    """``message`` with every ``cache_control`` mark of its blocks removed (a copy)."""
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        return {**message, "content": _unmarked(message["content"])}
    return message


def _key(item: Item) -> tuple[Any, ...]:
    """What makes two items the same part of a request."""
    return (item.role, item.kind, item.tool, item.pair_id, item.message_index, item.hash)


def _provider_of(client: Any) -> tuple[str, bool]:
    """``(provider, is_async)`` of an SDK client, by the module its class comes from."""
    provider = None
    is_async = False
    for cls in type(client).__mro__:
        root = (cls.__module__ or "").split(".", 1)[0]
        if root in (ANTHROPIC, OPENAI) and provider is None:
            provider = root
        if cls.__name__.startswith("Async"):
            is_async = True
    if provider is None:
        raise ConfigurationError(
            f"ctxbudget.wrap needs an Anthropic or OpenAI SDK client (anthropic.Anthropic, "
            f"anthropic.AsyncAnthropic, openai.OpenAI, openai.AsyncOpenAI); got "
            f"{type(client).__module__}.{type(client).__qualname__}"
        )
    return provider, is_async


def _max_tokens(provider: str, kwargs: Mapping[str, Any]) -> int:
    names = ("max_tokens",) if provider == ANTHROPIC else ("max_completion_tokens", "max_tokens")
    for name in names:
        value = kwargs.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


# ---------------------------------------------------------------- the shared state


@dataclass(slots=True)
class _Swap:
    """The caller's messages (by fingerprint) that a compaction replaced, and what was
    sent in their place: for each message sent, the index of the caller's message it
    passed through unchanged (``caller``; the caller's message of the later request is
    sent, with its own cache marks), or None and the rewritten message (``sent``)."""

    originals: list[bytes]
    sent: list[Any]
    caller: list[int | None]


@dataclass(slots=True)
class _Prepared:
    kwargs: dict[str, Any]
    record: CallRecord
    reserve: int
    inject_usage: bool = False


class _Budget:
    """The state every view of one wrapped client shares (``with_options`` copies too)."""

    def __init__(
        self,
        *,
        tracker: Tracker | None,
        session: Session | None,
        model: str | None,
        policy: Policy | None,
        compaction: CompactionPolicy | None,
        gate_agent: str | None,
        on_status: StatusCallback | None,
        stream_usage: bool,
    ) -> None:
        self.lock = threading.RLock()
        self.tracker = session.tracker if session is not None else tracker
        self.session = session
        self.policy = policy
        self.compaction = compaction
        self.gate_agent = gate_agent
        self.on_status = on_status
        self.stream_usage = stream_usage
        # The model names the counter (and the window, unless a policy or a session
        # fixed it): given, the policy's, the session's, or else each request's own.
        self.model = (
            model
            or (policy.model if policy is not None else None)
            or (session.policy.model if session is not None else None)
        )
        self.window_follows_model = session is None and policy is None
        self.swap: _Swap | None = None
        self.quiet_until = 0  # no auto-compaction attempt at or below this size
        self.last_call: CallRecord | None = None
        if session is not None and policy is not None:
            wanted = policy.replace(model=self.model)
            if session.policy != wanted:
                session.set_policy(wanted)

    # -- the session ----------------------------------------------------------------

    def session_for(self, request_model: str | None) -> Session:
        model = self.model or request_model
        if self.session is None:
            if self.tracker is None:
                from ..tracker import Tracker

                self.tracker = Tracker(store="memory://")
            policy = (self.policy or Policy.for_model(model)).replace(model=model)
            self.session = self.tracker.session(model=model, policy=policy)
            return self.session
        session = self.session
        if self.model is None and model and model != session.policy.model:
            # The conversation moved to another model: the counter (and the window,
            # unless a policy fixed it) follow.
            changes: dict[str, Any] = {"model": model}
            if self.window_follows_model:
                changes["window"] = window_for_model(model)
            counter = session.counter.name
            session.set_policy(session.policy.replace(**changes))
            if session.counter.name != counter:
                session.recount()
        return session

    # -- before the request ---------------------------------------------------------

    def prepare(self, provider: str, kwargs: dict[str, Any], *, stream: bool) -> _Prepared | None:
        """Sync, check, compact: the arguments to send (None: send as given, untracked).

        A refusal (``RequestBlockedError``) and a configuration error propagate. Any
        other failure of ctxbudget itself (a store that fails, a bug) must not stop
        the caller's request: it is sent as given, untracked, with a warning.
        """
        try:
            return self._prepare(provider, kwargs, stream=stream)
        except (BudgetBlockedError, ConfigurationError):
            raise
        except Exception as exc:
            warnings.warn(
                f"ctxbudget could not check this request ({type(exc).__name__}: {exc}); "
                "it is sent as given and not tracked",
                RuntimeWarning,
                stacklevel=4,
            )
            return None

    def _prepare(self, provider: str, kwargs: dict[str, Any], *, stream: bool) -> _Prepared | None:
        messages = _materialize(kwargs.get("messages"))
        if not isinstance(messages, list | tuple):
            return None  # not a conversation we can read: the SDK will say what is wrong
        messages = list(messages) if isinstance(messages, tuple) else messages
        send = dict(kwargs)
        send["messages"] = messages
        for name in ("system", "tools", "functions"):
            if name in send:
                send[name] = _materialize(send[name])
        request_model = send.get("model") if isinstance(send.get("model"), str) else None
        with self.lock:
            session = self.session_for(request_model)
            effective, origins = self._effective(messages)
            envelope = self._envelope(provider, send)
            request = self._read(envelope, effective)
            self._sync(session, request.items)
            session._unknown = request.unknown_records  # parts the reader did not know
            reserve = max(session.policy.reserved_output, _max_tokens(provider, send))
            given = session.used_tokens
            compaction: Compaction | None = None
            written: list[tuple[Any, int | None]] | None = None
            note = ""
            if self.compaction is None:
                note = "Auto-compaction is off (compaction=None)."
            elif self._should_compact(session, reserve):
                compaction, written, note = self._compact(
                    provider, session, envelope, effective, reserve
                )
            out: list[Any] | None = None
            if written is not None:
                out = [message for message, _ in written]
                # The session holds the compacted context now, whatever follows: later
                # requests send these messages in place of the caller's. A message the
                # compaction kept is the caller's own message of each later request (its
                # cache marks as the caller sets them then); a rewritten one goes without
                # cache marks (the caller's own marks are all there are; the API takes
                # four at most).
                caller = [None if e is None else origins[e] for _, e in written]
                self.swap = _Swap(
                    [_fingerprint(m) for m in messages],
                    [
                        None if c is not None else _without_cache_marks(m)
                        for (m, _), c in zip(written, caller, strict=True)
                    ],
                    caller,
                )
            status = _request_status(session, reserve)
            if status.level is Level.BLOCKED:
                raise RequestBlockedError(
                    _blocked_message(session, status, reserve, note), status, compaction
                )
            if self.gate_agent is not None:
                decision = session.gate(self.gate_agent, max(1, reserve), compact=False)
                if not decision.allowed:
                    raise RequestBlockedError(
                        f"ctxbudget did not send this request: the gate refused agent "
                        f"{self.gate_agent!r}: {decision.reason}. Nothing was sent.",
                        status,
                        compaction,
                    )
            if out is not None:
                send["messages"] = out
            elif effective is not messages:
                send["messages"] = effective
            inject = False
            if provider == OPENAI and stream and self.stream_usage:
                options = send.get("stream_options")
                options = dict(options) if isinstance(options, Mapping) else {}
                if not options.get("include_usage"):
                    send["stream_options"] = {**options, "include_usage": True}
                    inject = True
            record = CallRecord(
                provider=provider,
                model=request_model,
                stream=stream,
                messages_given=len(messages),
                messages_sent=len(send["messages"]),
                tokens_given=given,
                tokens_sent=session.used_tokens,
                reserved_output=reserve,
                compaction=compaction,
            )
        return _Prepared(send, record, reserve, inject)

    def _effective(self, messages: list[Any]) -> tuple[list[Any], list[int | None]]:
        """The caller's messages with an earlier compaction's messages in place of the
        ones it replaced, when the request starts with those; and for each, the index of
        the caller's message it is (None: a message that compaction rewrote)."""
        swap = self.swap
        caller: list[int | None] = list(range(len(messages)))
        same = (messages, caller)
        if swap is None or not swap.originals or len(messages) < len(swap.originals):
            return same
        n = len(swap.originals)
        # the ends first: a conversation that is not this one is told apart in O(1)
        if _fingerprint(messages[n - 1]) != swap.originals[-1]:
            return same
        if [_fingerprint(m) for m in messages[:n]] != swap.originals:
            return same
        head = [
            sent if c is None else messages[c]
            for sent, c in zip(swap.sent, swap.caller, strict=True)
        ]
        return [*head, *messages[n:]], [*swap.caller, *range(n, len(messages))]

    @staticmethod
    def _envelope(provider: str, send: Mapping[str, Any]) -> dict[str, Any]:
        envelope: dict[str, Any] = {}
        tools = _plain(send.get("tools")) if _given(send.get("tools")) else None
        tools = list(tools) if isinstance(tools, list) else []
        if provider == OPENAI and _given(send.get("functions")):
            legacy = _plain(send.get("functions"))
            tools += legacy if isinstance(legacy, list) else []
        if tools:
            envelope["tools"] = tools
        if provider == ANTHROPIC and _given(send.get("system")):
            envelope["system"] = _plain(send["system"])
        return envelope

    @staticmethod
    def _read(envelope: dict[str, Any], messages: list[Any]) -> Transcript:
        from ..sources.messages import read_messages

        return read_messages({**envelope, "messages": [_plain(m) for m in messages]})

    def _sync(self, session: Session, items: list[Item]) -> None:
        """Make the session's context the request's: append what is new, or replace."""
        old = session.items
        n = min(len(old), len(items))
        p = 0
        while p < n and _key(old[p]) == _key(items[p]):
            p += 1
        if p == len(old):
            new = items[p:]
            if new:
                # ``extend`` numbers messages after the last one; keep the request's own
                # numbering instead (compaction groups items into messages by it).
                offset = old[-1].message_index + 1 if old else 0
                for item in new:
                    item.message_index -= offset
                session.extend(new)
            return
        _replace_context(session, items, kept=p)
        self.quiet_until = 0  # another context: a compaction may be tried again

    def _should_compact(self, session: Session, reserve: int) -> bool:
        policy = self.compaction
        assert policy is not None
        window = session.policy.window
        used = session.used_tokens
        if _request_status(session, reserve).level is Level.BLOCKED:
            return True
        trigger = policy.trigger_percent
        if trigger is None:
            trigger = session.policy.critical_percent
        trigger_tokens = policy.trigger_tokens or int(window * trigger / 100)
        return used >= trigger_tokens and used > self.quiet_until

    def _compact(
        self,
        provider: str,
        session: Session,
        envelope: dict[str, Any],
        effective: list[Any],
        reserve: int,
    ) -> tuple[Compaction | None, list[tuple[Any, int | None]] | None, str]:
        """Plan a compaction; when it is worth it, apply it and return the messages to
        send, each with the index in ``effective`` of the message it passes through
        unchanged (None: rewritten). The third value says what happened, for an error
        message."""
        policy = self.compaction
        assert policy is not None
        window = session.policy.window
        used = session.used_tokens
        # Aim at the target share of what the window leaves once the answer's room is kept.
        usable = max(1, window - reserve - session.policy.safety_margin)
        target = max(1, min(policy.target_for(used, usable), usable - 1))
        blocked_now = _request_status(session, reserve).level is Level.BLOCKED
        try:
            plan = session.plan_compaction(dataclasses.replace(policy, target_tokens=target))
        except CompactionError as exc:
            return None, None, self._alert(session, used, f"Nothing to compact: {exc}.")
        if not plan.result.actions:
            return (
                None,
                None,
                self._alert(
                    session,
                    used,
                    "Auto-compaction found nothing to remove: what is left is protected "
                    "(the system prompt, the latest request, the last exchanges).",
                ),
            )
        after_blocked = _level(session, plan.used_after, reserve) is Level.BLOCKED
        if plan.freed < policy.min_freed_share * window and not (blocked_now and not after_blocked):
            return (
                plan,
                None,
                self._alert(
                    session,
                    used,
                    f"Auto-compaction would free only {plan.freed:,} tokens (less than "
                    f"{policy.min_freed_share:.0%} of the window): not applied; what is left "
                    "is protected (the system prompt, the latest request, the last exchanges).",
                ),
            )
        if after_blocked:
            return (
                plan,
                None,
                f"Auto-compaction would bring it to {plan.used_after:,} tokens only, which is "
                "still blocked: not applied.",
            )
        written = _write(provider, session.items, plan.result.items, effective)
        out = [message for message, _ in written]
        from ..sources.writers import validate_messages

        problems = validate_messages(_plain(out), provider)
        if problems:  # never send what the API would refuse: leave the request as it was
            return (
                plan,
                None,
                self._alert(
                    session,
                    used,
                    f"The compacted messages would not be valid ({problems[0]}): not applied.",
                ),
            )
        # The context is what is sent: the items as they read back from the messages.
        sent_items = self._read(envelope, out).items
        for item in sent_items:
            if item.tokens is None:
                item.tokens = session.counter.count(item.text, item.hash)
        plan.result.items = sent_items
        applied = session.apply_compaction(plan)
        session.last_alert = None
        self.quiet_until = 0
        return applied, written, f"Auto-compaction freed {applied.freed:,} tokens."

    def _alert(self, session: Session, used: int, reason: str) -> str:
        """A compaction not applied: say so on the session and in its ledger (as
        ``session.auto_compact`` does); no new try until the context grows."""
        session.last_alert = reason
        self.quiet_until = used
        if session._known_to_store:
            session.tracker.store.append_event(
                session.id, "alert", {"reason": reason, "used_tokens": used}
            )
        return reason

    # -- after the response ---------------------------------------------------------

    def finish(self, prepared: _Prepared, usage: Any) -> Status | None:
        """Record the usage the response reported (None: nothing reported) and report."""
        with self.lock:
            session = self.session
            assert session is not None
            record = prepared.record
            try:
                if usage is not None:
                    reported = usage if isinstance(usage, Usage) else Usage.from_api(usage)
                    session.record_usage(reported)
                    record.usage = reported
                status = _request_status(session, prepared.reserve)
            except Exception as exc:
                # The response is the caller's: a failure to record it must not lose it.
                warnings.warn(
                    f"ctxbudget could not record this response's usage "
                    f"({type(exc).__name__}: {exc})",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return None
            record.status = status
            self.last_call = record
            callback = self.on_status
        if callback is not None:
            callback(status)
        return status


# ---------------------------------------------------------------- decisions


def _level(session: Session, used: int, reserve: int) -> Level:
    policy = session.policy
    if policy.window - reserve - policy.safety_margin - used <= 0:
        return Level.BLOCKED
    return policy.level_for(100.0 * used / policy.window)


def _request_status(session: Session, reserve: int) -> Status:
    """``session.status()`` with ``reserve`` (the request's ``max_tokens``, at least the
    policy's ``reserved_output``) kept free for the answer."""
    status = session.status()
    policy = session.policy
    if reserve <= policy.reserved_output:
        return status
    remaining = max(0, policy.window - reserve - policy.safety_margin - status.used_tokens)
    level = _level(session, status.used_tokens, reserve)
    scale = remaining / status.remaining_tokens if status.remaining_tokens else 0.0
    exchanges = status.estimated_exchanges_left
    eta = status.eta_seconds
    return dataclasses.replace(
        status,
        remaining_tokens=remaining,
        level=level,
        recommendation=RECOMMENDATIONS[level],
        estimated_exchanges_left=None if exchanges is None else int(exchanges * scale),
        eta_seconds=None if eta is None else eta * scale,
    )


def _blocked_message(session: Session, status: Status, reserve: int, note: str) -> str:
    policy = session.policy
    used, window = status.used_tokens, policy.window
    margin = policy.safety_margin
    percent = math.floor(status.percent)  # 94% is never shown when blocked
    if used + reserve + margin >= window:
        parts = [f"{used:,} tokens of context"]
        if reserve:
            parts.append(f"{reserve:,} kept for the answer (max_tokens)")
        if margin:
            parts.append(f"a safety margin of {margin:,}")
        why = (
            f"{' + '.join(parts)} = {used + reserve + margin:,} tokens, more than the "
            f"{window:,}-token window holds"
        )
    else:
        why = (
            f"its context is {used:,} tokens, {percent}% of the {window:,}-token window: "
            f"at the blocked level ({policy.blocked_percent:g}%)"
        )
    advice = "start a fresh conversation or drop old messages"
    if reserve:
        advice += ", lower max_tokens"
    return (
        f"ctxbudget did not send this request: {why}. {note} Nothing was sent. To go on, "
        f"{advice}, or raise the window (wrap(..., policy=Policy(window=...))) if the "
        "model allows more."
    ).replace("  ", " ")


# ---------------------------------------------------------------- writing and replacing


def _source(item: Item) -> int | None:
    """The index of the request message ``item`` was read from (None: the envelope's
    system and tools, or an item the compaction wrote, such as a summary)."""
    raw = item.raw
    index = raw.get("message") if isinstance(raw, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else None


def _same(after: Item, before: Item) -> bool:
    return after is before or (
        after.kind is before.kind
        and after.role is before.role
        and after.text == before.text
        and after.pair_id == before.pair_id
    )


def _kept_spans(before: list[Item], after: list[Item], count: int) -> dict[int, tuple[int, int]]:
    """The messages the compaction left as they were: ``{start: (message, end)}``, where
    ``after[start:end]`` are all the items of request message ``message``, unchanged
    and in order, and nothing else."""
    given: dict[int, list[Item]] = {}
    for item in before:
        index = _source(item)
        if index is not None:
            given.setdefault(index, []).append(item)
    placed: dict[int, list[int]] = {}
    for position, item in enumerate(after):
        index = _source(item)
        if index is not None:
            placed.setdefault(index, []).append(position)
    spans: dict[int, tuple[int, int]] = {}
    for index, positions in placed.items():
        original = given.get(index)
        start, end = positions[0], positions[-1] + 1
        if (
            0 <= index < count
            and original is not None
            and len(original) == len(positions) == end - start
            and all(_same(after[p], o) for p, o in zip(positions, original, strict=True))
        ):
            spans[start] = (index, end)
    return spans


def _role(message: Any) -> Any:
    if isinstance(message, Mapping):
        return message.get("role")
    return getattr(message, "role", None)


def _kept_ids(items: list[Item], message: Any) -> dict[str, str]:
    """The tool ids a kept message carries, by pair id: a rewritten message that holds
    the other half of one of its pairs must use the same id."""
    ids: dict[str, str] = {}
    for item in items:
        if item.pair_id is None:
            continue
        block = item.raw.get("block") if isinstance(item.raw, dict) else None
        original: Any = None
        if item.kind is Kind.TOOL_CALL and isinstance(block, dict):
            original = block.get("id")
        elif item.role is Role.TOOL and isinstance(block, dict):
            original = block.get("tool_use_id")
        elif item.role is Role.TOOL:
            plain = _plain(message)
            original = plain.get("tool_call_id") if isinstance(plain, dict) else None
        if isinstance(original, str) and original:
            ids[item.pair_id] = original
    return ids


def _write(
    provider: str, before: list[Item], items: list[Item], effective: list[Any]
) -> list[tuple[Any, int | None]]:
    """The compacted items as the request's ``messages``, each with the index in
    ``effective`` of the message it is (None: a message the compaction rewrote).

    A message whose items the compaction left as they were (``before``: the items the
    plan started from) is sent as the caller's own message object: the same dict, the
    same parts (images, documents, signed thinking), the same extra keys (``name``,
    ``cache_control``, tool ids). Only what the compaction changed (summaries, stubbed
    results, shortened calls, messages it took items from) is written from the items
    (``to_anthropic`` / ``to_openai``), with the tool ids of the kept messages. The
    envelope (Anthropic ``system``, ``tools``) goes out as the caller gave it.
    """
    from ..sources.writers import _anthropic_messages, _Ids, to_openai

    spans = _kept_spans(before, items, len(effective))
    known: dict[str, str] = {}
    for start, (index, end) in spans.items():
        known.update(_kept_ids(items[start:end], effective[index]))
    ids = _Ids("toolu_ctx_", sanitize=True)
    for pair_id, original in known.items():  # a rewritten half uses the kept half's id
        ids.known[pair_id] = original
        ids.used.add(original)

    pieces: list[tuple[Any, int | None]] = []
    run: list[Item] = []

    def flush() -> None:
        if not run:
            return
        if provider == ANTHROPIC:
            pieces.extend((message, None) for message in _anthropic_messages(run, ids))
        else:
            for message in to_openai(run):  # its ids are the pair ids
                if message.get("tool_call_id") in known:
                    message["tool_call_id"] = known[message["tool_call_id"]]
                for call in message.get("tool_calls") or []:
                    call["id"] = known.get(call["id"], call["id"])
                pieces.append((message, None))
        run.clear()

    position = 0
    while position < len(items):
        span = spans.get(position)
        if span is None:
            item = items[position]
            envelope = item.role is Role.SYSTEM and item.message_index < 0
            if not (envelope and _source(item) is None):
                run.append(item)
            position += 1
            continue
        flush()
        index, position = span
        pieces.append((effective[index], index))
    flush()
    return _alternating(pieces) if provider == ANTHROPIC else pieces


def _alternating(pieces: list[tuple[Any, int | None]]) -> list[tuple[Any, int | None]]:
    """Anthropic messages whose roles alternate, starting with the user: two messages
    of one role in a row (a summary next to a kept user message) become one."""
    from ..sources.writers import CONTINUE_TEXT

    out: list[tuple[Any, int | None]] = []
    for message, index in pieces:
        role = _role(message)
        if not out or _role(out[-1][0]) != role:
            out.append((message, index))
            continue
        blocks = [*_content_blocks(out[-1][0]), *_content_blocks(message)]
        if role == "user":  # tool results first, in their order
            blocks.sort(key=lambda b: not (isinstance(b, dict) and b.get("type") == "tool_result"))
        out[-1] = ({"role": role, "content": blocks}, None)
    if not out or _role(out[0][0]) != "user":
        opening = {"role": "user", "content": [{"type": "text", "text": CONTINUE_TEXT}]}
        out.insert(0, (opening, None))
    return out


def _content_blocks(message: Any) -> list[Any]:
    plain = _plain(message)
    content = plain.get("content") if isinstance(plain, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    return list(content) if isinstance(content, list) else []


def _replace_context(session: Session, items: list[Item], *, kept: int) -> None:
    """Make ``items`` the session's context as a new version (the old one archived).

    What the provider counts beyond the items (framing, a tool-use preamble) carries
    over; the anchor does not: the next reported usage sets it again.
    """
    store = session.tracker.store
    k = session.calibration.per_token
    local = sum(item.tokens or 0 for item in session.items)
    overhead = max(0, session.used_tokens - round(k * local + session.framing * len(session.items)))
    for item in items:
        if item.tokens is None and item.kind is not Kind.IMAGE:
            item.tokens = session.counter.count(item.text, item.hash)
    if not session._known_to_store:
        session.save()
    with store.transaction():
        versions = [v.version for v in store.versions(session.id)]
        new_version = max([*versions, session.version]) + 1
        store.append_items(session.id, items, version=new_version)
        store.set_context_version(session.id, new_version)
        store.append_event(
            session.id,
            "context_replaced",
            {
                "reason": "the request did not continue the previous one",
                "version_from": session.version,
                "version_to": new_version,
                "items_kept": kept,
                "items_before": len(session.items),
                "items_after": len(items),
            },
        )
        stored = store.get_session(session.id)
        stored.context_version = new_version
        stored.meta = {
            **session._meta(),
            "reported_tokens": None,
            "last_reported_tokens": None,
            "since_tokens": 0,
            "since_items": 0,
            "overhead": overhead,
        }
        store.update_session(stored)
    session._replace_context(items, new_version, overhead)


# ---------------------------------------------------------------- streams


class _Observer:
    """Watches a stream's events for the usage they report; records it once."""

    def __init__(self, budget: _Budget, prepared: _Prepared) -> None:
        self.budget = budget
        self.prepared = prepared
        self.done_ = False

    def see(self, event: Any) -> bool:
        """Look at one event; False to keep it from the caller."""
        return True

    def usage(self) -> Usage | None:
        return None

    def complete(self) -> None:
        """Record once: the usage seen so far (None when the stream reported none)."""
        if self.done_:
            return
        self.done_ = True
        self.budget.finish(self.prepared, self.usage())


class _AnthropicObserver(_Observer):
    """``message_start`` carries the input usage, ``message_delta`` the cumulative output
    (and, from newer APIs, final input figures); ``message_stop`` ends the message."""

    def __init__(self, budget: _Budget, prepared: _Prepared) -> None:
        super().__init__(budget, prepared)
        self.fields: dict[str, int] | None = None

    def _take(self, usage: Any) -> None:
        if usage is None:
            return
        fields = self.fields if self.fields is not None else {}
        for name in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        ):
            value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
            if isinstance(value, int):
                fields[name] = value
        self.fields = fields

    def see(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            self._take(getattr(getattr(event, "message", None), "usage", None))
        elif kind == "message_delta":
            self._take(getattr(event, "usage", None))
        elif kind == "message_stop":
            self.complete()
        return True

    def usage(self) -> Usage | None:
        return None if self.fields is None else Usage(**self.fields)

    def from_snapshot(self, message_stream: Any) -> None:
        """When the events could not be watched: the helper's accumulated message."""
        if self.done_ or self.fields is not None:
            return
        try:
            snapshot = message_stream.current_message_snapshot
        except (AssertionError, AttributeError):
            return
        self._take(getattr(snapshot, "usage", None))


class _OpenAIObserver(_Observer):
    """The final chunk carries ``usage`` when ``include_usage`` was asked for; when the
    wrapper asked (``stream_usage=True``), that chunk (no choices) is not passed on."""

    def __init__(self, budget: _Budget, prepared: _Prepared) -> None:
        super().__init__(budget, prepared)
        self.reported: Any = None

    def see(self, event: Any) -> bool:
        usage = getattr(event, "usage", None)
        if usage is not None:
            self.reported = usage
        # the chunk the wrapper asked for: usage and no choices
        added = self.prepared.inject_usage and usage is not None
        return not (added and not getattr(event, "choices", 1))

    def usage(self) -> Usage | None:
        return None if self.reported is None else Usage.from_api(self.reported)


class _ObservedStream:
    """A proxy of a sync stream, yielding the same events, watched by an observer (the
    raw stream under ``messages.stream()``; a stream whose class cannot be swapped)."""

    def __init__(self, stream: Any, observer: _Observer) -> None:
        self._ctxbudget_stream = stream
        self._ctxbudget_observer = observer

    def __iter__(self) -> Iterator[Any]:
        observer = self._ctxbudget_observer
        for event in self._ctxbudget_stream:
            if observer.see(event):
                yield event
        observer.complete()

    def __next__(self) -> Any:
        observer = self._ctxbudget_observer
        while True:
            try:
                event = next(self._ctxbudget_stream)
            except StopIteration:
                observer.complete()
                raise
            if observer.see(event):
                return event

    def __enter__(self) -> _ObservedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._ctxbudget_stream.close()
        finally:
            self._ctxbudget_observer.complete()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_ctxbudget"):
            raise AttributeError(name)
        return getattr(self._ctxbudget_stream, name)

    def __repr__(self) -> str:
        return f"<ctxbudget observed {self._ctxbudget_stream!r}>"


class _AsyncObservedStream:
    """``_ObservedStream`` for async streams."""

    def __init__(self, stream: Any, observer: _Observer) -> None:
        self._ctxbudget_stream = stream
        self._ctxbudget_observer = observer

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._events()

    async def _events(self) -> AsyncIterator[Any]:
        observer = self._ctxbudget_observer
        async for event in self._ctxbudget_stream:
            if observer.see(event):
                yield event
        observer.complete()

    async def __anext__(self) -> Any:
        observer = self._ctxbudget_observer
        while True:
            try:
                event = await self._ctxbudget_stream.__anext__()
            except StopAsyncIteration:
                observer.complete()
                raise
            if observer.see(event):
                return event

    async def __aenter__(self) -> _AsyncObservedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self._ctxbudget_stream.close()
        finally:
            self._ctxbudget_observer.complete()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_ctxbudget"):
            raise AttributeError(name)
        return getattr(self._ctxbudget_stream, name)

    def __repr__(self) -> str:
        return f"<ctxbudget observed {self._ctxbudget_stream!r}>"


def _watching_class(base: type, aio: bool) -> type:
    """A subclass of an SDK stream class (``anthropic.Stream``, ``openai.AsyncStream``)
    whose iteration and ``close`` go through the instance's ``_ctxbudget_observer``.

    One base only, the methods calling the base's own: a mixin would change the
    instance layout, and ``__class__`` could not be set (CPython 3.11+).
    """
    namespace: dict[str, Any] = {"__module__": base.__module__, "__qualname__": base.__qualname__}
    if not aio:

        def __iter__(self: Any) -> Iterator[Any]:
            observer: _Observer = self._ctxbudget_observer
            for event in base.__iter__(self):  # type: ignore[attr-defined]
                if observer.see(event):
                    yield event
            observer.complete()

        def __next__(self: Any) -> Any:
            observer: _Observer = self._ctxbudget_observer
            while True:
                try:
                    event = base.__next__(self)  # type: ignore[attr-defined]
                except StopIteration:
                    observer.complete()
                    raise
                if observer.see(event):
                    return event

        def close(self: Any) -> None:
            try:
                base.close(self)  # type: ignore[attr-defined]
            finally:
                self._ctxbudget_observer.complete()

        namespace.update(__iter__=__iter__, __next__=__next__, close=close)
    else:

        async def __aiter__(self: Any) -> AsyncIterator[Any]:
            observer: _Observer = self._ctxbudget_observer
            async for event in base.__aiter__(self):  # type: ignore[attr-defined]
                if observer.see(event):
                    yield event
            observer.complete()

        async def __anext__(self: Any) -> Any:
            observer: _Observer = self._ctxbudget_observer
            while True:
                try:
                    event = await base.__anext__(self)  # type: ignore[attr-defined]
                except StopAsyncIteration:
                    observer.complete()
                    raise
                if observer.see(event):
                    return event

        async def aclose(self: Any) -> None:
            try:
                await base.close(self)  # type: ignore[attr-defined]
            finally:
                self._ctxbudget_observer.complete()

        namespace.update(__aiter__=__aiter__, __anext__=__anext__, close=aclose)
    return type(base.__name__, (base,), namespace)


_WATCHED_CLASSES: dict[tuple[type, bool], type] = {}


def _observed(stream: Any, observer: _Observer, aio: bool) -> Any:
    """``stream`` (what ``create(stream=True)`` returned), watched by ``observer``.

    An SDK stream stays the SDK's object: its class becomes a subclass of its own with
    the watching methods, so ``isinstance(s, openai.Stream)`` still holds. Anything
    else (a class that does not allow it) is wrapped in a proxy that forwards every
    attribute.
    """
    cls = type(stream)
    root = (cls.__module__ or "").split(".", 1)[0]
    if root in (ANTHROPIC, OPENAI) and hasattr(stream, "__dict__"):
        watched = _WATCHED_CLASSES.get((cls, aio))
        if watched is None:
            try:
                watched = _watching_class(cls, aio)
            except TypeError:
                watched = None
            else:
                _WATCHED_CLASSES[(cls, aio)] = watched
        if watched is not None:
            try:
                stream.__class__ = watched
            except TypeError:
                pass
            else:
                stream._ctxbudget_observer = observer
                return stream
    proxy = _AsyncObservedStream if aio else _ObservedStream
    return proxy(stream, observer)


def _watch_message_stream(message_stream: Any, observer: _AnthropicObserver, aio: bool) -> None:
    """Watch the raw events under ``messages.stream()``'s helper, which stays the SDK's
    own object: every consumer (iteration, ``text_stream``, ``get_final_message``)
    reads through them. Without that attribute, the usage comes from the helper's
    accumulated message when the ``with`` block ends."""
    raw = getattr(message_stream, "_raw_stream", None)
    if raw is None:
        return
    wrapper = _AsyncObservedStream if aio else _ObservedStream
    message_stream._raw_stream = wrapper(raw, observer)


class _MessageStreamManager:
    """``messages.stream(...)``: the SDK's manager, with the stream it opens watched."""

    def __init__(self, manager: Any, observer: _AnthropicObserver) -> None:
        self._ctxbudget_manager = manager
        self._ctxbudget_observer = observer
        self._ctxbudget_stream: Any = None

    def __enter__(self) -> Any:
        stream = self._ctxbudget_manager.__enter__()
        self._ctxbudget_stream = stream
        _watch_message_stream(stream, self._ctxbudget_observer, aio=False)
        return stream

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._ctxbudget_manager.__exit__(*exc)
        finally:
            self._ctxbudget_observer.from_snapshot(self._ctxbudget_stream)
            self._ctxbudget_observer.complete()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_ctxbudget"):
            raise AttributeError(name)
        return getattr(self._ctxbudget_manager, name)


class _AsyncMessageStreamManager:
    """``messages.stream(...)`` of the async client."""

    def __init__(self, manager: Any, observer: _AnthropicObserver) -> None:
        self._ctxbudget_manager = manager
        self._ctxbudget_observer = observer
        self._ctxbudget_stream: Any = None

    async def __aenter__(self) -> Any:
        stream = await self._ctxbudget_manager.__aenter__()
        self._ctxbudget_stream = stream
        _watch_message_stream(stream, self._ctxbudget_observer, aio=True)
        return stream

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._ctxbudget_manager.__aexit__(*exc)
        finally:
            self._ctxbudget_observer.from_snapshot(self._ctxbudget_stream)
            self._ctxbudget_observer.complete()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_ctxbudget"):
            raise AttributeError(name)
        return getattr(self._ctxbudget_manager, name)


# ---------------------------------------------------------------- resource proxies


class _Resource:
    """A view of an SDK resource: attributes pass through, some calls are wrapped."""

    def __init__(self, inner: Any, budget: _Budget, provider: str, is_async: bool) -> None:
        self._ctxbudget_inner = inner
        self._ctxbudget_budget = budget
        self._ctxbudget_provider = provider
        self._ctxbudget_async = is_async

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_ctxbudget"):
            raise AttributeError(name)
        return getattr(self._ctxbudget_inner, name)

    def __repr__(self) -> str:
        return f"<ctxbudget view of {self._ctxbudget_inner!r}>"

    def _prepare(self, kwargs: dict[str, Any], stream: bool) -> _Prepared | None:
        return self._ctxbudget_budget.prepare(self._ctxbudget_provider, kwargs, stream=stream)

    def _observer(self, prepared: _Prepared) -> _Observer:
        if self._ctxbudget_provider == ANTHROPIC:
            return _AnthropicObserver(self._ctxbudget_budget, prepared)
        return _OpenAIObserver(self._ctxbudget_budget, prepared)


class _SyncCreate(_Resource):
    def create(self, *args: Any, **kwargs: Any) -> Any:
        stream = kwargs.get("stream") is True
        prepared = None if args else self._prepare(kwargs, stream)
        if prepared is None:
            return self._ctxbudget_inner.create(*args, **kwargs)
        result = self._ctxbudget_inner.create(**prepared.kwargs)
        if stream:
            return _observed(result, self._observer(prepared), aio=False)
        self._ctxbudget_budget.finish(prepared, getattr(result, "usage", None))
        return result


class _AsyncCreate(_Resource):
    async def create(self, *args: Any, **kwargs: Any) -> Any:
        stream = kwargs.get("stream") is True
        prepared = None if args else self._prepare(kwargs, stream)
        if prepared is None:
            return await self._ctxbudget_inner.create(*args, **kwargs)
        result = await self._ctxbudget_inner.create(**prepared.kwargs)
        if stream:
            return _observed(result, self._observer(prepared), aio=True)
        self._ctxbudget_budget.finish(prepared, getattr(result, "usage", None))
        return result


class _AnthropicMessages(_SyncCreate):
    def stream(self, *args: Any, **kwargs: Any) -> Any:
        prepared = None if args else self._prepare(kwargs, True)
        if prepared is None:
            return self._ctxbudget_inner.stream(*args, **kwargs)
        manager = self._ctxbudget_inner.stream(**prepared.kwargs)
        return _MessageStreamManager(manager, _AnthropicObserver(self._ctxbudget_budget, prepared))


class _AsyncAnthropicMessages(_AsyncCreate):
    def stream(self, *args: Any, **kwargs: Any) -> Any:
        prepared = None if args else self._prepare(kwargs, True)
        if prepared is None:
            return self._ctxbudget_inner.stream(*args, **kwargs)
        manager = self._ctxbudget_inner.stream(**prepared.kwargs)
        return _AsyncMessageStreamManager(
            manager, _AnthropicObserver(self._ctxbudget_budget, prepared)
        )


class _Chat(_Resource):
    @property
    def completions(self) -> _Resource:
        cls = _AsyncCreate if self._ctxbudget_async else _SyncCreate
        inner = self._ctxbudget_inner.completions
        return cls(inner, self._ctxbudget_budget, OPENAI, self._ctxbudget_async)


# ---------------------------------------------------------------- the client


class WrappedClient:
    """An SDK client whose conversation calls go through ctxbudget; every other
    attribute is the client's own. See the module documentation."""

    def __init__(self, client: Any, budget: _Budget) -> None:
        provider, is_async = _provider_of(client)
        object.__setattr__(self, "_ctxbudget_client", client)
        object.__setattr__(self, "_ctxbudget_budget", budget)
        object.__setattr__(self, "_ctxbudget_provider", provider)
        object.__setattr__(self, "_ctxbudget_async", is_async)

    # -- ctxbudget's own attributes (prefixed: they never shadow the client's) -------

    @property
    def ctxbudget_session(self) -> Session | None:
        """The session (None until the first request when none was given)."""
        budget: _Budget = self._ctxbudget_budget
        return budget.session

    @property
    def ctxbudget_last_call(self) -> CallRecord | None:
        budget: _Budget = self._ctxbudget_budget
        return budget.last_call

    @property
    def ctxbudget_client(self) -> Any:
        """The wrapped SDK client itself."""
        return self._ctxbudget_client

    # -- the intercepted resources ---------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_ctxbudget"):
            raise AttributeError(name)  # not set up (yet): never recurse
        client = self._ctxbudget_client
        provider = self._ctxbudget_provider
        budget = self._ctxbudget_budget
        is_async = self._ctxbudget_async
        if provider == ANTHROPIC and name == "messages":
            cls = _AsyncAnthropicMessages if is_async else _AnthropicMessages
            return cls(client.messages, budget, provider, is_async)
        if provider == OPENAI and name == "chat":
            return _Chat(client.chat, budget, provider, is_async)
        if name in ("with_options", "copy"):
            method = getattr(client, name)

            def rewrap(*args: Any, **kwargs: Any) -> WrappedClient:
                # a configured copy of the client, still tracked by the same session
                return WrappedClient(method(*args, **kwargs), budget)

            return rewrap
        return getattr(client, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._ctxbudget_client, name, value)

    def __dir__(self) -> list[str]:
        own = ["ctxbudget_client", "ctxbudget_last_call", "ctxbudget_session"]
        return sorted(set(dir(self._ctxbudget_client)) | set(own))

    def __repr__(self) -> str:
        return f"<ctxbudget.wrap({self._ctxbudget_client!r})>"

    # Context managers close the client, as the client's own do.
    def __enter__(self) -> WrappedClient:
        self._ctxbudget_client.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._ctxbudget_client.__exit__(*exc)

    async def __aenter__(self) -> WrappedClient:
        await self._ctxbudget_client.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._ctxbudget_client.__aexit__(*exc)


def wrap(
    client: Any,
    *,
    tracker: Tracker | None = None,
    session: Session | None = None,
    model: str | None = None,
    policy: Policy | None = None,
    compaction: CompactionPolicy | None = CompactionPolicy(),  # noqa: B008 (immutable)
    gate_agent: str | None = None,
    on_status: StatusCallback | None = None,
    stream_usage: bool = False,
) -> WrappedClient:
    """Track, budget and auto-compact every conversation request ``client`` sends.

    ``client``: ``anthropic.Anthropic`` / ``AsyncAnthropic``, ``openai.OpenAI`` /
    ``AsyncOpenAI``; their subclasses and variants (Azure, Bedrock, Vertex) are
    recognised the same way, by the SDK module their class comes from.
    ``session``: the session to keep (else one is created at the first request, in
    ``tracker``, by default an in-memory one: pass ``Tracker()`` to store it).
    ``model``: names the window and the counter (default: each request's model).
    ``policy``: window and thresholds (default: by model). ``compaction``: when and how
    far to compact (None: never; requests at the blocked level are still refused).
    ``gate_agent``: gate every request as this agent (``session.gate``).
    ``on_status``: called with the window's ``Status`` after each request.
    ``stream_usage``: ask OpenAI streams for their usage (the extra chunk is not passed
    on). See the module documentation for what counts and when.
    """
    if isinstance(client, WrappedClient):
        raise ConfigurationError("this client is already wrapped by ctxbudget")
    _provider_of(client)  # refuse anything else now, not at the first request
    budget = _Budget(
        tracker=tracker,
        session=session,
        model=model,
        policy=policy,
        compaction=compaction,
        gate_agent=gate_agent,
        on_status=on_status,
        stream_usage=stream_usage,
    )
    return WrappedClient(client, budget)
