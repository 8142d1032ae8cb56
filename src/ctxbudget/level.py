"""How full the window is: the ``Level`` every surface shows.

A module of its own so that the status line, which Claude Code runs every few hundred
milliseconds, gets the levels without importing the data model's dataclasses.
"""

from __future__ import annotations

import math
from enum import StrEnum


class Level(StrEnum):
    """How full the window is, from the policy's thresholds."""

    NORMAL = "normal"
    WARNING = "warning"
    CRITICAL = "critical"
    BLOCKED = "blocked"

    @property
    def rank(self) -> int:
        """0 for normal up to 3 for blocked: levels compare by rank."""
        return _RANK[self]


_RANK = {Level.NORMAL: 0, Level.WARNING: 1, Level.CRITICAL: 2, Level.BLOCKED: 3}


def shown_percent(percent: float, places: int = 2) -> float:
    """A share of the window as every surface shows it, text and JSON: rounded down, so
    that 94.999% is not shown as the 95% of a level it has not reached."""
    scale = 10.0**places
    return math.floor(percent * scale + 1e-9) / scale


def whole_percent(percent: float) -> int:
    """A share of the window in whole percents as every surface prints it: rounded
    down (``shown_percent``)."""
    return int(shown_percent(percent, 0))
