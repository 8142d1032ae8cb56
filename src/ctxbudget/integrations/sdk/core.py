"""The one implementation of the SDK middleware's request lifecycle.

Owns the state one wrapped client shares (``Budget``: the session, the compaction
that replaced the caller's messages, the last call) and the two halves of a request:
``prepare`` (sync the session to the request, compact before sending, refuse at the
blocked level, and return the arguments to send) and ``finish`` (record the usage
the response reported, and report the status). It sends nothing and reads no
response: the sync and async shells (``client``) and the streams (``streaming``) do
that I/O and call these two, so every request takes the same path whatever the
client. The session's own store is written through the session's public API.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...compaction import CompactionPolicy
from ...errors import BudgetBlockedError, ConcurrentModificationError, ConfigurationError
from ...level import Level
from ...model import EventType, Item, Usage
from ...policy import Policy, window_for_model
from ...spawning import spawn_finished
from ...status import Status
from .compacting import AutoCompactor
from .decisions import blocked_message, max_tokens, request_status
from .messages import (
    envelope,
    fingerprint,
    materialize,
    read_request,
    without_cache_marks,
)
from .records import OPENAI, CallRecord, RequestBlockedError, StatusCallback

if TYPE_CHECKING:
    from ...archive import Compaction
    from ...session import Session
    from ...tracker import Tracker

__all__ = ["Budget", "Prepared", "Swap"]


def _key(item: Item) -> tuple[Any, ...]:
    """What makes two items the same part of a request."""
    return (item.role, item.kind, item.tool, item.pair_id, item.message_index, item.hash)


@dataclass(slots=True)
class Swap:
    """The caller's messages (by fingerprint) that a compaction replaced, and what was
    sent in their place: for each message sent, the index of the caller's message it
    passed through unchanged (``caller``; the caller's message of the later request is
    sent, with its own cache marks), or None and the rewritten message (``sent``)."""

    originals: list[bytes]
    sent: list[Any]
    caller: list[int | None]


# Tries at a request another process's writes to the stored session kept overtaking.
_PREPARE_ATTEMPTS = 3


@dataclass(slots=True)
class Prepared:
    """A request ready to send: its arguments, and what ``finish`` needs afterwards."""

    kwargs: dict[str, Any]
    record: CallRecord
    reserve: int
    inject_usage: bool = False
    # the gate's reservation for this request (``gate_agent``), settled by ``finish``
    gate_key: str | None = None


class Budget:
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
        self.tracker = tracker  # makes the session when none is given (else unused)
        self.session = session
        self.policy = policy
        self.compactor = AutoCompactor(compaction) if compaction is not None else None
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
        self.swap: Swap | None = None
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
                from ...tracker import Tracker

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

    def prepare(self, provider: str, kwargs: dict[str, Any], *, stream: bool) -> Prepared | None:
        """Sync, check, compact: the arguments to send (None: send as given, untracked).

        A refusal (``RequestBlockedError``) and a configuration error propagate. Another
        process that changed the stored session meanwhile makes it read again and
        checked again. Any other failure of ctxbudget itself (a store that fails, a bug)
        must not stop the caller's request: it is sent as given, untracked, with a
        warning; but with ``gate_agent`` the gate must allow each request, and one it
        could not ask is not sent (``BudgetBlockedError``), as the hooks' gate fails
        closed.
        """
        for _ in range(_PREPARE_ATTEMPTS):
            try:
                return self._prepare(provider, kwargs, stream=stream)
            except ConcurrentModificationError:
                with self.lock:
                    if self.session is not None and self.session.is_stored:
                        self.session.reload()  # another process wrote it: again, on that
                continue
            except (BudgetBlockedError, ConfigurationError):
                raise
            except Exception as exc:
                return self._unchecked(exc)
        return self._unchecked(
            ConcurrentModificationError("other processes kept changing the stored session")
        )

    def _unchecked(self, exc: Exception) -> Prepared | None:
        """A request ctxbudget could not check: sent as given with a warning, or, with
        ``gate_agent``, refused (the gate could not be asked)."""
        if self.gate_agent is not None:
            raise BudgetBlockedError(
                f"ctxbudget did not send this request: the gate for agent "
                f"{self.gate_agent!r} could not be asked ({type(exc).__name__}: {exc}). "
                "Nothing was sent."
            ) from exc
        warnings.warn(
            f"ctxbudget could not check this request ({type(exc).__name__}: {exc}); "
            "it is sent as given and not tracked",
            RuntimeWarning,
            stacklevel=5,
        )
        return None

    def _prepare(self, provider: str, kwargs: dict[str, Any], *, stream: bool) -> Prepared | None:
        messages = materialize(kwargs.get("messages"))
        if not isinstance(messages, list | tuple):
            return None  # not a conversation we can read: the SDK will say what is wrong
        messages = list(messages) if isinstance(messages, tuple) else messages
        send = dict(kwargs)
        send["messages"] = messages
        for name in ("system", "tools", "functions"):
            if name in send:
                send[name] = materialize(send[name])
        request_model = send.get("model") if isinstance(send.get("model"), str) else None
        with self.lock:
            session = self.session_for(request_model)
            effective, origins = self._effective(messages)
            sent_envelope = envelope(provider, send)
            request = read_request(sent_envelope, effective)
            if self.gate_agent is not None:  # this conversation is that agent's
                for item in request.items:
                    item.agent = self.gate_agent
            self._sync(session, request.items)
            session.unknown_records = request.unknown_records  # parts the reader did not know
            reserve = max(session.policy.reserved_output, max_tokens(provider, send))
            given = session.used_tokens
            compaction: Compaction | None = None
            written: list[tuple[Any, int | None]] | None = None
            note = ""
            compactor = self.compactor
            if compactor is None:
                note = "Auto-compaction is off (compaction=None)."
            elif compactor.should_compact(session, reserve):
                compaction, written, note = compactor.compact(
                    provider, session, sent_envelope, effective, reserve
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
                self.swap = Swap(
                    [fingerprint(m) for m in messages],
                    [
                        None if c is not None else without_cache_marks(m)
                        for (m, _), c in zip(written, caller, strict=True)
                    ],
                    caller,
                )
            status = request_status(session, reserve)
            if status.level is Level.BLOCKED:
                raise RequestBlockedError(
                    blocked_message(session, status, reserve, note), status, compaction
                )
            gate_key = None
            if self.gate_agent is not None:
                # keyed: the response settles it (``finish``), a failed request gives it back
                gate_key = f"request-{uuid.uuid4().hex}"
                decision = session.gate(
                    self.gate_agent, max(1, reserve), compact=False, key=gate_key
                )
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
        return Prepared(send, record, reserve, inject, gate_key)

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
        if fingerprint(messages[n - 1]) != swap.originals[-1]:
            return same
        if [fingerprint(m) for m in messages[:n]] != swap.originals:
            return same
        head = [
            sent if c is None else messages[c]
            for sent, c in zip(swap.sent, swap.caller, strict=True)
        ]
        return [*head, *messages[n:]], [*swap.caller, *range(n, len(messages))]

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
        self._replace_context(session, items, kept=p)
        if self.compactor is not None:
            self.compactor.context_changed()

    @staticmethod
    def _replace_context(session: Session, items: list[Item], *, kept: int) -> None:
        """Make ``items`` the session's context as a new version (the old one archived).

        What the provider counts beyond the items (framing, a tool-use preamble) carries
        over; the anchor does not: the next reported usage sets it again.
        """
        overhead = session.unattributed_tokens
        for item in items:
            session.count(item)  # counted once, images by their pixels
        session.new_version(
            items,
            event=EventType.CONTEXT_REPLACED,
            data={
                "reason": "the request did not continue the previous one",
                "items_kept": kept,
                "items_before": len(session.items),
                "items_after": len(items),
            },
            overhead=overhead,
        )

    # -- after the response ---------------------------------------------------------

    def abandon(self, prepared: Prepared) -> None:
        """The request failed (the SDK raised): the room the gate held for it is given
        back at once, not when its reservation expires."""
        with self.lock, contextlib.suppress(Exception):  # the caller's own error goes on
            self._settle(prepared, ran=False)

    def _settle(self, prepared: Prepared, *, ran: bool) -> None:
        """The gate's reservation for the request: confirmed once its usage is recorded
        (the context holds the request and, from now, its answer), else released."""
        session = self.session
        if prepared.gate_key is None or session is None or self.gate_agent is None:
            return
        if session.is_stored:
            spawn_finished(session.store, session.id, self.gate_agent, prepared.gate_key, ran=ran)
        prepared.gate_key = None  # settled once

    def finish(self, prepared: Prepared, usage: Any, *, stacklevel: int = 3) -> Status | None:
        """Record the usage the response reported (None: nothing reported) and report.

        ``stacklevel``: of a warning, as ``warnings.warn`` counts it from here.
        """
        with self.lock:
            session = self.session
            assert session is not None
            record = prepared.record
            try:
                if usage is not None:
                    reported = usage if isinstance(usage, Usage) else Usage.from_api(usage)
                    session.record_usage(reported)
                    record.usage = reported
                self._settle(prepared, ran=usage is not None)
                status = request_status(session, prepared.reserve)
            except Exception as exc:
                # The response is the caller's: a failure to record it must not lose it.
                warnings.warn(
                    f"ctxbudget could not record this response's usage "
                    f"({type(exc).__name__}: {exc})",
                    RuntimeWarning,
                    stacklevel=stacklevel,
                )
                return None
            record.status = status
            self.last_call = record
            callback = self.on_status
        if callback is not None:
            callback(status)
        return status
