"""What the SDK middleware tells its caller: the record of a request and the refusal.

Owns the provider names, ``CallRecord`` and ``RequestBlockedError``; it decides
nothing and does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...errors import BudgetBlockedError
from ...model import Usage
from ...status import Status

if TYPE_CHECKING:
    from ...archive import Compaction

__all__ = ["ANTHROPIC", "OPENAI", "CallRecord", "RequestBlockedError", "StatusCallback"]

ANTHROPIC = "anthropic"
OPENAI = "openai"

StatusCallback = Callable[[Status], object]


class RequestBlockedError(BudgetBlockedError):
    """A request was not sent: the window is at the blocked level (or the gate said no).

    ``status`` is the window as the request would have used it; ``compaction`` the
    compaction that was tried (None when none was possible or allowed).
    """

    def __init__(self, message: str, status: Status, compaction: Compaction | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.compaction = compaction


@dataclass(slots=True)
class CallRecord:
    """What the wrapper did for one request.

    ``tokens_given``: the context of the request as the caller gave it (estimated, or
    anchored on the last reported usage); ``tokens_sent``: the same for what was sent
    (different only after a compaction); ``reserved_output``: the room kept for the
    answer (``max_tokens``, at least the policy's ``reserved_output``). ``usage`` is
    what the provider reported (None: not reported, e.g. an OpenAI stream without
    ``include_usage``); ``status`` the window after the response.
    """

    provider: str
    model: str | None
    stream: bool
    messages_given: int
    messages_sent: int
    tokens_given: int
    tokens_sent: int
    reserved_output: int
    compaction: Compaction | None = field(default=None, repr=False)
    usage: Usage | None = None
    status: Status | None = field(default=None, repr=False)
