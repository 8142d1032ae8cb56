"""A small Claude Code session, written record by record, for the one-figure and
live-estimate tests: a user request, tool rounds whose usage grows by about what the
transcript adds, a hidden system prompt and tools (what usage counts beyond the
transcript), and optionally Claude Code's own compaction at the end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ctxbudget.tokens.counters import counter_name_for_model, get_counter

# The provider's count of a block: about 6% over the local counter, plus its framing.
_COUNTER = get_counter(counter_name_for_model(MODEL := "claude-sonnet-4-5-20250929"))
SESSION_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
START = datetime(2025, 11, 3, 9, 0, 0, tzinfo=UTC)


def _when(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class SessionWriter:
    """Appends Claude Code records; each response carries a usage that grows by about
    what came since (the local count and 6%, 30 of framing a block)."""

    def __init__(self, overhead: int) -> None:
        self.records: list[dict[str, Any]] = []
        self.context = overhead  # what the next request sends, as the provider counts it
        self.parent: str | None = None
        self.seconds = 0.0
        self.calls = 0

    def _add(self, rtype: str, message: dict[str, Any] | None, **extra: Any) -> None:
        uuid = f"r{len(self.records):03d}"
        record: dict[str, Any] = {
            "parentUuid": self.parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": "/home/dev/shop",
            "sessionId": SESSION_ID,
            "version": "2.0.50",
            "gitBranch": "main",
            "type": rtype,
            "uuid": uuid,
            "timestamp": _when(self.seconds),
            **extra,
        }
        if message is not None:
            record["message"] = message
        self.records.append(record)
        self.parent = uuid

    def _grow(self, text: str) -> None:
        self.context += round(1.06 * _COUNTER.count(text)) + 30

    def user(self, text: str, *, after: float = 0.0, **extra: Any) -> None:
        self.seconds += after
        self._add("user", {"role": "user", "content": text}, **extra)
        self._grow(text)

    def tool_result(self, tool_id: str, text: str, *, after: float = 0.0) -> None:
        self.seconds += after
        content = [{"type": "tool_result", "tool_use_id": tool_id, "content": text}]
        self._add("user", {"role": "user", "content": content})
        self._grow(text)

    def respond(self, block: dict[str, Any], *, after: float = 5.0, output: int = 60) -> None:
        """One API call: its usage reports the context sent, then its response adds."""
        self.seconds += after
        self.calls += 1
        usage = {
            "input_tokens": 6,
            "cache_creation_input_tokens": 800,
            "cache_read_input_tokens": self.context - 806,
            "output_tokens": output,
        }
        message = {
            "id": f"msg_{self.calls:03d}",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [block],
            "usage": usage,
        }
        self._add("assistant", message)
        self.context += output + 30

    def compact_boundary(self, summary: str) -> None:
        """Claude Code's own /compact: a boundary, then its summary as a new root."""
        self.seconds += 30
        self.parent = None
        self._add(
            "system",
            None,
            subtype="compact_boundary",
            content="Conversation compacted",
            compactMetadata={"trigger": "manual", "preTokens": self.context},
        )
        self.user(summary, isCompactSummary=True)

    def write(
        self, path: Path, *, ensure_ascii: bool = True, session_id: str | None = None
    ) -> Path:
        """The records as JSON Lines; ``ensure_ascii=False`` writes non-ASCII characters
        raw, as Claude Code (JavaScript's JSON.stringify) does; ``session_id`` in place of
        ``SESSION_ID`` (Claude Code names the file by it)."""
        records = (
            [{**r, "sessionId": session_id} for r in self.records] if session_id else self.records
        )
        lines = (json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in records)
        path.write_text("".join(lines), encoding="utf-8")
        return path


def file_text(n: int, lines: int) -> str:
    return "".join(
        f"{i:>6}\u2192def handler_{n}_{i}(order):\n    return order.total * {i}\n"
        for i in range(lines)
    )


def shop_session(rounds: int = 8, *, overhead: int = 12_000, gap: float = 20.0) -> SessionWriter:
    """A request, then ``rounds`` tool rounds (a Read and its result, ``gap`` seconds
    apart), then the answer."""
    w = SessionWriter(overhead)
    w.user("Fix the rounding bug in shop/billing.py (REQ-114) and keep the API stable.")
    for n in range(rounds):
        tool_id = f"toolu_{n:02d}"
        block = {
            "type": "tool_use",
            "id": tool_id,
            "name": "Read",
            "input": {"file_path": f"/home/dev/shop/billing_{n}.py"},
        }
        w.respond(block, after=gap / 4)
        w.tool_result(tool_id, file_text(n, 20 + 7 * (n % 4)), after=gap * 3 / 4)
    w.respond({"type": "text", "text": "Fixed: totals are rounded half-even (REQ-114)."})
    return w
