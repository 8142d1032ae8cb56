"""The status line with hostile transcript paths, and one definition of its figure.

A FIFO, ``/dev/zero`` or a file bigger than the read cap as ``transcript_path`` still
gives a line at once; with Claude Code's ``current_usage`` as without it the transcript
is read once, then only its appended bytes; the figure is the next request's context
(the last response's output included) on every path.
"""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ctxbudget.claude_code import transcript_read
from ctxbudget.claude_code.statusline import render_statusline
from ctxbudget.claude_code.transcript_read import read_transcript

SRC = Path(__file__).resolve().parent.parent / "src"
SONNET = {"id": "claude-sonnet-4-20250514", "display_name": "Sonnet 4"}


def _record(kind: str, uuid: str, parent: str | None, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "parentUuid": parent,
        "isSidechain": False,
        "sessionId": "s-1",
        "uuid": uuid,
        "type": kind,
        "message": message,
    }


def _reply(
    uuid: str, parent: str, mid: str, text: str, context: int, output: int
) -> dict[str, Any]:
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 90,
        "cache_read_input_tokens": context - 100,
        "output_tokens": output,
    }
    message = {
        "id": mid,
        "role": "assistant",
        "model": SONNET["id"],
        "content": [{"type": "text", "text": text}],
        "usage": usage,
    }
    return _record("assistant", uuid, parent, message)


def _prompt(uuid: str, parent: str | None, text: str) -> dict[str, Any]:
    return _record("user", uuid, parent, {"role": "user", "content": text})


RECORDS = [
    _prompt("u1", None, "Summarise the design notes in docs/ and list the open questions."),
    _reply("a1", "u1", "msg_1", "Reading docs/ first.", 60_000, 120),
    _prompt("u2", "a1", "Go on, and keep it short."),
    _reply("a2", "u2", "msg_2", "Three open questions: retention, quotas, naming.", 61_000, 763),
]
USAGE = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 90,
    "cache_read_input_tokens": 61_000 - 100,
    "output_tokens": 763,
}


def _write(path: Path, records: list[dict[str, Any]], mode: str = "w") -> Path:
    with path.open(mode, encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    return path


def _payload(path: Path | str, usage: dict[str, Any] | None = None) -> str:
    data: dict[str, Any] = {"session_id": "s-1", "transcript_path": str(path), "model": SONNET}
    if usage is not None:
        data["context_window"] = {"context_window_size": 200_000, "current_usage": usage}
    return json.dumps(data)


def _used(line: str) -> int:
    return int(line.split("Tokens: ")[1].split("/")[0].replace(",", ""))


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(cache))
    monkeypatch.delenv("CTXBUDGET_STATUSLINE_FORMAT", raising=False)
    monkeypatch.delenv(transcript_read.MAX_BYTES_ENV, raising=False)
    return cache


def _run(payload: str, cache: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    """The status line as Claude Code runs it: a process, with a deadline."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("CTXBUDGET_")}
    full.update(CTXBUDGET_CACHE_DIR=str(cache), PYTHONPATH=str(SRC), **env)
    return subprocess.run(
        [sys.executable, "-m", "ctxbudget.cli.statusline"],
        input=payload.encode(),
        capture_output=True,
        env=full,
        timeout=30,
        check=False,
    )


# -- paths that are not regular files, or too big ---------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_not_read(tmp_path: Path, _cache: Path) -> None:
    fifo = tmp_path / "t.jsonl"
    os.mkfifo(fifo)  # nobody ever writes: a read would block forever
    proc = _run(_payload(fifo), _cache, CTXBUDGET_DEBUG="1")
    assert proc.returncode == 0
    assert proc.stdout.decode() == "Sonnet 4 | Tokens: ?/200,000\n"
    assert b"not a regular file" in proc.stderr
    # with Claude Code's usage, that usage
    proc = _run(_payload(fifo, USAGE), _cache)
    assert proc.stdout.decode().startswith("Sonnet 4 | Tokens: 61,763/200,000 (30%)")
    # a FIFO as the policy file is ignored too
    args = [sys.executable, "-m", "ctxbudget.cli.statusline", "--policy", str(fifo)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTXBUDGET_")}
    env.update(CTXBUDGET_CACHE_DIR=str(_cache), PYTHONPATH=str(SRC))
    proc = subprocess.run(
        args, input=_payload(fifo, USAGE).encode(), capture_output=True, env=env, timeout=30
    )
    assert proc.stdout.decode().startswith("Sonnet 4 | Tokens: 61,763/200,000")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_not_read(_cache: Path) -> None:
    proc = _run(_payload("/dev/zero"), _cache)
    assert proc.returncode == 0
    assert proc.stdout.decode() == "Sonnet 4 | Tokens: ?/200,000\n"


def test_a_file_above_the_cap_is_not_read(tmp_path: Path, _cache: Path) -> None:
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as f:
        f.truncate(50_000_000)  # sparse: 50 MB of zeros, no newline
    proc = _run(
        _payload(huge), _cache, CTXBUDGET_DEBUG="1", CTXBUDGET_STATUSLINE_MAX_BYTES="100000"
    )
    assert proc.returncode == 0
    assert proc.stdout.decode() == "Sonnet 4 | Tokens: ?/200,000\n"
    assert b"longer than 100,000 bytes" in proc.stderr


def test_a_transcript_above_the_cap_is_read_call_after_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumed long session's transcript over the cap (64 MiB) was never read: the
    line said ``?`` for the whole session, with no reason. It is read that much per
    call, saying how far, and then shows the figure a whole read gives."""
    records = [RECORDS[0]]
    for n in range(40):
        records.append(_prompt(f"u{n}", None if n == 0 else f"a{n - 1}", f"step {n} " * 40))
        records.append(_reply(f"a{n}", f"u{n}", f"msg_{n}", f"done {n} " * 40, 60_000 + n, 50))
    path = _write(tmp_path / "t.jsonl", records)
    whole = render_statusline(_payload(path), use_cache=False)
    monkeypatch.setenv(transcript_read.MAX_BYTES_ENV, str(path.stat().st_size // 3))
    lines = []
    while "Tokens: ? · reading" in (line := render_statusline(_payload(path))) or not lines:
        lines.append(line)
        assert len(lines) < 10
    assert lines[0] == "Sonnet 4 | Tokens: ? · reading the transcript: 33%"
    assert len(lines) == 3 and line == whole
    # Claude Code's own figure meanwhile, when it sends one
    other = tmp_path / "other.jsonl"
    _write(other, records)
    assert _used(render_statusline(_payload(other, USAGE))) == 61_763


def test_an_appended_record_above_the_cap_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "t.jsonl", RECORDS)
    first = render_statusline(_payload(path))
    monkeypatch.setenv(transcript_read.MAX_BYTES_ENV, "2000")
    monkeypatch.setenv("CTXBUDGET_DEBUG", "1")
    padding = _prompt("u3", "a2", "x" * 5_000)
    _write(path, [padding, _prompt("u4", "u3", "And the naming question?")], mode="a")
    # one record longer than a call reads is left out, as a malformed line; the next
    # ones are read (the next usage counts it)
    assert "reading the transcript" in render_statusline(_payload(path))
    after = render_statusline(_payload(path))
    without = _write(
        tmp_path / "w.jsonl", [*RECORDS, _prompt("u4", "a2", "And the naming question?")]
    )
    assert _used(first) < _used(after) == _used(render_statusline(_payload(without)))
    assert "above 2,000" in capsys.readouterr().err


def test_cap_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (("123", 123), ("0", transcript_read.DEFAULT_MAX_BYTES), ("x", None)):
        monkeypatch.setenv(transcript_read.MAX_BYTES_ENV, value)
        assert transcript_read.max_read_bytes() == (expected or transcript_read.DEFAULT_MAX_BYTES)


# -- current_usage: the transcript's figure unless the usage is newer ---------------------


class _Opens:
    """Every open of ``path`` (builtins.open and os.open) while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.count = 0
        target = os.path.abspath(path)
        real_open, real_os_open = builtins.open, os.open

        def counted(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, str | Path) and os.path.abspath(file) == target:
                self.count += 1
            return real_open(file, *args, **kwargs)

        def counted_os(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, str | Path) and os.path.abspath(file) == target:
                self.count += 1
            return real_os_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", counted)
        monkeypatch.setattr(os, "open", counted_os)


def _spied_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bytes each read of the transcript takes, from now on."""
    reads: list[int] = []
    real_read = transcript_read._read

    def spy(p: str, st: os.stat_result, saved: Any, *args: Any) -> Any:
        before = saved.offset if saved is not None else 0
        result = real_read(p, st, saved, *args)
        reads.append(result.offset - before)
        return result

    monkeypatch.setattr(transcript_read, "_read", spy)
    return reads


def test_current_usage_reads_the_transcript_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "t.jsonl", RECORDS)
    state, _ = read_transcript(str(path))
    framing = round(state.new_calibration().per_item * 1)  # the response's one block
    opens = _Opens(monkeypatch, path)
    line = render_statusline(_payload(path, USAGE))
    assert opens.count == 1
    # the usage is the transcript's latest: input + cache creation + cache read + the
    # response's output and framing (61,763 before: the framing left out)
    assert line.startswith(f"Sonnet 4 | Tokens: {61_763 + framing:,}/200,000 (30%)")
    assert render_statusline(_payload(path, USAGE)) == line
    assert opens.count == 1  # nothing appended: the memo
    _write(path, [_prompt("u3", "a2", "And the quotas?")], mode="a")
    size = path.stat().st_size
    reads = _spied_reads(monkeypatch)
    # the state the first call saved: only the appended line is read, and counted
    assert _used(render_statusline(_payload(path, USAGE))) > _used(line)
    assert reads == [size - state.size] and opens.count == 2


def test_both_paths_give_the_same_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "t.jsonl", RECORDS)
    from_transcript = render_statusline(_payload(path))  # saves the transcript's state
    state, _ = read_transcript(str(path))
    framing = round(state.new_calibration().per_item * 1)  # the response's one block
    assert _used(from_transcript) == 61_000 + 763 + framing
    opens = _Opens(monkeypatch, path)
    assert render_statusline(_payload(path, USAGE)) == from_transcript
    assert opens.count == 0  # nothing appended: the saved state, not the file

    # A tool result arrives after the response: both paths add the same estimate, and
    # the current_usage path reads only the appended bytes.
    tail = _prompt("u3", "a2", "Here is the quota table:\n" + "| team | quota |\n" * 60)
    _write(path, [tail], mode="a")
    size = path.stat().st_size
    real_read = transcript_read._read
    reads = _spied_reads(monkeypatch)
    with_usage = render_statusline(_payload(path, USAGE))
    assert reads == [len(json.dumps(tail)) + 1] and opens.count == 1
    monkeypatch.setattr(transcript_read, "_read", real_read)
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path / "other-cache"))
    assert _used(with_usage) == _used(render_statusline(_payload(path))) > _used(from_transcript)
    assert path.stat().st_size == size


def test_a_newer_usage_than_the_transcript(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", RECORDS)
    render_statusline(_payload(path))
    newer = {**USAGE, "cache_read_input_tokens": 70_000, "output_tokens": 50}
    # the transcript lags behind Claude Code: Claude Code's own figure, output included
    assert _used(render_statusline(_payload(path, newer))) == 70_100 + 50


def test_a_record_longer_than_the_cap_is_left_out_and_the_reading_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record bigger than a call may read stopped every later call on it: the line
    said ``?`` for the rest of the session. It is left out, as a malformed line is."""
    big = _prompt("big", "a2", "word " * 20_000)
    after = _prompt("u3", "big", "Thanks. Next, the quotas.")
    path = _write(tmp_path / "t.jsonl", [*RECORDS, big, after])
    monkeypatch.setenv(transcript_read.MAX_BYTES_ENV, str(len(json.dumps(big)) // 2))
    lines = [render_statusline(_payload(path)) for _ in range(8)]
    assert "reading the transcript" in lines[0]
    shown = [line for line in lines if "reading" not in line]
    assert shown and all(_used(line) > 61_763 for line in shown)  # the prompt after it


def test_parts_that_end_on_models_of_two_counters_are_read_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counter follows the file's last model: judged after each part read, a file
    whose parts ended on a Claude and a GPT model started over at every call."""
    records: list[dict[str, Any]] = []
    parent: str | None = None
    for n in range(60):
        records.append(_prompt(f"u{n}", parent, f"step {n} of the plan " * 20))
        reply = _reply(f"a{n}", f"u{n}", f"msg_{n}", f"done {n} " * 20, 5_000 + 300 * n, 50)
        reply["message"]["model"] = "gpt-4o" if (n // 10) % 2 else SONNET["id"]
        records.append(reply)
        parent = f"a{n}"
    path = _write(tmp_path / "t.jsonl", records)
    whole = render_statusline(_payload(path), use_cache=False)
    monkeypatch.setenv(transcript_read.MAX_BYTES_ENV, str(path.stat().st_size // 6 + 500))
    for _ in range(20):
        line = render_statusline(_payload(path))
        if "reading" not in line:
            break
    assert line == whole
