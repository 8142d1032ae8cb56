"""What a new user meets (issue 12 §3–5, issue 10 §1): reads that create nothing,
inputs checked, help that shows every command, the installer's path and backup, the
history chart, and what ``compact`` says and exits with. Fixtures are written here."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path

import pytest
from conftest import run_cli as run

from ctxbudget.accounting import HistoryPoint
from ctxbudget.claude_code.install import default_executable, marker_path
from ctxbudget.cli.compact import render_plan
from ctxbudget.compaction import CompactionPolicy
from ctxbudget.compaction.summarize import current_task
from ctxbudget.model import EventType, Item, Kind, Role
from ctxbudget.policy import Policy
from ctxbudget.render import history_chart
from ctxbudget.tokens.counters import get_counter
from ctxbudget.tracker import Tracker

SESSION = "0badcafe-1111-2222-3333-444444444444"
OVERHEAD = 9_000  # what the fake provider counts beyond the transcript


def _record(kind: str, uuid: str, parent: str | None, message: dict[str, object]) -> str:
    return json.dumps(
        {
            "parentUuid": parent,
            "isSidechain": False,
            "type": kind,
            "uuid": uuid,
            "sessionId": SESSION,
            "timestamp": f"2025-07-20T10:{len(uuid):02d}:00.000Z",
            "message": message,
        }
    )


def transcript(path: Path, exchanges: int = 8, *, last_request: str = "continue") -> Path:
    """A Claude Code transcript: each exchange reads a long file; usage on every reply
    reports the transcript so far plus ``OVERHEAD``."""
    count = get_counter("claude-estimate").count  # the provider, as the counter sees it
    lines = []
    parent = None
    sent = 0  # tokens of the transcript the provider has seen so far
    for n in range(exchanges):
        ask = f"Please review module{n}.py and fix the bug REQ-{n:03d} in it."
        if n == exchanges - 1:
            ask = last_request
        body = "\n".join(
            f"line {i}: value_{n}_{i} = compute({i}, {n})  # note" for i in range(60 + 50 * (n % 4))
        )
        sent += 8 + count(ask)
        usage = {
            "input_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": OVERHEAD + sent,
            "output_tokens": 30,
        }
        sent += 30 + count(body)
        second = {**usage, "cache_read_input_tokens": OVERHEAD + sent}
        sent += 20
        u, a, t, r = f"u{n}", f"a{n}", f"t{n}", f"r{n}"
        lines.append(_record("user", u, parent, {"role": "user", "content": ask}))
        lines.append(
            _record(
                "assistant",
                a,
                u,
                {
                    "id": f"msg_{n}a",
                    "role": "assistant",
                    "model": "claude-sonnet-4-20250514",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": f"toolu_{n}",
                            "name": "Read",
                            "input": {"file_path": f"/p/module{n}.py"},
                        }
                    ],
                    "usage": usage,
                },
            )
        )
        lines.append(
            _record(
                "user",
                t,
                a,
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": body}
                    ],
                },
            )
        )
        lines.append(
            _record(
                "assistant",
                r,
                t,
                {
                    "id": f"msg_{n}b",
                    "role": "assistant",
                    "model": "claude-sonnet-4-20250514",
                    "content": [{"type": "text", "text": f"Fixed REQ-{n:03d} in module{n}.py."}],
                    "usage": second,
                },
            )
        )
        parent = r
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- 3. a read never creates a store ------------------------------------------------


@pytest.mark.parametrize("argv", [["sessions"], ["events", "abc"], ["recall", "abc", "q"]])
def test_read_never_creates_an_explicit_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    code, out, err = run(capsys, "--store", f"sqlite:///{missing}", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no store at" in err and "creates none" in err
    assert not missing.parent.parent.exists()


def test_default_store_reads_empty_on_first_run_and_writes_create_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CTXBUDGET_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    code, out, _ = run(capsys, "sessions")
    assert code == 0 and out.startswith("No stored sessions in sqlite:///")
    code, _, err = run(capsys, "events", "abc")
    assert code == 2 and "no stored session" in err
    assert not (tmp_path / "data").exists()
    source = transcript(tmp_path / "s.jsonl", 2)
    assert run(capsys, "tokens", str(source), "--record")[0] == 0
    assert list((tmp_path / "data").rglob("*.db"))
    code, out, _ = run(capsys, "sessions")
    assert code == 0 and SESSION in out


# -- 3. inputs checked ----------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-9000-ultra", "claude-nonexistent-7"])
def test_unknown_model_says_which_window_was_assumed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model: str
) -> None:
    source = transcript(tmp_path / "s.jsonl", 2)
    code, out, err = run(capsys, "tokens", str(source), "--model", model)
    assert code == 0 and "/200,000" in out
    notes = [line for line in err.splitlines() if model in line]
    assert len(notes) == 1 and "assumed a 200,000-token window" in notes[0]
    assert "claude-sonnet" in notes[0] and "gpt-4o" in notes[0] and "--window" in notes[0]
    code, _, err = run(capsys, "tokens", str(source), "--model", model, "--window", "32000")
    assert code == 0 and "assumed" not in err  # a window given: nothing assumed
    code, _, err = run(capsys, "tokens", str(source), "--model", "claude-sonnet-4-5")
    assert "assumed" not in err


def test_window_is_bounded(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = transcript(tmp_path / "s.jsonl", 2)
    code, out, err = run(capsys, "tokens", str(source), "--window", "999999999999999999999")
    assert code == 2 and out == "" and "at most 100,000,000" in err
    assert run(capsys, "tokens", str(source), "--window", "100000000")[0] == 0
    with pytest.raises(Exception, match="at most"):
        Policy(window=100_000_001)


def test_events_type_takes_lists_and_refuses_unknown_types(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = transcript(tmp_path / "s.jsonl", 2)
    assert run(capsys, "tokens", str(source), "--record")[0] == 0
    code, out, _ = run(capsys, "events", SESSION[:8], "--json")
    every = {e["type"] for e in json.loads(out)}
    assert {"session_created", "usage_recorded"} <= every
    code, out, _ = run(
        capsys, "events", SESSION[:8], "--type", "session_created,usage_recorded", "--json"
    )
    listed = {e["type"] for e in json.loads(out)}
    assert code == 0 and listed == {"session_created", "usage_recorded"}
    code, out, _ = run(
        capsys,
        "events",
        SESSION[:8],
        "--type",
        "session_created",
        "--type",
        "usage_recorded",
        "--json",
    )
    assert {e["type"] for e in json.loads(out)} == listed
    code, out, err = run(capsys, "events", SESSION[:8], "--type", "bogus")
    assert code == 2 and out == "" and "'bogus'" in err
    assert all(t.value in err for t in EventType)


def test_transcript_without_messages_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hooks = tmp_path / "hooks.jsonl"
    hooks.write_text(
        "".join(
            json.dumps(
                {"type": "system", "subtype": "hook", "content": f"hook {i}", "sessionId": SESSION}
            )
            + "\n"
            for i in range(4)
        )
    )
    code, out, _ = run(capsys, "tokens", str(hooks))
    assert code == 0 and "holds no conversation: 4 record(s)" in out
    assert "counted locally" not in out
    code, out, _ = run(capsys, "tokens", str(hooks), "--json")
    assert json.loads(out)["conversation"] is False
    code, out, _ = run(capsys, "tokens", str(transcript(tmp_path / "s.jsonl", 2)), "--json")
    assert "conversation" not in json.loads(out)


# -- 4. found without reading the code ------------------------------------------------


def test_help_lists_every_command_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    commands = re.findall(r"^    ([a-z]+)\s", out, flags=re.M)
    assert "statusline" in commands and "tokens" in commands and len(commands) >= 13
    for command in commands:
        code, out, _ = run(capsys, command, "--help")
        assert code == 0, command
        assert re.search(r"^examples?\b.*:\n  .*ctxbudget", out, flags=re.M | re.S), command
    code, out, _ = run(capsys, "hook", "--help")
    for event in (
        "pre-tool-use",
        "user-prompt-submit",
        "pre-compact",
        "session-start",
        "subagent-stop",
    ):
        assert re.search(rf"^  {event}\s+\S", out, flags=re.M), event
    for option in ("--report-tokens N", "--policy FILE", "--window N", "--store URL"):
        assert f"\n  {option}" in out


def test_install_writes_an_absolute_path_and_one_backup(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings = tmp_path / "claude-home" / "settings.json"
    settings.parent.mkdir(parents=True)
    original = b'{\n  "theme": "dark"\n}\n'
    settings.write_bytes(original)
    executable = default_executable()
    assert Path(shlex.split(executable)[0]).is_absolute()
    for _ in range(3):
        code, out, err = run(capsys, "install", "claude-code")
        assert code == 0, err
        assert f"Claude Code will run: {shlex.quote(executable)}" in out
        data = json.loads(settings.read_text())
        command = data["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
        assert command == f"{shlex.quote(executable)} hook pre-tool-use"
        assert data["statusLine"]["command"].startswith(shlex.quote(executable) + " statusline")
        assert run(capsys, "uninstall", "claude-code")[0] == 0
        assert settings.read_bytes() == original and not marker_path(settings).exists()
    backups = list(settings.parent.glob("*.bak"))
    assert [b.read_bytes() for b in backups] == [original]
    code, out, _ = run(capsys, "install", "claude-code", "--executable", "ctxbudget")
    assert code == 0 and "Claude Code will run: ctxbudget\n" in out


# -- 5. smaller ones ------------------------------------------------------------------


def _points(values: list[int], compacted_at: int | None = None) -> list[HistoryPoint]:
    return [
        HistoryPoint(
            call=i,
            reported_tokens=v,
            predicted_tokens=v,
            timestamp=None,
            local_added_tokens=0,
            after_compaction=i == compacted_at,
        )
        for i, v in enumerate(values)
    ]


def test_history_threshold_line_sits_between_the_rows_below_and_above() -> None:
    policy = Policy(window=200_000)  # warning at 150,000, critical 180,000, blocked 190,000
    chart = history_chart(_points([40_000, 120_000, 160_000, 170_000]), policy).splitlines()
    labels = [line.split("┤")[0].split("┼")[0].strip() for line in chart[:-2]]
    warning = next(i for i, line in enumerate(chart) if line.endswith("warning"))
    assert chart[warning].strip().startswith("150k ┼")
    assert labels[warning - 1] == "167k" and labels[warning + 1] == "150k"
    # the columns at or above the threshold cross the line, the others are dots
    assert chart[warning].split("┼")[1].split()[0] == "··██"
    for name, tokens in (("critical", "180k"), ("blocked", "190k")):
        assert any(line.strip().startswith(f"{tokens} ┼") and line.endswith(name) for line in chart)


def test_history_marks_ctxbudget_compaction(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plain = history_chart(_points([50_000, 60_000]), Policy())
    assert "compaction" not in plain
    marked = history_chart(_points([50_000, 60_000]), Policy(), compacted_since=True)
    assert "▲  compaction (the last one by ctxbudget" in marked
    source = transcript(tmp_path / "s.jsonl", 8)
    assert run(capsys, "tokens", str(source), "--record")[0] == 0
    code, out, _ = run(capsys, "tokens", SESSION[:8], "--history")
    assert code == 0 and "ctxbudget" not in out.split("API calls")[0]
    assert run(capsys, "compact", SESSION[:8], "--ratio", "3")[0] == 0
    code, out, _ = run(capsys, "tokens", SESSION[:8], "--history")
    assert code == 0 and "▲  compaction (the last one by ctxbudget" in out


def test_memory_store_compaction_offers_no_restore(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = transcript(tmp_path / "s.jsonl", 8)
    code, out, _ = run(capsys, "--store", "memory://", "compact", str(source), "--ratio", "3")
    assert code == 0 and "COMPACTION COMPLETE" in out and "ctxbudget restore" not in out
    code, out, _ = run(capsys, "compact", str(source), "--ratio", "3")
    assert code == 0 and f'undo with "ctxbudget restore {SESSION[:12]}"' in out


def test_gate_on_a_file_names_the_command_that_compacts_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = transcript(tmp_path / "s.jsonl", 8)
    argv = ["gate", str(source), "--agent", "researcher", "--tokens", "2000", "--window", "28000"]
    code, _, err = run(capsys, *argv)
    assert code == 3 and "fits after compaction" in err
    # under the window it was given: plain `compact` would plan for the default window
    command = f"ctxbudget compact {source} --window 28000"
    assert f'"{command}"' in err and "SESSION" not in err
    code, out, _ = run(capsys, *argv, "--json")  # the same reason
    assert code == 3 and command in json.loads(out)["reason"]


def test_current_task_is_the_last_substantive_request(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def user(text: str) -> Item:
        return Item(role=Role.USER, kind=Kind.USER_TEXT, text=text)

    reply = Item(role=Role.ASSISTANT, kind=Kind.ASSISTANT_TEXT, text="Done.")
    items = [user("Add a --json flag to the export command"), reply, user("continue"), reply]
    assert current_task(items) == "Add a --json flag to the export command"
    assert current_task([*items, user("OK, go on please"), user("Thanks!")]) == (
        "Add a --json flag to the export command"
    )
    assert current_task([user("continue the export work with CSV too")]).startswith("continue the")
    assert current_task([user("continue")]) == "continue"  # nothing better to say
    assert current_task([reply]) == ""
    source = transcript(tmp_path / "s.jsonl", 8, last_request="go on")
    code, out, _ = run(capsys, "compact", str(source), "--ratio", "3")
    assert code == 0 and "• Current task: Please review module6.py and fix the bug REQ-006" in out


# -- issue 10 §1: --ratio and exit codes ----------------------------------------------


def test_ratio_shrinks_the_transcript_and_shows_the_overhead_apart(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = transcript(tmp_path / "s.jsonl", 8)
    code, out, _ = run(capsys, "compact", str(source), "--dry-run", "--ratio", "3", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["dry_run"]
    overhead = plan["unattributed_tokens"]
    changeable = plan["tokens_before"] - overhead
    assert plan["target_tokens"] == overhead + changeable // 3
    # the fixed overhead is its own line, apart from what compaction changes
    tracker = Tracker(store="memory://")
    session = tracker.load(source)
    planned = session.plan_compaction(CompactionPolicy(target_ratio=3))
    shown = render_plan(dataclasses.replace(planned, overhead=49_519), 200_000)
    fixed = [line for line in shown.splitlines() if "49,519" in line]
    assert fixed == [
        "Fixed:     49,519 more the provider adds: system prompt and tools; "
        "compaction cannot change them"
    ]
    assert "Fixed:" not in render_plan(dataclasses.replace(planned, overhead=0), 200_000)


def test_compact_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = transcript(tmp_path / "s.jsonl", 8)
    # applied, but the target is under what must stay: still 0, and said in one line
    code, out, _ = run(capsys, "compact", str(source), "--target", "100")
    assert code == 0 and "COMPACTION COMPLETE" in out
    assert len([line for line in out.splitlines() if "below what must stay" in line]) == 1
    # nothing could be compacted: 1
    code, out, _ = run(capsys, "compact", str(source), "--target", "10000000")
    assert code == 1 and "Nothing to compact" in out
    # bad input: 2, nothing stored
    code, _, err = run(capsys, "compact", str(source), "--ratio", "0.5")
    assert code == 2 and "ratio must be above 1" in err
    code, out, _ = run(capsys, "compact", "--help")
    assert "Exit codes: 0 a compaction was applied" in " ".join(out.split())


def test_tracker_read_only_store_refuses_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CTXBUDGET_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with Tracker(create_store=False) as tracker:
        assert tracker.sessions() == []
        with pytest.raises(Exception, match="opened only to read"):
            tracker.session(model="claude-sonnet-4-5")
    assert not (tmp_path / "data").exists()


def test_sessions_lists_claude_code_transcripts_newest_first_with_their_figures(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import os

    from cc_session import shop_session

    from ctxbudget.claude_code.windows import remember_window

    project = tmp_path / "claude-home" / "projects" / "-home-dev-shop"
    project.mkdir(parents=True)
    ids = ["11111111-aaaa-4bbb-8ccc-000000000001", "22222222-aaaa-4bbb-8ccc-000000000002"]
    older = shop_session(rounds=2).write(project / f"{ids[0]}.jsonl", session_id=ids[0])
    newer = shop_session(rounds=6).write(project / f"{ids[1]}.jsonl", session_id=ids[1])
    shop_session(rounds=1).write(project / "agent-1234abcd.jsonl")  # a sub-agent's own file
    os.utime(older, (1_700_000_000, 1_700_000_000))
    # the window Claude Code's status line payload reported for one of them: every
    # surface shows the figure in it, the list too
    remember_window(newer.stem, 160_000)
    code, out, err = run(capsys, "sessions", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [newer.stem, older.stem]
    assert rows[0]["max_tokens"] == 160_000
    for row, path in zip(rows, (newer, older), strict=True):
        _, tokens, _ = run(capsys, "tokens", str(path), "--json")
        figure = json.loads(tokens)
        # where Claude Code ran, as its records say (not the folder's lossy name)
        assert row["kind"] == "claude-code" and row["project"] == "/home/dev/shop"
        assert (row["used_tokens"], row["max_tokens"]) == (
            figure["used_tokens"],
            figure["max_tokens"],
        )
    code, out, _ = run(capsys, "sessions")
    assert out.startswith("Claude Code sessions") and f"{rows[0]['used_tokens']:,}/" in out
    for path in (newer, older):  # the figure `tokens` prints, percent rounded down alike
        _, tokens, _ = run(capsys, "tokens", str(path))
        figure = tokens.split("Tokens: ", 1)[1].split(" |", 1)[0]  # "1,234/160,000 (0%)"
        assert any(line.startswith(path.stem) and figure in line for line in out.splitlines())
    code, out, _ = run(capsys, "sessions", "--stored", "--json")
    assert json.loads(out) == []


def test_the_advice_at_warning_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    import shlex

    examples = Path(__file__).resolve().parent.parent / "examples"
    source = str(examples / "analyst-ep24-15.json")
    policy = str(examples / "analyst.toml")
    code, out, _ = run(capsys, "--store", "memory://", "tokens", source, "--policy", policy)
    [advice] = [line for line in out.splitlines() if line.startswith("Recommendation:")]
    command = advice.split('"')[1]  # preview with "ctxbudget compact … --dry-run"
    words = shlex.split(command)
    assert words[:5] == ["ctxbudget", "--store", "memory://", "compact", source]
    assert "--dry-run" in words
    code, plan, err = run(capsys, *words[1:])  # as written: the same store too
    assert code == 0, err
    assert "COMPACTION PLAN" in plan and "Freed:" in plan


def test_compact_without_a_source_plans_the_newest_claude_code_session(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from cc_session import SESSION_ID, shop_session

    project = tmp_path / "claude-home" / "projects" / "-home-dev-shop"
    project.mkdir(parents=True)
    shop_session(rounds=8).write(project / f"{SESSION_ID}.jsonl")
    code, out, err = run(capsys, "--store", "memory://", "compact", "--ratio", "3", "--dry-run")
    assert code == 0, err
    _, named, _ = run(
        capsys,
        "--store",
        "memory://",
        "compact",
        str(project / f"{SESSION_ID}.jsonl"),
        "--ratio",
        "3",
        "--dry-run",
    )
    assert out == named


@pytest.mark.parametrize("peak", [9_055, 14_285])
def test_history_labels_read_in_order_down_the_axis(peak: int) -> None:
    # a 12k window: rows 1k apart, thresholds at 9k, 10.8k and 11.4k; a peak over the
    # window makes the rows' labels fall between the thresholds
    policy = Policy(window=12_000)
    chart = history_chart(_points([2_000, 6_000, peak]), policy, now=peak + 361)
    lines = chart.splitlines()
    labels = [float(line.split()[0].rstrip("k")) for line in lines if "┤" in line or "┼" in line]
    assert labels == sorted(labels, reverse=True)
    rows = [line.split()[0] for line in lines if "┤" in line]
    assert len(rows) == len(set(rows))  # no two rows with the same label
    assert any(line.strip().startswith("11.4k ┼") and line.endswith("blocked") for line in lines)
    assert lines[-1].endswith(f"last {peak:,} · now {peak + 361:,}")


def test_a_store_url_naming_a_directory_says_so_on_a_read_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "stores"
    folder.mkdir()
    code, _, err = run(capsys, "--store", f"sqlite:///{folder}", "tokens", "file-0123456789ab")
    assert code == 2 and "is a directory; name a file instead" in err


def test_an_empty_or_contentless_message_list_says_what_it_is(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    code, _, err = run(capsys, "--store", "memory://", "tokens", str(empty))
    assert code == 2 and "an empty message list" in err
    bare = tmp_path / "bare.json"
    bare.write_text('[{"role": "user"}]', encoding="utf-8")
    code, out, _ = run(capsys, "--store", "memory://", "tokens", str(bare))
    assert code == 0 and "holds no conversation: 1 message(s), none with any content" in out
    assert "hook output" not in out  # that is a Claude Code transcript's case


def test_events_say_what_a_policy_change_changed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = transcript(tmp_path / "s.jsonl", 4)
    assert run(capsys, "tokens", str(source), "--record")[0] == 0
    assert run(capsys, "tokens", str(source), "--record", "--window", "50000")[0] == 0
    code, out, _ = run(capsys, "events", SESSION[:8], "--type", "policy_changed")
    assert code == 0 and "window: 200000 → 50000" in out
