"""Auto-compaction of one request: when to try it, and the messages it leaves to send.

Owns the trigger (``CompactionPolicy.trigger_tokens`` / ``trigger_percent``, else the
policy's critical threshold, or a request at the blocked level), the target, the
checks that a compaction is worth applying and gives messages the API accepts, and
the quiet spell after one that was not applied (no new try until the context grows).
It applies a compaction through the session (``apply_compaction``) and records an
alert through it; it sends nothing. The lifecycle (``core``) asks it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ...compaction import CompactionPolicy
from ...errors import CompactionError
from ...level import Level
from ...model import EventType
from .decisions import level, request_status
from .messages import plain, read_request, write_messages

if TYPE_CHECKING:
    from ...archive import Compaction
    from ...session import Session

__all__ = ["AutoCompactor"]


class AutoCompactor:
    """Compacts a request's context by ``policy``; one per wrapped client."""

    def __init__(self, policy: CompactionPolicy) -> None:
        self.policy = policy
        self.quiet_until = 0  # no auto-compaction attempt at or below this size

    def context_changed(self) -> None:
        """Another context: a compaction may be tried again."""
        self.quiet_until = 0

    def should_compact(self, session: Session, reserve: int) -> bool:
        used = session.used_tokens
        if request_status(session, reserve).level is Level.BLOCKED:
            return True
        # the summary is written after this decision (by the caller's own summarizer,
        # if any), so no room is kept for it here
        trigger = self.policy.trigger_for(
            session.policy.window, session.policy.critical_percent, used
        )
        return used >= trigger and used > self.quiet_until

    def compact(
        self,
        provider: str,
        session: Session,
        envelope: dict[str, Any],
        effective: list[Any],
        reserve: int,
    ) -> tuple[Compaction | None, list[tuple[Any, int | None]] | None, str]:
        """Plan a compaction; when it is worth it, apply it and return the messages to
        send, each with the index in ``effective`` of the message it passes through
        unchanged (None: rewritten). The third value says what happened, for an error
        message."""
        policy = self.policy
        window = session.policy.window
        used = session.used_tokens
        # Aim at the target share of what the window leaves once the answer's room is kept.
        usable = max(1, window - reserve - session.policy.safety_margin)
        target = max(1, min(policy.target_for(used, usable), usable - 1))
        blocked_now = request_status(session, reserve).level is Level.BLOCKED
        try:
            plan = session.plan_compaction(dataclasses.replace(policy, target_tokens=target))
        except CompactionError as exc:
            return None, None, self._alert(session, used, f"Nothing to compact: {exc}.")
        if not plan.result.actions:
            reason = f"Auto-compaction found nothing to remove: {_why_not(plan)}."
            return None, None, self._alert(session, used, reason)
        after_blocked = level(session, plan.used_after, reserve) is Level.BLOCKED
        if plan.freed < policy.min_freed_share * window and not (blocked_now and not after_blocked):
            reason = (
                f"Auto-compaction would free only {plan.freed:,} tokens (less than "
                f"{policy.min_freed_share:.0%} of the window): not applied; {_why_not(plan)}."
            )
            return plan, None, self._alert(session, used, reason)
        if after_blocked:
            return (
                plan,
                None,
                f"Auto-compaction would bring it to {plan.used_after:,} tokens only, which is "
                "still blocked: not applied.",
            )
        written = write_messages(provider, session.items, plan.result.items, effective)
        out = [message for message, _ in written]
        from ...sources.validation import validate_messages

        problems = validate_messages(plain(out), provider)
        if problems:  # never send what the API would refuse: leave the request as it was
            reason = f"The compacted messages would not be valid ({problems[0]}): not applied."
            return plan, None, self._alert(session, used, reason)
        # The context is what is sent: the items as they read back from the messages.
        sent_items = read_request(envelope, out).items
        for item in sent_items:
            session.count(item)
        plan.result.items = sent_items
        applied = session.apply_compaction(plan)
        session.last_alert = None
        self.quiet_until = 0
        return applied, written, f"Auto-compaction freed {applied.freed:,} tokens."

    def _alert(self, session: Session, used: int, reason: str) -> str:
        """A compaction not applied: say so on the session and in its ledger (as
        ``session.auto_compact`` does); no new try until the context grows."""
        session.last_alert = reason
        self.quiet_until = used
        session.log_event(EventType.ALERT, {"reason": reason, "used_tokens": used})
        return reason


def _why_not(plan: Compaction) -> str:
    """Why a plan frees no more: its own note (what must stay: the protected exchanges,
    facts a compaction keeps, the provider's overhead), else what is protected."""
    for note in reversed(plan.result.notes):
        if note.startswith("target not reached"):
            return note
    return "what is left is protected (the system prompt, the latest request, the last exchanges)"
