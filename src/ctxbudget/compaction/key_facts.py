"""Key facts: the sentences of a context that say most, picked greedily for the most
new information per token, words weighted by rarity and each counted once. The
extractive summary (``summarize``) writes them after what must survive; a chat's are
whole sentences grouped under their date, a line per speaker (``chat``).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

from ..model import Item, Kind, Role
from .chat import FIRST_PERSON, ChatTurn, chat_turns, is_pleasantry, relative_to_date, tighten

__all__ = ["chat_key_facts", "clip", "pick_key_facts", "sentences", "words_of"]

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+|\d[\d:.,/-]*")
# A sentence ends at . ! or ? before a capital, a digit or a quote, but not after an
# initial or a title ("J.K. Rowling", "Dr. Lee"), and at a line break.
_SENTENCE = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\b[MD]r\.)(?<!\bMrs\.)(?<!\bSt\.)(?<!\bMs\.)"
    r"\s+(?=[A-Z0-9\"'(\[])|\n+"
)
# Names and numbers inside a sentence (not its first word, nor "I", "I've" after a
# comma): "went to Paris in 2022".
_NAMED = re.compile(r"(?<=[a-z,;:] )(?!I\b|I['’])[A-Z][a-zA-Z'’-]+|\d[\d:.,/-]*")
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


def words_of(text: str) -> list[str]:
    # ASCII lower-cased first gives the same words in one call; other text may not (the
    # Kelvin sign "\u212a" lower-cases to "k", a letter the pattern would then take)
    if text.isascii():
        return _WORD.findall(text.lower())
    return [w.lower() for w in _WORD.findall(text)]


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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
_FILLER = re.compile(
    r"^(?:(?:wow|hey|hi|oh|yeah|yes|thanks|thank you|aw+|haha|lol|omg|ooh|cool|great|"
    r"awesome|nice|sure|ok|okay|so|well|really|totally|absolutely)\b[\w ]{0,20}?[,!.]\s*)+",
    re.I,
)

# Thanks for something, the "for" the thanks' own ("Thanks, Caroline, for letting me
# join!", "Thank you so much for the advice"): its rest is no sentence once the thanks
# is cut. Not "Thanks, I went for the vegan option."
_THANKS_FOR = re.compile(
    r"^(?:thanks|thank you)(?:\s+(?:so|very)\s+much)?(?:,\s*(?-i:[A-Z])[\w'’-]*,?)?\s+for\b", re.I
)


def sentences(
    items: Sequence[Item],
    *,
    chat: bool = False,
    groups: list[int] | None = None,
) -> list[str]:
    """Candidate key facts: the whole sentences of the text items, each once. In a
    ``chat`` between people an interjection before a sentence ("Wow, ", "Yeah! ") is
    left out, and "I'll always remember our trip" is what a person said, not an agent
    narrating its next step ("Let me check the tests:", left out elsewhere).
    ``groups``, when given, receives the index of the item each candidate came from."""
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
            if chat:
                if not _THANKS_FOR.match(sentence):
                    # (a thanks for something is kept whole: cut, it left a fragment,
                    # "Caroline, for letting me…"; the pleasantry filter judges it whole)
                    sentence = _FILLER.sub("", sentence)
            elif item.role is Role.ASSISTANT and _NARRATION.match(sentence):
                continue
            if len(sentence) < _SHORTEST or sentence.lower() in seen:
                continue
            seen.add(sentence.lower())
            out.append(clip(sentence, 400))
            if groups is not None:
                groups.append(index)
    return out


# A sentence that speaks of the other person alone, in a chat (``pick_key_facts``).
_YOU = re.compile(r"\b(?:you|you're|you've|you'd|you'll|your|yours)\b", re.I)
# Chosen by leave-one-conversation-out on LoCoMo's dev conversations: 0.1 to 0.3 keep
# the same answers on each held-out one (none fewer than 1.0); the mildest of them.
_ADDRESSED = 0.3
# A name or a number inside a sentence weighs this many times its rarity. Chosen
# leave-one-conversation-out on LoCoMo's dev conversations over 2–7: 3 best on the
# other four for four held-out ones, 5 for one; held out, 72.1% of answers (70.7% at 2).
# The same weight in every summary: the Claude Code sessions' benchmark keeps 100%.
_NAMED_WEIGHT = 3.0
# A number said in words is a number too ("three turtles", "five years ago", "twice a
# week"): weighed as a name or a number in figures is.
_NUMBER_WORDS = frozenset(
    {
        *("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
        *("eleven", "twelve", "fifteen", "twenty", "thirty", "forty", "fifty", "hundred"),
        *("thousand", "once", "twice", "first", "second", "third", "half", "dozen"),
    }
)
# A general statement in a chat: no one in it, neither the speaker ("I", "we") nor the
# other ("you"), and no name or number ("Family's everything.", "Being outdoors can be
# really enjoyable."); what a person did or has, questions ask for, says who. Chosen
# leave-one-conversation-out on LoCoMo's dev conversations over 0.5–0.95 (with number
# words as numbers): 0.85 best on the other four for four held-out ones; held out, 73.2%
# of answers (72.5% before).
_GENERAL = 0.85
# A sentence shorter than this many characters does not stand alone as a fact.
_SHORTEST = 12


def pick_key_facts(
    sentences: list[str],
    budget: int,
    count: Callable[[str], int],
    covered: set[str],
    separator_cost: int = 2,
    addressed: float = 1.0,
    general: float = 1.0,
) -> list[int]:
    """Greedy: most not-yet-covered information per token, until budget.

    A word weighs its rarity (idf), three times for names and numbers (what questions about
    a conversation ask for); questions weigh less than statements, which answer them.
    ``addressed`` weighs a sentence about the other person alone ("you", no "I" or "we"):
    in a chat it reacts or asks, and what that person did they say themselves.
    ``general`` weighs a sentence about no one (no "I", "we", "you", name or number).
    """
    docs = [set(words_of(s)) - _STOP for s in sentences]
    df: Counter[str] = Counter(w for d in docs for w in d)
    n = max(1, len(docs))
    idf = {w: math.log(1 + n / c) for w, c in df.items()}
    named: set[str] = set()
    for s in sentences:
        for m in _NAMED.finditer(s):
            named.add(m.group(0).lower())
    named.update(w for d in docs for w in d if w in _NUMBER_WORDS)
    weight = {w: v * (_NAMED_WEIGHT if w in named else 1.0) for w, v in idf.items()}
    factor = [
        (0.4 if s.rstrip().endswith("?") else 1.0)
        * (addressed if _YOU.search(s) and not FIRST_PERSON.search(s) else 1.0)
        * (general if _is_general(s) else 1.0)
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


def _is_general(sentence: str) -> bool:
    """A statement about no one: no first or second person, no name, no number."""
    return not (FIRST_PERSON.search(sentence) or _YOU.search(sentence) or _NAMED.search(sentence))


def chat_key_facts(
    items: Sequence[Item],
    budget: int,
    count: Callable[[str], int],
    covered: set[str],
    earlier: Sequence[Item] = (),
) -> list[str]:
    """The key facts of a chat in about ``budget`` tokens: the whole sentences that say
    most, under the date they belong to, each speaker's on one line after their name
    ("- Caroline: I ran a charity race for mental health the Saturday before.");
    greetings, agreement and compliments left out. ``earlier``: the items before these (kept
    as they are), whose last session header dates the first of them."""
    turns = chat_turns(items, earlier)
    bodies = [dataclasses.replace(i, text=t.body) for i, t in zip(items, turns, strict=True)]
    found: list[int] = []
    said = sentences(bodies, chat=True, groups=found)
    names = {t.speaker.split()[0] for t in turns if t.speaker}  # "Mel", "Ann" of "Ann Lee"
    tight = [tighten(sentence) for sentence in said]
    kept = [k for k, sentence in enumerate(said) if tight[k] and not is_pleasantry(sentence, names)]
    candidates = [relative_to_date(tight[k]) for k in kept]
    groups = [found[k] for k in kept]
    aim = budget
    lines: list[str] = []
    for _ in range(3):  # the dates and speakers cost tokens too: aim lower if they overshoot
        picked = pick_key_facts(candidates, aim, count, covered, 1, _ADDRESSED, _GENERAL)
        lines = _chat_lines(picked, candidates, groups, turns)
        over = count("\n".join(lines)) - budget
        if over <= 0:
            break
        aim -= over + 4
    return lines


def _chat_lines(
    picked: list[int],
    candidates: list[str],
    groups: list[int],
    turns: list[ChatTurn],
) -> list[str]:
    """Under each date, one line per speaker: what they said that day, in order
    ("- Caroline: I ran a charity race the Saturday before. I'm researching adoption
    agencies."). A speaker's name once a day, not once a message, leaves room for
    more facts."""
    if not picked:
        return []
    days: dict[str | None, dict[str | None, str]] = {}
    for i in picked:
        turn = turns[groups[i]]
        said = days.setdefault(turn.date, {})
        text = said.get(turn.speaker)
        if text is None:
            text = candidates[i]
        else:  # a sentence's end stays its separator
            text += (" " if text.endswith((".", "!", "?", "…")) else "; ") + candidates[i]
        said[turn.speaker] = text
    lines = ["## Key facts"]
    for date, speakers in days.items():
        if date:
            lines.append(f"{date}:")
        for speaker, text in speakers.items():
            lines.append(f"- {speaker}: {text}" if speaker else f"- {text}")
    return lines
