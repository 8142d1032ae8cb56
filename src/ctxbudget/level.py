"""How full the window is: the ``Level`` every surface shows.

A module of its own so that the status line, which Claude Code runs every few hundred
milliseconds, gets the levels without importing the data model's dataclasses.
"""

from __future__ import annotations

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
