"""The extractive summarizer: offline, deterministic, no model.

Map-reduce by topic segment (a segment starts at each user request): each segment
yields its request, the tools it used, the files it touched, its errors and its
outcome; the reduce step merges them into one structured summary with the sections
Requests, Requirements, Decisions, Open questions, Files, Todos, Errors, Key facts and
Timeline. What must survive (requests, requirement ids, decisions, questions, files)
goes in first; key facts and the timeline fill the remaining budget, picked greedily
for the most new information per token (words weighted by rarity, each counted once).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ..model import Item, Kind, Role
from ..sources.tools import FILE_EDITORS, FILE_READERS
from .chat import ChatTurn, chat_turns, is_pleasantry, relative_to_date
from .structure import call_target, tool_input
from .types import Fact, FactKind

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+|\d[\d:.,/-]*")
# A sentence ends at . ! or ? before a capital, a digit or a quote, but not after an
# initial or a title ("J.K. Rowling", "Dr. Lee"), and at a line break.
_SENTENCE = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\b[MD]r\.)(?<!\bMrs\.)(?<!\bSt\.)(?<!\bMs\.)"
    r"\s+(?=[A-Z0-9\"'(\[])|\n+"
)
# Names and numbers inside a sentence (not its first word): "went to Paris in 2022".
_NAMED = re.compile(r"(?<=[a-z,;:] )[A-Z][a-zA-Z'’-]+|\d[\d:.,/-]*")
_STOP = frozenset(
    [
        "a",
        "about",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "done",
        "for",
        "from",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "i'm",
        "if",
        "in",
        "into",
        "is",
        "it",
        "it's",
        "its",
        "just",
        "let",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "really",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "that's",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yeah",
        "yes",
        "oh",
        "wow",
        "hey",
        "hi",
        "thanks",
        "thank",
        "okay",
        "ok",
        "sure",
        "great",
        "awesome",
        "cool",
        "nice",
        "totally",
        "going",
        "gonna",
        "get",
        "got",
        "know",
        "think",
        "like",
        "lot",
        "things",
        "thing",
        "something",
    ]
)
# Text kinds whose sentences can become key facts; tool output is too noisy.
_FACT_KINDS = {
    Kind.USER_TEXT,
    Kind.ASSISTANT_TEXT,
    Kind.SUMMARY,
    Kind.AGENT_REPORT,
    Kind.INSTRUCTION,
}


@dataclass(slots=True)
class Segment:
    request: str = ""
    tools: Counter[str] = field(default_factory=Counter)
    edited: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    outcome: str = ""


def words_of(text: str) -> list[str]:
    # ASCII lower-cased first gives the same words in one call; other text may not (the
    # Kelvin sign "\u212a" lower-cases to "k", a letter the pattern would then take)
    if text.isascii():
        return _WORD.findall(text.lower())
    return [w.lower() for w in _WORD.findall(text)]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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


# The agent narrating its next step: no fact in it ("Let me check the tests:").
_NARRATION = re.compile(
    r"^(?:now |next,? |first,? |ok(?:ay)?,? )?(?:let me|let's|i'll|i will|i'm going to|"
    r"perfect|great|excellent|good|awesome)\b.{0,120}[:.!]$",
    re.I,
)

# Markdown scaffolding is no fact: a heading ("## QA Complete"), a bold label
# ("**Medium Priority Issues:**"), a rule, a table border, a bare list marker.
_SCAFFOLD = re.compile(
    r"^(?:#{1,6}\s.*|\*\*[^*]{0,80}\*\*:?|[-*_=|:\s]+|[-*+]|\d+[.)]|\S.{0,60}:)$"
)
_MARKUP = re.compile(r"^(?:[-*+>]|\d+[.)])\s+|\*\*|`")
_CLAUSE = re.compile(r"(?<=\w)[,;:]\s+|\s+[-–—]\s+")
_FILLER = re.compile(
    r"^(?:(?:wow|hey|hi|oh|yeah|yes|thanks|thank you|aw+|haha|lol|omg|ooh|cool|great|"
    r"awesome|nice|sure|ok|okay|so|well|really|totally|absolutely)\b[\w ]{0,20}?[,!.]\s*)+",
    re.I,
)


def _sentences(
    items: Sequence[Item], *, clauses: bool = False, groups: list[int] | None = None
) -> list[str]:
    """Candidate key facts: sentences of the text items, or with ``clauses`` their
    clauses (a long chat packs more answers per token into clauses). ``groups``, when
    given, receives the index of the item each candidate came from."""
    out: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.kind not in _FACT_KINDS:
            continue
        for raw in _SENTENCE.split(item.text):
            sentence = " ".join(raw.split())
            if _SCAFFOLD.match(sentence):
                continue
            sentence = _MARKUP.sub("", sentence)
            if clauses:
                sentence = _FILLER.sub("", sentence)
            if item.role is Role.ASSISTANT and _NARRATION.match(sentence):
                continue
            split = clauses and len(sentence) > _CLAUSE_FROM
            parts = _CLAUSE.split(sentence) if split else [sentence]
            if len(parts) > 1:
                parts = _joined_short(parts, sentence)
            for part in parts:
                if len(part) < _SHORTEST or part.lower() in seen:
                    continue
                seen.add(part.lower())
                out.append(_clip(part, 400))
                if groups is not None:
                    groups.append(index)
    return out


# A clause that speaks of the other person alone, in a chat (``_pick_key_facts``).
_YOU = re.compile(r"\b(?:you|you're|you've|you'd|you'll|your|yours)\b", re.I)
_ME = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|my|me|mine|we|we're|we've|our|ours|us)\b", re.I)
# Chosen by leave-one-conversation-out on LoCoMo's dev conversations: 0.1 to 0.3 keep
# the same answers on each held-out one (none fewer than 1.0); the mildest of them.
_ADDRESSED = 0.3
# A chat sentence longer than this many characters is cut into its clauses. Chosen
# leave-one-conversation-out on LoCoMo's dev conversations over 65–160: 100 or 110
# best on the other four for each held-out one (70.0% of answers held out, 68.9% at 80).
_CLAUSE_FROM = 100
# A clause shorter than this many characters does not stand alone as a fact.
_SHORTEST = 12


def _joined_short(parts: list[str], sentence: str) -> list[str]:
    """Clauses with each too short to stand alone ("Sweden.", "last May") joined to
    the one before it, as the sentence wrote them: a short tail often names the thing."""
    out: list[str] = []
    at = 0
    for part in parts:  # the split's pieces, in order: each is found after the last
        start = sentence.find(part, at)
        if out and len(part) < _SHORTEST:
            out[-1] += sentence[at:start] + part
        else:
            out.append(part)
        at = start + len(part)
    return out


def _pick_key_facts(
    sentences: list[str],
    budget: int,
    count: Callable[[str], int],
    covered: set[str],
    separator_cost: int = 2,
    addressed: float = 1.0,
) -> list[int]:
    """Greedy: most not-yet-covered information per token, until budget.

    A word weighs its rarity (idf), double for names and numbers (what questions about
    a conversation ask for); questions weigh less than statements, which answer them.
    ``addressed`` weighs a clause about the other person alone ("you", no "I" or "we"):
    in a chat it reacts or asks, and what that person did they say themselves.
    """
    docs = [set(words_of(s)) - _STOP for s in sentences]
    df: Counter[str] = Counter(w for d in docs for w in d)
    n = max(1, len(docs))
    idf = {w: math.log(1 + n / c) for w, c in df.items()}
    named: set[str] = set()
    for s in sentences:
        for m in _NAMED.finditer(s):
            named.add(m.group(0).lower())
    weight = {w: v * (2.0 if w in named else 1.0) for w, v in idf.items()}
    factor = [
        (0.4 if s.rstrip().endswith("?") else 1.0)
        * (addressed if _YOU.search(s) and not _ME.search(s) else 1.0)
        for s in sentences
    ]
    costs = [max(1, count(s) + separator_cost) for s in sentences]
    covered = set(covered)
    heap = [
        (-math.fsum(weight[w] for w in d) * f / c, i)
        for i, (d, c, f) in enumerate(zip(docs, costs, factor, strict=True))
    ]
    heapq.heapify(heap)
    chosen: list[int] = []
    spent = 0
    while heap and spent < budget:
        _, i = heapq.heappop(heap)
        # fsum: the same sum in any order (a set's order changes with the hash seed)
        gain = math.fsum(weight[w] for w in docs[i] if w not in covered) * factor[i] / costs[i]
        if gain <= 0:
            continue
        if heap and gain < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-gain, i))  # stale: re-rank lazily
            continue
        if spent + costs[i] > budget:
            continue
        chosen.append(i)
        spent += costs[i]
        covered |= docs[i]
    return sorted(chosen)  # in conversation order


def _chat_key_facts(
    items: Sequence[Item], budget: int, count: Callable[[str], int], covered: set[str]
) -> list[str]:
    """The key facts of a chat in about ``budget`` tokens: the clauses that say most,
    under the date they belong to, each message's on one line after its speaker
    ("- Caroline: ran a charity race the Saturday before … it was rewarding");
    greetings and compliments left out."""
    turns = chat_turns(items)
    bodies = [dataclasses.replace(i, text=t.body) for i, t in zip(items, turns, strict=True)]
    found: list[int] = []
    clauses = _sentences(bodies, clauses=True, groups=found)
    kept = [k for k, clause in enumerate(clauses) if not is_pleasantry(clause)]
    candidates = [relative_to_date(clauses[k]) for k in kept]
    groups = [found[k] for k in kept]
    aim = budget
    lines: list[str] = []
    for _ in range(3):  # the dates and speakers cost tokens too: aim lower if they overshoot
        picked = _pick_key_facts(candidates, aim, count, covered, 1, _ADDRESSED)
        lines = _chat_lines(picked, candidates, groups, turns)
        over = count("\n".join(lines)) - budget
        if over <= 0:
            break
        aim -= over + 4
    return lines


def _chat_lines(
    picked: list[int], candidates: list[str], groups: list[int], turns: list[ChatTurn]
) -> list[str]:
    """Under each date, one line per speaker: what they said that day, in order
    ("- Caroline: I ran a charity race the Saturday before. Researching adoption
    agencies; …"). A speaker's name once a day, not once a message, leaves room for
    more facts."""
    if not picked:
        return []
    days: dict[str | None, dict[str | None, list[str]]] = {}
    for i in picked:
        turn = turns[groups[i]]
        days.setdefault(turn.date, {}).setdefault(turn.speaker, []).append(candidates[i])
    lines = ["## Key facts"]
    for date, speakers in days.items():
        if date:
            lines.append(f"{date}:")
        for speaker, said in speakers.items():
            text = said[0]
            for clause in said[1:]:  # a sentence's end stays its separator
                text += (" " if text.endswith((".", "!", "?", "…")) else "; ") + clause
            lines.append(f"- {speaker}: {text}" if speaker else f"- {text}")
    return lines


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
            lines.extend(f"- {e}" for e in entries)

    # Requests newest first, up to a third of the budget: a long chat has hundreds of
    # user turns, and the archive keeps the rest.
    requests = by_kind.get(FactKind.REQUEST, [])
    kept_requests: list[str] = []
    spent_requests = 0
    for fact in reversed(requests):
        entry = _clip(fact.key, 300)
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
    section("Requirements", [_clip(f.text, 200) for f in by_kind.get(FactKind.REQUIREMENT, [])])
    section("Decisions", [_clip(f.text, 200) for f in by_kind.get(FactKind.DECISION, [])])
    section("Open questions", [_clip(f.text, 200) for f in by_kind.get(FactKind.QUESTION, [])])
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
    section("Todos", [_clip(f.key, 200) for f in by_kind.get(FactKind.TODO, [])])
    section("Errors", [_clip(f.text, 160) for f in by_kind.get(FactKind.ERROR, [])[-8:]])
    must = "\n".join(lines)
    remaining = budget - count(must)

    timeline = []
    for n, seg in enumerate([] if chat else segments, 1):
        parts = [_clip(seg.request, 90) or "(continued)"]
        if seg.tools:
            parts.append("tools: " + ", ".join(f"{t}×{c}" for t, c in seg.tools.most_common(5)))
        if seg.outcome:
            parts.append("outcome: " + _clip(seg.outcome, 160))
        timeline.append(f"{n}. " + " — ".join(parts))
    timeline_text = "\n".join(["## Timeline", *timeline]) if timeline else ""
    timeline_cost = count(timeline_text) if timeline_text else 0
    fact_budget = remaining - min(timeline_cost, max(0, remaining // 4))
    if fact_budget > 20 and chat:
        lines.extend(_chat_key_facts(items, fact_budget, count, set(words_of(must))))
    elif fact_budget > 20:
        candidates = _sentences(items)
        picked = _pick_key_facts(candidates, fact_budget, count, set(words_of(must)))
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
