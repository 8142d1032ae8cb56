"""The stand-ins the SDK middleware hands out for the SDK's own objects.

Owns one habit: a stand-in forwards every attribute it does not have itself to the
object it stands for, and its own (``_ctxbudget…``) never forward, so a stand-in
that is not set up yet (being copied, half built) raises instead of recursing.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["Proxy"]


class Proxy:
    """Forwards what it lacks to the object in its attribute ``_ctxbudget_target``."""

    _ctxbudget_target: ClassVar[str]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_ctxbudget"):
            raise AttributeError(name)  # not set up (yet): never recurse
        return getattr(getattr(self, self._ctxbudget_target), name)
