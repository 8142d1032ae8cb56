"""PreCompact's fact ledger read from where the last run stopped: the same facts as a
whole read, a compaction boundary starts afresh, a half-written line waits, the file
kept private and without secrets."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cc_session import SessionWriter, shop_session

from ctxbudget.claude_code.fact_memory import current_facts, facts_file
from ctxbudget.compaction.facts import extract_facts
from ctxbudget.sources.claude_code import read_claude_code


def _whole(path: Path) -> list[tuple[str, str, int]]:
    with path.open(encoding="utf-8") as lines:
        items = read_claude_code(lines, path=str(path)).items
    return [(str(f.kind), f.key, f.item) for f in extract_facts(items)]


def _got(path: Path, cache: Path) -> list[tuple[str, str, int]]:
    return [(str(f.kind), f.key, f.item) for f in current_facts(str(path), str(cache))]


def _append(path: Path, records: list[dict[str, object]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def _more_work(w: SessionWriter) -> None:
    w.user("Also never push to main; open PR #41 against release-2.3 when the tests pass.")
    w.respond(
        {
            "type": "tool_use",
            "id": "toolu_edit",
            "name": "Edit",
            "input": {"file_path": "/home/dev/shop/tax.py", "old_string": "a", "new_string": "b"},
        }
    )
    w.tool_result("toolu_edit", "The file /home/dev/shop/tax.py has been updated.")
    w.respond({"type": "text", "text": "Decision: tax is computed per line, not per order."})


def test_read_in_parts_gives_the_facts_of_a_whole_read(tmp_path: Path) -> None:
    w = shop_session(rounds=4)
    path = w.write(tmp_path / "s.jsonl")
    cache = tmp_path / "cache"
    assert _got(path, cache) == _whole(path)
    start = len(w.records)
    _more_work(w)
    _append(path, w.records[start:])
    got = _got(path, cache)
    assert got == _whole(path)
    assert any(key == "/home/dev/shop/tax.py" for _, key, _ in got)
    saved = json.loads(Path(facts_file(str(path), str(cache))).read_text(encoding="utf-8"))
    assert saved["offset"] == path.stat().st_size  # the next run starts at the end


def test_a_compaction_boundary_starts_the_ledger_afresh(tmp_path: Path) -> None:
    w = shop_session(rounds=2)
    path = w.write(tmp_path / "s.jsonl")
    cache = tmp_path / "cache"
    assert any(key == "REQ-114" for _, key, _ in _got(path, cache))
    start = len(w.records)
    w.compact_boundary("Summary: the billing work is done.")
    _more_work(w)
    _append(path, w.records[start:])
    got = _got(path, cache)
    assert got == _whole(path)
    assert not any(key == "REQ-114" for _, key, _ in got)  # before the boundary: gone
    # a first read (no saved ledger) starts at the last boundary too
    assert _got(path, tmp_path / "fresh") == got


def test_a_marker_inside_text_is_no_boundary(tmp_path: Path) -> None:
    w = shop_session(rounds=2)
    # unescaped in a structured field, as Claude Code writes tool results it parsed
    w.user(
        "Run the check again.", toolUseResult={"type": "compact_boundary", "isCompactSummary": 1}
    )
    path = w.write(tmp_path / "s.jsonl")
    got = _got(path, tmp_path / "cache")
    assert got == _whole(path)
    assert any(key == "REQ-114" for _, key, _ in got)


def test_a_line_nested_too_deeply_is_a_bad_line(tmp_path: Path) -> None:
    """A line naming a boundary marker, too deep for the JSON parser: a bad line, as
    the reader takes it, not an error that loses the ledger."""
    w = shop_session(rounds=2)
    path = w.write(tmp_path / "s.jsonl")
    with path.open("a", encoding="utf-8") as f:
        f.write('{"type": "compact_boundary", "x": ' + "[" * 200_000 + "]" * 200_000 + "}\n")
    got = _got(path, tmp_path / "cache")
    assert got == _whole(path)
    assert any(key == "REQ-114" for _, key, _ in got)


@pytest.mark.parametrize("stray", [b"\xff", b"\xed\xa0\x80"])  # the second: a surrogate
def test_bytes_that_are_not_utf8_keep_the_record_and_its_facts(
    tmp_path: Path, stray: bytes
) -> None:
    """A stray byte in a later line: that record's facts are kept (its bytes replaced),
    as a read of the whole file keeps them."""
    w = shop_session(rounds=2)
    path = w.write(tmp_path / "s.jsonl")
    cache = tmp_path / "cache"
    _got(path, cache)
    start = len(w.records)
    _more_work(w)
    lines = [json.dumps(r).encode("utf-8") + b"\n" for r in w.records[start:]]
    lines[0] = lines[0].replace(b"Also never push", b"Also " + stray + b" never push")
    with path.open("ab") as f:
        f.writelines(lines)
    got = _got(path, cache)
    assert ("requirement", "#41", 6) in got  # the record with the stray byte
    assert any(kind == "request" and "never push to main" in key for kind, key, _ in got)
    assert any(key == "/home/dev/shop/tax.py" for _, key, _ in got)
    assert got == _got(path, tmp_path / "fresh")  # the same on a first read
    assert not list(cache.rglob("*.tmp"))  # the kept ledger written whole


def test_half_a_surrogate_pair_escaped_in_json_keeps_the_ledger(tmp_path: Path) -> None:
    """JSON may escape half a surrogate pair ("\\ud800"): the text holds it, and the
    kept ledger is written (escaped) and read back the same."""
    w = shop_session(rounds=2)
    w.user("Also read docs/\ud800notes.md before REQ-240.")
    path = w.write(tmp_path / "s.jsonl")
    cache = tmp_path / "cache"
    got = _got(path, cache)
    assert ("requirement", "REQ-240", 6) in got
    assert ("request", "Also read docs/\ud800notes.md before REQ-240.", 6) in got
    assert not list(cache.rglob("*.tmp"))
    saved = json.loads(Path(facts_file(str(path), str(cache))).read_text(encoding="utf-8"))
    assert saved["offset"] == path.stat().st_size  # kept: the next run starts at the end
    assert _got(path, cache) == got


def test_a_half_written_line_waits_for_the_next_run(tmp_path: Path) -> None:
    w = shop_session(rounds=2)
    path = w.write(tmp_path / "s.jsonl")
    cache = tmp_path / "cache"
    start = len(w.records)
    _more_work(w)
    line = json.dumps(w.records[start]) + "\n"
    with path.open("a", encoding="utf-8") as f:
        f.write(line[:20])
    _got(path, cache)
    with path.open("a", encoding="utf-8") as f:
        f.write(line[20:])
    _append(path, w.records[start + 1 :])
    assert _got(path, cache) == _whole(path)


def test_a_rewritten_transcript_is_read_again(tmp_path: Path) -> None:
    w = shop_session(rounds=3)
    path = w.write(tmp_path / "s.jsonl")
    cache = tmp_path / "cache"
    _got(path, cache)
    other = SessionWriter(overhead=5_000)
    other.user("Rename the module orders.py to purchases.py (TASK-7).")
    other.respond({"type": "text", "text": "Renamed."})
    replacement = other.write(tmp_path / "new.jsonl")
    os.replace(replacement, path)  # a new file at the same path
    got = _got(path, cache)
    assert got == _whole(path)
    assert not any(key == "REQ-114" for _, key, _ in got)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_kept_ledger_is_private_and_holds_no_secret(tmp_path: Path) -> None:
    w = shop_session(rounds=1)
    w.user("Deploy with OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD now.")
    path = w.write(tmp_path / "s.jsonl")
    cache = tmp_path / "cache"
    _got(path, cache)
    kept = Path(facts_file(str(path), str(cache)))
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    text = kept.read_text(encoding="utf-8")
    assert "sk-proj-abcdefghijklmnopqrstuvwxyz" not in text
    assert "redacted" in text


def test_a_transcript_rewritten_in_place_is_read_again(tmp_path: Path) -> None:
    w = shop_session(rounds=3)
    path = w.write(tmp_path / "s.jsonl")
    cache = tmp_path / "cache"
    _got(path, cache)
    other = SessionWriter(overhead=5_000)
    other.user("Rename the module orders.py to purchases.py (TASK-7), all of it, now.")
    other.respond({"type": "text", "text": "Renamed orders.py to purchases.py everywhere."})
    for _ in range(12):  # at least as long as the first: only the content tells
        other.user("Check the imports of purchases.py again.")
        other.respond({"type": "text", "text": "The imports of purchases.py are fine."})
    with path.open("r+", encoding="utf-8") as f:  # same inode, new content
        f.seek(0)
        f.truncate()
        f.write("".join(json.dumps(r) + "\n" for r in other.records))
    assert path.stat().st_size >= len(json.dumps(w.records[0]))
    got = _got(path, cache)
    assert got == _whole(path)
    assert not any(key == "REQ-114" for _, key, _ in got)
