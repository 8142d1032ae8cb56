from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli as run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctxbudget import Component, ConfigurationError, Item, Kind, Layer, Role, Tracker

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def tool_pair(n: int, size: int, component: Component = Component.WORKING_MEMORY) -> list[Item]:
    return [
        Item(
            role=Role.ASSISTANT,
            kind=Kind.TOOL_CALL,
            text=f'Bash {{"command": "make t{n}"}}',
            tool="Bash",
            pair_id=f"c{n}",
            component=component,
        ),
        Item(
            role=Role.TOOL,
            kind=Kind.TOOL_RESULT,
            text=f"run {n} output line\n" * size,
            tool="Bash",
            pair_id=f"c{n}",
            component=component,
        ),
    ]


def working_session(tmp_path: Path, window: int = 20_000) -> object:
    tracker = Tracker(store=f"sqlite:///{tmp_path / 'b.db'}")
    session = tracker.session(model="gpt-4o", window=window)
    session.add("You are a build agent.", role="system")
    session.add("Make the tests pass.")
    for n in range(8):
        session.extend(tool_pair(n, 60))
    session.add("Done with the first round.", role="assistant")
    session.add("Now the second round.")
    return session


# -- allocation ------------------------------------------------------------------------


def test_allocation_in_full_after_cleanup_in_part_and_denied(tmp_path: Path) -> None:
    s = working_session(tmp_path)
    limit = s.budget_report().to_dict()["components"]["working_memory"]["allocated_tokens"]
    used = s.budget_report().to_dict()["components"]["working_memory"]["used_tokens"]
    full = s.allocate("working_memory", 100)
    assert full.outcome == "full" and full.granted == 100
    cleaned = s.allocate("working_memory", limit - used)  # needs the cleanup's room
    assert cleaned.outcome in ("after_cleanup", "partial") and cleaned.freed_by_cleanup > 0
    assert s.version == 2  # cleanup went through the archive
    rest = s.allocate("working_memory", 10 * limit)
    assert rest.outcome in ("partial", "denied")
    denied = s.allocate("working_memory", 10 * limit)
    assert denied.outcome == "denied" and denied.granted == 0
    outcomes = [e.data["outcome"] for e in s.events(types=["allocation"])]
    assert outcomes[0] == "full" and outcomes[-1] == "denied" and len(outcomes) == 4


def test_denied_allocation_changes_nothing(tmp_path: Path) -> None:
    s = working_session(tmp_path, window=4_000)
    s.allocate("knowledge_base", 800)  # the whole share: nothing left, nothing to clean
    before = (s.context_hash(), dict(s.budget.reservations), s.version)
    decision = s.allocate("knowledge_base", 500)
    assert decision.outcome == "denied" and decision.used_after == decision.used_before
    assert (s.context_hash(), dict(s.budget.reservations), s.version) == before


def test_unknown_component_and_bad_amounts(tmp_path: Path) -> None:
    s = working_session(tmp_path)
    with pytest.raises(ConfigurationError, match="unknown budget component"):
        s.allocate("cache", 10)
    with pytest.raises(ConfigurationError, match="positive"):
        s.allocate("working_memory", -5)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(5, 120), min_size=2, max_size=10),
    asks=st.lists(st.integers(1, 6_000), min_size=1, max_size=5),
)
def test_cleanup_never_loses_an_item_that_is_not_archived(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], asks: list[int]
) -> None:
    tracker = Tracker(store=f"sqlite:///{tmp_path_factory.mktemp('p') / 'p.db'}")
    s = tracker.session(model="gpt-4o", window=12_000)
    s.add("Keep going.")
    for n, size in enumerate(sizes):
        s.extend(tool_pair(n, size))
    every = {i.text for i in s.items}
    for tokens in asks:
        s.allocate("working_memory", tokens)
    archived = {
        i.text
        for v in tracker.store.versions(s.id)
        for i in tracker.store.load_items(s.id, v.version)
    }
    assert every <= archived | {i.text for i in s.items}
    granted = sum(e.data["granted"] for e in s.events(types=["allocation"]))
    assert (
        granted <= s.budget_report().to_dict()["components"]["working_memory"]["allocated_tokens"]
    )


def test_shares_adjust_from_history_across_sessions(tmp_path: Path) -> None:
    tracker = Tracker(store=f"sqlite:///{tmp_path / 'h.db'}")
    for _ in range(2):
        s = tracker.session(model="gpt-4o", window=5_000)
        for _ in range(3):
            s.allocate("agent_context", 10_000)  # runs out every time
    s = tracker.session(model="gpt-4o", window=5_000)
    adjustment = s.adjust_shares()
    assert s.budget.shares["agent_context"] > 0.15
    assert sum(s.budget.shares.values()) == pytest.approx(1.0)
    assert s.events(types=["shares_adjusted"])
    assert adjustment.to_dict()["changes"]


# -- the gate --------------------------------------------------------------------------


def test_gate_allows_compacts_or_denies(tmp_path: Path) -> None:
    s = working_session(tmp_path)
    used = s.used_tokens
    assert s.gate("reviewer", 500).outcome == "allow"
    s.set_policy(s.policy.replace(window=int(used / 0.96)))  # blocked: 96%
    decision = s.gate("reviewer", 200)
    assert decision.outcome == "allow_after_compaction" and s.version == 2
    assert s.used_tokens < used
    assert s.gate("reviewer", 10 * used).outcome == "deny"
    assert [e.data["outcome"] for e in s.events(types=["gate"])] == [
        "allow",
        "allow_after_compaction",
        "deny",
    ]


def test_gate_without_compaction_denies_at_blocked(tmp_path: Path) -> None:
    s = working_session(tmp_path)
    s.set_policy(s.policy.replace(window=int(s.used_tokens / 0.96)))
    decision = s.gate("reviewer", 10, compact=False)
    assert decision.outcome == "deny" and "blocked threshold" in decision.reason


def test_the_gate_names_the_limit_it_applies() -> None:
    """With output reserved, spawns stop below the blocked threshold: an allowed spawn
    says where they stop, and one denied for now says why it does not fit now."""
    from ctxbudget.budget.gate import decide_gate

    limits = dict(window=12_000, blocked_percent=95.0, limit_tokens=10_000)
    allowed = decide_gate(agent="r", estimated_tokens=500, used_tokens=9_416, **limits)
    assert allowed.outcome == "allow" and "10,000 tokens once the reserved output" in allowed.reason
    later = decide_gate(
        agent="r", estimated_tokens=1_000, used_tokens=9_416, used_after_compaction=6_980, **limits
    )
    assert later.outcome == "allow_after_compaction"
    assert "now 9,416 + 1,000 = 10,416 would not fit" in later.reason
    assert "10,000 tokens once the reserved output" in later.reason
    plain = decide_gate(
        agent="r",
        estimated_tokens=500,
        used_tokens=9_000,
        window=12_000,
        blocked_percent=95.0,
    )
    assert plain.reason.endswith("(blocked at 95%)")  # no reserve: the threshold alone


def test_agent_budget_and_roster(tmp_path: Path) -> None:
    s = working_session(tmp_path)
    s.set_agent_budget("reviewer", 1_000)
    assert s.gate("reviewer", 900).allowed
    over = s.gate("reviewer", 1_500)
    assert not over.allowed and "over its budget" in over.reason
    with pytest.raises(ConfigurationError, match="unknown agent"):
        s.gate("reviwer", 10)


def test_gate_and_budget_commands(capsys: pytest.CaptureFixture[str]) -> None:
    src = str(EXAMPLES / "analyst-ep24-15.json")
    code, out, err = run(
        capsys,
        "gate",
        src,
        "--agent",
        "architect",
        "--tokens",
        "500",
        "--window",
        "200000",
        "--json",
    )
    assert code == 0 and json.loads(out)["outcome"] == "allow" and "allow" in err
    code, _, err = run(
        capsys,
        "gate",
        src,
        "--agent",
        "architect",
        "--tokens",
        "9000",
        "--policy",
        str(EXAMPLES / "analyst.toml"),
        "--no-compact",
    )
    assert code == 3 and "denied" in err
    code, out, _ = run(capsys, "budget", src, "--policy", str(EXAMPLES / "analyst.toml"))
    assert code == 0 and "interaction_buffer" in out and "By agent" in out
    code, out, _ = run(capsys, "budget", src, "--json")
    assert set(json.loads(out)["components"]) >= {"working_memory"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gate", "nope", "--agent", "a", "--tokens", "10"], "no stored session"),
        (["gate", "EXAMPLE", "--agent", "a", "--tokens", "-4"], "positive"),
        (["gate", "EXAMPLE", "--agent", "a", "--tokens", "x"], "invalid int"),
        (["gate", "EXAMPLE", "--agent", " ", "--tokens", "10"], "needs a name"),
        (["budget", "nope"], "no stored session"),
    ],
)
def test_gate_and_budget_bad_input(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    argv = [str(EXAMPLES / "analyst-ep24-15.json") if a == "EXAMPLE" else a for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_gate_unknown_agent_in_a_roster(capsys: pytest.CaptureFixture[str]) -> None:
    src = str(EXAMPLES / "analyst-ep24-15.json")
    run(
        capsys,
        "gate",
        src,
        "--agent",
        "architect",
        "--tokens",
        "10",
        "--agent-budget",
        "4000",
        "--record",
    )
    code, _, err = run(capsys, "gate", "file-", "--agent", "architekt", "--tokens", "10")
    assert code == 2 and "unknown agent" in err


# -- phases ----------------------------------------------------------------------------


def test_phase_items_are_pruned_and_archived_when_the_phase_completes(tmp_path: Path) -> None:
    tracker = Tracker(store=f"sqlite:///{tmp_path / 'ph.db'}")
    s = tracker.session(model="gpt-4o", window=50_000)
    s.add("Implement JWT auth.", layer=Layer.PERMANENT)
    s.start_phase("research", budget=6_000)
    s.add("Full OAuth patterns report " * 300, role="assistant", layer=Layer.TRANSIENT)
    s.add("Report metadata: OAuth code flow + PKCE.", role="assistant", layer=Layer.METADATA)
    s.add("Research wave notes " * 50, layer=Layer.PHASE)
    report = s.complete_phase(pruning="aggressive")
    texts = [i.text for i in s.items]
    assert not any(t.startswith("Full OAuth") or t.startswith("Research wave") for t in texts)
    assert "Report metadata: OAuth code flow + PKCE." in texts
    assert report["pruned_items"] == 2 and report["alert"] == "ok"
    assert s.version == 2 and len(tracker.store.load_items(s.id, 1)) == 4  # archived


def test_moderate_pruning_keeps_the_phase_just_completed(tmp_path: Path) -> None:
    s = Tracker(store="memory://").session(model="gpt-4o", window=50_000)
    s.start_phase("research")
    s.add("research report " * 100, role="assistant", layer=Layer.TRANSIENT)
    s.complete_phase(pruning="moderate")
    assert any(i.text.startswith("research report") for i in s.items)
    s.start_phase("planning")
    s.add("plan draft " * 100, role="assistant", layer=Layer.TRANSIENT)
    s.complete_phase()
    texts = [i.text for i in s.items]
    assert not any(t.startswith("research report") for t in texts)
    assert any(t.startswith("plan draft") for t in texts)


def test_emergency_pruning_over_95_percent(tmp_path: Path) -> None:
    s = Tracker(store="memory://").session(model="gpt-4o", window=50_000)
    s.start_phase("one", budget=1_000)
    s.add("diagnostics " * 1200, layer=Layer.TRANSIENT)  # over 95% of its budget
    report = s.complete_phase(pruning="minimal")
    assert report["emergency_pruned_items"] == 1 and report["pruned_items"] == 0


def test_phase_errors() -> None:
    s = Tracker(store="memory://").session(model="gpt-4o")
    with pytest.raises(ConfigurationError, match="no phase is running"):
        s.complete_phase()
    with pytest.raises(ConfigurationError, match="positive"):
        s.start_phase("x", budget=0)


# -- prediction ------------------------------------------------------------------------


def test_prediction_learns_from_recorded_tasks_and_cleans_up_ahead(tmp_path: Path) -> None:
    from ctxbudget.budget.prediction import Task

    tracker = Tracker(store=f"sqlite:///{tmp_path / 'pr.db'}")
    s = tracker.session(model="gpt-4o", window=60_000)
    s.add("Build the billing module.")
    for n in range(12):
        s.extend(tool_pair(n, 300))
    task = Task("implement", files=3, agents=1, minutes=20)
    first = s.plan_tasks([task], cleanup_first=False)
    assert first["predicted_tokens"] == 55_000 and first["calibrated_on"] == 0  # the default
    s.task_completed(task, 20_000)
    other = tracker.session(model="gpt-4o", window=60_000)  # calibration crosses sessions
    second = other.plan_tasks([task], cleanup_first=False)
    assert second["calibrated_on"] == 1 and second["predicted_tokens"] < 55_000
    s.set_policy(s.policy.replace(window=30_000))  # 21,800 used: 15,000 more needs room
    planned = s.plan_tasks([Task("small", files=1, minutes=5)])
    assert planned["freed_by_cleanup"] > 0 and planned["fits"]
    assert s.events(types=["tasks_planned"])


def test_eta_from_the_pace_of_user_turns() -> None:
    from ctxbudget.testing import FakeClock

    clock = FakeClock(start=1_000.0)
    s = Tracker(store="memory://").session(model="gpt-4o", window=20_000)
    for _ in range(5):
        s.add(
            Item(
                role=Role.USER, kind=Kind.USER_TEXT, text="next question " * 50, created_at=clock()
            )
        )
        s.add("an answer " * 150, role="assistant")
        clock.advance(120)
    status = s.status()
    assert status.estimated_exchanges_left and status.eta_seconds == pytest.approx(
        status.estimated_exchanges_left * 120
    )


def test_completing_a_phase_keeps_the_conversation_and_report_metadata(tmp_path: Path) -> None:
    tracker = Tracker(store=f"sqlite:///{tmp_path / 'ph2.db'}")
    s = tracker.session(model="gpt-4o", window=50_000)
    s.start_phase("research")
    s.add("REQ-AUTH-001: SSO for every tenant.")
    s.add("Decision: use Auth0 (approved by CTO).", role="assistant")
    s.add(
        Item(
            role=Role.TOOL,
            kind=Kind.AGENT_REPORT,
            tool="Task",
            text="# OAuth review\n"
            + "The authorization code flow with PKCE fits. " * 80
            + "\n- PKCE for public clients",
        )
    )
    report = s.complete_phase(pruning="aggressive")
    texts = " ".join(i.text for i in s.items)
    assert "REQ-AUTH-001" in texts and "Decision: use Auth0" in texts
    assert "[agent report: OAuth review]" in texts and "PKCE for public clients" in texts
    assert report["reports_to_metadata"] == 1
    archived = {
        i.text
        for v in tracker.store.versions(s.id)
        for i in tracker.store.load_items(s.id, v.version)
    }
    assert any(t.startswith("# OAuth review") for t in archived)


def test_adjusting_twice_does_not_compound_and_new_sessions_learn(tmp_path: Path) -> None:
    tracker = Tracker(store=f"sqlite:///{tmp_path / 'adj.db'}")
    s = tracker.session(model="gpt-4o", window=5_000)
    for _ in range(4):
        s.allocate("agent_context", 10_000)
    first = dict(s.adjust_shares().after.to_dict())
    second = dict(s.adjust_shares().after.to_dict())
    assert first == pytest.approx(second)
    fresh = tracker.session(model="gpt-4o")
    assert fresh.budget.shares == pytest.approx(first)


def test_a_number_of_tokens_beyond_any_window_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """10^29 tokens is a typo or a units mix-up: one clear line, not a gate that
    answers "50000000000000002382364672% of 200,000"."""
    src = str(EXAMPLES / "analyst-ep24-15.json")
    huge = str(10**29)
    code, _, err = run(capsys, "gate", src, "--agent", "r", "--tokens", huge)
    assert code == 2 and "at most 100,000,000" in err
    code, _, err = run(capsys, "gate", src, "--agent", "r", "--agent-budget", huge, "--tokens", "5")
    assert code == 2 and "an agent budget must be at most" in err
