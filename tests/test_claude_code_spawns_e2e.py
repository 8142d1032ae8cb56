"""A spawn's room in the real Claude Code: held until its result is in the main context.

Claude Code 2.1.328 runs SubagentStop, then PostToolUse, and writes the Agent call's
tool_result with the main agent's next request. The PreToolUse hook of the next spawn
finds the first spawn's result in the transcript and confirms its reservation then.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from fake_anthropic import (
    CLAUDE,
    FakeAnthropic,
    Reply,
    ToolUse,
    Usage,
    converse,
    is_title_request,
)

pytestmark = pytest.mark.skipif(
    not CLAUDE.exists(), reason=f"Claude Code is not installed at {CLAUDE} (npm ci --prefix .e2e)"
)


def test_a_spawns_room_is_held_until_its_result_arrives(tmp_path: Path) -> None:
    home, cwd, db = tmp_path / "home", tmp_path / "proj", tmp_path / "store.db"
    cwd.mkdir(parents=True)
    (home / ".claude").mkdir(parents=True)
    run = f"CTXBUDGET_STORE=sqlite:///{db} {sys.executable} -m ctxbudget.cli hook"
    hooks = {
        event: [{"matcher": "*", "hooks": [{"type": "command", "command": f"{run} {name}"}]}]
        for event, name in (
            ("SessionStart", "session-start"),
            ("PreToolUse", "pre-tool-use"),
            ("SubagentStop", "subagent-stop"),
        )
    }
    (home / ".claude" / "settings.json").write_text(json.dumps({"hooks": hooks}))
    spawns = [
        ToolUse("Agent", {"description": f"part {n}", "prompt": f"Review part {n}."})
        for n in (1, 2)
    ]
    asked = [0]

    def script(body: dict[str, Any], index: int) -> Reply:
        if is_title_request(body):
            return Reply(text="Title")
        first = json.dumps(body.get("messages", [{}])[0])
        if "Review part" in first and "two parts" not in first:  # a sub-agent's request
            return Reply(text="Looks fine.", usage=Usage(input_tokens=3_000, output_tokens=20))
        if asked[0] < len(spawns):
            asked[0] += 1
            return Reply(tool_uses=(spawns[asked[0] - 1],), usage=Usage(input_tokens=5_000))
        return Reply(text="Done.", usage=Usage(input_tokens=8_000, output_tokens=5))

    with FakeAnthropic(script) as api:
        converse(api, home, cwd, ["Please get the design reviewed in two parts."])
    with sqlite3.connect(db) as conn:
        states = dict(conn.execute("SELECT key, state FROM reservations").fetchall())
    # the first: its result came with the request that asked for the second spawn
    assert states == {spawns[0].id: "confirmed", spawns[1].id: "live"}
