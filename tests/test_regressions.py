"""Behaviours a user relies on that earlier versions got wrong (found in review)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli as run

from ctxbudget import ConfigurationError, Level, Policy, Tracker
from ctxbudget.sources import load_source

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_trailing_non_conversation_records_do_not_empty_the_context(
    fixtures: Path, tmp_path: Path
) -> None:
    path = tmp_path / "live.jsonl"
    shutil.copy(fixtures / "claude_code_small.jsonl", path)
    with path.open("a") as f:
        f.write(
            json.dumps({"type": "file-history-snapshot", "messageId": "m", "snapshot": {}}) + "\n"
        )
        f.write(json.dumps({"type": "summary", "summary": "Fix add()", "leafUuid": "a4"}) + "\n")
    t = load_source(path)
    assert len(t.items) == 9 and t.anchor_call == 3


def test_multi_block_records_can_be_recorded(
    fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (fixtures / "claude_code_small.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["uuid"] = "u-multi"
    record["parentUuid"] = "a4"
    record["message"] = {
        "role": "user",
        "content": [
            {"type": "text", "text": "see screenshot"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
            },
        ],
    }
    path = tmp_path / "multi.jsonl"
    path.write_text("\n".join([*lines, json.dumps(record)]) + "\n")
    code, _, err = run(capsys, "tokens", str(path), "--record")
    assert code == 0, err


def test_breakdown_never_exceeds_the_total(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tokens", str(EXAMPLES / "analyst-ep24-15.json"), "--json")
    data = json.loads(out)
    parts = sum(data["breakdown"]["component"].values()) + data["breakdown"]["unattributed"]
    assert code == 0 and parts == pytest.approx(data["used_tokens"], abs=3)


def test_recording_again_appends_only_what_is_new(tmp_path: Path, fixtures: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    path = tmp_path / "t.jsonl"
    lines = (fixtures / "claude_code_small.jsonl").read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n")  # before the branch, the odd record, a4
    first = Tracker(store=url).load(path)
    first.save()
    path.write_text("\n".join(lines) + "\n")  # the session went on
    second = Tracker(store=url).load(path)
    second.save()
    again = Tracker(store=url).load(path)
    again.save()
    tracker = Tracker(store=url)
    assert [v.version for v in tracker.store.versions(first.id)] == [1]
    assert len(tracker.open(first.id).items) == len(second.items)
    added = [e.data["count"] for e in tracker.open(first.id).events(types=["items_added"])]
    assert sum(added) == len(second.items)
    assert len(tracker.open(first.id).events(types=["usage_recorded"])) == 4


def test_viewing_with_flags_does_not_change_the_stored_session(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run(
        capsys,
        "tokens",
        str(EXAMPLES / "analyst-ep24-15.json"),
        "--policy",
        str(EXAMPLES / "analyst.toml"),
        "--record",
    )
    _, out, _ = run(capsys, "tokens", "file-", "--window", "50000", "--json")
    assert json.loads(out)["max_tokens"] == 50000
    _, out, _ = run(capsys, "tokens", "file-", "--json")
    data = json.loads(out)
    assert data["max_tokens"] == 12000
    _, out, _ = run(capsys, "events", "file-", "--json")
    assert "policy_changed" not in {e["type"] for e in json.loads(out)}


def test_stored_session_keeps_its_history_and_threshold_events(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run(
        capsys,
        "tokens",
        str(EXAMPLES / "analyst-ep24.json"),
        "--policy",
        str(EXAMPLES / "analyst.toml"),
        "--record",
    )
    _, out, _ = run(capsys, "tokens", "file-", "--history", "--json")
    assert len(json.loads(out)["history"]) == 25 + 1  # each call, then now
    _, out, _ = run(capsys, "events", "file-", "--type", "threshold_crossed", "--json")
    crossed = [e["data"]["to"] for e in json.loads(out)]
    assert crossed[:3] == ["warning", "critical", "blocked"]


def test_no_room_left_is_blocked() -> None:
    tracker = Tracker(store="memory://")
    s = tracker.session(model="gpt-4o", window=10_000, reserved_output=4_000)
    s.record_usage(6_500)
    status = s.status()
    assert status.percent < 75 and status.remaining_tokens == 0
    assert status.level is Level.BLOCKED


def test_explicit_default_window_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys,
        "tokens",
        str(EXAMPLES / "analyst-ep24-15.json"),
        "--model",
        "gpt-4o",
        "--window",
        "200000",
        "--json",
    )
    assert json.loads(out)["max_tokens"] == 200000


def test_session_by_exact_id_only() -> None:
    tracker = Tracker(store="memory://")
    tracker.session("abc123", model="gpt-4o")
    other = tracker.session("abc", model="gpt-4o", window=5000)
    assert other.id == "abc" and other.policy.window == 5000


@pytest.mark.parametrize(
    "toml",
    [
        "window = true\n",
        "[policy.thresholds]\nwarn = 10\n",
        "policy = 3\n",
    ],
)
def test_policy_file_mistakes(tmp_path: Path, toml: str) -> None:
    f = tmp_path / "p.toml"
    f.write_text(toml)
    with pytest.raises(ConfigurationError):
        Policy.from_toml(f)


def test_ambiguous_prefix_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    tracker = Tracker()
    tracker.session("same-1", model="gpt-4o")
    tracker.session("same-2", model="gpt-4o")
    code, _, err = run(capsys, "tokens", "same")
    assert code == 2 and "ambiguous" in err


def test_recording_a_compacted_file_again_keeps_the_compaction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads((EXAMPLES / "analyst-ep24.json").read_text())
    path = tmp_path / "session.json"
    doc_start = {**doc, "messages": doc["messages"][:40]}
    path.write_text(json.dumps(doc_start))
    run(capsys, "tokens", str(path), "--policy", str(EXAMPLES / "analyst.toml"), "--record")
    code, out, _ = run(capsys, "compact", str(path), "--ratio", "3", "--json")
    compacted = json.loads(out)
    assert code == 0 and compacted["applied"]
    run(capsys, "tokens", str(path), "--record")  # again, unchanged, no flags
    _, out, _ = run(capsys, "tokens", "file-", "--json")
    data = json.loads(out)
    assert data["max_tokens"] == 12000  # the stored policy stays
    assert data["items"] == compacted["items_after"]  # still compacted
    path.write_text(json.dumps(doc))  # the conversation went on: 10 more messages
    run(capsys, "tokens", str(path), "--record")
    _, out, _ = run(capsys, "tokens", "file-", "--json")
    assert json.loads(out)["items"] == compacted["items_after"] + 10
