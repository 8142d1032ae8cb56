"""The fact ledger: what a compaction must not lose, found before it and checked after.

This module owns three things: finding facts in items (requirement ids, decisions, open
questions, file paths, the latest todo list, errors, user requests, named entities,
dates and numbers with units), telling whether each fact survived in a compacted text,
and writing the short markdown section that puts missing facts back. Pure functions over
strings: no I/O, no token counting, no knowledge of the pipeline's steps. Precision
matters as much as recall: every false fact is a line a summary must carry forever.

System prompts and instructions are not read: a compaction always keeps them, so their
facts cannot be lost, and their templates (``REQ-<MODULE>-<NNN>``) are not facts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from ..model import Item, Kind, Role
from .types import Fact, FactReport

__all__ = ["KINDS", "check_facts", "extract_facts", "fact_present", "ledger_section", "text_words"]

# Every kind, in the order a ledger section lists them (most important first).
KINDS = (
    "requirement",
    "decision",
    "question",
    "todo",
    "request",
    "file",
    "error",
    "date",
    "number",
    "entity",
)

MAX_ERRORS = 20
MAX_NOTABLE = 100  # entities, dates and numbers, each
REQUEST_CHARS = 300
PHRASE_WORDS = 12
ERROR_WORDS = 15
WORD_SHARE = 0.6  # the benchmark: ≥ 60% of the distinct words of 4+ letters

_WORD_KINDS = frozenset({"decision", "question", "todo", "request", "error"})
_SKIPPED = frozenset({Kind.SYSTEM_PROMPT, Kind.INSTRUCTION, Kind.THINKING, Kind.IMAGE})
_TEXT_KINDS = frozenset({Kind.USER_TEXT, Kind.ASSISTANT_TEXT, Kind.SUMMARY})
_PATH_KEYS = ("file_path", "notebook_path", "path")
# Results of these tools echo file content or search hits: "Error" in them is code.
_QUIET_TOOLS = frozenset(
    {
        "Edit",
        "MultiEdit",
        "Write",
        "NotebookEdit",
        "Read",
        "NotebookRead",
        "Grep",
        "Glob",
        "LS",
        "TodoWrite",
        "WebFetch",
        "WebSearch",
    }
)

_WORD = re.compile(r"[^\W\d_]{4,}")


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# --- requirement ids ---------------------------------------------------------------------
_REQUIREMENT = re.compile(
    r"(?<![\w/.-])([A-Z]{2}[A-Z0-9]{0,8})((?:-[A-Z][A-Z0-9]{0,9})*-\d{1,6})(?![\w-]|\.\d)"
)
# Standards, encodings and model names that look like ids but are not.
_NOT_REQUIREMENT = _word_set(
    "UTF UCS SHA MD CRC AES RSA DES ECDSA ISO IEC IEEE ANSI ASCII LATIN CP WINDOWS WIN "
    "HTTP HTTPS TLS SSL IPV IP TCP UDP WCAG ECMA ES GPT BERT LLAMA COVID SARS GPL LGPL "
    "AGPL BSD CC PKCS DDR LTE USB PCI FIPS HDR MPEG H X ARM ARMV AMD INTEL BASE INT UINT "
    "FLOAT MP PDF AVX SSE OAUTH SOC"
)

# --- file paths --------------------------------------------------------------------------
_EXTENSIONS = (
    "py|pyi|pyx|ipynb|js|mjs|cjs|jsx|ts|tsx|go|templ|rs|java|kt|kts|scala|c|h|cc|cpp|cxx|hpp|"
    "cs|rb|php|swift|lua|pl|sh|bash|zsh|fish|ps1|nix|md|mdx|rst|txt|adoc|json|jsonl|yaml|yml|"
    "toml|ini|cfg|conf|env|xml|html|htm|css|scss|sass|less|vue|svelte|sql|csv|tsv|lock|mod|"
    "sum|proto|graphql|gql|tf|hcl|gradle|mk|cmake|dockerfile|log|patch|diff|gz|zip|tar|pdf|"
    "png|jpg|jpeg|gif|svg|ico|webp|wasm|db|sqlite|bin"
)
_PATH = re.compile(
    r"(?<![\w/.~@:+\\-])"
    r"((?:~?/)?[\w.@+-]+(?:/[\w.@+-]+)+/?|[\w][\w.@+-]*\.(?:" + _EXTENSIONS + r"))"
    r"(?![\w/@+-]|\.\w|\()"
)
_EXTENSION_END = re.compile(r"\.(?:" + _EXTENSIONS + r")$")
_NOT_FILE = _word_set(
    "node.js next.js vue.js nuxt.js express.js react.js three.js d3.js chart.js "
    "alpine.js ember.js angular.js backbone.js socket.io"
)
_DOMAIN_FIRST = re.compile(r"^[\w-]+\.(?:com|org|net|io|dev|app|ai|co|gov|edu|so|sh)/")

# --- line markers ------------------------------------------------------------------------
_LIST_PREFIX = re.compile(r"^\s*(?:>\s*)*(?:[-*+•]\s+|\d{1,3}[.)]\s+)?(?:\[[ xX]\]\s+)?")
_IS_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+\S")
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+(.*)|\*\*([^*]+)\*\*:?\s*)$")
_HINT = re.compile(r"(?i)decision|decided|go with|approved|✅|❌|question|\[[ x]\]")
_DECISION = re.compile(
    r"^(?:decision(?:\s*#?\d+)?|decided|approved|final decision)\s*[:\-–—]\s*(.+)$", re.I
)
_DECISION_MARK = re.compile(r"^(✅|❌)\s*(.+)$")
_DECISION_SENTENCE = re.compile(
    r"(?i)\b(?:we(?:'ll| will| are going to) go with|we(?:'ve| have)? decided|"
    r"it was decided|(?:the )?decision is)\b"
)
_DESCOPED = re.compile(r"(?i)out of (?:the )?(?:mvp )?scope|descoped|rejected|won't do|not doing")
_DECISIONS_HEADER = re.compile(
    r"(?i)^(?:key |final |architectural |technical )?decisions(?: made)?:?$"
)
_QUESTION = re.compile(r"(?i)^open question(s?)\s*(?:\(\d+\))?\s*[:\-–—]\s*(.*)$")
_QUESTION_LINE = re.compile(r"\?[\s*)]*$|\?\s*\([^)]*\)[.\s]*$")
_RECAP = re.compile(r"(?i)^(?:none|no\b|n/a|\d+\b)")
_CHECKBOX = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+\[([ xX])\]\s+(.+?)\s*$", re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'`(])")
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|\Z)", re.S)
_NOISE = (
    "<command-name>",
    "<command-message>",
    "<local-command-stdout>",
    "<local-command-stderr>",
    "[Request interrupted by user",
    "Caveat: The messages below were generated",
)
_CONTINUED = "This session is being continued from a previous conversation"

# --- errors ------------------------------------------------------------------------------
_ERROR = re.compile(
    r"\b(?:\w*Error\b|ERROR\b|error(?=[:\[])|\w*Exception\b|Traceback\b|failed\b|Failed\b|"
    r"FAIL(?:ED|URE)?\b|panic:)"
)
_NOT_ERROR = re.compile(r"(?i)\b(?:0|no|zero|without) (?:errors?|failures?|failed)\b|✅")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# --- entities, dates, numbers ------------------------------------------------------------
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)"
)
_DATE = re.compile(
    r"(?<![\w/-])(?:"
    r"\d{4}-\d{2}-\d{2}(?!\d)"
    r"|\d{1,2}/\d{1,2}/\d{4}(?![\d/])"
    rf"|{_MONTH}\.?\s\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s\d{{4}}\b)?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s(?:of\s)?{_MONTH}\b(?:,?\s\d{{4}}\b)?"
    rf"|{_MONTH}\s\d{{4}}\b"
    r")"
)
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_UNIT = (
    r"(?:ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|"
    r"years?|[KMGT]i?B|kB|bytes?|tokens?|req(?:uest)?s?|rps|qps|attempts?|retries|tries|users?|"
    r"seats?|tenants?|customers?|employees?|accounts?|calls|events?|messages?|USD|EUR|GBP|"
    r"dollars?|euros?|percent|characters|chars|words|lines|files|tests)"
)
_PER = r"(?:\s?(?:/|per\s)\s?(?:s|sec|second|min|minute|h|hr|hour|day|week|month|year|user|seat|tenant|key))?"
_NUMBER = re.compile(
    r"(?<![\w.$€£/-])(?:"
    rf"[$€£]\s?{_NUM}(?:\s?(?:[kKmMbB]|million|billion|thousand)\b)?"
    rf"|{_NUM}\s?%"
    rf"|{_NUM}-(?:second|minute|hour|day|week|month|year|token|user|seat|line)s?\b"
    rf"|{_NUM}(?:[kKM])?\s?{_UNIT}\b{_PER}"
    rf"|{_NUM}(?:ms|s|h|d|m|k|K|M|x|×)\b"
    r")"
)
_NAME = r"[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*"
_CAPITALISED = re.compile(rf"\b{_NAME}(?: {_NAME}){{0,4}}")
_ACRONYMS = re.compile(r"^[A-Z]{2,}s$")  # JWTs, PDFs: plurals, not names
_MIXED_CASE = re.compile(r"[A-Z0-9]")  # after the first letter: ClickHouse, Auth0
_LABEL = re.compile(r"^\s*(?:[-*+•]\s+|\d{1,3}[.)]\s+)?\*\*[^*\n]+\*\*:?", re.M)
_NOT_ENTITY = _word_set(
    "The A An This That These Those Our Your My We I It Its If When What Which Who How "
    "Why Where In On At For From To With And But Or So As By Also Then Now Let Let's "
    "Here There Yes No Please Thanks Thank Hi Hello Hey OK Okay Note Next First Second "
    "Third Finally All Each Every Some Any Both Once After Before Until While Since "
    "Because Do Does Did Is Are Was Were Be Can Could Should Would Will May Might Must "
    "Not Just Only Still Even Great Good Perfect Done Sure Well Oh Ok They Them Their He "
    "She His Her You I'm I'll I've I'd It's That's There's Let Added Fixed Updated "
    "Created Removed Found Use Using Run Running See Check Make Add Fix Update Create "
    "Remove Set Get New Old True False None Null Nil Error Warning Todo TODO Summary "
    "Step Task Issue Issues Status Result Results Total Analysis Monday Tuesday "
    "Wednesday Thursday Friday Saturday Sunday January February March April June July "
    "August September October November December Today Tomorrow Yesterday"
)


def text_words(text: str) -> set[str]:
    """The distinct words of 4+ letters of ``text``, case-folded: ``fact_present``'s ``words``."""
    return set(_WORD.findall(text.casefold()))


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _clip_words(text: str, limit: int) -> str:
    words = text.split()
    if len(words) <= limit:
        return " ".join(words)
    kept = words[:limit]
    # A parenthesis cut open reads badly; drop it when enough is left before it.
    opened = max(
        (i for i, w in enumerate(kept) if "(" in w and ")" not in " ".join(kept[i:])), default=-1
    )
    if opened >= 3:
        kept = kept[:opened]
    return " ".join(kept).rstrip(",;:—–-")


def _phrase(text: str, limit: int = PHRASE_WORDS) -> str:
    """A short key: markdown and markers stripped, first sentence, at most ``limit`` words."""
    text = _collapse(text.replace("**", "").replace("__", "").replace("`", ""))
    text = text.lstrip("✅❌☐☑✔✗ -:").strip()
    text = _SENTENCE_END.split(text, maxsplit=1)[0]
    return _clip_words(text, limit).rstrip(".,;: ")


def _has_word(text: str) -> bool:
    return _WORD.search(text) is not None


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


def _is_error_result(item: Item) -> bool:
    raw = item.raw
    if isinstance(raw, dict):
        block = raw.get("block")
        if isinstance(block, dict):
            return bool(block.get("is_error"))
    return False


def _valid_path(path: str, text: str, start: int) -> str | None:
    path = path.rstrip(".")
    if "/" not in path:
        return None if path.casefold() in _NOT_FILE else path
    segments = [s for s in path.split("/") if s]
    if not segments or not any(any(c.isalpha() for c in s) for s in segments):
        return None  # 24/7, 07/21/2025
    if path.startswith(("/dev/", "/proc/")) or _DOMAIN_FIRST.match(path):
        return None
    if _EXTENSION_END.search(path) or path.startswith(("/", "~/", "./", "../")):
        return path if path.count("/") >= 2 or not path.startswith("/") else None
    # Relative, no extension: a path when it says so (trailing slash, two slashes or a
    # code span), not "and/or", "req/min" or "client/server".
    if path.endswith("/") or path.count("/") >= 2 or (start > 0 and text[start - 1] == "`"):
        return path
    return None


def _paths(text: str) -> Iterator[str]:
    for match in _PATH.finditer(text):
        path = _valid_path(match.group(1), text, match.start())
        if path:
            yield path


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


class _Ledger:
    """Facts in order of first appearance, deduplicated by (kind, case-folded key)."""

    def __init__(self) -> None:
        self.facts: dict[tuple[str, str], Fact] = {}
        self.errors: dict[str, list[Any]] = {}  # folded key -> [first item, last item, fact]
        self.notable: dict[str, dict[str, list[Any]]] = {"entity": {}, "date": {}, "number": {}}
        self.todos: tuple[int, list[str]] | None = None
        self.checkboxes: tuple[int, list[str]] | None = None
        # "we decided to …" in prose counts only in sessions that mark no decision
        # explicitly; where they do, the marked line records the same decision.
        self.prose_decisions: list[Fact] = []

    def add(self, kind: str, key: str, text: str, item: int) -> None:
        key = key.strip()
        if key:
            self.facts.setdefault((kind, key.casefold()), Fact(kind, key, _clip_text(text), item))

    def error(self, key: str, text: str, item: int) -> None:
        folded = key.casefold()
        seen = self.errors.get(folded)
        if seen is None:
            self.errors[folded] = [item, item, Fact("error", key, _clip_text(text), item)]
        else:
            seen[1] = item

    def notice(self, kind: str, key: str, text: str, item: int) -> None:
        key = _collapse(key)
        table = self.notable[kind]
        folded = key.casefold()
        seen = table.get(folded)
        if seen is None:
            table[folded] = [1, item, Fact(kind, key, _clip_text(text), item)]
        else:
            seen[0] += 1
            seen[1] = item

    def result(self) -> list[Fact]:
        if not any(kind == "decision" for kind, _ in self.facts):
            for fact in self.prose_decisions:
                self.add(fact.kind, fact.key, fact.text, fact.item)
        facts = list(self.facts.values())
        for todo_list in (self.todos, self.checkboxes):
            if todo_list is None:
                continue
            index, contents = todo_list
            seen: set[str] = set()
            for content in contents:
                key = _collapse(content)
                if key and key.casefold() not in seen and _has_word(key):
                    seen.add(key.casefold())
                    facts.append(Fact("todo", key, _clip_text(content), index))
        recent = sorted(self.errors.values(), key=lambda e: e[1], reverse=True)[:MAX_ERRORS]
        facts.extend(e[2] for e in recent)
        for table in self.notable.values():
            ranked = sorted(table.values(), key=lambda e: (e[0], e[1]), reverse=True)
            facts.extend(e[2] for e in ranked[:MAX_NOTABLE])
        facts.sort(key=lambda f: f.item)  # stable: order within an item is kept
        return facts


def _clip_text(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def extract_facts(items: Sequence[Item]) -> list[Fact]:
    """Everything a compaction must not lose, deduplicated by (kind, key), in order of
    first appearance; ``Fact.item`` is the index of the item it came from."""
    ledger = _Ledger()
    for index, item in enumerate(items):
        kind = item.kind
        if kind in _SKIPPED or not item.text:
            continue
        text = item.text
        if kind is Kind.TOOL_CALL:
            _from_tool_call(ledger, item, index)
        elif kind in _TEXT_KINDS:
            if kind is Kind.USER_TEXT:
                if any(marker in text for marker in _NOISE):
                    continue
                if "<system-reminder>" in text:
                    text = _REMINDER.sub("", text)
                if item.role is Role.USER and not text.lstrip().startswith(_CONTINUED):
                    request = _collapse(text)
                    if _has_word(request):
                        if len(request) > REQUEST_CHARS:
                            request = request[:REQUEST_CHARS].rsplit(" ", 1)[0]
                        ledger.add("request", request, text, index)
            _from_text(ledger, text, index, kind)
        elif kind is Kind.AGENT_REPORT:
            for path in _paths(text):
                ledger.add("file", path, _line_at(text, text.find(path)), index)
        elif kind is Kind.TOOL_RESULT:
            _from_result(ledger, item, index)
        _requirements(ledger, text, index)
    return ledger.result()


def _requirements(ledger: _Ledger, text: str, index: int) -> None:
    for match in _REQUIREMENT.finditer(text):
        if match.group(1) not in _NOT_REQUIREMENT:
            ledger.add("requirement", match.group(0), _line_at(text, match.start()), index)


def _from_tool_call(ledger: _Ledger, item: Item, index: int) -> None:
    data = _tool_input(item)
    if data is None:
        return
    if item.tool == "TodoWrite":
        todos = data.get("todos")
        if isinstance(todos, list):
            contents = [str(t.get("content", "")) for t in todos if isinstance(t, dict)]
            ledger.todos = (index, contents)
        return
    for name in _PATH_KEYS:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            ledger.add("file", value.strip(), item.text[:300], index)


def _from_result(ledger: _Ledger, item: Item, index: int) -> None:
    text = item.text
    if _is_error_result(item):
        first = next((line for line in text.splitlines() if line.strip()), "")
        key = _error_key(first)
        if key:
            ledger.error(key, first, index)
        return
    if item.tool in _QUIET_TOOLS:
        return
    line_end = -1
    for match in _ERROR.finditer(text):
        if match.start() < line_end:
            continue
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.start())
        line_end = end if end >= 0 else len(text)
        line = text[start:line_end]
        if _NOT_ERROR.search(line):
            continue
        key = _error_key(line)
        if key:
            ledger.error(key, line, index)


def _error_key(line: str) -> str:
    line = _ANSI.sub("", line).replace("<tool_use_error>", "").replace("</tool_use_error>", "")
    words = line.split()[:ERROR_WORDS]
    key = " ".join(words)[:200]
    return key if _has_word(key) else ""


def _from_text(ledger: _Ledger, text: str, index: int, kind: Kind) -> None:
    if _HINT.search(text):
        _markers(ledger, text, index, kind)
    for path in _paths(text):
        ledger.add("file", path, _line_at(text, text.find(path)), index)
    prose = _FENCE.sub("", text) if "```" in text else text
    for match in _DATE.finditer(prose):
        ledger.notice("date", match.group(0), _line_at(prose, match.start()), index)
    for match in _NUMBER.finditer(prose):
        ledger.notice("number", match.group(0), _line_at(prose, match.start()), index)
    _entities(ledger, _LABEL.sub("", prose), index)


def _markers(ledger: _Ledger, text: str, index: int, kind: Kind) -> None:
    """Decisions, open questions and checkboxes, line by line."""
    section = ""  # "decision" or "question": each list item below such a header is one
    question_heading = False  # "?"-lines below a heading about questions are questions
    checkboxes: list[str] = []
    assistant = kind is not Kind.USER_TEXT
    for raw_line in text.splitlines():
        if not raw_line.strip():
            continue
        heading = _HEADING.match(raw_line)
        if heading:
            title = (heading.group(1) or heading.group(2) or "").strip().rstrip(":").casefold()
            question_heading = assistant and "question" in title
            section = "question" if "open question" in title else ""
            if _DECISIONS_HEADER.match(title):
                section = "decision"
            continue
        box = _CHECKBOX.match(raw_line)
        if box:
            checkboxes.append(box.group(2))
        line = _LIST_PREFIX.sub("", raw_line, count=1).strip()
        bare = line.replace("**", "").replace("__", "").strip()
        if section and _IS_LIST_ITEM.match(raw_line):
            ledger.add(section, _phrase(bare), line, index)
            continue
        section = ""
        _marked_line(ledger, bare, line, index)
        if (match := _QUESTION.match(bare)) and not match.group(2).strip():
            section = "question"
        elif bare.endswith(":") and _DECISIONS_HEADER.match(bare):
            section = "decision"
        elif question_heading and _QUESTION_LINE.search(bare):
            ledger.add("question", _phrase(bare), line, index)
    if checkboxes:
        ledger.checkboxes = (index, checkboxes)


def _marked_line(ledger: _Ledger, bare: str, line: str, index: int) -> None:
    """A line that says it is a decision or an open question."""
    if match := _DECISION.match(bare):
        ledger.add("decision", _phrase(match.group(1)), line, index)
    elif match := _DECISION_MARK.match(bare):
        mark, rest = match.groups()
        # ✅ alone is a progress tick ("✅ tests pass"); a decision names its approval.
        if (mark == "✅" and "approved" in bare.casefold()) or (
            mark == "❌" and _DESCOPED.search(bare)
        ):
            ledger.add("decision", _phrase(rest), line, index)
    elif match := _QUESTION.match(bare):
        plural, rest = match.group(1), match.group(2).strip()
        # "Open questions: none" or "Open questions: 2 (tax, GraphQL)" is a recap.
        if rest and ("?" in rest or not (plural or _RECAP.match(rest))):
            ledger.add("question", _phrase(rest), line, index)
    elif match := _DECISION_SENTENCE.search(bare):
        start = bare.rfind(". ", 0, match.start())
        phrase = _phrase(bare[start + 2 if start >= 0 else 0 :])
        ledger.prose_decisions.append(Fact("decision", phrase, _clip_text(line), index))


def _entities(ledger: _Ledger, text: str, index: int) -> None:
    for match in _CAPITALISED.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        if text.startswith("#", line_start):
            continue
        words = match.group(0).split(" ")
        start = match.start()
        if not _mid_sentence(text, start) and not _MIXED_CASE.search(words[0][1:]):
            # A capital that opens a sentence says nothing: "Leave GraphQL" is GraphQL.
            start += len(words[0]) + 1
            words.pop(0)
        while words and words[0] in _NOT_ENTITY:
            start += len(words[0]) + 1
            words.pop(0)
        while words and words[-1] in _NOT_ENTITY:
            words.pop()
        if len(words) >= 2:
            if any(not w.isupper() for w in words):
                ledger.notice("entity", " ".join(words), _line_at(text, start), index)
        elif words:
            word = words[0]
            if len(word) >= 3 and not word.isupper() and not _ACRONYMS.match(word):
                if _MIXED_CASE.search(word[1:]) or _mid_sentence(text, start):
                    ledger.notice("entity", word, _line_at(text, start), index)


def _mid_sentence(text: str, start: int) -> bool:
    """After a lowercase word ("with Stripe", "Google, Microsoft"), not after ". " or "- "."""
    if start < 2 or text[start - 1] != " ":
        return False
    before = text[start - 2]
    if before == ",":
        return start >= 3 and text[start - 3].islower()
    return before.islower()


# --- checking ----------------------------------------------------------------------------


def _key_words(key: str) -> set[str]:
    return set(_WORD.findall(key.casefold()))


def _present(fact: Fact, text: str, folded: str, words: set[str]) -> bool:
    kind = fact.kind
    if kind in _WORD_KINDS:
        wanted = _key_words(fact.key)
        if not wanted:
            return fact.key.casefold() in folded
        found = len(wanted & words)
        return found >= WORD_SHARE * len(wanted) - 1e-9
    if kind == "file":
        if fact.key in text:
            return True
        base = fact.key.rstrip("/").rsplit("/", 1)[-1]
        # A directory's last segment ("tasks") is too common a word to count as a match.
        return bool(base) and "." in base and not fact.key.endswith("/") and base in text
    return fact.key.casefold() in folded


def fact_present(fact: Fact, text: str, *, words: set[str] | None = None) -> bool:
    """Is ``fact`` still in ``text``?

    Requirements, dates, numbers and entities: the key, case-insensitively. Files: the
    path or its basename, as written. Todos, requests, decisions, questions and errors:
    at least 60% of the key's distinct words of 4+ letters (the issue's benchmark rule);
    ``words`` is ``text_words(text)``, precomputed when checking many facts.
    """
    if words is None and fact.kind in _WORD_KINDS:
        words = text_words(text)
    return _present(fact, text, text.casefold(), words or set())


def check_facts(facts: Sequence[Fact], text: str) -> FactReport:
    """Which facts survived in ``text``: totals, per-kind (kept, total) and the missing."""
    folded = text.casefold()
    words = text_words(text) if any(f.kind in _WORD_KINDS for f in facts) else set()
    report = FactReport(total=len(facts))
    counts: dict[str, list[int]] = {}
    for fact in facts:
        tally = counts.setdefault(fact.kind, [0, 0])
        tally[1] += 1
        if _present(fact, text, folded, words):
            tally[0] += 1
        else:
            report.missing.append(fact)
    report.kept = report.total - len(report.missing)
    report.by_kind = {kind: (kept, total) for kind, (kept, total) in counts.items()}
    return report


# --- restoring ---------------------------------------------------------------------------

LEDGER_TITLE = "## Ledger (facts restored by validation)"
_LIST_LABELS = {
    "requirement": "Requirements",
    "file": "Files",
    "date": "Dates",
    "number": "Numbers",
    "entity": "Entities",
}


def _shortest(key: str) -> str:
    """The shortest prefix of ``key`` that holds 60% of its distinct words of 4+ letters."""
    folded = key.casefold()
    wanted = _key_words(key)
    if len(wanted) <= 3:
        return key
    seen: set[str] = set()
    for match in _WORD.finditer(folded):
        seen.add(match.group(0))
        if len(seen) >= WORD_SHARE * len(wanted) - 1e-9:
            end = match.end()
            return key if end >= len(key) - 1 else key[:end].rstrip() + "…"
    return key


def _entry(fact: Fact) -> str:
    key = _collapse(fact.key)
    if fact.kind == "request":
        key = _shortest(key)
    elif fact.kind == "decision":
        mark = next((m for m in ("✅", "❌") if m in fact.text), "")
        key = f"{mark} {key}".strip()
    return f"- {fact.kind}: {key}"


def ledger_section(facts: Sequence[Fact], max_chars: int | None = None) -> str:
    """A compact markdown section that makes each fact present again.

    Lists for ids, files, dates, numbers and entities; one line per decision, question,
    todo, request and error (a request by its shortest prefix that still passes). With
    ``max_chars``, the most important kinds go first and the rest is left out.
    """
    if not facts:
        return ""
    by_kind: dict[str, list[Fact]] = {}
    for fact in facts:
        by_kind.setdefault(fact.kind, []).append(fact)
    lines = [LEDGER_TITLE]
    used = len(LEDGER_TITLE)
    limit = max_chars if max_chars is not None else float("inf")
    kinds = [k for k in KINDS if k in by_kind] + [k for k in by_kind if k not in KINDS]
    for kind in kinds:
        group = by_kind[kind]
        if kind in _LIST_LABELS:
            line = f"{_LIST_LABELS[kind]}: "
            parts: list[str] = []
            for fact in group:
                cost = len(fact.key) + 2
                if used + 1 + len(line) + sum(len(p) + 2 for p in parts) + cost > limit:
                    break
                parts.append(fact.key)
            if parts:
                text = line + ", ".join(parts)
                lines.append(text)
                used += 1 + len(text)
            continue
        for fact in group:
            entry = _entry(fact)
            if used + 1 + len(entry) > limit:
                break
            lines.append(entry)
            used += 1 + len(entry)
    return "\n".join(lines) if len(lines) > 1 else ""
