"""The fact ledger: what each kind finds, what it must not find, checking and restoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.compaction import fact_rules
from ctxbudget.compaction.fact_check import check_facts, fact_present, text_words
from ctxbudget.compaction.facts import LEDGER_TITLE, extract_facts, ledger_section
from ctxbudget.compaction.summarize import summarize_extractive
from ctxbudget.compaction.types import Fact
from ctxbudget.model import Item, Kind, Role

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def user(text: str) -> Item:
    return Item(role=Role.USER, kind=Kind.USER_TEXT, text=text)


def assistant(text: str) -> Item:
    return Item(role=Role.ASSISTANT, kind=Kind.ASSISTANT_TEXT, text=text)


def system(text: str) -> Item:
    return Item(role=Role.SYSTEM, kind=Kind.SYSTEM_PROMPT, text=text)


def call(tool: str, data: dict[str, Any], *, raw: bool = True) -> Item:
    block = {"type": "tool_use", "name": tool, "input": data}
    return Item(
        role=Role.ASSISTANT,
        kind=Kind.TOOL_CALL,
        text=f"{tool} {json.dumps(data, ensure_ascii=False)}",
        tool=tool,
        raw={"block": block} if raw else None,
    )


def result(text: str, tool: str = "Bash", *, is_error: bool = False) -> Item:
    block = {"type": "tool_result", "content": text, "is_error": is_error}
    return Item(role=Role.TOOL, kind=Kind.TOOL_RESULT, text=text, tool=tool, raw={"block": block})


def keys(facts: list[Fact], kind: str) -> list[str]:
    return [f.key for f in facts if f.kind == kind]


# --- requirements ------------------------------------------------------------------------


def test_requirement_ids_of_every_style() -> None:
    facts = extract_facts(
        [
            user("Please cover REQ-AUTH-001 and BR-013; story US-42 depends on ABC-123."),
            assistant("Done with task-12. Closes issue #57, see also [#8] and octo/app#9."),
        ]
    )
    assert keys(facts, "requirement") == [
        "REQ-AUTH-001",
        "BR-013",
        "US-42",
        "ABC-123",
        "task-12",
        "#57",
        "#8",
        "#9",
    ]
    assert [f.item for f in facts if f.kind == "requirement"] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_no_requirement_in_ordinary_prose_and_code() -> None:
    prose = (
        "Files are UTF-8, hashed with SHA-256, dates in ISO-8601. GPT-4 and AES-256 too.\n"
        "x = items[len(items)-1]; BUFFER_SIZE-1; a-1 and Q3-2025 and 2025-07-21.\n"
        "Version v1.2-3, tag #1 alone, color #fff, step 3-4, well-known 404-page, COVID-19.\n"
    )
    facts = extract_facts([user(prose), assistant("```\nconst MAX-1 = 3\n```\n" + prose)])
    assert keys(facts, "requirement") == []


def test_ids_in_system_prompts_and_tool_output_are_not_facts() -> None:
    facts = extract_facts(
        [
            system("Turn format: REQ-<MODULE>-<NNN>: <title>, for example REQ-AUTH-001"),
            result("task-1 - Fix-CSP.md\ntask-2 - Optimize-build.md", tool="LS"),
            call("Write", {"file_path": "docs/req.md", "content": "REQ-X-1: a listed id"}),
            user("Start with REQ-BILL-002."),
        ]
    )
    assert keys(facts, "requirement") == ["REQ-BILL-002"]


# --- decisions and questions -------------------------------------------------------------


def test_marked_decisions() -> None:
    text = (
        "Decision: ✅ Use Auth0 for OAuth (approved by CTO). SAML goes through Auth0 too.\n"
        "- Decision: ❌ Biometric auth out of MVP scope (CTO).\n"
        "❌ Crypto payments out of scope (finance)\n"
        "✅ All tests pass\n"
        "❌ Build failed on CI\n"
        "Decisions (3): Auth0, Redis, no biometrics.\n"
        "We'll go with Postgres for the archive.\n"
        "Decided to keep the archive in SQLite.\n"
        "Approved: FastAPI for the REST endpoints\n"
        "Decidedly not a decision.\n"
    )
    facts = extract_facts([assistant(text)])
    assert keys(facts, "decision") == [
        "Use Auth0 for OAuth (approved by CTO)",
        "Biometric auth out of MVP scope (CTO)",
        "Crypto payments out of scope (finance)",
        "to keep the archive in SQLite",
        "FastAPI for the REST endpoints",
    ]


def test_decisions_under_a_heading_and_in_prose() -> None:
    facts = extract_facts([assistant("## Key decisions\n\n- Redis for sessions\n- No crypto\n")])
    assert keys(facts, "decision") == ["Redis for sessions", "No crypto"]
    # With no marked decision in the session, "we'll go with" is one.
    facts = extract_facts([user("Sounds good. We'll go with Postgres for the archive. Thanks!")])
    assert keys(facts, "decision") == ["We'll go with Postgres for the archive"]


def test_a_decision_at_the_end_of_a_long_message_is_written_from_its_sentence() -> None:
    """The summary writes a decision's text, cut at 200 characters: a message that only
    ends with it ("… We decided to do doggy playdates.") gave a line without it, and the
    check then put the whole message back beside the summary."""
    chat = "Hey Jo! Long time no see. " + "The trip was fun and the weather held up. " * 8
    items = [user(chat + "We decided to do doggy playdates on Sundays."), assistant("Great!")]
    facts = extract_facts(items)
    (fact,) = [f for f in facts if f.kind == "decision"]
    assert fact.text == "We decided to do doggy playdates on Sundays."
    text = summarize_extractive(items, facts, 200, lambda t: len(t.split()))
    assert "- We decided to do doggy playdates on Sundays." in text.splitlines()


def test_decision_keys_are_short_phrases() -> None:
    line = "Decision: " + " ".join(f"word{i}" for i in range(30))
    (fact,) = extract_facts([assistant(line)])
    assert fact.key.split() == [f"word{i}" for i in range(12)]
    assert fact.text == line


def test_open_questions() -> None:
    facts = extract_facts(
        [
            assistant(
                "Open question: Tax handling for international customers? (pending CFO)\n"
                "Open questions: none; the module is complete.\n"
                "Open questions: 2 (tax, GraphQL)\n"
                "Questions for you:\n1. Should idle sessions end earlier?\n"
            ),
            assistant("Open questions:\n- Webhook authentication mechanism\n- GraphQL needed?\n"),
            assistant("## Open points and questions\n\n1. Which region hosts EU data?\nA line.\n"),
            user("Should we use Redis? Open question: who owns billing?"),
            result("Open question: from a tool, not a question"),
        ]
    )
    assert keys(facts, "question") == [
        "Tax handling for international customers?",
        "Webhook authentication mechanism",
        "GraphQL needed?",
        "Which region hosts EU data?",
    ]


def test_a_user_line_that_says_open_question() -> None:
    facts = extract_facts([user("Open question: who owns billing? (finance)")])
    assert keys(facts, "question") == ["who owns billing?"]


# --- files -------------------------------------------------------------------------------


def test_files_from_tool_calls() -> None:
    facts = extract_facts(
        [
            call("Read", {"file_path": "/repo/src/app.py"}),
            call("Edit", {"file_path": "/repo/src/db.py", "old_string": "a", "new_string": "b"}),
            call("MultiEdit", {"file_path": "/repo/README.md", "edits": []}),
            call("Write", {"file_path": "/repo/notes/plan.md", "content": "see other/x.py"}),
            call("NotebookEdit", {"notebook_path": "/repo/nb/a.ipynb", "new_source": ""}),
            call("Read", {"file_path": "/repo/src/util.py"}, raw=False),  # parsed from text
            call("Bash", {"command": "cat /etc/hosts"}),
        ]
    )
    assert keys(facts, "file") == [
        "/repo/src/app.py",
        "/repo/src/db.py",
        "/repo/README.md",
        "/repo/notes/plan.md",
        "/repo/nb/a.ipynb",
        "/repo/src/util.py",
    ]


def test_files_in_text() -> None:
    text = (
        "I changed `src/app.py`, /home/x/y.go and ./docs/a.md (see @backlog/tasks/).\n"
        "Also README.md, go.mod and `internal/server` at src/app.py:42.\n"
    )
    facts = extract_facts([assistant(text)])
    assert keys(facts, "file") == [
        "src/app.py",
        "/home/x/y.go",
        "./docs/a.md",
        "backlog/tasks/",
        "README.md",
        "go.mod",
        "internal/server",
    ]


def test_no_file_in_ordinary_prose_and_code() -> None:
    text = (
        "Use it and/or skip it, 1000 req/min, 24/7 support, on 07/21/2025, client/server,\n"
        "TCP/IP and I/O. Built with Node.js and Vue.js, e.g. via response.json() or\n"
        "self.items. See https://example.com/a/b.py and github.com/owner/repo for more.\n"
        "Call `Get/Set` on it. The end.\n"
    )
    assert keys(extract_facts([user(text), assistant(text)]), "file") == []


def test_a_name_covered_by_a_full_path_is_one_fact() -> None:
    facts = extract_facts(
        [
            assistant("Next I fix wizard.go in internal/config/wizard.go."),
            call("Edit", {"file_path": "/home/x/internal/config/wizard.go"}),
        ]
    )
    assert keys(facts, "file") == ["/home/x/internal/config/wizard.go"]


# --- todos -------------------------------------------------------------------------------


def test_only_the_latest_todo_list_counts() -> None:
    first = [{"content": "Old task", "status": "completed"}]
    latest = [
        {"content": "Write the parser", "status": "in_progress"},
        {"content": "Add tests for the parser", "status": "pending"},
        {"content": "Write the parser", "status": "pending"},
    ]
    facts = extract_facts(
        [call("TodoWrite", {"todos": first}), user("go on"), call("TodoWrite", {"todos": latest})]
    )
    assert keys(facts, "todo") == ["Write the parser", "Add tests for the parser"]
    assert {f.item for f in facts if f.kind == "todo"} == {2}


def test_checkboxes_in_text() -> None:
    facts = extract_facts(
        [
            assistant("- [ ] stale item"),
            assistant("Plan:\n- [ ] Migrate the schema\n- [X] Back up the database\n"),
        ]
    )
    assert keys(facts, "todo") == ["Migrate the schema", "Back up the database"]


# --- errors ------------------------------------------------------------------------------


def test_errors_in_tool_results() -> None:
    log = (
        "collecting ...\n"
        "Traceback (most recent call last):\n"
        '  File "app.py", line 3, in <module>\n'
        "ValueError: bad input value\n"
        "--- FAIL: TestParse (0.00s)\n"
        "ok   example.com/pkg 0.1s\n"
        "=== 0 failed, 3 passed ===\n"
    )
    facts = extract_facts([result(log)])
    assert keys(facts, "error") == [
        "Traceback (most recent call last):",
        "ValueError: bad input value",
        "--- FAIL: TestParse (0.00s)",
    ]


def test_errors_not_from_code_or_tool_slips() -> None:
    code = 'raise ValueError("bad")\nreturn fmt.Errorf("failed: %w", err)\n'
    facts = extract_facts(
        [
            result(code, tool="Read"),
            result(code, tool="Edit"),
            result("String to replace not found in file.", tool="Edit", is_error=True),
            assistant("ValueError: in my own words, not a tool result"),
        ]
    )
    assert keys(facts, "error") == []


def test_a_failed_command_without_error_words() -> None:
    output = (
        "# example.com/app\n./main.go:12:3: undefined: helper\n./main.go:14:1: missing return\n"
    )
    facts = extract_facts([result(output, is_error=True)])
    assert keys(facts, "error") == [
        "./main.go:12:3: undefined: helper",
        "./main.go:14:1: missing return",
    ]


def test_errors_are_capped_to_the_most_recent_distinct() -> None:
    noisy = "\n".join(
        f"Error: cannot resolve symbol sym{chr(97 + i % 26)}{i // 26}" for i in range(500)
    )
    items = [result("Error: the first failure of all"), result(noisy), result(noisy)]
    errors = [f for f in extract_facts(items) if f.kind == "error"]
    assert len(errors) == 20
    assert "Error: the first failure of all" not in [f.key for f in errors]
    # Lines that differ only by numbers are one error.
    repeated = "\n".join(f"--- FAIL: FuzzLoad/seed#{i} (0.0{i}s)" for i in range(9))
    assert len(keys(extract_facts([result(repeated)]), "error")) == 1


# --- requests ----------------------------------------------------------------------------


def test_requests_are_user_text_without_noise() -> None:
    long = "Please refactor the billing module " + "and keep every invoice intact " * 30
    facts = extract_facts(
        [
            user("Fix the failing CI checks on this branch"),
            user("<command-name>/clear</command-name>\n<command-message>clear</command-message>"),
            user("<local-command-stdout>ok</local-command-stdout>"),
            user("[Request interrupted by user]"),
            user("Caveat: The messages below were generated by the user while running commands."),
            user("This session is being continued from a previous conversation that ran out."),
            Item(role=Role.USER, kind=Kind.SUMMARY, text="Summary: the user asked for X"),
            result("a tool result is not a request"),
            user("ok"),
            user(long),
            user("Fix the failing CI checks on this branch"),
        ]
    )
    requests = [f for f in facts if f.kind == "request"]
    assert [f.item for f in requests] == [0, 9]
    assert len(requests[1].key) <= 300
    assert requests[1].key.startswith("Please refactor the billing module")


def test_ctxbudget_reports_put_into_the_conversation_are_no_facts() -> None:
    """/ctxbudget:tokens and :preview put ctxbudget's output into the conversation: a
    figure stale by the next message, a list of the facts already found. Neither is
    a request or a fact to put back after a compaction."""
    report = (
        "Tokens: 12,892/1,000,000 (1%) | Normal\n"
        "Facts at risk (2: 1 decision, 1 requirement):\n"
        "  - decision: We decided to use PostgreSQL 16 for storage\n"
        "  - requirement: REQ-101"
    )
    assert keys(extract_facts([user(report)]), "requirement") == ["REQ-101"]  # unmarked
    assert extract_facts([user(fact_rules.REPORT_MARKER + "\n" + report)]) == []


def test_the_models_echo_of_a_ctxbudget_report_is_no_fact() -> None:
    """The plugin commands ask the model to show the report as it is: its answer
    repeats the report without the marker, and is no more a fact than the report.
    What the model says after the user speaks again counts, also when the ledger is
    fed in parts kept between two processes (a hook reads only what was appended)."""
    report = "Facts at risk (1):\n  - requirement: REQ-101\n  - decision: We decided to use Redis"
    context = [
        user(fact_rules.REPORT_MARKER + "\n" + report),
        assistant("Here it is:\n" + report),
        user("Now add REQ-202 to the plan."),
        assistant("Added REQ-303 next to it."),
        user(fact_rules.REPORT_MARKER + "\n" + report),
        assistant(report),
        user("<command-name>/model</command-name>"),  # another command: not an echo after it
        assistant("Switched; REQ-404 is next."),
    ]
    assert keys(extract_facts(context), "requirement") == ["REQ-202", "REQ-303", "REQ-404"]
    # the report in a code block, then the model's own work: only the block is an echo
    working = [
        user(fact_rules.REPORT_MARKER + "\n" + report),
        assistant("```\n" + report + "\n```\nBack to REQ-7: we decided to keep SQLite."),
        assistant("Done with REQ-8."),
    ]
    assert keys(extract_facts(working), "requirement") == ["REQ-7", "REQ-8"]
    assert keys(extract_facts(working), "decision") == ["Back to REQ-7: we decided to keep SQLite"]
    assert keys(extract_facts(context), "decision") == []
    from ctxbudget.compaction.facts import FactLedger

    first = FactLedger().feed(context[:1])
    resumed = FactLedger.from_data(json.loads(json.dumps(first.to_data()))).feed(context[1:], 1)
    assert resumed.result() == extract_facts(context)


# --- entities, dates, numbers ------------------------------------------------------------


def test_entities_dates_and_numbers() -> None:
    text = (
        "The CTO approved Auth0, and we store sessions in Redis with a 24h TTL. "
        "We bill through Stripe at $49 per seat, 15% off yearly, and allow 1000 req/min, "
        "3 attempts and uploads of 5 MB within 200k tokens. Launch is on 2025-07-21, "
        "the review on July 21 and the audit on 21 July 2025. We chose ClickHouse for "
        "events and the Single Responsibility Principle for code."
    )
    facts = extract_facts([user(text)])
    assert set(keys(facts, "entity")) == {
        "Auth0",
        "Redis",
        "Stripe",
        "ClickHouse",
        "Single Responsibility Principle",
    }
    assert keys(facts, "date") == ["2025-07-21", "July 21", "21 July 2025"]
    assert set(keys(facts, "number")) == {
        "24h",
        "$49",
        "15%",
        "1000 req/min",
        "3 attempts",
        "5 MB",
        "200k tokens",
    }


def test_entities_skip_sentence_openers_identifiers_and_titles() -> None:
    text = (
        "Thanks. We should refactor NewConfigWizardWithProjectDir first.\n"
        "## Performance Monitoring Plan\n"
        "- Hash Caching Optimization\n"
        "Then call `PluginManager` and obj.Method( now.\n"
    )
    assert keys(extract_facts([assistant(text)]), "entity") == []


# --- order and dedup ---------------------------------------------------------------------


def test_facts_are_deduplicated_in_order_of_first_appearance() -> None:
    facts = extract_facts(
        [
            user("Implement REQ-A-1 in src/app.py"),
            assistant("Working on req-a-1 and src/app.py; then REQ-B-2."),
        ]
    )
    assert [(f.kind, f.key, f.item) for f in facts if f.kind in ("requirement", "file")] == [
        ("requirement", "REQ-A-1", 0),
        ("file", "src/app.py", 0),
        ("requirement", "REQ-B-2", 1),
    ]
    assert [f.item for f in facts] == sorted(f.item for f in facts)


def test_empty_input() -> None:
    assert extract_facts([]) == []
    assert check_facts([], "").passed
    assert ledger_section([]) == ""


# --- checking ----------------------------------------------------------------------------


def test_fact_present_rules() -> None:
    assert fact_present(Fact("requirement", "REQ-AUTH-001", ""), "kept req-auth-001.")
    assert not fact_present(Fact("requirement", "REQ-1", ""), "only REQ-12 here")
    assert not fact_present(Fact("requirement", "#6", ""), "issue #69")
    assert fact_present(Fact("file", "/home/x/src/app.py", ""), "edited app.py")
    assert not fact_present(Fact("file", "/home/x/src/app.py", ""), "edited App.py")
    assert not fact_present(Fact("file", "backlog/tasks/", ""), "the tasks are done")
    assert fact_present(Fact("entity", "ClickHouse", ""), "clickhouse events")
    todo = Fact("todo", "Write the parser and its tests", "")  # write parser tests: 3 words
    assert fact_present(todo, "parser tests written, write more")  # 3 of 3
    assert fact_present(todo, "the parser and tests")  # 2 of 3 = 67%
    assert not fact_present(todo, "only the parser")  # 1 of 3
    words = text_words("the parser and tests")
    assert fact_present(todo, "ignored when words are given", words=words)


def test_check_facts_reports_by_kind_and_missing() -> None:
    facts = [
        Fact("requirement", "REQ-1", ""),
        Fact("requirement", "REQ-2", ""),
        Fact("file", "src/app.py", ""),
        Fact("todo", "Migrate the schema", ""),
    ]
    report = check_facts(facts, "REQ-1 done in app.py")
    assert (report.total, report.kept) == (4, 2)
    assert report.by_kind == {"requirement": (1, 2), "file": (1, 1), "todo": (0, 1)}
    assert [f.key for f in report.missing] == ["REQ-2", "Migrate the schema"]
    assert report.to_dict()["checks"]["requirements_preserved"] == "1/2"


# --- restoring ---------------------------------------------------------------------------


def _rich_session() -> list[Item]:
    return [
        user(
            "Build the billing module (REQ-BILL-001, BR-013) in src/billing.py, with Stripe, "
            "a 30-day trial and $49 per seat. Review on July 21."
        ),
        assistant(
            "Decision: ✅ Stripe as payment provider (approved by CFO)\n"
            "Decision: ❌ Crypto payments out of scope (finance)\n"
            "Open question: Tax handling for international customers? (CFO)\n"
            "I'll start with `src/billing/invoice.py` and ./docs/billing.md."
        ),
        call("Read", {"file_path": "/repo/src/billing.py"}),
        result("Traceback (most recent call last):\nKeyError: 'plan_id' missing in payload"),
        call(
            "TodoWrite",
            {
                "todos": [
                    {"content": "Add the invoice generator", "status": "pending"},
                    {
                        "content": "Handle proration for mid-period seat changes",
                        "status": "pending",
                    },
                ]
            },
        ),
        user(
            "Also make sure failed payments are retried three times over ten days, after that "
            "the tenant becomes read-only until someone pays, and send the owner an email."
        ),
        assistant("We store usage in ClickHouse; sessions last 24h and the limit is 1000 req/min."),
    ]


def test_ledger_section_restores_what_is_missing() -> None:
    facts = extract_facts(_rich_session())
    assert {f.kind for f in facts} >= {
        "requirement",
        "decision",
        "question",
        "file",
        "todo",
        "error",
        "request",
        "entity",
        "date",
        "number",
    }
    summary = "The user wants billing."
    report = check_facts(facts, summary)
    assert not report.passed
    section = ledger_section(report.missing)
    assert section.startswith(LEDGER_TITLE)
    assert "Requirements: REQ-BILL-001, BR-013" in section
    assert "- decision: ✅ Stripe as payment provider (approved by CFO)" in section
    assert check_facts(facts, summary + "\n\n" + section).passed
    # A request comes back by its shortest prefix that still counts, not whole.
    request = next(f for f in facts if f.kind == "request" and f.item == 5)
    line = next(ln for ln in section.splitlines() if ln.startswith("- request: Also"))
    assert len(line) < len(request.key) and line.endswith("…")


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_ledger_of_any_subset_makes_it_present(data: st.DataObject) -> None:
    facts = extract_facts(_rich_session())
    subset = data.draw(st.lists(st.sampled_from(facts), unique_by=lambda f: (f.kind, f.key)))
    text = data.draw(st.sampled_from(["", "The user wants billing in app.py.", "REQ-BILL-001"]))
    missing = check_facts(subset, text).missing
    restored = text + "\n" + ledger_section(missing)
    assert check_facts(subset, restored).passed


@given(
    st.lists(
        st.builds(
            Fact,
            kind=st.sampled_from(["requirement", "file", "entity", "date", "number", "todo"]),
            key=st.text(
                alphabet=st.characters(categories=["L", "N"], include_characters="-./ $%"),
                min_size=1,
                max_size=40,
            )
            .map(str.strip)
            .filter(bool),
            text=st.just(""),
        ),
        max_size=12,
    )
)
def test_ledger_of_arbitrary_facts_makes_them_present(facts: list[Fact]) -> None:
    assert check_facts(facts, ledger_section(facts)).passed


def test_ledger_section_respects_max_chars() -> None:
    facts = extract_facts(_rich_session())
    full = ledger_section(facts)
    for limit in (0, 40, 120, 300, len(full)):
        section = ledger_section(facts, max_chars=limit)
        assert len(section) <= limit
    assert ledger_section(facts, max_chars=len(full)) == full
    # The most important kinds go first.
    short = ledger_section(facts, max_chars=120)
    assert "REQ-BILL-001" in short and "ClickHouse" not in short


# --- the analyst example (examples/README.md lists what it must find) ---------------------


def test_analyst_example_has_exactly_its_requirements_decisions_and_questions() -> None:
    from ctxbudget.sources import load_source

    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    transcript = load_source(str(EXAMPLES / "analyst-ep24.json"))
    facts = extract_facts(transcript.items)
    requirements = keys(facts, "requirement")
    assert len(requirements) == 18
    assert all(f"`{key}`" in readme for key in requirements)
    decisions = keys(facts, "decision")
    assert len(decisions) == 12
    listed = [line for line in readme.splitlines() if line.startswith(("- `✅", "- `❌"))]
    for decision in decisions:
        assert sum(decision.rstrip(")") in line for line in listed) == 1, decision
    questions = keys(facts, "question")
    assert len(questions) == 4
    assert all(f"`{question}" in readme for question in questions)


_RESULT_PIECES = [
    "PASS", "PASSED", "ok ", "ok", "\nok  ", "\n", " ", "3 passed", "passed", "BUILD SUCCESS",
    "All tests passed", "Error", "error:", "error[", "ERROR", "ValueError(", "Exception:",
    "Traceback (most recent call last)", "FAIL", "FAILURE", "Failed", "failed", "panic:",
    "x", "ok\tgithub.com/a/b", "rror", "ailed", ":", "(", "12",
    "xPASS", "a3 passed", "12 passedx", "xBUILD SUCCESS", "ok  pkg", "\n\n", "_", "-",
]  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_RESULT_PIECES), max_size=12).map("".join))
def test_the_hints_before_the_result_patterns_rule_out_only_what_they_miss(text: str) -> None:
    """The substring tests that spare most tool results the patterns' scan answer as
    the patterns: a run that passed is one, an error is always looked for where any is."""
    assert fact_rules._passed(text) == (fact_rules._PASSED.search(text) is not None)
    if fact_rules._ERROR.search(text):
        assert any(hint in text for hint in fact_rules._ERROR_HINTS)


def summary(text: str) -> Item:
    return Item(role=Role.USER, kind=Kind.SUMMARY, text=text)


def test_an_earlier_summarys_requests_files_todos_and_errors_are_facts_again() -> None:
    """What a summary of ours kept is in no other item once the messages are archived:
    compacting again must keep it too, so its sections are read back as facts."""
    from ctxbudget.compaction.summarize import summarize_extractive

    items = [
        user("Add rate limiting to the public API gateway."),
        call(
            "Edit",
            {"file_path": "/srv/app/gateway/limits.py", "old_string": "a", "new_string": "b"},
        ),
        result("ok", "Edit"),
        call("Read", {"file_path": "/srv/app/gateway/routes.py"}),
        result("routes", "Read"),
        call("Read", {"file_path": "/srv/app/docs/limits.md"}),
        result("docs", "Read"),
        call("Bash", {"command": "pytest"}),
        result("FAILED tests/test_limits.py::test_burst - AssertionError: 429 expected", "Bash"),
        user("Then document the limits in the operator guide."),
    ]
    facts = extract_facts(items)
    text = summarize_extractive(items, facts, 2_000, lambda s: len(s.split()))
    found = extract_facts([summary(text)])
    for kind in ("request", "file", "error"):
        assert set(keys(facts, kind)) <= set(keys(found, kind)), (kind, text)
    # the ledger's own section ("- request: …", "Files: a, b") is read back too
    ledger = ledger_section([f for f in facts if f.kind in ("request", "file")])
    again = extract_facts([summary("# Summary\n" + ledger)])
    asked = keys(facts, "request")  # the ledger writes the shortest prefix that counts
    assert len(keys(again, "request")) == len(asked)
    assert all(any(a.startswith(key) for a in asked) for key in keys(again, "request"))
    assert set(keys(again, "file")) == set(keys(facts, "file"))
    # a summary without our sections (Claude Code's own) adds no request
    assert (
        keys(extract_facts([summary("1. Primary Request and Intent:\n- fix it")]), "request") == []
    )


def test_ctxbudgets_own_mcp_results_are_no_facts() -> None:
    """ctxbudget's MCP tools report on the context (the transcript's path, the figure):
    none of it is a fact to put back after a compaction."""
    status = "mcp__plugin_ctxbudget_ctxbudget__status"
    report = '{"source": "/home/dev/.claude/projects/p/s.jsonl", "used_tokens": 195000}'
    items = [
        user("Check how full the window is."),
        call(status, {}),
        result(report, status, is_error=True),
    ]
    facts = extract_facts(items)
    assert not any("s.jsonl" in f.key for f in facts), facts
