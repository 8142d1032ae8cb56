"""Long sessions: the costs that grew faster than the session stay linear.

Each test checks the mechanism, not a time: the memory store's append allocates for
the new items only, the ctok look-up runs once per process, the fact check gives the
same answers indexed as scanned, and the compaction plan of a fixture is unchanged.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.compaction import CompactionPolicy, compact, engine
from ctxbudget.compaction.engine import Compactor
from ctxbudget.compaction.fact_check import (
    INDEX_FROM_FACTS,
    FactCheck,
    check_facts,
    fact_present,
)
from ctxbudget.compaction.steps import _NEAR, _near_duplicate, _RecentWordSets, _size_bounds
from ctxbudget.compaction.types import Fact, FactKind
from ctxbudget.errors import StoreError
from ctxbudget.model import Item, Kind, Role
from ctxbudget.store import open_store
from ctxbudget.store.base import StoredSession
from ctxbudget.tokens import counters


def _session(session_id: str) -> StoredSession:
    return StoredSession(
        id=session_id,
        name=None,
        model="claude-sonnet-4",
        source=None,
        policy={"window": 200_000},
        created_at=1.0,
        updated_at=1.0,
    )


def _items(n: int, prefix: str) -> list[Item]:
    return [
        Item(role=Role.USER, kind=Kind.USER_TEXT, text=f"note {i}", id=f"{prefix}-{i}")
        for i in range(n)
    ]


def test_memory_append_allocates_for_the_new_items_only() -> None:
    """Appending one item to a 10,000-item session must not copy the session's id set
    (a copy of 10,000 ids is hundreds of KB; one item's row is a few KB)."""
    store = open_store("memory://")
    store.create_session(_session("s"))
    for start in range(0, 10_000, 1_000):
        store.append_items("s", _items(1_000, f"b{start}"))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        store.append_items("s", _items(1, "new"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 64_000
    assert len(store.load_items("s")) == 10_001


def test_memory_append_rolls_back_and_still_refuses_duplicates() -> None:
    store = open_store("memory://")
    store.create_session(_session("s"))
    store.append_items("s", _items(3, "a"))
    with pytest.raises(RuntimeError), store.transaction():
        store.append_items("s", _items(2, "b"))
        raise RuntimeError("abort")
    store.append_items("s", _items(2, "b"))  # the rolled-back ids are free again
    with pytest.raises(StoreError, match="already used"):
        store.append_items("s", _items(1, "a"))
    assert [i.id for i in store.load_items("s")] == ["a-0", "a-1", "a-2", "b-0", "b-1"]


def test_ctok_is_looked_up_once_per_process(
    monkeypatch: pytest.MonkeyPatch, looked_up: list[str]
) -> None:
    """Whether ctok is installed is asked once: a failed import searches every entry of
    sys.path each time (asked per item, 13,477 failed imports made 4 s of an 8k-item
    plan)."""
    monkeypatch.setattr(counters, "_claude_found", None)  # as in a fresh process
    answers = {counters.claude_available() for _ in range(500)}
    assert looked_up.count("ctok") == 1
    assert len(answers) == 1


_ALPHABET = "ab1-/.: \nA_é"
_KINDS = [FactKind.FILE, FactKind.REQUIREMENT, FactKind.NUMBER, FactKind.ENTITY, FactKind.DATE]


def _keys(most: int) -> st.SearchStrategy[list[tuple[FactKind, str]]]:
    """Up to ``most`` facts (kind, key) with short keys of the text's alphabet."""
    key = st.text(alphabet=_ALPHABET, min_size=1, max_size=8)
    return st.lists(st.tuples(st.sampled_from(_KINDS), key), min_size=1, max_size=most)


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet=_ALPHABET, max_size=300),
    keys=_keys(20),
)
def test_indexed_fact_check_answers_like_a_scan(
    text: str, keys: list[tuple[FactKind, str]]
) -> None:
    """check_facts indexes the text from INDEX_FROM_FACTS facts on; fact_present scans
    it: the two must agree on every fact."""
    facts = [Fact(kind, key, key) for kind, key in keys]
    facts = (facts * (INDEX_FROM_FACTS // len(facts) + 1))[: max(INDEX_FROM_FACTS, len(facts))]
    report = check_facts(facts, text)
    assert report.missing == [f for f in facts if not fact_present(f, text)]


def _fixture() -> list[Item]:
    """A session with every step's material: results, reads, duplicates, a failed
    attempt, near-duplicates, a long middle."""
    items = [Item(role=Role.SYSTEM, kind=Kind.SYSTEM_PROMPT, text="You are a careful agent.")]
    for n in range(40):
        m = 2 * n + 1
        items.append(
            Item(
                role=Role.USER,
                kind=Kind.USER_TEXT,
                text=f"Step {n}: fix REQ-{100 + n} in src/mod_{n % 7}.py",
                message_index=m,
            )
        )
        prose = " ".join(f"word{(n * 7 + j) % 90}" for j in range(60))
        items.append(
            Item(role=Role.ASSISTANT, kind=Kind.ASSISTANT_TEXT, text=prose, message_index=m + 1)
        )
        items.append(
            Item(
                role=Role.ASSISTANT,
                kind=Kind.TOOL_CALL,
                text=f'Read {{"file_path": "src/mod_{n % 7}.py"}}',
                tool="Read",
                pair_id=f"t{n}",
                message_index=m + 1,
            )
        )
        body = (
            "Error: not found"
            if n % 9 == 0
            else "\n".join(f"{k:>6}→def f{k}(): return {n * k}" for k in range(1, 40))
        )
        items.append(
            Item(
                role=Role.TOOL,
                kind=Kind.FILE_READ,
                text=body,
                tool="Read",
                pair_id=f"t{n}",
                message_index=m + 2,
            )
        )
    return items


def test_compaction_plan_of_a_fixture_is_stable() -> None:
    """Plans of the fixture at several targets: every step's output is consistent
    with the running totals (no drift between the kept total and the items)."""
    items = _fixture()

    def count(text: str) -> int:
        return len(text.split())

    total = sum(count(i.text) for i in items)
    steps: set[str] = set()
    for ratio in (2, 5, 20):
        for policy in (CompactionPolicy(), CompactionPolicy(keep_first=0, keep_last=2)):
            result = compact(items, count=count, target_tokens=total // ratio, policy=policy)
            assert result.tokens_before == total
            assert result.tokens_after == sum(
                i.tokens if i.tokens is not None else count(i.text) for i in result.items
            )
            freed = sum(a.tokens_before - a.tokens_after for a in result.actions)
            assert result.tokens_before - result.tokens_after == freed
            steps |= {a.step for a in result.actions}
            again = compact(items, count=count, target_tokens=total // ratio, policy=policy)
            assert [i.text for i in again.items] == [i.text for i in result.items]
    assert {"reads_and_searches", "summarize"} <= steps


@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=1, max_value=20_000))
def test_near_duplicate_size_bounds_are_the_division_test(n: int) -> None:
    """The sizes a near duplicate of an n-word set may have are exactly those the
    division in ``_near_duplicate`` lets through (the float rounding included)."""
    low, high = _size_bounds(n)
    passing = [m for m in range(max(1, low - 3), high + 4) if (n / m if n <= m else m / n) >= _NEAR]
    assert passing == list(range(low, high + 1))


_WORDS = [f"w{k}" for k in range(14)]


@settings(max_examples=300, deadline=None)
@given(
    sets=st.lists(st.sets(st.sampled_from(_WORDS), max_size=14), min_size=1, max_size=80),
    size=st.integers(min_value=1, max_value=12),
)
def test_recent_word_sets_find_what_comparing_with_all_finds(
    sets: list[set[str]], size: int
) -> None:
    """The indexed search (prefix words, size window) answers as comparing a set with
    each of the last ``size`` sets kept."""
    recent, kept = _RecentWordSets(size), []
    for words in sets:
        prefix = _RecentWordSets.prefix(words)
        expected = any(other and words and _near_duplicate(words, other) for other in kept[-size:])
        assert recent.has_near_duplicate(words, prefix) == expected
        if not expected:
            recent.add(words, prefix)
            kept.append(words)


def test_one_compactor_answers_each_target_as_a_fresh_compaction() -> None:
    """The archive asks one ``Compactor`` its floor, then one target and another: what
    it keeps between them (counts, facts, protected sets, fact checks) changes no
    answer."""
    items = _fixture()

    def count(text: str) -> int:
        return len(text.split())

    total = sum(count(i.text) for i in items)
    compactor = Compactor(items, count=count)
    tokens, n = compactor.floor(0, 1)
    assert 0 < n < len(items) and 0 < tokens < total
    for target in (total // 2, total // 5, total // 20, total // 5):
        fresh = compact(items, count=count, target_tokens=target)
        shared = compactor.compact(target)
        assert [i.text for i in shared.items] == [i.text for i in fresh.items]
        assert shared.tokens_after == fresh.tokens_after
        assert [a.step for a in shared.actions] == [a.step for a in fresh.actions]
        assert shared.notes == fresh.notes


def test_a_target_nothing_reaches_is_planned_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the full protection's own floor and missed by the least protection too:
    the least protection's pass is the answer (it keeps less whole), and no pass under
    the full protection is run to be thrown away."""
    items = _fixture()
    passes: list[tuple[int, int]] = []
    run_steps = engine._run_steps

    def counted(work: Any, policy: CompactionPolicy, *args: Any) -> Any:
        passes.append((policy.keep_first, policy.keep_last))
        return run_steps(work, policy, *args)

    monkeypatch.setattr(engine, "_run_steps", counted)
    result = compact(items, count=lambda text: len(text.split()), target_tokens=1)
    assert passes == [(0, 1)]
    assert any("kept the last 1 exchange(s) verbatim instead of 5" in note for note in result.notes)


def test_a_summary_given_its_least_room_is_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A target far under what must stay gives the summary its least room: when the
    summary and the facts it keeps then overshoot, aiming lower would make the same, so it
    is not made again (half a second of a 100k-item plan); the result is the one it was."""
    items = _fixture()
    made: list[int] = []
    summarize = engine.summarize_middle

    def counted(work: Any, keep: set[int], target: int, *args: Any) -> Any:
        made.append(target)
        return summarize(work, keep, target, *args)

    before = compact(items, count=lambda text: len(text.split()), target_tokens=1)
    assert before.summary and before.tokens_after > 1  # overshot, with a summary
    monkeypatch.setattr(engine, "summarize_middle", counted)
    result = compact(items, count=lambda text: len(text.split()), target_tokens=1)
    assert made == [1]
    assert result.summary == before.summary and result.tokens_after == before.tokens_after


@settings(max_examples=300, deadline=None)
@given(
    fixed=st.text(alphabet=_ALPHABET, max_size=200),
    first=st.text(alphabet=_ALPHABET, min_size=1, max_size=200),
    added=st.text(alphabet=_ALPHABET, max_size=120),
    keys=_keys(90),
)
def test_a_check_of_a_grown_summary_answers_as_a_check_of_the_whole(
    fixed: str, first: str, added: str, keys: list[tuple[FactKind, str]]
) -> None:
    """The ledger grows the summary by lines: the check then looks only at what was
    added and must answer as a check of the whole text (and so when another report came
    in between, which it cannot build on)."""
    facts = [Fact(kind, key, key) for kind, key in keys]
    check = FactCheck(facts, fixed)
    before = check.report(first)
    assert before.missing == check_facts(facts, fixed + "\n" + first).missing
    grown = first + "\n" + added
    after = check.report(grown, since=before)
    assert after.missing == check_facts(facts, fixed + "\n" + grown).missing
    check.report(added)
    assert check.report(grown, since=before).missing == after.missing


@settings(max_examples=300, deadline=None)
@given(st.sets(st.text(alphabet="abcxyz", min_size=1, max_size=6), max_size=60))
def test_a_word_set_is_filed_under_its_longest_words_in_one_order(words: set[str]) -> None:
    """The prefix a set is filed under: its words longest first, then alphabetical, as
    many as the near-duplicate bound needs (the order every set shares)."""
    ordered = sorted(sorted(words), key=len, reverse=True)
    assert _RecentWordSets.prefix(words) == ordered[: len(words) - int(_NEAR * len(words)) + 1]
