"""ctxbudget: a token budget manager for LLM agent sessions.

    from ctxbudget import Tracker

    tracker = Tracker()                              # SQLite in your data directory
    session = tracker.session(model="claude-sonnet-4-5")
    session.add("You are a careful analyst.", role="system")
    session.add("Gather the requirements for EP24.")
    session.record_usage(response.usage)             # the provider's count is the truth
    print(session.status().percent)

The public API is what ``__all__`` lists; everything else is internal.

Names are imported on first use (PEP 562): ``import ctxbudget`` alone loads nothing
heavy, so small entry points (the Claude Code status line runs every few hundred
milliseconds) start fast. ``from ctxbudget import Tracker`` works as before.
"""

from __future__ import annotations

from ._lazy import lazy_names

TYPE_CHECKING = False  # typing itself is not imported at run time: it costs milliseconds
if TYPE_CHECKING:
    from .accounting import Calibration, HistoryPoint
    from .errors import (
        BudgetBlockedError,
        CompactionError,
        ConfigurationError,
        CtxBudgetError,
        MissingExtraError,
        SessionNotFoundError,
        SourceError,
        StoreError,
        TokenizerUnavailableError,
    )
    from .integrations.sdk import wrap
    from .level import Level
    from .model import Component, Item, Kind, Layer, Role, Transcript, Usage
    from .policy import Policy
    from .sources import load_source
    from .status import Breakdown, Status
    from .tokens.counters import available_counters, counter_for_model, get_counter
    from .tracker import Session, Tracker

__version__ = "0.1.0"

__all__ = [
    "Breakdown",
    "BudgetBlockedError",
    "Calibration",
    "CompactionError",
    "Component",
    "ConfigurationError",
    "CtxBudgetError",
    "HistoryPoint",
    "Item",
    "Kind",
    "Layer",
    "Level",
    "MissingExtraError",
    "Policy",
    "Role",
    "Session",
    "SessionNotFoundError",
    "SourceError",
    "Status",
    "StoreError",
    "TokenizerUnavailableError",
    "Tracker",
    "Transcript",
    "Usage",
    "__version__",
    "available_counters",
    "counter_for_model",
    "get_counter",
    "load_source",
    "wrap",
]

# Where each public name lives (relative module).
_LAZY = {
    "Calibration": ".accounting",
    "HistoryPoint": ".accounting",
    "BudgetBlockedError": ".errors",
    "CompactionError": ".errors",
    "ConfigurationError": ".errors",
    "CtxBudgetError": ".errors",
    "MissingExtraError": ".errors",
    "SessionNotFoundError": ".errors",
    "SourceError": ".errors",
    "StoreError": ".errors",
    "TokenizerUnavailableError": ".errors",
    "Component": ".model",
    "Item": ".model",
    "Kind": ".model",
    "Layer": ".model",
    "Level": ".level",
    "Role": ".model",
    "Transcript": ".model",
    "Usage": ".model",
    "Policy": ".policy",
    "load_source": ".sources",
    "Breakdown": ".status",
    "Status": ".status",
    "available_counters": ".tokens.counters",
    "counter_for_model": ".tokens.counters",
    "get_counter": ".tokens.counters",
    "Session": ".tracker",
    "Tracker": ".tracker",
    "wrap": ".integrations.sdk",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__, globals())
