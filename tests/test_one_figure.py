"""One session, one figure: every surface shows the same used / window / percent for
the same moment (the next request's context: transcript + provider overhead + the last
response), with the provider's overhead as its own line where components are listed."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from cc_session import SESSION_ID, shop_session
from conftest import run_cli as run

from ctxbudget.claude_code.hooks import HookOptions, run_hook
from ctxbudget.claude_code.statusline import render_statusline
from ctxbudget.model import Carried
from ctxbudget.tracker import Tracker


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run(capsys, *argv)
    assert code in (0, 3), err  # 3: the gate denied, still with its JSON
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def _line_figure(line: str) -> tuple[int, int, int]:
    """used, window, whole percent from ``Tokens: 12,345/20,000 (61%)``."""
    m = re.search(r"([\d,]+)/([\d,]+)(?: tokens)?\)?", line)
    p = re.search(r"(\d+)%", line)
    assert m and p, line
    return int(m[1].replace(",", "")), int(m[2].replace(",", "")), int(p[1])


def test_every_surface_shows_the_same_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shop_session().write(tmp_path / f"{SESSION_ID}.jsonl")
    src = str(path)
    base = _json(capsys, "tokens", src, "--json")
    # a window the session fills to about 85%: the hooks speak from the warning level on
    window = math.ceil(base["used_tokens"] / 0.85)
    w = ["--window", str(window)]

    tokens = _json(capsys, "tokens", src, "--json", *w)
    used, percent = tokens["used_tokens"], tokens["percent"]
    overhead = tokens["breakdown"]["unattributed"]
    assert tokens["max_tokens"] == window and tokens["anchored_on_usage"]
    assert overhead > 10_000  # the hidden system prompt and tools are counted
    assert tokens["overhead_tokens"] == overhead and not tokens["overhead_estimated"]
    assert sum(tokens["breakdown"]["component"].values()) + overhead == used

    budget = _json(capsys, "budget", src, "--json", *w)
    assert (budget["used_tokens"], budget["max_tokens"], budget["percent"]) == (
        used,
        window,
        percent,
    )
    assert budget["overall"]["total_used"] == used
    assert budget["provider_overhead"]["tokens"] == overhead
    assert budget["overall"]["fixed_tokens"] == overhead
    assert sum(c["used_tokens"] for c in budget["components"].values()) + overhead == used

    gate = _json(capsys, "gate", src, "--agent", "reviewer", "--tokens", "1", "--json", *w)
    assert (gate["used_tokens"], gate["window"]) == (used, window)

    compact = _json(capsys, "compact", src, "--dry-run", "--json", *w)
    assert (compact["tokens_before"], compact["window"]) == (used, window)
    assert compact["unattributed_tokens"] == overhead

    history = _json(capsys, "tokens", src, "--history", "--json", *w)["history"]
    assert history[-1]["now"] and history[-1]["used_tokens"] == used
    assert history[-1]["percent"] == percent
    # the last call's usage is below: the figure adds its response and what came since
    assert history[-2]["reported_tokens"] < used

    assert percent == math.floor(10_000 * used / window) / 100  # rounded down, as lines print
    figure = (used, window, math.floor(100 * used / window))  # lines print whole percents
    stdin = json.dumps({"session_id": SESSION_ID, "transcript_path": src})
    line = render_statusline(stdin, window=window, use_cache=False)
    assert _line_figure(line) == figure

    tracker = Tracker(store="memory://")
    options = HookOptions(policy_fields={"window": window})
    prompt = {
        "hook_event_name": "UserPromptSubmit",
        "session_id": SESSION_ID,
        "transcript_path": src,
        "prompt": "go on",
    }
    said = run_hook("user-prompt-submit", json.dumps(prompt), tracker, options)
    assert _line_figure(json.loads(said.stdout)["systemMessage"]) == figure
    spawn = {
        "hook_event_name": "PreToolUse",
        "session_id": SESSION_ID,
        "transcript_path": src,
        "tool_name": "Task",
        "tool_input": {"subagent_type": "reviewer", "prompt": "Review billing.py"},
    }
    denied = run_hook(
        "pre-tool-use",
        json.dumps(spawn),
        tracker,
        HookOptions(report_tokens=window, policy_fields={"window": window}),
    )
    assert denied.exit_code == 2
    assert re.search(rf"\b{used:,} \+ ", denied.stderr), denied.stderr

    # the overhead is its own line where components are listed
    _, text, _ = run(capsys, "budget", src, *w)
    assert text.splitlines()[1].startswith(f"Tokens: {used:,}/{window:,}")
    assert re.search(rf"^provider overhead\s+{overhead:,}\s+{overhead:,}\s+fixed$", text, re.M)
    assert f"overall: {used:,} / {window:,} used" in text
    _, text, _ = run(capsys, "tokens", src, "--breakdown", *w)
    assert re.search(rf"unattributed \(system prompt, tools, framing\)\s+{overhead:,}", text)


def test_after_claude_codes_compact_the_overhead_is_estimated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = shop_session(overhead=21_000)
    session.compact_boundary("Summary: REQ-114 rounding fixed in shop/billing.py; tests pass.")
    session.user("Now add a changelog entry.", after=40)
    src = str(session.write(tmp_path / f"{SESSION_ID}.jsonl"))

    tokens = _json(capsys, "tokens", src, "--json")
    overhead = tokens["breakdown"]["unattributed"]
    assert not tokens["anchored_on_usage"] and tokens["overhead_estimated"]
    # what every earlier usage counted beyond its transcript: the 21,000 of the
    # fixture, give or take the local counter's error
    assert 19_000 < overhead < 23_000
    assert tokens["used_tokens"] < overhead + 200  # a short summary and one request

    _, text, _ = run(capsys, "tokens", src, "--breakdown")
    assert "are estimated from the earlier usage" in text
    assert "unattributed (system prompt, tools, framing, estimated)" in text

    stdin = json.dumps({"session_id": SESSION_ID, "transcript_path": src})
    line = render_statusline(stdin, use_cache=False)
    assert _line_figure(line)[0] == tokens["used_tokens"]

    budget = _json(capsys, "budget", src, "--json")
    assert budget["used_tokens"] == tokens["used_tokens"]
    assert budget["provider_overhead"] == {"tokens": overhead, "estimated": True}


def test_a_compacted_file_says_what_the_provider_adds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = str(shop_session(rounds=12).write(tmp_path / f"{SESSION_ID}.jsonl"))
    out_file = tmp_path / "compacted.json"
    code, out, err = run(
        capsys, "compact", src, "--dry-run", "--ratio", "2", "--output", str(out_file)
    )
    assert code == 0, err
    plan = _json(capsys, "compact", src, "--dry-run", "--ratio", "2", "--json")
    after, overhead = plan["tokens_after"], plan["unattributed_tokens"]
    line = next(x for x in out.splitlines() if x.startswith("It holds"))
    assert line == (
        f"It holds the transcript only, ~{after - overhead:,} tokens; the provider adds the "
        f"system prompt and tools (~{overhead:,}) when it is sent: {after:,} in all (After)."
    )


def test_a_grant_never_counts_on_room_the_overhead_fills(tmp_path: Path) -> None:
    path = shop_session().write(tmp_path / f"{SESSION_ID}.jsonl")
    used = Tracker(store="memory://").load(path).status().used_tokens
    # a window with 2,000 tokens left beyond everything the provider counts
    session = Tracker(store="memory://").load(path, window=used + 2_000)
    status = session.status()
    assert status.breakdown.unattributed > 10_000  # the system prompt and tools
    decision = session.allocate("knowledge_base", 4_000, allow_partial=True)
    assert decision.granted <= 2_000 + decision.freed_by_cleanup
    assert session.budget_report().to_dict()["overall"]["total_used"] <= used + 2_000


def test_a_grant_the_overhead_leaves_no_room_for_says_so(tmp_path: Path) -> None:
    """An overhead over the whole budget (a user-set window below it) left every
    component 0 allocated, and a denial said "raise its share or archive what it no
    longer needs": neither helps."""
    path = shop_session().write(tmp_path / f"{SESSION_ID}.jsonl")
    overhead = Tracker(store="memory://").load(path).status().breakdown.unattributed
    session = Tracker(store="memory://").load(path, window=overhead // 2)
    decision = session.allocate("knowledge_base", 1_000)
    assert decision.granted == 0
    assert "provider's overhead" in decision.reason and "share" not in decision.reason


def test_the_window_claude_code_reports_is_every_surfaces_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the model table says 200,000 for this model; Claude Code says 400,000 (a plan,
    # a beta): what it told the status line is the window everywhere
    path = shop_session().write(tmp_path / f"{SESSION_ID}.jsonl")
    src = str(path)
    assert _json(capsys, "tokens", src, "--json")["max_tokens"] == 200_000
    tracker = Tracker(store="memory://")  # the hooks store the session with that window
    start = {"session_id": SESSION_ID, "transcript_path": src, "source": "resume"}
    assert run_hook("session-start", json.dumps(start), tracker, HookOptions()).exit_code == 0
    assert tracker.store.get_session(SESSION_ID).policy["window"] == 200_000
    payload = {
        "session_id": SESSION_ID,
        "transcript_path": src,
        "context_window": {"context_window_size": 400_000},
    }
    line = render_statusline(json.dumps(payload))
    assert "/400,000" in line
    tokens = _json(capsys, "tokens", src, "--json")
    assert tokens["max_tokens"] == 400_000
    assert _json(capsys, "budget", src, "--json")["max_tokens"] == 400_000
    _, out, _ = run(capsys, "compact", src, "--dry-run", "--json")  # 1: nothing to compact
    assert json.loads(out)["window"] == 400_000
    # without the payload's window, the status line uses what it remembered
    line = render_statusline(json.dumps({"session_id": SESSION_ID, "transcript_path": src}))
    assert _line_figure(line)[:2] == (tokens["used_tokens"], 400_000)
    # the hooks' stored session follows it
    assert run_hook("session-start", json.dumps(start), tracker, HookOptions()).exit_code == 0
    assert tracker.store.get_session(SESSION_ID).policy["window"] == 400_000
    # a window given on the command line wins
    assert _json(capsys, "tokens", src, "--json", "--window", "300000")["max_tokens"] == 300_000


def test_a_long_context_beta_in_the_request_sets_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = shop_session()
    w.records.append(
        {
            "type": "api-request",
            "sessionId": SESSION_ID,
            "params": {"model": "claude-sonnet-4-5", "betas": ["context-1m-2025-08-07"]},
        }
    )
    path = w.write(tmp_path / f"{SESSION_ID}.jsonl")
    assert _json(capsys, "tokens", str(path), "--json")["max_tokens"] == 1_000_000


def test_a_fork_counts_the_system_prompt_and_tools_before_its_first_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``compact --fork`` writes a session no usage has measured yet: its boundary
    carries what the original's provider counted beyond the transcript and the
    correction the original learned, so the fork's figure is the plan's "After" (not
    its transcript alone, ~half of it, nor counted with the prior) on every surface."""
    path = shop_session(rounds=8).write(tmp_path / f"{SESSION_ID}.jsonl")
    store = ["--store", f"sqlite:///{tmp_path / 'store.db'}"]
    plan = _json(capsys, *store, "compact", str(path), "--ratio", "3", "--fork", "--json")
    overhead = plan["unattributed_tokens"]
    assert overhead > 10_000  # the fixture's hidden system prompt and tools
    fork = plan["fork"]["path"]
    boundary = json.loads(Path(fork).read_text(encoding="utf-8").splitlines()[0])
    carried = boundary["ctxbudget"]
    assert carried["overheadTokens"] == overhead
    assert carried["counter"] == _json(capsys, "tokens", str(path), "--json")["counter"]

    tokens = _json(capsys, "tokens", fork, "--json")
    assert tokens["overhead_tokens"] == overhead and tokens["overhead_estimated"]
    # the plan's "After": the fork holds the plan's items, counted with the correction
    # the original learned (with the prior, 1.6% under here)
    assert abs(tokens["used_tokens"] - plan["tokens_after"]) <= 0.001 * plan["tokens_after"]
    stdin = json.dumps({"session_id": plan["fork"]["session_id"], "transcript_path": fork})
    line = render_statusline(stdin, use_cache=False)
    assert _line_figure(line)[0] == tokens["used_tokens"]
    for _ in range(2):  # its state saved, then read back: the same
        assert _line_figure(render_statusline(stdin))[0] == tokens["used_tokens"]
    budget = _json(capsys, "budget", fork, "--json")
    assert budget["used_tokens"] == tokens["used_tokens"]
    # stored, and read back from the store without the file: the same figure
    _json(capsys, *store, "tokens", fork, "--record", "--json")
    stored = _json(capsys, *store, "tokens", plan["fork"]["session_id"], "--json")
    assert stored["used_tokens"] == tokens["used_tokens"]


def test_a_fork_continued_from_a_new_root_carries_nothing_on_any_surface(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message with no parent after the fork's boundary opens a context of its own:
    the carried overhead belongs to the fork's, so neither reader adds it."""
    path = shop_session(rounds=8).write(tmp_path / f"{SESSION_ID}.jsonl")
    plan = _json(capsys, "compact", str(path), "--ratio", "3", "--fork", "--json")
    fork = Path(plan["fork"]["path"])
    root = {
        "type": "user",
        "parentUuid": None,
        "uuid": "root-after-fork",
        "sessionId": plan["fork"]["session_id"],
        "timestamp": "2026-01-01T00:00:00.000Z",
        "message": {"role": "user", "content": "A new start."},
    }
    with fork.open("a", encoding="utf-8") as f:
        f.write(json.dumps(root) + "\n")
    tokens = _json(capsys, "tokens", str(fork), "--json")
    assert tokens["used_tokens"] < 1_000  # the new root's few words, no overhead
    stdin = json.dumps({"session_id": plan["fork"]["session_id"], "transcript_path": str(fork)})
    line = render_statusline(stdin, use_cache=False)
    assert _line_figure(line)[0] == tokens["used_tokens"]


@pytest.mark.parametrize(
    "written",
    [
        {"overheadTokens": 900},  # ctxbudget before the correction was carried
        {"overheadTokens": 900, "counter": "claude-estimate", "perToken": float("nan")},
        {"overheadTokens": 900, "counter": "claude-estimate", "perToken": -1, "perItem": 30},
        {"overheadTokens": 900, "counter": 7, "perToken": 1.0, "perItem": 30},
        {"overheadTokens": 900, "counter": "claude-estimate", "perToken": True, "perItem": 3},
    ],
)
def test_a_boundary_carrying_no_usable_correction_carries_its_overhead(
    written: dict[str, object],
) -> None:
    """A correction that is absent or not a number is left out; the overhead holds."""
    carried = Carried.from_data(written)
    assert carried == Carried(900)
    assert carried.correction_for("claude-estimate") is None


def test_a_carried_correction_holds_only_for_the_counter_it_was_learned_with() -> None:
    carried = Carried.from_data(Carried(900, "claude-estimate", 1.01, 27.5).to_data())
    assert carried is not None
    assert carried.correction_for("claude-estimate") == (1.01, 27.5)
    assert carried.correction_for("claude") is None
    assert Carried.from_data({"overheadTokens": 0}) is None


def test_the_percent_is_rounded_down_in_json_as_in_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Just under the blocked threshold, JSON said 95.0 (rounded to nearest) beside
    level critical, while the text said 94%: both round down now."""
    path = shop_session(rounds=8).write(tmp_path / f"{SESSION_ID}.jsonl")
    used = _json(capsys, "tokens", str(path), "--json")["used_tokens"]
    window = used * 100_000 // 94_999 + 1  # used / window just under 95%
    assert 94.99 < 100 * used / window < 95
    for command in ("tokens", "budget"):
        shown = _json(capsys, command, str(path), "--json", "--window", str(window))
        assert shown["percent"] == 94.99
    tokens = _json(capsys, "tokens", str(path), "--json", "--window", str(window))
    assert tokens["level"] == "critical"
    _, out, _ = run(capsys, "tokens", str(path), "--window", str(window))
    assert "(94%)" in out


def _usage_payload(src: str, usage: dict[str, int] | None) -> str:
    """Claude Code's status line payload, with ``usage`` as ``current_usage``."""
    window = {"context_window_size": 200_000, "current_usage": usage}
    return json.dumps({"session_id": SESSION_ID, "transcript_path": src, "context_window": window})


def _last_usage(records: list[dict]) -> dict[str, int]:
    usage: dict[str, int] = next(
        r["message"]["usage"] for r in reversed(records) if r["type"] == "assistant"
    )
    return dict(usage)


def test_the_status_line_given_claude_codes_usage_shows_the_same_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Claude Code's ``current_usage`` is the transcript's latest call: the status line
    shows ``tokens``' figure, which adds to that usage the response's framing and what
    came after it (a sub-agent's report), however the calls before went."""
    session = shop_session()
    usage = _last_usage(session.records)
    path = tmp_path / f"{SESSION_ID}.jsonl"
    src = str(path)
    # the first call before the transcript exists: Claude Code's figure, nothing saved
    assert _line_figure(render_statusline(_usage_payload(src, usage)))[0] == (sum(usage.values()))
    session.write(path)
    used = _json(capsys, "tokens", src, "--json")["used_tokens"]
    # the response's one block adds its framing to input + cache + output
    assert used > sum(usage.values())
    assert _line_figure(render_statusline(_usage_payload(src, usage)))[0] == used
    # a sub-agent's report arrives: Claude Code's usage is the same, the context is not
    session.tool_result("toolu_report", "Review: " + "billing.py rounds half-even. " * 80)
    session.write(path)
    later = _json(capsys, "tokens", src, "--json")["used_tokens"]
    assert later > used + 400
    assert _line_figure(render_statusline(_usage_payload(src, usage)))[0] == later
    # Claude Code has made a call the transcript does not show yet: its own figure
    newer = {**usage, "cache_read_input_tokens": usage["cache_read_input_tokens"] + later - used}
    newest = _line_figure(render_statusline(_usage_payload(src, newer)))[0]
    assert newest == sum(newer.values())


def test_after_claude_codes_compact_an_older_usage_is_not_the_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Right after ``/compact`` Claude Code may still pass the usage of the last call
    before it: that usage measured a context that is gone, so the status line shows the
    compacted context as every other surface does; a call after the compaction (not in
    the transcript yet) is Claude Code's figure."""
    session = shop_session(overhead=21_000)
    usage = _last_usage(session.records)
    session.compact_boundary("Summary: REQ-114 rounding fixed in shop/billing.py; tests pass.")
    src = str(session.write(tmp_path / f"{SESSION_ID}.jsonl"))
    tokens = _json(capsys, "tokens", src, "--json")
    assert tokens["overhead_estimated"] and tokens["used_tokens"] < sum(usage.values()) - 5_000
    plain = json.dumps({"session_id": SESSION_ID, "transcript_path": src})
    assert _line_figure(render_statusline(plain))[0] == tokens["used_tokens"]  # state saved
    stale = _usage_payload(src, usage)
    assert _line_figure(render_statusline(stale))[0] == tokens["used_tokens"]
    assert _line_figure(render_statusline(stale, use_cache=False))[0] == tokens["used_tokens"]
    after = {"input_tokens": 22_000, "output_tokens": 90}
    line = render_statusline(_usage_payload(src, after))
    assert _line_figure(line)[0] == 22_090


def test_a_claude_code_session_is_found_by_the_start_of_its_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As stored sessions are: ``tokens 0f1e2d3c`` (it said no such session)."""
    projects = tmp_path / "claude-home" / "projects" / "-home-dev-shop"
    projects.mkdir(parents=True)
    shop_session(rounds=4).write(projects / f"{SESSION_ID}.jsonl")
    whole = _json(capsys, "tokens", SESSION_ID, "--json")
    assert _json(capsys, "tokens", SESSION_ID[:8], "--json")["used_tokens"] == whole["used_tokens"]
    shop_session(rounds=2).write(projects / f"{SESSION_ID[:8]}-other.jsonl")
    code, _, err = run(capsys, "tokens", SESSION_ID[:8])
    assert code == 2 and "starts the ids of 2 Claude Code sessions" in err


def test_a_last_line_cut_short_is_said_to_be_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was counted as a record of unknown shape "kept but not understood"."""
    path = shop_session(rounds=3).write(tmp_path / f"{SESSION_ID}.jsonl")
    whole = _json(capsys, "tokens", str(path), "--json")
    with path.open("a", encoding="utf-8") as f:
        f.write('{"type": "user", "message": {"role": "user", "content": "half a li')
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0 and "incomplete (still being written?): left out" in err
    cut = json.loads(out)
    assert cut["used_tokens"] == whole["used_tokens"] and cut["unknown_records"] == 0


def test_a_fork_outside_claude_codes_projects_says_where_to_put_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``claude --resume`` finds sessions in its projects folder only: a fork written
    beside a transcript elsewhere printed a command that could not work, and no word."""
    outside = shop_session(rounds=8).write(tmp_path / f"{SESSION_ID}.jsonl")
    code, out, _ = run(capsys, "compact", str(outside), "--ratio", "3", "--fork")
    assert code == 0 and "this fork is outside it" in out
    projects = tmp_path / "claude-home" / "projects" / "-home-dev-shop"
    projects.mkdir(parents=True)
    inside = shop_session(rounds=8).write(projects / f"{SESSION_ID}.jsonl")
    code, out, _ = run(capsys, "compact", str(inside), "--ratio", "3", "--fork")
    assert code == 0 and "claude --resume" in out and "outside it" not in out
