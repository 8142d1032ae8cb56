"""The compaction pipeline: cheapest and safest steps first, stop once the target is met.

1. clear old tool results (a stub keeps tool, target, size, first line);
2. file reads → path and line range; search results → query, hit count, top hits;
3. exact and near duplicates, and failed attempts a later success superseded → stubs;
4. sub-agent reports → metadata (title, short summary, key findings, path);
5. summarize the middle (everything but the system prompt, the first M and last N
   exchanges, the latest todo list and pinned items) into one structured summary;
6. check the fact ledger taken before step 1; put missing facts back as a ledger
   section, or refuse (``on_missing_facts="rollback"``).

``compact`` is a pure function: items in, ``CompactionResult`` out. It never splits a
tool call from its result: steps 1–4 only shorten texts, and step 5 removes whole
messages between a head and a tail whose boundaries respect pairs. Token figures are
in the units of the ``count`` function given (the session's local counter).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from ..errors import CompactionError
from ..model import Item, Kind, Layer, Role
from .fact_check import FactCheck
from .facts import extract_facts, ledger_section
from .structure import (
    Message,
    call_target,
    calls_by_pair,
    head_end,
    latest_todo,
    messages_of,
    tail_start,
    tool_input,
)
from .summarize import summarize_extractive, words_of
from .types import (
    MUST_KEEP,
    Action,
    CompactionPolicy,
    CompactionResult,
    Fact,
    FactKind,
    FactReport,
)

Summarizer = Callable[[Sequence[Item], Sequence[Fact], int], str]
T = TypeVar("T")

_ERROR_RESULT = re.compile(r"^\s*(error|exception|traceback|fatal|failed)|<tool_use_error>", re.I)
_LINE_NUMBER = re.compile(r"^\s*(\d+)[→\t:]", re.M)


class _Work:
    """The context being compacted: items (copied on change), tokens, the plan so far.

    ``total`` is kept as a running sum: every step asks for it once per item it looks
    at, and summing all items each time made a plan quadratic in the session's length.
    It includes ``item_cost`` per item (a message block's framing, where the caller
    counts it). Change ``tokens`` only through the methods here, which keep ``total``
    true.
    """

    def __init__(
        self, items: Sequence[Item], count: Callable[[str], int], item_cost: int = 0
    ) -> None:
        self.items = list(items)
        self.count = count
        self.item_cost = item_cost
        self.tokens = [self._tokens_of(i) for i in self.items]
        self.total = sum(self.tokens) + item_cost * len(self.items)
        self.actions: list[Action] = []
        # The messages and the call behind each pair id depend on the items' roles,
        # kinds, message indexes and pair ids, which ``replace_text`` keeps: found
        # once, shared by every pass, forgotten when items are added or removed.
        self._messages: list[Message] | None = None
        self._calls: dict[str, int] | None = None
        # What a step made of an item (a stub, its count, its words), shared by every
        # pass: a second pass under less protection meets mostly the same items and
        # makes the same of them. Keyed by position, valid while the item there is the
        # same object (the entry holds it, so its identity cannot be reused).
        self._made: dict[tuple[str, int], tuple[Item, Any]] = {}

    def copy(self) -> _Work:
        """A fresh pass over the same items: the plan so far is not copied."""
        work = _Work.__new__(_Work)
        work.items, work.tokens = list(self.items), list(self.tokens)
        work.count, work.total, work.actions = self.count, self.total, []
        work.item_cost = self.item_cost
        work._messages, work._calls = self.messages, self.calls
        work._made = self._made
        return work

    def made(self, step: str, index: int, make: Callable[[Item], T]) -> T:
        """``make(item)`` for the item at ``index``, made once for every pass (``make``
        must depend on nothing but the item and the items it was given with)."""
        item = self.items[index]
        key = (step, index)
        known = self._made.get(key)
        if known is not None and known[0] is item:
            return cast(T, known[1])
        value = make(item)
        self._made[key] = (item, value)
        return value

    def snapshot(self) -> _Work:
        """A copy that keeps the plan so far (the actions taken), to go on from here."""
        work = self.copy()
        work.actions = list(self.actions)
        return work

    @property
    def messages(self) -> list[Message]:
        if self._messages is None:
            self._messages = messages_of(self.items)
        return self._messages

    @property
    def calls(self) -> dict[str, int]:
        if self._calls is None:
            self._calls = calls_by_pair(self.items)
        return self._calls

    def _tokens_of(self, item: Item) -> int:
        # counted here, not written onto the caller's items: compact() changes nothing
        return item.tokens if item.tokens is not None else self.count(item.text)

    def replace_text(self, index: int, text: str, action: Action) -> bool:
        """Shorten one item's text; keeps it only when it saves tokens."""
        old = self.items[index]

        def shortened(item: Item) -> tuple[str, int, Item]:
            tokens = self.count(text)
            new = dataclasses.replace(
                item, text=text, tokens=tokens, _hash=None, layer=Layer.METADATA
            )
            new.id = None  # a new item: the original goes to the archive
            return text, tokens, new

        made = self.made("replace_text", index, shortened)
        if made[0] != text:  # another step's text for the same item
            made = shortened(old)
            self._made["replace_text", index] = (old, made)
        _, tokens, new = made
        if tokens >= self.tokens[index]:
            return False
        self.items[index] = new
        action.items.append(index)
        action.tokens_before += self.tokens[index]
        action.tokens_after += tokens
        self.total += tokens - self.tokens[index]
        self.tokens[index] = tokens
        return True

    def set_item(self, index: int, item: Item, tokens: int) -> None:
        self.items[index] = item
        self.total += tokens - self.tokens[index]
        self.tokens[index] = tokens
        self._messages = self._calls = None

    def insert_item(self, index: int, item: Item, tokens: int) -> None:
        self.items.insert(index, item)
        self.tokens.insert(index, tokens)
        self.total += tokens + self.item_cost
        self._messages = self._calls = None

    def replace_all(self, items: list[Item], tokens: list[int]) -> None:
        self.items, self.tokens = items, tokens
        self.total = sum(tokens) + self.item_cost * len(items)
        self._messages = self._calls = None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())[:120]
    return ""


def _protected(
    items: Sequence[Item], messages: list[Message], policy: CompactionPolicy
) -> set[int]:
    head = head_end(items, messages, policy.keep_first)
    tail = tail_start(items, messages, policy.keep_last)
    keep = {i for m in messages[:head] for i in m.items}
    keep |= {i for m in messages[max(tail, head) :] for i in m.items}
    keep |= latest_todo(items)
    # the current task: the latest thing the user asked
    for i in range(len(items) - 1, -1, -1):
        if items[i].kind is Kind.USER_TEXT and items[i].role is Role.USER:
            keep.add(i)
            break
    keep |= {
        i
        for i, item in enumerate(items)
        if item.pinned
        or (item.kind in (Kind.SYSTEM_PROMPT, Kind.INSTRUCTION) and item.role is Role.SYSTEM)
    }
    return keep


def _result_indices(items: Sequence[Item]) -> list[int]:
    return [i for i, item in enumerate(items) if item.role is Role.TOOL]


def _step_results(
    work: _Work,
    keep: set[int],
    policy: CompactionPolicy,
    target: int,
    kinds: set[Kind],
    step: str,
    describe: str,
) -> None:
    recent = (
        set(_result_indices(work.items)[-policy.keep_results :]) if policy.keep_results else set()
    )
    action = Action(step=step, description=describe)
    for i, item in enumerate(work.items):
        if work.total <= target:
            break
        if (
            i in keep
            or i in recent
            or item.kind not in kinds
            or item.role is not Role.TOOL
            or item.tool in policy.excluded_tools
        ):
            continue
        target_text = _call_target(work, item)
        tokens = work.tokens[i]
        gist = work.made(step, i, _result_gist)
        if item.kind is Kind.FILE_READ:
            stub = f"[file read: {target_text or 'file'}, {gist}, {tokens:,} tokens; archived]"
        elif item.kind is Kind.SEARCH_RESULT:
            stub = f"[search: {item.tool} {target_text!r}, {gist}; archived]"
        else:
            stub = (
                f"[tool result cleared: {item.tool or 'tool'} {target_text}".rstrip()
                + f", {tokens:,} tokens; first line: {gist}; archived]"
            )
        work.replace_text(i, stub, action)
    if action.items:
        work.actions.append(action)


def _call_target(work: _Work, result: Item) -> str:
    """The target of the call behind ``result`` (``call_target``), found once per call."""
    at = work.calls.get(result.pair_id or "")
    if at is None:
        return call_target(None)
    return work.made("call_target", at, call_target)


def _result_gist(item: Item) -> str:
    """What a result's stub says of its text: a read's line range, a search's hits, or
    the first line."""
    if item.kind is Kind.FILE_READ:
        numbers = _LINE_NUMBER.findall(item.text)
        if numbers:
            return f"lines {int(numbers[0])}–{int(numbers[-1])}"
        return f"{len(item.text.splitlines())} lines"
    if item.kind is Kind.SEARCH_RESULT:
        hits = [ln.strip() for ln in item.text.splitlines() if ln.strip()]
        top = "; ".join(h[:80] for h in hits[:3])
        return f"{len(hits)} hits; top: {top}"
    return _first_line(item.text)


def _step_call_inputs(work: _Work, keep: set[int], policy: CompactionPolicy, target: int) -> None:
    """Large tool-call inputs (a whole file given to Write, long Edit strings): keep
    every short field, replace the long ones with their size."""
    action = Action(
        step="clear_call_inputs",
        description="shorten large tool-call inputs (file contents written, long edit strings)",
    )
    for i, item in enumerate(work.items):
        if work.total <= target:
            break
        if (
            i in keep
            or item.kind is not Kind.TOOL_CALL
            or work.tokens[i] < 200
            or item.tool in policy.excluded_tools
        ):
            continue
        stub = work.made("clear_call_inputs", i, lambda call: _short_call(call, work.count))
        if stub is not None:
            work.replace_text(i, stub, action)
    if action.items:
        work.actions.append(action)


def _short_call(item: Item, count: Callable[[str], int]) -> str | None:
    """A tool call with each long input field replaced by its size and first line."""
    data = tool_input(item)
    if not isinstance(data, dict):
        return None
    short = {}
    for key, value in data.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if len(text) > 240:
            short[key] = f"[{count(text):,} tokens archived; first line: {_first_line(text)[:80]}]"
        else:
            short[key] = value
    return f"{item.tool} {json.dumps(short, ensure_ascii=False)}"


_NEAR = 0.9  # Jaccard similarity of word sets from which two items are near duplicates


def _near_duplicate(a: set[str], b: set[str]) -> bool:
    if not a or not b:
        return False
    # Jaccard ≥ 0.9 needs the smaller set to be ≥ 0.9 of the larger: most pairs fail
    # that test by size alone. The union's size comes from the intersection's.
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if len(small) / len(large) < _NEAR:  # division, as below: the same float rounding
        return False
    common = len(small & large)
    return common / (len(a) + len(b) - common) >= _NEAR


class _RecentWordSets:
    """The word sets of the last ``size`` items kept, searched for a near duplicate.

    Prefix filtering (as in PPJoin): put the words of every set in one fixed order;
    two sets with Jaccard ≥ t share a word among the first |s| - ceil(t·|s|) + 1 words
    of each. Each set is filed under those words, so a new one is compared only with
    the recent sets it shares one with: the same answer as comparing it with all.
    """

    def __init__(self, size: int = 50) -> None:
        self.size = size
        self.sets: list[set[str]] = []
        self.postings: dict[str, list[int]] = {}

    @staticmethod
    def prefix(words: set[str]) -> list[str]:
        """The words a set is filed under (give them to the methods below)."""
        # longer words first (rarer: fewer candidates), then alphabetical: one total
        # order; int() ≤ ceil() keeps the prefix at least as long as the bound needs
        ordered = sorted(sorted(words), key=len, reverse=True)
        return ordered[: len(words) - int(_NEAR * len(words)) + 1]

    def has_near_duplicate(self, words: set[str], prefix: list[str]) -> bool:
        oldest = len(self.sets) - self.size
        tried: set[int] = set()
        for word in prefix:
            positions = self.postings.get(word, ())
            for at in reversed(positions):
                if at < oldest:
                    break
                if at not in tried:
                    tried.add(at)
                    if _near_duplicate(words, self.sets[at]):
                        return True
        return False

    def add(self, words: set[str], prefix: list[str]) -> None:
        at = len(self.sets)
        self.sets.append(words)
        for word in prefix:
            self.postings.setdefault(word, []).append(at)


def _filed_words(item: Item) -> tuple[set[str], list[str]]:
    words = set(words_of(item.text))
    return words, _RecentWordSets.prefix(words)


def _failed(result: Item) -> bool:
    """Does a tool result say its call failed?"""
    return bool(_ERROR_RESULT.search(result.text[:200])) or (
        isinstance(result.raw, dict)
        and isinstance(result.raw.get("block"), dict)
        and bool(result.raw["block"].get("is_error"))
    )


def _step_duplicates(work: _Work, keep: set[int], target: int) -> None:
    action = Action(
        step="duplicates",
        description="drop exact and near duplicates and failed attempts a later success superseded",
    )
    latest: dict[tuple[str, str], int] = {}
    recent = _RecentWordSets()
    calls = work.calls
    # Later occurrences win: walk backwards, stub earlier copies.
    for i in range(len(work.items) - 1, -1, -1):
        if work.total <= target:
            break
        item = work.items[i]
        if i in keep or item.kind in (Kind.TOOL_CALL, Kind.SYSTEM_PROMPT) or work.tokens[i] < 40:
            continue
        key = (item.kind.value, item.hash)
        if key in latest:
            work.replace_text(i, f"[duplicate of a later {item.kind.value}; archived]", action)
            continue
        latest[key] = i
        words, prefix = work.made("words", i, _filed_words)
        if recent.has_near_duplicate(words, prefix):
            work.replace_text(i, f"[near-duplicate of a later {item.kind.value}; archived]", action)
            continue
        recent.add(words, prefix)
    # Failed attempts: an error result whose call (tool + target) later succeeded.
    succeeded: set[tuple[str | None, str]] = set()
    for i in range(len(work.items) - 1, -1, -1):
        item = work.items[i]
        if item.role is not Role.TOOL or item.pair_id not in calls:
            continue
        call = work.items[calls[item.pair_id]]
        attempt: tuple[str | None, str] = (call.tool, _call_target(work, item))
        if not work.made("failed", i, _failed):
            succeeded.add(attempt)
        elif attempt in succeeded and i not in keep and work.total > target:
            work.replace_text(
                i,
                f"[failed attempt, superseded by a later success: {_first_line(item.text)}]",
                action,
            )
    if action.items:
        work.actions.append(action)


def report_metadata(text: str) -> str:
    """A sub-agent report as metadata (the layered-context model): title, a ~50-word summary, key
    findings, the paths it names."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    title = lines[0].lstrip("#* ").strip()[:100] if lines else "report"
    prose = " ".join(ln for ln in lines[1:] if not ln.startswith(("-", "*", "#", "|")))
    summary = " ".join(prose.split()[:50])
    findings = [
        ln.lstrip("-* ").strip()[:120] for ln in lines if ln.startswith(("-", "*")) and len(ln) > 3
    ][:5]
    paths = sorted({p for p in re.findall(r"[\w./-]+/[\w.-]+\.\w+", text)})[:5]
    meta = [f"[agent report: {title}]", f"Summary: {summary}"]
    if findings:
        meta.append("Key findings: " + "; ".join(findings))
    if paths:
        meta.append("Paths: " + ", ".join(paths))
    meta.append("(full report archived)")
    return "\n".join(meta)


def _step_agent_reports(work: _Work, keep: set[int], target: int) -> None:
    action = Action(step="agent_reports", description="sub-agent reports → metadata")
    for i, item in enumerate(work.items):
        if work.total <= target:
            break
        if i in keep or item.kind is not Kind.AGENT_REPORT:
            continue
        work.replace_text(i, report_metadata(item.text), action)
    if action.items:
        work.actions.append(action)


def _step_summarize(
    work: _Work, keep: set[int], target: int, facts: Sequence[Fact], summarizer: Summarizer | None
) -> Item | None:
    messages = work.messages
    head = head_end(work.items, messages, 0)
    # the middle: whole messages, none protected, between the kept head and tail
    middle_msgs = [m for m in messages[head:] if not any(i in keep for i in m.items)]
    if not middle_msgs:
        return None
    first = middle_msgs[0].items[0]
    last = middle_msgs[-1].items[-1]
    span = [i for m in messages for i in m.items if first <= i <= last and i not in keep]
    span_set = set(span)
    # never split a pair across the cut: results whose call stays, and calls whose result
    # stays, stay too
    calls = work.calls
    for i in list(span):
        item = work.items[i]
        if item.role is Role.TOOL:
            call = calls.get(item.pair_id or "")
            if call is not None and call not in span_set:
                span_set.discard(i)
    results = {
        item.pair_id
        for j, item in enumerate(work.items)
        if item.role is Role.TOOL and j not in span_set
    }
    span_set = {
        i
        for i in span_set
        if not (work.items[i].kind is Kind.TOOL_CALL and work.items[i].pair_id in results)
    }
    if not span_set:
        return None
    middle = [work.items[i] for i in sorted(span_set)]
    kept_tokens = sum(t for i, t in enumerate(work.tokens) if i not in span_set)
    kept_tokens += work.item_cost * (len(work.items) - len(span_set) + 1)  # + the summary
    budget = max(120, target - kept_tokens - 8)
    middle_facts = [f for f in facts if f.item in span_set]
    if summarizer is not None:
        text = summarizer(middle, middle_facts, budget)
    else:
        text = summarize_extractive(middle, middle_facts, budget, work.count, all_items=work.items)
    summary = Item(
        role=Role.USER,
        kind=Kind.SUMMARY,
        text=text,
        layer=Layer.METADATA,
        message_index=middle[0].message_index,
        tokens=work.count(text),
    )
    action = Action(
        step="summarize",
        description=f"summarize {len(middle)} middle items into one structured summary",
        items=sorted(span_set),
        tokens_before=sum(work.tokens[i] for i in span_set),
        tokens_after=summary.tokens or 0,
    )
    position = min(span_set)
    new_items, new_tokens = [], []
    for i, item in enumerate(work.items):
        if i == position:
            new_items.append(summary)
            new_tokens.append(summary.tokens or 0)
        if i not in span_set:
            new_items.append(item)
            new_tokens.append(work.tokens[i])
    work.replace_all(new_items, new_tokens)
    work.actions.append(action)
    return summary


@dataclasses.dataclass(slots=True)
class _Pass:
    """One pass of steps 1–5 under one protection: the result, and the state it had
    before step 5 (steps 1–4 do the same whatever lower target comes after them: a pass
    aiming lower summarizes again from there)."""

    work: _Work
    summary: Item | None
    protection: tuple[int, int]
    keep: set[int]
    before_summary: _Work | None


def _run_steps(
    work: _Work,
    policy: CompactionPolicy,
    target: int,
    facts: Sequence[Fact],
    summarizer: Summarizer | None,
    protect: Callable[[Item], bool] | None = None,
) -> _Pass:
    """Steps 1–5 on ``work``, each only while over ``target``."""
    protection = (policy.keep_first, policy.keep_last)
    if work.total <= target:
        return _Pass(work, None, protection, set(), None)
    keep = _protected(work.items, work.messages, policy)
    if protect is not None:
        keep |= {i for i, item in enumerate(work.items) if protect(item)}
    _step_results(
        work,
        keep,
        policy,
        target,
        {Kind.TOOL_RESULT, Kind.IMAGE, Kind.UNKNOWN},
        "clear_tool_results",
        "clear old tool results (stub: tool, target, size, first line)",
    )
    if work.total > target:
        _step_call_inputs(work, keep, policy, target)
    if work.total > target:
        _step_results(
            work,
            keep,
            policy,
            target,
            {Kind.FILE_READ, Kind.SEARCH_RESULT},
            "reads_and_searches",
            "file reads → path and line range; searches → query, hits, top hits",
        )
    if work.total > target:
        _step_duplicates(work, keep, target)
    if work.total > target:
        _step_agent_reports(work, keep, target)
    if work.total <= target:
        return _Pass(work, None, protection, keep, None)
    before_summary = work.snapshot()
    summary = _step_summarize(work, keep, target, facts, summarizer)
    return _Pass(work, summary, protection, keep, before_summary)


def _summarize_again(
    done: _Pass, target: int, facts: Sequence[Fact], summarizer: Summarizer | None
) -> _Pass:
    """``done`` with step 5 run again for a lower ``target`` (steps 1–4 unchanged)."""
    assert done.before_summary is not None
    work = done.before_summary.snapshot()
    summary = _step_summarize(work, done.keep, target, facts, summarizer)
    return _Pass(work, summary, done.protection, done.keep, done.before_summary)


def _validate(
    work: _Work,
    summary: Item | None,
    facts: Sequence[Fact],
    policy: CompactionPolicy,
    count: Callable[[str], int],
    target: int,
    checks: dict[str, FactCheck],
) -> tuple[Item | None, FactReport]:
    """Step 6: check the fact ledger; put missing facts back, or refuse.

    ``checks`` keeps the check of the text around the summary, which the attempts that
    aim lower share (only the summary changes between them)."""

    def checker() -> FactCheck:
        fixed = "\n".join("" if it is summary else it.text for it in work.items)
        if fixed not in checks:
            checks[fixed] = FactCheck(facts, fixed)
        return checks[fixed]

    first = checker()
    report = first.report(summary.text if summary is not None else "")
    if not report.missing:
        return summary, report
    must = [f for f in report.missing if f.kind in MUST_KEEP]
    optional = [f for f in report.missing if f.kind not in MUST_KEEP]
    if policy.on_missing_facts == "rollback" and must:
        raise CompactionError(
            f"compaction would lose {len(must)} fact(s) "
            f"(e.g. {must[0].kind} {must[0].key[:60]!r}): rolled back"
        )
    # newest requests first: the latest asks matter most
    optional.sort(key=lambda f: (f.kind != FactKind.REQUEST, -f.item))
    ledger = ledger_section(must)
    room = target - work.total - (count(ledger) if ledger else 0)
    if optional and room > 20:
        extra = ledger_section(optional, max_chars=room * 3)
        if extra:
            body = extra.split("\n", 1)[1] if "\n" in extra else ""
            ledger = (ledger + "\n" + body) if ledger else extra
    if not ledger:
        return summary, report
    restored_now = list(report.missing)  # must and optional: every missing fact
    had_summary = summary is not None
    action = Action(step="fact_ledger", description="put back facts the summary missed")
    if summary is not None:
        index = next(i for i, it in enumerate(work.items) if it is summary)
        text = summary.text + "\n\n" + ledger
        tokens = count(text)
        action.tokens_before = 0
        action.tokens_after = tokens - (summary.tokens or 0)
        summary = dataclasses.replace(summary, text=text, tokens=tokens, _hash=None)
        work.set_item(index, summary, tokens)
    else:
        position = next(
            (i for i, it in enumerate(work.items) if it.role is not Role.SYSTEM),
            len(work.items),
        )
        anchor = work.items[position] if position < len(work.items) else work.items[-1]
        summary = Item(
            role=Role.USER,
            kind=Kind.SUMMARY,
            text=ledger,
            tokens=count(ledger),
            layer=Layer.METADATA,
            message_index=anchor.message_index,
        )
        work.insert_item(position, summary, summary.tokens or 0)
        action.tokens_after = summary.tokens or 0
    if had_summary:  # the same text around it, the summary grown: look for the missed
        report = first.report(summary.text, since=report)
    else:
        report = checker().report(summary.text)
    still_missing = {id(f) for f in report.missing}  # the same Fact objects: by identity
    report.restored = [f for f in restored_now if id(f) not in still_missing]
    action.description = f"put back {len(report.restored)} fact(s) the summary missed"
    work.actions.append(action)
    return summary, report


def compact(
    items: Sequence[Item],
    *,
    count: Callable[[str], int],
    target_tokens: int,
    policy: CompactionPolicy | None = None,
    summarizer: Summarizer | None = None,
    protect: Callable[[Item], bool] | None = None,
    item_cost: int = 0,
) -> CompactionResult:
    """Compact ``items`` towards ``target_tokens``; pure: returns the result to apply.

    ``protect`` marks more items that no step may touch (e.g. every item outside the
    budget component being cleaned up). ``item_cost`` is what each item costs beyond
    its text, in ``count``'s units (the provider's framing of a block): counted into
    every total, the target included.
    """
    policy = policy or CompactionPolicy()
    if not items:
        raise CompactionError("nothing to compact: the session is empty")
    original = list(items)
    start = _Work(original, count, item_cost)  # counted once: every pass starts from a copy
    before = start.total
    facts = extract_facts(original)
    notes: list[str] = []
    if before <= target_tokens:
        notes.append(
            f"already under the target ({before:,} ≤ {target_tokens:,} tokens): nothing to do"
        )
    # Protection first as the policy says. When that misses the target (and the policy
    # lets the kept exchanges shrink), protect less only as far as needed: if the last
    # exchange alone reaches it, keep as many of the last ones as still do (the first
    # exchange goes); a target nothing reaches keeps the full protection. Each pass
    # starts from the original items. When the facts the ledger puts back overshoot the
    # target, the summary gets less room and runs again (the extractive one only: an
    # LLM summary is paid for).
    passes = [(policy.keep_first, policy.keep_last)]
    if policy.shrink_kept and (policy.keep_last > 1 or policy.keep_first):
        passes.append((0, min(1, policy.keep_last)))
    aim = target_tokens

    def attempt_with(keep: tuple[int, int]) -> _Pass:
        pass_policy = dataclasses.replace(policy, keep_first=keep[0], keep_last=keep[1])
        return _run_steps(start.copy(), pass_policy, aim, facts, summarizer, protect)

    def floor(keep: tuple[int, int]) -> int:
        """What a pass keeping ``keep`` exchanges cannot go below: its protected items."""
        pass_policy = dataclasses.replace(policy, keep_first=keep[0], keep_last=keep[1])
        protected = _protected(start.items, start.messages, pass_policy)
        if protect is not None:
            protected |= {i for i, item in enumerate(start.items) if protect(item)}
        return sum(start.tokens[i] for i in protected) + item_cost * len(protected)

    def most_that_fit(least: _Pass) -> _Pass:
        for n in range(policy.keep_last - 1, 1, -1):  # the most that still fit
            if floor((0, n)) > aim:
                continue  # its protected items alone are over: it cannot fit
            more = attempt_with((0, n))
            if more.work.total <= aim:
                return more
        return least

    def choose() -> _Pass:
        if len(passes) > 1 and floor(passes[0]) > aim:
            # the full protection cannot reach the aim: try the least first
            least = attempt_with(passes[1])
            if least.work.total <= aim:
                return most_that_fit(least)
            first = attempt_with(passes[0])
            return least if least.work.total < first.work.total else first
        first = attempt_with(passes[0])
        if first.work.total > aim and len(passes) > 1:
            least = attempt_with(passes[1])
            if least.work.total <= aim:
                return most_that_fit(least)
            if least.work.total < first.work.total:  # closer, and the next attempt aims lower
                return least
        return first

    done: _Pass | None = None
    checks: dict[str, FactCheck] = {}
    for attempt in range(3 if summarizer is None else 1):
        # the protection chosen first stays for the attempts that aim lower, which only
        # summarize again (steps 1–4 do the same for any lower aim)
        if done is None:
            done = choose()
        elif done.before_summary is not None:
            again = _summarize_again(done, aim, facts, summarizer)
            if (
                again.summary is not None
                and done.summary is not None
                and again.summary.text == done.summary.text
            ):
                break  # the summary cannot shrink (it is all facts that must stay)
            done = again
        else:
            done = attempt_with(done.protection)
        work = done.work
        summary, report = _validate(work, done.summary, facts, policy, count, aim, checks)
        overshoot = work.total - target_tokens
        if overshoot <= 0 or summary is None or attempt == 2 or before <= target_tokens:
            break
        aim = max(1, aim - overshoot - max(2, overshoot // 10))
    keep = done.protection if done is not None else None
    keep_first, keep_last = keep or passes[0]
    if (keep_first, keep_last) != passes[0]:
        notes.append(
            f"kept the last {keep_last} exchange(s) of {passes[0][1]} and not the first, "
            "to reach the target"
        )
    if work.total > target_tokens and before > target_tokens:
        notes.append(
            f"target not reached ({work.total:,} > {target_tokens:,} tokens): what is "
            "left is protected (system prompt, latest request, todo list, pinned "
            "items) or facts that must stay"
        )

    kept_ids = {id(i) for i in work.items}
    removed = [i for i in original if id(i) not in kept_ids]
    return CompactionResult(
        items=work.items,
        removed=removed,
        actions=work.actions,
        tokens_before=before,
        tokens_after=work.total,
        target_tokens=target_tokens,
        facts=report,
        summary=summary.text if summary is not None else "",
        notes=notes,
    )


def protected_floor(
    items: Sequence[Item],
    count: Callable[[str], int],
    policy: CompactionPolicy | None = None,
    protect: Callable[[Item], bool] | None = None,
) -> tuple[int, int]:
    """Tokens and items no step may remove under ``policy``: what any target must leave."""
    policy = policy or CompactionPolicy()
    keep = _protected(items, messages_of(items), policy)
    if protect is not None:
        keep |= {i for i, item in enumerate(items) if protect(item)}
    tokens = 0
    for i in keep:
        known = items[i].tokens
        tokens += known if known is not None else count(items[i].text)
    return tokens, len(keep)
