"""The wrapped client: thin sync and async shells around the one request lifecycle.

Owns recognising an SDK client (by the module its class comes from, never importing
the SDK), the views of its resources whose conversation calls are intercepted
(``messages.create`` / ``messages.stream``, ``chat.completions.create``), and
``wrap``. A call is prepared by ``Budget.prepare``, sent by the SDK, and answered by
``Budget.finish`` or, for a stream, by an observer; the sync and async shells differ
only where they await the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...compaction import CompactionPolicy
from ...errors import ConfigurationError
from ...policy import Policy
from .core import Budget, Prepared
from .proxy import Proxy
from .records import ANTHROPIC, OPENAI, CallRecord, StatusCallback
from .streaming import AsyncMessageStreamManager, MessageStreamManager, observed
from .usage import AnthropicObserver, observer_for, response_usage

if TYPE_CHECKING:
    from ...session import Session
    from ...tracker import Tracker

__all__ = ["WrappedClient", "wrap"]


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


# ---------------------------------------------------------------- resource views


class _Resource(Proxy):
    """A view of an SDK resource: attributes pass through, some calls are wrapped."""

    _ctxbudget_target = "_ctxbudget_inner"

    def __init__(self, inner: Any, budget: Budget, provider: str, is_async: bool) -> None:
        self._ctxbudget_inner = inner
        self._ctxbudget_budget = budget
        self._ctxbudget_provider = provider
        self._ctxbudget_async = is_async

    def __repr__(self) -> str:
        return f"<ctxbudget view of {self._ctxbudget_inner!r}>"

    def _ctxbudget_prepare(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], stream: bool
    ) -> Prepared | None:
        """The call to send (None: send it as the caller gave it, untracked)."""
        if args:
            return None
        return self._ctxbudget_budget.prepare(self._ctxbudget_provider, kwargs, stream=stream)

    def _ctxbudget_answer(self, prepared: Prepared, result: Any) -> Any:
        """What the caller gets for ``result``: a stream watched for the usage it will
        report, or the response itself, its usage recorded."""
        budget = self._ctxbudget_budget
        if prepared.record.stream:
            observer = observer_for(self._ctxbudget_provider, budget, prepared)
            return observed(result, observer, aio=self._ctxbudget_async)
        budget.finish(prepared, response_usage(result), stacklevel=4)
        return result


class _SyncCreate(_Resource):
    def create(self, *args: Any, **kwargs: Any) -> Any:
        prepared = self._ctxbudget_prepare(args, kwargs, kwargs.get("stream") is True)
        if prepared is None:
            return self._ctxbudget_inner.create(*args, **kwargs)
        try:
            result = self._ctxbudget_inner.create(**prepared.kwargs)
        except BaseException:
            self._ctxbudget_budget.abandon(prepared)
            raise
        return self._ctxbudget_answer(prepared, result)


class _AsyncCreate(_Resource):
    async def create(self, *args: Any, **kwargs: Any) -> Any:
        prepared = self._ctxbudget_prepare(args, kwargs, kwargs.get("stream") is True)
        if prepared is None:
            return await self._ctxbudget_inner.create(*args, **kwargs)
        try:
            result = await self._ctxbudget_inner.create(**prepared.kwargs)
        except BaseException:
            self._ctxbudget_budget.abandon(prepared)
            raise
        return self._ctxbudget_answer(prepared, result)


class _AnthropicStream(_Resource):
    """``messages.stream()``: the same for both clients (the async one's manager is
    entered with ``async with``)."""

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        prepared = self._ctxbudget_prepare(args, kwargs, True)
        if prepared is None:
            return self._ctxbudget_inner.stream(*args, **kwargs)
        manager = self._ctxbudget_inner.stream(**prepared.kwargs)
        cls = AsyncMessageStreamManager if self._ctxbudget_async else MessageStreamManager
        return cls(manager, AnthropicObserver(self._ctxbudget_budget, prepared))


class _AnthropicMessages(_AnthropicStream, _SyncCreate):
    pass


class _AsyncAnthropicMessages(_AnthropicStream, _AsyncCreate):
    pass


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

    def __init__(self, client: Any, budget: Budget) -> None:
        provider, is_async = _provider_of(client)
        object.__setattr__(self, "_ctxbudget_client", client)
        object.__setattr__(self, "_ctxbudget_budget", budget)
        object.__setattr__(self, "_ctxbudget_provider", provider)
        object.__setattr__(self, "_ctxbudget_async", is_async)

    # -- ctxbudget's own attributes (prefixed: they never shadow the client's) -------

    @property
    def ctxbudget_session(self) -> Session | None:
        """The session (None until the first request when none was given)."""
        budget: Budget = self._ctxbudget_budget
        return budget.session

    @property
    def ctxbudget_last_call(self) -> CallRecord | None:
        budget: Budget = self._ctxbudget_budget
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
    budget = Budget(
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
