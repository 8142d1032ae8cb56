from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from conftest import run_cli as run

from ctxbudget.sources import load_source
from ctxbudget.sources.validation import validate_messages

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_dry_run_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "compact",
        str(EXAMPLES / "analyst-ep24.json"),
        "--policy",
        str(EXAMPLES / "analyst.toml"),
        "--dry-run",
    )
    assert code == 0, err
    assert "COMPACTION PLAN (dry run" in out and "summarize" in out and "Facts:" in out
    code, out, _ = run(capsys, "sessions", "--json")
    assert json.loads(out) == []  # a dry run stores nothing


def test_compact_restore_recall_round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = tmp_path / "compacted.json"
    code, out, err = run(
        capsys,
        "compact",
        str(EXAMPLES / "analyst-ep24.json"),
        "--policy",
        str(EXAMPLES / "analyst.toml"),
        "--json",
        "--output",
        str(output),
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["applied"] and report["met_target"]
    assert report["tokens_after"] <= 0.6 * 12000 < report["tokens_before"]
    assert report["facts"]["passed"]
    session_id = report["session_id"]
    # the written file is a valid request in the input's own format, and reads back
    written = json.loads(output.read_text())
    assert validate_messages(written["messages"], "anthropic") == []
    assert len(load_source(output).items) < 51

    code, out, _ = run(
        capsys,
        "recall",
        session_id[:12],
        "biometric fingerprint Face ID",
        "--budget",
        "400",
        "--json",
    )
    hits = json.loads(out)
    assert code == 0 and hits and sum(h["tokens"] for h in hits) <= 400

    code, out, _ = run(capsys, "restore", session_id[:12], "--json")
    restored = json.loads(out)
    assert (restored["version_from"], restored["version_to"]) == (2, 1)
    assert restored["used_tokens"] == report["tokens_before"]


def test_human_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "compact", str(EXAMPLES / "analyst-ep24.json"), "--ratio", "3")
    assert code == 0
    assert "✅ COMPACTION COMPLETE" in out and "Requirements: 18/18 kept" in out
    assert "ctxbudget restore" in out


def test_text_output_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    output = tmp_path / "c.txt"
    code, _, _ = run(
        capsys,
        "compact",
        str(EXAMPLES / "analyst-ep24.json"),
        "--ratio",
        "4",
        "--dry-run",
        "--output",
        str(output),
        "--format",
        "text",
    )
    assert code == 0 and "REQ-AUTH-001" in output.read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ratio", "0.5"], "ratio must be above 1"),
        (["--target", "-3"], "positive"),
        (["--target-percent", "150"], "above 0 and at most 100"),
        (["--target-percent", "0"], "above 0 and at most 100 (got 0.0)"),
        (["--ratio", "inf"], "above 1 and at most 1000"),
        (["--keep-last", "-1"], "argument --keep-last: must be 0 or more (got -1)"),
        (["--keep-results", "x"], "argument --keep-results: not a whole number"),
    ],
)
def test_bad_targets(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, _, err = run(capsys, "compact", str(EXAMPLES / "analyst-ep24.json"), *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_under_target_and_empty(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(
        capsys, "compact", str(EXAMPLES / "analyst-ep24-15.json"), "--target", "100000"
    )
    # nothing could be compacted: exit 1
    assert code == 1 and "Nothing to compact" in out and "already under the target" in out
    # a session with no conversation (an empty message list, a Claude Code transcript
    # of bookkeeping alone): nothing could be compacted, exit 1; an empty file is bad
    # input, exit 2
    empty = tmp_path / "empty.json"
    empty.write_text('{"messages": []}')
    bookkeeping = tmp_path / "bookkeeping.jsonl"
    record = {"type": "queue-operation", "operation": "enqueue", "sessionId": "s-1"}
    bookkeeping.write_text(json.dumps(record) + "\n")
    for source in (empty, bookkeeping):
        code, out, _ = run(capsys, "compact", str(source), "--dry-run")
        assert code == 1 and "Nothing to compact" in out, source
        code, out, _ = run(capsys, "compact", str(source), "--json")
        assert code == 1 and json.loads(out)["applied"] is False
    (tmp_path / "zero.json").write_text("")
    code, _, err = run(capsys, "compact", str(tmp_path / "zero.json"))
    assert code == 2 and "empty" in err


def test_a_store_that_ends_with_the_command_offers_no_undo(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for store in ("memory://", "sqlite://", "sqlite://:memory:"):
        code, out, err = run(
            capsys, "--store", store, "compact", str(EXAMPLES / "analyst-ep24.json"), "--ratio", "3"
        )
        assert code == 0, err
        assert "COMPACTION COMPLETE" in out and "restore" not in out, store


def test_recall_finds_what_claude_codes_own_compaction_took_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fixtures: Path
) -> None:
    """Claude Code's /compact leaves what it replaced in the transcript, before its
    boundary: recall searches it, by the file or by the session's id, and never
    offers what is still in the context."""
    transcript = fixtures / "claude_code_compacted.jsonl"
    code, out, err = run(capsys, "recall", str(transcript), "failing test", "--json")
    assert code == 0, err
    found = [item["text"] for item in json.loads(out)]
    # the request, and the answer that came right after it
    assert found[:2] == [
        "Please fix the failing test in src/app.py and keep the API stable.",
        "I'll read the file first.",
    ]
    code, out, _ = run(capsys, "recall", str(transcript), "continuing", "--json")
    assert code == 0 and json.loads(out) == []  # "Continuing: …" is in the context now
    project = tmp_path / "claude-home" / "projects" / "-home-dev-proj"  # $CLAUDE_CONFIG_DIR
    project.mkdir(parents=True)
    session_id = "0b5e6a0e-3c1f-4b7e-9d42-5f1c2a7d9e10"
    (project / f"{session_id}.jsonl").write_bytes(transcript.read_bytes())
    code, out, err = run(capsys, "recall", session_id, "failing test")
    assert code == 0, err
    assert "archived item(s)" in out and "Please fix the failing test" in out
    # right after /compact, before any call: the summary opening the context says so
    lines = transcript.read_text().splitlines()
    assert "Continuing" in lines[-1]
    (project / f"{session_id}.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    code, out, err = run(capsys, "recall", session_id, "failing test")
    assert code == 0 and "Please fix the failing test" in out, err


def test_restore_and_recall_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "restore", "nope")
    assert code == 2 and "no stored session" in err
    run(capsys, "tokens", str(EXAMPLES / "analyst-ep24-15.json"), "--record")
    code, _, err = run(capsys, "restore", "file-")
    assert code == 2 and "no earlier context version" in err
    code, _, err = run(capsys, "recall", "file-", "anything", "--budget", "0")
    assert code == 2 and "budget must be positive" in err


def test_if_needed_compacts_only_past_the_trigger(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "compact",
        str(EXAMPLES / "analyst-ep24-15.json"),
        "--policy",
        str(EXAMPLES / "analyst.toml"),
        "--if-needed",
    )
    assert code == 0 and out.startswith("Not needed: 78%")
    code, out, _ = run(
        capsys,
        "compact",
        str(EXAMPLES / "analyst-ep24-15.json"),
        "--policy",
        str(EXAMPLES / "analyst.toml"),
        "--if-needed",
        "--trigger",
        "70",
        "--json",
    )
    assert code == 0 and json.loads(out)["applied"]


def test_missed_target_is_said_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """Applied, whatever the target: exit 0, and the output says the target was missed."""
    code, out, _ = run(capsys, "compact", str(EXAMPLES / "analyst-ep24.json"), "--target", "50")
    assert code == 0
    assert "Target of 50 tokens not reached" in out and "below what must stay" in out


def test_output_checked_before_anything_is_applied(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(
        capsys,
        "compact",
        str(EXAMPLES / "analyst-ep24.json"),
        "--ratio",
        "3",
        "--output",
        str(tmp_path / "missing" / "x.json"),
    )
    assert code == 2 and "does not exist" in err
    code, out, _ = run(capsys, "sessions", "--json")
    assert json.loads(out) == []  # nothing was recorded or compacted


def test_restore_refuses_to_drop_newer_work(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "compact", str(EXAMPLES / "analyst-ep24.json"), "--ratio", "3", "--json"
    )
    sid = json.loads(out)["session_id"]
    from ctxbudget import Tracker

    Tracker().open(sid).add("one more question after the compaction")
    code, _, err = run(capsys, "restore", sid)
    assert code == 2 and "would drop them" in err
    code, _, _ = run(capsys, "restore", sid, "--force")
    assert code == 0


def test_compacting_a_file_twice_gives_the_same_result(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The second ``compact FILE`` starts from the file, not from the stored compacted
    copy: same file, same options, same result; the earlier versions stay."""
    source = str(EXAMPLES / "analyst-ep24.json")
    args = ("compact", source, "--policy", str(EXAMPLES / "analyst.toml"), "--json")
    code, out, err = run(capsys, *args, "--output", str(tmp_path / "first.json"))
    assert code == 0, err
    first = json.loads(out)
    code, out, err = run(capsys, *args, "--output", str(tmp_path / "second.json"))
    assert code == 0, err
    second = json.loads(out)
    assert second["tokens_before"] == first["tokens_before"]
    assert second["tokens_after"] == first["tokens_after"]
    assert (tmp_path / "first.json").read_text() == (tmp_path / "second.json").read_text()
    # a new version on top of the stored ones: the first compaction can still be undone
    assert second["version_to"] > first["version_to"]
    code, out, err = run(capsys, *args[:-1], "--dry-run")
    assert code == 0, err
    code, out, err = run(capsys, *args[:-1])
    assert code == 0
    assert "already holds a compacted version" in err
    assert f"ctxbudget compact {first['session_id'][:12]}" in err
    code, out, _ = run(capsys, "tokens", source, "--json")
    assert json.loads(out)["used_tokens"] == first["tokens_before"]  # the file's own figure
    # recorded, the file goes on top of the stored compacted copy: that figure, and the
    # file's own beside it (it was shown alone, with no word)
    code, out, _ = run(capsys, "tokens", source, "--record", "--json")
    recorded = json.loads(out)
    assert recorded["used_tokens"] < recorded["source_used_tokens"] == first["tokens_before"]
    code, out, _ = run(capsys, "tokens", source, "--record")
    assert f"the file's own is {first['tokens_before']:,}/" in out
    # what the stored copy's compaction took out is all in the file: recall says where
    # to search as that copy sees it (it said only that nothing matched)
    code, out, _ = run(capsys, "recall", source, "REQ-AUTH")
    assert code == 0 and f"ctxbudget recall {first['session_id'][:12]} REQ-AUTH" in out


def test_the_output_is_never_the_file_compacted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """It was overwritten, and with memory:// nothing could bring it back."""
    source = tmp_path / "chat.json"
    source.write_bytes((EXAMPLES / "analyst-ep24.json").read_bytes())
    before = source.read_bytes()
    code, _, err = run(
        capsys,
        "--store",
        "memory://",
        "compact",
        str(source),
        "--ratio",
        "3",
        "--output",
        str(tmp_path / "." / "chat.json"),
    )
    assert code == 2 and "is the file being compacted" in err
    assert source.read_bytes() == before


def _long_conversation(path: Path, exchanges: int = 16) -> Path:
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "orbit",
        "carbon",
        "ledger",
        "vector",
        "signal",
        "harbor",
        "river",
        "stone",
    ]

    def para(seed: int) -> str:
        return " ".join(words[(seed * 7 + k * 5) % len(words)] for k in range(150)) + "."

    messages = []
    for i in range(exchanges):
        messages.append({"role": "user", "content": f"Step {i}: {para(i)}"})
        messages.append({"role": "assistant", "content": f"Done step {i}. {para(i + 50)}"})
    path.write_text(json.dumps(messages), encoding="utf-8")
    return path


def test_kept_exchanges_shrink_only_as_far_as_the_ratio_needs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = str(_long_conversation(tmp_path / "conv.json"))
    argv = ["--store", "memory://", "compact", src, "--ratio", "5", "--dry-run", "--json"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["met_target"]
    # five exchanges keep a fifth out of reach, one would be more than needed
    [note] = [n for n in plan["notes"] if n.startswith("to reach the target, kept the last")]
    kept = int(note.split()[7])
    assert 1 < kept < 5, note


def test_an_explicit_keep_last_is_honoured_and_said(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = str(_long_conversation(tmp_path / "conv.json"))
    argv = ["--store", "memory://", "compact", src, "--ratio", "5", "--keep-last", "5"]
    code, out, err = run(capsys, *argv, "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert not plan["met_target"]
    assert not any("kept the last" in n for n in plan["notes"])
    assert any("--keep-last 5 was honoured" in n for n in plan["notes"])


def test_fork_needs_a_claude_code_transcript(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = str(_long_conversation(tmp_path / "conv.json"))
    code, _, err = run(capsys, "compact", src, "--ratio", "4", "--fork")
    assert code == 2 and "--fork needs a Claude Code transcript" in err


def test_compacting_a_claude_code_transcript_says_the_session_is_unchanged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from cc_session import SESSION_ID, shop_session

    path = shop_session(rounds=8).write(tmp_path / f"{SESSION_ID}.jsonl")
    code, out, err = run(capsys, "compact", str(path), "--ratio", "3")
    assert code == 0, err
    assert "Claude Code's own session is unchanged" in out and "--fork" in out
    code, out, err = run(capsys, "compact", str(path), "--ratio", "3", "--fork")
    assert code == 0, err
    [line] = [x for x in out.splitlines() if x.startswith("Resume it in Claude Code")]
    new_id = line.split()[-1]
    forked = tmp_path / f"{new_id}.jsonl"
    records = [json.loads(x) for x in forked.read_text(encoding="utf-8").splitlines()]
    assert records[0]["subtype"] == "compact_boundary"
    assert {r["sessionId"] for r in records} == {new_id}
    assert any("Summary of the compacted conversation" in json.dumps(r) for r in records)
    assert all(b["parentUuid"] == a["uuid"] for a, b in itertools.pairwise(records))


def test_long_work_says_what_it_does_on_a_terminal_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from ctxbudget.cli import common, compact

    monkeypatch.setattr(common, "PROGRESS_FROM_BYTES", 1)  # as if the file were big
    monkeypatch.setattr(compact, "PROGRESS_FROM_ITEMS", 1)
    analyst, policy = str(EXAMPLES / "analyst-ep24.json"), str(EXAMPLES / "analyst.toml")
    argv = ("compact", analyst, "--policy", policy, "--dry-run", "--json")
    code, out, err = run(capsys, *argv)
    assert code == 0 and "ctxbudget: reading" not in err  # a pipe: nothing said
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(capsys, *argv)
    assert code == 0
    assert "ctxbudget: reading analyst-ep24.json (" in err
    assert "ctxbudget: planning the compaction of" in err
    assert json.loads(out)["dry_run"] is True  # stdout stays the JSON alone
    # applied: the store's one transaction is said too (it was tens of silent seconds)
    code, out, err = run(capsys, *argv[:-2], "--json")
    assert code == 0 and "ctxbudget: storing the session and its compaction (" in err
    from ctxbudget.cli import tokens

    monkeypatch.setattr(tokens, "PROGRESS_FROM_ITEMS", 1)
    code, out, err = run(capsys, "tokens", analyst, "--record", "--json")
    assert code == 0 and "ctxbudget: storing " in err and "Ctrl-C takes effect" in err


def test_a_ratio_makes_the_transcript_that_much_smaller(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from cc_session import SESSION_ID, shop_session

    path = shop_session(rounds=30).write(tmp_path / f"{SESSION_ID}.jsonl")
    for ratio in (2, 3, 5):
        argv = ["--store", "memory://", "compact", str(path), "--ratio", str(ratio)]
        code, out, err = run(capsys, *argv, "--dry-run", "--json")
        assert code == 0, err
        plan = json.loads(out)
        fixed = plan["unattributed_tokens"]
        reached = (plan["tokens_before"] - fixed) / (plan["tokens_after"] - fixed)
        assert ratio * 0.95 <= reached <= ratio * 1.05, (ratio, reached)


def test_fork_of_a_gzipped_transcript_is_refused_before_anything_is_compacted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import gzip

    from cc_session import SESSION_ID, shop_session

    from ctxbudget import Tracker

    plain = shop_session(rounds=8).write(tmp_path / f"{SESSION_ID}.jsonl")
    packed = tmp_path / f"{SESSION_ID}.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    store = f"sqlite:///{tmp_path / 'store.db'}"
    code, _, err = run(capsys, "--store", store, "compact", str(packed), "--ratio", "3", "--fork")
    assert code == 2 and "--fork needs a Claude Code transcript (.jsonl)" in err
    with Tracker(store=store) as tracker:  # exit 2: nothing changed
        assert tracker.sessions() == []


def test_a_dry_run_with_nothing_to_do_says_so_as_the_command_would(
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = str(EXAMPLES / "analyst-ep24.json")
    policy = str(EXAMPLES / "analyst.toml")
    base = ["--store", "memory://", "compact", src, "--policy", policy, "--target", "50000"]
    code, applied, _ = run(capsys, *base)
    assert code == 1 and applied.startswith("Nothing to compact: already under the target")
    code, planned, _ = run(capsys, *base, "--dry-run")
    assert code == 1 and planned == applied  # not a plan that grows the context
    code, out, _ = run(capsys, *base, "--dry-run", "--json")
    plan = json.loads(out)
    assert plan["tokens_after"] == plan["tokens_before"] and plan["tokens_freed"] == 0


def test_a_compacted_session_keeps_its_figure_when_its_file_is_recorded_again(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = str(EXAMPLES / "analyst-ep24.json")
    policy = ["--policy", str(EXAMPLES / "analyst.toml")]
    store = ["--store", f"sqlite:///{tmp_path / 'store.db'}"]
    code, out, err = run(capsys, *store, "compact", src, *policy, "--json")
    assert code == 0, err
    plan = json.loads(out)
    session_id, after = plan["session_id"], plan["tokens_after"]

    def figure(*argv: str) -> int:
        code, out, err = run(capsys, *store, "tokens", *argv, "--json")
        assert code == 0, err
        return int(json.loads(out)["used_tokens"])

    assert figure(session_id) == after
    assert figure(src, *policy, "--record") == after  # the stored context stays
    assert figure(session_id) == after  # and so does its figure, not the file's
    code, out, _ = run(capsys, *store, "events", session_id, "--json")
    crossings = [e for e in json.loads(out) if e["type"] == "threshold_crossed"]
    assert [(e["data"]["from"], e["data"]["to"]) for e in crossings][-1:] == [("blocked", "normal")]
    assert len({json.dumps(e["data"], sort_keys=True) for e in crossings}) == len(crossings)


def test_the_items_before_a_compaction_are_the_sessions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = str(EXAMPLES / "analyst-ep24.json")
    policy = ["--policy", str(EXAMPLES / "analyst.toml")]
    _, out, _ = run(capsys, "--store", "memory://", "tokens", src, *policy, "--json")
    items = json.loads(out)["items"]
    _, out, _ = run(capsys, "--store", "memory://", "compact", src, *policy, "--json")
    plan = json.loads(out)
    assert plan["items_before"] == items  # not counting the summary it made


def test_a_restore_to_a_version_left_without_its_figures_shows_what_it_printed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # the file grew and was compacted again: its own context became a version on top
    # (no figures saved for the one it went past); restoring to that one must show, on
    # every surface, the figure restore printed
    import re

    from cc_session import SESSION_ID, shop_session

    writer = shop_session(rounds=50)
    records = writer.records
    path = tmp_path / f"{SESSION_ID}.jsonl"
    store = ["--store", f"sqlite:///{tmp_path / 'store.db'}"]
    for n in (82, 102):
        writer.records = records[:n]
        writer.write(path)
        code, _, err = run(
            capsys, *store, "compact", str(path), "--window", "60000", "--ratio", "3"
        )
        assert code == 0, err
    assert run(capsys, *store, "restore", SESSION_ID)[0] == 0
    code, out, err = run(capsys, *store, "restore", SESSION_ID, "--to", "2")
    assert code == 0, err
    printed = int(re.search(r"items, ([\d,]+) tokens", out)[1].replace(",", ""))  # type: ignore[index]
    code, out, _ = run(capsys, *store, "tokens", SESSION_ID, "--json")
    assert json.loads(out)["used_tokens"] == printed


def test_tokens_of_a_compacted_session_names_its_unchanged_source(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A compaction changes the stored copy, not the file: ``tokens ID`` shows the
    stored figure and says which command shows the file's (for a Claude Code session,
    what its running session still holds)."""
    from cc_session import SESSION_ID, shop_session

    path = shop_session(rounds=8).write(tmp_path / f"{SESSION_ID}.jsonl")
    store = ["--store", f"sqlite:///{tmp_path / 'store.db'}"]
    code, _, err = run(capsys, *store, "compact", str(path), "--ratio", "3")
    assert code == 0, err
    code, out, _ = run(capsys, *store, "tokens", SESSION_ID[:8])
    assert code == 0
    assert f"its source is unchanged: ctxbudget tokens {path} shows what it holds" in out
    code, out, _ = run(capsys, *store, "tokens", SESSION_ID[:8], "--json")
    data = json.loads(out)
    assert data["source"] == str(path) and data["context_version"] == 2
    _, whole, _ = run(capsys, "tokens", str(path), "--json")
    assert json.loads(whole)["used_tokens"] > data["used_tokens"]  # the file holds more
    code, out, _ = run(capsys, *store, "restore", SESSION_ID[:8])
    assert code == 0
    _, out, _ = run(capsys, *store, "tokens", SESSION_ID[:8])
    assert "its source is unchanged" not in out  # version 1: the file's own context


def _session_with_a_key(tmp_path: Path, at: int) -> Path:
    """A Claude Code session whose ``at``-th tool result prints an access key (which
    the store writes redacted)."""
    from cc_session import SESSION_ID, SessionWriter

    w = SessionWriter(12_000)
    w.user("Deploy the billing service with the staging key.")
    for n in range(6):
        tool_id = f"toolu_{n:02d}"
        w.respond({"type": "tool_use", "id": tool_id, "name": "Bash", "input": {"command": "env"}})
        secret = "AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP\n" if n == at else ""
        w.tool_result(tool_id, secret + f"step {n}: " + "deployed the billing worker. " * 60)
    w.respond({"type": "text", "text": "Deployed."})
    return w.write(tmp_path / f"{SESSION_ID}.jsonl")


def test_a_file_recorded_with_a_secret_is_compacted_as_the_stored_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The store writes secrets redacted, so the file's items and the stored ones
    differ there: recorded, then compacted, the file is still the stored version 1
    (not a second copy of it, with a false "already holds a compacted version")."""
    path = _session_with_a_key(tmp_path, at=1)
    store = ["--store", f"sqlite:///{tmp_path / 'store.db'}"]
    code, _, err = run(capsys, *store, "tokens", str(path), "--record")
    assert code == 0, err
    code, out, err = run(capsys, *store, "compact", str(path), "--ratio", "3")
    assert code == 0, err
    assert "version 1 → 2" in out and "already holds a compacted version" not in err


def test_a_compaction_that_keeps_a_secret_can_be_restored(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The compacted version keeps the last tool result, which prints a key: the store
    holds it redacted, and restore compares with what it wrote (it refused: "items
    were added")."""
    from cc_session import SESSION_ID

    path = _session_with_a_key(tmp_path, at=5)
    store = ["--store", f"sqlite:///{tmp_path / 'store.db'}"]
    code, _, err = run(capsys, *store, "compact", str(path), "--ratio", "3")
    assert code == 0, err
    code, out, err = run(capsys, *store, "restore", SESSION_ID[:8])
    assert code == 0, err
    assert "context version 2 → 1" in out


def test_tokens_names_no_source_for_a_version_a_compaction_did_not_make(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Recorded again after Claude Code compacted the session itself, the stored
    version 2 is the file's own context: no note that it was compacted."""
    from cc_session import SESSION_ID, shop_session

    w = shop_session(rounds=8)
    path = w.write(tmp_path / f"{SESSION_ID}.jsonl")
    store = ["--store", f"sqlite:///{tmp_path / 'store.db'}"]
    assert run(capsys, *store, "tokens", str(path), "--record")[0] == 0
    w.compact_boundary("Summary: fixed rounding in billing (REQ-114).")
    w.respond({"type": "text", "text": "Continuing."})
    w.write(path)
    assert run(capsys, *store, "tokens", str(path), "--record")[0] == 0
    code, out, _ = run(capsys, *store, "tokens", SESSION_ID[:8], "--json")
    data = json.loads(out)
    assert code == 0 and "context_version" not in data
    _, out, _ = run(capsys, *store, "tokens", SESSION_ID[:8])
    assert "its source is unchanged" not in out


def test_if_needed_over_the_trigger_and_under_the_target_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It said the compaction would free only 0 tokens because what is left is
    protected, and to start a fresh session."""
    source = str(EXAMPLES / "analyst-ep24-15.json")
    code, out, _ = run(capsys, "compact", source, "--if-needed", "--trigger", "2")
    assert code == 0
    assert "already under the target (60% of the window)" in out and "fresh session" not in out


def test_events_cut_a_long_line_with_an_ellipsis(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = ("--store", f"sqlite:///{tmp_path / 's.db'}")
    source = str(EXAMPLES / "analyst-ep24.json")
    code, out, _ = run(capsys, *store, "compact", source, "--ratio", "3", "--json")
    assert code == 0
    code, out, _ = run(capsys, *store, "events", json.loads(out)["session_id"])
    lines = [line for line in out.splitlines() if "compacted" in line]
    assert lines and all(line.endswith("…") for line in lines if len(line) > 150)
    assert any(line.endswith("…") for line in lines)


def test_an_openai_request_with_a_system_message_is_written_back_as_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A system message inside ``messages`` is OpenAI's shape (Anthropic's system is a
    field of its own): ``--format same`` wrote such a request back as an Anthropic one,
    which the OpenAI API refuses."""
    turns: list[dict[str, str]] = [{"role": "system", "content": "You are a terse analyst."}]
    for n in range(12):
        turns.append({"role": "user", "content": f"Question {n} about REQ-{n:03d}. " * 30})
        turns.append({"role": "assistant", "content": f"Answer {n}: REQ-{n:03d} holds. " * 30})
    source = tmp_path / "request.json"
    source.write_text(json.dumps({"model": "gpt-4o", "messages": turns}), encoding="utf-8")
    out = tmp_path / "out.json"
    code, _, err = run(capsys, "compact", str(source), "--ratio", "3", "--output", str(out))
    assert code == 0, err
    written = json.loads(out.read_text(encoding="utf-8"))
    messages = written["messages"] if isinstance(written, dict) else written
    assert "system" not in (written if isinstance(written, dict) else {})
    assert messages[0] == {"role": "system", "content": "You are a terse analyst."}
    assert validate_messages(messages, "openai") == []
