"""Lazy public names for a package (PEP 562): import a module only when it is used.

``ctxbudget`` and ``ctxbudget.integrations`` both expose names whose modules are slow
to import (the store, the SDK wrappers); the status line must not pay for them.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing is not imported at run time: the status line counts ms
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any


def lazy_names(
    package: str, names: Mapping[str, str], public: Sequence[str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps a public name to
    the relative module holding it; any other name is tried as a submodule."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module, package), name)
            namespace[name] = value  # later lookups are plain attribute reads
            return value
        if not name.startswith("__"):
            try:
                return importlib.import_module(f".{name}", package)
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
