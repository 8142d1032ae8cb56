"""The fact ledger: what a compaction must not lose, found before it and checked after.

This module owns two things: finding facts in items (the user's standing
instructions, requirement ids, decisions, open questions, file paths, the latest todo
list, errors, user requests, named entities, dates and numbers with units), and writing
the short markdown section that puts missing facts back; whether each fact survived in
a compacted text is ``fact_check``'s. Pure functions over strings: no I/O, no token
counting, no knowledge of the pipeline's steps. Precision matters as much as recall:
every false fact is a line a summary must carry.

System prompts and instructions are not read: a compaction always keeps them, so their
facts cannot be lost, and their templates (``REQ-<MODULE>-<NNN>``) are not facts.
Thinking is not read either: it restates what the text around it says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from ..model import Item, Kind, Role
from ..sources.tools import EDIT_TOOLS, FILE_TOOLS, QUIET_TOOLS
from .fact_check import WORD, WORD_SHARE
from .types import Fact, FactKind

__all__ = [
    "KINDS",
    "LEDGER_TITLE",
    "FactLedger",
    "extract_facts",
    "ledger_section",
]

# Every kind, in the order a ledger section lists them (most important first).
KINDS = tuple(FactKind)
LEDGER_TITLE = "## Ledger (facts restored by validation)"

MAX_ERRORS = 20  # the most recent distinct ones: a log of 500 errors is not 500 facts
MAX_NOTABLE = 100  # entities, dates and numbers, each: the most frequent, then recent
REQUEST_CHARS = 300
PHRASE_WORDS = 12
ERROR_WORDS = 15


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


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
_NOT_REQUIREMENT = _word_set(
    "UTF UCS SHA MD CRC AES RSA DES ECDSA ISO IEC IEEE ANSI ASCII LATIN CP WINDOWS WIN "
    "HTTP HTTPS TLS SSL IPV IP TCP UDP WCAG ECMA ES GPT BERT LLAMA COVID SARS GPL LGPL "
    "AGPL BSD CC PKCS DDR LTE USB PCI FIPS HDR MPEG ARM ARMV AMD INTEL BASE INT UINT "
    "FLOAT MP PDF AVX SSE OAUTH SOC"
)

# --- file paths --------------------------------------------------------------------------
_EXTENSIONS = (
    "py|pyi|pyx|ipynb|js|mjs|cjs|jsx|ts|tsx|go|templ|rs|java|kt|kts|scala|c|h|cc|cpp|cxx|"
    "hpp|cs|rb|php|swift|lua|pl|sh|bash|zsh|fish|ps1|nix|md|mdx|rst|txt|adoc|json|jsonl|"
    "yaml|yml|toml|ini|cfg|conf|env|xml|html|htm|css|scss|sass|less|vue|svelte|sql|csv|"
    "tsv|lock|mod|sum|proto|graphql|gql|tf|hcl|gradle|mk|cmake|dockerfile|log|patch|diff|"
    "gz|zip|tar|pdf|png|jpg|jpeg|gif|svg|ico|webp|wasm|db|sqlite|bin"
)
_PATH_HINT = re.compile(r"/(?=[\w.~@+-])|\.(?:" + _EXTENSIONS + r")(?![\w/@+-])")
_PATH_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@+~/-")
_PATH = re.compile(
    r"(?<![\w/.~@:+*\\-])"
    r"((?:~?/)?[\w.@+-]+(?:/[\w.@+-]+)+/?|\w[\w.@+-]*\.(?:" + _EXTENSIONS + r"))"
    r"(?![\w/@+-]|\.\w|\()"
)
_EXTENSION_END = re.compile(r"\w\.(?:" + _EXTENSIONS + r")$")
_NOT_FILE = _word_set(
    "node.js next.js vue.js nuxt.js express.js react.js three.js d3.js chart.js alpine.js "
    "ember.js angular.js backbone.js"
)
_DOMAIN_FIRST = re.compile(r"^[\w-]+\.(?:com|org|net|io|dev|app|ai|co|gov|edu|so|sh)/")

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
_NOISE = (
    "<command-name>",
    "<command-message>",
    "<local-command-stdout>",
    "<local-command-stderr>",
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
_DIGITS = re.compile(r"\d+")
# Lines that mention errors without being one: structured log records and timestamps
# (a passing test logs "level=ERROR msg=..."), and a command's help ("--log-failed ...").
_LOG_LINE = re.compile(
    r"^\s*(?:time=|level=|\d{4}-\d\d-\d\d[T ]\d\d:|\[\d\d:\d\d|-{1,2}[a-z][\w-]*\s)"
)
# A run that says it passed and names no failure: its "error" words are test fixtures.
_PASSED = re.compile(r"\bPASS\b|^ok\s+\S+|\b\d+ passed\b|\bBUILD SUCCESS|All tests passed", re.M)
_FAILED_RUN = re.compile(
    r"\bFAIL(?:ED)?\b|\b\d+ failed\b|Traceback \(most|panic:|exit status [1-9]"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# --- entities, dates, numbers ------------------------------------------------------------
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)"
)
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
_NUMBER_PARTS = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|[%$€£×/]")
_UNIT_SHAPES = {
    **dict.fromkeys(_word_set("h hr hrs hour hours"), "h"),
    **dict.fromkeys(_word_set("s sec secs second seconds"), "s"),
    **dict.fromkeys(_word_set("m min mins minute minutes"), "min"),
    **dict.fromkeys(_word_set("d day days"), "d"),
    **dict.fromkeys(_word_set("ms millisecond milliseconds"), "ms"),
    **dict.fromkeys(_word_set("req reqs request requests"), "req"),
    **dict.fromkeys(_word_set("per /"), "/"),
    **{unit + "s": unit for unit in _word_set("week month year token user seat attempt")},
    "percent": "%",
    "retries": "retry",
}
_NAME = r"[A-Z](?:[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*|(?:-[A-Za-z0-9]+)+)"  # not "I" or "A"
_CAPITALISED = re.compile(rf"(?=[A-Z])\b{_NAME}(?: {_NAME}){{0,4}}")
# Auth0, ClickHouse, PostgreSQL, OAuth: a lowercase letter, and a capital or a digit
# after the first letter.
_PRODUCT = re.compile(r"(?=\S*[a-z])\S\S*?[A-Z0-9]")
# Two humps make an identifier (NewConfigWizard); a number after a dash, an id (Task-85).
_IDENTIFIER = re.compile(r"[a-z][A-Z][A-Za-z0-9]*[a-z][A-Z]|\b[A-Za-z]+-\d+\b")
# "**Fixed Bug**: …" and "3. Files and Code Sections:" label a list, they name nothing.
_LABEL = re.compile(
    r"^\s*(?:[-*+•]\s+|\d{1,3}[.)]\s+)?(?:\*\*[^*\n]+\*\*:?|[^.!?:\n]{1,60}:[ \t]*$)", re.M
)
_NOT_ENTITY = _word_set(
    "The A An This That These Those Our Your My We I It Its If When What Which Who How "
    "Why Where In On At For From To With And But Or So As By Also Then Now Let Here There "
    "Yes No Please Thanks Thank Hi Hello Hey OK Okay Note Next First Second Third Finally "
    "All Each Every Some Any Both Once After Before Until While Since Because Do Does Did "
    "Is Are Was Were Be Can Could Should Would Will May Might Must Not Just Only Still Even "
    "Great Good Perfect Done Sure Well Oh Ok They Them Their He She His Her You Added Fixed "
    "Updated Created Removed Found Use Using Run Running See Check Make Add Fix Update "
    "Create Remove Set Get New Old True False None Null Nil Error Warning Todo Summary Step "
    "Task Issue Issues Status Result Results Total Analysis Monday Tuesday Wednesday "
    "Thursday Friday Saturday Sunday January February March April June July August "
    "September October November December Today Tomorrow Yesterday"
)


class FactLedger:
    """Facts deduplicated by (kind, case-folded key), each with where it first appeared.

    Resumable: ``feed`` items as they come (their indices continuing from ``start``),
    ``result`` at any time (it changes nothing), and ``to_data`` / ``from_data`` to keep
    the state between two processes (a hook reads only what was appended). Feeding a
    context in parts gives the facts of feeding it whole.
    """

    def __init__(self) -> None:
        self.facts: dict[tuple[str, str], Fact] = {}
        self.offsets: dict[int, int] = {}  # id(fact) -> where in its item it starts
        # "we decided to …" in prose counts only in sessions that mark no decision
        # explicitly; where they do, the marked line records the same decision.
        self.prose_decisions: list[tuple[Fact, int]] = []
        self.errors: dict[str, list[Any]] = {}  # shape -> [last item, fact]
        self.notable: dict[FactKind, dict[str, list[Any]]] = {
            FactKind.ENTITY: {},
            FactKind.DATE: {},
            FactKind.NUMBER: {},
        }
        self.todos: tuple[int, list[str]] | None = None  # the latest TodoWrite list
        self.checkboxes: tuple[int, list[str]] | None = None  # the latest "- [ ]" list

    def _new(self, kind: FactKind, key: str, text: str, item: int, at: int) -> Fact:
        fact = Fact(kind, key, _clip(text), item)
        self.offsets[id(fact)] = at
        return fact

    def add(self, kind: FactKind, key: str, text: str, item: int, at: int = 0) -> None:
        key = key.strip()
        if key and (kind, key.casefold()) not in self.facts:
            self.facts[kind, key.casefold()] = self._new(kind, key, text, item, at)

    def error(self, key: str, text: str, item: int, at: int) -> None:
        # Distinct by shape: "seed#2 (0.00s)" and "seed#5 (0.01s)" are one failure.
        shape = _DIGITS.sub("0", key.casefold())
        seen = self.errors.get(shape)
        if seen is None:
            self.errors[shape] = [item, self._new(FactKind.ERROR, key, text, item, at)]
        else:
            seen[0] = item

    def notice(self, kind: FactKind, key: str, text: str, item: int, at: int) -> None:
        key = " ".join(key.split())
        table = self.notable[kind]
        # "24h", "24 hours" and "24-hour" are one number; the first spelling is its key.
        shape = _number_shape(key) if kind == FactKind.NUMBER else key.casefold()
        seen = table.get(shape)
        if seen is None:
            table[shape] = [1, item, self._new(kind, key, text, item, at)]
        else:
            seen[0] += 1
            seen[1] = item

    def feed(self, items: Sequence[Item], start: int = 0) -> FactLedger:
        """Add the facts of ``items``, the first of which is item ``start`` of the context."""
        for index, item in enumerate(items, start):
            _feed(self, item, index)
        return self

    def result(self) -> list[Fact]:
        """The facts so far, in order of appearance (the ledger itself is unchanged)."""
        found = dict(self.facts)
        offsets = dict(self.offsets)
        if not any(kind == FactKind.DECISION for kind, _ in found):
            for fact, at in self.prose_decisions:
                if (fact.kind, fact.key.casefold()) not in found:
                    found[fact.kind, fact.key.casefold()] = fact
                    offsets[id(fact)] = at
        facts = _without_redundant_files(list(found.values()))
        for todo_list in (self.todos, self.checkboxes):
            if todo_list is not None:
                index, contents = todo_list
                seen: set[str] = set()
                for content in contents:
                    key = " ".join(content.split())
                    if _has_word(key) and key.casefold() not in seen:
                        seen.add(key.casefold())
                        todo = Fact(FactKind.TODO, key, _clip(content), index)
                        offsets[id(todo)] = len(seen)
                        facts.append(todo)
        recent = sorted(self.errors.values(), key=lambda e: e[0], reverse=True)
        facts.extend(e[1] for e in recent[:MAX_ERRORS])
        for table in self.notable.values():
            ranked = sorted(table.values(), key=lambda e: (e[0], e[1]), reverse=True)
            facts.extend(e[2] for e in ranked[:MAX_NOTABLE])
        facts.sort(key=lambda f: (f.item, offsets.get(id(f), 0)))
        return facts

    def to_data(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (``from_data`` reads it back)."""

        def fact(f: Fact) -> list[Any]:
            return [FactKind(f.kind).value, f.key, f.text, f.item, self.offsets.get(id(f), 0)]

        return {
            "facts": [fact(f) for f in self.facts.values()],
            "prose_decisions": [[*fact(f)[:4], at] for f, at in self.prose_decisions],
            "errors": {shape: [e[0], fact(e[1])] for shape, e in self.errors.items()},
            "notable": {
                FactKind(kind).value: {s: [e[0], e[1], fact(e[2])] for s, e in table.items()}
                for kind, table in self.notable.items()
            },
            "todos": list(self.todos) if self.todos else None,
            "checkboxes": list(self.checkboxes) if self.checkboxes else None,
        }

    @classmethod
    def from_data(cls, data: Any) -> FactLedger:
        """The ledger ``to_data`` wrote; ValueError when ``data`` is not one."""
        ledger = cls()

        def fact(row: Any) -> Fact:
            kind, key, text, item, at = row
            made = Fact(FactKind(kind), str(key), str(text), int(item))
            ledger.offsets[id(made)] = int(at)
            return made

        def todo_list(value: Any) -> tuple[int, list[str]] | None:
            return None if value is None else (int(value[0]), [str(c) for c in value[1]])

        try:
            for row in data["facts"]:
                made = fact(row)
                ledger.facts[made.kind, made.key.casefold()] = made
            for row in data["prose_decisions"]:
                made = fact(row)
                ledger.prose_decisions.append((made, ledger.offsets.pop(id(made))))
            for shape, (item, row) in data["errors"].items():
                ledger.errors[str(shape)] = [int(item), fact(row)]
            for kind, table in data["notable"].items():
                ledger.notable[FactKind(kind)] = {
                    str(shape): [int(n), int(item), fact(row)]
                    for shape, (n, item, row) in table.items()
                }
            ledger.todos = todo_list(data["todos"])
            ledger.checkboxes = todo_list(data["checkboxes"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a fact ledger: {exc}") from exc
        return ledger


def _number_shape(key: str) -> str:
    parts = _NUMBER_PARTS.findall(key.casefold().replace(",", ""))
    return " ".join(_UNIT_SHAPES.get(p, p) for p in parts)


def _without_redundant_files(facts: list[Fact]) -> list[Fact]:
    """Drop a file fact that a longer one already covers: ``wizard.go`` or
    ``internal/config/wizard.go`` next to ``/home/x/internal/config/wizard.go``."""
    suffixes: set[str] = set()
    for fact in facts:
        if fact.kind == FactKind.FILE:
            parts = fact.key.rstrip("/").split("/")
            suffixes.update("/".join(parts[i:]) for i in range(1, len(parts)))
    return [f for f in facts if f.kind != FactKind.FILE or f.key.rstrip("/") not in suffixes]


def _clip(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _has_word(text: str) -> bool:
    return WORD.search(text) is not None


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


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


# --- extraction --------------------------------------------------------------------------


def extract_facts(items: Sequence[Item]) -> list[Fact]:
    """Everything a compaction must not lose, deduplicated by (kind, key), in order of
    first appearance; ``Fact.item`` is the index of the item it came from."""
    return FactLedger().feed(items).result()


def _feed(ledger: FactLedger, item: Item, index: int) -> None:
    """The facts of one item, the ``index``-th of its context."""
    kind = item.kind
    text = item.text
    if kind in _SKIPPED or not text:
        return
    if kind is Kind.TOOL_CALL:
        _from_tool_call(ledger, item, index)
    elif kind in _TEXT_KINDS:
        if kind is Kind.USER_TEXT:
            if any(marker in text for marker in _NOISE):
                return
            if "<system-reminder>" in text:
                text = _REMINDER.sub("", text)
            if item.role is Role.USER and not text.lstrip().startswith(_CONTINUED):
                request = " ".join(text.split())
                if len(request) > REQUEST_CHARS:
                    request = request[:REQUEST_CHARS].rsplit(" ", 1)[0]
                if _has_word(request):
                    ledger.add(FactKind.REQUEST, request, text, index)
                _instructions(ledger, text, index)
        _from_text(ledger, text, index, kind)
    elif kind is Kind.AGENT_REPORT:
        # A sub-agent's report: its concrete files are facts, its prose is tool output.
        for path, line, at in _paths(text):
            if "/" in path and _EXTENSION_END.search(path):
                ledger.add(FactKind.FILE, path, line, index, at)
    elif kind is Kind.TOOL_RESULT:
        _from_result(ledger, item, index)
    if kind in _OUTPUT_KINDS or item.tool in EDIT_TOOLS:
        return  # ids in a listing or in a file's content were not set in this session
    if kind in _TEXT_KINDS and "```" in text:
        text = _FENCE.sub("", text)  # arr[MAX-1] in a code block is no id
    for key, at in _requirement_ids(text):
        ledger.add(FactKind.REQUIREMENT, key, _line_at(text, at), index, at)


def _instructions(ledger: FactLedger, text: str, index: int) -> None:
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
        if _has_word(key):
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


def _from_tool_call(ledger: FactLedger, item: Item, index: int) -> None:
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


def _from_result(ledger: FactLedger, item: Item, index: int) -> None:
    if item.tool in QUIET_TOOLS:  # their "Error" is code, or a slip
        return
    text = _ANSI.sub("", item.text) if "\x1b" in item.text else item.text
    block = item.raw.get("block") if isinstance(item.raw, dict) else None
    failed = isinstance(block, dict) and bool(block.get("is_error"))
    if not failed and _PASSED.search(text) and not _FAILED_RUN.search(text):
        return
    found = False
    line_end = -1
    for match in _ERROR.finditer(text):
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


def _error(ledger: FactLedger, line: str, index: int, at: int) -> bool:
    if _NOT_ERROR.search(line) or _LOG_LINE.match(line):
        return False
    line = line.replace("<tool_use_error>", "").replace("</tool_use_error>", "")
    words = line.split()[:ERROR_WORDS]
    key = " ".join(words)[:200]
    if len(words) < 2 or not _has_word(key):
        return False
    ledger.error(key, line, index, at)
    return True


def _from_text(ledger: FactLedger, text: str, index: int, kind: Kind) -> None:
    if any(hint in text for hint in _HINTS):
        _markers(ledger, text, index, kind)
    for path, line, at in _paths(text):
        ledger.add(FactKind.FILE, path, line, index, at)
    prose = _FENCE.sub("", text) if "```" in text else text
    for match in _DATE.finditer(prose):
        start = match.start()
        ledger.notice(FactKind.DATE, match.group(0), _line_at(prose, start), index, start)
    for match in _NUMBER.finditer(prose):
        at = match.start()
        ledger.notice(FactKind.NUMBER, match.group(0), _line_at(prose, at), index, at)
    _entities(ledger, _LABEL.sub("", prose), index)


def _paths(text: str) -> Iterator[tuple[str, str, int]]:
    # From each "/" or ".ext" back to where its token starts, then the full pattern there.
    done = 0
    for hint in _PATH_HINT.finditer(text):
        start = hint.start()
        if start < done:
            continue
        while start > 0 and text[start - 1] in _PATH_CHARS:
            start -= 1
        match = _PATH.match(text, start)
        if match is None:
            done = hint.end()
            continue
        done = match.end()
        path = match.group(1).rstrip(".").lstrip("@")  # "@src/app.py" mentions a file
        if _is_path(path, text, start):
            yield path, _line_at(text, start), start


def _is_path(path: str, text: str, start: int) -> bool:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if name.casefold() in _NOT_FILE:
        return False
    if "/" not in path:
        return True
    if not any(c.isalpha() for c in path) or path.startswith(("/dev/", "/proc/")):
        return False  # 24/7, 07/21/2025, /dev/null
    if _DOMAIN_FIRST.match(path):
        return False  # github.com/owner/repo: a module or a URL without its scheme
    if _EXTENSION_END.search(path):
        return True
    if path.startswith(("~/", "./", "../")):
        return True
    if path.startswith("/"):
        return path.count("/") >= 2 and "/" not in (path[1], path[-1])
    # Relative and no extension: a path when it says so (a trailing slash or a code
    # span), not "and/or", "req/min", "client/server" or "name/package/props".
    if path.endswith("/"):
        return True
    quoted = start > 0 and text[start - 1] == "`"
    return quoted and not all(part[:1].isupper() for part in path.split("/"))  # Get/Set


def _markers(ledger: FactLedger, text: str, index: int, kind: Kind) -> None:
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


def _marked_line(ledger: FactLedger, bare: str, line: str, index: int, at: int) -> None:
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
        start = bare.rfind(". ", 0, match.start())
        phrase = _phrase(bare[start + 2 if start >= 0 else 0 :])
        ledger.prose_decisions.append((Fact(FactKind.DECISION, phrase, _clip(line), index), at))


def _entities(ledger: FactLedger, text: str, index: int) -> None:
    headings = "#" in text
    for match in _CAPITALISED.finditer(text):
        start, end = match.span()
        phrase = match.group(0)
        mid = _mid_sentence(text, start)
        if not mid and " " not in phrase and not _PRODUCT.match(phrase):
            continue  # the common case, a capital that opens a sentence: "Thanks", "We"
        if (start and text[start - 1] in "`.'\"") or (end < len(text) and text[end] in "(`"):
            continue  # code or a quoted string: `PluginManager`, obj.Method, Build(
        if headings and text.startswith("#", text.rfind("\n", 0, start) + 1):
            continue  # a heading: Title Case by convention
        words = phrase.split(" ")
        if not mid and not _PRODUCT.match(words[0]):
            words.pop(0)
        while words and words[0] in _NOT_ENTITY:
            words.pop(0)
        while words and words[-1] in _NOT_ENTITY:
            words.pop()
        if not words or _IDENTIFIER.search(phrase):
            continue  # NewConfigWizardWithProjectDir is an identifier, Task-85 an id
        if len(words) == 1:
            word = words[0]
            if len(word) < 3 or word.isupper() or (word[:-1].isupper() and word[-1] == "s"):
                continue  # acronyms and their plurals (API, JWTs) are not names
            if not (_PRODUCT.match(word) or (mid and phrase == word)):
                continue
        elif not (mid or any(_PRODUCT.match(w) or w.isupper() for w in words)):
            continue  # "Hash Caching Optimization" opening a list item is a title
        ledger.notice(FactKind.ENTITY, " ".join(words), _line_at(text, start), index, start)


def _mid_sentence(text: str, start: int) -> bool:
    """After a lowercase word ("with Stripe", "Google, Microsoft"), not after ". " or "- "."""
    if start < 2 or text[start - 1] != " ":
        return False
    before = text[start - 2]
    if before == ",":
        return start >= 3 and text[start - 3].islower()
    return before.islower()


# --- restoring ---------------------------------------------------------------------------

_LIST_LABELS = {
    FactKind.REQUIREMENT: "Requirements",
    FactKind.FILE: "Files",
    FactKind.DATE: "Dates",
    FactKind.NUMBER: "Numbers",
    FactKind.ENTITY: "Entities",
}


def _shortest(key: str) -> str:
    """The shortest prefix of ``key`` that holds 60% of its distinct words of 4+ letters."""
    wanted = set(WORD.findall(key.casefold()))
    seen: set[str] = set()
    for match in WORD.finditer(key.casefold()):
        seen.add(match.group(0))
        if len(seen) >= WORD_SHARE * len(wanted) - 1e-9:
            end = match.end()
            return key if len(key) - end < 12 else key[:end] + "…"
    return key


def _entry(fact: Fact) -> str:
    key = " ".join(fact.key.split())
    if fact.kind == FactKind.REQUEST:
        key = _shortest(key)
    elif fact.kind == FactKind.DECISION:
        mark = next((m for m in ("✅", "❌") if m in fact.text), "")
        key = f"{mark} {key}".strip()
    return f"- {fact.kind}: {key}"


def ledger_section(facts: Sequence[Fact], max_chars: int | None = None) -> str:
    """A compact markdown section that makes each of ``facts`` present again.

    One list line each for ids, files, dates, numbers and entities; one line per
    decision, question, todo, request (its shortest prefix that still counts) and error.
    With ``max_chars``, the most important kinds go first and what does not fit is left
    out (check again to see what is still missing). Empty when there is nothing to say.
    """
    by_kind: dict[FactKind, list[Fact]] = {}
    for fact in facts:
        by_kind.setdefault(fact.kind, []).append(fact)
    lines = [LEDGER_TITLE]
    room = (max_chars if max_chars is not None else 1 << 62) - len(LEDGER_TITLE)
    for kind in sorted(by_kind, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS)):
        if kind in _LIST_LABELS:
            keys = list(dict.fromkeys(f.key for f in by_kind[kind]))
            line = f"{_LIST_LABELS[kind]}: "
            taken = 0
            while taken < len(keys):
                addition = (", " if taken else "") + keys[taken]
                if len(line) + len(addition) + 1 > room:
                    break
                line += addition
                taken += 1
            if taken:
                lines.append(line)
                room -= len(line) + 1
            continue
        for fact in by_kind[kind]:
            entry = _entry(fact)
            if len(entry) + 1 <= room:
                lines.append(entry)
                room -= len(entry) + 1
    return "\n".join(lines) if len(lines) > 1 else ""
