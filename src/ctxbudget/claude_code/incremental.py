"""What the hooks remember of a session between two runs: the transcript read so far.

A hook lives for milliseconds but the transcript it reads can hold hundreds of
thousands of records. So the hooks read it the way the status line does
(``transcript_read.read_transcript``: byte offset of the last complete line, the anchor,
the local count of what came since, the correction learnt so far) and keep that state
in a small JSON file per transcript under ``<cache dir>/hooks/`` (``$CTXBUDGET_CACHE_DIR``,
else the user cache dir): a run reads only what was appended since the last one, and
its cost follows that, not the file's size. The figure is the status line's, the
arithmetic of ``ctxbudget tokens``.

The same file keeps the last figure a run could establish (``last_good``: used tokens,
window, percent, when) and the stored session's policy and budgets as last read, so a
run that cannot read the transcript or the store still knows what the last good
figure would decide (the gate fails closed on it).

Owns no decision: the hooks decide, with ``Session.gate`` and ``Status``.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from .cache import cache_root, save_private_json
from .statusline import transcript_figure
from .transcript_read import read_transcript
from .transcript_state import TranscriptState

__all__ = ["HookMemory", "TranscriptFigure", "hook_state_file", "read_figure"]

#: Bump when the meaning of the saved file changes: older files are then ignored.
MEMORY_VERSION = 1
#: The most bytes one hook run reads of a transcript (the status line reads less per
#: call; a hook reads a whole new transcript on its first run).
HOOK_MAX_BYTES = 1 << 30


def hook_state_file(transcript: str, root: str | None = None) -> str:
    """The hooks' state file of a transcript path."""
    raw = os.path.abspath(transcript).encode("utf-8", "surrogatepass")
    name = f"{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}.json"
    return os.path.join(root or cache_root(), "hooks", name)


@dataclass(slots=True)
class TranscriptFigure:
    """A transcript's context size as read now: tokens, the model named in it, the
    provider's last reported figure (None: no usage yet), what was skipped."""

    used_tokens: int | None
    model: str | None
    reported_tokens: int | None
    calls: int
    records: int
    malformed: int
    # the tool_use ids of the latest tool results in the main thread's context
    results: tuple[str, ...] = ()


@dataclass(slots=True)
class HookMemory:
    """The saved state of one transcript for the hooks (see the module docstring)."""

    path: str
    transcript: dict[str, Any] | None = None
    last_good: dict[str, Any] | None = None
    stored: dict[str, Any] | None = None  # {"policy": {...}, "meta_budget": {...}}
    extra: dict[str, Any] = field(default_factory=dict)
    # the calls recorded as an earlier ctxbudget counted them in this file (it is kept in
    # the stored row now): read, never written
    legacy_calls: int | None = None

    @classmethod
    def load(cls, transcript: str, root: str | None = None) -> HookMemory:
        path = hook_state_file(transcript, root)
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
        except (OSError, ValueError, RecursionError):
            data = None
        memory = cls(path)
        if not isinstance(data, dict) or data.get("version") != MEMORY_VERSION:
            return memory
        for name in ("transcript", "last_good", "stored", "extra"):
            value = data.get(name)
            if isinstance(value, dict):
                setattr(memory, name, value)
        calls = data.get("recorded_calls")
        if isinstance(calls, int) and not isinstance(calls, bool) and calls >= 0:
            memory.legacy_calls = calls
        return memory

    def save(self) -> bool:
        """Write atomically, private to the user (0600); False when it cannot."""
        data = {
            "version": MEMORY_VERSION,
            "transcript": self.transcript,
            "last_good": self.last_good,
            "stored": self.stored,
            "extra": self.extra,
        }
        return save_private_json(self.path, data)

    def remember_figure(self, used_tokens: int, window: int) -> None:
        self.last_good = {
            "used_tokens": used_tokens,
            "window": window,
            "percent": round(100.0 * used_tokens / window, 2) if window else None,
            "at": time.time(),
        }


def read_figure(transcript: str, memory: HookMemory) -> TranscriptFigure:
    """The transcript's figure, reading only what was appended since ``memory``'s
    state (which is updated; the caller saves it). Raises OSError when the file cannot
    be read; a record that cannot be decoded or has fields of the wrong type is
    skipped (counted in ``malformed``) or read as far as it can be."""
    path = os.path.abspath(transcript)
    try:
        state, changed = read_transcript(path, memory.transcript, max_bytes=HOOK_MAX_BYTES)
    except OSError:
        raise
    except Exception:  # a saved state we do not understand: read the file again
        state, changed = read_transcript(path, None, max_bytes=HOOK_MAX_BYTES)
    if changed:
        memory.transcript = state.to_json()
    return _figure(state)


def _figure(state: TranscriptState) -> TranscriptFigure:
    figure = transcript_figure(state)
    return TranscriptFigure(
        used_tokens=figure.used,
        model=state.model,
        reported_tokens=figure.reported,
        calls=state.calls,
        records=state.records,
        malformed=state.malformed,
        results=tuple(state.results),
    )
