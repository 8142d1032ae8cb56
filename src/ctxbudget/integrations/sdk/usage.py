"""The usage a response reports, read per provider, and recorded once.

Owns where each provider puts its usage: a response's ``usage``; in an Anthropic
stream, ``message_start`` updated by ``message_delta`` (or the helper's accumulated
message); in an OpenAI chat stream, the final chunk (with ``include_usage``, which
the wrapper may have asked for and then keeps from the caller). An ``Observer`` sees
a stream's events as they pass and hands the usage to ``Budget.finish`` once. It
reads no stream itself: ``streaming`` feeds it.
"""

from __future__ import annotations

from typing import Any

from ...model import Usage
from .core import Budget, Prepared
from .records import ANTHROPIC

__all__ = ["AnthropicObserver", "Observer", "OpenAIObserver", "observer_for", "response_usage"]


def response_usage(response: Any) -> Any:
    """The usage a (non-stream) response reports; None when it reports none."""
    return getattr(response, "usage", None)


class Observer:
    """Watches a stream's events for the usage they report; records it once."""

    def __init__(self, budget: Budget, prepared: Prepared) -> None:
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

    def abandon(self) -> None:
        """The request failed before its stream began: nothing to record."""
        if not self.done_:
            self.done_ = True
            self.budget.abandon(self.prepared)


class AnthropicObserver(Observer):
    """``message_start`` carries the input usage, ``message_delta`` the cumulative output
    (and, from newer APIs, final input figures); ``message_stop`` ends the message."""

    def __init__(self, budget: Budget, prepared: Prepared) -> None:
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


class OpenAIObserver(Observer):
    """The final chunk carries ``usage`` when ``include_usage`` was asked for; when the
    wrapper asked (``stream_usage=True``), that chunk (no choices) is not passed on."""

    def __init__(self, budget: Budget, prepared: Prepared) -> None:
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


def observer_for(provider: str, budget: Budget, prepared: Prepared) -> Observer:
    """The observer of a stream of ``provider``'s events for the request ``prepared``."""
    if provider == ANTHROPIC:
        return AnthropicObserver(budget, prepared)
    return OpenAIObserver(budget, prepared)
