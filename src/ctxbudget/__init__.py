"""ctxbudget: a token budget manager for LLM agent sessions.

    from ctxbudget import Tracker

    tracker = Tracker()                              # SQLite in your data directory
    session = tracker.session(model="claude-sonnet-4-5")
    session.add("You are a careful analyst.", role="system")
    session.add("Gather the requirements for EP24.")
    session.record_usage(response.usage)             # the provider's count is the truth
    print(session.status().percent)

The public API is what ``__all__`` lists; everything else is internal.
"""

from __future__ import annotations

from .accounting import Calibration, HistoryPoint
from .errors import (
    BudgetBlockedError,
    ConfigurationError,
    CtxBudgetError,
    MissingExtraError,
    SessionNotFoundError,
    SourceError,
    StoreError,
    TokenizerUnavailableError,
)
from .model import Component, Item, Kind, Layer, Level, Role, Transcript, Usage
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
]
