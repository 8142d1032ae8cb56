"""The preview of Claude Code's next compaction: ``/compact --dry-run`` and ``/ctxbudget:preview``.

Claude Code's ``/compact`` replaces the conversation with a summary it asks the model
to write; the system prompt and the tool definitions stay. The preview says, before
anything happens: the tokens now, the tokens expected after (what stays, an estimate
of the summary, what ctxbudget puts back), the facts at risk (the fact ledger of the
live context: requirement ids, decisions, open questions, files, todos, errors…,
most important first) and what ctxbudget will put back after the compaction, within
its budget. Nothing is compacted or recorded.

Owns the text only; the figure is the transcript's (the live file, never a stored
copy), the facts are ``compaction.facts``'.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..compaction.facts import extract_facts, ledger_section
from ..compaction.types import MUST_KEEP, Fact
from ..render import pct
from .autocompact import autocompact_threshold

if TYPE_CHECKING:
    from ..model import Transcript
    from ..tracker import Tracker

__all__ = [
    "DRY_RUN_FLAG",
    "REINJECT_TOKENS",
    "CompactionPreview",
    "is_dry_run",
    "preview_compaction",
]

#: The word in ``/compact``'s instructions that makes it a preview.
DRY_RUN_FLAG = "--dry-run"
#: What ctxbudget puts back after Claude Code compacts, at most (tokens).
REINJECT_TOKENS = 2_000
#: Characters per token of the re-injected text (the ledger is dense: ids, paths).
CHARS_PER_TOKEN = 3.5
# Claude Code's summary: a share of the conversation, within bounds seen in real
# sessions (a few thousand tokens; it is asked for a detailed but bounded summary).
SUMMARY_SHARE = 0.05
SUMMARY_MIN, SUMMARY_MAX = 1_500, 12_000
# Facts listed at risk in the preview, at most (the count covers them all).
SHOWN_AT_RISK = 12


def is_dry_run(custom_instructions: str | None) -> bool:
    """Whether ``/compact``'s instructions ask for a preview (``--dry-run`` as a word)."""
    return bool(custom_instructions) and DRY_RUN_FLAG in (custom_instructions or "").split()


@dataclass(slots=True)
class CompactionPreview:
    tokens_before: int
    window: int
    kept_tokens: int  # system prompt, tools: what a compaction leaves in place
    summary_tokens: int
    reinjected_tokens: int
    facts: list[Fact] = field(default_factory=list)
    reinjected: str = ""
    autocompact: str = ""

    @property
    def tokens_after(self) -> int:
        return self.kept_tokens + self.summary_tokens + self.reinjected_tokens

    def render(self) -> str:
        after = self.tokens_after
        lines = [
            "ctxbudget: /compact --dry-run — nothing was compacted.",
            f"Now: {self.tokens_before:,} / {self.window:,} tokens "
            f"({pct(100.0 * self.tokens_before / self.window)}).",
            f"Expected after: about {after:,} ({pct(100.0 * after / self.window)}): "
            f"{self.kept_tokens:,} system prompt and tools, ~{self.summary_tokens:,} "
            f"Claude Code's summary, {self.reinjected_tokens:,} put back by ctxbudget.",
        ]
        if self.autocompact:
            lines.append(self.autocompact + ".")
        kinds = Counter(str(f.kind) for f in self.facts)
        if self.facts:
            counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
            lines.append(
                f"Facts at risk ({len(self.facts)}: {counts}); a summary keeps about "
                "half of them, ctxbudget puts back what it drops:"
            )
            for fact in self.facts[:SHOWN_AT_RISK]:
                lines.append(f"  - {fact.kind}: {' '.join(fact.key.split())[:100]}")
            if len(self.facts) > SHOWN_AT_RISK:
                lines.append(f"  … and {len(self.facts) - SHOWN_AT_RISK} more")
        else:
            lines.append("Facts at risk: none found in the context.")
        if self.reinjected:
            lines.append(
                f"Re-injected after the compaction (at most {REINJECT_TOKENS:,} tokens, "
                "what the summary left out of this):"
            )
            lines.extend("  " + line for line in self.reinjected.splitlines())
        lines.append(
            "Run /compact (with your instructions) to compact; /ctxbudget:recall QUERY "
            "finds what was taken out."
        )
        return "\n".join(lines) + "\n"


def _ordered(facts: list[Fact]) -> list[Fact]:
    """Most important first: the kinds a compaction must keep, then the rest, newest
    first within each."""
    return sorted(facts, key=lambda fact: (fact.kind not in MUST_KEEP, -fact.item))


def preview_compaction(
    transcript: str | Transcript,
    tracker: Tracker,
    policy_fields: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> CompactionPreview:
    """The preview of compacting the live context of ``transcript`` now: its path, or
    the transcript as already read from it (not read again)."""
    from ..sources import load_source
    from .windows import with_remembered_window

    read = load_source(transcript) if isinstance(transcript, str) else transcript
    loaded = with_remembered_window(read)
    session = tracker.load(loaded, **dict(policy_fields or {}))
    status = session.status()
    window = status.max_tokens
    conversation = max(0, status.used_tokens - status.breakdown.unattributed)
    summary = min(SUMMARY_MAX, max(SUMMARY_MIN, int(conversation * SUMMARY_SHARE)))
    summary = min(summary, conversation)
    facts = _ordered(extract_facts(session.items))
    reinjected = ledger_section(facts, max_chars=int(REINJECT_TOKENS * CHARS_PER_TOKEN))
    reinjected_tokens = tracker.counter("estimate").count(reinjected) if reinjected else 0
    return CompactionPreview(
        tokens_before=status.used_tokens,
        window=window,
        kept_tokens=min(status.used_tokens, status.breakdown.unattributed),
        summary_tokens=summary,
        reinjected_tokens=reinjected_tokens,
        facts=facts,
        reinjected=reinjected,
        autocompact=autocompact_threshold(window, environ).describe(),
    )
