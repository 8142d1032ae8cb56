"""Facts that survive Claude Code's /compact: the ledger before, the summary after, and
exactly what the summary lost put back (compaction.reinject and the hooks around it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxbudget.claude_code.hooks import HookOptions, run_hook
from ctxbudget.compaction.fact_check import check_facts
from ctxbudget.compaction.facts import extract_facts
from ctxbudget.compaction.reinject import (
    HOOK_OUTPUT_CHARS,
    RECALL_POINTER,
    carried_forward,
    in_context,
    ledger_from_data,
    ledger_to_data,
    lost_facts,
    reinjection,
)
from ctxbudget.compaction.types import Fact, FactKind
from ctxbudget.model import Item, Kind, Role
from ctxbudget.tracker import Tracker

SID = "7c1e0a52-1111-4222-8333-944455556666"
ROOT = "/home/dev/shop"


def call(tool: str, data: dict[str, Any]) -> Item:
    block = {"type": "tool_use", "id": f"toolu_{tool}", "name": tool, "input": data}
    return Item(
        kind=Kind.TOOL_CALL,
        role=Role.ASSISTANT,
        text=f"{tool} {json.dumps(data)}",
        tool=tool,
        raw={"block": block},
    )


def context() -> list[Item]:
    todos = [
        {"content": "Add refund endpoint for partial refunds", "status": "in_progress"},
        {"content": "Write migration for refund ledger table", "status": "pending"},
    ]
    return [
        Item(
            kind=Kind.USER_TEXT,
            role=Role.USER,
            text="Implement REQ-PAY-042 partial refunds in the payments service. "
            "Never push to main; open a pull request instead.",
        ),
        call("Read", {"file_path": f"{ROOT}/payments/service.py"}),
        call("Edit", {"file_path": f"{ROOT}/payments/refunds.py", "old_string": "a"}),
        call("TodoWrite", {"todos": todos}),
        Item(
            kind=Kind.ASSISTANT_TEXT, role=Role.ASSISTANT, text="Decision: store refunds in cents."
        ),
    ]


LOSSY_SUMMARY = (
    "The user asked to implement partial refunds in the payments service. "
    "Edited refunds.py. Remaining: add refund endpoint for partial refunds."
)


def test_the_ledger_has_a_standing_instruction_kind() -> None:
    facts = extract_facts(context())
    instructions = [f.key for f in facts if f.kind == FactKind.INSTRUCTION]
    assert instructions == ["Never push to main; open a pull request instead"]
    # an ordinary "always" in a description is no rule
    plain = [Item(kind=Kind.USER_TEXT, role=Role.USER, text="The build always fails on CI.")]
    assert not [f for f in extract_facts(plain) if f.kind == FactKind.INSTRUCTION]


def test_the_injection_holds_exactly_what_the_summary_lost() -> None:
    ledger = extract_facts(context())
    result = reinjection(ledger, LOSSY_SUMMARY)
    lost = {(str(f.kind), f.key) for f in result.lost}
    kept_by_summary = {
        (str(f.kind), f.key) for f in ledger if f not in check_facts(ledger, LOSSY_SUMMARY).missing
    }
    assert ("instruction", "Never push to main; open a pull request instead") in lost
    assert ("requirement", "REQ-PAY-042") in lost
    assert ("file", f"{ROOT}/payments/service.py") in lost
    assert ("todo", "Write migration for refund ledger table") in lost
    assert ("decision", "store refunds in cents") in lost
    # what the summary kept is not repeated
    assert ("file", f"{ROOT}/payments/refunds.py") in kept_by_summary
    assert ("todo", "Add refund endpoint for partial refunds") in kept_by_summary
    assert "refunds.py" not in result.text.replace("service.py", "")
    assert "Add refund endpoint" not in result.text
    # everything lost is now present, the most important kind first, with the pointer
    assert check_facts(list(result.lost), LOSSY_SUMMARY + "\n" + result.text).missing == []
    assert result.injected == result.lost and result.left_out == 0
    body = result.text.splitlines()
    assert body[1].startswith("- instruction: Never push to main")
    assert body[-1] == RECALL_POINTER
    assert result.lost[0].kind == FactKind.INSTRUCTION


def test_nothing_lost_nothing_injected() -> None:
    ledger = extract_facts(context())
    everything = "\n".join(f"{f.key} {f.text}" for f in ledger)
    result = reinjection(ledger, everything)
    assert result.text == "" and result.tokens == 0 and result.lost == ()


def many_facts(n: int) -> list[Fact]:
    return [Fact(FactKind.FILE, f"{ROOT}/module_{i}/handler_{i}.py", "", i) for i in range(n)] + [
        Fact(FactKind.REQUIREMENT, f"REQ-{i:04d}", "", i) for i in range(n)
    ]


@pytest.mark.parametrize("budget", [120, 300, 2_000, 50_000])
def test_the_budget_and_the_hook_cap_hold(budget: int) -> None:
    ledger = many_facts(800)
    result = reinjection(ledger, "nothing here", budget_tokens=budget, count=lambda t: len(t) // 3)
    assert result.tokens == len(result.text) // 3 <= budget
    assert len(result.text) <= HOOK_OUTPUT_CHARS
    assert 0 < len(result.injected) < len(result.lost)  # most important first, the rest left out
    assert result.injected[0].kind == FactKind.REQUIREMENT
    assert result.text.endswith(RECALL_POINTER)
    assert reinjection(ledger, "", budget_tokens=0).text == ""


def test_lost_facts_come_most_important_first_newest_first() -> None:
    ledger = [
        Fact(FactKind.ERROR, "TypeError: bad operand", "", 1),
        Fact(FactKind.FILE, "a/old.py", "", 1),
        Fact(FactKind.FILE, "a/new.py", "", 5),
        Fact(FactKind.INSTRUCTION, "Never force push", "", 0),
        Fact(FactKind.DATE, "2025-01-02", "", 0),  # recall's, not put back
    ]
    assert [f.key for f in lost_facts(ledger, "")] == [
        "Never force push",
        "a/new.py",
        "a/old.py",
        "TypeError: bad operand",
    ]


def test_the_ledger_round_trips_as_data_and_skips_bad_entries() -> None:
    ledger = extract_facts(context())
    data = json.loads(json.dumps(ledger_to_data(ledger)))
    data += [None, {"kind": "nope", "key": "x"}, {"kind": "file"}, {"kind": "file", "key": " "}]
    back = ledger_from_data(data)
    assert [(f.kind, f.key) for f in back] == [
        (f.kind, f.key)
        for f in ledger
        if f.kind not in (FactKind.DATE, FactKind.NUMBER, FactKind.ENTITY)
    ]
    assert ledger_from_data("not a list") == []


def test_what_the_model_had_is_carried_and_an_older_todo_list_gives_way() -> None:
    old = [
        Fact(FactKind.INSTRUCTION, "never push to main", "Never push to main.", 3),
        Fact(FactKind.TODO, "write the migration", "- [ ] write the migration", 5),
        Fact(FactKind.FILE, "pay/api.py", "Read pay/api.py", 4),
        Fact(FactKind.REQUEST, "implement the refunds", "implement the refunds", 2),
    ]
    lost, put_back = old[1:], old[1:3]  # the summary kept the instruction only
    had = in_context(old, lost, put_back)
    assert [f.key for f in had] == ["never push to main", "write the migration", "pay/api.py"]
    new = [Fact(FactKind.TODO, "ship the release", "- [ ] ship the release", 0)]
    ledger = carried_forward(new, had)
    assert [(f.key, f.item) for f in ledger] == [
        ("ship the release", 0),
        ("never push to main", -1),  # older than anything the new context says
        ("pay/api.py", -1),
    ]
    assert carried_forward([], had)[1].kind == FactKind.TODO  # no newer list: kept


# -- the hook round trip -------------------------------------------------------------------


def record(uuid: str, parent: str | None, rtype: str, content: Any, **extra: Any) -> str:
    return json.dumps(
        {
            "parentUuid": parent,
            "isSidechain": False,
            "type": rtype,
            "uuid": uuid,
            "sessionId": SID,
            "cwd": ROOT,
            "timestamp": "2025-11-02T10:00:00.000Z",
            "message": {"role": rtype, "content": content},
            **extra,
        }
    )


def tool_use(name: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "tool_use", "id": f"toolu_{name}", "name": name, "input": data}]


def transcript(tmp_path: Path) -> Path:
    path = tmp_path / f"{SID}.jsonl"
    todos = [{"content": "Write migration for refund ledger table", "status": "pending"}]
    lines = [
        record("u1", None, "user", "Implement REQ-PAY-042. Never push to main."),
        record("a1", "u1", "assistant", tool_use("Read", {"file_path": f"{ROOT}/pay/api.py"})),
        record("a2", "a1", "assistant", tool_use("TodoWrite", {"todos": todos})),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def compacted(path: Path, summary: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        boundary = {"type": "system", "subtype": "compact_boundary", "uuid": "b1", "sessionId": SID}
        out.write(json.dumps(boundary) + "\n")
        text = [{"type": "text", "text": summary}]
        out.write(record("s1", "b1", "user", text, isCompactSummary=True) + "\n")


def run(event: str, payload: dict[str, Any], tracker: Tracker, **options: Any) -> Any:
    return run_hook(event, json.dumps(payload), tracker, HookOptions(**options))


def test_precompact_stores_the_ledger_and_session_start_puts_back_the_lost(
    tmp_path: Path,
) -> None:
    path = transcript(tmp_path)
    base = {"session_id": SID, "transcript_path": str(path), "cwd": ROOT}
    with Tracker() as tracker:
        before = run("PreCompact", {**base, "trigger": "manual"}, tracker)
        assert before.exit_code == 0 and before.stdout == ""
        stored = tracker.store.events(SID, types=["fact_ledger"])
        kinds = {entry["kind"] for entry in stored[-1].data["facts"]}
        assert {"instruction", "requirement", "file", "todo", "request"} <= kinds

        compacted(path, "The user asked to implement REQ-PAY-042 (payments).")
        after = run("SessionStart", {**base, "source": "compact"}, tracker)
        assert after.exit_code == 0
        assert len(after.stdout) <= HOOK_OUTPUT_CHARS
        out = json.loads(after.stdout)["hookSpecificOutput"]
        assert out["hookEventName"] == "SessionStart"
        context_text = out["additionalContext"]
        assert "Never push to main" in context_text
        assert "api.py" in context_text and "Write migration" in context_text
        assert "Requirements:" not in context_text  # the summary kept REQ-PAY-042
        assert context_text.endswith(RECALL_POINTER)
        [done] = tracker.store.events(SID, types=["facts_reinjected"])
        assert done.data["summary_found"] is True and done.data["left_out"] == 0

        # a second SessionStart(compact) without a new ledger puts nothing back twice
        again = run("SessionStart", {**base, "source": "compact"}, tracker)
        assert again.stdout == ""
        # a fresh start never injects
        assert run("SessionStart", {**base, "source": "startup"}, tracker).stdout == ""


def test_facts_survive_a_second_compaction(tmp_path: Path) -> None:
    """After a compaction the model has what its summary kept and what was put back (in
    the system prompt, in no message). Claude Code's next summary sees neither as the
    user's words: both are in the next compaction's ledger, so what that summary drops
    comes back again, and the newer context's own facts come first."""
    path = transcript(tmp_path)
    base = {"session_id": SID, "transcript_path": str(path), "cwd": ROOT}
    with Tracker() as tracker:
        run("PreCompact", {**base, "trigger": "manual"}, tracker)
        compacted(path, "The user asked to implement REQ-PAY-042 (payments).")
        first = json.loads(run("SessionStart", {**base, "source": "compact"}, tracker).stdout)
        assert "Never push to main" in first["hookSpecificOutput"]["additionalContext"]
        with path.open("a", encoding="utf-8") as out:  # the new context goes on
            out.write(record("u2", "s1", "user", "Also add REQ-PAY-077 for refunds.") + "\n")
        run("PreCompact", {**base, "trigger": "auto"}, tracker)
        compacted(path, "Work on payments goes on.")  # drops everything said before
        second = json.loads(run("SessionStart", {**base, "source": "compact"}, tracker).stdout)
        text = second["hookSpecificOutput"]["additionalContext"]
        assert "Never push to main" in text  # put back once, now carried
        assert "REQ-PAY-042" in text  # kept by the first summary, dropped by the second
        assert "REQ-PAY-077" in text  # the new context's own
        assert text.index("REQ-PAY-077") < text.index("REQ-PAY-042")  # newest first


def test_a_line_nested_too_deeply_does_not_hide_the_summary(tmp_path: Path) -> None:
    """A transcript line too deep for the JSON parser, naming ``isCompactSummary``, is
    skipped as a bad line: the summary after it is still found and compared."""
    path = transcript(tmp_path)
    base = {"session_id": SID, "transcript_path": str(path), "cwd": ROOT}
    with Tracker() as tracker:
        run("PreCompact", {**base, "trigger": "manual"}, tracker)
        with path.open("a", encoding="utf-8") as out:
            out.write('{"isCompactSummary": ' + "[" * 200_000 + "]" * 200_000 + "}\n")
        compacted(path, "The user asked to implement REQ-PAY-042 (payments).")
        after = run("SessionStart", {**base, "source": "compact"}, tracker)
        assert after.exit_code == 0
        context_text = json.loads(after.stdout)["hookSpecificOutput"]["additionalContext"]
        assert "Never push to main" in context_text
        assert "Requirements:" not in context_text  # the summary was read: it kept REQ-PAY-042
        [done] = tracker.store.events(SID, types=["facts_reinjected"])
        assert done.data["summary_found"] is True


def test_the_summary_in_the_payload_and_the_configured_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = transcript(tmp_path)
    base = {"session_id": SID, "transcript_path": str(path), "cwd": ROOT}
    with Tracker() as tracker:
        run("PreCompact", {**base, "trigger": "auto"}, tracker)
        summary = "Implement REQ-PAY-042. Never push to main. Read api.py. Write migration table."
        quiet = run(
            "SessionStart", {**base, "source": "compact", "compact_summary": summary}, tracker
        )
        assert quiet.stdout == ""  # the summary kept everything
        run("PreCompact", {**base, "trigger": "auto"}, tracker)
        monkeypatch.setenv("CTXBUDGET_REINJECT_TOKENS", "0")
        off = run("SessionStart", {**base, "source": "compact", "compact_summary": "x"}, tracker)
        assert off.stdout == ""
        assert HookOptions(reinject_tokens=123).reinject_budget == 123
