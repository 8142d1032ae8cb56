from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from ctxbudget import Item, Kind, Role, Tracker
from ctxbudget.compaction import CompactionPolicy, compact
from ctxbudget.compaction.fact_check import FactCheck
from ctxbudget.compaction.facts import extract_facts
from ctxbudget.compaction.steps import clear_results, give_back
from ctxbudget.compaction.work import Work
from ctxbudget.errors import CompactionError, StoreError
from ctxbudget.sources.messages import read_messages
from ctxbudget.sources.validation import validate_messages
from ctxbudget.sources.writers import to_anthropic, to_openai
from ctxbudget.testing import FaultyStore
from ctxbudget.tokens.counters import get_counter

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def agent_session(rounds: int = 12) -> dict[str, Any]:
    """An Anthropic-style agent session written for these tests: reads, edits, a
    failing then passing test run, a sub-agent report, searches and a todo list."""
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": "Fix the flaky retry logic in src/net/retry.py and keep "
            "REQ-NET-007 (exponential backoff, 3 attempts) satisfied.",
        },
    ]
    for n in range(rounds):
        path = f"src/net/module_{n}.py"
        body = "\n".join(f"{i:>6}→def handler_{n}_{i}(request):  # line {i}" for i in range(1, 80))
        messages += [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Reading {path} to check the retry path."},
                    {
                        "type": "tool_use",
                        "id": f"read{n}",
                        "name": "Read",
                        "input": {"file_path": path},
                    },
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"read{n}", "content": body}],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": f"test{n}",
                        "name": "Bash",
                        "input": {"command": "pytest tests/test_retry.py"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"test{n}",
                        "content": (
                            "Error: 1 failed, AssertionError in test_backoff\n"
                            if n % 3 == 0
                            else "12 passed in 0.4s\n"
                        )
                        + "collected 12 items\n" * 40,
                    }
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": f"edit{n}",
                        "name": "Edit",
                        "input": {
                            "file_path": path,
                            "old_string": "retries = 5",
                            "new_string": "retries = 3  # REQ-NET-007",
                        },
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"edit{n}",
                        "content": f"The file {path} has been updated.",
                    }
                ],
            },
        ]
        if n == 4:
            messages += [
                {
                    "role": "user",
                    "content": "Decision: keep jitter off for now. Also check "
                    "the gateway timeouts while you are at it.",
                },
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "agent1",
                            "name": "Task",
                            "input": {
                                "description": "Review timeouts",
                                "prompt": "Review timeouts",
                                "subagent_type": "reviewer",
                            },
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "agent1",
                            "content": "# Timeout review\n"
                            + "The gateway uses 30 s timeouts everywhere. " * 60
                            + "\n- gateway/timeouts.py sets 30 s\n- retry budget exceeds SLA",
                        }
                    ],
                },
            ]
    messages += [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "todo1",
                    "name": "TodoWrite",
                    "input": {
                        "todos": [
                            {"content": "Run the full integration suite", "status": "pending"},
                            {"content": "Document the backoff constants", "status": "pending"},
                        ]
                    },
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "todo1", "content": "Todos updated"}
            ],
        },
        {"role": "assistant", "content": "Retry logic fixed; next: the integration suite."},
        {"role": "user", "content": "Great, now run the integration suite."},
    ]
    return {
        "model": "claude-sonnet-4-5",
        "system": "You are a careful coding agent.",
        "messages": messages,
    }


def count(text: str) -> int:
    return max(1, len(text) // 4)


def items_of(doc: dict[str, Any]) -> list[Item]:
    items = read_messages(doc).items
    for item in items:
        item.tokens = count(item.text)
    return items


def test_reaches_a_fifth_and_keeps_every_fact() -> None:
    items = items_of(agent_session())
    total = sum(i.tokens or 0 for i in items)
    result = compact(items, count=count, target_tokens=total // 5)
    assert result.tokens_after <= total // 5
    text = result.text()
    for n in range(12):
        assert f"module_{n}.py" in text  # every file read and edited
    assert "REQ-NET-007" in text
    assert "Run the full integration suite" in text  # latest todo list, whole
    assert "now run the integration suite" in text  # the current task
    assert result.facts.passed and result.facts.retention == 1.0
    assert {a.step for a in result.actions} >= {"clear_tool_results", "summarize"}


def test_never_splits_a_tool_pair_and_stays_a_valid_message_list() -> None:
    for ratio in (2, 5, 10):
        items = items_of(agent_session())
        total = sum(i.tokens or 0 for i in items)
        result = compact(items, count=count, target_tokens=total // ratio)
        calls = {i.pair_id for i in result.items if i.kind is Kind.TOOL_CALL}
        results = {i.pair_id for i in result.items if i.role is Role.TOOL}
        assert calls == results
        assert validate_messages(to_anthropic(result.items)["messages"], "anthropic") == []
        assert validate_messages(to_openai(result.items), "openai") == []


def test_cheap_steps_first_and_last_results_kept_whole() -> None:
    items = items_of(agent_session())
    total = sum(i.tokens or 0 for i in items)
    result = compact(
        items, count=count, target_tokens=int(total * 0.9), policy=CompactionPolicy(keep_results=2)
    )
    assert [a.step for a in result.actions] == ["clear_tool_results"]
    last_results = [i for i in items if i.role is Role.TOOL][-2:]
    kept_texts = {i.text for i in result.items}
    assert all(r.text in kept_texts for r in last_results)
    stub = next(i for i in result.items if i.text.startswith("[tool result cleared: Bash"))
    assert "pytest tests/test_retry.py" in stub.text and "first line:" in stub.text


def test_excluded_tools_are_never_cleared() -> None:
    items = items_of(agent_session())
    total = sum(i.tokens or 0 for i in items)
    policy = CompactionPolicy(excluded_tools=("Bash",), keep_first=0, keep_last=0)
    result = compact(items, count=count, target_tokens=int(total * 0.7), policy=policy)
    bash = [i for i in result.items if i.role is Role.TOOL and i.tool == "Bash"]
    assert bash and all("cleared" not in i.text for i in bash)


def test_agent_reports_become_metadata() -> None:
    items = items_of(agent_session())
    total = sum(i.tokens or 0 for i in items)
    result = compact(items, count=count, target_tokens=total // 5)
    assert "agent_reports" in [a.step for a in result.actions]
    reports = [i for i in result.items if i.kind is Kind.AGENT_REPORT]
    assert all(r.text.startswith("[agent report: Timeout review]") for r in reports)
    assert any(i.kind is Kind.AGENT_REPORT and len(i.text) > 2000 for i in result.removed)
    assert "gateway/timeouts.py" in result.text()  # its path survives


def test_failed_attempt_superseded_by_success_is_dropped() -> None:
    doc = {
        "messages": [
            {"role": "user", "content": "make the build pass"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "b1",
                        "name": "Bash",
                        "input": {"command": "make build"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "b1",
                        "content": "Error: missing header foo.h\n" * 30,
                        "is_error": True,
                    }
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "b2",
                        "name": "Bash",
                        "input": {"command": "make build"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "b2", "content": "build ok " * 60}
                ],
            },
            {"role": "assistant", "content": "Build passes."},
            {"role": "user", "content": "thanks"},
        ]
    }
    items = items_of(doc)
    total = sum(i.tokens or 0 for i in items)
    # the failed result is among the last two kept whole by step 1: step 3 drops it
    policy = CompactionPolicy(keep_first=0, keep_last=0, keep_results=2)
    result = compact(items, count=count, target_tokens=total - 100, policy=policy)
    assert any(i.text.startswith("[failed attempt, superseded") for i in result.items)


def test_analyst_session_keeps_requirements_decisions_questions() -> None:
    doc = json.loads((EXAMPLES / "analyst-ep24.json").read_text())
    listing = (EXAMPLES / "README.md").read_text()
    requirements = sorted(set(re.findall(r"REQ-[A-Z]+-\d{3}", listing)))
    assert len(requirements) == 18
    items = items_of(doc)
    total = sum(i.tokens or 0 for i in items)
    result = compact(items, count=count, target_tokens=int(12000 * 0.6 * total / 14311))
    text = result.text()
    assert all(r in text for r in requirements)
    for kind in ("requirement", "decision", "question"):
        kept, found = result.facts.by_kind[kind]
        assert kept == found > 0
    assert result.facts.by_kind["decision"][1] == 12
    assert result.facts.by_kind["question"][1] == 4


def test_ledger_without_summary_checks_the_facts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Steps 1-4 reach a ratio of 1.5 on this session and lose a few facts: the ledger
    # comes in as an item of its own. Checking again after it must reuse the check of
    # the text around it (at 80k items, building it again was half of a compaction).
    monkeypatch.syspath_prepend(str(EXAMPLES.parent / "benchmarks"))
    from synth import write_session

    from ctxbudget.compaction import engine

    built: list[int] = []

    class CountedCheck(FactCheck):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(engine, "FactCheck", CountedCheck)
    write_session(tmp_path / "s.jsonl", 300)
    session = Tracker(store="memory://").load(tmp_path / "s.jsonl")
    result = session.plan_compaction(CompactionPolicy(target_ratio=1.5)).result
    assert "fact_ledger" in [a.step for a in result.actions]
    assert result.summary.startswith("## Ledger")
    assert result.facts.restored and result.facts.passed
    assert len(built) == 1
    # the same answer as checking the compacted text whole
    whole = FactCheck(extract_facts(session.items), "\n".join(i.text for i in result.items))
    assert [f.key for f in whole.report().missing] == [f.key for f in result.facts.missing]


def test_rollback_policy_refuses_to_lose_facts() -> None:
    items = items_of(agent_session())
    policy = CompactionPolicy(on_missing_facts="rollback", keep_first=0, keep_last=0)

    def careless(middle: Any, facts: Any, budget: int) -> str:
        return "We talked about some code."  # a summarizer that drops everything

    with pytest.raises(CompactionError, match="rolled back"):
        compact(items, count=count, target_tokens=50, policy=policy, summarizer=careless)
    restored = compact(items, count=count, target_tokens=50, summarizer=careless)
    assert restored.facts.passed and restored.facts.restored  # the ledger put them back


def test_bad_inputs() -> None:
    with pytest.raises(CompactionError, match="empty"):
        compact([], count=count, target_tokens=100)
    items = items_of(agent_session(2))
    total = sum(i.tokens or 0 for i in items)
    under = compact(items, count=count, target_tokens=total + 10)
    assert not under.actions and "already under the target" in under.notes[0]
    assert [i.text for i in under.items] == [i.text for i in items]
    with pytest.raises(Exception, match="ratio must be above 1"):
        CompactionPolicy(target_ratio=0.5)


# -- the facade: apply as one transaction, restore, recall ---------------------------


def stored_session(tmp_path: Path) -> tuple[Tracker, Any]:
    doc_path = tmp_path / "session.json"
    doc_path.write_text(json.dumps(agent_session()))
    tracker = Tracker(store=f"sqlite:///{tmp_path / 'store.db'}")
    session = tracker.load(doc_path)
    session.save()
    return tracker, session


def test_dry_run_plan_matches_what_apply_does(tmp_path: Path) -> None:
    _, session = stored_session(tmp_path)
    plan = session.plan_compaction(CompactionPolicy(target_ratio=5))
    done = session.compact(CompactionPolicy(target_ratio=5))
    assert (plan.used_before, plan.used_after) == (done.used_before, done.used_after)
    assert [(a.step, a.tokens_freed) for a in plan.result.actions] == [
        (a.step, a.tokens_freed) for a in done.result.actions
    ]
    assert session.used_tokens == done.used_after
    assert sum(a.tokens_freed for a in done.result.actions) == done.freed


def test_apply_archives_and_restore_is_exact(tmp_path: Path) -> None:
    tracker, session = stored_session(tmp_path)
    before_hash, before_used = session.context_hash(), session.used_tokens
    done = session.compact(CompactionPolicy(target_ratio=5))
    assert done.version_to == 2 and session.version == 2
    reopened = Tracker(store=tracker.store.url).open(session.id)
    assert reopened.context_hash() == session.context_hash() != before_hash
    session.restore()
    assert session.context_hash() == before_hash and session.used_tokens == before_used
    again = Tracker(store=tracker.store.url).open(session.id)
    assert again.context_hash() == before_hash and again.version == 1
    types = [e.type for e in again.events()]
    assert types.count("compacted") == 1 and types[-1] == "restored"


def test_a_version_restored_forward_again_shows_its_own_figure(tmp_path: Path) -> None:
    # back to the whole context, then forward to the compacted one: every surface that
    # opens the session shows the compacted figure, not the whole one's anchor
    from cc_session import SESSION_ID, shop_session

    path = shop_session(rounds=12).write(tmp_path / f"{SESSION_ID}.jsonl")
    tracker = Tracker(store=f"sqlite:///{tmp_path / 'store.db'}")
    session = tracker.load(path)  # with the provider's usages: an anchor
    session.save()
    whole = session.used_tokens
    session.compact(CompactionPolicy(target_ratio=5))
    compacted = session.used_tokens
    assert compacted < whole
    session.restore()
    assert Tracker(store=tracker.store.url).open(session.id).used_tokens == whole
    session.restore(2)
    assert session.used_tokens == compacted
    reopened = Tracker(store=tracker.store.url).open(session.id)
    assert reopened.version == 2 and reopened.used_tokens == compacted


def test_recall_brings_back_archived_text_within_budget(tmp_path: Path) -> None:
    _, session = stored_session(tmp_path)
    session.compact(CompactionPolicy(target_ratio=5))
    hits = session.recall("gateway timeouts SLA retry budget", budget=500)
    assert hits and sum(i.tokens or 0 for i in hits) <= 500
    assert any("gateway" in i.text.lower() for i in hits)
    assert session.recall("zebra quantum marmalade", budget=500) == []


@pytest.mark.parametrize(
    "method", ["append_items", "set_context_version", "append_event", "update_session"]
)
def test_a_failure_at_any_step_of_apply_leaves_the_session_unchanged(
    tmp_path: Path, method: str
) -> None:
    tracker, session = stored_session(tmp_path)
    url = tracker.store.url
    before = (session.context_hash(), session.version, session.used_tokens, len(session.events()))
    faulty = Tracker(store=FaultyStore(Tracker(store=url).store, fail_on=method))
    victim = faulty.open(session.id)
    with pytest.raises(StoreError, match="injected"):
        victim.compact(CompactionPolicy(target_ratio=5))
    assert (victim.context_hash(), victim.version, victim.used_tokens) == before[:3]
    fresh = Tracker(store=url).open(session.id)
    assert (fresh.context_hash(), fresh.version, fresh.used_tokens, len(fresh.events())) == before


def test_compact_all_pinned_and_empty(tmp_path: Path) -> None:
    tracker = Tracker(store=f"sqlite:///{tmp_path / 's.db'}")
    empty = tracker.session(model="gpt-4o")
    with pytest.raises(CompactionError, match="empty"):
        empty.compact()
    pinned = tracker.session(model="gpt-4o", window=1000)
    pinned.extend([Item(role=Role.USER, kind=Kind.USER_TEXT, text="keep me " * 100, pinned=True)])
    with pytest.raises(CompactionError, match="pinned"):
        pinned.compact(CompactionPolicy(target_ratio=5))
    assert len(tracker.open(pinned.id).items) == 1


def test_auto_compaction_triggers_at_critical_and_never_loops(tmp_path: Path) -> None:
    _, session = stored_session(tmp_path)
    used = session.used_tokens
    session.set_policy(session.policy.replace(window=int(used / 0.80)))  # 80%: warning
    assert session.auto_compact() is None  # below the critical threshold
    session.set_policy(session.policy.replace(window=int(used / 0.92)))  # 92%: critical
    done = session.auto_compact()
    assert done is not None and done.freed > 0 and session.status().percent < 70  # aimed at 60
    assert [e.type for e in session.events(types=["compacted"])] == ["compacted"]


def test_auto_compaction_that_would_free_nothing_alerts_once(tmp_path: Path) -> None:
    tracker = Tracker(store=f"sqlite:///{tmp_path / 's.db'}")
    session = tracker.session(model="gpt-4o")
    session.add("Rules of the house. " * 800, role="system")  # protected, and most of it
    session.add("hello")
    session.add("hi, how can I help?", role="assistant")
    session.set_policy(session.policy.replace(window=int(session.used_tokens / 0.93)))
    assert session.auto_compact() is None
    assert session.last_alert and "not applied" in session.last_alert
    assert session.auto_compact() is None  # and no new attempt at the same size
    assert len(session.events(types=["alert"])) == 1
    assert session.events(types=["compacted"]) == []


def test_auto_compaction_leaves_room_for_an_llm_summary(tmp_path: Path) -> None:
    _, session = stored_session(tmp_path)
    used = session.used_tokens
    # 85%: under the critical threshold, but an LLM summary of the target's size
    # would not fit the window any more: compact now.
    session.set_policy(session.policy.replace(window=int(used / 0.85)))
    policy = CompactionPolicy(target_percent=30)

    def summarizer(middle: Any, facts: Any, budget: int) -> str:
        return "Summary: " + "; ".join(f.key for f in facts)[: budget * 3]

    assert session.auto_compact(policy) is None
    assert session.auto_compact(policy, summarizer) is not None


def test_a_plan_is_refused_when_the_session_changed(tmp_path: Path) -> None:
    tracker, session = stored_session(tmp_path)
    plan = session.plan_compaction(CompactionPolicy(target_ratio=5))
    other = Tracker(store=tracker.store.url).open(session.id)
    other.add("LATE: a message from the running agent")
    with pytest.raises(CompactionError, match="changed since"):
        session.apply_compaction(plan)
    session.add("and one here")
    with pytest.raises(CompactionError, match="changed since"):
        session.apply_compaction(plan)


def test_applying_a_plan_does_not_load_the_context_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the row's revision says whether the stored context changed since it was read
    tracker, session = stored_session(tmp_path)
    plan = session.plan_compaction(CompactionPolicy(target_ratio=5))
    loads: list[int | None] = []
    load_items = tracker.store.load_items

    def counted(session_id: str, version: int | None = None) -> list[Item]:
        loads.append(version)
        return load_items(session_id, version=version)

    monkeypatch.setattr(tracker.store, "load_items", counted)
    before = session.version
    session.apply_compaction(plan)
    assert session.version == before + 1 and loads == []


def test_a_plan_is_refused_when_an_item_was_edited_since(tmp_path: Path) -> None:
    """The plan keeps what its context said, not the items themselves: an item edited
    in place after the plan (same object, other text) still makes it stale."""
    examples = Path(__file__).resolve().parent.parent / "examples"
    tracker = Tracker(store=f"sqlite:///{tmp_path / 's.db'}")
    session = tracker.load(examples / "analyst-ep24.json", window=12_000)  # not stored yet
    plan = session.plan_compaction(CompactionPolicy(target_ratio=5))
    session.items[-1].text = "EDITED after the plan"
    with pytest.raises(CompactionError, match="changed since"):
        session.apply_compaction(plan)


def test_an_impossible_target_keeps_the_protected_context(tmp_path: Path) -> None:
    _, session = stored_session(tmp_path)
    last_request = "Great, now run the integration suite."
    done = session.compact(CompactionPolicy(target_tokens=10))
    assert any(i.text == last_request for i in session.items)
    assert any("below what must stay" in n for n in done.result.notes)
    assert done.used_after > 10


def test_auto_compaction_quiet_mark_survives_a_new_process(tmp_path: Path) -> None:
    tracker = Tracker(store=f"sqlite:///{tmp_path / 's.db'}")
    session = tracker.session(model="gpt-4o")
    session.add("Rules of the house. " * 800, role="system")
    session.add("hello")
    session.set_policy(session.policy.replace(window=int(session.used_tokens / 0.93)))
    assert session.auto_compact() is None and session.last_alert
    again = Tracker(store=tracker.store.url).open(session.id)
    assert again.auto_compact() is None
    assert len(again.events(types=["alert"])) == 1  # no second attempt, no second alert


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_failed_write_inside_the_transaction_rolls_back(tmp_path: Path, when: str) -> None:
    tracker, session = stored_session(tmp_path)
    url = tracker.store.url
    before = (session.context_hash(), session.version, len(session.events()))
    # update_session's first call is the plain save before the transaction: fail the
    # second, inside it
    faulty = Tracker(
        store=FaultyStore(Tracker(store=url).store, fail_on="update_session", after=1, when=when)
    )  # type: ignore[arg-type]
    victim = faulty.open(session.id)
    with pytest.raises(StoreError, match="injected"):
        victim.compact(CompactionPolicy(target_ratio=5))
    fresh = Tracker(store=url).open(session.id)
    assert (fresh.context_hash(), fresh.version, len(fresh.events())) == before


def test_recall_brings_the_answer_to_a_question_that_follows_the_hit(tmp_path: Path) -> None:
    """Ann: "I finished my first screenplay!" Bob: "What's it about?" Ann: "drama and
    romance": the reply to the hit asks, so the answer after it comes along."""
    messages = []
    for n in range(30):
        messages.append({"role": "user", "content": f"Ann: Day {n}: I walked to the lake."})
        messages.append({"role": "assistant", "content": f"Bob: Nice walk on day {n}!"})
    messages[20:20] = [
        {"role": "user", "content": "Ann: I finally finished my first full screenplay!"},
        {"role": "assistant", "content": "Bob: Congratulations! What's it about? Glad it's done!"},
        {"role": "user", "content": "Ann: It's a mix of drama and romance."},
        {"role": "assistant", "content": "Bob: Sounds great."},
    ]
    loads: list[int | None] = []
    recalled = _recalled(tmp_path, messages, 4, "What genre is the first screenplay?", 500, loads)
    assert "drama and romance" in recalled
    assert loads == []  # only the rows after the hit are read, not the archived version


def test_recall_finds_what_was_said_in_a_month_not_the_months_headers(tmp_path: Path) -> None:
    """ "What event did John's family attend in June 2023?": the month and year are in
    the date header of each June session, not in the message that answers."""
    messages = []
    for n in range(30):
        month = "June" if n >= 24 else "May"
        header = f"[Session {n} — 10:00 am on {n % 28 + 1} {month}, 2023]\n"
        messages.append({"role": "user", "content": f"{header}John: Hi Maria, day {n} here."})
        messages.append({"role": "assistant", "content": f"Maria: Hi John! Quiet day {n}."})
        messages.append({"role": "user", "content": f"John: Work was long on day {n}."})
        messages.append({"role": "assistant", "content": f"Maria: Rest well after day {n}."})
    messages[-2]["content"] = (  # long, as answers are: its length weighs on its score
        "John: Thanks, Maria! It is such a blessing to have people who always support us "
        "and remind us that we are not alone, whatever happens at work or at home. Last "
        "week we had a blast at a live music event downtown. Seeing the kids dancing was "
        "awesome."
    )
    query = "What event did John's family attend in June 2023?"
    assert "live music event" in _recalled(tmp_path, messages, 1, query, 60)


def _recalled(
    tmp_path: Path,
    messages: list[dict[str, str]],
    kept: int,
    query: str,
    budget: int,
    loads: list[int | None] | None = None,
) -> str:
    """The chat stored, all but its last ``kept`` messages archived, what recall brings;
    ``loads`` receives the versions the recall loaded whole."""
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(messages))
    session = Tracker(store=f"sqlite:///{tmp_path / 'store.db'}").load(path)
    session.save()
    session.replace_context(session.items[-kept:], reason="test: archive all but the end")
    if loads is not None:
        load_items = session.store.load_items

        def counted(session_id: str, version: int | None = None) -> list[Item]:
            loads.append(version)
            return load_items(session_id, version=version)

        session.store.load_items = counted
    return "\n".join(item.text for item in session.recall(query, budget=budget))


def test_a_chat_compaction_reaches_every_target_its_facts_allow() -> None:
    """When the facts put back after the summary overshoot the target, the summary runs
    again with less room: less than the summary that came out (which may have been
    under its own aim), or it comes out the same and the target is missed by a few
    tokens."""
    rng = random.Random(3)
    names = ["Pepper", "Denver", "Lisbon", "Priya", "Boulder", "Kyoto", "Oslo", "Quito"]
    did = ["adopted a beagle called", "ran a charity race in", "started a pottery class with",
           "finished a draft about", "won a chess match in", "visited my cousin in",
           "bought a violin from", "planted tomatoes for"]  # fmt: skip
    items = []
    for session in range(40):
        for turn in range(8):
            speaker = "Caroline" if turn % 2 == 0 else "Melanie"
            text = (
                f"{speaker}: I {rng.choice(did)} {rng.choice(names)} on day "
                f"{rng.randint(1, 300)}. That was {rng.choice(['fun', 'hard', 'calm', 'wild'])}."
            )
            if turn == 0:
                text = f"[Session {session + 1} — 1:56 pm on {session % 28 + 1} May, 2023]\n{text}"
            role = Role.USER if turn % 2 == 0 else Role.ASSISTANT
            kind = Kind.USER_TEXT if role is Role.USER else Kind.ASSISTANT_TEXT
            items.append(Item(role=role, kind=kind, text=text, message_index=len(items)))
    estimate = get_counter("estimate").count
    total = sum(estimate(item.text) for item in items)
    missed = []
    for tenths in range(50, 81):
        target = total * 10 // tenths
        result = compact(items, count=estimate, target_tokens=target)
        if result.tokens_after > target:
            missed.append((target, result.tokens_after))
    assert not missed


def test_a_summary_no_smaller_than_what_it_replaces_is_not_made() -> None:
    """A middle too short to summarize (one short exchange before the latest request):
    its summary, headings and all, would be larger. The compaction leaves it as it is
    and says nothing was freed; it never grows the context."""
    items = items_of(
        {
            "messages": [
                {"role": "user", "content": "Please look at the flaky retry test."},
                {"role": "assistant", "content": "Looked: it sleeps 2 s, fixed."},
                {"role": "user", "content": "Thanks, now the docs."},
            ]
        }
    )
    total = sum(i.tokens or 0 for i in items)
    result = compact(items, count=count, target_tokens=5)
    assert result.tokens_after <= total
    assert "summarize" not in [a.step for a in result.actions]


@pytest.mark.parametrize("ratio", [2, 3, 5, 10])
def test_a_ratio_is_reached_not_overshot(ratio: int) -> None:
    # The summary of the whole middle says what it has in far less than its room: only
    # the oldest part is summarized, and shortened results that still fit come back.
    items = items_of(agent_session(rounds=20))
    total = sum(i.tokens or 0 for i in items)
    target = total // ratio
    result = compact(items, count=count, target_tokens=target)
    assert 0.95 * target <= result.tokens_after <= target
    assert result.facts.passed and result.facts.retention == 1.0
    # each action says what it freed: together, all that was freed
    assert sum(a.tokens_freed for a in result.actions) == total - result.tokens_after


def test_the_newest_results_a_step_shortened_come_back_when_a_later_stub_freed_enough() -> None:
    small = [f"check {n}: " + " ".join(f"case_{n}_{k} passed" for k in range(40)) for n in range(6)]
    huge = "\n".join(f"{i:>6}→row {i}: value {i * 7}" for i in range(400))
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Run the checks, then dump the table."}
    ]
    for n, text in enumerate([*small, huge, "done: the table is dumped"]):
        messages += [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": f"t{n}",
                        "name": "Bash",
                        "input": {"command": f"step {n}"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"t{n}", "content": text}],
            },
        ]
    messages.append({"role": "assistant", "content": "All checks pass and the table is dumped."})
    items = items_of({"messages": messages})
    total = sum(i.tokens or 0 for i in items)
    freed_by_small = sum(count(t) for t in small)  # at most: their stubs cost a little
    target = total - freed_by_small  # the small results alone cannot free it: the large one goes
    result = compact(
        items, count=count, target_tokens=target, policy=CompactionPolicy(keep_results=1)
    )
    kept = {i.text for i in result.items}
    assert huge not in kept
    assert all(text in kept for text in small)  # cleared on the way, then put back
    [action] = result.actions
    assert action.step == "clear_tool_results" and len(action.items) == 1
    assert result.tokens_after <= target


def test_a_paid_summarizer_is_asked_once_for_the_whole_middle_and_stays_under_target() -> None:
    # A part sized by the extractive summary would leave no room for the facts the ledger
    # puts back after a terse paid summary, and a paid summary gets no second try.
    items = items_of(agent_session(rounds=20))
    total = sum(i.tokens or 0 for i in items)
    target = total // 8
    asked: list[int] = []

    def summarizer(middle: Any, facts: Any, budget: int) -> str:
        asked.append(len(middle))
        return "Summary: the agent read the files and ran the tests."

    result = compact(items, count=count, target_tokens=target, summarizer=summarizer)
    [summarized] = asked
    [step] = [a for a in result.actions if a.step == "summarize"]
    assert len(step.items) == summarized and "oldest part" not in step.description
    assert result.tokens_after <= target
    assert result.facts.passed  # the ledger put back what the summary left out


def test_a_plan_given_back_in_one_pass_is_whole_in_its_snapshot() -> None:
    # A pass aiming lower goes on from the snapshot taken before step 5: what a pass
    # before it gave back must still be counted there, stub and action alike.
    items = items_of(agent_session())
    start = Work(items, count)
    work = start.copy()
    clear_results(
        work, set(), CompactionPolicy(keep_results=1), 0, {Kind.TOOL_RESULT}, "clear", "clear"
    )
    [action] = work.actions
    stubbed = list(action.items)
    snapshot = work.snapshot()
    give_back(work, work.items, start, start.total)  # room for every stub to come back
    assert work.actions == [] and work.total == start.total
    [kept] = snapshot.actions
    assert kept.items == stubbed
    assert kept.tokens_freed == start.total - snapshot.total


def test_facts_of_items_kept_whole_are_found_without_a_search_with_the_same_answer() -> None:
    items = items_of(agent_session(rounds=20))
    facts = extract_facts(items)
    kept = [i for i in range(len(items)) if i % 3]  # a third of the items left out
    fixed = "\n".join(items[i].text for i in kept)
    searched = FactCheck(facts, fixed).report()
    trusted = FactCheck(facts, fixed, set(kept)).report()
    assert searched.missing  # some facts were only in the items left out
    assert [id(f) for f in trusted.missing] == [id(f) for f in searched.missing]
    assert trusted.by_kind == searched.by_kind


_WORDS = [
    *("queue", "worker", "lease", "shard", "ledger"),
    *("cursor", "token", "backoff", "jitter", "quota"),
]


def varied_session(seed: int) -> dict[str, Any]:
    """A tool-using agent session drawn from ``seed``: reads of many sizes, test runs,
    searches, reports, edits, repeated results, failures."""
    rng = random.Random(seed)
    say = lambda n: " ".join(rng.choice(_WORDS) for _ in range(n))  # noqa: E731
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": f"Make the {say(2)} path idempotent (REQ-Q-{seed})."}
    ]
    last = ""
    for n in range(rng.randint(4, 36)):
        tool = rng.choice(["Read", "Bash", "Grep", "Task", "Edit"])
        if tool == "Read":
            args = {"file_path": f"src/{rng.choice(_WORDS)}_{n}.py"}
            out = "\n".join(
                f"{i:>6}→{say(rng.randint(2, 10))}" for i in range(rng.choice([8, 60, 250]))
            )
        elif tool == "Bash":
            args = {"command": f"pytest -q -k {rng.choice(_WORDS)}"}
            out = (
                rng.choice(["1 failed, 9 passed", "10 passed"]) + "\n" + "." * rng.randint(10, 900)
            )
        elif tool == "Grep":
            args = {"pattern": rng.choice(_WORDS)}
            out = "\n".join(f"src/m{i}.py:{i}: {say(4)}" for i in range(rng.randint(1, 60)))
        elif tool == "Task":
            args = {"description": "Review", "prompt": f"Review the {say(2)} change"}
            out = "# Review\n" + f"The {say(3)} holds. " * rng.randint(4, 60)
        else:
            args = {
                "file_path": f"src/e{n}.py",
                "old_string": say(rng.randint(1, 80)),
                "new_string": say(rng.randint(1, 80)),
            }
            out = "The file has been updated."
        if last and rng.random() < 0.15:
            out = last  # the same output again
        last = out
        blocks: list[dict[str, Any]] = []
        if rng.random() < 0.5:
            blocks.append({"type": "text", "text": f"Checking the {say(2)}."})
        blocks.append({"type": "tool_use", "id": f"c{n}", "name": tool, "input": args})
        messages.append({"role": "assistant", "content": blocks})
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"c{n}", "content": out}],
            }
        )
    messages.append({"role": "assistant", "content": f"Done: the {say(2)} path is idempotent."})
    return {
        "model": "claude-sonnet-4-5",
        "system": "You are a careful agent.",
        "messages": messages,
    }


def test_a_plan_meets_every_target_it_can_reach(tmp_path: Path) -> None:
    # Steps that fill up to the target land on it exactly: rounding to session units
    # must not leave such a plan a token over (and saying "target not reached").
    tracker = Tracker(store="memory://")
    for seed in range(60):
        path = tmp_path / f"s{seed}.json"
        path.write_text(json.dumps(varied_session(seed)), encoding="utf-8")
        session = tracker.load(path)
        for ratio in (2, 3, 5):
            plan = session.plan_compaction(CompactionPolicy(target_ratio=ratio))
            if plan.used_after > plan.target:
                assert any("below what must stay" in n for n in plan.result.notes), (
                    seed,
                    ratio,
                    plan.used_after,
                    plan.target,
                    plan.result.notes,
                )


def test_a_stub_of_a_stub_is_counted_once_by_each_step() -> None:
    # Step 1 clears the results, step 3 finds the stubs alike and stubs them again; a
    # pasted log twice frees more than needed. What is given back afterwards must leave
    # each step's figures as they were: together, all that was freed.
    paste = "Here is the log: " + " ".join(f"entry{k} value{k * 3}" for k in range(700))
    failure = (
        "FAILED tests/test_retry.py::test_backoff_exponential_three_attempts - AssertionError: "
        "expected 3 attempts, got 5 retries in total\n" + "traceback frame line\n" * 60
    )
    messages: list[dict[str, Any]] = []
    for _ in range(2):
        messages += [{"role": "user", "content": paste}, {"role": "assistant", "content": "ok"}]
    for n in range(6):
        command = {"command": "pytest tests/test_retry.py -x -q --maxfail=1"}
        call = {"type": "tool_use", "id": f"t{n}", "name": "Bash", "input": command}
        messages += [
            {"role": "assistant", "content": [call]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"t{n}", "content": failure}],
            },
        ]
    messages += [{"role": "assistant", "content": "done"}, {"role": "user", "content": "thanks"}]
    items = items_of({"messages": messages})
    total = sum(i.tokens or 0 for i in items)
    policy = CompactionPolicy(keep_results=0, keep_last=1, keep_first=0)
    gaps = []
    for target in range(total - 6000, total - 1950, 50):
        result = compact(items, count=count, target_tokens=target, policy=policy)
        assert result.tokens_after <= target
        assert sum(a.tokens_freed for a in result.actions) == total - result.tokens_after
        assert all(a.tokens_after >= 0 for a in result.actions)
        gaps.append(target - result.tokens_after)
    # the twice-shortened results come back whole too: what is left under the target is
    # less than half a pasted log (before, up to most of one)
    assert max(gaps) < count(paste) // 2


@pytest.mark.parametrize("ratio", [8, 15, 30])
def test_a_paid_summary_is_made_once_while_the_protection_is_searched(ratio: int) -> None:
    # the kept exchanges shrink to reach a low target: the passes that find how far
    # are made with the extractive summary, free; the one chosen is paid for once
    items = items_of(agent_session(rounds=6))
    total = sum(i.tokens or 0 for i in items)
    asked: list[int] = []

    def summarizer(middle: Any, facts: Any, budget: int) -> str:
        asked.append(budget)
        return "Summary: the agent read the files and ran the tests."

    result = compact(items, count=count, target_tokens=total // ratio, summarizer=summarizer)
    assert any(
        n.startswith("to reach the target, kept the last") for n in result.notes
    )  # it searched
    assert len(asked) == 1
    assert result.tokens_after <= total // ratio


def test_a_restore_brings_back_a_versions_figures_not_the_sessions_bookkeeping(
    tmp_path: Path,
) -> None:
    # what happened since (a phase started) stays; the figures are the version's own
    from cc_session import SESSION_ID, shop_session

    path = shop_session(rounds=12).write(tmp_path / f"{SESSION_ID}.jsonl")
    tracker = Tracker(store=f"sqlite:///{tmp_path / 'store.db'}")
    session = tracker.load(path)
    session.save()
    session.compact(CompactionPolicy(target_ratio=5))
    compacted = session.used_tokens
    session.restore()
    session.start_phase("implement")
    session.restore(2)
    reopened = Tracker(store=tracker.store.url).open(session.id)
    assert reopened.used_tokens == compacted == session.used_tokens
    assert reopened.budget.phase == "implement"


def test_a_restore_refuses_to_drop_what_was_added_to_a_restored_version(
    tmp_path: Path,
) -> None:
    _, session = stored_session(tmp_path)
    session.compact(CompactionPolicy(target_ratio=5))
    session.restore()  # back to version 1
    session.add(Item(role=Role.USER, kind=Kind.USER_TEXT, text="IMPORTANT: ship on Friday."))
    with pytest.raises(CompactionError, match="items were added"):
        session.restore(2)
    assert any(i.text == "IMPORTANT: ship on Friday." for i in session.items)


def test_a_restore_to_the_current_version_is_refused_and_logs_nothing(tmp_path: Path) -> None:
    _, session = stored_session(tmp_path)
    session.compact(CompactionPolicy(target_ratio=5))
    events = len(session.events())
    with pytest.raises(CompactionError, match="at context version 2 already"):
        session.restore(2)
    assert len(session.events()) == events and session.version == 2


def test_compacting_again_keeps_what_the_first_summary_kept(tmp_path: Path) -> None:
    """The requests and files a summary kept are in no other item once their messages
    are archived: a second compaction keeps them, or reports them in the archive; it
    never drops them unsaid (it kept 6 of the 25 requests before, saying 6/6)."""
    from ctxbudget.compaction.fact_check import check_facts
    from ctxbudget.policy import Policy

    tracker = Tracker(store=f"sqlite:///{tmp_path / 'store.db'}")
    policy = Policy.from_toml(EXAMPLES / "analyst.toml")
    session = tracker.load(EXAMPLES / "analyst-ep24.json", policy=policy)
    session.save()
    first = session.compact(CompactionPolicy())
    assert first.result.facts is not None
    held = [f for f in extract_facts(session.items) if f.kind in ("request", "file")]
    assert sum(f.kind == "request" for f in held) >= 20  # the summary's and the kept ones
    second = session.compact(CompactionPolicy(target_percent=45))
    report = second.result.facts
    assert report is not None and second.applied_at is not None
    text = "\n\n".join(i.text for i in session.items)
    lost = [f for f in check_facts(held, text).missing if f not in report.archived]
    assert lost == []
    assert report.by_kind["request"][1] >= sum(f.kind == "request" for f in held)
    assert "\n- - " not in text  # a fact's own list marker is not written twice
