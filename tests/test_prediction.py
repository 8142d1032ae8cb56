from __future__ import annotations

import json
import math
import statistics

import pytest

from ctxbudget import ConfigurationError
from ctxbudget.budget.forecast import (
    active_minutes,
    eta,
    exchanges_left,
    forecast_remaining_growth,
    growth_deltas,
    net_growth,
    robust_average,
)
from ctxbudget.budget.prediction import (
    DEFAULT_CONSTANTS,
    PRIOR_SCALES,
    Constants,
    Predictor,
    Task,
    fits,
    fits_components,
    task_class_tokens,
)

WM, AC, KB = "working_memory", "agent_context", "knowledge_base"


# -- the default prediction constants ----------------------------------------------


@pytest.mark.parametrize(
    ("task", "level", "tokens"),
    [
        (Task("none"), "low", 15_000),
        (Task("two files, 10 min", files=2, minutes=10), "low", 15_000),  # score 40
        (Task("score 49", files=4, minutes=4.5), "low", 15_000),
        (Task("five files", files=5), "medium", 55_000),  # score 50: "if score < 50"
        (Task("one agent, 15 min", agents=1, minutes=15), "medium", 55_000),
        (Task("74.5 min", minutes=74.5), "medium", 55_000),  # score 149
        (Task("75 min", minutes=75), "high", 110_000),  # score 150: "elif score < 150"
        (Task("15 files", files=15), "high", 110_000),
        (Task("3 files 3 agents 30 min", files=3, agents=3, minutes=30), "high", 110_000),
    ],
)
def test_default_classes_and_totals(task: Task, level: str, tokens: int) -> None:
    assert task.level() == level
    assert task_class_tokens(task) == tokens
    assert Predictor().predict(task) == tokens


def test_default_score_weights() -> None:
    assert Task("t", files=3, agents=2, minutes=7.5).score() == 3 * 10 + 2 * 20 + 7.5 * 2


def test_default_components_per_class() -> None:
    predictor = Predictor()
    assert predictor.predict_components(Task("s", files=1)) == {WM: 10_000, AC: 5_000}
    assert predictor.predict_components(Task("m", files=5)) == {WM: 30_000, AC: 15_000, KB: 10_000}
    assert predictor.predict_components(Task("c", files=20)) == {
        WM: 60_000,
        AC: 30_000,
        KB: 20_000,
    }
    # needs over a list of tasks: the sums of the three classes
    tasks = [Task("s", files=1), Task("m", files=5), Task("c", files=20)]
    assert predictor.predict_components_all(tasks) == {WM: 100_000, AC: 50_000, KB: 30_000}
    assert predictor.predict_all(tasks) == 180_000


def test_defaults_have_no_per_unit_tokens_or_base() -> None:
    c = DEFAULT_CONSTANTS
    assert (c.base, c.per_file, c.per_agent, c.per_minute) == (0, 0, 0, 0)
    assert c.multipliers == pytest.approx({"low": 1.0, "medium": 55 / 15, "high": 110 / 15})


def test_explicit_complexity_and_the_alternative_names() -> None:
    assert Task("t", files=50, complexity="low").level() == "low"
    assert Task("t", complexity="complex").level() == "high"
    assert Task("t", complexity="moderate").complexity == "medium"
    assert Predictor().predict(Task("t", complexity="simple")) == 15_000


@pytest.mark.parametrize(
    "fields",
    [{"files": -1}, {"agents": -2}, {"minutes": -0.5}, {"complexity": "huge"}],
)
def test_invalid_tasks_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="invalid task"):
        Task("bad", **fields)  # type: ignore[arg-type]


def test_invalid_constants_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        Constants(medium_from=200, high_from=100)
    with pytest.raises(ConfigurationError):
        Constants.from_dict({"per_fil": 3})


# -- calibration ---------------------------------------------------------------------


def test_one_observation_stays_near_the_prior() -> None:
    predictor = Predictor()
    task = Task("typical", files=10, agents=2, minutes=30)
    prior = predictor.predict(task)
    predictor.observe(task, 30_000)
    moved = math.log(prior / predictor.predict(task)) / math.log(prior / 30_000)
    # towards what it saw, h / (1 + h) of the way in log, h = ‖x‖² / prior_weight
    terms = (1.0, math.log1p(10), math.log1p(2), math.log1p(30))
    x2 = sum((s * t) ** 2 for s, t in zip(PRIOR_SCALES, terms, strict=True))
    h = x2 / predictor.prior_weight
    assert moved == pytest.approx(h / (1 + h), abs=0.01)
    assert 0.2 < moved < 0.3
    # a task with nothing to scale: exactly 1 / (1 + prior_weight)
    bare = Predictor()
    bare.observe(Task("bare"), 5_000)
    moved = math.log(15_000 / bare.predict(Task("bare"))) / math.log(15_000 / 5_000)
    assert moved == pytest.approx(1 / (1 + bare.prior_weight), abs=0.001)
    # the correction is mostly an overall factor: other tasks move the same way, and
    # no further than the observed one
    other = Task("small", files=1)
    assert 15_000 * (30_000 / prior) ** 0.3 < predictor.predict(other) < 15_000


def test_many_observations_move_predictions_to_observed_use() -> None:
    predictor = Predictor()
    tasks = [Task(f"t{i}", files=i % 17, agents=i % 3, minutes=(i * 7) % 50) for i in range(60)]
    for task in tasks:
        predictor.observe(task, task_class_tokens(task) // 2)  # every task used half its class
    unseen = [Task("u1", files=4, minutes=3), Task("u2", files=8, agents=1, minutes=20)]
    for task in unseen:
        assert predictor.predict(task) == pytest.approx(task_class_tokens(task) / 2, rel=0.1)


def test_calibration_learns_a_per_file_cost() -> None:
    def actual(task: Task) -> int:
        return 3_000 * task.files + 5_000

    tasks = [Task(f"t{f}", files=f) for f in range(1, 41)]
    sample = [Task("a", files=2), Task("b", files=9), Task("c", files=25), Task("d", files=33)]

    def error(p: Predictor) -> float:
        return statistics.median(abs(p.predict(t) - actual(t)) / actual(t) for t in sample)

    predictor = Predictor()
    before = error(predictor)
    for task in tasks:
        predictor.observe(task, actual(task))
    assert error(predictor) < before / 2


def test_observation_validation_and_reset() -> None:
    predictor = Predictor()
    with pytest.raises(ConfigurationError, match="actual tokens"):
        predictor.observe(Task("t"), -1)
    predictor.observe(Task("t", files=3), 1_000)
    assert predictor.predict(Task("t", files=3)) < 15_000
    predictor.reset()
    assert predictor.predict(Task("t", files=3)) == 15_000
    with pytest.raises(ConfigurationError):
        Predictor(prior_weight=0)


def test_observations_are_bounded() -> None:
    predictor = Predictor(max_observations=5)
    for i in range(12):
        predictor.observe(Task(f"t{i}", files=i), 1_000 * i)
    assert [o.task.name for o in predictor.observations] == [f"t{i}" for i in range(7, 12)]


def test_round_trip_through_json() -> None:
    predictor = Predictor(prior_weight=2.5, max_observations=50)
    for i in range(8):
        predictor.observe(Task(f"t{i}", files=i, agents=i % 2, minutes=3 * i), 4_000 * (i + 1))
    data = json.loads(json.dumps(predictor.to_dict()))
    again = Predictor.from_dict(data)
    assert again.observations == predictor.observations
    assert again.calibration() == pytest.approx(predictor.calibration())
    assert again.prior_weight == 2.5 and again.max_observations == 50
    probe = [Task("p", files=6, minutes=12), Task("q", agents=3, complexity="high")]
    assert [again.predict(t) for t in probe] == [predictor.predict(t) for t in probe]
    assert Predictor.from_dict({}).predict(Task("x", files=5)) == 55_000


def test_custom_constants_round_trip() -> None:
    constants = Constants(per_file=1_000.0, base=2_000.0)
    predictor = Predictor(constants=constants)
    assert predictor.predict(Task("t", files=2)) == 15_000 + 2_000 + 2 * 1_000
    again = Predictor.from_dict(json.loads(json.dumps(predictor.to_dict())))
    assert again.constants == constants


# -- fits ----------------------------------------------------------------------------


def test_fits_and_what_to_free() -> None:
    ok = fits(10_000, 20_000)
    assert ok.fits and ok.to_free == 0
    short = fits(30_000, 20_000)
    assert not short.fits and short.to_free == 10_000
    assert "free 10,000" in short.reason
    assert fits(30_000, 20_000, margin=0.1).to_free == 13_000
    assert fits(5_000, -1_000).to_free == 6_000  # already over: the overrun too
    assert fits(0, 0).fits
    with pytest.raises(ConfigurationError):
        fits(-1, 100)


def test_fits_per_component_like_preemptive_cleanup() -> None:
    needs = Predictor().predict_components_all([Task("m", files=5)])
    available = {WM: 40_000, AC: 10_000}
    advice = fits_components(needs, available)
    assert advice[WM].fits
    assert advice[AC].to_free == 5_000
    assert advice[KB].to_free == 10_000  # nothing available


# -- a running session ---------------------------------------------------------------


def test_exchanges_left_reproduces_the_analyst_example() -> None:
    # "Available for continued gathering: 5,771 tokens ... Can continue for ~10-12 more
    # exchanges" with the analyst example's avg_tokens_per_exchange = 500.
    assert exchanges_left(5_771, [500] * 12) == 11
    # TokenBudgetTracker at start: working budget 12,000 - 800 - 2,000 = 9,200.
    assert exchanges_left(9_200, [500, 500]) == 18
    assert exchanges_left(9_200, [500]) is None  # one exchange says nothing of the next


def test_exchanges_left_edge_cases() -> None:
    assert exchanges_left(0, [500, 600]) == 0
    assert exchanges_left(-300, [500]) == 0
    assert exchanges_left(0, []) == 0
    assert exchanges_left(5_000, []) is None  # no growth seen: no estimate
    assert exchanges_left(5_000, [0, 0, 0]) is None
    assert exchanges_left(5_000, [-120_000]) is None  # a compaction is not growth
    assert exchanges_left(5_000, [500, -120_000, 500]) == 10
    # only the last `window` exchanges count
    assert exchanges_left(10_000, [5_000] * 20 + [1_000] * 10) == 10
    # all 30, the top and bottom 3 trimmed: (17 × 5,000 + 7 × 1,000) / 24 = 3,833
    assert exchanges_left(10_000, [5_000] * 20 + [1_000] * 10, window=None) == 2


def test_exchanges_left_is_robust_to_one_huge_exchange() -> None:
    growth = [400, 450, 500, 550, 600, 420, 480, 520, 580, 40_000]
    # the 40,000-token read (and the smallest, 400) trimmed: 10,000 // 512.5
    assert exchanges_left(10_000, growth) == 19
    assert exchanges_left(10_000, growth, trim=0.0) == 2


def test_eta() -> None:
    # "Exchanges: 20 / ~30 estimated ... ETA: 1.2 hours remaining": 10 exchanges at
    # 7.2 minutes each.
    assert eta(10, [432.0] * 5) == pytest.approx(1.2 * 3600)
    assert eta(None, [432.0]) is None
    assert eta(0, [432.0]) == 0.0
    assert eta(0, []) == 0.0
    assert eta(5, []) is None
    assert eta(5, [0.0, -3.0]) is None
    # a pause (the user away for 10 hours) does not make the ETA 10 hours per exchange
    assert eta(2, [400.0, 432.0, 460.0, 36_000.0]) == pytest.approx(2 * 446.0)


def test_growth_helpers() -> None:
    tokens = [10, 1_010, 2_010, 500, 1_500]
    assert growth_deltas(tokens) == [1_000, 1_000, -1_510, 1_000]
    assert growth_deltas(tokens, resets={3}) == [1_000, 1_000, 1_000]
    assert net_growth(tokens, resets={3}) == 3_000
    assert net_growth([100, 50, 400]) == 300  # no reset: last - first
    assert robust_average([]) is None
    assert robust_average([1, 2, 3, 100], trim=0.25) == 2.5
    assert robust_average([1, 2, 3, 100], trim=0.1) == 26.5  # too few to trim


def test_forecast_remaining_growth() -> None:
    calls = [(float(i), 20_000 + 1_000 * i) for i in range(11)]
    assert forecast_remaining_growth(calls, 5) == 5_000
    assert forecast_remaining_growth(calls, 0) == 0
    compacted = [(0.0, 10), (1.0, 1_010), (2.0, 2_010), (3.0, 500), (4.0, 1_500)]
    assert forecast_remaining_growth(compacted, 2, resets={3}) == 2_000
    assert forecast_remaining_growth(calls[:1], 5) is None
    assert forecast_remaining_growth([], 5) is None
    shrinking = [(0.0, 5_000), (1.0, 4_000), (2.0, 3_000)]
    assert forecast_remaining_growth(shrinking, 4) == 0
    with pytest.raises(ConfigurationError):
        forecast_remaining_growth(calls, -1)


def test_active_minutes_caps_pauses() -> None:
    assert active_minutes([0.0, 60.0, 120.0]) == 2.0
    assert active_minutes([0.0, 60.0, 10_000.0]) == 6.0  # the pause counts 5 minutes
    assert active_minutes([0.0, 60.0, 10_000.0], idle_cap_seconds=60) == 2.0
    assert active_minutes([]) == 0.0
