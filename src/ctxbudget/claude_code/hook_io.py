"""A Claude Code hook's input and answer: the options of a run, the result (exit code,
stdout, stderr), and the hook JSON read defensively (a size and a nesting limit).

What the exit codes mean to Claude Code is in ``ctxbudget.claude_code.hooks``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_REPORT_TOKENS",
    "EXIT_BLOCK",
    "EXIT_ERROR",
    "EXIT_OK",
    "FAIL_OPEN_ENV",
    "MAX_JSON_DEPTH",
    "MAX_STDIN_BYTES",
    "REINJECT_ENV",
    "HookInputError",
    "HookOptions",
    "HookResult",
    "debug_enabled",
    "failed",
    "normalize_event",
    "parse_hook_input",
    "with_notes",
]

# What a sub-agent's report is expected to add to the main context when it returns,
# on top of its prompt: a typical final report is 1–4k tokens; 5,000 errs on the side
# of keeping room. Change it with ``--report-tokens``.
DEFAULT_REPORT_TOKENS = 5_000

EXIT_OK, EXIT_ERROR, EXIT_BLOCK = 0, 1, 2

#: ``CTXBUDGET_HOOK_FAIL_OPEN=1``: a spawn gate that cannot decide lets the spawn through.
FAIL_OPEN_ENV = "CTXBUDGET_HOOK_FAIL_OPEN"
#: ``CTXBUDGET_REINJECT_TOKENS=N``: what is put back after a compaction, at most (tokens).
REINJECT_ENV = "CTXBUDGET_REINJECT_TOKENS"
#: Seconds a hook has to answer, whatever the store does (a stalled network, a server
#: that does not answer, a store held by another writer): then it answers as when the
#: store cannot be reached (a spawn refused unless fail-open).
HOOK_DEADLINE = 15.0
DEADLINE_ENV = "CTXBUDGET_HOOK_DEADLINE"
#: Hook input larger than this is not parsed (Claude Code's own payloads are far smaller;
#: a Write tool's content is the largest part of them).
MAX_STDIN_BYTES = 64 << 20
#: Deeper JSON than this is refused before parsing (Python's parser recurses).
MAX_JSON_DEPTH = 200


@dataclass(slots=True, frozen=True)
class HookOptions:
    """Settings of a hook run: the report budget, policy fields (window…), whether a
    gate that cannot decide lets spawns through (None: ``CTXBUDGET_HOOK_FAIL_OPEN``),
    and where the incremental state is kept (None: the user cache dir). ``plugin``:
    run as the plugin's hook, which stands down for an event that a settings.json
    hook of ctxbudget also handles (``ctxbudget hook EVENT --plugin``)."""

    report_tokens: int = DEFAULT_REPORT_TOKENS
    policy_fields: Mapping[str, Any] = field(default_factory=dict)
    fail_open: bool | None = None
    cache_dir: str | None = None
    plugin: bool = False
    reinject_tokens: int | None = None  # None: CTXBUDGET_REINJECT_TOKENS, else 2,000
    deadline: float | None = None  # None: CTXBUDGET_HOOK_DEADLINE, else HOOK_DEADLINE

    @property
    def time_limit(self) -> float:
        """Seconds the hook has to answer (``HOOK_DEADLINE`` unless set; 0: no limit)."""
        if self.deadline is not None:
            return max(0.0, self.deadline)
        try:
            return max(0.0, float(os.environ.get(DEADLINE_ENV, "") or HOOK_DEADLINE))
        except ValueError:
            return HOOK_DEADLINE

    @property
    def reinject_budget(self) -> int:
        """Tokens put back after Claude Code compacts (0: nothing is put back)."""
        from ..compaction.reinject import DEFAULT_REINJECT_TOKENS

        if self.reinject_tokens is not None:
            return max(0, self.reinject_tokens)
        try:
            return max(0, int(os.environ.get(REINJECT_ENV, "").replace(",", "").replace("_", "")))
        except ValueError:
            return DEFAULT_REINJECT_TOKENS

    @property
    def fails_open(self) -> bool:
        if self.fail_open is not None:
            return self.fail_open
        return os.environ.get(FAIL_OPEN_ENV, "").strip().lower() not in ("", "0", "false", "no")


@dataclass(slots=True, frozen=True)
class HookResult:
    """What the hook answers Claude Code: exit code, stdout, stderr."""

    exit_code: int = EXIT_OK
    stdout: str = ""
    stderr: str = ""


def debug_enabled() -> bool:
    return os.environ.get("CTXBUDGET_DEBUG", "") not in ("", "0")


def failed(what: str, exc: BaseException | None = None) -> HookResult:
    """Exit 0 whatever went wrong: a broken hook must not stop the user's work."""
    if not debug_enabled():
        return HookResult()
    detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
    return HookResult(stderr=f"ctxbudget hook: {what}{detail} (ignored)\n")


def normalize_event(name: str) -> str:
    """``PreToolUse``, ``pre_tool_use`` and ``pre-tool-use`` all name one event."""
    return name.replace("-", "").replace("_", "").lower()


class HookInputError(ValueError):
    """The hook input cannot be used (too big, too deep, not JSON, not an object)."""


def parse_hook_input(raw: str | bytes) -> dict[str, Any]:
    """The hook JSON object, read defensively: a size and a nesting limit before the
    parser sees it. Raises ``HookInputError`` with a one-line reason."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > MAX_STDIN_BYTES:
        raise HookInputError(f"the hook input is larger than {MAX_STDIN_BYTES >> 20} MB")
    if _too_deep(data, MAX_JSON_DEPTH):
        raise HookInputError(f"the hook input nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        payload = json.loads(data.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError) as exc:
        raise HookInputError(f"the hook input is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise HookInputError("the hook input is not a JSON object")
    return payload


def _too_deep(data: bytes, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit`` (a cheap scan of the
    bracket and quote bytes only)."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def with_notes(result: HookResult, notes: list[str]) -> HookResult:
    """``result`` with the notes on stderr; exit 0 becomes 1 (non-blocking, shown)."""
    notes = [n for n in notes if n]
    if not notes:
        return result
    code = EXIT_ERROR if result.exit_code == EXIT_OK else result.exit_code
    return HookResult(code, result.stdout, result.stderr + "".join(notes))
