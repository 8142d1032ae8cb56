"""Steps 1–4 of the compaction pipeline: each only shortens texts, in place, while the
context is over its target, and never touches a protected item.

1. ``clear_results``: old tool results → a stub (tool, target, size, first line); file
   reads → path and line range; searches → query, hit count, top hits;
2. ``shorten_call_inputs``: large tool-call inputs → their size and first line;
3. ``drop_duplicates``: exact and near duplicates, and failed attempts a later success
   superseded → stubs;
4. ``reports_to_metadata``: sub-agent reports → metadata (``report_metadata``).

What a step makes of an item is made once for every pass (``Work.made``).
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from collections.abc import Callable, Sequence

from ..model import Item, Kind, Role
from .key_facts import words_of
from .structure import call_target, tool_input
from .types import Action, CompactionPolicy
from .work import Work

__all__ = [
    "clear_results",
    "drop_duplicates",
    "give_back",
    "report_metadata",
    "reports_to_metadata",
    "shorten_call_inputs",
]

_ERROR_RESULT = re.compile(r"^\s*(error|exception|traceback|fatal|failed)|<tool_use_error>", re.I)
_LINE_NUMBER = re.compile(r"^\s*(\d+)[→\t:]", re.M)


def _first_line(text: str) -> str:
    """The first non-blank line of ``text``, whitespace squeezed, at most 120 characters."""
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())[:120]
    return ""


def _result_indices(items: Sequence[Item]) -> list[int]:
    return [i for i, item in enumerate(items) if item.role is Role.TOOL]


def clear_results(
    work: Work,
    keep: set[int],
    policy: CompactionPolicy,
    target: int,
    kinds: set[Kind],
    step: str,
    describe: str,
) -> None:
    """Step 1 (``kinds``: results, images, unknown blocks) or 2 (file reads, searches):
    each old result of those kinds → a stub, oldest first, while over ``target``; the
    latest ``policy.keep_results`` results and excluded tools stay."""
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


def _call_target(work: Work, result: Item) -> str:
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


def shorten_call_inputs(work: Work, keep: set[int], policy: CompactionPolicy, target: int) -> None:
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
    """Jaccard of two non-empty word sets ≥ ``_NEAR`` (the union's size comes from the
    intersection's); ``has_near_duplicate`` tests their sizes first."""
    common = len(a & b)
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
        # order; int() ≤ ceil() keeps the prefix at least as long as the bound needs.
        # Only the longest words are wanted: sorted by length in groups, a group at a
        # time until there are enough (not the whole set twice).
        wanted = len(words) - int(_NEAR * len(words)) + 1
        by_length: dict[int, list[str]] = {}
        for word in words:
            by_length.setdefault(len(word), []).append(word)
        ordered: list[str] = []
        for length in sorted(by_length, reverse=True):
            ordered += sorted(by_length[length])
            if len(ordered) >= wanted:
                break
        return ordered[:wanted]

    def has_near_duplicate(self, words: set[str], prefix: list[str]) -> bool:
        oldest = len(self.sets) - self.size
        candidates: set[int] = set()
        for word in prefix:
            positions = self.postings.get(word)
            if positions:  # ascending: the recent ones are a tail
                candidates.update(positions[bisect.bisect_left(positions, oldest) :])
        if not candidates:
            return False
        # Jaccard ≥ 0.9 needs the smaller set to be ≥ 0.9 of the larger: most candidates
        # fail that by size alone. A set is never empty here: an empty one has no
        # prefix, so it is neither filed nor looked for.
        low, high = _size_bounds(len(words))
        sets = self.sets
        return any(
            low <= len(sets[at]) <= high and _near_duplicate(words, sets[at]) for at in candidates
        )

    def add(self, words: set[str], prefix: list[str]) -> None:
        at = len(self.sets)
        self.sets.append(words)
        for word in prefix:
            self.postings.setdefault(word, []).append(at)


@functools.cache
def _size_bounds(n: int) -> tuple[int, int]:
    """The sizes ``m`` a set of ``n`` words may have to be a near duplicate of it (the
    smaller over the larger ≥ ``_NEAR``), found with that division itself, so that the
    float rounding at both ends is ``_near_duplicate``'s own."""
    low = int(_NEAR * n)
    while low > 1 and (low - 1) / n >= _NEAR:
        low -= 1
    while low < n and low / n < _NEAR:
        low += 1
    high = int(n / _NEAR) + 1
    while n / high < _NEAR:
        high -= 1
    while n / (high + 1) >= _NEAR:
        high += 1
    return low, high


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


def drop_duplicates(work: Work, keep: set[int], target: int) -> None:
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
    # Failed attempts: an error result whose call (tool + target) later succeeded. The
    # successes met (walking back) are named only once a failure asks for them: most
    # sessions fail rarely, and naming a call's target is the cost here.
    succeeded: set[tuple[str | None, str]] = set()
    unnamed: list[Item] = []  # successes met since the last failure

    def attempt_of(result: Item) -> tuple[str | None, str]:
        return work.items[calls[result.pair_id or ""]].tool, _call_target(work, result)

    for i in range(len(work.items) - 1, -1, -1):
        item = work.items[i]
        if item.role is not Role.TOOL or item.pair_id not in calls:
            continue
        if not work.made("failed", i, _failed):
            unnamed.append(item)
            continue
        succeeded.update(map(attempt_of, unnamed))
        unnamed.clear()
        if i not in keep and work.total > target and attempt_of(item) in succeeded:
            work.replace_text(
                i,
                f"[failed attempt, superseded by a later success: {_first_line(item.text)}]",
                action,
            )
    if action.items:
        work.actions.append(action)


def give_back(work: Work, shortened: Sequence[Item], start: Work, target: int) -> None:
    """Steps 1–4 stop once under ``target``, and their last stub can free far more than
    was needed (one large file read), as can a summary of whole messages: the newest
    items the steps shortened are put back as they were, each that still fits under
    ``target``. The context ends near the target, not far under it, and what it keeps
    whole is the newest. Putting back only adds text: the facts found stay found.

    ``shortened``: the items when steps 1–4 were done (the positions their actions
    name); ``start``: the work they started from. A stub a summary has taken since is
    not looked for. A stub of a stub (a cleared result then dropped as a duplicate)
    comes back whole too, each step giving back what it counted of it."""
    if work.total >= target:
        return
    by_index: dict[int, list[Action]] = {}  # the steps that shortened each, in order
    for action in work.actions:
        for i in action.items:
            by_index.setdefault(i, []).append(action)
    where = {id(item): at for at, item in enumerate(work.items)}
    stubs = [
        (at, i, actions)
        for i, actions in by_index.items()
        if shortened[i] is not start.items[i]
        and (at := where.get(id(shortened[i]), -1)) >= 0
        and len(work.shortened.get(i, ())) == len(actions) + 1
    ]
    stubs.sort(key=lambda stub: -stub[0])
    back: dict[int, set[int]] = {}  # by action: the items put back
    for at, i, actions in stubs:
        tokens = start.tokens[i]
        if work.total + tokens - work.tokens[at] <= target:
            counted = work.shortened[i]  # the original's tokens, then each stub's
            for n, action in enumerate(actions):
                back.setdefault(id(action), set()).add(i)
                action.tokens_before -= counted[n]
                action.tokens_after -= counted[n + 1]
            work.restore(at, start.items[i], tokens)
    for action in work.actions:
        if id(action) in back:
            gone = back[id(action)]
            action.items = [i for i in action.items if i not in gone]
    work.actions = [a for a in work.actions if a.items or id(a) not in back]


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


def reports_to_metadata(work: Work, keep: set[int], target: int) -> None:
    action = Action(step="agent_reports", description="sub-agent reports → metadata")
    for i, item in enumerate(work.items):
        if work.total <= target:
            break
        if i in keep or item.kind is not Kind.AGENT_REPORT:
            continue
        work.replace_text(i, report_metadata(item.text), action)
    if action.items:
        work.actions.append(action)
