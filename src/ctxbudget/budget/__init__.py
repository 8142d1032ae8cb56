"""Budget services: pure decisions the facade calls and then records as events.

``allocation`` splits the window between components and answers requests for tokens;
``adjustment`` moves the shares from usage history. Neither does I/O.
"""

from __future__ import annotations

from .adjustment import (
    Adjustment,
    ComponentHistory,
    ShareChange,
    adjust_shares,
    history_from,
)
from .allocation import (
    AFTER_CLEANUP,
    DEFAULT_SHARES,
    DENIED,
    FULL,
    OUTCOMES,
    PARTIAL,
    AllocationDecision,
    ComponentUtilization,
    Shares,
    UtilizationReport,
    UtilizationStatus,
    decide,
    decide_after_cleanup,
    utilization_report,
    utilization_status,
)

__all__ = [
    "AFTER_CLEANUP",
    "DEFAULT_SHARES",
    "DENIED",
    "FULL",
    "OUTCOMES",
    "PARTIAL",
    "Adjustment",
    "AllocationDecision",
    "ComponentHistory",
    "ComponentUtilization",
    "ShareChange",
    "Shares",
    "UtilizationReport",
    "UtilizationStatus",
    "adjust_shares",
    "decide",
    "decide_after_cleanup",
    "history_from",
    "utilization_report",
    "utilization_status",
]
