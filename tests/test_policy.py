from __future__ import annotations

from pathlib import Path

import pytest

from ctxbudget import ConfigurationError, Level, Policy


def test_defaults_match_the_documented_thresholds() -> None:
    p = Policy()
    assert (p.warning_percent, p.critical_percent, p.blocked_percent) == (75, 90, 95)
    assert p.level_for(74.9) is Level.NORMAL
    assert p.level_for(75) is Level.WARNING
    assert p.level_for(90) is Level.CRITICAL
    assert p.level_for(95) is Level.BLOCKED


@pytest.mark.parametrize(
    "fields",
    [
        {"warning_percent": 90, "critical_percent": 80},
        {"blocked_percent": 120},
        {"warning_percent": -1},
        {"window": 0},
        {"reserved_output": 5000, "window": 4000},
    ],
)
def test_invalid_policies_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError, match="invalid policy"):
        Policy().replace(**fields)


def test_toml_with_threshold_table(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text(
        "[policy]\nwindow = 12000\nreserved_output = 2000\n"
        "[policy.thresholds]\nwarning = 70\ncritical = 85\nblocked = 92\n"
    )
    p = Policy.from_toml(f)
    assert (p.window, p.reserved_output, p.warning_percent, p.blocked_percent) == (
        12000,
        2000,
        70,
        92,
    )


def test_toml_out_of_order_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("warning_percent = 95\ncritical_percent = 90\n")
    with pytest.raises(ConfigurationError, match=r"bad\.toml.*ordered"):
        Policy.from_toml(f)


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown policy field"):
        Policy().replace(windw=5)


def test_window_by_model() -> None:
    assert Policy.for_model("claude-opus-4").window == 200_000
    assert Policy.for_model("gpt-4o-mini").window == 128_000
    assert Policy.for_model("gpt-4").window == 8_192
    # Claude Code 2.1.328's models, each with the window Claude Code reports for it
    for model in ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"):
        assert Policy.for_model(model).window == 1_000_000, model
    assert Policy.for_model("claude-haiku-4-5").window == 200_000


def test_a_policy_is_an_immutable_value_that_copies_and_pickles() -> None:
    import copy
    import pickle

    policy = Policy(window=100_000, warning_percent=70.0, model="gpt-4o")
    for made in (copy.copy(policy), copy.deepcopy(policy), pickle.loads(pickle.dumps(policy))):
        assert made == policy and hash(made) == hash(policy)
    assert {policy, Policy(window=100_000, warning_percent=70.0, model="gpt-4o")} == {policy}
    with pytest.raises(AttributeError):
        policy.window = 5  # type: ignore[misc]
    assert policy.replace(window=None, critical_percent=85.0).critical_percent == 85.0
