"""Integrations of ctxbudget with the tools people already run (optional extras).

``sdk``: ``wrap(client)``, middleware for the official Anthropic and OpenAI SDKs. The
names are imported on first use, and no SDK is ever imported here: each integration
recognises the objects it is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from .sdk import CallRecord, RequestBlockedError, WrappedClient, wrap

__all__ = ["CallRecord", "RequestBlockedError", "WrappedClient", "wrap"]

_LAZY = {
    "CallRecord": ".sdk",
    "RequestBlockedError": ".sdk",
    "WrappedClient": ".sdk",
    "wrap": ".sdk",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__, globals())
