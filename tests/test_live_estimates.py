"""Exchanges left and ETA that make sense: a robust average of the latest exchanges,
bounded by the free space, unknown with too little history or when pauses dominate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cc_session import SESSION_ID, shop_session

from ctxbudget import Tracker
from ctxbudget.accounting import Totals, estimate_overhead
from ctxbudget.budget.forecast import (
    IDLE_GAP_SECONDS,
    MAX_ETA_SECONDS,
    eta,
    exchanges_left,
    live_estimate,
)
from ctxbudget.model import Item, Kind, Role
from ctxbudget.render import capacity_text, eta_text
from ctxbudget.testing import FakeClock


def test_exchanges_left_is_bounded_by_the_smallest_exchange() -> None:
    # 429 tokens free: not "~57 exchanges", whatever the average says
    assert exchanges_left(429, [300, 9_000, 40, 8_000]) == 0
    sizes = [120, 130, 5_000, 140, 150]
    n = exchanges_left(10_000, sizes)
    assert n is not None and 0 < n <= 10_000 // min(sizes)
    assert exchanges_left(10_000, [150]) is None  # one exchange: unknown


def test_eta_is_unknown_when_pauses_dominate_or_beyond_a_day() -> None:
    busy = [20.0, 25.0, 30.0, 4 * 3600.0]
    assert eta(10, busy) == pytest.approx(10 * 27.5)
    idle = [20.0, 2 * IDLE_GAP_SECONDS, 3 * IDLE_GAP_SECONDS, 30.0]
    assert eta(10, idle) is None  # half of the gaps are pauses
    assert eta(10_000, [30.0, 30.0]) is None  # 83 hours: no forecast
    assert eta(2_000, [30.0, 30.0]) == 60_000.0 < MAX_ETA_SECONDS


def test_live_estimate_says_what_it_divides_by() -> None:
    # ten exchanges: the largest and smallest left out of the mean
    sizes = [900, 700, 800, 1_200, 600, 800, 700, 900, 800, 20_000]
    est = live_estimate(57_947, sizes, [6.0, 7.0, 8.0, 5.0])
    assert est.tokens_per_exchange == 850 and est.seconds_per_exchange == 6.5
    assert est.exchanges_left == 57_947 // 850
    assert est.eta_seconds == pytest.approx(est.exchanges_left * 6.5)
    # items stamped at once (a message file read): no pace, no ETA
    loaded = live_estimate(57_947, [900, 700, 800], [0.0, 0.0])
    assert loaded.exchanges_left and loaded.eta_seconds is None
    unknown = live_estimate(57_947, [], [])
    assert unknown.exchanges_left is None and unknown.tokens_per_exchange is None


def _item(role: Role, kind: Kind, at: float, text: str = "x") -> Item:
    return Item(role=role, kind=kind, text=text, created_at=at)


def test_an_exchange_is_what_one_request_adds() -> None:
    totals = Totals()
    totals.add(_item(Role.SYSTEM, Kind.SYSTEM_PROMPT, 0), 500)  # not an exchange
    totals.add(_item(Role.USER, Kind.USER_TEXT, 10), 20)
    totals.add(_item(Role.ASSISTANT, Kind.TOOL_CALL, 15), 30)
    totals.add(_item(Role.TOOL, Kind.TOOL_RESULT, 16), 400)
    totals.add(_item(Role.TOOL, Kind.TOOL_RESULT, 16), 100)  # parallel results: one round
    totals.add(_item(Role.ASSISTANT, Kind.THINKING, 40), 50)
    totals.add(_item(Role.ASSISTANT, Kind.ASSISTANT_TEXT, 41), 10)
    totals.add(_item(Role.USER, Kind.USER_TEXT, 100), 5)  # under way: no response yet
    assert totals.recent_exchanges(1.0, 0.0) == [50, 560]
    assert totals.recent_exchanges(2.0, 10.0) == [120, 1_160]
    assert totals.exchange_gaps() == [6.0, 84.0]


def _agentic(tracker: Tracker, window: int, rounds: int, result_words: int) -> object:
    """One user request and many tool rounds, 12 s apart (a Claude Code turn)."""
    clock = FakeClock(start=1_000.0)
    s = tracker.session(model="gpt-4o", window=window)
    s.add(Item(role=Role.USER, kind=Kind.USER_TEXT, text="Fix REQ-7.", created_at=clock()))
    for n in range(rounds):
        s.add(
            Item(
                role=Role.ASSISTANT,
                kind=Kind.TOOL_CALL,
                text=f"Read file_{n}.py",
                tool="Read",
                pair_id=f"t{n}",
                created_at=clock(),
            )
        )
        clock.advance(4)
        s.add(
            Item(
                role=Role.TOOL,
                kind=Kind.TOOL_RESULT,
                text=f"line {n} " * result_words,
                tool="Read",
                pair_id=f"t{n}",
                created_at=clock(),
            )
        )
        clock.advance(8)
    return s


def test_a_long_turn_leaves_room_for_its_rounds_not_zero() -> None:
    # one user turn of 60 tool rounds fills 70% of the window: per user turn that is
    # ~all of it ("0 exchanges left" with 30% free); per round it is a few hundred
    tracker = Tracker(store="memory://")
    s = _agentic(tracker, window=200_000, rounds=60, result_words=700)
    probe = s.status()
    s.set_policy(s.policy.replace(window=round(probe.used_tokens / 0.71)))
    st = s.status()
    sizes = s.totals.recent_exchanges(s.calibration.per_token, s.framing)
    assert st.estimated_exchanges_left is not None
    assert 0 < st.estimated_exchanges_left <= st.remaining_tokens // min(sizes)
    assert st.seconds_per_exchange == 12.0
    assert st.eta_seconds == pytest.approx(st.estimated_exchanges_left * 12.0)
    assert st.eta_seconds <= MAX_ETA_SECONDS
    assert "~" in capacity_text(st) and "ETA" in capacity_text(st)


def test_a_fresh_context_says_unknown() -> None:
    s = Tracker(store="memory://").session(model="gpt-4o", window=200_000)
    s.add("Summary of the work so far: REQ-7 done.", kind=Kind.SUMMARY)
    s.add("Carry on.")
    st = s.status()
    assert st.estimated_exchanges_left is None and st.eta_seconds is None
    assert capacity_text(st).startswith("unknown")
    assert json.loads(json.dumps(st.to_dict()))["estimated_exchanges_left"] is None


def test_eta_text() -> None:
    assert eta_text(None) == "ETA unknown"
    assert eta_text(9) == "ETA 9 s"
    assert eta_text(600) == "ETA 10 min"
    assert eta_text(5_400) == "ETA 1.5 h"


def test_overhead_estimate_is_a_low_quantile_of_the_earlier_samples() -> None:
    assert estimate_overhead([]) is None
    assert estimate_overhead([-300, -10]) == 0
    samples = [21_700, 21_900, 22_400, 25_000, 31_000, 38_000, 40_000, 41_000, 45_000, 60_000]
    assert estimate_overhead(samples) == 21_700
    assert estimate_overhead([*samples, *samples, 18_000]) == 21_700  # one low outlier


def test_a_claude_code_session_gets_estimates_from_its_rounds(tmp_path: Path) -> None:
    path = shop_session(rounds=10, gap=20.0).write(tmp_path / f"{SESSION_ID}.jsonl")
    st = Tracker(store="memory://").load(path).status()
    assert st.tokens_per_exchange is not None and st.estimated_exchanges_left is not None
    assert 0 < st.estimated_exchanges_left <= st.remaining_tokens // 100
    assert st.seconds_per_exchange == pytest.approx(20.0)
    assert st.eta_seconds == pytest.approx(st.estimated_exchanges_left * 20.0)
