"""Integrations of ctxbudget with the tools people already run (optional extras).

``sdk``: ``wrap(client)``, middleware for the official Anthropic and OpenAI SDKs. The
names are imported on first use, and no SDK is ever imported here: each integration
recognises the objects it is given.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sdk import CallRecord, RequestBlockedError, WrappedClient, wrap

__all__ = ["CallRecord", "RequestBlockedError", "WrappedClient", "wrap"]

_LAZY = {
    "CallRecord": ".sdk",
    "RequestBlockedError": ".sdk",
    "WrappedClient": ".sdk",
    "wrap": ".sdk",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        # the integration modules themselves (``ctxbudget.integrations.sdk``)
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
