"""A ``Session``: one context window under management, with its services.

``SessionState`` (in ``session_state.py``) holds the items, the running totals and
the anchor on the provider's usage (its ``SessionFigures``, in memory), and persists
them (through its ``SessionRow``, which keeps concurrent writers from overwriting each
other). ``Session`` adds what is done
to a session: compaction and restore (``archive``), recall (``recalling``), budgets (``budgeting``),
the spawn gate and agents' budgets (``spawning``), phases and task prediction
(``phasing``). The services act on the state through its public methods; the engines
they call (``ctxbudget.compaction``, ``ctxbudget.budget``) only decide.

The arrows run one way: ``tracker`` → ``session`` → ``archive`` / ``budgeting`` /
``spawning`` / ``phasing`` → ``session_state``. The services are typed against
``SessionState``, never against ``Session``, so none of them needs to import the facade
that composes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import archive, budgeting, phasing, recalling, spawning
from .accounting import Anchor
from .archive import Compaction
from .budget.adjustment import Adjustment
from .budget.allocation import AllocationDecision, UtilizationReport
from .budget.gate import GateDecision
from .budget.prediction import Task
from .compaction import CompactionPolicy
from .compaction.types import Summarizer
from .errors import ConfigurationError
from .model import Item
from .session_figures import Workspace
from .session_state import SessionState
from .status import Status
from .tokens.framing import UNANCHORED_PER_ITEM

__all__ = ["UNANCHORED_PER_ITEM", "Session", "Workspace"]


class Session(SessionState):
    """One context window: its state (``SessionState``) and what can be done to it."""

    # -- compaction, restore (ctxbudget.archive), recall (ctxbudget.recalling) ------

    def plan_compaction(
        self, policy: CompactionPolicy | None = None, summarizer: Summarizer | None = None
    ) -> Compaction:
        """What a compaction would do: each action, tokens freed, facts at risk. Changes
        nothing. ``policy.summarizer == "llm"`` uses the LLM summarizer (from env)."""
        policy = CompactionPolicy() if policy is None else policy
        if not isinstance(policy, CompactionPolicy):
            raise ConfigurationError(
                f"a compaction takes a CompactionPolicy (got {type(policy).__name__}): "
                "CompactionPolicy(target_percent=50), say"
            )
        if summarizer is None and policy.summarizer == "llm":
            from .compaction.llm import llm_summarizer

            summarizer = llm_summarizer()
        return archive.plan(self, policy, summarizer)

    def compact(
        self, policy: CompactionPolicy | None = None, summarizer: Summarizer | None = None
    ) -> Compaction:
        """Compact and persist as a new context version (one transaction); the removed
        items stay in the archive. When there is nothing to do (already under the target),
        the plan comes back unapplied (``applied_at`` is None) with the reason in its
        notes."""
        plan = self.plan_compaction(policy, summarizer)
        if not plan.result.actions:
            return plan  # nothing to do (e.g. already under the target): see plan.result.notes
        # recording first can change the version: plan against it (a transcript keeps
        # its own context, even where the store holds a compacted copy of it)
        self.save(keep_transcript_context=self.transcript is not None)
        if plan.version_from != self.version:
            plan = self.plan_compaction(policy, summarizer)
        return archive.apply(self, plan)

    def apply_compaction(self, plan: Compaction) -> Compaction:
        """Apply a plan from ``plan_compaction`` (refused if the session changed since)."""
        return archive.apply(self, plan)

    def auto_compact(
        self, policy: CompactionPolicy | None = None, summarizer: Summarizer | None = None
    ) -> Compaction | None:
        """Compact if the trigger is reached (default: the critical threshold).

        Triggers early enough that the summarizer's own answer still fits the window.
        Never loops: a pass that would free less than ``min_freed_share`` of the window
        is not applied; an ``alert`` event is recorded instead (``last_alert``), and no
        new attempt is made until the context grows past where it was.
        """
        return archive.auto_compact(self, policy or CompactionPolicy(), summarizer)

    def restore(self, version: int | None = None, *, force: bool = False) -> tuple[int, int]:
        """Undo a compaction: back to ``version`` (default: the previous one). Returns
        (the version it was at, the version it is at now)."""
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise ConfigurationError(f"a context version is a number (got {version!r})")
        return archive.restore(self, version, force=force)

    def replace_context(self, items: list[Item], *, reason: str) -> None:
        """Make ``items`` the context. A stored session keeps the one it had as an
        archived version (a ``pruned`` event says why); in memory, it is replaced."""
        if self.is_stored:
            archive.replace_context(self, items, reason=reason)
        else:
            self.load_context(items, self.version, Anchor(overhead=self.overhead))

    def recall(self, query: str, budget: int = 500) -> list[Item]:
        """Archived items that best match ``query``, within ``budget`` tokens."""
        if not isinstance(query, str):
            raise ConfigurationError(f"recall takes a text to search for (got {query!r})")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise ConfigurationError(f"the recall budget is a number of tokens (got {budget!r})")
        return recalling.recall(self, query, budget)

    # -- budgets: allocation (ctxbudget.budgeting), the gate (ctxbudget.spawning) -----

    def allocate(
        self,
        component: str,
        tokens: int,
        *,
        allow_partial: bool = True,
        key: str | None = None,
        ttl: float | None = None,
    ) -> AllocationDecision:
        """Reserve ``tokens`` for a component (its share of the default allocation):
        full, after cleanup, partial or denied; returns the decision and logs it.
        A stored session's grant is a reservation taken atomically in the store (never
        more than fits, whoever asks at once), confirmed by the next recorded usage,
        expiring after ``ttl`` seconds (``CTXBUDGET_RESERVATION_TTL``, 600) if not."""
        return budgeting.allocate(
            self, component, tokens, allow_partial=allow_partial, key=key, ttl=ttl
        )

    def record_usage(self, usage: Any) -> Status:
        """Anchor on the provider's usage (see ``SessionState.record_usage``); the
        reservations it turns into usage (allocations, gates asked without a key)
        are confirmed."""
        previous = self.anchor.last_reported
        status = super().record_usage(usage)
        reported = self.anchor.last_reported
        grown = reported - previous if previous is not None and reported is not None else None
        budgeting.usage_recorded(self, grown)
        return status

    def release(self, component: str, tokens: int | None = None) -> int:
        """Give back ``tokens`` (default: all) of what ``component`` holds."""
        if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int)):
            raise ConfigurationError(f"tokens to release is a number (got {tokens!r})")
        return budgeting.release(self, component, tokens)

    def budget_report(self) -> UtilizationReport:
        """Utilization per component with its band (low / moderate / high / critical),
        and overall."""
        return budgeting.report(self)

    def adjust_shares(self, *, apply: bool = True) -> Adjustment:
        return budgeting.adjust(self, apply=apply)

    def gate(
        self,
        agent: str,
        tokens: int,
        *,
        compact: bool = True,
        key: str | None = None,
        reserve: bool | None = None,
        ttl: float | None = None,
    ) -> GateDecision:
        """May ``agent`` spawn needing ``tokens``? ``GateDecision``: allow, allow after
        compaction (applied), or deny; logged as a ``gate`` event. An allowed spawn of
        a stored session (or with ``reserve=True``) holds a reservation of ``tokens``
        (``decision.reservation``), keyed by ``key`` (its ``tool_use_id``: asked twice,
        reserved once) until the sub-agent stops, or ``ttl`` seconds pass."""
        if key is not None and not isinstance(key, str):
            raise ConfigurationError(f"a spawn's key is a text, its tool_use_id (got {key!r})")
        return spawning.gate(
            self, agent, tokens, compact=compact, key=key, reserve=reserve, ttl=ttl
        )

    def set_agent_budget(self, agent: str, tokens: int) -> None:
        spawning.set_agent_budget(self, agent, tokens)

    # -- phases and task prediction (ctxbudget.phasing) -------------------------------

    def start_phase(self, name: str, budget: int | None = None) -> None:
        """New items belong to phase ``name`` until it completes (layered context)."""
        phasing.start_phase(self, name, budget)

    def complete_phase(self, name: str | None = None, pruning: str | None = None) -> dict[str, Any]:
        """Prune by policy (aggressive / moderate / minimal; archived) and report."""
        return phasing.complete_phase(self, name, pruning)

    def plan_tasks(self, tasks: Sequence[Task], *, cleanup_first: bool = True) -> dict[str, Any]:
        """Predict what coming ``Task``s need (the default prediction constants,
        calibrated from stored use); compact first when they would not fit."""
        return phasing.plan_tasks(self, tasks, cleanup_first=cleanup_first)

    def task_completed(self, task: Task, actual_tokens: int) -> None:
        """Record what a task used, so later predictions learn from it."""
        phasing.task_completed(self, task, actual_tokens)
