"""The compaction engine: plan, apply (by the facade), validate facts, never split pairs.

Pure decisions: ``compact(items, count=..., target_tokens=...)`` returns a
``CompactionResult`` and touches no store; the facade (``Session.compact``) persists
it as a new context version, archiving what it removed.
"""

from __future__ import annotations

from .engine import compact
from .types import Action, CompactionPolicy, CompactionResult, Fact, FactKind, FactReport

__all__ = [
    "Action",
    "CompactionPolicy",
    "CompactionResult",
    "Fact",
    "FactKind",
    "FactReport",
    "compact",
]
