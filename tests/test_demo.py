"""``ctxbudget demo analyst``: the analyst example through the engine, in-process."""

from __future__ import annotations

import argparse
import json
import math
import re
from importlib import resources
from pathlib import Path

import pytest

from ctxbudget.cli import demo as cli_demo
from ctxbudget.cli.demo import _width, render_monitor
from ctxbudget.demo import run_analyst
from ctxbudget.demo_run import AnalystRun
from ctxbudget.tracker import Tracker

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CRITICAL_PERCENT = 90.0


def _readme_items() -> dict[str, list[str]]:
    """The lists under "What a compaction must keep" in examples/README.md."""
    text = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    sections = {"requirements": "**Requirements", "decisions": "**Decisions", "questions": "**Open"}
    items: dict[str, list[str]] = {}
    for kind, heading in sections.items():
        body = text[text.index(heading) :].split("\n\n", 2)[1]
        rows = re.findall(r"^- `(.+?)`(.*)$", body, re.M)
        if kind == "requirements":  # `REQ-AUTH-001` OAuth2 + SAML SSO support
            items[kind] = [f"{key}: {title.strip()}" for key, title in rows]
        else:
            items[kind] = [key for key, _ in rows]
    return items


def _normalized(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def run() -> AnalystRun:
    return run_analyst(Tracker(store="memory://"))


def _parser() -> argparse.ArgumentParser:
    """A parser wired as cli.py wires it: register, then --store on every subcommand."""
    parser = argparse.ArgumentParser(prog="ctxbudget")
    parser.add_argument("--store")
    commands = parser.add_subparsers(dest="command")
    cli_demo.register(commands)
    for sub in commands.choices.values():
        sub.add_argument("--store", default=argparse.SUPPRESS)
    return parser


# -- the data -------------------------------------------------------------------------


def test_package_copy_is_identical_to_the_example() -> None:
    shipped = EXAMPLES / "analyst-ep24.json"
    copy = ROOT / "src" / "ctxbudget" / "examples" / "analyst-ep24.json"
    assert copy.read_bytes() == shipped.read_bytes()
    resource = resources.files("ctxbudget").joinpath("examples", "analyst-ep24.json")
    assert resource.read_bytes() == shipped.read_bytes()


def test_usage_rule_reproduces_every_recorded_figure(run: AnalystRun) -> None:
    # before the first compaction the session records the file's own figures; the rule
    # used after it gives exactly those figures for the uncompacted requests
    assert run.usage_mismatches == 0
    first = run.compactions[0].exchange
    assert {e.usage_from for e in run.exchanges if e.exchange <= first} == {"file"}
    assert {e.usage_from for e in run.exchanges if e.exchange > first} == {"rule"}


# -- what the issue asks --------------------------------------------------------------


def test_all_exchanges_complete_below_the_critical_threshold(run: AnalystRun) -> None:
    assert run.completed_exchanges == run.total_exchanges == 25
    assert run.peak_percent < CRITICAL_PERCENT
    assert run.peak_tokens == max(e.tokens for e in run.exchanges)
    assert all(e.percent < CRITICAL_PERCENT for e in run.exchanges)
    # without compaction the same session overflows the window
    assert run.uncompacted_tokens > run.window
    assert run.overflow_exchange is not None


def test_compaction_fires_between_exchanges_12_and_16(run: AnalystRun) -> None:
    assert run.compactions
    assert 12 <= run.compactions[0].exchange <= 16
    assert sum(1 for c in run.compactions if 12 <= c.exchange <= 16) == 1
    for c in run.compactions:
        record = run.exchanges[c.exchange - 1]
        assert record.compacted and record.working_budget_percent > 70
        # the conversation down to about a fifth, every must-keep fact kept
        assert c.reduction_percent >= 75
        assert c.tokens_after < c.tokens_before
        assert c.facts.passed
        assert all(kept == total for kept, total in c.checked.values())
        assert set(c.facts_preserved) >= {"requirements", "decisions", "questions"}


def test_every_readme_fact_is_in_the_final_context(run: AnalystRun) -> None:
    expected = _readme_items()
    assert {k: len(v) for k, v in expected.items()} == {
        "requirements": 18,
        "decisions": 12,
        "questions": 4,
    }
    # the demo tracks exactly the README's items…
    tracked = {kind: [f.text for f in run.facts if f.kind == kind] for kind in ("requirements",)}
    tracked.update(
        {kind: [f.key for f in run.facts if f.kind == kind] for kind in ("decisions", "questions")}
    )
    assert tracked == expected
    # …and each is in the final context (its items and the compaction summary)
    context = _normalized("\n".join(item.text for item in run.session.items))
    for kind, items in expected.items():
        for text in items:
            assert _normalized(text) in context, (kind, text)
    assert run.requirements == (18, 18)
    assert run.decisions == (12, 12)
    assert run.questions == (4, 4)
    assert any(item.kind.value == "summary" for item in run.session.items)


# -- the command ----------------------------------------------------------------------


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["demo", "analyst", "--json"])
    caller = Tracker(store="memory://")
    assert cli_demo.cmd_demo(args, caller) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["completed_exchanges"] == 25
    assert data["peak_percent"] < CRITICAL_PERCENT
    assert data["store"] == "memory://"
    assert data["compactions"]
    for c in data["compactions"]:
        assert {"exchange", "tokens_before", "tokens_after", "facts_preserved"} <= set(c)
        assert c["tokens_after"] < c["tokens_before"]
        assert (
            c["facts_preserved"]["requirements"].split("/")[0]
            == (c["facts_preserved"]["requirements"].split("/")[1])
        )
    assert 12 <= data["compactions"][0]["exchange"] <= 16
    assert data["requirements"] == {"kept": 18, "total": 18}
    assert data["decisions"] == {"kept": 12, "total": 12}
    assert data["questions"] == {"kept": 4, "total": 4}
    assert data["events"]["compacted"] == len(data["compactions"])
    # a parsed command line never writes into the caller's (the user's default) store
    assert caller.store.list_sessions() == []


def test_text_output_shows_the_runs_figures(
    capsys: pytest.CaptureFixture[str], run: AnalystRun
) -> None:
    args = _parser().parse_args(["demo", "analyst"])
    assert cli_demo.cmd_demo(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    exchange_lines = [line for line in lines if line.startswith("Exchange ")]
    assert len(exchange_lines) == 25
    first = run.compactions[0]
    trigger = exchange_lines[first.exchange - 1]
    assert "TRIGGER" in trigger and f"{run.exchanges[first.exchange - 1].tokens:,}" in trigger
    assert f"Compaction #1 after exchange {first.exchange}" in out
    assert "ANALYST TOKEN BUDGET MONITOR" in out and "TOKEN BUDGET REPORT" in out

    peak = f"{math.floor(run.peak_percent)}%"  # percentages print rounded down
    peak_line = next(line for line in lines if "Peak usage:" in line)
    assert f"{run.peak_tokens:,} tokens ({peak} of 12K window" in peak_line
    assert f"Peak: {run.peak_tokens:,} ({peak})" in render_monitor(run)
    assert f"Current Usage: {run.final_tokens:,} / 12,000 ({math.floor(run.final_percent)}%)" in out
    for c in run.compactions:
        assert (
            f"Compression #{c.number} (Ex {c.exchange}):"
            f"{'':<{27 - len(f'Compression #{c.number} (Ex {c.exchange}):')}}"
            f"{c.conversation_before:,} → {c.conversation_after:,} tokens "
            f"({round(c.reduction_percent)}% reduction)"
        ) in out
    assert f"{run.uncompacted_tokens:,} tokens" in out and "overflow at Ex" in out
    assert "requirements 18/18, decisions 12/12, open questions 4/4" in out
    assert "Within budget" in out and "Can continue for ~" in out


def test_monitor_box_is_aligned(run: AnalystRun) -> None:
    rows = render_monitor(run).splitlines()
    assert rows[0].startswith("┌") and rows[-1].startswith("└")
    assert len({_width(row) for row in rows}) == 1
    assert all(row.endswith(("│", "┐", "┤", "┘")) for row in rows)


def test_quiet_prints_no_exchange_lines(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["demo", "analyst", "--quiet"])
    assert cli_demo.cmd_demo(args) == 0
    out = capsys.readouterr().out
    assert "Exchange " not in out and "Compaction #" not in out
    assert "ANALYST TOKEN BUDGET MONITOR" in out and "TOKEN BUDGET REPORT" in out


def test_store_flag_keeps_the_session(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    for argv in (
        ["demo", "analyst", "--quiet", "--store", url],
        ["--store", url, "demo", "analyst", "--quiet"],
    ):
        args = _parser().parse_args(argv)
        assert cli_demo.cmd_demo(args, Tracker(store="memory://")) == 0
        assert url in capsys.readouterr().out
    with Tracker(store=url) as tracker:
        sessions = tracker.sessions()
        assert len(sessions) == 2
        events = tracker.store.events(sessions[0].id)
    types = [e.type for e in events]
    assert types.count("compacted") >= 1 and types.count("usage_recorded") == 25


def test_hand_built_namespace_runs_in_the_given_tracker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tracker = Tracker(store="memory://")
    args = argparse.Namespace(scenario="analyst", json=True, quiet=False, store=None)
    assert cli_demo.cmd_demo(args, tracker) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s.id for s in tracker.sessions()] == [data["session_id"]]
