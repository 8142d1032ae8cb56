"""The exception tree of ctxbudget.

Every error ctxbudget raises on purpose derives from ``CtxBudgetError``, so callers
can catch one type. Driver and OS errors are wrapped with ``raise ... from exc``.

    CtxBudgetError
    ├── ConfigurationError        bad policy, unknown counter / store, missing extra
    │   └── MissingExtraError     an optional dependency is not installed
    ├── SourceError               a transcript or message file cannot be read
    ├── TokenizerUnavailableError a counter's tokenizer cannot be loaded offline
    ├── StoreError                the store failed (connection, schema, transaction)
    │   ├── SessionNotFoundError  no stored session with that id
    │   ├── AmbiguousSessionError a session id prefix that matches several
    │   └── ConcurrentModificationError  another writer changed the session first
    ├── CompactionError           a compaction cannot be done, or would lose facts
    │   └── StaleCompactionError  the session changed since the plan: plan again
    └── BudgetBlockedError        the window is at the blocked level
"""

from __future__ import annotations


class CtxBudgetError(Exception):
    """Base of every error raised by ctxbudget."""


class ConfigurationError(CtxBudgetError):
    """A policy, counter name or store URL is invalid."""


class MissingExtraError(ConfigurationError):
    """An optional dependency is needed; the message names the extra to install."""

    def __init__(self, feature: str, extra: str, package: str) -> None:
        super().__init__(
            f'{feature} needs the optional package {package!r}: pip install "ctxbudget[{extra}]"'
        )
        self.extra = extra
        self.package = package


class SourceError(CtxBudgetError):
    """A transcript or message file is missing, unreadable or not in a known format."""


class TokenizerUnavailableError(CtxBudgetError):
    """A tokenizer cannot be loaded without the network."""


class StoreError(CtxBudgetError):
    """The store failed: connection, schema or transaction."""


class SessionNotFoundError(StoreError):
    """No stored session has the requested id."""


class AmbiguousSessionError(StoreError):
    """A session id prefix matches more than one stored session."""


class ConcurrentModificationError(StoreError):
    """Another writer changed the session since it was read; nothing was overwritten."""


class CompactionError(CtxBudgetError):
    """A compaction cannot be done (nothing to compact) or would lose facts."""


class StaleCompactionError(CompactionError):
    """The session changed since the compaction was planned (another process added to it
    or compacted it): nothing was applied; plan again on what it holds now."""


class BudgetBlockedError(CtxBudgetError):
    """The context window is at the blocked level and the action was refused."""
