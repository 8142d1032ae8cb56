from __future__ import annotations

import gc
import gzip
import warnings
from pathlib import Path
from typing import Any

import pytest

from ctxbudget import Kind, load_source
from ctxbudget.errors import SourceError


def test_main_thread_calls_counted_once_per_message_id(fixtures: Path) -> None:
    t = load_source(fixtures / "claude_code_small.jsonl")
    assert t.format == "claude-code"
    # msg_A is split over two records that both repeat usage: one call, not two.
    assert [c.message_id for c in t.calls] == ["msg_A", "msg_B", "msg_C", "msg_D"]
    assert [c.usage.context_tokens for c in t.calls] == [12004, 12154, 12274, 12364]
    assert t.model == "claude-sonnet-4-20250514"


def test_sidechain_is_attributed_to_the_task_agent(fixtures: Path) -> None:
    t = load_source(fixtures / "claude_code_small.jsonl")
    assert set(t.agents) == {"code-reviewer"}
    assert [c.usage.context_tokens for c in t.agent_calls["code-reviewer"]] == [9003]
    assert all(item.agent == "main" for item in t.items)


def test_current_context_follows_the_parent_chain(fixtures: Path) -> None:
    t = load_source(fixtures / "claude_code_small.jsonl")
    texts = " ".join(item.text for item in t.items)
    assert "abandoned branch" not in texts
    assert "Fixed: add() now returns a + b" in texts
    kinds = [item.kind for item in t.items]
    assert kinds.count(Kind.FILE_READ) == 1 and kinds.count(Kind.AGENT_REPORT) == 1
    # every tool result has its call in the context
    calls = {i.pair_id for i in t.items if i.kind is Kind.TOOL_CALL}
    results = {i.pair_id for i in t.items if i.role.value == "tool"}
    assert results <= calls


def test_anchor_is_the_last_call_and_its_output(fixtures: Path) -> None:
    t = load_source(fixtures / "claude_code_small.jsonl")
    assert t.anchor_call == 3
    assert t.anchor_position is not None
    assert [i.text for i in t.items[t.anchor_position :]] == [
        "Fixed: add() now returns a + b. The test passes."
    ]


def test_added_items_between_calls(fixtures: Path) -> None:
    t = load_source(fixtures / "claude_code_small.jsonl")
    second = t.calls[1]
    assert second.anchor_call == 0
    added = [t.history_items[i] for i in second.added_items]
    # msg_A's two blocks (its output) and the tool result
    assert [i.kind for i in added] == [Kind.ASSISTANT_TEXT, Kind.TOOL_CALL, Kind.FILE_READ]


def test_unknown_record_types_are_counted_not_fatal(fixtures: Path) -> None:
    t = load_source(fixtures / "claude_code_small.jsonl")
    assert t.unknown_records == 1


def test_compact_boundary_starts_a_new_context(fixtures: Path) -> None:
    t = load_source(fixtures / "claude_code_compacted.jsonl")
    assert t.compactions == [4]
    assert t.calls[4].after_compaction and t.calls[4].anchor_call is None
    assert [i.kind for i in t.items] == [Kind.SUMMARY, Kind.ASSISTANT_TEXT]


def test_gzip_and_truncated_last_line(fixtures: Path, tmp_path: Path) -> None:
    data = (fixtures / "claude_code_small.jsonl").read_bytes()
    cut = data + b'{"parentUuid": "a4", "type": "assistant", "mess'
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(gzip.compress(cut))
    t = load_source(path)
    assert len(t.calls) == 4
    assert t.unknown_records == 1  # the unknown record type; the cut line is left out
    assert t.problems[-1].endswith("incomplete (still being written?): left out")


def test_gzip_transcript_leaves_no_file_open(fixtures: Path, tmp_path: Path) -> None:
    # read as it is decompressed: closing the stream closes the file under it too
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(gzip.compress((fixtures / "claude_code_small.jsonl").read_bytes()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert len(load_source(path).calls) == 4
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("damage", ["cut", "corrupt"])
def test_damaged_gzip_is_one_clear_error(fixtures: Path, tmp_path: Path, damage: str) -> None:
    # read as it is decompressed: a stream that ends early or stops being deflate
    # midway is one SourceError naming the file, not a traceback from the reader
    data = (fixtures / "claude_code_small.jsonl").read_bytes() * 200
    packed = gzip.compress(data)
    half = len(packed) // 2
    if damage == "cut":
        packed = packed[:half]
    else:
        packed = (
            packed[:half] + bytes(b ^ 0x5A for b in packed[half : half + 64]) + packed[half + 64 :]
        )
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(packed)
    with pytest.raises(SourceError, match=r"t\.jsonl\.gz: cannot read"):
        load_source(path)


def test_history_reuses_the_replay_of_the_load(
    fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tokens --history`` and ``--record`` ask for the history the load already
    replayed: the same points, replayed once (twice cost a second at 100k items);
    again after a recount, whose counts it depends on."""
    import ctxbudget.session_figures as state
    from ctxbudget import Tracker

    replays = []
    replay = state.replay_history

    def counted(*args: Any, **kwargs: Any) -> Any:
        replays.append(1)
        return replay(*args, **kwargs)

    monkeypatch.setattr(state, "replay_history", counted)
    session = Tracker(store="memory://").load(fixtures / "claude_code_small.jsonl")
    first = session.history()
    assert len(replays) == 1 and first
    assert session.history() == first and len(replays) == 1
    session.recount()
    assert session.history() == first and len(replays) == 2


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_a_line_separator_inside_a_message_is_no_end_of_record(
    tmp_path: Path, separator: str
) -> None:
    """JSON allows U+2028, U+2029 and U+0085 unescaped in a string, and JavaScript's
    JSON.stringify (Claude Code's) writes them so: text pasted from a web page keeps them.
    The record is whole, its text as written, and no line is reported as bad."""
    from cc_session import SessionWriter

    text = f"Pasted from the spec:{separator}the retry limit is 5"
    w = SessionWriter(overhead=2_000)
    w.user(text)
    w.respond({"type": "text", "text": "Noted."})
    path = w.write(tmp_path / "t.jsonl", ensure_ascii=False)
    assert separator in path.read_text("utf-8")  # written raw, as Claude Code does
    t = load_source(path)
    assert t.problems == [] and t.unknown_records == 0
    assert [i.text for i in t.items] == [text, "Noted."]
    assert len(t.calls) == 1
