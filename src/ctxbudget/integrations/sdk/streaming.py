"""Streams the SDK middleware hands back: the SDK's own, watched as they are read.

Owns how a stream's events reach an ``Observer`` (``usage``) on their way to the
caller, unchanged: ``create(stream=True)`` returns the SDK's stream object with its
class swapped for a subclass of its own whose iteration and ``close`` go through the
observer (``isinstance(s, openai.Stream)`` still holds), or a proxy that forwards
every attribute when the class does not allow that; ``messages.stream()`` returns
the SDK's manager, the raw stream under its helper watched. The watching methods are
written once per mode (sync, async) and serve the SDK subclasses and the proxies
alike; what to do with an event is the observer's, whatever the mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from .proxy import Proxy
from .records import ANTHROPIC, OPENAI
from .usage import AnthropicObserver, Observer

__all__ = [
    "AsyncMessageStreamManager",
    "AsyncObservedStream",
    "MessageStreamManager",
    "ObservedStream",
    "observed",
]


def _sync_watching(base: type) -> dict[str, Any]:
    """``__iter__``, ``__next__`` and ``close`` of ``base``, through the observer."""

    def __iter__(self: Any) -> Iterator[Any]:
        observer: Observer = self._ctxbudget_observer
        try:  # ended, left, or failed (the connection dropped): recorded as it stands
            for event in base.__iter__(self):  # type: ignore[attr-defined]
                if observer.see(event):
                    yield event
        finally:
            observer.complete()

    def __next__(self: Any) -> Any:
        observer: Observer = self._ctxbudget_observer
        while True:
            try:
                event = base.__next__(self)  # type: ignore[attr-defined]
            except BaseException:  # ended, or failed: recorded as it stands
                observer.complete()
                raise
            if observer.see(event):
                return event

    def close(self: Any) -> None:
        try:
            base.close(self)  # type: ignore[attr-defined]
        finally:
            self._ctxbudget_observer.complete()

    return {"__iter__": __iter__, "__next__": __next__, "close": close}


def _async_watching(base: type) -> dict[str, Any]:
    """``__aiter__``, ``__anext__`` and ``close`` of ``base``, through the observer."""

    async def __aiter__(self: Any) -> AsyncIterator[Any]:
        observer: Observer = self._ctxbudget_observer
        try:  # ended, left, or failed (the connection dropped): recorded as it stands
            async for event in base.__aiter__(self):  # type: ignore[attr-defined]
                if observer.see(event):
                    yield event
        finally:
            observer.complete()

    async def __anext__(self: Any) -> Any:
        observer: Observer = self._ctxbudget_observer
        while True:
            try:
                event = await base.__anext__(self)  # type: ignore[attr-defined]
            except BaseException:  # ended, or failed: recorded as it stands
                observer.complete()
                raise
            if observer.see(event):
                return event

    async def aclose(self: Any) -> None:
        try:
            await base.close(self)  # type: ignore[attr-defined]
        finally:
            self._ctxbudget_observer.complete()

    return {"__aiter__": __aiter__, "__anext__": __anext__, "close": aclose}


def watching_class(base: type, aio: bool) -> type:
    """A subclass of a stream class (``anthropic.Stream``, ``openai.AsyncStream``, or a
    proxy below) whose iteration and ``close`` go through the instance's
    ``_ctxbudget_observer``.

    One base only, the methods calling the base's own: a mixin would change the
    instance layout, and ``__class__`` could not be set (CPython 3.11+).
    """
    namespace: dict[str, Any] = {"__module__": base.__module__, "__qualname__": base.__qualname__}
    namespace.update(_async_watching(base) if aio else _sync_watching(base))
    return type(base.__name__, (base,), namespace)


class _Proxy(Proxy):
    """A stream that forwards every attribute to the one it holds."""

    _ctxbudget_target = "_ctxbudget_stream"

    def __init__(self, stream: Any, observer: Observer) -> None:
        self._ctxbudget_stream = stream
        self._ctxbudget_observer = observer

    def __repr__(self) -> str:
        return f"<ctxbudget observed {self._ctxbudget_stream!r}>"


class _SyncProxy(_Proxy):
    def __iter__(self) -> Iterator[Any]:
        return iter(self._ctxbudget_stream)

    def __next__(self) -> Any:
        return next(self._ctxbudget_stream)

    def close(self) -> None:
        self._ctxbudget_stream.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AsyncProxy(_Proxy):
    def __aiter__(self) -> AsyncIterator[Any]:
        events: AsyncIterator[Any] = self._ctxbudget_stream.__aiter__()
        return events

    async def __anext__(self) -> Any:
        return await self._ctxbudget_stream.__anext__()

    async def close(self) -> None:
        await self._ctxbudget_stream.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# Proxies of a stream, yielding the same events, watched by an observer (the raw
# stream under ``messages.stream()``; a stream whose class cannot be swapped).
ObservedStream = watching_class(_SyncProxy, aio=False)
AsyncObservedStream = watching_class(_AsyncProxy, aio=True)

_WATCHED_CLASSES: dict[tuple[type, bool], type] = {}


def observed(stream: Any, observer: Observer, aio: bool) -> Any:
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
                watched = watching_class(cls, aio)
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
    proxy = AsyncObservedStream if aio else ObservedStream
    return proxy(stream, observer)


class _Manager(Proxy):
    """``messages.stream(...)``: the SDK's manager, with the stream it opens watched.

    The raw events under the helper it opens are watched, the helper staying the SDK's
    own object: every consumer (iteration, ``text_stream``, ``get_final_message``)
    reads through them. Without that attribute, the usage comes from the helper's
    accumulated message when the ``with`` block ends.
    """

    _ctxbudget_target = "_ctxbudget_manager"
    _ctxbudget_async = False

    def __init__(self, manager: Any, observer: AnthropicObserver) -> None:
        self._ctxbudget_manager = manager
        self._ctxbudget_observer = observer
        self._ctxbudget_stream: Any = None

    def _ctxbudget_open(self, message_stream: Any) -> Any:
        self._ctxbudget_stream = message_stream
        raw = getattr(message_stream, "_raw_stream", None)
        if raw is not None:
            wrapper = AsyncObservedStream if self._ctxbudget_async else ObservedStream
            message_stream._raw_stream = wrapper(raw, self._ctxbudget_observer)
        return message_stream

    def _ctxbudget_close(self) -> None:
        self._ctxbudget_observer.from_snapshot(self._ctxbudget_stream)
        self._ctxbudget_observer.complete()


class MessageStreamManager(_Manager):
    def __enter__(self) -> Any:
        try:
            stream = self._ctxbudget_manager.__enter__()
        except BaseException:
            self._ctxbudget_observer.abandon()
            raise
        return self._ctxbudget_open(stream)

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._ctxbudget_manager.__exit__(*exc)
        finally:
            self._ctxbudget_close()


class AsyncMessageStreamManager(_Manager):
    _ctxbudget_async = True

    async def __aenter__(self) -> Any:
        try:
            stream = await self._ctxbudget_manager.__aenter__()
        except BaseException:
            self._ctxbudget_observer.abandon()
            raise
        return self._ctxbudget_open(stream)

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._ctxbudget_manager.__aexit__(*exc)
        finally:
            self._ctxbudget_close()
