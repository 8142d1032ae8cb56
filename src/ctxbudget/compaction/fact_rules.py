"""Where facts are found: the patterns, and the rules that read an item for them.

``feed_item`` reads one item (the user's standing instructions, requirement ids,
decisions, open questions, file paths, todo lists, errors, user requests, named
entities, dates and numbers with units) into a ledger (``facts.FactLedger``, seen here
through ``Ledger``: what the rules write into). Pure functions over strings. Precision
matters as much as recall: every false fact is a line a summary must carry.

System prompts and instructions are not read: a compaction always keeps them, so their
facts cannot be lost, and their templates (``REQ-<MODULE>-<NNN>``) are not facts.
Thinking is not read either: it restates what the text around it says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Protocol

from ..model import MONTHS, Item, Kind, Role
from ..sources.tools import EDIT_TOOLS, FILE_TOOLS, QUIET_TOOLS, is_ctxbudget_tool
from .fact_check import WORD
from .mentions import entities, is_source_file, line_at, paths, word_set
from .summary_sections import summary_facts
from .types import Fact, FactKind

__all__ = [
    "COMMAND_PLUMBING",
    "REPORT_MARKER",
    "Ledger",
    "clip",
    "feed_item",
    "has_word",
    "is_report_or_command",
]

REQUEST_CHARS = 300
PHRASE_WORDS = 12
ERROR_WORDS = 15


_SKIPPED = frozenset(
    {Kind.SYSTEM_PROMPT, Kind.INSTRUCTION, Kind.THINKING, Kind.IMAGE, Kind.REMINDER}
)
_TEXT_KINDS = frozenset({Kind.USER_TEXT, Kind.ASSISTANT_TEXT, Kind.SUMMARY})
_FILE_TOOL_HINTS = ("read", "edit", "write", "file", "open", "view", "create")
_OUTPUT_KINDS = frozenset({Kind.TOOL_RESULT, Kind.FILE_READ, Kind.SEARCH_RESULT})
_PATH_KEYS = ("file_path", "notebook_path", "path", "filename")

# --- requirement ids ---------------------------------------------------------------------
# Found from their cheap tails ("-12", "#12"), then matched in full around them: one
# regex over 600 KB costs more than the rest of the extraction.
_ID_TAIL = re.compile(r"-\d|#\d")
_ID = re.compile(
    r"(?<![\w/.-])(?:([A-Z]{2}[A-Z0-9]{0,8})(?:-[A-Z][A-Z0-9]{0,9})*|[Tt]ask)-\d{1,6}"
    r"(?![\w-]|\.\d)"
)
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_ISSUE = re.compile(r"#\d{1,6}(?![\w-])")
_ISSUE_BEFORE = re.compile(
    r"(?:\b(?i:issues?|PRs?|pull requests?|tickets?|closes|fixes|resolves)\s+|\[|\w/[\w.-]+)\Z"
)
# Standards, encodings and model names that look like ids but are not.
_NOT_REQUIREMENT = word_set(
    "UTF UCS SHA MD CRC AES RSA DES ECDSA ISO IEC IEEE ANSI ASCII LATIN CP WINDOWS WIN "
    "HTTP HTTPS TLS SSL IPV IP TCP UDP WCAG ECMA ES GPT BERT LLAMA COVID SARS GPL LGPL "
    "AGPL BSD CC PKCS DDR LTE USB PCI FIPS HDR MPEG ARM ARMV AMD INTEL BASE INT UINT "
    "FLOAT MP PDF AVX SSE OAUTH SOC"
)

# --- decisions, questions, checkboxes ----------------------------------------------------
_HINTS = ("ecision", "ecided", "go with", "pproved", "✅", "❌", "uestion", "[ ]", "[x]", "[X]")
_LIST_PREFIX = re.compile(r"^\s*(?:>\s*)*(?:[-*+•]\s+|\d{1,3}[.)]\s+)?(?:\[[ xX]\]\s+)?")
_IS_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+\S")
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+(.*)|\*\*([^*]+)\*\*:?\s*)$")
_DECISION = re.compile(
    r"(?i)^(?:(?:final )?decision(?:\s*#?\d+)?\s*[:\-–—]|approved\s*[:\-–—]|"
    r"decided(?:\s*[:\-–—]|(?=\s+(?:to|on|that|against)\b)))\s*(.+)$"
)
_DECISION_MARK = re.compile(r"^(✅|❌)\s*(.+)$")
_DESCOPED = re.compile(r"(?i)out of (?:the )?(?:mvp )?scope|descoped|rejected|won't do")
_DECISION_SENTENCE = re.compile(
    r"(?i)\b(?:we(?:'ll| will| are going to) go with|we(?:'ve| have)? decided|"
    r"it was decided|the decision is)\b"
)
_DECISIONS_HEADER = re.compile(r"(?i)^(?:key |final |technical )?decisions(?: made)?:?$")
_QUESTION = re.compile(r"(?i)^open question(s?)\s*(?:\(\d+\))?\s*[:\-–—]\s*(.*)$")
_QUESTION_LINE = re.compile(r"\?[\s*)]*$|\?\s*\([^)]*\)[.\s]*$")
_RECAP = re.compile(r"(?i)^(?:none|no\b|n/a|\d+\b)")
_CHECKBOX = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+\[[ xX]\]\s+(.+?)\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'`(])")

# --- standing instructions --------------------------------------------------------------
# A rule the user set for the whole session, at the start of a sentence or a clause:
# "Never push to main", "…, and always run the tests first", "From now on, use uv".
_STANDING = re.compile(
    r"(?i)(?:^|[,;:]\s+|\b(?:and|but|also|so)\s+)(?:please\s+)?"
    r"(?:never|always|from now on|going forward|(?:do not|don't) ever|"
    r"make sure (?:to|you) (?:always|never)|you must(?:n't| not| never| always)?|"
    r"(?:do not|don't) (?:push|commit|merge|deploy|delete|force|touch|modify|edit|change|"
    r"rewrite|remove|rename|add|use|install|upgrade|run|skip|disable))\b"
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
INSTRUCTION_WORDS = 16

# --- user noise, errors ------------------------------------------------------------------
_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|\Z)", re.S)
# The first line of ctxbudget's own output where a plugin command puts it into the
# conversation (/ctxbudget:tokens, :preview…): a report on the context, not its facts
# (a preview lists them all again; a figure is stale by the next message).
REPORT_MARKER = "<!-- ctxbudget report -->"
# Claude Code's records of a slash command: its invocation and its output (a
# ``/compact --dry-run`` preview, ``/cost``), not what the conversation is about.
COMMAND_PLUMBING = (
    "<command-name>",
    "<command-message>",
    "<local-command-stdout>",
    "<local-command-stderr>",
)
# Either, in one search of the text (not one per marker)
_REPORT_OR_COMMAND = re.compile("|".join(map(re.escape, (REPORT_MARKER, *COMMAND_PLUMBING))))


def is_report_or_command(text: str) -> bool:
    """Does ``text`` hold a ctxbudget report (``REPORT_MARKER``) or a slash command's
    record (``COMMAND_PLUMBING``)?"""
    return _REPORT_OR_COMMAND.search(text) is not None


_NOISE = (
    REPORT_MARKER,
    *COMMAND_PLUMBING,
    "[Request interrupted by user",
    "Caveat: The messages below were generated",
    "<local-command-caveat>",  # Claude Code 2.x: before a slash command's own records
)
_CONTINUED = "This session is being continued from a previous conversation"
_ERROR = re.compile(
    r"\b(?:\w*(?:Error|Exception)(?=:|\s*\()|error(?=[:\[])|ERROR\b|Traceback \(most|"
    r"FAIL(?:ED|URE)?\b|[Ff]ailed\b|panic:)"
)
_DIAGNOSTIC = re.compile(r"^\S+\.\w+:\d+(?::\d+)?:\s")  # file.go:12:3: undefined: x
_NOT_ERROR = re.compile(r"(?i)\b(?:0|no|zero|without) (?:errors?|failures?|failed)\b|[✅✓]")
# Lines that mention errors without being one: structured log records and timestamps
# (a passing test logs "level=ERROR msg=..."), and a command's help ("--log-failed ...").
_LOG_LINE = re.compile(
    r"^\s*(?:time=|level=|\d{4}-\d\d-\d\d[T ]\d\d:|\[\d\d:\d\d|-{1,2}[a-z][\w-]*\s)"
)
# A run that says it passed and names no failure: its "error" words are test fixtures.
_PASSED = re.compile(r"\bPASS\b|^ok\s+\S+|\b\d+ passed\b|\bBUILD SUCCESS|All tests passed", re.M)
# What a text must hold for _PASSED (besides "ok" opening a line) and _ERROR to match:
# a few substring searches rule most tool results out before the patterns scan them.
_PASSED_HINTS = ("PASS", "passed", "BUILD SUCCESS")
# _PASSED in two: its "ok" line, and the rest, each match of which lies within one line
# holding one of _PASSED_HINTS (``_passed`` searches those lines alone).
_PASSED_OK = re.compile(r"^ok\s+\S+", re.M)
_PASSED_IN_LINE = re.compile(r"\bPASS\b|\b\d+ passed\b|\bBUILD SUCCESS|All tests passed")
_ERROR_HINTS = ("rror", "ERROR", "Exception", "Traceback (most", "FAIL", "ailed", "panic:")
_FAILED_RUN = re.compile(
    r"\bFAIL(?:ED)?\b|\b\d+ failed\b|Traceback \(most|panic:|exit status [1-9]"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# --- entities, dates, numbers ------------------------------------------------------------
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_MONTH = "(?:" + "|".join(MONTHS) + "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)"
_DATE = re.compile(
    r"(?=[\dJFMASOND])(?<![\w/-])(?:\d{4}-\d{2}-\d{2}(?!\d)|\d{1,2}/\d{1,2}/\d{4}(?![\d/])"
    rf"|{_MONTH}\.?\s\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s\d{{4}}\b)?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s(?:of\s)?{_MONTH}\b(?:,?\s\d{{4}}\b)?"
    rf"|{_MONTH}\s\d{{4}}\b)"
)
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_UNIT = (
    r"(?:ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|"
    r"years?|[KMGT]i?B|kB|bytes?|tokens?|req(?:uest)?s?|rps|qps|attempts?|retries|users?|"
    r"seats?|tenants?|customers?|employees?|accounts?|calls|events?|messages?|USD|EUR|GBP|"
    r"dollars?|euros?|percent|characters|chars|words|lines|rows|columns)"
)
_PER = (
    r"(?:\s?(?:/|per\s)\s?(?:s|sec|second|min|minute|h|hr|hour|day|week|month|year|user|"
    r"seat|tenant|key))?"
)
_NUMBER = re.compile(
    r"(?=[\d$€£])(?<![\w.$€£/-])(?:"
    rf"[$€£]\s?{_NUM}(?:\s?(?:[kKmMbB]|million|billion|thousand)\b)?"
    rf"|{_NUM}\s?%"
    rf"|{_NUM}-(?:second|minute|hour|day|week|month|year|token|user|seat|line)s?\b"
    rf"|{_NUM}[kKM]?\s?{_UNIT}\b{_PER}"
    rf"|{_NUM}(?:ms|s|h|d|m|k|K|M|x|×)\b)"
)
# "**Fixed Bug**: …" and "3. Files and Code Sections:" label a list, they name nothing.
_LABEL = re.compile(
    r"^\s*(?:[-*+•]\s+|\d{1,3}[.)]\s+)?(?:\*\*[^*\n]+\*\*:?|[^.!?:\n]{1,60}:[ \t]*$)", re.M
)


class Ledger(Protocol):
    """What the rules write into (``facts.FactLedger``)."""

    prose_decisions: list[tuple[Fact, int]]
    todos: tuple[int, list[str]] | None
    checkboxes: tuple[int, list[str]] | None
    echoing: bool

    def add(self, kind: FactKind, key: str, text: str, item: int, at: int = 0) -> None: ...

    def error(self, key: str, text: str, item: int, at: int) -> None: ...

    def notice(self, kind: FactKind, key: str, text: str, item: int, at: int) -> None: ...


def clip(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def has_word(text: str) -> bool:
    return WORD.search(text) is not None


def _phrase(text: str, limit: int = PHRASE_WORDS) -> str:
    """A short key: markdown and markers stripped, first sentence, at most ``limit`` words."""
    text = " ".join(text.replace("**", "").replace("__", "").replace("`", "").split())
    text = _SENTENCE_END.split(text.lstrip("✅❌☐☑✔✗ -:"), maxsplit=1)[0]
    words = text.split()
    if len(words) > limit:
        words = words[:limit]
        # A parenthesis cut open reads badly: end before it when enough is left.
        opened = max((i for i, w in enumerate(words) if "(" in w), default=-1)
        if opened >= 3 and ")" not in " ".join(words[opened:]):
            words = words[:opened]
    return " ".join(words).rstrip(".,;:—– ")


def feed_item(ledger: Ledger, item: Item, index: int) -> None:
    """The facts of one item, the ``index``-th of its context."""
    kind = item.kind
    text = item.text
    if kind in _SKIPPED or not text or is_ctxbudget_tool(item.tool):
        return  # ctxbudget's own MCP calls and results report on the context
    if kind is Kind.TOOL_CALL:
        ledger.echoing = False  # working again: no report shown in between
        _from_tool_call(ledger, item, index)
    elif kind in _TEXT_KINDS:
        if kind is Kind.USER_TEXT:
            if REPORT_MARKER in text:
                # a plugin command's report: the answer that follows shows it again
                ledger.echoing = True
                return
            bare = _REMINDER.sub("", text) if "<system-reminder>" in text else text
            if item.role is Role.USER and has_word(bare):
                ledger.echoing = False  # the user spoke again (or ran another command)
            if any(marker in text for marker in _NOISE):
                return
            text = bare
            if item.role is Role.USER and not text.lstrip().startswith(_CONTINUED):
                request = " ".join(text.split())
                if len(request) > REQUEST_CHARS:
                    request = request[:REQUEST_CHARS].rsplit(" ", 1)[0]
                if has_word(request):
                    ledger.add(FactKind.REQUEST, request, text, index)
                _instructions(ledger, text, index)
        elif kind is Kind.SUMMARY:
            # an earlier compaction's summary: what it kept is in no other item now
            for fact_kind, key, line, at in summary_facts(text):
                if fact_kind is FactKind.ERROR:
                    ledger.error(key, line, index, at)
                    continue
                ledger.add(fact_kind, key, line, index, at)
                if fact_kind is FactKind.REQUEST:
                    _instructions(ledger, key, index)  # the user's words, as they said them
        elif kind is Kind.ASSISTANT_TEXT and ledger.echoing:
            # the model showing the user a ctxbudget report, as it was asked to (in a
            # code block): its first text; what it says outside the block or after is its own
            ledger.echoing = False
            if "```" not in text:
                return
            text = _FENCE.sub("", text)
        _from_text(ledger, text, index, kind)
    elif kind is Kind.AGENT_REPORT:
        # A sub-agent's report: its concrete files are facts, its prose is tool output.
        for path, line, at in paths(text):
            if "/" in path and is_source_file(path):
                ledger.add(FactKind.FILE, path, line, index, at)
    elif kind is Kind.TOOL_RESULT:
        _from_result(ledger, item, index)
    if kind in _OUTPUT_KINDS or item.tool in EDIT_TOOLS:
        return  # ids in a listing or in a file's content were not set in this session
    if kind in _TEXT_KINDS and "```" in text:
        text = _FENCE.sub("", text)  # arr[MAX-1] in a code block is no id
    for key, at in _requirement_ids(text):
        ledger.add(FactKind.REQUIREMENT, key, line_at(text, at), index, at)


def _instructions(ledger: Ledger, text: str, index: int) -> None:
    """The user's standing instructions: each sentence that sets a rule ("never …",
    "always …", "from now on …", "don't push …"), outside code blocks."""
    prose = _FENCE.sub("", text) if "```" in text else text
    offset = 0
    for sentence in _SENTENCES.split(prose):
        at = prose.find(sentence, offset)
        offset = max(offset, at)
        line = _LIST_PREFIX.sub("", sentence, count=1).strip()
        if len(line) > 400 or _STANDING.search(line) is None:
            continue  # a pasted log or a paragraph, not a rule
        key = _phrase(line, INSTRUCTION_WORDS)
        if has_word(key):
            ledger.add(FactKind.INSTRUCTION, key, line, index, max(at, 0))


def _requirement_ids(text: str) -> Iterator[tuple[str, int]]:
    """REQ-AUTH-001, BR-013, ABC-123, task-12; #12 after "issue", "PR", "[" or owner/repo."""
    for tail in _ID_TAIL.finditer(text):
        at = tail.start()
        if text[at] == "#":
            issue = _ISSUE.match(text, at)
            if issue and _ISSUE_BEFORE.search(text, max(0, at - 40), at):
                yield issue.group(0), at
            continue
        start = at
        while start > 0 and text[start - 1] in _ID_CHARS:
            start -= 1
        match = _ID.match(text, start)
        if match and match.end() > at and match.group(1) not in _NOT_REQUIREMENT:
            yield match.group(0), start


def _tool_input(item: Item) -> dict[str, Any] | None:
    raw = item.raw
    if isinstance(raw, dict):
        block = raw.get("block")
        if isinstance(block, dict) and isinstance(block.get("input"), dict):
            value: dict[str, Any] = block["input"]
            return value
    _, _, body = item.text.partition(" ")
    if not body.startswith("{"):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _from_tool_call(ledger: Ledger, item: Item, index: int) -> None:
    tool = item.tool or ""
    if tool == "TodoWrite":
        data = _tool_input(item)
        todos = data.get("todos") if data else None
        if isinstance(todos, list):
            ledger.todos = (
                index,
                [str(t.get("content", "")) for t in todos if isinstance(t, dict)],
            )
        return
    if tool not in FILE_TOOLS and not any(h in tool.casefold() for h in _FILE_TOOL_HINTS):
        return
    data = _tool_input(item)
    for name in _PATH_KEYS:
        value = data.get(name) if data else None
        if isinstance(value, str) and value.strip():
            ledger.add(FactKind.FILE, value.strip(), item.text[:300], index)


def _passed(text: str) -> bool:
    """Does a tool result say its run passed (``_PASSED``)? The pattern scans the lines
    that hold a hint, not the whole text (a long log that mentions "passed" once)."""
    if (text.startswith("ok") or "\nok" in text) and _PASSED_OK.search(text):
        return True
    for hint in _PASSED_HINTS:
        at = text.find(hint)
        while at >= 0:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            if _PASSED_IN_LINE.search(text, start, end):
                return True
            at = text.find(hint, end)
    return False


def _from_result(ledger: Ledger, item: Item, index: int) -> None:
    if item.tool in QUIET_TOOLS:  # their "Error" is code, or a slip
        return
    text = _ANSI.sub("", item.text) if "\x1b" in item.text else item.text
    block = item.raw.get("block") if isinstance(item.raw, dict) else None
    failed = isinstance(block, dict) and bool(block.get("is_error"))
    if not failed and _passed(text) and not _FAILED_RUN.search(text):
        return
    found = False
    line_end = -1
    hinted = any(hint in text for hint in _ERROR_HINTS)
    for match in _ERROR.finditer(text) if hinted else ():
        if match.start() < line_end:
            continue  # one fact per line
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.start())
        line_end = end if end >= 0 else len(text)
        found |= _error(ledger, text[start:line_end], index, start)
    if failed and not found:
        # A failed command without an error word: its compiler diagnostics, or else its
        # first line that is not a heading ("# github.com/x/y" above Go's diagnostics).
        lines = [line for line in text.splitlines() if line.strip()]
        diagnostics = [line for line in lines if _DIAGNOSTIC.match(line)]
        for line in diagnostics or [next((ln for ln in lines if not ln.startswith("#")), "")]:
            _error(ledger, line, index, 0)


def _error(ledger: Ledger, line: str, index: int, at: int) -> bool:
    if _NOT_ERROR.search(line) or _LOG_LINE.match(line):
        return False
    line = line.replace("<tool_use_error>", "").replace("</tool_use_error>", "")
    words = line.split()[:ERROR_WORDS]
    key = " ".join(words)[:200]
    if len(words) < 2 or not has_word(key):
        return False
    ledger.error(key, line, index, at)
    return True


def _from_text(ledger: Ledger, text: str, index: int, kind: Kind) -> None:
    if any(hint in text for hint in _HINTS):
        _markers(ledger, text, index, kind)
    for path, line, at in paths(text):
        ledger.add(FactKind.FILE, path, line, index, at)
    prose = _FENCE.sub("", text) if "```" in text else text
    for match in _DATE.finditer(prose):
        start = match.start()
        ledger.notice(FactKind.DATE, match.group(0), line_at(prose, start), index, start)
    for match in _NUMBER.finditer(prose):
        at = match.start()
        ledger.notice(FactKind.NUMBER, match.group(0), line_at(prose, at), index, at)
    labelled = _LABEL.sub("", prose)
    for name, at in entities(labelled):
        ledger.notice(FactKind.ENTITY, name, line_at(labelled, at), index, at)


def _markers(ledger: Ledger, text: str, index: int, kind: Kind) -> None:
    """Decisions, open questions and checkboxes, line by line."""
    # DECISION or QUESTION: each list item below such a header is one
    section: FactKind | None = None
    question_heading = False  # "?"-lines below a heading about questions are questions
    checkboxes: list[str] = []
    offset = 0
    for raw_line in text.split("\n"):
        at = offset
        offset += len(raw_line) + 1
        if not raw_line.strip():
            continue
        heading = _HEADING.match(raw_line)
        if heading:
            title = (heading.group(1) or heading.group(2) or "").strip().rstrip(":").casefold()
            question_heading = kind is not Kind.USER_TEXT and "question" in title
            section = FactKind.QUESTION if "open question" in title else None
            if _DECISIONS_HEADER.match(title):
                section = FactKind.DECISION
            continue
        box = _CHECKBOX.match(raw_line)
        if box:
            checkboxes.append(box.group(1))
        line = _LIST_PREFIX.sub("", raw_line, count=1).strip()
        bare = line.replace("**", "").replace("__", "").strip()
        if section and _IS_LIST_ITEM.match(raw_line):
            ledger.add(section, _phrase(bare), line, index, at)
            continue
        section = None
        _marked_line(ledger, bare, line, index, at)
        if (match := _QUESTION.match(bare)) and not match.group(2).strip():
            section = FactKind.QUESTION
        elif bare.endswith(":") and _DECISIONS_HEADER.match(bare):
            section = FactKind.DECISION
        elif question_heading and _QUESTION_LINE.search(bare):
            ledger.add(FactKind.QUESTION, _phrase(bare), line, index, at)
    if checkboxes:
        ledger.checkboxes = (index, checkboxes)


def _marked_line(ledger: Ledger, bare: str, line: str, index: int, at: int) -> None:
    """A line that says it is a decision or an open question."""
    if match := _DECISION.match(bare):
        ledger.add(FactKind.DECISION, _phrase(match.group(1)), line, index, at)
    elif match := _DECISION_MARK.match(bare):
        mark, rest = match.groups()
        # ✅ alone is a progress tick ("✅ tests pass"); a decision names its approval.
        approved = mark == "✅" and "approved" in bare.casefold()
        if approved or (mark == "❌" and _DESCOPED.search(bare)):
            ledger.add(FactKind.DECISION, _phrase(rest), line, index, at)
    elif match := _QUESTION.match(bare):
        plural, rest = match.group(1), match.group(2).strip()
        # "Open questions: none" or "Open questions: 2 (tax, GraphQL)" is a recap.
        if rest and ("?" in rest or not (plural or _RECAP.match(rest))):
            ledger.add(FactKind.QUESTION, _phrase(rest), line, index, at)
    elif match := _DECISION_SENTENCE.search(bare):
        # from the sentence that says it: the line may be a long message that ends with it
        start = bare.rfind(". ", 0, match.start())
        said = bare[start + 2 if start >= 0 else 0 :]
        fact = Fact(FactKind.DECISION, _phrase(said), clip(said), index)
        ledger.prose_decisions.append((fact, at))
