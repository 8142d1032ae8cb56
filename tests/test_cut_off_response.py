"""A response cut off while it streamed (the stream or the process ended) keeps the
first usage Claude Code wrote for it, output 1: the next request carries all of its
text, which every figure counts like any other item, not as one reported token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxbudget import Tracker
from ctxbudget.accounting import replay_history
from ctxbudget.claude_code.statusline import transcript_figure
from ctxbudget.claude_code.transcript_read import read_transcript
from ctxbudget.tokens.framing import response_reported

# a plan the model was writing when its stream ended (about 500 tokens)
PLAN = " ".join(
    f"Step {n}: read src/module_{n}.py, move the parser into parse_{n}(), and test it."
    for n in range(20)
)


def _record(uuid: str, parent: str | None, kind: str, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "parentUuid": parent,
        "isSidechain": False,
        "userType": "external",
        "cwd": "/home/dev/proj",
        "sessionId": "cut-off-session",
        "version": "1.0.56",
        "uuid": uuid,
        "timestamp": "2025-07-20T10:00:00.000Z",
        "type": kind,
        "message": message,
    }


def _user(uuid: str, parent: str | None, text: str) -> dict[str, Any]:
    return _record(uuid, parent, "user", {"role": "user", "content": text})


def _assistant(uuid: str, parent: str, mid: str, text: str, context: int, output: int) -> dict:
    usage = {
        "input_tokens": 4,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": context - 304,
        "output_tokens": output,
    }
    message = {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [{"type": "text", "text": text}],
        "stop_reason": None,
        "usage": usage,
    }
    return _record(uuid, parent, "assistant", message)


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _session(output: int) -> list[dict[str, Any]]:
    return [
        _user("u1", None, "Plan the parser refactoring."),
        _assistant("a1", "u1", "msg_1", PLAN, 20_000, output),
        _user("u2", "a1", "continue"),
    ]


def test_the_rule() -> None:
    assert response_reported(380, 400)  # a final count (the tokenizers differ a little)
    assert response_reported(1, 1)  # a one-token answer
    assert not response_reported(1, 400)  # the first figure of a response cut off
    assert not response_reported(0, 400)  # no output reported


@pytest.mark.parametrize("output", [1, 420])
def test_the_status_line_and_the_session_count_a_cut_off_response_alike(
    tmp_path: Path, output: int
) -> None:
    path = _write(tmp_path / "cut-off-session.jsonl", _session(output))
    session = Tracker(store="memory://").load(path)
    used = session.used_tokens
    state, _ = read_transcript(str(path))
    assert transcript_figure(state).used == used
    plan = next(i for i in session.items if i.text == PLAN)
    calibration = session.calibration
    if output == 1:  # the plan's text, counted: not one token
        assert used >= 20_000 + calibration.per_token * session.count(plan)
    else:  # the final count stands: only the plan's framing and "continue" estimated
        assert used < 20_000 + output + 2 * calibration.per_item + 10


def test_the_next_call_is_predicted_with_the_cut_off_text(tmp_path: Path) -> None:
    records = _session(1)
    tracker = Tracker(store="memory://")
    probe = tracker.load(_write(tmp_path / "probe.jsonl", records))
    plan = next(i for i in probe.items if i.text == PLAN)
    # the provider's next context holds the plan and "continue", as they are counted
    grown = 20_000 + round(probe.count(plan) * 1.0) + 2 * 26
    records.append(_assistant("a2", "u2", "msg_2", "Step 0 first.", grown, 8))
    session = tracker.load(_write(tmp_path / "cut-off-session.jsonl", records))
    transcript = session.transcript
    assert transcript is not None and len(transcript.calls) == 2
    points, _ = replay_history(transcript.calls, transcript.history_items, session.count)
    assert abs(points[1].error) < 0.005  # was the plan's ~500 tokens short (2.5%)
