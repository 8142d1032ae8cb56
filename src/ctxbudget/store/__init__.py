"""The storage layer: one registry of backends, chosen by URL scheme.

``open_store("sqlite:///ctxbudget.db")`` picks the backend registered for the URL's
scheme and builds it. Backends are registered as ``"module:Class"`` strings and
imported only when their scheme is opened, so a backend whose driver is optional
(PostgreSQL, Redis) is one module plus one line in ``_BACKENDS``; it calls
``import_driver`` when built, which raises ``MissingExtraError`` naming the extra to
install. No URL means ``$CTXBUDGET_STORE``, else SQLite in the user's data
directory. This package stores; it decides nothing about budgets.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigurationError, StoreError
from ._search import search_texts
from .base import (
    ItemAggregates,
    ScrubReport,
    Store,
    StoredEvent,
    StoredSession,
    VersionInfo,
    import_driver,
)
from .reservations import (
    CONFIRMED,
    DEFAULT_RESERVATION_TTL,
    EXPIRED,
    LIVE,
    RELEASED,
    RESERVATION_TTL_ENV,
    SETTLE_ON_STOP,
    SETTLE_ON_USAGE,
    Cap,
    Reservation,
    reservation_ttl,
)

__all__ = [
    "CONFIRMED",
    "DEFAULT_RESERVATION_TTL",
    "EXPIRED",
    "LIVE",
    "RELEASED",
    "RESERVATION_TTL_ENV",
    "SETTLE_ON_STOP",
    "SETTLE_ON_USAGE",
    "Cap",
    "ItemAggregates",
    "Reservation",
    "ScrubReport",
    "Store",
    "StoredEvent",
    "StoredSession",
    "VersionInfo",
    "available_schemes",
    "default_store_url",
    "import_driver",
    "open_store",
    "register_backend",
    "reservation_ttl",
    "search_texts",
    "shown_url",
]

ENV_VAR = "CTXBUDGET_STORE"

# scheme -> "module:Class" (imported on first use) or the class itself.
_BACKENDS: dict[str, str | type[Store]] = {
    "memory": "ctxbudget.store.memory:MemoryStore",
    "sqlite": "ctxbudget.store.sqlite:SQLiteStore",
    "postgresql": "ctxbudget.store.postgres:PostgresStore",
    "postgres": "ctxbudget.store.postgres:PostgresStore",
}
_lock = threading.Lock()
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*$")


def register_backend(scheme: str, backend: str | type[Store]) -> None:
    """Make ``open_store`` build ``backend`` for URLs of ``scheme``.

    ``backend`` is a ``Store`` subclass or a ``"package.module:Class"`` string,
    imported the first time the scheme is opened. A later registration replaces an
    earlier one.
    """
    scheme = scheme.lower()
    if not _SCHEME.match(scheme):
        raise ConfigurationError(f"invalid store URL scheme {scheme!r}")
    if isinstance(backend, str) and backend.count(":") != 1:
        raise ConfigurationError(f"backend {backend!r} must be written 'package.module:Class'")
    if not isinstance(backend, str) and not (
        isinstance(backend, type) and issubclass(backend, Store)
    ):
        raise ConfigurationError(f"backend {backend!r} is not a Store subclass")
    with _lock:
        _BACKENDS[scheme] = backend


def available_schemes() -> list[str]:
    """The URL schemes ``open_store`` knows, sorted."""
    with _lock:
        return sorted(_BACKENDS)


def default_store_url() -> str:
    """``$CTXBUDGET_STORE`` if set, else a SQLite file in the user's data directory."""
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        return configured
    import platformdirs

    # appauthor=False: no "ctxbudget\\ctxbudget" nesting on Windows.
    data_dir = Path(platformdirs.user_data_dir("ctxbudget", appauthor=False))
    return f"sqlite:///{(data_dir / 'ctxbudget.db').as_posix()}"


def shown_url(url: str) -> str:
    """``url`` fit to show, what follows ``user:`` before the host replaced by ``***``."""
    return _PASSWORD.sub(r"\1:***@", url)


_PASSWORD = re.compile(r"(://[^/@:\s]*):[^/@\s]*@")


def _backend_class(scheme: str, url: str) -> type[Store]:
    with _lock:
        backend = _BACKENDS.get(scheme)
    if backend is None:
        raise ConfigurationError(
            f"unknown store URL scheme {scheme!r} in {shown_url(url)!r}; known schemes: "
            f"{', '.join(f'{s}://' for s in available_schemes())}"
        )
    if not isinstance(backend, str):
        return backend
    module_name, _, class_name = backend.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Store)):
        raise ConfigurationError(f"the {scheme} backend {backend!r} is not a Store subclass")
    with _lock:
        _BACKENDS[scheme] = cls
    return cls


def open_store(
    url: str | None = None, *, clock: Callable[[], float] | None = None, create: bool = True
) -> Store:
    """Open the store a URL names (see ``default_store_url`` when it is empty).

    ``clock`` stamps events and session activity; tests pass a ``FakeClock``.
    ``create=False`` opens a store only to read it, and creates nothing: a ``url``
    naming a store that does not exist raises ``StoreError`` (one line saying so);
    the default store (no ``url``) that does not exist yet reads as empty and refuses
    writes. A backend takes part by defining a ``exists(url)`` classmethod and a
    ``create`` keyword (``sqlite``, ``postgresql``: a schema that holds no store);
    the others (memory) always exist.
    """
    explicit = bool((url or "").strip())
    url = (url or "").strip() or default_store_url()
    scheme, separator, _ = url.partition(":")
    if not separator or not _SCHEME.match(scheme.lower()) or len(scheme) < 2:
        # len < 2: "C:\\data\\x.db" is a Windows path, not a URL with scheme "c".
        raise ConfigurationError(
            f"{shown_url(url)!r} is not a store URL: use e.g. sqlite:///path/to/ctxbudget.db "
            "or memory://"
        )
    cls = _backend_class(scheme.lower(), url)
    exists = getattr(cls, "exists", None)
    if create or exists is None or exists(url):
        return cls(url, clock=clock)
    if explicit:
        shown = shown_url(url)
        raise StoreError(
            f"no store at {shown}: it does not exist, and a read creates none; check the URL, "
            f"or store a session there first (ctxbudget tokens SOURCE --record --store {shown})"
        )
    return cls(url, clock=clock, create=False)  # type: ignore[call-arg]
