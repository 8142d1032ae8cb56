"""Where Claude Code compacts by itself, as Claude Code 2.1.328 computes it.

Claude Code's auto-compaction fires when the context reaches its threshold: the
window less the output it keeps free (``min(max output tokens, 20,000)``) less a
13,000-token buffer (``window - 33,000`` for every current model: 167,000 of a 200k
window, 967,000 of 1M). ``CLAUDE_AUTOCOMPACT_PCT_OVERRIDE=P`` (0 < P ≤ 100) sets it to
``P%`` of the window less that output, but never above the default: it can only lower
the threshold. Verified against the real Claude Code 2.1.328 (fake usage at 60% of a
1M window compacts with ``P=50``, not without): it is read from the environment and
from the ``env`` of settings.json (user, project and local settings alike), since
Claude Code puts that ``env`` in its own environment at start.

A hook runs with Claude Code's environment, so ``os.environ`` here is what Claude Code
itself read. Owns no decision: the hooks say both thresholds, Claude Code's and the
policy's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AUTOCOMPACT_ENV",
    "AutoCompact",
    "autocompact_threshold",
    "claude_code_environ",
    "override_for_percent",
]

#: The environment variable (or settings.json ``env`` key) Claude Code reads.
AUTOCOMPACT_ENV = "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE"
#: Claude Code keeps this much output free below the window (its cap on max output).
OUTPUT_RESERVE = 20_000
#: And this much more, as the summary's room, before it compacts.
SUMMARY_BUFFER = 13_000


@dataclass(slots=True, frozen=True)
class AutoCompact:
    """Claude Code's auto-compaction threshold: tokens, percent of the window, and the
    override that set it (None: Claude Code's default)."""

    tokens: int
    percent: float
    override: float | None

    def describe(self) -> str:
        origin = f"{AUTOCOMPACT_ENV}={self.override:g}" if self.override is not None else "default"
        return f"Claude Code compacts by itself at {self.percent:.0f}% ({self.tokens:,}; {origin})"

    def until(self, used_tokens: int) -> str:
        """How far ``used_tokens`` is from it, in one line."""
        left = self.tokens - used_tokens
        if left <= 0:
            return f"{self.describe()}: reached, it compacts before its next answer"
        share = left * self.percent / self.tokens  # of the window
        return f"{self.describe()}: {left:,} tokens ({share:.0f}% of the window) from here"

    def to_dict(self, used_tokens: int) -> dict[str, float | int | None]:
        return {
            "tokens": self.tokens,
            "percent": round(self.percent, 2),
            "override": self.override,
            "tokens_until": max(0, self.tokens - used_tokens),
        }


def _override(environ: Mapping[str, str]) -> float | None:
    raw = environ.get(AUTOCOMPACT_ENV, "").strip()
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0 < value <= 100 else None


def autocompact_threshold(window: int, environ: Mapping[str, str] | None = None) -> AutoCompact:
    """Claude Code's threshold for ``window`` under ``environ`` (default: this process's)."""
    override = _override(os.environ if environ is None else environ)
    effective = window - min(OUTPUT_RESERVE, window // 4)
    default = effective - SUMMARY_BUFFER
    tokens = default
    if override is not None:
        tokens = min(int(effective * override / 100), default)
    tokens = max(1, tokens)
    return AutoCompact(tokens, 100.0 * tokens / window if window else 0.0, override)


def claude_code_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment Claude Code would run with: the ``env`` of the user's settings
    (``$CLAUDE_CONFIG_DIR/settings.json``, else ``~/.claude/settings.json``) under this
    process's own (a hook already has it; a terminal does not)."""
    merged: dict[str, str] = {}
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    settings = (Path(config) if config else Path.home() / ".claude") / "settings.json"
    try:
        data = json.loads(settings.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        data = None
    env = data.get("env") if isinstance(data, dict) else None
    if isinstance(env, dict):
        merged.update({k: str(v) for k, v in env.items() if isinstance(k, str)})
    merged.update(os.environ if environ is None else environ)
    return merged


def override_for_percent(percent: float, window: int) -> float | None:
    """The ``CLAUDE_AUTOCOMPACT_PCT_OVERRIDE`` that makes Claude Code compact at
    ``percent`` of ``window``, or None when that is above its default (which the
    override cannot raise)."""
    effective = window - min(OUTPUT_RESERVE, window // 4)
    wanted = int(window * percent / 100)
    if wanted >= effective - SUMMARY_BUFFER:
        return None
    return round(100.0 * wanted / effective, 2)
