"""Values of the compaction engine: its policy, the facts it must keep, its plan and result.

Pure data, shared by the pipeline steps, the fact ledger, the writers and the facade.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import ConfigurationError
from ..model import Item

# The fields of a CompactionPolicy that may be None (not given).
_OPTIONAL = frozenset({"target_tokens", "trigger_tokens", "target_ratio", "trigger_percent"})


@dataclass(slots=True, frozen=True)
class CompactionPolicy:
    """What a compaction aims at and what it must never touch.

    The target is, in order of precedence: ``target_tokens``, ``target_ratio`` (of the
    tokens before), ``target_percent`` (of the window, default 60%).
    ``keep_first`` / ``keep_last`` count exchanges (a user message and the reply to it;
    a tool result counts as a user message, as the APIs see it). With ``shrink_kept``
    (the default) a target they keep out of reach makes them shrink only as far as
    needed: the first exchange goes, then the last ones down to one; without it they
    are kept as given even when the target is missed.
    """

    target_tokens: int | None = None
    target_ratio: float | None = None
    target_percent: float = 60.0
    trigger_percent: float | None = None  # None: the policy's critical threshold
    trigger_tokens: int | None = None  # overrides trigger_percent when given
    keep_first: int = 1
    keep_last: int = 5
    shrink_kept: bool = True
    keep_results: int = 3
    excluded_tools: tuple[str, ...] = ()
    summarizer: str = "extractive"
    min_freed_share: float = 0.05
    on_missing_facts: str = "restore"  # "restore": add a ledger section; "rollback": refuse

    def __post_init__(self) -> None:
        self._check_types()
        if self.target_tokens is not None and self.target_tokens <= 0:
            raise ConfigurationError(
                f"target must be a positive number of tokens (got {self.target_tokens})"
            )
        if self.target_ratio is not None and not 1 < self.target_ratio <= 1000:
            raise ConfigurationError(
                "ratio must be above 1 and at most 1000 (5 means a fifth of the tokens; "
                f"got {self.target_ratio})"
            )
        if not 0 < self.target_percent <= 100:
            raise ConfigurationError(
                f"target percent must be above 0 and at most 100 (got {self.target_percent})"
            )
        if self.trigger_percent is not None and not 0 <= self.trigger_percent <= 100:
            raise ConfigurationError(f"trigger must be within 0–100% (got {self.trigger_percent})")
        if self.trigger_tokens is not None and self.trigger_tokens <= 0:
            raise ConfigurationError(f"trigger tokens must be positive (got {self.trigger_tokens})")
        if self.keep_first < 0 or self.keep_last < 0 or self.keep_results < 0:
            raise ConfigurationError("keep_first, keep_last and keep_results must be 0 or more")
        if self.summarizer not in ("extractive", "llm"):
            raise ConfigurationError(f"unknown summarizer {self.summarizer!r}: extractive or llm")
        if self.on_missing_facts not in ("restore", "rollback"):
            raise ConfigurationError("on_missing_facts must be restore or rollback")

    def _check_types(self) -> None:
        """Counts are whole numbers and shares numbers, as the fields say: one clear
        error, not a TypeError from deep in a comparison."""
        whole = ("target_tokens", "trigger_tokens", "keep_first", "keep_last", "keep_results")
        number = ("target_ratio", "target_percent", "trigger_percent", "min_freed_share")
        for name in (*whole, *number):
            value = getattr(self, name)
            kinds = int if name in whole else int | float
            if value is None and name in _OPTIONAL:
                continue
            if isinstance(value, bool) or not isinstance(value, kinds):
                wanted = "a whole number" if name in whole else "a number"
                raise ConfigurationError(f"{name} must be {wanted} (got {value!r})")
        if not isinstance(self.excluded_tools, tuple | list | frozenset | set) or not all(
            isinstance(tool, str) for tool in self.excluded_tools
        ):
            raise ConfigurationError(
                f"excluded_tools must be tool names (got {self.excluded_tools!r})"
            )

    def trigger_for(
        self, window: int, critical_percent: float, used: int, *, summary_room: bool = False
    ) -> int:
        """Tokens from which auto-compaction runs: ``trigger_tokens``, else
        ``trigger_percent`` of the window (default: the policy's critical threshold).
        With ``summary_room`` (an LLM writes the summary) early enough that its answer
        still fits the window."""
        percent = self.trigger_percent if self.trigger_percent is not None else critical_percent
        trigger = int(window * percent / 100)
        if self.trigger_tokens is not None:
            trigger = self.trigger_tokens
        if summary_room:
            room = min(8192, max(256, self.target_for(used, window)))
            trigger = min(trigger, window - room)
        return trigger

    def target_for(self, tokens_before: int, window: int) -> int:
        if self.target_tokens is not None:
            return self.target_tokens
        if self.target_ratio is not None:
            return max(1, int(tokens_before / self.target_ratio))
        return int(window * self.target_percent / 100)


class FactKind(StrEnum):
    """What a ``Fact`` is, in the order a ledger section lists them (most important
    first). A member compares equal to its string value (``FactKind.FILE == "file"``)
    and serialises as it, so JSON output and stored data hold the plain strings.
    """

    INSTRUCTION = "instruction"  # the user's standing instruction: "never push to main"
    REQUIREMENT = "requirement"
    DECISION = "decision"
    QUESTION = "question"
    TODO = "todo"
    REQUEST = "request"
    FILE = "file"
    ERROR = "error"
    DATE = "date"
    NUMBER = "number"
    ENTITY = "entity"


@dataclass(slots=True, frozen=True)
class Fact:
    """One thing a compaction must not lose.

    ``kind``: a ``FactKind`` (instruction, requirement, decision, question, todo, request, file,
    error, date, number, entity; a member's plain string behaves the same). ``key`` is what is
    checked in the compacted text (an id, a path, a phrase); ``text`` the line it came
    from, used to put it back. ``item`` is the index of the item it was found in.
    """

    kind: FactKind
    key: str
    text: str
    item: int = -1


# Facts a compaction must keep in the context whatever the target; the others
# (requests, dates, numbers, names) stay in the context as far as the target allows,
# and otherwise in the archive, where recall finds them.
MUST_KEEP = frozenset(
    {
        FactKind.INSTRUCTION,
        FactKind.REQUIREMENT,
        FactKind.DECISION,
        FactKind.QUESTION,
        FactKind.TODO,
        FactKind.FILE,
        FactKind.ERROR,
    }
)


@dataclass(slots=True)
class FactReport:
    """What the fact ledger found after compaction (the compression quality check)."""

    total: int = 0
    kept: int = 0
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (kept, total)
    missing: list[Fact] = field(default_factory=list)
    restored: list[Fact] = field(default_factory=list)

    @property
    def retention(self) -> float:
        return self.kept / self.total if self.total else 1.0

    @property
    def passed(self) -> bool:
        """No must-keep fact is missing (others may wait in the archive)."""
        return not any(f.kind in MUST_KEEP for f in self.missing)

    @property
    def archived(self) -> list[Fact]:
        """Facts left out of the context for the target: still in the archive."""
        return [f for f in self.missing if f.kind not in MUST_KEEP]

    def to_dict(self) -> dict[str, Any]:
        checks = {
            f"{kind}s_preserved": f"{kept}/{total}"
            for kind, (kept, total) in sorted(self.by_kind.items())
        }
        return {
            "passed": self.passed,
            "checks": checks,
            "information_retention": round(self.retention, 4),
            "missing": [
                {"kind": f.kind, "key": f.key} for f in self.missing if f.kind in MUST_KEEP
            ],
            "archived": [{"kind": f.kind, "key": f.key} for f in self.archived],
            "restored": [{"kind": f.kind, "key": f.key} for f in self.restored],
        }


#: A summarizer: the items of the middle, the ledger facts found in them, and the
#: tokens it may take → the summary's text (the extractive one, or an LLM's).
Summarizer = Callable[[Sequence[Item], Sequence[Fact], int], str]


@dataclass(slots=True)
class Action:
    """One step of a plan: what it does, to which items, and what it frees."""

    step: str
    description: str
    items: list[int] = field(default_factory=list)
    tokens_before: int = 0
    tokens_after: int = 0

    @property
    def tokens_freed(self) -> int:
        return self.tokens_before - self.tokens_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "description": self.description,
            "items": len(self.items),
            "tokens_freed": self.tokens_freed,
        }


@dataclass(slots=True)
class CompactionResult:
    """A compaction computed but not yet applied: the facade persists it (or not).

    ``items`` is the new context; ``removed`` every original item that is not in it
    unchanged (each goes to the archive); ``actions`` the plan as executed.
    """

    items: list[Item]
    removed: list[Item]
    actions: list[Action]
    tokens_before: int
    tokens_after: int
    target_tokens: int
    facts: FactReport
    items_before: int  # the items compacted (``items`` holds new ones: summary, stubs)
    summary: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def tokens_freed(self) -> int:
        return self.tokens_before - self.tokens_after

    @property
    def met_target(self) -> bool:
        return self.tokens_after <= self.target_tokens

    @property
    def ratio(self) -> float:
        return self.tokens_before / self.tokens_after if self.tokens_after else float("inf")

    def text(self) -> str:
        """One plain-text block per kept item or summary: for people and for scoring."""
        return "\n\n".join(item.text for item in self.items if item.text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "tokens_freed": self.tokens_freed,
            "target_tokens": self.target_tokens,
            "met_target": self.met_target,
            "ratio": round(self.ratio, 2),
            "items_before": self.items_before,
            "items_after": len(self.items),
            "archived_items": len(self.removed),
            "actions": [a.to_dict() for a in self.actions],
            "facts": self.facts.to_dict(),
            "notes": list(self.notes),
        }
