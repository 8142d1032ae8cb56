"""Claude Code 2.x transcripts: system reminders are context, bookkeeping is not, the
window follows the model Claude Code runs, and a usage that jumps for reasons the
transcript does not show (an MCP server connected) does not inflate the figure.

The fixture keeps the records' structure (as Claude Code 2.1.328 writes them) with
short stand-in text of our own; one test runs the real Claude Code against the fake API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import png
from conftest import run_cli as run
from fake_anthropic import (
    CLAUDE,
    FakeAnthropic,
    Reply,
    ToolUse,
    Usage,
    compare_with_request,
    converse,
    is_summary_request,
    sent_blocks,
    summary_reply,
    transcripts,
)

from ctxbudget.claude_code.statusline import render_statusline
from ctxbudget.model import Kind, Role
from ctxbudget.sources import load_source

needs_claude = pytest.mark.skipif(
    not CLAUDE.exists(), reason=f"Claude Code is not installed at {CLAUDE} (npm ci --prefix .e2e)"
)

SESSION = "7c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e"
MODEL = "claude-opus-5-5"


class Writer:
    """Records chained by ``parentUuid``, as Claude Code 2.x writes them."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.parent: str | None = None

    def add(self, rtype: str, chained: bool = True, **fields: Any) -> None:
        record: dict[str, Any] = {"type": rtype, "sessionId": SESSION, **fields}
        if chained:
            uuid = f"u{len(self.records):03d}"
            record.update(parentUuid=self.parent, isSidechain=False, uuid=uuid)
            record["timestamp"] = f"2026-12-01T10:00:{len(self.records):02d}.000Z"
            self.parent = uuid
        self.records.append(record)

    def bookkeeping(self) -> None:
        self.add("queue-operation", chained=False, operation="enqueue", content="x")
        self.add("api-request-shape", chained=False, shape={"system": "S", "tools": []})
        self.add("api-request", chained=False, params={"model": MODEL, "max_tokens": 32000})
        self.add("api-request-blob", chained=False, hash="abc", message={"role": "user"})
        self.add("cost-state", chained=False, modelUsage={MODEL: {"inputTokens": 5}})
        self.add("last-prompt", chained=False, lastPrompt="one")
        self.add("atis-latch", chained=False)
        self.add("mode", chained=False, mode="default")

    def reminder(self, kind: str, text: str | None, role: str = "system") -> None:
        fields: dict[str, Any] = {"attachment": {"type": kind}}
        if text is not None:
            fields.update(rendered=[{"content": text}], renderedRole=role)
        self.add("attachment", **fields)

    def user(self, text: str) -> None:
        self.add("user", message={"role": "user", "content": text})

    def assistant(self, text: str, context: int, output: int = 10) -> None:
        usage = {
            "input_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": context - 5,
            "output_tokens": output,
        }
        message = {
            "id": f"msg_{len(self.records):03d}",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": text}],
            "usage": usage,
        }
        self.add("assistant", message=message)

    def write(self, path: Path) -> Path:
        path.write_text("".join(json.dumps(r) + "\n" for r in self.records), encoding="utf-8")
        return path


ENVIRONMENT = "# Environment\nWorking directory: /home/dev/shop\nPlatform: linux"
REMINDER = f"<system-reminder>\n{ENVIRONMENT}\n</system-reminder>"


def session_with_jumps(path: Path, usages: list[int]) -> Path:
    w = Writer()
    for n, context in enumerate(usages):
        w.user(f"Turn {n}: go on.")
        if n == 0:
            w.reminder("environment", REMINDER)
            w.reminder("prompt_snapshot", None)  # bookkeeping: nothing rendered
        w.bookkeeping()
        w.assistant("Fine.", context)
    return w.write(path)


def test_reminders_are_context_and_bookkeeping_is_not(tmp_path: Path) -> None:
    transcript = load_source(session_with_jumps(tmp_path / f"{SESSION}.jsonl", [20_000]))
    assert transcript.unknown_records == 0
    reminders = [i for i in transcript.items if i.kind is Kind.REMINDER]
    # one, the rendered one, as the request sends it: a system-role reminder goes into
    # the request's system message without its <system-reminder> tags
    assert [i.text for i in reminders] == [ENVIRONMENT]
    # the bookkeeping records (a request blob repeats a message) add no item
    assert [i.kind for i in transcript.items] == [
        Kind.USER_TEXT,
        Kind.REMINDER,
        Kind.ASSISTANT_TEXT,
    ]


def test_a_reminder_sent_as_the_users_keeps_its_tags(tmp_path: Path) -> None:
    w = Writer()
    w.user("Commit this.")
    w.reminder("remote_session_change", REMINDER, role="user")
    w.assistant("Done.", 20_000)
    transcript = load_source(w.write(tmp_path / f"{SESSION}.jsonl"))
    assert [i.text for i in transcript.items if i.kind is Kind.REMINDER] == [REMINDER]


def test_reminders_in_the_breakdown_and_the_same_figure_on_the_status_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = session_with_jumps(tmp_path / f"{SESSION}.jsonl", [20_000])
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["breakdown"]["kind"]["reminder"] > 0
    assert "unknown shape" not in err
    line = render_statusline(
        json.dumps({"session_id": SESSION, "transcript_path": str(path)}),
        cache_dir=tmp_path / "cache",
    )
    assert f"{data['used_tokens']:,}/{data['max_tokens']:,}" in line


def test_the_window_of_claude_codes_default_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = session_with_jumps(tmp_path / f"{SESSION}.jsonl", [20_000])
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["max_tokens"] == 1_000_000


def test_before_any_answer_the_window_is_of_the_model_the_session_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """While the first request is out, the transcript holds the prompt and its
    reminders: the ``model`` attachment names the model (no answer nor request record
    yet). Every surface used 200,000 there, the status line 1,000,000."""
    w = Writer()
    w.add(
        "attachment",
        attachment={
            "type": "model",
            "identity": {"modelId": MODEL, "marketingName": "Opus"},
            "text": "You are powered by the model named Opus.",
        },
    )
    w.user("Port the billing module.")
    path = w.write(tmp_path / f"{SESSION}.jsonl")
    tokens = json.loads(run(capsys, "tokens", str(path), "--json")[1])
    assert tokens["max_tokens"] == 1_000_000 and tokens["model"] == MODEL
    line = render_statusline(
        json.dumps({"session_id": SESSION, "transcript_path": str(path)}), use_cache=False
    )
    assert f"Tokens: {tokens['used_tokens']:,}/1,000,000" in line, line


def test_a_usage_jump_the_transcript_does_not_explain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # three short turns, the provider's count jumping (an MCP server connected)
    path = session_with_jumps(tmp_path / f"{SESSION}.jsonl", [100_000, 152_000, 192_000])
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0, err
    used = json.loads(out)["used_tokens"]
    assert abs(used - (192_000 + 10)) <= 0.01 * 192_000


@needs_claude
def test_real_claude_code_transcript(tmp_path: Path) -> None:
    usages = iter([100_000, 152_000, 192_000])

    def script(body: dict[str, Any], index: int) -> Reply:
        if not body.get("tools"):  # a side request (a title): small, not the context
            return Reply(text="t", usage=Usage(input_tokens=10, output_tokens=2))
        context = next(usages)
        return Reply(text="Fine.", usage=Usage(5, 10, 0, context - 5))

    work = tmp_path / "proj"
    work.mkdir()
    with FakeAnthropic(script) as api:
        converse(api, tmp_path, work, ["one", "two", "three"])
    [path] = transcripts(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "ctxbudget.cli", "tokens", str(path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(done.stdout)
    assert "unknown shape" not in done.stderr
    assert data["max_tokens"] == 1_000_000  # what Claude Code reports for its model
    assert abs(data["used_tokens"] - (192_000 + 10)) <= 0.01 * 192_000
    assert data["breakdown"]["kind"].get("reminder", 0) > 0
    overhead = data["breakdown"]["overhead"]  # measured from its api-request-shape
    assert overhead["system prompt"] > 0 and any(k.startswith("tool ") for k in overhead)


def test_tokens_says_where_claude_code_compacts_by_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAUDE_AUTOCOMPACT_PCT_OVERRIDE", raising=False)
    path = session_with_jumps(tmp_path / f"{SESSION}.jsonl", [100_000])
    code, out, err = run(capsys, "tokens", str(path))
    assert code == 0, err
    # a 1M window less 20,000 of output and a 13,000 buffer (Claude Code 2.1.328)
    assert "Claude Code compacts by itself at 97% (967,000; default)" in out
    # settings.json env, as Claude Code reads it (CLAUDE_CONFIG_DIR is the test's own)
    config = Path(os.environ["CLAUDE_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "settings.json").write_text(
        json.dumps({"env": {"CLAUDE_AUTOCOMPACT_PCT_OVERRIDE": "50"}}), encoding="utf-8"
    )
    code, out, err = run(capsys, "tokens", str(path), "--json")
    auto = json.loads(out)["claude_code_autocompact"]
    assert auto["override"] == 50 and auto["tokens"] == 490_000
    assert auto["tokens_until"] == 490_000 - json.loads(out)["used_tokens"]


SYSTEM = "You are a careful coding agent. " * 60
TOOLS = [
    {"name": "Read", "description": "Read a file. " * 20, "input_schema": {"type": "object"}},
    {"name": "Bash", "description": "Run a command. " * 30, "input_schema": {"type": "object"}},
]


def shaped_session(path: Path, *, usage: int | None, shape: bool = True) -> Path:
    w = Writer()
    w.user("Fix the failing test in shop/tax.py.")
    w.reminder("environment", REMINDER)
    if shape:
        system = [{"type": "text", "text": SYSTEM}]
        w.add("api-request-shape", chained=False, shape={"system": system, "tools": TOOLS})
    if usage is not None:
        w.assistant("Looking.", usage)
    return w.write(path)


def test_the_recorded_request_shape_splits_the_overhead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shaped_session(tmp_path / f"{SESSION}.jsonl", usage=9_000)
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0, err
    breakdown = json.loads(out)["breakdown"]
    overhead = breakdown["overhead"]
    assert set(overhead) == {"system prompt", "tool Read", "tool Bash"}
    assert overhead["system prompt"] > overhead["tool Bash"] > overhead["tool Read"] > 0
    assert sum(overhead.values()) <= breakdown["unattributed"]
    code, out, err = run(capsys, "tokens", str(path), "--breakdown")
    assert code == 0, err
    assert "system prompt" in out and "tool definitions (2)" in out
    assert "provider overhead (system prompt, tools, framing: below)" in out
    assert "unattributed" not in out  # the request recorded says what it is


def test_counted_before_its_first_usage_on_every_surface(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shaped = shaped_session(tmp_path / f"{SESSION}.jsonl", usage=None)
    bare = shaped_session(tmp_path / "bare.jsonl", usage=None, shape=False)
    figures = []
    for path in (shaped, bare):
        code, out, err = run(capsys, "tokens", str(path), "--json")
        assert code == 0, err
        figures.append(json.loads(out)["used_tokens"])
    # the system prompt (~360 tokens) and two tool definitions (~250) are counted
    assert figures[0] - figures[1] > 500
    line = render_statusline(
        json.dumps({"session_id": SESSION, "transcript_path": str(shaped)}),
        cache_dir=tmp_path / "cache",
    )
    assert f"{figures[0]:,}/" in line


@needs_claude
def test_the_reader_holds_everything_the_request_sent(tmp_path: Path) -> None:
    """The real Claude Code, with a hook adding context to each prompt: a turn reading a
    file, its own ``/compact`` (which keeps the last answer and attaches the file
    again), a turn reading it again with two more calls at once (a listing, a file that
    is not there); each answer thinks first. The texts, calls
    and results of the last request the fake API received are exactly the items the
    reader made of the transcript's current context, nothing missed and nothing added;
    its system message is the system reminders, joined; the system prompt and each tool
    are the recorded request shape."""
    from ctxbudget.sources.content import compact_json

    work = tmp_path / "proj"
    work.mkdir()
    notes = work / "notes.txt"
    notes.write_text("REQ-7: the cache expires after 30 minutes.\n", encoding="utf-8")
    hook = tmp_path / "hook.py"  # a UserPromptSubmit hook adding context to each prompt
    context = {"hookEventName": "UserPromptSubmit", "additionalContext": "REQ-42 stays."}
    hook.write_text(f"print({json.dumps({'hookSpecificOutput': context})!r})\n")
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    command = f"{sys.executable} {hook}"
    hooks = {"UserPromptSubmit": [{"hooks": [{"type": "command", "command": command}]}]}
    settings.write_text(json.dumps({"hooks": hooks}), encoding="utf-8")

    def script(body: dict[str, Any], index: int) -> Reply:
        if is_summary_request(body):
            return summary_reply("The user asked to read notes.txt: REQ-7, cache expiry.")
        if not body.get("tools"):  # a side request (a title)
            return Reply(text="t", usage=Usage(input_tokens=10, output_tokens=2))
        users = [m for m in body["messages"] if m["role"] == "user"]  # a system one follows
        last = json.dumps(users[-1]["content"])
        if "read the notes again" in last and "tool_result" not in last:
            return Reply(  # three calls at once: each result hangs on its own call
                tool_uses=(
                    ToolUse("Read", {"file_path": str(notes)}),
                    ToolUse("Bash", {"command": "ls", "description": "list"}),
                    ToolUse("Read", {"file_path": str(work / "missing.txt")}),
                )
            )
        if "read the notes" in last and "tool_result" not in last:
            return Reply(tool_uses=(ToolUse("Read", {"file_path": str(notes)}),))
        return Reply(text="Noted: REQ-7.", thinking="The notes name REQ-7, nothing else.")

    prompts = ["hello", "please read the notes", "/compact", "read the notes again"]
    with FakeAnthropic(script) as api:
        converse(api, tmp_path, work, prompts, "--permission-mode", "bypassPermissions")
        sent = api.main_requests()[-1]
    [path] = transcripts(tmp_path)
    transcript = load_source(path)
    seen = compare_with_request(path, sent)
    items = seen.items
    # a system message a turn: the system-role reminders, without their tags, joined
    assert seen.sent_system == seen.held_system
    assert any("continued from a previous conversation" in t for t in seen.sent_texts)
    assert "REQ-42 stays." in seen.held_system  # the hook's context
    assert any("Called the Read tool" in t for t in seen.sent_texts)  # the file re-attached
    assert len(seen.sent_calls) == 3 and any(i.kind is Kind.FILE_READ for i in items)
    assert any(i.kind is Kind.THINKING for i in items)  # sent again with the answer
    # nothing missed, nothing added: the same texts, and the same calls
    assert seen.held_texts == seen.sent_texts
    assert seen.held_calls == seen.sent_calls
    shape = transcript.request_shape
    for tool in sent["tools"]:
        assert shape[f"tool {tool['name']}"] == compact_json(tool)
    system = [b["text"] for b in sent["system"]] if isinstance(sent["system"], list) else []
    assert shape["system prompt"] in "\n\n".join(system)


@needs_claude
def test_the_reader_holds_memory_mentions_skills_and_changed_files(tmp_path: Path) -> None:
    """What else today's Claude Code puts into a request, each recorded its own way: the
    project's CLAUDE.md and a sub-directory's (read with a file there), a file the
    prompt mentions (``@notes.txt``), a skill the model invokes, and the notice that a
    command changed a file it read before. The last request's texts and calls are exactly
    the reader's current context, and each of them is in both."""
    work = tmp_path / "proj"
    package = work / "pkg"
    skill = work / ".claude" / "skills" / "release"
    for folder in (package, skill):
        folder.mkdir(parents=True)
    (work / "CLAUDE.md").write_text("# Rules\nAlways cite REQ ids (REQ-501).\n")
    (package / "CLAUDE.md").write_text("# Package rules\nThis package is frozen: REQ-900.\n")
    (package / "mod.py").write_text("def answer():\n    return 42\n")
    notes = work / "notes.txt"
    notes.write_text("".join(f"line {i}: REQ-{i} expires in {i} minutes.\n" for i in range(9)))
    (skill / "SKILL.md").write_text(
        "---\nname: release\ndescription: How to cut a release\n---\n\n"
        "Tag the commit, then run make release (REQ-77).\n"
    )

    def script(body: dict[str, Any], index: int) -> Reply:
        if not body.get("tools"):  # a side request (a title)
            return Reply(text="t", usage=Usage(input_tokens=10, output_tokens=2))
        users = [m for m in body["messages"] if m["role"] == "user"]
        last = json.dumps(users[-1]["content"])
        if "tool_result" not in last:
            if "read the module" in last:
                return Reply(tool_uses=(ToolUse("Read", {"file_path": str(package / "mod.py")}),))
            if "cut a release" in last:
                return Reply(tool_uses=(ToolUse("Skill", {"skill": "release"}),))
            if "change the module" in last:
                sed = f"sed -i 's/42/43/' {package / 'mod.py'}"
                return Reply(tool_uses=(ToolUse("Bash", {"command": sed, "description": "edit"}),))
        return Reply(text="Done.")

    prompts = ["look at @notes.txt", "read the module", "cut a release", "change the module", "ok"]
    with FakeAnthropic(script) as api:
        converse(api, tmp_path, work, prompts, "--permission-mode", "bypassPermissions")
        sent = api.main_requests()[-1]
    [path] = transcripts(tmp_path)
    seen = compare_with_request(path, sent)
    assert seen.held_texts == seen.sent_texts
    assert seen.held_calls == seen.sent_calls
    assert seen.sent_system == seen.held_system
    held = "\n".join(i.text for i in seen.items)
    for what in ("REQ-501", "REQ-900", "line 3: REQ-3", "make release", "modified 1 file"):
        assert what in held, what
        assert what in json.dumps(sent["messages"]), what


@pytest.mark.parametrize("system_messages", [True, False, None])
def test_reminders_count_as_the_latest_request_sent_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], system_messages: bool | None
) -> None:
    """A model that takes system messages gets the system-role reminders in one, without
    their tags; any other gets them as the user's text, tags and all. The request's
    messages are recorded by hash (``api-request`` ``tail``, one ``api-request-blob``
    a message): the reminders count as the latest request sent them, on every surface.
    With no request recorded, as system messages (what Claude Code's default model
    gets)."""
    w = Writer()
    w.user("Hello.")
    w.reminder("environment", REMINDER)
    if system_messages is not None:
        role = "system" if system_messages else "user"
        w.add("api-request-blob", chained=False, hash="h-user", message={"role": "user"})
        w.add("api-request-blob", chained=False, hash="h-rem", message={"role": role})
        params = {"model": MODEL if system_messages else "claude-sonnet-4-5"}
        w.add("api-request", chained=False, params=params, keep=0, tail=["h-user", "h-rem"])
    w.assistant("Hi.", 20_000)
    w.user("Go on.")
    w.reminder("date", "<system-reminder>\nToday's date is 2026-12-04.\n</system-reminder>")
    path = w.write(tmp_path / f"{SESSION}.jsonl")
    texts = [i.text for i in load_source(path).items if i.kind is Kind.REMINDER]
    if system_messages is False:
        assert texts == [
            REMINDER,
            "<system-reminder>\nToday's date is 2026-12-04.\n</system-reminder>",
        ]
    else:
        assert texts == [ENVIRONMENT, "Today's date is 2026-12-04."]
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    payload = json.dumps({"session_id": SESSION, "transcript_path": str(path)})
    line = render_statusline(payload, cache_dir=tmp_path / "cache")
    assert f"{data['used_tokens']:,}/" in line


@needs_claude
def test_the_reader_holds_the_reminders_as_each_model_gets_them(tmp_path: Path) -> None:
    """The real Claude Code in plan mode, then with an appended system prompt, then on a
    model without system messages (``--model claude-sonnet-4-5``), which gets every
    system-role reminder again as the user's text with its tags: the last request's
    texts are exactly the reader's current context."""
    work = tmp_path / "proj"
    work.mkdir()

    def script(body: dict[str, Any], index: int) -> Reply:
        if not body.get("tools"):  # a side request (a title)
            return Reply(text="t", usage=Usage(input_tokens=10, output_tokens=2))
        return Reply(text="Done.")

    bypass = ["--permission-mode", "bypassPermissions"]
    runs = [
        ("hello", ["--permission-mode", "plan"]),
        ("next", ["--append-system-prompt", "REQ-321 answer briefly.", *bypass]),
        ("again", ["--model", "claude-sonnet-4-5", *bypass]),
    ]
    with FakeAnthropic(script) as api:
        converse(api, tmp_path, work, runs)
        sent = api.main_requests()[-1]
    assert sent["model"] == "claude-sonnet-4-5"
    assert not any(m["role"] == "system" for m in sent["messages"])
    [path] = transcripts(tmp_path)
    seen = compare_with_request(path, sent)
    assert seen.held_texts == seen.sent_texts
    assert any(t.startswith("<system-reminder>") for t in seen.held_texts)


def _compacted_keeping_the_last_answer(path: Path, tail: bool = True) -> Path:
    """Two turns with usages, Claude Code's own compaction keeping the last answer
    (``compactMetadata.preservedMessages``, a reminder between its boundary and its
    summary), then a new prompt not answered yet."""
    w = Writer()
    w.user("Read the design notes.")
    w.reminder("environment", REMINDER)
    w.assistant("The notes say the cache expires after thirty minutes.", 30_000)
    w.user("And the retry policy?")
    w.assistant("Retries back off exponentially up to eight seconds, then give up.", 31_000)
    kept = w.parent
    assert kept is not None
    w.add(
        "system",
        subtype="compact_boundary",
        compactMetadata={
            "trigger": "manual",
            "preservedMessages": {"anchorUuid": "summary", "uuids": [kept]},
        },
    )
    w.records[-1]["parentUuid"] = None
    # Claude Code 2.x writes some reminders between the boundary and the summary
    w.reminder("date", "<system-reminder>\nToday's date is 2026-12-04.\n</system-reminder>")
    w.add(
        "user",
        isCompactSummary=True,
        message={"role": "user", "content": "This session is being continued: notes read."},
    )
    w.records[-1]["uuid"] = w.parent = "summary"
    if tail:
        w.user("What else is in the notes?")
    return w.write(path)


def test_a_compactions_context_holds_its_reminders_and_the_messages_it_kept(
    tmp_path: Path,
) -> None:
    transcript = load_source(_compacted_keeping_the_last_answer(tmp_path / f"{SESSION}.jsonl"))
    assert [i.text for i in transcript.items] == [
        "Today's date is 2026-12-04.",
        "This session is being continued: notes read.",
        "Retries back off exponentially up to eight seconds, then give up.",
        "What else is in the notes?",
    ]


def test_after_a_compaction_that_kept_messages_every_surface_shows_the_same_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tokens`` and the status line count the kept messages and the reminders before
    the summary alike, the status line also when it read the file up to the summary
    before and the rest after."""
    path = _compacted_keeping_the_last_answer(tmp_path / f"{SESSION}.jsonl")
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    figure = f"{data['used_tokens']:,}/{data['max_tokens']:,}"
    payload = json.dumps({"session_id": SESSION, "transcript_path": str(path)})
    assert figure in render_statusline(payload, cache_dir=tmp_path / "whole")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-2]), encoding="utf-8")  # up to the summary, excluded
    render_statusline(payload, cache_dir=tmp_path / "parts")
    path.write_text("".join(lines), encoding="utf-8")
    assert figure in render_statusline(payload, cache_dir=tmp_path / "parts")


def test_an_error_claude_code_shows_the_user_is_no_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ``isApiErrorMessage`` answer ("Autocompact is thrashing…") is Claude Code's own
    message to the user: the next request does not carry it (seen with Claude Code
    2.1.328 against the fake API), so it counts nothing, on every surface."""
    w = Writer()
    w.user("Read the design notes.")
    w.assistant("The notes say the cache expires after thirty minutes.", 30_000)
    w.user("Go on.")
    error = "Autocompact is thrashing: the context refilled to the limit. " * 40
    message = {
        "role": "assistant",
        "model": "<synthetic>",
        "content": [{"type": "text", "text": error}],
    }
    w.add("assistant", message=message, isApiErrorMessage=True, apiError="autocompact_thrashing")
    path = w.write(tmp_path / f"{SESSION}.jsonl")
    transcript = load_source(path)
    assert not any("thrashing" in i.text for i in transcript.items)
    assert transcript.unknown_records == 0
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["used_tokens"] < 30_000 + 200  # the answer and "Go on." on top, no error
    payload = json.dumps({"session_id": SESSION, "transcript_path": str(path)})
    line = render_statusline(payload, cache_dir=tmp_path / "cache")
    assert f"{data['used_tokens']:,}/{data['max_tokens']:,}" in line


def _parallel_calls(path: Path, interleaved: bool = False) -> Path:
    """A response of two tool calls, Claude Code 2.x style: each block a record of its
    own, each result hanging on its own call's record, then the next answer.
    ``interleaved``: the first result written before the second call's block."""
    w = Writer()
    w.user("Check both files.")
    w.assistant("Reading both.", 20_000)
    response = w.records[-1]["message"]

    def result(n: int, parent: str) -> None:
        content = f"{n}\tdef f{n}(): ..."
        block = {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": content}
        w.parent = parent
        w.add("user", message={"role": "user", "content": [block]}, sourceToolAssistantUUID=parent)

    blocks: list[str] = []
    for n, name in enumerate(("a.py", "b.py")):
        w.parent = blocks[-1] if blocks else w.records[1]["uuid"]
        use = {"type": "tool_use", "id": f"toolu_{n}", "name": "Read", "input": {"file_path": name}}
        w.add("assistant", message={**response, "content": [use]})
        blocks.append(str(w.parent))
        if interleaved and n == 0:
            result(0, blocks[0])
    for n, parent in enumerate(blocks):
        if not (interleaved and n == 0):
            result(n, parent)
    w.assistant("Both define one function.", 20_400)
    return w.write(path)


@pytest.mark.parametrize("interleaved", [False, True])
def test_each_of_parallel_calls_and_its_result_is_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], interleaved: bool
) -> None:
    path = _parallel_calls(tmp_path / f"{SESSION}.jsonl", interleaved)
    transcript = load_source(path)
    texts = [i.text for i in transcript.items]
    assert "0\tdef f0(): ..." in texts and "1\tdef f1(): ..." in texts
    assert sum(i.kind is Kind.TOOL_CALL for i in transcript.items) == 2
    # the response's blocks together, then the results (a message list can be written)
    calls = [n for n, i in enumerate(transcript.items) if i.kind is Kind.TOOL_CALL]
    results = [n for n, i in enumerate(transcript.items) if i.role is Role.TOOL]
    assert max(calls) < min(results)
    last = transcript.calls[-1]  # what the answer's request added: both calls, both results
    assert len(last.added_items) == 5 and last.anchor_output_items == 3
    # the response (its size is reported) first, also when a result came between its blocks
    response = [transcript.history_items[i].kind for i in last.added_items[:3]]
    assert response == [Kind.ASSISTANT_TEXT, Kind.TOOL_CALL, Kind.TOOL_CALL]
    # the same figure on the status line, before the answer (the results estimated on
    # top of the response's usage) and after it
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for keep in (len(lines) - 1, len(lines)):
        path.write_text("".join(lines[:keep]), encoding="utf-8")
        code, out, err = run(capsys, "tokens", str(path), "--json")
        assert code == 0, err
        data = json.loads(out)
        payload = json.dumps({"session_id": SESSION, "transcript_path": str(path)})
        line = render_statusline(payload, cache_dir=tmp_path / f"cache{keep}")
        assert f"{data['used_tokens']:,}/{data['max_tokens']:,}" in line


def _counted(body: dict[str, Any]) -> int:
    """What the fake API reports for a request: the ``claude-estimate`` count of what it
    carries (system prompt, tools, every message's texts, calls and results) and 4
    tokens a message: an API whose counter is ours."""
    from ctxbudget.sources.content import compact_json
    from ctxbudget.tokens.counters import get_counter

    count = get_counter("claude-estimate").count
    system = body.get("system")
    blocks = system if isinstance(system, list) else []
    total = sum(
        count(b.get("text", "")) for b in blocks if "billing-header" not in b.get("text", "")
    )
    total += sum(count(compact_json(tool)) for tool in body.get("tools", []))
    for message in body["messages"]:
        for kind, what in sent_blocks(message):
            if kind == "tool_use":
                name, arguments = what
                what = f"{name} {json.dumps(arguments)}"
            total += count(what) if isinstance(what, str) else 0
        total += 4 + sum(_patches(image) for image in _images(message.get("content")))
    return total


def _counting_script(
    asks: str, calls: Callable[[], tuple[ToolUse, ...]], text: str, answer: str
) -> Callable[[dict[str, Any], int], Reply]:
    """A fake API reporting our own count of each request (``_counted``): a prompt that
    ``asks`` gets the ``calls()`` (fresh ids each time; said with ``text``), anything
    else the ``answer``."""

    def script(body: dict[str, Any], index: int) -> Reply:
        if not body.get("tools"):  # a side request (a title)
            return Reply(text="t", usage=Usage(input_tokens=10, output_tokens=2))
        usage = Usage(5, 20, 0, _counted(body) - 5)
        users = [m for m in body["messages"] if m["role"] == "user"]
        last = json.dumps(users[-1]["content"])
        if asks in last and "tool_result" not in last:
            return Reply(text=text, tool_uses=calls(), usage=usage)
        return Reply(text=answer, usage=usage)

    return script


def _prediction_errors(path: Path) -> list[float]:
    """Each anchored call of the transcript: |predicted - reported| / reported, as
    ``ctxbudget tokens --history`` gives them with the counter the fake API counts with."""
    argv = ["tokens", str(path), "--json", "--history", "--counter", "claude-estimate"]
    done = subprocess.run(
        [sys.executable, "-m", "ctxbudget.cli", *argv], capture_output=True, text=True, check=True
    )
    calls = [h for h in json.loads(done.stdout)["history"] if h.get("call")]
    return [abs(h["predicted_tokens"] - h["reported_tokens"]) / h["reported_tokens"] for h in calls]


def _looking_at(
    tmp_path: Path, name: str, picture: bytes, prompts: list[str]
) -> tuple[dict[str, Any], list[float]]:
    """The real Claude Code, in a project holding the picture ``name``, reads it when a
    prompt says "look at", against a fake API counting what it is sent (``_counted``):
    the last request, and each call's prediction error (``_prediction_errors``)."""
    work = tmp_path / "proj"
    work.mkdir()
    (work / name).write_bytes(picture)

    def read() -> tuple[ToolUse, ...]:
        return (ToolUse("Read", {"file_path": str(work / name)}),)

    script = _counting_script("look at", read, "Looking.", "A picture.")
    with FakeAnthropic(script) as api:
        converse(api, tmp_path, work, prompts, "--permission-mode", "bypassPermissions")
        sent = api.main_requests()[-1]
    [path] = transcripts(tmp_path)
    return sent, _prediction_errors(path)


def _images(content: Any) -> list[dict[str, Any]]:
    """The image blocks of a message's content, those inside tool results too."""
    blocks = content if isinstance(content, list) else []
    found = [b for b in blocks if isinstance(b, dict) and b.get("type") == "image"]
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            found += _images(block.get("content"))
    return found


def _patches(image: dict[str, Any]) -> int:
    """A PNG's visual tokens as Anthropic's vision documentation counts them: one per
    28×28 patch (the size from the PNG's header; the tests send small ones)."""
    import base64
    import struct

    header = base64.b64decode(image["source"]["data"][:64])
    width, height = struct.unpack(">II", header[16:24])
    return -(-width // 28) * -(-height // 28)


@needs_claude
def test_the_figure_follows_an_api_that_counts_what_it_was_sent(tmp_path: Path) -> None:
    """Against a fake API reporting our own count of each request, every call predicted
    from the last usage and what the transcript added is within 1%, the calls after
    three parallel reads of 2k to 7k tokens each included (the reader held one result of
    three before: -32%)."""
    work = tmp_path / "proj"
    work.mkdir()
    for k in range(3):
        text = "".join(f"def f{k}_{i}(x):\n    return x * {i}\n\n" for i in range(80 * (k + 1)))
        (work / f"f{k}.py").write_text(text, encoding="utf-8")

    def reads() -> tuple[ToolUse, ...]:
        return tuple(ToolUse("Read", {"file_path": str(work / f"f{k}.py")}) for k in range(3))

    script = _counting_script("read", reads, "Reading.", "All three define small functions.")

    prompts = ["hello", "read the three files", "which is longest?", "read them again"]
    with FakeAnthropic(script) as api:
        converse(api, tmp_path, work, prompts, "--permission-mode", "bypassPermissions")
    [path] = transcripts(tmp_path)
    errors = _prediction_errors(path)
    assert len(errors) >= 5
    assert max(errors) <= 0.01, errors


@needs_claude
def test_the_figure_follows_an_api_that_counts_an_images_pixels(tmp_path: Path) -> None:
    """The real Claude Code reads a picture (a 700×500 PNG: 25 × 18 = 450 visual tokens),
    then the prompt mentions it (``@chart.png``: an attachment Claude Code records
    without a rendered text), against a fake API that counts images by their patches:
    every call predicted from the last usage is within 1% (the picture counted as its
    "[image]" stand-in before, a few tokens, and the mentioned one not at all)."""
    prompts = ["hello", "look at chart.png", "what does it show?", "and @chart.png again?"]
    sent, errors = _looking_at(tmp_path, "chart.png", png(700, 500), prompts)
    assert '"type": "image"' in json.dumps(sent["messages"])  # the picture went to the model
    assert len(errors) >= 4
    assert max(errors) <= 0.01, errors


@needs_claude
def test_a_big_picture_costs_what_claude_codes_default_model_takes(tmp_path: Path) -> None:
    """A 3,000 × 2,000 picture: Claude Code sends it at 2,000 × 1,333, which its default
    model (a model that takes large images: up to 2,576 px and 4,784 tokens) takes as
    it is, 72 × 48 = 3,456 visual tokens, not the 1,568 at most of the other models.
    Every call predicted from the last usage is within 1%."""
    sent, errors = _looking_at(tmp_path, "wide.png", png(3000, 2000), ["look at wide.png", "and?"])
    images = [i for message in sent["messages"] for i in _images(message.get("content"))]
    assert [_patches(i) for i in images] == [72 * 48]
    assert len(errors) >= 2
    assert max(errors) <= 0.01, errors


def test_a_local_commands_output_is_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``system`` record of subtype ``local_command`` (a slash command's output, "
    recorded here as context for later messages") is sent as the user's: counted, on
    every surface (seen in the real Claude Code's requests after ``/compact --dry-run``)."""
    w = Writer()
    w.user("Start.")
    w.assistant("Ready.", 20_000)
    w.user("<command-name>/compact</command-name>")
    output = "<local-command-stderr>Compaction blocked: " + "facts at risk. " * 60
    w.add("system", subtype="local_command", content=output + "</local-command-stderr>")
    w.user("Go on.")
    path = w.write(tmp_path / f"{SESSION}.jsonl")
    transcript = load_source(path)
    assert any(i.text.startswith("<local-command-stderr>") for i in transcript.items)
    assert transcript.unknown_records == 0
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["used_tokens"] > 20_000 + 150  # the output counted on top of the usage
    payload = json.dumps({"session_id": SESSION, "transcript_path": str(path)})
    line = render_statusline(payload, cache_dir=tmp_path / "cache")
    assert f"{data['used_tokens']:,}/{data['max_tokens']:,}" in line


@needs_claude
def test_a_prompt_with_unicode_line_separators_stays_one_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real Claude Code writes U+2028 and U+0085 in a prompt unescaped, as JSON
    allows (text pasted from a web page holds them). The reader keeps the prompt whole:
    no line reported as bad, the prompt's text as sent, and the figure the same on the
    status line (which reads the file as bytes) as in ``tokens``."""
    home, work = tmp_path / "home", tmp_path / "proj"
    home.mkdir()
    work.mkdir()
    prompt = "Pasted from the spec:\u2028the retry limit is 5\u0085and the timeout 30 s"
    with FakeAnthropic() as api:
        converse(api, home, work, [prompt])
    [path] = transcripts(home)
    assert "\u2028".encode() in path.read_bytes()  # raw, not \u2028 escaped
    transcript = load_source(path)
    assert transcript.problems == []
    assert prompt in [item.text for item in transcript.items]
    code, out, err = run(capsys, "tokens", str(path), "--json", "--store", "memory://")
    assert code == 0 and "not a JSON record" not in err, err
    used = json.loads(out)["used_tokens"]
    line = render_statusline(
        json.dumps({"session_id": path.stem, "transcript_path": str(path), "cwd": str(work)}),
        cache_dir=tmp_path / "cache",
    )
    assert f"{used:,}/" in line


@needs_claude
def test_a_prompt_too_long_for_the_api_and_claude_codes_compaction_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The failure ctxbudget is there to prevent: the API refuses a request as too long
    (HTTP 400). Claude Code 2.x compacts by itself and sends it again. The reader follows:
    no bad or unknown records, the refused request anchors nothing, and the current
    context is exactly what the retried request sent."""
    home, work = tmp_path / "home", tmp_path / "proj"
    home.mkdir()
    work.mkdir()
    refused: list[int] = []

    def script(body: dict[str, Any], index: int) -> Reply:
        if is_summary_request(body):
            return summary_reply("Two questions so far (REQ-7).", Usage(5_000, 50))
        if not body.get("tools"):
            return Reply(text="t", usage=Usage(input_tokens=10, output_tokens=2))
        # the prompt is the last user message (a reminder may follow it as a system one)
        prompt = next(m for m in reversed(body["messages"]) if m["role"] == "user")
        if "second" in json.dumps(prompt["content"]) and not refused:
            refused.append(index)
            too_long = "prompt is too long: 215000 tokens > 200000 maximum"
            return Reply(error=(400, "invalid_request_error", too_long))
        return Reply(text="done", usage=Usage(input_tokens=150_000, output_tokens=5))

    with FakeAnthropic(script) as api:
        converse(api, home, work, ["first question", "second question"])
        asked = [b for b in api.requests if b.get("tools") or is_summary_request(b)]
        kinds = ["summary" if is_summary_request(b) else "turn" for b in asked]
        last = api.main_requests()[-1]
    assert refused and kinds == ["turn", "turn", "summary", "turn"]  # refused, compacted, again
    [path] = transcripts(home)
    transcript = load_source(path)
    assert transcript.problems == [] and transcript.unknown_records == 0
    assert [c.usage.input_tokens for c in transcript.calls] == [150_000, 150_000]
    compared = compare_with_request(path, last)
    assert compared.held_texts == compared.sent_texts
    assert compared.held_calls == compared.sent_calls
    assert compared.held_system == compared.sent_system
    code, out, err = run(capsys, "tokens", str(path), "--json", "--store", "memory://")
    assert code == 0, err
    assert 150_000 <= json.loads(out)["used_tokens"] <= 150_000 * 1.01


def test_what_each_compaction_replaced_is_its_context_without_abandoned_branches(
    tmp_path: Path,
) -> None:
    """``Transcript.replaced`` (what ``recall`` searches after Claude Code's /compact):
    the context the boundary's ``logicalParentUuid`` had, not a branch the user left
    by editing an earlier message, nor the records after it in the file."""
    w = Writer()
    w.user("Use the staging database for the migration.")
    w.assistant("Migrating staging.", 1_000)
    fork = w.parent
    w.user("Actually, drop every table.")  # edited away: an abandoned branch
    w.assistant("Dropping.", 1_100)
    w.parent = fork
    w.user("Keep the orders table as it is.")
    w.assistant("Orders kept.", 1_200)
    transcript = load_source(_compacted_after(w).write(tmp_path / f"{SESSION}.jsonl"))
    assert [[i.text for i in context] for context in transcript.replaced] == [
        [
            "Use the staging database for the migration.",
            "Migrating staging.",
            "Keep the orders table as it is.",
            "Orders kept.",
        ]
    ]


def _compacted_after(w: Writer) -> Writer:
    """``w`` ended by Claude Code's /compact (a boundary naming its last message)."""
    last = w.parent
    w.add("system", subtype="compact_boundary", content="Conversation compacted")
    w.records[-1].update(parentUuid=None, logicalParentUuid=last)
    w.user("This session is being continued: summary.")
    w.records[-1]["isCompactSummary"] = True
    w.assistant("Continuing.", 300)
    return w


def test_recall_never_offers_a_report_nor_the_models_echo_of_it(tmp_path: Path) -> None:
    """/ctxbudget:recall put its report into the conversation and the model showed it:
    after Claude Code's /compact, recall offers the message that said it, neither the
    report nor the echo (also not as the message after a hit)."""
    from ctxbudget import Tracker
    from ctxbudget.compaction.fact_rules import REPORT_MARKER

    w = Writer()
    w.user("Which port does the billing service use?")
    w.assistant("The billing service listens on port 8443.", 1_000)
    w.user(f"{REPORT_MARKER}\nassistant: The billing service listens on port 8443.")
    w.assistant(
        "Recall found:\n```\nassistant: The billing service listens on port 8443.\n```", 1_100
    )
    w.user("Thanks.")
    w.assistant("You are welcome.", 1_200)
    path = _compacted_after(w).write(tmp_path / f"{SESSION}.jsonl")
    session = Tracker(store="memory://").load(load_source(path))
    assert [i.text for i in session.recall("billing service port", budget=2_000)] == [
        "The billing service listens on port 8443.",
        "Which port does the billing service use?",
    ]


def test_recall_never_offers_a_slash_commands_records_nor_ctxbudgets_alerts(
    tmp_path: Path,
) -> None:
    """A slash command's invocation and output (the /compact --dry-run preview) and a
    hook's alert are no part of the conversation: recall offers what was said."""
    from ctxbudget import Tracker
    from ctxbudget.compaction.fact_rules import REPORT_MARKER

    w = Writer()
    w.user("Which port does the billing service use?")
    w.assistant("The billing service listens on port 8443.", 1_000)
    w.user(
        "<command-name>/ctxbudget:recall</command-name>\n"
        "<command-args>billing service port</command-args>"
    )
    w.user(
        "<local-command-stderr>ctxbudget: /compact --dry-run: the billing service port, "
        "8443, would be kept</local-command-stderr>"
    )
    w.reminder("hook_additional_context", f"{REPORT_MARKER}\nctxbudget: billing service at 80%")
    w.assistant("Noted.", 1_200)
    path = _compacted_after(w).write(tmp_path / f"{SESSION}.jsonl")
    session = Tracker(store="memory://").load(load_source(path))
    found = [i.text for i in session.recall("billing service port", budget=2_000)]
    assert found[:2] == [
        "The billing service listens on port 8443.",
        "Which port does the billing service use?",
    ]
    assert not any("command" in text or "ctxbudget" in text for text in found), found


def test_recall_puts_the_live_transcripts_best_beside_the_stores(tmp_path: Path) -> None:
    """The stored archive's scores and the transcript's are not comparable: the best of
    each in turn, the transcript's first, so a weak stored match never pushes out the
    transcript's exact answer."""
    from ctxbudget import Tracker
    from ctxbudget.compaction import CompactionPolicy

    w = Writer()
    w.user("Which port does the billing service use?")
    w.assistant("The billing service listens on port 8443.", 1_000)
    path = _compacted_after(w).write(tmp_path / f"{SESSION}.jsonl")
    tracker = Tracker(store="memory://")
    stored = tracker.session(SESSION, model=MODEL, window=5_000)
    for n in range(12):
        stored.add_messages(
            [
                {"role": "user", "content": f"Step {n}: the service catalogue entry {n} " * 10},
                {"role": "assistant", "content": f"Entry {n} mentions a service once. " * 10},
            ]
        )
    stored.compact(CompactionPolicy(target_tokens=stored.used_tokens // 3))
    found = tracker.load(load_source(path)).recall("billing service port", budget=70)
    assert found[0].text == "The billing service listens on port 8443."


def test_a_boundary_naming_a_message_written_after_it_replaced_the_one_before(
    tmp_path: Path,
) -> None:
    w = Writer()
    w.user("Use the staging database.")
    w.assistant("Staging used.", 1_000)
    w.add("system", subtype="compact_boundary", content="Conversation compacted")
    w.records[-1].update(parentUuid=None, logicalParentUuid="u003")  # the summary's own
    w.user("This session is being continued: summary.")
    w.records[-1]["isCompactSummary"] = True
    transcript = load_source(w.write(tmp_path / f"{SESSION}.jsonl"))
    assert [[i.text for i in c] for c in transcript.replaced] == [
        ["Use the staging database.", "Staging used."]
    ]


def _agent_file(path: Path, agent: str, prompt: str, context: int, fork: bool = False) -> Path:
    """A sub-agent's own transcript, as Claude Code 2.1.328 writes it beside the session
    (``<session>/subagents/agent-<id>.jsonl``): every record is the agent's sidechain;
    a fork's first record is the reference to the context it continues."""
    w = Writer()
    w.user(prompt)
    w.reminder("environment", REMINDER)
    w.bookkeeping()
    w.assistant("Read both files: 42 lines in all.", context, output=27)
    for record in w.records:
        record["agentId"] = agent
        if "isSidechain" in record:
            record["isSidechain"] = True
    if fork:
        ref = {"type": "fork-context-ref", "agentId": agent, "parentSessionId": SESSION}
        w.records.insert(0, {**ref, "parentLastUuid": "u004", "contextLength": 19})
    path.parent.mkdir(parents=True, exist_ok=True)
    return w.write(path)


@pytest.mark.parametrize("fork", [False, True], ids=["sub-agent", "fork"])
def test_a_sub_agents_own_transcript_is_its_conversation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fork: bool
) -> None:
    folder = tmp_path / SESSION / "subagents"
    path = _agent_file(folder / "agent-a1.jsonl", "a1", "Read a.py and b.md.", 66_723, fork)
    _agent_file(folder / "agent-b2.jsonl", "b2", "Count the tests.", 9_000)  # a sibling
    transcript = load_source(path)
    assert next(i.text for i in transcript.items if i.role is Role.USER) == "Read a.py and b.md."
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0, err
    figure = json.loads(out)
    # anchored on the agent's own usage (and what it answered since), in its model's window
    assert figure["anchored_on_usage"] and figure["reported_tokens"] == 66_723
    assert figure["used_tokens"] >= 66_750 and figure["max_tokens"] == 1_000_000
    assert figure["breakdown"]["subagents"] == []  # its sibling is the session's, not its


def test_the_history_predicts_a_call_without_usage_as_the_figure_before_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first call of a session and the first after a compaction have no usage to
    start from: ``--history`` predicts them as every surface showed the context just
    before them, the system prompt and tools included, not the transcript alone."""
    first = Writer()  # as Claude Code 2.x writes it: the request's shape and model
    first.user("Fix the failing test in shop/tax.py.")
    first.reminder("environment", REMINDER)
    shape = {"system": [{"type": "text", "text": SYSTEM}], "tools": TOOLS}
    first.add("api-request-shape", chained=False, shape=shape)
    first.add("api-request", chained=False, params={"model": MODEL, "max_tokens": 32000})
    cases = [
        (first.write(tmp_path / "first.jsonl"), 0),
        (_compacted_keeping_the_last_answer(tmp_path / f"{SESSION}.jsonl"), 2),
    ]
    for before, call in cases:
        code, out, err = run(capsys, "tokens", str(before), "--json")
        assert code == 0, err
        shown = json.loads(out)["used_tokens"]
        answered = tmp_path / f"answered-{call}.jsonl"
        records = [json.loads(line) for line in before.read_text(encoding="utf-8").splitlines()]
        last = next(r["uuid"] for r in reversed(records) if "uuid" in r)
        usage = {"input_tokens": 5, "cache_read_input_tokens": shown + 400, "output_tokens": 9}
        message = {"id": "msg_new", "role": "assistant", "model": MODEL, "usage": usage}
        message["content"] = [{"type": "text", "text": "Done."}]
        records.append(
            {"type": "assistant", "sessionId": SESSION, "parentUuid": last, "uuid": "new"}
            | {"isSidechain": False, "message": message, "timestamp": "2026-12-01T10:01:00.000Z"}
        )
        answered.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        code, out, err = run(capsys, "tokens", str(answered), "--history", "--json")
        assert code == 0, err
        point = next(h for h in json.loads(out)["history"] if h["call"] == call)
        assert abs(point["predicted_tokens"] - shown) <= 0.01 * shown, (point, shown)
