"""The extractive summarizer: offline, deterministic, no model.

Map-reduce by topic segment (a segment starts at each user request): each segment
yields its request, the tools it used, the files it touched, its errors and its
outcome; the reduce step merges them into one structured summary with the sections
Requests, Requirements, Decisions, Open questions, Files, Todos, Errors, Key facts and
Timeline. What must survive (requests, requirement ids, decisions, questions, files)
goes in first; key facts (``key_facts``) and the timeline fill the remaining budget.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ..model import Item, Kind, Role
from ..sources.tools import FILE_EDITORS, FILE_READERS
from .chat import is_pleasantry
from .key_facts import chat_key_facts, clip, pick_key_facts, sentences, words_of
from .structure import call_target, tool_input
from .types import Fact, FactKind

_LIST_MARKER = re.compile(r"^(?:[-*+•]\s+)+")


@dataclass(slots=True)
class Segment:
    request: str = ""
    tools: Counter[str] = field(default_factory=Counter)
    edited: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    outcome: str = ""


def _common_root(paths: Sequence[str]) -> str:
    """The directory most paths share (written once instead of forty times)."""
    absolute = [p for p in paths if p.startswith("/") and "." in p.rsplit("/", 1)[-1]]
    groups: dict[str, list[str]] = {}
    for p in absolute:
        groups.setdefault("/".join(p.split("/", 4)[:4]), []).append(p)
    group = max(groups.values(), key=len, default=[])
    if len(group) < 3:
        return ""
    root = _common_path(group)
    return root + "/" if root.count("/") >= 2 else ""


def _common_path(paths: list[str]) -> str:
    """``os.path.commonpath`` of absolute paths, from the lowest and the highest alone
    (the longest prefix they share is the one all share); commonpath splits them all."""
    if any("//" in p or "/./" in p or p.endswith(("/", "/.")) for p in paths):
        return os.path.commonpath(paths)  # empty and "." parts, which it leaves out
    low = min(paths)
    # characters, not parts: "/a/b" and "/a/b/z" share "/a/b" yet "/a/b-x" lies between
    n = len(os.path.commonprefix([low, max(paths)]))  # noqa: RUF071
    prefix = low[:n]
    if not all(len(p) == n or p[n] == "/" for p in paths):
        prefix = prefix[: prefix.rfind("/")]  # back to the last whole part
    return prefix or "/"


def _under(path: str, root: str) -> str:
    # only files with an extension: their basename still identifies them
    if root and path.startswith(root) and "." in path.rsplit("/", 1)[-1]:
        return path[len(root) :]
    return path


def _tails(path: str) -> Iterator[str]:
    """What follows each "/" of ``path`` ("a/b/c.py": "b/c.py", "c.py")."""
    at = path.find("/")
    while at >= 0:
        yield path[at + 1 :]
        at = path.find("/", at + 1)


def _segments(items: Sequence[Item], calls: dict[str, Item]) -> list[Segment]:
    """Map: one segment per user request, or per todo list update in a long agentic run
    (its task in progress names the topic), with what happened until the next one."""
    segments = [Segment()]
    for item in items:
        if item.kind is Kind.USER_TEXT and item.role is Role.USER and item.text.strip():
            segments.append(Segment(request=item.text))
            continue
        if item.kind is Kind.TOOL_CALL and item.tool == "TodoWrite":
            task = _task_in_progress(item)
            if task and segments[-1].tools:
                segments.append(Segment(request=f"(todo) {task}"))
        seg = segments[-1]
        if item.kind is Kind.TOOL_CALL and item.tool:
            seg.tools[item.tool] += 1
            target = call_target(item)
            if item.tool in FILE_EDITORS and target:
                seg.edited.append(target)
            elif item.tool in FILE_READERS and target:
                seg.read.append(target)
        elif item.kind is Kind.ASSISTANT_TEXT and item.text.strip():
            seg.outcome = item.text
    return [s for s in segments if s.request or s.tools or s.outcome]


def _task_in_progress(item: Item) -> str:
    data = tool_input(item)
    todos = data.get("todos") if isinstance(data, dict) else None
    for todo in todos if isinstance(todos, list) else []:
        if isinstance(todo, dict) and todo.get("status") == "in_progress":
            return str(todo.get("content", ""))
    return ""


def _before(items: Sequence[Item], first: Item) -> Sequence[Item]:
    """The items before ``first`` (the same object) in ``items``; none if it is not there."""
    for n, item in enumerate(items):
        if item is first:
            return items[:n]
    return []


def summarize_extractive(
    items: Sequence[Item],
    facts: Sequence[Fact],
    budget: int,
    count: Callable[[str], int],
    *,
    all_items: Sequence[Item] = (),
    title: str = "Summary of the compacted conversation",
) -> str:
    """A structured summary of ``items`` in about ``budget`` tokens.

    ``facts`` are the ledger facts found in these items: they are written first, so
    the summary keeps them even when the budget is tight.
    """
    calls = {i.pair_id: i for i in (all_items or items) if i.kind is Kind.TOOL_CALL and i.pair_id}
    segments = _segments(items, calls)
    # A long chat with no tool use (people talking): its turns are not requests and
    # have no tool timeline; the budget goes to key facts instead.
    chat = not any(s.tools for s in segments) and len(segments) > 30
    by_kind: dict[FactKind, list[Fact]] = {}
    for fact in facts:
        by_kind.setdefault(fact.kind, []).append(fact)

    lines = [
        f"# {title}",
        f"({len(items)} items, {len(segments)} topic segments; the full "
        "text is archived: ctxbudget recall can bring it back)",
    ]

    def section(name: str, entries: list[str]) -> None:
        if entries:
            lines.append(f"## {name}")
            # a fact's line may be a list item already ("- REQ-7: …"): one marker
            lines.extend(f"- {_LIST_MARKER.sub('', e)}" for e in entries)

    # Requests newest first, up to a third of the budget: a long chat has hundreds of
    # user turns, and the archive keeps the rest.
    requests = by_kind.get(FactKind.REQUEST, [])
    kept_requests: list[str] = []
    spent_requests = 0
    for fact in reversed(requests):
        entry = clip(fact.key, 300)
        cost = count(entry) + 2
        if kept_requests and spent_requests + cost > budget // 3:
            break
        kept_requests.append(entry)
        spent_requests += cost
    kept_requests.reverse()
    if len(kept_requests) < len(requests):
        kept_requests.insert(
            0, f"({len(requests) - len(kept_requests)} earlier requests are in the archive)"
        )
    if not chat:
        section("Requests", kept_requests)
    section("Requirements", [clip(f.text, 200) for f in by_kind.get(FactKind.REQUIREMENT, [])])
    section("Decisions", [clip(f.text, 200) for f in by_kind.get(FactKind.DECISION, [])])
    section("Open questions", [clip(f.text, 200) for f in by_kind.get(FactKind.QUESTION, [])])
    edited = list(dict.fromkeys(p for s in segments for p in s.edited))
    edited_set = set(edited)
    read = [p for p in dict.fromkeys(p for s in segments for p in s.read) if p not in edited_set]
    known = [*edited, *read]
    # a mentioned path is known when a known path equals it or ends with "/" + it: the
    # tails of the known paths after each "/" answer that in one look-up (not paths²)
    known_exact = set(known)
    known_tails = {tail for p in known for tail in _tails(p)}
    mentioned = [
        f.key
        for f in by_kind.get(FactKind.FILE, [])
        if f.key not in known_exact and f.key.lstrip("./") not in known_tails
    ]
    root = _common_root([*edited, *read, *mentioned])
    files = [f"(paths under {root})"] if root else []
    if edited:
        files.append("edited: " + ", ".join(_under(p, root) for p in edited))
    if read:
        files.append("read: " + ", ".join(_under(p, root) for p in read))
    if mentioned:
        files.append("mentioned: " + ", ".join(_under(p, root) for p in mentioned))
    section("Files", files)
    section("Todos", [clip(f.key, 200) for f in by_kind.get(FactKind.TODO, [])])
    section("Errors", [clip(f.text, 160) for f in by_kind.get(FactKind.ERROR, [])[-8:]])
    must = "\n".join(lines)
    remaining = budget - count(must)

    timeline = []
    for n, seg in enumerate([] if chat else segments, 1):
        parts = [clip(seg.request, 90) or "(continued)"]
        if seg.tools:
            parts.append("tools: " + ", ".join(f"{t}×{c}" for t, c in seg.tools.most_common(5)))
        if seg.outcome:
            parts.append("outcome: " + clip(seg.outcome, 160))
        timeline.append(f"{n}. " + " — ".join(parts))
    timeline_text = "\n".join(["## Timeline", *timeline]) if timeline else ""
    timeline_cost = count(timeline_text) if timeline_text else 0
    fact_budget = remaining - min(timeline_cost, max(0, remaining // 4))
    if fact_budget > 20 and chat:
        earlier = _before(all_items, items[0]) if items else []
        lines.extend(chat_key_facts(items, fact_budget, count, set(words_of(must)), earlier))
    elif fact_budget > 20:
        # a reaction to the other side says nothing ("Thanks, that's a clear starting
        # point.", "Your assumptions hold."), in a session with tools as in a chat
        candidates = [s for s in sentences(items) if not is_pleasantry(s)]
        picked = pick_key_facts(candidates, fact_budget, count, set(words_of(must)))
        if picked:
            lines.append("## Key facts")
            lines.extend(f"- {candidates[i]}" for i in picked)
    used = count("\n".join(lines))
    if timeline_text and used + timeline_cost <= budget:
        lines.append(timeline_text)
    elif timeline:
        # as much of the timeline as fits, most recent first kept
        room = budget - used - 4
        kept: list[str] = []
        for entry in reversed(timeline):
            cost = count(entry) + 1
            if cost > room:
                break
            kept.append(entry)
            room -= cost
        if kept:
            lines.append("## Timeline (latest)")
            lines.extend(reversed(kept))
    return "\n".join(lines)


# Requests that carry no task of their own ("continue", "go on", "ok"): the task is
# the one before them.
_TASK_NUDGE = (
    r"(?:please|continue|go\s+on|go\s+ahead|keep\s+going|carry\s+on|proceed|ok(?:ay)?|"
    r"yes|yep|yeah|sure|right|fine|good|great|thanks?(?:\s+you)?|thx|next|do\s+it|"
    r"resume|lgtm|sounds\s+good)"
)
_TASK_FILLER = re.compile(rf"^\W*{_TASK_NUDGE}(?:[\s,.!;]+{_TASK_NUDGE})*\W*$", re.IGNORECASE)


def current_task(items: Sequence[Item]) -> str:
    """The latest substantive request among ``items``: the last user text that is not
    a nudge such as "continue", "go on" or "ok" (those leave the task as it was).
    The last user text when every one is a nudge; "" when there is none."""
    last = ""
    for item in reversed(items):
        if item.kind is not Kind.USER_TEXT:
            continue
        text = " ".join(item.text.split())
        if not text:
            continue
        if not _TASK_FILLER.match(text):
            return text
        last = last or text
    return last
