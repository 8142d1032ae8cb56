"""Allocation, utilization report and share adjustment (issue 4 item 2)."""

from __future__ import annotations

import inspect
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxbudget.budget as budget
from ctxbudget.budget import (
    DEFAULT_SHARES,
    ComponentHistory,
    Shares,
    UtilizationStatus,
    adjust_shares,
    decide,
    decide_after_cleanup,
    history_from,
    utilization_report,
    utilization_status,
)
from ctxbudget.errors import ConfigurationError
from ctxbudget.model import Component

SLACK = 1e-12  # float rounding allowed on a share bound


# --- fixtures and strategies -------------------------------------------------------


@pytest.fixture
def shares() -> Shares:
    return Shares.default()


@st.composite
def valid_shares(draw: st.DrawFn, min_size: int = 1, max_size: int = 8) -> Shares:
    count = draw(st.integers(min_size, max_size))
    weights = draw(
        st.lists(
            st.floats(0, 1, allow_nan=False) | st.integers(0, 10).map(float),
            min_size=count,
            max_size=count,
        )
    )
    if sum(weights) == 0:
        weights[0] = 1.0
    total = math.fsum(weights)
    return Shares({f"c{i}": w / total for i, w in enumerate(weights)})


histories = st.builds(
    ComponentHistory,
    exhaustion_count=st.integers(0, 12),
    avg_utilization=st.floats(0, 1, allow_nan=False),
    samples=st.integers(0, 30),
)


def history_for(names: list[str]) -> st.SearchStrategy[dict[str, ComponentHistory]]:
    extra = st.dictionaries(st.sampled_from(["ghost", "other"]), histories, max_size=2)
    known = st.dictionaries(st.sampled_from(names), histories) if names else st.just({})
    return st.tuples(known, extra).map(lambda pair: {**pair[1], **pair[0]})


# --- shares ------------------------------------------------------------------------


def test_default_allocation_shares(shares: Shares) -> None:
    assert dict(DEFAULT_SHARES) == {
        "system_context": 0.10,
        "working_memory": 0.30,
        "knowledge_base": 0.20,
        "agent_context": 0.15,
        "interaction_buffer": 0.25,
    }
    assert [shares.limit(name, 200_000) for name in shares] == [
        20_000,
        60_000,
        40_000,
        30_000,
        50_000,
    ]
    assert shares[Component.WORKING_MEMORY] == pytest.approx(0.30)
    assert shares.limit(Component.AGENT_CONTEXT, 200_000) == 30_000


def test_from_percentages_and_to_dict() -> None:
    shares = Shares.from_percentages({"a": 60, "b": 40})
    assert shares.to_dict() == pytest.approx({"a": 0.6, "b": 0.4})
    assert shares.limit("a", 1_001) == 600
    with pytest.raises(ConfigurationError, match="sum to 100, these sum to 90"):
        Shares.from_percentages({"a": 50, "b": 40})


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ({}, "at least one component"),
        ({"a": 0.6, "b": 0.3}, "must sum to 100%, these sum to 90%"),
        ({"a": 1.2, "b": -0.2}, "share of a must be a fraction within 0–1"),
        ({"a": float("nan")}, "share of a"),
        ({"a": True}, "share of a"),
        ({"": 1.0}, "non-empty"),
    ],
)
def test_invalid_shares(fractions: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Shares(fractions)


def test_limit_of_unknown_component(shares: Shares) -> None:
    with pytest.raises(ConfigurationError, match="unknown component 'scratch'"):
        shares.limit("scratch", 1000)
    with pytest.raises(ConfigurationError, match="total_tokens"):
        shares.limit("working_memory", -1)


def test_shares_are_hashable_and_comparable() -> None:
    assert Shares.default() == Shares(dict(DEFAULT_SHARES))
    assert hash(Shares.default()) == hash(Shares(dict(DEFAULT_SHARES)))


@given(valid_shares(), st.integers(0, 10**9))
def test_limits_never_add_up_to_more_than_the_total(shares: Shares, total: int) -> None:
    assert sum(shares.limit(name, total) for name in shares) <= total


# --- decisions ---------------------------------------------------------------------


def test_full_grant() -> None:
    decision = decide("working_memory", 5_000, limit=60_000, used=10_000)
    assert decision is not None
    assert (decision.outcome, decision.granted, decision.used_after) == ("full", 5_000, 15_000)
    assert decision.reason == (
        "working_memory had 50,000 of 60,000 tokens left: granted all 5,000 requested, 45,000 left"
    )
    assert decision.available_after == 45_000


def test_exact_fit_is_full_and_one_more_needs_cleanup() -> None:
    assert decide("a", 100, limit=100, used=0) is not None
    assert decide("a", 101, limit=100, used=0) is None


def test_after_cleanup() -> None:
    assert decide("working_memory", 5_000, limit=60_000, used=58_000) is None
    decision = decide_after_cleanup(
        "working_memory", 5_000, limit=60_000, used_after_cleanup=50_000, freed=8_000
    )
    assert decision.outcome == "after_cleanup"
    assert (decision.granted, decision.used_before, decision.used_after) == (5_000, 50_000, 55_000)
    assert decision.freed_by_cleanup == 8_000
    assert "after cleanup freed 8,000: granted all 5,000 requested" in decision.reason


def test_partial_reason_is_actionable() -> None:
    decision = decide_after_cleanup(
        Component.WORKING_MEMORY, 5_000, limit=60_000, used_after_cleanup=58_800, freed=3_400
    )
    assert decision.component == "working_memory"
    assert (decision.outcome, decision.granted, decision.used_after) == ("partial", 1_200, 60_000)
    assert decision.reason.startswith(
        "working_memory has 1,200 of 60,000 tokens left after cleanup freed 3,400: "
        "granted 1,200 of 5,000 requested; raise its share"
    )


def test_denied_when_full_or_partial_is_off() -> None:
    full = decide_after_cleanup("kb", 10, limit=100, used_after_cleanup=100, freed=0)
    assert (full.outcome, full.granted, full.used_after) == ("denied", 0, 100)
    assert full.reason.startswith("kb is full (100 of 100 tokens used) even after cleanup freed 0")
    strict = decide_after_cleanup(
        "kb", 10, limit=100, used_after_cleanup=95, freed=5, allow_partial=False
    )
    assert (strict.outcome, strict.granted, strict.used_after) == ("denied", 0, 95)
    assert "partial grants are off" in strict.reason


def test_over_limit_usage_is_denied_not_negative() -> None:
    decision = decide_after_cleanup("a", 10, limit=100, used_after_cleanup=130, freed=0)
    assert decision.outcome == "denied"
    assert decision.available_after == 0


@pytest.mark.parametrize("tokens", [0, -5, 2.5, True, "10"])
def test_tokens_must_be_positive(tokens: object) -> None:
    with pytest.raises(ConfigurationError, match="tokens must be a positive number"):
        decide("a", tokens, limit=100, used=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="tokens must be a positive number"):
        decide_after_cleanup("a", tokens, limit=100, used_after_cleanup=0, freed=0)  # type: ignore[arg-type]


def test_bad_limit_or_usage() -> None:
    with pytest.raises(ConfigurationError, match="limit"):
        decide("a", 1, limit=-1, used=0)
    with pytest.raises(ConfigurationError, match="used"):
        decide("a", 1, limit=10, used=-1)
    with pytest.raises(ConfigurationError, match="freed"):
        decide_after_cleanup("a", 1, limit=10, used_after_cleanup=0, freed=-3)


def test_decision_to_dict_feeds_history() -> None:
    decision = decide("a", 40, limit=100, used=0)
    assert decision is not None
    record = decision.to_dict()
    assert set(record) >= {"component", "outcome", "limit", "used_after", "reason"}
    assert history_from([record]) == {"a": ComponentHistory(0, 0.4, 1)}


operations = st.lists(
    st.tuples(
        st.sampled_from(list(DEFAULT_SHARES)),
        st.integers(1, 80_000),  # tokens requested
        st.floats(0, 1),  # share of the usage the cleanup frees, when it runs
        st.booleans(),  # allow_partial
    ),
    max_size=60,
)


@given(st.integers(0, 300_000), operations)
def test_allocations_never_exceed_limits_or_total(
    total: int, ops: list[tuple[str, int, float, bool]]
) -> None:
    shares = Shares.default()
    used = dict.fromkeys(shares, 0)
    for component, requested, cleanup_share, allow_partial in ops:
        limit = shares.limit(component, total)
        decision = decide(component, requested, limit=limit, used=used[component])
        if decision is None:
            freed = math.floor(used[component] * cleanup_share)
            decision = decide_after_cleanup(
                component,
                requested,
                limit=limit,
                used_after_cleanup=used[component] - freed,
                freed=freed,
                allow_partial=allow_partial,
            )
        assert 0 <= decision.granted <= decision.requested == requested
        assert decision.used_after == decision.used_before + decision.granted
        assert decision.outcome in budget.OUTCOMES
        assert (decision.granted == requested) == (decision.outcome in {"full", "after_cleanup"})
        used[component] = decision.used_after
        assert used[component] <= limit
        assert sum(used.values()) <= total


@given(st.integers(0, 300_000), st.lists(st.integers(1, 50_000), max_size=40))
def test_granted_sum_never_exceeds_limit_without_cleanup(total: int, requests: list[int]) -> None:
    limit = Shares.default().limit("agent_context", total)
    used = granted = 0
    for requested in requests:
        decision = decide("agent_context", requested, limit=limit, used=used)
        if decision is None:
            decision = decide_after_cleanup(
                "agent_context", requested, limit=limit, used_after_cleanup=used, freed=0
            )
        granted += decision.granted
        used = decision.used_after
    assert granted == used <= limit


@given(
    st.integers(1, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.booleans(),
)
def test_a_denied_allocation_changes_nothing(
    requested: int, limit: int, used: int, freed: int, allow_partial: bool
) -> None:
    decision = decide_after_cleanup(
        "a",
        requested,
        limit=limit,
        used_after_cleanup=used,
        freed=freed,
        allow_partial=allow_partial,
    )
    if decision.outcome == "denied":
        assert decision.granted == 0
        assert decision.used_after == decision.used_before == used
    else:
        assert decision.granted > 0


# --- utilization report ------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "status"),
    [
        (0, "low"),
        (49.9, "low"),
        (50, "moderate"),
        (74.9, "moderate"),
        (75, "high"),
        (89.99, "high"),
        (90, "critical"),
        (140, "critical"),
    ],
)
def test_status_bands(percent: float, status: str) -> None:
    assert utilization_status(percent) == UtilizationStatus(status)


def test_utilization_report(shares: Shares) -> None:
    used = {
        "system_context": 19_000,  # 95% of 20,000
        "working_memory": 45_000,  # 75% of 60,000
        "knowledge_base": 20_000,  # 50% of 40,000
        "agent_context": 3_000,  # 10% of 30,000
        "interaction_buffer": 60_000,  # over its 50,000
    }
    report = utilization_report(shares, 200_000, used)
    statuses = {row.component: row.status.value for row in report.components}
    assert statuses == {
        "system_context": "critical",
        "working_memory": "high",
        "knowledge_base": "moderate",
        "agent_context": "low",
        "interaction_buffer": "critical",
    }
    over = report.component("interaction_buffer")
    assert (over.available_tokens, over.utilization_percent) == (0, 120.0)
    assert (report.total_used, report.total_available) == (147_000, 53_000)
    assert report.utilization_percent == pytest.approx(73.5)
    data = report.to_dict()
    assert data["overall"] == {
        "total_budget": 200_000,
        "fixed_tokens": 0,
        "shared_tokens": 200_000,
        "total_used": 147_000,
        "total_available": 53_000,
        "utilization_percent": 73.5,
    }
    assert data["components"]["working_memory"] == {
        "component": "working_memory",
        "share": pytest.approx(0.3),
        "allocated_tokens": 60_000,
        "used_tokens": 45_000,
        "available_tokens": 15_000,
        "utilization_percent": 75.0,
        "status": "high",
    }


def test_report_render(shares: Shares) -> None:
    text = utilization_report(shares, 200_000, {"working_memory": 42_600}).render()
    lines = text.splitlines()
    assert lines[0].split() == ["component", "allocated", "used", "available", "%", "status"]
    assert "working_memory         60,000  42,600     17,400  71%  ████████░░  moderate" in text
    assert "system_context         20,000       0     20,000   0%  ░░░░░░░░░░  low" in text
    assert lines[-1] == "overall: 42,600 / 200,000 used (21%), 157,400 available"


def test_report_lists_usage_without_a_share_and_rejects_bad_counts() -> None:
    shares = Shares({"a": 1.0})
    report = utilization_report(shares, 100, {"a": 10, "b": 5})
    row = report.component("b")
    assert (row.allocated_tokens, row.used_tokens, row.status) == (0, 5, "critical")
    assert report.total_used == 15
    empty = utilization_report(shares, 0, {})
    assert empty.utilization_percent == 0.0
    with pytest.raises(ConfigurationError, match="used tokens of a"):
        utilization_report(shares, 100, {"a": -1})


# --- history -----------------------------------------------------------------------


def test_history_from_records() -> None:
    records = [
        {"component": "wm", "outcome": "full", "limit": 100, "used_after": 40},
        {"component": "wm", "outcome": "after_cleanup", "limit": 100, "used_after": 90},
        {"component": "wm", "outcome": "denied", "limit": 100, "used_after": 120},
        {"component": "kb", "outcome": "partial", "limit": 0, "used_after": 0, "x": 1},
    ]
    history = history_from(records)
    assert (history["wm"].exhaustion_count, history["wm"].samples) == (2, 3)
    assert history["wm"].avg_utilization == pytest.approx((0.4 + 0.9 + 1.0) / 3)
    assert history["kb"] == ComponentHistory(1, 1.0, 1)
    assert history_from([]) == {}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"component": "a", "outcome": "full", "limit": 1}, "no 'used_after'"),
        ({"component": "a", "outcome": "allow", "limit": 1, "used_after": 0}, "outcome 'allow'"),
        ({"component": "a", "outcome": "full", "limit": -1, "used_after": 0}, "limit"),
    ],
)
def test_history_rejects_malformed_records(record: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        history_from([record])


def test_component_history_validation() -> None:
    with pytest.raises(ConfigurationError, match="avg_utilization"):
        ComponentHistory(0, 1.5, 1)
    with pytest.raises(ConfigurationError, match="samples"):
        ComponentHistory(0, 0.5, -1)


# --- adjustment --------------------------------------------------------------------


def test_share_adjustment_worked_example(shares: Shares) -> None:
    # The worked example's usage history; sample counts are ours.
    history = {
        "system_context": ComponentHistory(0, 0.98, 10),
        "working_memory": ComponentHistory(0, 0.75, 10),
        "knowledge_base": ComponentHistory(2, 0.95, 10),
        "agent_context": ComponentHistory(5, 0.98, 10),
        "interaction_buffer": ComponentHistory(0, 0.45, 10),
    }
    adjustment = adjust_shares(shares, history)
    # agent_context 0.20 and interaction_buffer 0.20 are what the rules give: nobody
    # else is under 50% or exhausted more than 3 times, and the +5% and −5% cancel, so
    # normalising changes nothing; the others keep their shares.
    assert adjustment.after.to_dict() == pytest.approx(
        {
            "system_context": 0.10,
            "working_memory": 0.30,
            "knowledge_base": 0.20,
            "agent_context": 0.20,
            "interaction_buffer": 0.20,
        }
    )
    assert [(c.component, c.reason) for c in adjustment.changes] == [
        ("agent_context", "exhausted 5 times (more than 3): +5%"),
        ("interaction_buffer", "used 45% on average (under 50%): −5%"),
    ]
    assert adjustment.feasible
    data = adjustment.to_dict()
    assert data["changes"][0] == {
        "component": "agent_context",
        "before": pytest.approx(0.15),
        "after": pytest.approx(0.20),
        "reason": "exhausted 5 times (more than 3): +5%",
    }


def test_raise_alone_is_diluted_by_normalising(shares: Shares) -> None:
    adjustment = adjust_shares(shares, {"agent_context": ComponentHistory(4, 0.9, 4)})
    after = adjustment.after
    assert after["agent_context"] == pytest.approx(0.20 / 1.05)
    assert after["working_memory"] == pytest.approx(0.30 / 1.05)
    reasons = {c.component: c.reason for c in adjustment.changes}
    assert reasons["agent_context"] == (
        "exhausted 4 times (more than 3): +5%; rescaled with the others so the shares sum to 100%"
    )
    assert reasons["system_context"] == "rescaled with the others so the shares sum to 100%"


def test_normalising_keeps_the_cap() -> None:
    # b raised to the 50% cap; the others shrink, so plain normalising would leave b at
    # 0.50 / 0.92 > 0.50. It is held at the cap and the rest fill the other 50%.
    shares = Shares({"a": 0.12, "b": 0.48, "c": 0.40})
    history = {
        "b": ComponentHistory(9, 1.0, 9),
        "a": ComponentHistory(0, 0.1, 9),
        "c": ComponentHistory(0, 0.2, 9),
    }
    adjustment = adjust_shares(shares, history)
    assert adjustment.after["b"] == pytest.approx(0.50)
    assert adjustment.after["a"] == pytest.approx(0.07 / 0.42 * 0.50)
    assert adjustment.after["c"] == pytest.approx(0.35 / 0.42 * 0.50)
    reasons = {c.component: c.reason for c in adjustment.changes}
    assert reasons["b"] == "exhausted 9 times (more than 3): +5%, capped at 50%"
    assert reasons["a"] == (
        "used 10% on average (under 50%): −5%; rescaled with the others so the shares sum to 100%"
    )


def test_normalising_keeps_the_floor() -> None:
    shares = Shares({"a": 0.05, "b": 0.50, "c": 0.45})
    history = {"b": ComponentHistory(0, 0.2, 5), "c": ComponentHistory(0, 0.3, 5)}
    adjustment = adjust_shares(shares, history)
    after = adjustment.after
    assert math.fsum(after.values()) == pytest.approx(1, abs=1e-9)
    assert all(0.05 - SLACK <= v <= 0.50 + SLACK for v in after.values())
    assert after["a"] == pytest.approx(0.05 / 0.90)


def test_out_of_band_shares_are_brought_in() -> None:
    adjustment = adjust_shares(Shares({"a": 0.01, "b": 0.69, "c": 0.30}), {})
    # a is lifted to 5% and b held at 50%; a and c then share the other 50% pro rata.
    after = adjustment.after
    assert after["b"] == pytest.approx(0.50)
    assert after["a"] == pytest.approx(0.05 / 0.35 * 0.50)
    assert after["c"] == pytest.approx(0.30 / 0.35 * 0.50)
    reasons = {c.component: c.reason for c in adjustment.changes}
    assert "held at the 50% cap" in reasons["b"]


def test_both_rules_cancel() -> None:
    shares = Shares.default()
    adjustment = adjust_shares(shares, {"working_memory": ComponentHistory(6, 0.3, 20)})
    assert adjustment.after["working_memory"] == pytest.approx(0.30)
    (change,) = adjustment.changes
    assert change.reason == (
        "exhausted 6 times (more than 3): +5%; used 30% on average (under 50%): −5%"
    )


def test_min_samples_and_unknown_history(shares: Shares) -> None:
    history = {
        "interaction_buffer": ComponentHistory(0, 0.0, 0),
        "scratch": ComponentHistory(9, 0.0, 9),
    }
    adjustment = adjust_shares(shares, history)
    assert adjustment.after == shares
    assert adjustment.changes == ()
    assert adjust_shares(shares, history, min_samples=0).after["interaction_buffer"] < 0.25


def test_infeasible_band_gives_equal_shares() -> None:
    one = adjust_shares(Shares({"only": 1.0}), {"only": ComponentHistory(9, 1.0, 9)})
    assert one.after.to_dict() == {"only": 1.0}
    assert not one.feasible
    many = adjust_shares(Shares({f"c{i}": 1 / 25 for i in range(25)}), {})
    assert not many.feasible
    assert all(v == pytest.approx(1 / 25) for v in many.after.values())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"low": 0},
        {"low": 0.6, "high": 0.5},
        {"step": -0.1},
        {"underused_below": 2},
        {"exhausted_after": -1},
    ],
)
def test_adjust_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        adjust_shares(Shares.default(), {}, **kwargs)  # type: ignore[arg-type]


@given(valid_shares().flatmap(lambda s: st.tuples(st.just(s), history_for(list(s)))))
def test_shares_sum_to_100_percent_after_adjustment(
    case: tuple[Shares, dict[str, ComponentHistory]],
) -> None:
    shares, history = case
    after = adjust_shares(shares, history).after
    assert abs(math.fsum(after.values()) - 1) <= 1e-9
    assert set(after) == set(shares)


@settings(max_examples=300)
@given(
    valid_shares(min_size=2, max_size=20).flatmap(
        lambda s: st.tuples(st.just(s), history_for(list(s)))
    )
)
def test_shares_stay_in_band_after_adjustment(
    case: tuple[Shares, dict[str, ComponentHistory]],
) -> None:
    shares, history = case  # 2–20 components: 5–50% is always feasible
    adjustment = adjust_shares(shares, history)
    assert adjustment.feasible
    assert abs(math.fsum(adjustment.after.values()) - 1) <= 1e-9
    assert all(0.05 - SLACK <= v <= 0.50 + SLACK for v in adjustment.after.values())


@given(
    valid_shares(max_size=12).flatmap(lambda s: st.tuples(st.just(s), history_for(list(s)))),
    st.floats(0.01, 0.3),
    st.floats(0.01, 1.0),
    st.floats(0, 0.2),
)
def test_any_feasible_band_is_kept(
    case: tuple[Shares, dict[str, ComponentHistory]], low: float, width: float, step: float
) -> None:
    shares, history = case
    high = min(1.0, low + width)
    adjustment = adjust_shares(shares, history, low=low, high=high, step=step)
    after = adjustment.after
    assert abs(math.fsum(after.values()) - 1) <= 1e-9
    n = len(shares)
    if n * low <= 1 <= n * high:
        assert all(low - SLACK <= v <= high + SLACK for v in after.values())
    else:
        assert all(v == pytest.approx(1 / n) for v in after.values())


@given(valid_shares())
def test_no_history_keeps_in_band_shares(shares: Shares) -> None:
    after = adjust_shares(shares, {}).after
    if len(shares) >= 2 and all(0.05 <= v <= 0.50 for v in shares.values()):
        assert after.to_dict() == pytest.approx(shares.to_dict())


def test_public_names_match_all() -> None:
    public = {
        name
        for name, value in vars(budget).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(budget.__all__)


def test_the_providers_fixed_overhead_is_its_own_row_and_the_components_share_the_rest() -> None:
    """Claude Code's system prompt and tools (40–80k tokens) were charged to
    system_context, whose default share is 10%: every Claude Code session showed it
    critical at 300%+ whatever the session did. The overhead is fixed: a row of its
    own, in the overall figure, and the components' shares are of what it leaves."""
    shares = Shares.default()
    used = {"system_context": 1_000, "working_memory": 30_000}
    report = utilization_report(shares, 200_000, used, fixed=60_000)
    system = report.component("system_context")
    assert system.allocated_tokens == 14_000  # 10% of the 140,000 left
    assert system.status.value == "low"
    assert report.component("working_memory").allocated_tokens == 42_000
    assert (report.total_used, report.total_available) == (91_000, 109_000)
    overall = report.to_dict()["overall"]
    assert (overall["fixed_tokens"], overall["shared_tokens"]) == (60_000, 140_000)
    rows = report.render().splitlines()
    assert re.match(r"provider overhead\s+60,000\s+60,000\s+fixed$", rows[-2])
    # an overhead over the whole budget leaves the components nothing, never less
    assert (
        utilization_report(shares, 50_000, used, fixed=60_000)
        .component("working_memory")
        .allocated_tokens
        == 0
    )
