from __future__ import annotations

from pathlib import Path

import pytest

from ctxbudget import Item, Kind, Level, Policy, Role, Tracker, Usage
from ctxbudget.accounting import Calibration


@pytest.fixture
def tracker(tmp_path: Path) -> Tracker:
    return Tracker(store=f"sqlite:///{tmp_path / 't.db'}")


def test_provider_usage_is_the_truth(tracker: Tracker) -> None:
    s = tracker.session(model="gpt-4o", counter="o200k_base")
    s.add("You are terse.", role="system")
    s.add("hello there")
    local = s.status().used_tokens
    s.record_usage({"prompt_tokens": 5000, "completion_tokens": 10})
    assert s.status().used_tokens == 5010  # the answer too: the next request carries it
    s.add("one more question")  # without the answer: the next request does not
    after = s.status()
    assert after.anchored and after.reported_tokens == 5000
    # only what was added since is estimated: a few tokens plus per-item framing
    assert 5000 < after.used_tokens < 5000 + 60
    assert local < 100


def test_the_answer_counts_as_its_usage_reported_it(tracker: Tracker) -> None:
    """The answer a usage reported (output tokens) is in the figure at once, and the
    answer's text added next is counted as reported, not estimated again: the figure is
    the same as a transcript's (usage + output + framing of what came since)."""
    s = tracker.session(model="claude-sonnet-4-5")
    s.add("Summarise the design document, please.")
    s.record_usage({"input_tokens": 5000, "output_tokens": 25})
    assert s.status().used_tokens == 5025
    answer = "word " * 400  # far more than 25 tokens locally: it is not counted again
    s.add(answer, role="assistant")
    framing = s.status().used_tokens - 5025
    assert 0 <= framing <= 40
    s.add("Thanks. Now the tests.")
    after = s.status()
    assert after.reported_tokens == 5000
    assert 5025 + framing < after.used_tokens < 5025 + framing + 60
    # reopened from the store: the same
    assert tracker.open(s.id).status().used_tokens == after.used_tokens


def test_anthropic_usage_sums_cache_fields() -> None:
    u = Usage.from_api(
        {
            "input_tokens": 4,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 20000,
            "output_tokens": 7,
        }
    )
    assert u.context_tokens == 20104


def test_levels_and_threshold_events(tracker: Tracker) -> None:
    s = tracker.session(model="gpt-4o", window=10_000)
    s.record_usage(7_000)
    assert s.status().level is Level.NORMAL
    s.record_usage(8_000)
    assert s.status().level is Level.WARNING
    s.record_usage(9_600)
    status = s.status()
    assert status.level is Level.BLOCKED
    assert "blocked" in status.recommendation.lower()
    crossed = [e.data["to"] for e in s.events(types=["threshold_crossed"])]
    assert crossed == ["warning", "blocked"]
    assert len(s.events(types=["usage_recorded"])) == 3


def test_session_survives_reopen_without_recount(tracker: Tracker, tmp_path: Path) -> None:
    s = tracker.session(model="gpt-4o", name="demo")
    s.add("x " * 500)
    s.record_usage(1200)
    s.add("and a follow-up")
    before = s.status()
    again = Tracker(store=f"sqlite:///{tmp_path / 't.db'}")
    reopened = again.open(s.id[:8])
    assert reopened.counter.misses == 0  # counts came back with the items
    assert reopened.status().used_tokens == before.used_tokens
    assert reopened.status().breakdown.kind == before.breakdown.kind


def test_status_is_incremental(tracker: Tracker) -> None:
    s = tracker.session(model="gpt-4o")
    s.extend([Item(role=Role.USER, kind=Kind.USER_TEXT, text=f"message {i}") for i in range(50)])
    misses = s.counter.misses
    s.status()
    s.status()
    assert s.counter.misses == misses  # asking twice recounts nothing
    s.add("message 0")  # same text: cached by content hash
    assert s.counter.misses == misses


def test_breakdown_by_dimension(tracker: Tracker) -> None:
    s = tracker.session(model="gpt-4o")
    s.add("system rules " * 20, role="system")
    s.add(
        Item(
            role=Role.ASSISTANT,
            kind=Kind.TOOL_CALL,
            text='Read {"file_path": "a.py"}',
            tool="Read",
            pair_id="t1",
        )
    )
    s.add(
        Item(
            role=Role.TOOL,
            kind=Kind.FILE_READ,
            text="def f(): pass\n" * 30,
            tool="Read",
            pair_id="t1",
            agent="reviewer",
        )
    )
    b = s.status().breakdown
    assert set(b.component) == {"system_context", "working_memory"}
    assert b.tool["Read"] > 0 and b.agent["reviewer"] > 0
    assert b.kind["file_read"] > b.kind["tool_call"]


def test_exchanges_left_uses_running_average(tracker: Tracker) -> None:
    s = tracker.session(model="gpt-4o", window=10_000)
    for _ in range(5):
        s.add("q " * 100)
        s.add("a " * 300, role="assistant")
    st = s.status()
    assert st.estimated_exchanges_left is not None
    per = (10_000 - st.used_tokens) / st.estimated_exchanges_left
    assert 350 < per < 500


def test_load_claude_code_anchors_on_last_usage(tracker: Tracker, fixtures: Path) -> None:
    s = tracker.load(fixtures / "claude_code_small.jsonl")
    st = s.status()
    assert st.anchored and st.reported_tokens == 12364
    assert 12364 < st.used_tokens < 12364 + 100
    assert st.max_tokens == 200_000
    assert [a.name for a in st.breakdown.subagents] == ["code-reviewer"]
    history = s.history()
    assert [p.reported_tokens for p in history] == [12004, 12154, 12274, 12364]


def test_recording_twice_keeps_the_ledger(tracker: Tracker, fixtures: Path) -> None:
    s = tracker.load(fixtures / "claude_code_small.jsonl")
    s.save()
    assert len(s.events(types=["usage_recorded"])) == 4
    s2 = tracker.load(fixtures / "claude_code_small.jsonl")
    s2.save()
    assert len(s2.events(types=["usage_recorded"])) == 4  # nothing recorded twice
    assert len(tracker.open(s.id).items) == len(s.items)


def test_calibration_learns_a_tokenizer_ratio() -> None:
    cal = Calibration()
    for n in range(100):
        local = 200 + 37 * n
        cal.learn(local, 3, round(1.2 * local + 3 * 25))
    assert cal.per_token == pytest.approx(1.2, abs=0.02)
    assert cal.predict(1000, 3) == pytest.approx(1275, rel=0.02)


def test_calibration_ignores_shrinking_context() -> None:
    cal = Calibration()
    cal.learn(100, 2, -5000)
    assert cal.samples == []


def test_policy_change_is_an_event(tracker: Tracker) -> None:
    s = tracker.session(model="gpt-4o")
    s.set_policy(Policy(window=50_000))
    [event] = s.events(types=["policy_changed"])
    assert event.data["to"]["window"] == 50_000


@pytest.mark.parametrize(
    "usage", [None, "abc", {}, object(), -5, True, float("nan"), 1500.5, 10**12]
)
def test_a_usage_that_is_none_is_refused_and_changes_nothing(
    tracker: Tracker, usage: object
) -> None:
    """Anything but a usage or a context size: one clear error, the figure as it was
    (it became 0, -5 or 1 before)."""
    from ctxbudget.errors import SourceError

    s = tracker.session(model="claude-sonnet-4-5")
    s.add("hello there")
    s.record_usage(4_000)
    with pytest.raises(SourceError, match="the usage given is not usable"):
        s.record_usage(usage)
    assert s.status().used_tokens == s.status().reported_tokens == 4_000
    assert len(s.events(types=["usage_recorded"])) == 1
    s.record_usage(1500.0)  # a whole number of tokens, as a float
    assert s.status().reported_tokens == 1_500


def test_the_wrong_types_get_one_clear_error_and_change_nothing(tracker: Tracker) -> None:
    """What a Python caller can get wrong is a ConfigurationError naming it, not an
    AttributeError or a TypeError from deep inside."""
    from ctxbudget.compaction import CompactionPolicy
    from ctxbudget.errors import ConfigurationError

    s = tracker.session(model="claude-sonnet-4-5")
    s.add("hello")
    wrong = [
        (lambda: s.add(None), "got NoneType"),  # type: ignore[arg-type]
        (lambda: s.add(b"bytes"), "got bytes"),  # type: ignore[arg-type]
        (lambda: s.add("x", role="robot"), "unknown role 'robot'"),
        (lambda: s.add("x", kind="weird"), "unknown kind 'weird'"),
        (lambda: s.set_agent_budget("a", "5"), "a positive number"),  # type: ignore[arg-type]
        (lambda: s.compact({"target_percent": 50}), "takes a CompactionPolicy"),  # type: ignore[arg-type]
        (lambda: s.recall(123), "a text to search for"),  # type: ignore[arg-type]
        (lambda: CompactionPolicy(keep_last="5"), "keep_last must be a whole number"),  # type: ignore[arg-type]
        (lambda: tracker.session(model=123), "must be a model's name"),  # type: ignore[arg-type]
        (lambda: tracker.session(counter="nope"), "unknown counter 'nope'"),
    ]
    for call, says in wrong:
        with pytest.raises(ConfigurationError, match=says):
            call()
    assert [i.text for i in s.items] == ["hello"]
    s.start_phase("build")
    with pytest.raises(ConfigurationError, match="unknown pruning 'x'"):
        s.complete_phase(pruning="x")


def test_restoring_a_session_never_stored_says_so(tracker: Tracker, tmp_path: Path) -> None:
    from ctxbudget.errors import CompactionError

    path = tmp_path / "chat.json"
    path.write_text('[{"role": "user", "content": "hi"}]', encoding="utf-8")
    session = tracker.load(path)
    with pytest.raises(CompactionError, match="is not stored: it has no earlier version"):
        session.restore()


def test_an_unknown_model_gets_a_default_window_with_a_warning(tracker: Tracker) -> None:
    """As the CLI says on stderr: which window a name no family matches gets."""
    with pytest.warns(UserWarning, match=r"unknown model 'claud-sonet-4\.5'.*window=N"):
        session = tracker.session(model="claud-sonet-4.5")
    assert session.policy.window == 200_000
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # chosen: no warning
        tracker.session(model="claud-sonet-4.5", window=100_000)
        tracker.session(model="claude-sonnet-4-5")


def test_reasoning_the_next_request_does_not_carry_is_not_in_the_figure(
    tracker: Tracker,
) -> None:
    """An o-series answer of 200 tokens after 30,000 of hidden reasoning: the figure
    is the prompt and the answer (it was 40,200)."""
    s = tracker.session(model="o3", counter="o200k_base")
    s.add("Plan the migration.")
    s.record_usage(
        {
            "prompt_tokens": 10_000,
            "completion_tokens": 30_200,
            "completion_tokens_details": {"reasoning_tokens": 30_000},
        }
    )
    assert s.status().used_tokens == 10_200


def test_more_of_what_a_python_caller_can_get_wrong(tracker: Tracker) -> None:
    from ctxbudget.errors import ConfigurationError, SourceError

    s = tracker.session(model="claude-sonnet-4-5")
    s.add("hello")
    with pytest.raises(SourceError, match="below 0"):
        s.record_usage(Usage(input_tokens=-5_000))
    wrong = [
        (lambda: s.start_phase(123), "a phase needs a name"),  # type: ignore[arg-type]
        (lambda: s.set_policy(None), "set_policy takes a Policy"),  # type: ignore[arg-type]
        (lambda: s.set_agent_budget(None, 5), "an agent is named by a text"),  # type: ignore[arg-type]
        (lambda: s.gate("a", 10, key=123), "a spawn's key is a text"),  # type: ignore[arg-type]
        (lambda: s.release("working_memory", "5"), "tokens to release is a number"),  # type: ignore[arg-type]
        (lambda: s.restore("1"), "a context version is a number"),  # type: ignore[arg-type]
    ]
    for call, says in wrong:
        with pytest.raises(ConfigurationError, match=says):
            call()
    assert [i.text for i in s.items] == ["hello"] and s.budget.phases == []
