"""LangGraph and LangChain: keep an agent's context within budget, record what it used.

``pip install "ctxbudget[langgraph]"``. Three pieces, used together:

- ``budget_hook(session)``: a ``pre_model_hook`` for LangGraph's prebuilt
  ``create_react_agent``. Before each model call it brings the session up to date with
  the graph's messages, compacts when the trigger is reached (``session.auto_compact``:
  the critical threshold by default) and gives the model the compacted messages.
- ``budget_middleware(session)``: the same as LangChain v1 agent middleware, for
  ``langchain.agents.create_agent`` (the successor LangGraph 1.0 recommends; it needs the
  ``langchain`` package, which anyone calling ``create_agent`` has).
- ``UsageCallback(session)``: a callback handler that records each model call's
  reported usage (``AIMessage.usage_metadata``, else ``llm_output["token_usage"]``), so
  the session anchors on the provider's count. Attach it to the chat model
  (``ChatAnthropic(..., callbacks=[UsageCallback(session)])``) so that only that model's
  calls are recorded, or pass it in the run's config.

Where the compacted context goes (``mode``):

- ``"llm_input"`` (default): the graph's stored history stays whole; the model sees the
  compacted one (the hook returns ``{"llm_input_messages": [...]}``, the middleware
  overrides the request's messages). Nothing is lost from the checkpoint, the graph's
  output still shows the whole conversation, and the session (which is what the model
  sees) stays the source of the figures: status, levels and the trigger agree with the
  usage the provider reports. The hook returns ``llm_input_messages`` on every call,
  the state's own messages while nothing was compacted: LangGraph keeps that key in
  the state, so a stale compacted list must never be left behind.
- ``"replace"``: the history itself is rewritten
  (``{"messages": [RemoveMessage(REMOVE_ALL_MESSAGES), *compacted]}``): the checkpoint
  shrinks too; what was removed stays in the session's archive (``session.recall``).

Either way a tool call is never separated from its result, and a message the
compaction left unchanged is passed on as the very same object (ids, metadata and all).
When the session is at the blocked level and auto-compaction cannot free enough, the
hook raises ``BudgetBlockedError`` instead of sending a request that cannot fit.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
import warnings
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast
from uuid import UUID

from ..errors import BudgetBlockedError, MissingExtraError
from ..level import Level, whole_percent
from ..model import Kind, Usage
from .langchain_messages import MessageConverter, items_to_messages, messages_to_items, origin_of

try:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import BaseMessage, RemoveMessage
    from langchain_core.outputs import ChatGeneration, LLMResult
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingExtraError(
        "the LangGraph / LangChain integration", "langgraph", "langchain-core"
    ) from exc

if TYPE_CHECKING:
    from langchain.agents.middleware import AgentMiddleware

    from ..archive import Compaction
    from ..compaction import CompactionPolicy
    from ..compaction.types import Summarizer
    from ..session import Session
    from ..status import Status

__all__ = [
    "BudgetHook",
    "UsageCallback",
    "budget_hook",
    "budget_middleware",
    "items_to_messages",
    "messages_to_items",
    "usage_from_message",
    "usage_from_result",
]

Mode = Literal["llm_input", "replace"]

# LangGraph's marker for "remove every message" (langgraph.graph.message): a plain
# string, so the hook works with whichever langgraph is installed.
REMOVE_ALL_MESSAGES = "__remove_all__"
# The session's stored metadata key: how far the hook synced (resumable across processes).
_SYNC_KEY = "langgraph_sync"

# One lock per session: the hook and the callback may run on different threads.
_LOCKS: weakref.WeakKeyDictionary[Session, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock_for(session: Session) -> threading.RLock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(session)
        if lock is None:
            lock = _LOCKS[session] = threading.RLock()
        return lock


# ---------------------------------------------------------------- usage


def usage_from_message(message: BaseMessage) -> Usage | None:
    """The usage an ``AIMessage`` reports (``usage_metadata``), or None.

    LangChain's ``input_tokens`` is the whole input, cache reads and writes included;
    ctxbudget's ``Usage`` keeps them apart (``context_tokens`` adds them back).
    """
    metadata = getattr(message, "usage_metadata", None)
    if not metadata:
        return None
    details = metadata.get("input_token_details") or {}
    read = int(details.get("cache_read") or 0)
    creation = int(details.get("cache_creation") or 0)
    total = int(metadata.get("input_tokens") or 0)
    return Usage(
        input_tokens=max(0, total - read - creation),
        cache_read_input_tokens=read,
        cache_creation_input_tokens=creation,
        output_tokens=int(metadata.get("output_tokens") or 0),
    )


def usage_from_result(result: LLMResult) -> Usage | None:
    """The usage of one model call: its message's ``usage_metadata``, else the
    provider's own figures in ``llm_output`` (``token_usage`` or ``usage``)."""
    for generations in result.generations:
        for generation in generations:
            if isinstance(generation, ChatGeneration):
                usage = usage_from_message(generation.message)
                if usage is not None:
                    return usage
    output = result.llm_output or {}
    for key in ("token_usage", "usage"):
        value = output.get(key)
        if isinstance(value, Mapping) and value:
            return Usage.from_api(dict(value))
    return None


class UsageCallback(BaseCallbackHandler):
    """Records the usage each LLM call reports into ``session`` (``record_usage``).

    Every chat-model run the handler sees is recorded: attach it to the model whose
    context the session tracks (``callbacks=[UsageCallback(session)]`` on the model)
    rather than to the whole graph when the graph calls other models too.
    """

    run_inline = True  # in the caller's thread: recording is ordered with the hook

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.calls = 0
        self.last_usage: Usage | None = None
        self._lock = _lock_for(session)

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        usage = usage_from_result(response)
        if usage is None or usage.context_tokens <= 0:
            return
        with self._lock:
            self.session.record_usage(usage)
            self.calls += 1
            self.last_usage = usage


# ---------------------------------------------------------------- the hook


def _state_messages(state: Any) -> list[BaseMessage]:
    messages = state.get("messages") if isinstance(state, Mapping) else state.messages
    return list(messages or [])


class BudgetHook:
    """Keeps ``session`` in step with an agent's messages and compacts them in time.

    Call it with the graph state (it is a ``pre_model_hook``), or use ``prepare`` with
    a message list from anywhere else. The session holds what the model sees: after a
    compaction, the compacted messages and everything added since.
    """

    def __init__(
        self,
        session: Session,
        *,
        compaction: CompactionPolicy | None = None,
        window: int | None = None,
        mode: Mode = "llm_input",
        summarizer: Summarizer | None = None,
    ) -> None:
        from ..compaction import CompactionPolicy

        if mode not in ("llm_input", "replace"):
            raise ValueError(f'mode must be "llm_input" or "replace" (got {mode!r})')
        self.session = session
        self.compaction = compaction or CompactionPolicy()
        self.mode: Mode = mode
        self.summarizer = summarizer
        self.last_compaction: Compaction | None = None
        self.compactions = 0
        self._lock = _lock_for(session)
        if window is not None and window != session.policy.window:
            session.set_policy(session.policy.replace(window=window))
        self._converter = MessageConverter()
        self._synced: list[str] = []
        self._base_version = session.version  # the session equals the messages at it
        mark = session.remembered(_SYNC_KEY, None)
        if isinstance(mark, dict) and mark.get("count"):
            # a stored session the hook worked on before (another process): resume
            self._converter.seed(session.items)
            self._resume: dict[str, Any] | None = mark
        else:
            self._resume = None

    # -- syncing ----------------------------------------------------------------------

    def sync(self, messages: Sequence[BaseMessage]) -> Status:
        """Add the messages the session has not seen yet; returns the status.

        Messages must extend the ones synced before (LangGraph's history only grows,
        unless rewritten); a history that does not is taken as the new context (a new
        context version; the old one stays in the archive), with a warning.
        """
        with self._lock:
            self._sync(messages)
            return self.session.status()

    def _sync(self, messages: Sequence[BaseMessage]) -> None:
        for message in messages:
            if message.id is None:  # as LangGraph's add_messages does
                message.id = str(uuid.uuid4())
        ids = [str(m.id) for m in messages]
        if self._resume is not None:
            mark, self._resume = self._resume, None
            count = int(mark.get("count", 0))
            if 0 < count <= len(ids) and ids[count - 1] == mark.get("last"):
                self._synced = ids[:count]
                self._base_version = int(mark.get("base", self.session.version))
        synced = len(self._synced)
        # A session already holding messages the hook did not sync (another hook's, a
        # stored session with no matching mark) starts again from these messages.
        foreign = not self._synced and any(origin_of(i) is not None for i in self.session.items)
        if foreign or ids[:synced] != self._synced:
            self._rebase(messages)
        elif synced < len(ids):
            self.session.extend(self._converter.items(messages[synced:]))
            self._synced = ids
        else:
            return
        self._remember()

    def _rebase(self, messages: Sequence[BaseMessage]) -> None:
        warnings.warn(
            "ctxbudget: the agent's message history does not extend what the session saw "
            "(edited, or another thread): the session now holds these messages as a new "
            "context version. Use one session per conversation thread.",
            RuntimeWarning,
            stacklevel=4,
        )
        self._converter = MessageConverter()
        kept = [
            i for i in self.session.items if origin_of(i) is None and i.kind is not Kind.SUMMARY
        ]
        items = kept + self._converter.items(messages)
        self.session.replace_context(items, reason="agent history rewritten")
        self._synced = [str(m.id) for m in messages]
        self._base_version = self.session.version

    def _remember(self) -> None:
        last = self._synced[-1] if self._synced else None
        mark = {"count": len(self._synced), "last": last, "base": self._base_version}
        if self.session.remembered(_SYNC_KEY, None) != mark:
            self.session.remember(_SYNC_KEY, mark)

    # -- deciding -----------------------------------------------------------------------

    def prepare(self, messages: Sequence[BaseMessage]) -> list[BaseMessage] | None:
        """Sync, compact if the trigger is reached; the messages the model should see,
        or None when they are ``messages`` themselves (nothing compacted).

        Raises ``BudgetBlockedError`` when the session is at the blocked level and
        auto-compaction was not applied (it would free too little: what is left is
        protected or must-keep facts; or a trigger set above the blocked threshold).
        """
        with self._lock:
            self._sync(messages)
            session = self.session
            done = session.auto_compact(self.compaction, self.summarizer)
            if done is not None:
                self.last_compaction = done
                self.compactions += 1
            else:
                status = session.status()
                if status.level is Level.BLOCKED:
                    reason = session.last_alert or "auto-compaction did not reach its trigger"
                    shown = whole_percent(status.percent)
                    raise BudgetBlockedError(
                        f"context window at {shown}% ({status.used_tokens:,}/"
                        f"{status.max_tokens:,} tokens), blocked level: the request was not "
                        f"sent. {reason}"
                    )
            if session.version == self._base_version:
                return None
            view = [i for i in session.items if origin_of(i) is not None or i.kind is Kind.SUMMARY]
            return items_to_messages(view, {str(m.id): m for m in messages})

    def replaced(self, view: Sequence[BaseMessage]) -> dict[str, Any]:
        """The state update that makes ``view`` the history (``mode="replace"``)."""
        for message in view:
            if message.id is None:
                message.id = f"ctxbudget-{uuid.uuid4().hex}"
        with self._lock:
            self._synced = [str(m.id) for m in view]
            self._base_version = self.session.version
            self._remember()
        return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *view]}

    def __call__(self, state: Any) -> dict[str, Any]:
        messages = _state_messages(state)
        view = self.prepare(messages)
        if self.mode == "replace":
            # Never set llm_input_messages here: LangGraph would keep using a stale one.
            return {"messages": []} if view is None else self.replaced(view)
        return {"llm_input_messages": messages if view is None else view}

    def middleware(self) -> AgentMiddleware[Any, Any, Any]:
        """This hook as LangChain v1 agent middleware (``create_agent(middleware=[...])``);
        needs the ``langchain`` package."""
        return _middleware(self)


def budget_hook(
    session: Session,
    *,
    compaction: CompactionPolicy | None = None,
    window: int | None = None,
    mode: Mode = "llm_input",
    summarizer: Summarizer | None = None,
) -> BudgetHook:
    """A ``pre_model_hook`` for ``langgraph.prebuilt.create_react_agent``.

    ``compaction`` is the policy of ``session.auto_compact`` (trigger, target, what to
    keep); ``window`` sets the session's window when given; ``mode`` says where the
    compacted context goes (see the module docstring): ``"llm_input"`` (the model sees
    it, the graph's history stays whole) or ``"replace"`` (the history is rewritten).
    """
    return BudgetHook(
        session, compaction=compaction, window=window, mode=mode, summarizer=summarizer
    )


# ---------------------------------------------------------------- LangChain v1 middleware


def budget_middleware(
    session: Session,
    *,
    compaction: CompactionPolicy | None = None,
    window: int | None = None,
    mode: Mode = "llm_input",
    summarizer: Summarizer | None = None,
) -> AgentMiddleware[Any, Any, Any]:
    """The same budget as agent middleware for ``langchain.agents.create_agent``.

    ``mode="llm_input"`` works in ``wrap_model_call``: the request's messages are
    replaced by the compacted ones, the agent's state stays whole. ``mode="replace"``
    works in ``before_model``, returning the update that rewrites the history. The
    middleware's ``hook`` attribute is its ``BudgetHook``.
    """
    return BudgetHook(
        session, compaction=compaction, window=window, mode=mode, summarizer=summarizer
    ).middleware()


def _middleware(hook: BudgetHook) -> AgentMiddleware[Any, Any, Any]:
    try:
        from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
    except ImportError as exc:
        raise MissingExtraError(
            "budget_middleware (langchain's create_agent)", "langgraph", "langchain"
        ) from exc

    # AgentMiddleware is not subscripted: it takes two type parameters in langchain 1.0,
    # three later, with defaults in both.
    class BudgetMiddleware(AgentMiddleware):
        """Compacts what the model sees when the session reaches its trigger."""

        def __init__(self) -> None:
            super().__init__()
            self.hook = hook

        def _request(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
            view = self.hook.prepare(request.messages)
            return request if view is None else request.override(messages=cast(Any, view))

        def wrap_model_call(
            self,
            request: ModelRequest[Any],
            handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
        ) -> Any:
            return handler(self._request(request))

        async def awrap_model_call(
            self,
            request: ModelRequest[Any],
            handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
        ) -> Any:
            return await handler(await asyncio.to_thread(self._request, request))

    class ReplacingBudgetMiddleware(AgentMiddleware):
        """Rewrites the agent's history when the session reaches its trigger."""

        def __init__(self) -> None:
            super().__init__()
            self.hook = hook

        @property
        def name(self) -> str:
            return "BudgetMiddleware"

        def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
            view = self.hook.prepare(_state_messages(state))
            return None if view is None else self.hook.replaced(view)

        async def abefore_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
            return await asyncio.to_thread(self.before_model, state, runtime)

    return ReplacingBudgetMiddleware() if hook.mode == "replace" else BudgetMiddleware()
