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
``.stream``, ``batches``, the Responses API. The SDKs are optional extras: this package
never imports them; clients are recognised by their module.

The package, one module a concern: ``records`` (``CallRecord``, the refusal),
``decisions`` (pure: the room for the answer, the level, the refusal's words),
``messages`` (reading a request, writing compacted items back as messages),
``compacting`` (when and how far to compact a request), ``core`` (the one request
lifecycle, ``prepare`` and ``finish``, with no I/O of its own), ``usage`` (what each
provider reports, recorded once), ``streaming`` (the SDK's streams, watched) and
``client`` (the thin sync and async shells, and ``wrap``).
"""

from __future__ import annotations

from .client import WrappedClient, wrap
from .records import ANTHROPIC, OPENAI, CallRecord, RequestBlockedError

__all__ = ["ANTHROPIC", "OPENAI", "CallRecord", "RequestBlockedError", "WrappedClient", "wrap"]
