from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli as run


def test_status_line_for_a_transcript(capsys: pytest.CaptureFixture[str], fixtures: Path) -> None:
    code, out, err = run(capsys, "tokens", str(fixtures / "claude_code_small.jsonl"))
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("Tokens: 12,")
    assert first.endswith("| █░░░░░░░░░ | Normal")
    assert "1 record(s) of unknown shape" in out


def test_json_contract(capsys: pytest.CaptureFixture[str], fixtures: Path) -> None:
    code, out, _ = run(
        capsys,
        "tokens",
        str(fixtures / "claude_code_small.jsonl"),
        "--json",
        "--history",
        "--record",
    )
    data = json.loads(out)
    for key in (
        "used_tokens",
        "max_tokens",
        "percent",
        "level",
        "remaining_tokens",
        "breakdown",
        "session_id",
        "history",
    ):
        assert key in data
    assert data["session_id"] == "11111111-2222-3333-4444-555555555555"
    calls, now = data["history"][:-1], data["history"][-1]
    assert [h["reported_tokens"] for h in calls] == [12004, 12154, 12274, 12364]
    assert now["now"] and now["used_tokens"] == data["used_tokens"]  # the last point is now
    assert all("predicted_tokens" in h for h in data["history"])
    # the stored session can be read back by id
    code, out, _ = run(capsys, "tokens", "11111111", "--json")
    assert code == 0 and json.loads(out)["used_tokens"] == data["used_tokens"]


def test_breakdown_and_history_text(capsys: pytest.CaptureFixture[str], fixtures: Path) -> None:
    code, out, _ = run(
        capsys,
        "tokens",
        str(fixtures / "claude_code_compacted.jsonl"),
        "--breakdown",
        "--history",
        "--window",
        "20000",
    )
    assert code == 0
    assert "By component" in out and "Sub-agents" in out and "code-reviewer" in out
    assert "compaction" in out and "warning" in out


def test_warning_prints_recommendation_and_fail_on(
    capsys: pytest.CaptureFixture[str], fixtures: Path
) -> None:
    code, out, _ = run(
        capsys,
        "tokens",
        str(fixtures / "claude_code_small.jsonl"),
        "--window",
        "15000",
        "--fail-on",
        "warning",
    )
    assert code == 1
    assert "TOKEN WARNING" in out and "Recommendation:" in out
    code, _, _ = run(
        capsys,
        "tokens",
        str(fixtures / "claude_code_small.jsonl"),
        "--window",
        "12500",
        "--fail-on",
        "warning",
    )
    assert code == 3  # blocked


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x00\x01\x02\xff\xfe binary", "is binary"),
        (b'[{"role": "user", "content": "hi"}, {"role": "assist', "not valid JSON"),
        (b"just some words", "not a transcript"),
    ],
)
def test_bad_files_fail_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, message: str
) -> None:
    f = tmp_path / "input.json"
    f.write_bytes(content)
    code, _, err = run(capsys, "tokens", str(f))
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_directory_and_missing_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "tokens", str(tmp_path))
    assert code == 2 and "is a directory" in err
    code, _, err = run(capsys, "tokens", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "no such file" in err
    code, _, err = run(capsys, "tokens", "deadbeef")
    assert code == 2 and "no stored session" in err


def test_policy_out_of_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fixtures: Path
) -> None:
    p = tmp_path / "policy.toml"
    p.write_text("[policy.thresholds]\nwarning = 90\ncritical = 80\nblocked = 95\n")
    code, _, err = run(
        capsys, "tokens", str(fixtures / "claude_code_small.jsonl"), "--policy", str(p)
    )
    assert code == 2 and "ordered" in err and len(err.strip().splitlines()) == 1


def test_no_claude_session_found(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "tokens")
    assert code == 2 and "no Claude Code session found" in err


def test_newest_claude_session_is_the_default(
    capsys: pytest.CaptureFixture[str], fixtures: Path, tmp_path: Path
) -> None:
    project = tmp_path / "claude-home" / "projects" / "-home-dev-proj"
    project.mkdir(parents=True)
    shutil.copy(fixtures / "claude_code_small.jsonl", project / "abc.jsonl")
    code, out, _ = run(capsys, "tokens", "--json")
    assert code == 0 and json.loads(out)["format"] == "claude-code"


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ctxbudget.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "tokens" in out.stdout


def test_half_an_emoji_in_a_session_is_printed_not_a_crash(tmp_path: Path) -> None:
    """A lone surrogate (an emoji cut in half by a JavaScript slice, which JSON writes
    as "\\ud83d") in the current task: the compaction is applied and its report
    printed with the half replaced, exit 0; before, the report crashed after the work
    was done."""
    from cc_session import SessionWriter

    w = SessionWriter(overhead=2_000)
    w.user("first ask: " + "the retry test " * 60)
    w.respond({"type": "text", "text": "It sleeps 2 s before each retry. " * 40})
    w.user("now the part cut at \ud83d")
    path = w.write(tmp_path / "s.jsonl")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    command = [sys.executable, "-m", "ctxbudget.cli", "compact", str(path), "--target", "300"]
    done = subprocess.run(
        [*command, "--store", store],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-400:]
    assert b"internal error" not in done.stderr
    assert b"Current task: now the part cut at ?" in done.stdout


def test_with_json_an_error_is_an_object_on_stdout_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A script reading ``--json`` output gets an object saying what went wrong (and the
    exit code), not nothing; people still get the line on stderr."""
    missing = str(tmp_path / "missing.json")
    for argv in (("tokens", missing, "--json"), ("compact", missing, "--json")):
        code, out, err = run(capsys, *argv)
        assert code == 2 and "no such file" in err
        assert json.loads(out) == {"error": f"{missing}: no such file", "exit_code": 2}
    code, out, err = run(capsys, "tokens", missing)
    assert code == 2 and out == "" and "no such file" in err
