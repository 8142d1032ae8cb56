"""``ctxbudget statusline``: Claude Code's status line JSON in, one line out, always."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from ctxbudget.accounting import Calibration
from ctxbudget.claude_code import statusline, statusline_format, transcript_read
from ctxbudget.claude_code.statusline import render_statusline, transcript_figure
from ctxbudget.claude_code.statusline_format import DEFAULT_FORMAT, default_line, format_line
from ctxbudget.claude_code.transcript_read import read_transcript
from ctxbudget.cli import statusline as cli_statusline
from ctxbudget.model import Level
from ctxbudget.policy import Policy
from ctxbudget.render import status_line
from ctxbudget.status import Breakdown, Status, build_status
from ctxbudget.tokens.counters import counter_name_for_model

SONNET = {"id": "claude-sonnet-4-20250514", "display_name": "Sonnet 4"}
SESSION = "5d3f6a0e-0000-4000-8000-000000000001"
SRC = Path(__file__).resolve().parent.parent / "src"

# The fixture's figure: its last usage, the response's output and the estimate of what
# came after (claude-estimate, the counter for Claude models).
FIGURE = "141,949"
LEFT_OF_160K = f"{160_000 - int(FIGURE.replace(',', '')):,}"


# -- fixtures: a small Claude Code transcript, written record by record ---------------


def _base(uuid: str, parent: str | None, *, sidechain: bool = False) -> dict[str, Any]:
    return {
        "parentUuid": parent,
        "isSidechain": sidechain,
        "userType": "external",
        "cwd": "/home/dev/proj",
        "sessionId": SESSION,
        "version": "1.0.80",
        "uuid": uuid,
        "timestamp": "2025-08-01T10:00:00.000Z",
    }


def user(uuid: str, parent: str | None, content: Any, **extra: Any) -> dict[str, Any]:
    sidechain = extra.pop("sidechain", False)
    return {
        **_base(uuid, parent, sidechain=sidechain),
        "type": "user",
        "message": {"role": "user", "content": content},
        **extra,
    }


def result(uuid: str, parent: str, tool_id: str, text: str) -> dict[str, Any]:
    return user(uuid, parent, [{"type": "tool_result", "tool_use_id": tool_id, "content": text}])


def assistant(
    uuid: str,
    parent: str | None,
    mid: str,
    block: dict[str, Any],
    context: int,
    output: int,
    *,
    sidechain: bool = False,
) -> dict[str, Any]:
    return {
        **_base(uuid, parent, sidechain=sidechain),
        "type": "assistant",
        "message": {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-20250514",
            "content": [block],
            "usage": {
                "input_tokens": 4,
                "cache_creation_input_tokens": 500,
                "cache_read_input_tokens": context - 504,
                "output_tokens": output,
            },
        },
    }


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def tool(tool_id: str, name: str, **inp: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": inp}


def boundary(uuid: str, parent: str | None) -> dict[str, Any]:
    return {
        **_base(uuid, parent),
        "type": "system",
        "subtype": "compact_boundary",
        "content": "Conversation compacted",
        "compactMetadata": {"trigger": "auto", "preTokens": 171000},
    }


FILE_TEXT = "".join(f"{n:>6}\u2192def f{n}(x):\n        return x * {n}\n" for n in range(40))


def session_records(last_context: int = 141_905) -> list[dict[str, Any]]:
    """Three main-thread calls (the first split over two records), a sub-agent with a
    bigger context of its own, and the last call's response at the end. The context
    grows by about what was added, as in real sessions."""
    return [
        user("u1", None, "Fix the failing test in src/app.py; keep the API stable."),
        assistant("a1", "u1", "msg_1", text("I'll read the file."), 141_000, 12),
        assistant("a1b", "a1", "msg_1", tool("t1", "Read", file_path="src/app.py"), 141_000, 61),
        result("r1", "a1b", "t1", FILE_TEXT),
        assistant("a2", "r1", "msg_2", tool("t2", "Task", prompt="Review it"), 141_800, 40),
        user("s1", None, "Review it", sidechain=True),
        assistant("s2", "s1", "msg_S", text("Looks fine."), 190_000, 9, sidechain=True),
        result("r2", "a2", "t2", "Looks fine."),
        assistant("a3", "r2", "msg_3", text("Fixed: add() returns a + b."), last_context, 25),
    ]


def write(path: Path, records: list[dict[str, Any]], *, mode: str = "w") -> Path:
    with path.open(mode, encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path


def stdin_json(path: Path | str | None = None, **extra: Any) -> str:
    data: dict[str, Any] = {
        "hook_event_name": "Status",
        "session_id": SESSION,
        "cwd": "/home/dev/proj",
        "model": SONNET,
        "workspace": {"current_dir": "/home/dev/proj", "project_dir": "/home/dev/proj"},
        "version": "1.0.80",
        "output_style": {"name": "default"},
        "cost": {"total_cost_usd": 0.42, "total_duration_ms": 180000},
    }
    if path is not None:
        data["transcript_path"] = str(path)
    data.update(extra)
    return json.dumps(data)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(cache))
    monkeypatch.delenv("CTXBUDGET_STATUSLINE_FORMAT", raising=False)
    return cache


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    return write(tmp_path / f"{SESSION}.jsonl", session_records())


def run_main(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data: str | bytes,
    *argv: str,
) -> tuple[int, str, str]:
    raw = data.encode() if isinstance(data, str) else data
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    code = cli_statusline.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def tokens_used(capsys: pytest.CaptureFixture[str], path: Path | str) -> int:
    """``ctxbudget tokens PATH --json``'s used_tokens, run in-process."""
    code, out, err = run_cli(capsys, "--store", "memory://", "tokens", str(path), "--json")
    assert code == 0, err
    return int(json.loads(out)["used_tokens"])


def cached_state(cache: Path) -> dict[str, Any]:
    (file,) = (cache / "statusline").glob("*.json")
    data: dict[str, Any] = json.loads(file.read_text())
    return data


# -- where the figure comes from -------------------------------------------------------


def test_context_window_is_used_first(
    transcript: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    context_window = {
        "total_input_tokens": 15234,
        "total_output_tokens": 4521,
        "context_window_size": 200_000,
        "used_percentage": 71,
        "remaining_percentage": 29,
        "current_usage": {
            "input_tokens": 2_500,
            "output_tokens": 1_200,
            "cache_creation_input_tokens": 10_000,
            "cache_read_input_tokens": 130_000,
        },
    }
    code, out, err = run_main(
        monkeypatch,
        capsys,
        stdin_json(transcript, context_window=context_window),
        "--window",
        "50000",
    )
    assert code == 0 and err == ""
    # input + cache creation + cache read + the response's output (the next request's
    # context), in Claude Code's window (not --window)
    assert out == "Sonnet 4 | Tokens: 143,700/200,000 (71%) | ████████░░ | Normal\n"


def test_context_window_size_without_usage_reads_the_transcript(transcript: Path) -> None:
    cw = {"context_window_size": 1_000_000, "current_usage": None, "used_percentage": None}
    line = render_statusline(stdin_json(transcript, context_window=cw))
    assert "/1,000,000 (14%)" in line  # the transcript's figure in Claude Code's window


def test_used_percentage_when_nothing_else(tmp_path: Path) -> None:
    cw = {"context_window_size": 200_000, "current_usage": None, "used_percentage": 40}
    line = render_statusline(stdin_json(tmp_path / "missing.jsonl", context_window=cw))
    assert line.startswith("Sonnet 4 | Tokens: 80,000/200,000 (40%)")


def test_transcript_path(transcript: Path) -> None:
    line = render_statusline(stdin_json(transcript))
    # last main-thread usage + its reported output + framing of its one block
    assert line == f"Sonnet 4 | Tokens: {FIGURE}/200,000 (70%) | ████████░░ | Normal"


def test_usage_counted_once_per_message_id(tmp_path: Path) -> None:
    # msg_1's two records both repeat usage: one call, output from the last record.
    path = write(tmp_path / "t.jsonl", session_records()[:3])
    state, _ = read_transcript(str(path))
    assert state.anchor is not None
    assert state.anchor[:4] == ["msg_1", 141_000, 61, 2]
    framing = Calibration.for_counter(False, counter_name_for_model("claude-sonnet-4")).per_item
    assert transcript_figure(state).used == 141_000 + 61 + round(2 * framing)


def test_a_first_read_past_a_megabyte_reads_as_a_small_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first read of over a megabyte parses with the Claude Code reader's faster
    parser (the status line's few appended lines do not pay for its import): the same
    records, the same figure."""
    records = session_records()
    big = "x" * 300_000
    for n in range(4):  # a long tool result now and then: past a megabyte in all
        records.insert(3, result(f"big{n}", "a1", f"t{n}", big))
    path = write(tmp_path / "t.jsonl", records)
    assert path.stat().st_size > transcript_read._FAST_JSON_FROM
    from ctxbudget.sources import problems

    fast_reads: list[int] = []
    javascript_loads = problems.javascript_loads

    def counted() -> Any:
        fast_reads.append(1)
        return javascript_loads()

    monkeypatch.setattr(problems, "javascript_loads", counted)
    fast, _ = read_transcript(str(path))
    assert fast_reads == [1]
    monkeypatch.setattr(transcript_read, "_FAST_JSON_FROM", path.stat().st_size + 1)
    plain, _ = read_transcript(str(path))
    assert fast_reads == [1]
    figures = [transcript_figure(state) for state in (fast, plain)]
    assert [(f.used, f.anchored, f.estimated) for f in figures] == [
        (figures[1].used, True, figures[1].estimated)
    ] * 2
    assert (fast.anchor, fast.since_items, fast.malformed) == (
        plain.anchor,
        plain.since_items,
        plain.malformed,
    )


@pytest.mark.parametrize("fast", [False, True])
def test_a_line_nested_too_deeply_is_one_malformed_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    """A line too deep for the JSON parser (it raises RecursionError, not ValueError)
    is a malformed line, by either parser: the figure of the rest stands."""
    path = write(tmp_path / "t.jsonl", session_records())
    expected = transcript_figure(read_transcript(str(path))[0]).used
    with path.open("a") as f:
        f.write("[" * 200_000 + "]" * 200_000 + "\n")
    if fast:
        monkeypatch.setattr(transcript_read, "_FAST_JSON_FROM", 0)
    state, _ = read_transcript(str(path))
    assert state.malformed == 1
    assert transcript_figure(state).used == expected


def test_sidechain_usage_is_ignored(tmp_path: Path) -> None:
    records = session_records(last_context=50_000)
    records.append(assistant("s3", "s2", "msg_S2", text("More."), 195_000, 5, sidechain=True))
    state, _ = read_transcript(str(write(tmp_path / "t.jsonl", records)))
    assert state.anchor is not None and state.anchor[:3] == ["msg_3", 50_000, 25]
    assert state.since_items == 0  # sub-agent records add nothing to the main window


def test_compaction_boundary_resets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [
        *session_records(),
        boundary("b1", "a3"),
        user(
            "c1",
            "b1",
            "This session is being continued. Summary: fixed add().",
            isCompactSummary=True,
        ),
    ]
    path = write(tmp_path / "t.jsonl", records)
    before = render_statusline(stdin_json(path))
    state, _ = read_transcript(str(path))
    assert state.anchor is None and state.since_items == 1
    figure = transcript_figure(state)
    # no usage since the compaction: what the earlier calls counted beyond their
    # transcript (about 140,900 here) is estimated to be there still, plus the summary
    assert figure.used is not None and not figure.anchored
    assert 140_000 < figure.used < 141_905
    assert figure.used == tokens_used(capsys, path)
    assert "(70%)" in before and "Normal" in before
    # the first usage after the compaction anchors again: not learnt from (no anchor)
    write(path, [assistant("a4", "c1", "msg_4", text("Continuing."), 21_000, 8)], mode="a")
    state, _ = read_transcript(str(path))
    per_item = state.new_calibration().per_item
    expected = 21_000 + 8 + round(per_item)
    assert f"Tokens: {expected:,}/200,000 (10%)" in render_statusline(stdin_json(path))
    assert expected == tokens_used(capsys, path)


def used_in(line: str) -> int:
    m = re.search(r"Tokens: ([\d,]+)/", line)
    assert m, line
    return int(m[1].replace(",", ""))


def test_appended_records_are_read_incrementally(
    tmp_path: Path,
    _cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path / "t.jsonl", session_records(last_context=100_000))
    first = render_statusline(stdin_json(path))
    assert "(50%)" in first and used_in(first) == tokens_used(capsys, path)
    offset = cached_state(_cache)["transcript"]["offset"]
    assert offset == path.stat().st_size

    seen: list[str] = []
    add = transcript_read.Tail.add

    def spy(self: Any, record: dict[str, Any]) -> None:
        seen.append(record["uuid"])
        add(self, record)

    monkeypatch.setattr(transcript_read.Tail, "add", spy)
    # A tool result after the response: estimated locally on top of the anchor.
    write(path, [result("r3", "a3", "t9", FILE_TEXT)], mode="a")
    second = render_statusline(stdin_json(path))
    assert seen == ["r3"]  # only the appended tail was read
    assert used_in(first) + 400 < used_in(second) < used_in(first) + 1_500
    assert used_in(second) == tokens_used(capsys, path)
    assert cached_state(_cache)["transcript"]["offset"] == path.stat().st_size > offset

    # A line still being written is left for the next call ...
    line = json.dumps(assistant("a4", "r3", "msg_4", text("Next."), 100_900, 10))
    with path.open("a", encoding="utf-8") as f:
        f.write(line[:40])
    seen.clear()
    assert render_statusline(stdin_json(path)) == second
    assert seen == []
    # ... and read once complete: a new call, learnt from without reading the rest again.
    samples = len(cached_state(_cache)["transcript"]["calibration"][2])
    with path.open("a", encoding="utf-8") as f:
        f.write(line[40:] + "\n")
    third = render_statusline(stdin_json(path))
    assert 100_900 < used_in(third) < 101_000 and used_in(third) == tokens_used(capsys, path)
    assert seen == ["a4"]
    assert len(cached_state(_cache)["transcript"]["calibration"][2]) == samples + 1


def test_truncated_or_replaced_transcript_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", session_records(last_context=150_000))
    assert "(75%)" in render_statusline(stdin_json(path))
    write(path, session_records()[:3])  # shorter: a new file under the same name
    state, _ = read_transcript(str(path))
    assert f"Tokens: {transcript_figure(state).used:,}/200,000 (70%)" in render_statusline(
        stdin_json(path)
    )


def test_unchanged_transcript_is_not_read(
    transcript: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = render_statusline(stdin_json(transcript))

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("read_transcript called")

    original = statusline.read_transcript
    monkeypatch.setattr(statusline, "read_transcript", fail)
    assert render_statusline(stdin_json(transcript)) == first
    # a different format is drawn again, from the cached state
    monkeypatch.setattr(statusline, "read_transcript", original)
    assert render_statusline(stdin_json(transcript), fmt="{percent}") == "70"


def test_cache_that_cannot_be_written(transcript: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = transcript.parent / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(blocker / "sub"))
    assert render_statusline(stdin_json(transcript)).startswith(f"Sonnet 4 | Tokens: {FIGURE}/")


def test_corrupt_cache_is_ignored(transcript: Path, _cache: Path) -> None:
    first = render_statusline(stdin_json(transcript))
    (file,) = (_cache / "statusline").glob("*.json")
    data = json.loads(file.read_text())
    data["memo"] = None
    data["transcript"]["head"] = "not hex"
    file.write_text(json.dumps(data))
    assert render_statusline(stdin_json(transcript)) == first
    file.write_text("{ not json")
    assert render_statusline(stdin_json(transcript)) == first


# -- bad input: still a line, exit 0 ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("{not json", "Tokens: ?/200,000"),
        ("", "Tokens: ?/200,000"),
        ("[1, 2]", "Tokens: ?/200,000"),
        (b"\xff\xfe\x00garbage", "Tokens: ?/200,000"),
        (stdin_json("/nonexistent/t.jsonl"), "Sonnet 4 | Tokens: ?/200,000"),
        (
            json.dumps(
                {
                    "model": {"id": "mystery-9", "display_name": "Mystery"},
                    "transcript_path": None,
                    "context_window": "soon",
                }
            ),
            "Mystery | Tokens: ?/200,000",
        ),
    ],
)
def test_bad_input_still_prints_a_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data: str | bytes,
    expected: str,
) -> None:
    code, out, err = run_main(monkeypatch, capsys, data)
    assert code == 0
    assert out == expected + "\n"
    assert err == ""


def test_unknown_model_uses_the_default_window(transcript: Path) -> None:
    line = render_statusline(
        stdin_json(transcript, model={"id": "some-new-model", "display_name": "New"})
    )
    assert line.startswith(f"New | Tokens: {FIGURE}/200,000 (70%)")


def test_a_directory_or_a_non_transcript(tmp_path: Path) -> None:
    assert render_statusline(stdin_json(tmp_path)).endswith("Tokens: ?/200,000")
    messages = tmp_path / "m.json"
    messages.write_text(json.dumps([{"role": "user", "content": "hi"}], indent=2))
    assert render_statusline(stdin_json(messages)).endswith("Tokens: ?/200,000")


def test_bad_flags_are_ignored(
    transcript: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(
        monkeypatch,
        capsys,
        stdin_json(transcript),
        "--window",
        "lots",
        "--color",
        "sometimes",
        "--bogus",
        "--policy",
        "/no/such.toml",
    )
    assert code == 0 and out.startswith(f"Sonnet 4 | Tokens: {FIGURE}/200,000 (70%)")


def test_internal_errors_are_caught(
    transcript: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(statusline, "build", boom)
    code, out, err = run_main(monkeypatch, capsys, stdin_json(transcript))
    assert (code, out, err) == (0, "Sonnet 4 | Tokens: ?\n", "")
    monkeypatch.setenv("CTXBUDGET_DEBUG", "1")
    code, out, err = run_main(monkeypatch, capsys, stdin_json(transcript))
    assert code == 0 and "RuntimeError: bug" in err and "Traceback" not in err


# -- what the line says ----------------------------------------------------------------


def _status(percent: float, window: int = 200_000, policy: Policy | None = None) -> Status:
    policy = policy or Policy(window=window)
    return build_status(
        used_tokens=round(window * percent / 100),
        policy=policy,
        breakdown=Breakdown(),
        anchored=True,
        reported_tokens=None,
        estimated_since_report=0,
        counter="estimate",
    )


@pytest.mark.parametrize(
    ("percent", "action"),
    [
        (10, ""),
        (74.9, ""),
        (80, " · compact soon"),
        (92, " · compact now"),
        (97, " · new agents blocked"),
    ],
)
def test_action_from_the_warning_level(percent: float, action: str) -> None:
    status = _status(percent)
    line = default_line(status, model="Opus", window=200_000)
    assert line.endswith(action or "Normal")
    assert line == status_line(status, prefix="Opus") + action


@pytest.mark.parametrize("percent", [0, 0.4, 0.5, 12.5, 70.5, 71.25, 74.99, 89.5, 94.6, 99.5, 120])
def test_default_format_is_the_render_status_line(percent: float) -> None:
    """The documented default format gives exactly what ``render.status_line`` prints."""
    status = _status(percent)
    for color in (False, True):
        drawn = format_line(
            DEFAULT_FORMAT,
            status,
            model="Sonnet 4",
            session_id=None,
            window=200_000,
            color=color,
        )
        assert drawn == default_line(status, model="Sonnet 4", window=200_000, color=color)


def test_format_placeholders(transcript: Path) -> None:
    fmt = (
        "[{session}] {model}: {percent}% of {max}, {used} used, {remaining} left {bar} "
        "{level}{action} {nope} {"
    )
    line = render_statusline(stdin_json(transcript), fmt=fmt, window=160_000)
    assert line == (
        f"[5d3f6a0e] Sonnet 4: 88% of 160,000, {FIGURE} used, {LEFT_OF_160K} left █████████░ "
        "⚠️ Warning · compact soon {nope} {"
    )


def test_format_from_the_environment(transcript: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXBUDGET_STATUSLINE_FORMAT", "ctx {percent}%{action}")
    assert render_statusline(stdin_json(transcript)) == "ctx 70%"
    assert render_statusline(stdin_json(transcript), fmt="{level}") == "Normal"


def test_policy_file_and_window(transcript: Path, tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(
        "[policy]\nwindow = 150000\n[policy.thresholds]\nwarning = 50\n"
        "critical = 60\nblocked = 99\n"
    )
    line = render_statusline(stdin_json(transcript), policy_file=str(policy))
    assert line.endswith(f"Tokens: {FIGURE}/150,000 (94%) | ██████████ | 🔴 Critical · compact now")
    # --window over the file's window; Claude Code's context_window_size over both
    line = render_statusline(stdin_json(transcript), policy_file=str(policy), window=300_000)
    assert "/300,000 (47%)" in line and line.endswith("Normal")
    cw = {"context_window_size": 1_000_000, "current_usage": None}
    line = render_statusline(stdin_json(transcript, context_window=cw), window=300_000)
    assert "/1,000,000 (14%)" in line


def test_window_by_model_when_nothing_else(transcript: Path) -> None:
    gpt = {"id": "gpt-4o", "display_name": "GPT-4o"}
    assert "/128,000 (" in render_statusline(stdin_json(transcript, model=gpt))


@pytest.mark.parametrize(("mode", "ansi"), [("always", True), ("never", False), ("auto", False)])
def test_colour(
    transcript: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    ansi: bool,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    code, out, _ = run_main(monkeypatch, capsys, stdin_json(transcript), "--color", mode)
    assert code == 0
    assert ("\x1b[" in out) is ansi  # auto: stdout is not a terminal here
    if ansi:
        assert "\x1b[32m████████░░\x1b[0m" in out
        assert re.sub(r"\x1b\[[\d;]*m", "", out).startswith(f"Sonnet 4 | Tokens: {FIGURE}/")


# -- the same figure and level as `ctxbudget tokens` ------------------------------------


def _tokens_line(capsys: pytest.CaptureFixture[str], path: Path, window: int) -> str:
    code, out, err = run_cli(
        capsys, "--store", "memory://", "tokens", str(path), "--window", str(window)
    )
    assert code == 0, err
    return out.splitlines()[0]


def calibrating_records(calls: int = 12, ratio: float = 1.2) -> list[dict[str, Any]]:
    """``calls`` main-thread calls, each followed by a tool result of its own size; each
    call's context is the previous one's plus its output plus ``ratio`` × the local
    count of the tool result, so the correction learnt differs from the prior."""
    from ctxbudget.tokens.counters import counter_for_model

    count = counter_for_model(SONNET["id"]).count
    records = [user("u0", None, "Refactor the parser, one part at a time.")]
    parent, context = "u0", 20_000
    for i in range(calls):
        output = 40 + i
        records.append(
            assistant(f"a{i}", parent, f"msg_{i}", text(f"Reading part {i}."), context, output)
        )
        body = "".join(
            f"{n:>5}\u2192    value_{n} = table[{n * i}] + {i}\n" for n in range(8 + 25 * i)
        )
        records.append(result(f"r{i}", f"a{i}", f"t{i}", body))
        parent = f"r{i}"
        context += output + round(ratio * count(body))
    return records


def figure_paths(transcript: Path, fixtures: Path) -> list[Path]:
    """The fixture transcripts with several calls: the session above, the shipped
    fixtures, the session with a tool result and a prompt after its last response, and
    one whose learnt correction is far from the prior."""
    extra = [result("r9", "a3", "t9", FILE_TEXT), user("u9", "r9", "Now run the tests.")]
    return [
        transcript,
        fixtures / "claude_code_small.jsonl",
        fixtures / "claude_code_compacted.jsonl",
        write(transcript.parent / "tail.jsonl", session_records() + extra),
        write(transcript.parent / "calibrating.jsonl", calibrating_records()),
    ]


_LINE = re.compile(r"Tokens: ([\d,]+)/([\d,]+) \((\d+)%\) \| (\S+) \| ([^|·]+?)(?: ·|$)")


def test_same_figure_as_tokens(
    capsys: pytest.CaptureFixture[str], transcript: Path, fixtures: Path
) -> None:
    for path in figure_paths(transcript, fixtures):
        expected = tokens_used(capsys, path)
        assert used_in(render_statusline(stdin_json(path))) == expected, path.name
        # and from the cache, after the first call
        assert used_in(render_statusline(stdin_json(path), fmt="Tokens: {used}/")) == expected


def test_calibration_is_learnt_as_tokens_learns_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from ctxbudget.accounting import Calibration, replay_history
    from ctxbudget.sources import load_source
    from ctxbudget.tokens.counters import counter_for_model

    path = write(tmp_path / "t.jsonl", calibrating_records())
    state, _ = read_transcript(str(path))
    learnt = state.new_calibration()
    prior = Calibration.for_counter(False, counter_name_for_model("claude-sonnet-4"))
    assert len(learnt.samples) == 11  # every call but the first has an anchor
    assert learnt.per_token > prior.per_token + 0.05
    # the figure tokens prints needs the learnt correction: the prior misses it
    expected = tokens_used(capsys, path)
    assert state.used_tokens(learnt) == expected != state.used_tokens(prior)
    # the same samples and fit as replay_history over the reader's transcript
    source = load_source(path)
    count = counter_for_model(source.model).count
    _, replayed = replay_history(
        source.calls,
        source.history_items,
        lambda item: item.tokens if item.tokens is not None else count(item.text),
        Calibration.for_counter(False, counter_for_model(source.model).name),
    )
    assert (learnt.per_token, learnt.per_item, learnt.samples) == (
        replayed.per_token,
        replayed.per_item,
        replayed.samples,
    )


def test_calibration_is_learnt_record_by_record(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, _cache: Path
) -> None:
    """Appended a record at a time, with the cache: each line equals a full read, and
    tokens' figure."""
    records = calibrating_records(calls=6)
    path = tmp_path / "t.jsonl"
    path.write_text("")
    for n, record in enumerate(records, 1):
        write(path, [record], mode="a")
        line = render_statusline(stdin_json(path))
        assert line == render_statusline(stdin_json(path), use_cache=False)
        if n > 1:
            assert used_in(line) == tokens_used(capsys, path), n
    assert len(cached_state(_cache)["transcript"]["calibration"][2]) == 5


def test_same_percent_and_level_just_above_the_warning(
    capsys: pytest.CaptureFixture[str], transcript: Path, fixtures: Path
) -> None:
    for path in figure_paths(transcript, fixtures):
        used = tokens_used(capsys, path)
        window = (100 * used - 1) // 75  # the largest window with more than 75%
        assert 75 < 100 * used / window <= 75.05, (path.name, used, window)
        ours = render_statusline(stdin_json(path), window=window)
        theirs = _tokens_line(capsys, path, window)
        a, b = _LINE.search(ours), _LINE.search(theirs)
        assert a and b, (ours, theirs)
        assert a.groups() == b.groups(), (path.name, ours, theirs)
        assert a[3] == "75" and "Warning" in a[5]


@pytest.mark.parametrize("target", [None, 60.5, 80.5, 92.5, 97.5])
def test_same_line_as_tokens(
    capsys: pytest.CaptureFixture[str], transcript: Path, fixtures: Path, target: float | None
) -> None:
    for path in figure_paths(transcript, fixtures):
        state, _ = read_transcript(str(path))
        used = transcript_figure(state).used
        assert used is not None
        window = 200_000 if target is None else round(used / (target / 100))
        ours = render_statusline(stdin_json(path), window=window)
        theirs = _tokens_line(capsys, path, window)
        a, b = _LINE.search(ours), _LINE.search(theirs)
        assert a and b, (ours, theirs)
        assert a.groups() == b.groups(), (path.name, ours, theirs)


def test_other_model_counts_with_its_counter(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, _cache: Path
) -> None:
    """The counter follows the transcript's model as in tokens: records counted before
    the model was known are counted again when it picks another counter."""
    records = session_records()
    for r in records:
        if r["type"] == "assistant":
            r["message"]["model"] = "gpt-4o"
    path = write(tmp_path / "t.jsonl", records[:1])
    render_statusline(stdin_json(path))
    assert cached_state(_cache)["transcript"]["counter"] == "estimate"
    write(path, records[1:], mode="a")
    line = render_statusline(stdin_json(path))
    assert cached_state(_cache)["transcript"]["counter"] == "o200k_base"
    assert used_in(line) == tokens_used(capsys, path)


def test_context_window_usage_of_the_transcript(
    capsys: pytest.CaptureFixture[str], transcript: Path
) -> None:
    """Claude Code's current usage: when it is the transcript's last one, the figure is
    the transcript's (tokens'); when newer, or the transcript is gone, Claude Code's own
    count."""
    state, _ = read_transcript(str(transcript))
    assert state.anchor is not None
    last = state.anchor[1]
    usage = {
        "input_tokens": 4,
        "cache_creation_input_tokens": 500,
        "cache_read_input_tokens": last - 504,
        "output_tokens": 25,
    }
    cw = {"context_window_size": 200_000, "current_usage": usage}
    line = render_statusline(stdin_json(transcript, context_window=cw))  # a first call
    assert used_in(line) == tokens_used(capsys, transcript) > last + 25
    newer = {**usage, "cache_read_input_tokens": last - 504 + 1_000}
    line = render_statusline(stdin_json(transcript, context_window={**cw, "current_usage": newer}))
    assert used_in(line) == last + 1_000 + 25
    missing = stdin_json(transcript.parent / "gone.jsonl", context_window=cw)
    assert used_in(render_statusline(missing)) == last + 25


def test_constants_agree_with_the_session() -> None:
    assert set(statusline_format.ACTIONS) == {lv.value for lv in Level if lv is not Level.NORMAL}


# -- as a process: the real entry points --------------------------------------------------


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTXBUDGET_")}
    env["CTXBUDGET_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return env


def test_module_entry_point(transcript: Path, _cache: Path) -> None:
    for data, expected in (
        (
            stdin_json(transcript),
            f"Sonnet 4 | Tokens: {FIGURE}/200,000 (70%) | ████████░░ | Normal\n",
        ),
        ("this is not json", "Tokens: ?/200,000\n"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "ctxbudget.cli.statusline"],
            input=data.encode(),
            capture_output=True,
            env=_env(_cache),
            timeout=60,
        )
        assert proc.returncode == 0
        assert proc.stdout.decode() == expected
        assert proc.stderr == b""


def test_no_heavy_imports(transcript: Path, _cache: Path) -> None:
    """Neither a tokenizer (ctok neither, where installed), the store nor the compaction
    engine, even on a cold call that estimates appended records."""
    records = [*session_records(), result("r9", "a3", "t9", FILE_TEXT)]
    write(transcript, records)
    code = (
        "import sys, io\n"
        "from ctxbudget.cli import statusline as cli_statusline\n"
        f"sys.stdin = io.TextIOWrapper(io.BytesIO({stdin_json(transcript).encode()!r}))\n"
        "cli_statusline.main([])\n"
        "heavy = ('tiktoken', 'sqlite3', 'ctxbudget.store', 'ctxbudget.compaction',\n"
        "         'ctxbudget.tracker', 'ctxbudget.session', 'platformdirs', 'argparse',\n"
        "         'ctok')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=_env(_cache), timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    line, modules = proc.stdout.decode().splitlines()
    assert line.startswith("Sonnet 4 | Tokens: 14")
    assert modules == "[]"


def test_register_and_command(
    transcript: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    cli_statusline.register(commands)
    args = parser.parse_args(["statusline", "--format", "{percent}|{level}", "--window", "x"])
    stdin = io.TextIOWrapper(io.BytesIO(stdin_json(transcript).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert cli_statusline.cmd_statusline(args, None) == 0
    assert capsys.readouterr().out == "70|Normal\n"


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_statusline.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "{percent}" in out and "{action}" in out and "--color" in out


def test_gzip_transcript(tmp_path: Path, transcript: Path) -> None:
    import gzip

    packed = tmp_path / "t.jsonl.gz"
    packed.write_bytes(gzip.compress(transcript.read_bytes()))
    assert render_statusline(stdin_json(packed)) == render_statusline(stdin_json(transcript))


def test_a_prompt_left_on_a_side_branch_is_not_counted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A prompt written off an earlier message, after which the conversation went on
    from the latest one, is no part of the context (``tokens`` follows parentUuid).
    The status line read it in file order: it counted it and learnt from it, and the
    two figures parted."""
    records = session_records()
    side = user("x1", "a1b", "(abandoned) actually, rewrite the whole module " * 60)
    branched = [*records[:-1], side, records[-1], user("u9", "a3", "Thanks, now the docs.")]
    path = write(tmp_path / "t.jsonl", branched)
    without = write(tmp_path / "plain.jsonl", [*records, branched[-1]])
    assert used_in(render_statusline(stdin_json(path))) == tokens_used(capsys, path)
    assert tokens_used(capsys, path) == tokens_used(capsys, without)
    # read in two calls, the branch's fate decided in the second
    half = tmp_path / "half.jsonl"
    write(half, branched[: branched.index(side) + 1])
    render_statusline(stdin_json(half))
    write(half, branched[branched.index(side) + 1 :], mode="a")
    assert used_in(render_statusline(stdin_json(half))) == tokens_used(capsys, without)


def test_parallel_tool_results_hung_on_their_own_calls_are_all_counted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Claude Code 2.x hangs each result on its own call's record: the second result's
    parent is not the first result. Neither is a branch left."""
    records = [
        user("u1", None, "Read both files."),
        assistant("a1", "u1", "msg_1", tool("t1", "Read", file_path="a.py"), 20_000, 30),
        assistant("a2", "a1", "msg_1", tool("t2", "Read", file_path="b.py"), 20_000, 60),
        result("r1", "a1", "t1", FILE_TEXT),
        result("r2", "a2", "t2", FILE_TEXT.replace("def", "async def")),
        assistant("a3", "r2", "msg_2", text("Both read."), 22_000, 5),
        user("u2", "a3", "Now compare them. " * 30),
    ]
    path = write(tmp_path / "t.jsonl", records)
    expected = tokens_used(capsys, path)
    assert used_in(render_statusline(stdin_json(path))) == expected
    assert expected > 22_000 + 200  # the prompt after the last call counts
