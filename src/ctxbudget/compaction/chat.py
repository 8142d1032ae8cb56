"""Conversations between people, for the summary's key facts: who said it, when, and
whether it says anything.

A chat transcript (no tools: people talking, as in the LoCoMo benchmark) often writes
the speaker before each message (``Caroline: …``) and the date before each session
(``[Session 3 — 1:14 pm on 25 May, 2023]``). A key fact keeps both: the summary groups
its facts by date and names the speaker of each line, and a relative date in a fact
("last Saturday") is said relative to that date ("the Saturday before"). Greetings,
compliments, agreement and encouragement ("You've got guts.", "That's so sweet!", "I
totally agree, Mel.", "Have faith in yourself, Jon.") are no facts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ..model import MONTHS, Item

__all__ = [
    "FIRST_PERSON",
    "ChatTurn",
    "chat_turns",
    "is_pleasantry",
    "relative_to_date",
    "tighten",
]

_MONTHS = "|".join(MONTHS)
# "[Session 3 — 1:14 pm on 25 May, 2023]" or "[25 May 2023]" on a line of its own
_HEADER = re.compile(r"\A\s*\[(?P<inner>[^\]\n]{3,100})\][ \t]*(?:\n|\Z)")
_DATE = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTHS}),?\s+(\d{{4}})\b", re.I)
_DATE_US = re.compile(rf"\b({_MONTHS})\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)
# "Caroline: …", "Dr. Ann Lee: …" (a name of up to three capitalised words)
_SPEAKER = re.compile(r"\A(?P<name>[A-Z][\w'’.-]{0,24}(?: [A-Z][\w'’.-]{0,24}){0,2}): (?=\S)")

_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_WEEKDAY_ABBR = {
    "mon": "Monday",
    "tue": "Tuesday",
    "tues": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "thur": "Thursday",
    "thurs": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
_RELATIVE = re.compile(
    rf"\b(?:last\s+(?P<day>{_WEEKDAYS}|mon|tues?|wed|thu(?:rs?)?|fri|sat|sun)\b\.?"
    r"|last\s+(?P<span>week(?:end)?|month|year|night)\b|(?P<yesterday>yesterday)\b)",
    re.I,
)

# A sentence that only reacts to the other person: greetings, thanks, compliments.
_REACTION = re.compile(
    r"^(?:you(?:'re|’re|'ve|’ve|'ll|’ll| are| have| will| must| should| did| look)?|"
    r"that(?:'s|’s| is| was| sounds| looks)|this (?:is|looks|sounds)|it(?:'s|’s) so|"
    r"what an?|so (?:cool|sweet|nice|great|glad|happy|proud)|sounds|bet|glad|"
    r"thanks?|thank you|congrat\w*|aw+|yay|wow|love (?:that|it|this|the)|"
    r"i(?:'m|’m| am) so (?:happy|glad|proud|sorry)|good luck|take care|see (?:you|ya)|"
    r"talk (?:to you )?soon|catch you|hope (?:you|it|that)|can't wait|miss you|"
    r"hey|hi|hello|bye|good (?:to|morning|night)|nice (?:to|one|job|work)|"
    r"woo+hoo+|yum\w*|yep|yup|oof|ouch|ugh|whoa|yikes|phew|bummer|"
    r"(?:oh,? )?(?:i'?m )?so sorry|sorry (?:to hear|about|i missed|for))\b",
    re.I,
)
# An aside to the other person that names nothing: agreement, encouragement, asking for
# news ("I totally agree.", "Have faith in yourself.", "Anything fun?", "Keep me
# posted."). Only when the sentence names nothing: "Have faith in the surgeon at Mercy
# Hospital." and "Come join us at the Boston marathon!" say something.
_ASIDE = re.compile(
    r"^(?:i(?:'m|’m| am) (?:so |really )?(?:thrilled|excited|happy|glad|proud|impressed) "
    r"(?:for you|with you|of you|to hear|you're|you are)|"
    r"i (?:\w+ )?(?:admire|appreciate) (?:you|your|it|that|what you)|"
    r"(?:i )?(?:totally |completely |fully |so |definitely )?agree(?: with you)?[.!]*$|"
    r"i (?:couldn't|could not) agree|agreed[.!]*$|no doubts?[.!]*$|no problem\b|"
    r"it must (?:have been|be)|(?:i )?can'?t wait to (?:hear|see) (?:it|more|them|that|how)|"
    r"anything (?:fun|new|else)\??$|feel free|(?:i'?ll )?keep (?:ya|you|me) posted|"
    r"i wish i(?:'d| had) known|have faith|believe in (?:yourself|you)|come join|"
    r"let'?s (?:do this|rock|keep (?:it|going)|continue)|"
    r"(?:i )?appreciate (?:your|it|that|the kind))",
    re.I,
)
# A reaction naming nothing ("That mountaineering trip sounds amazing.", "Your passion
# inspires me."): a few words about what the other said, no name or number in them.
_REMARK = re.compile(
    r"^(?:(?:that|this|those|these)(?: [\w'’-]+){1,3} (?:sounds?|looks?|seems?|is|are|was|were)"
    r"|your)\b",
    re.I,
)
# A turn of the talk with nothing after it ("On another note", "Speaking of which").
_CONNECTIVE = re.compile(
    r"^(?:on (?:another|a different|a side) note|speaking of (?:which|that)|unfortunately|"
    r"anyway|by the way|btw)[.!,:]?$",
    re.I,
)
# A picture shown with nothing said of it ("Here's a pic from the day!")
_CAPTION = re.compile(
    r"^here(?:'s|’s| is) (?:a |an |the |my |our |one )?(?:quick |little )?"
    r"(?:pic|photo|picture|snap|shot)s?"
    r"(?: (?:of|from) (?:it|that|them|this|then|the day|that day))?[.!]*$",
    re.I,
)
_REACTION_WORDS = 8
# A word that may be said to the other person at either end of a sentence ("That
# sounds great, Mel!", "Wow, Maria, that's cool!"): checked against the speakers' names.
_VOCATIVE_END = re.compile(r",\s+(?P<name>[A-Z][\w'’-]{0,24})\s*(?=[.!?]*$)")
_VOCATIVE_START = re.compile(
    r"^(?:(?:woah|whoa|wow|oh|hey|yeah|yes|aw+),?\s+)?(?P<name>[A-Z][\w'’-]{0,24}),\s+",
    re.I,
)
_I = frozenset(["I", "I'm", "I’m", "I've", "I’ve", "I'd", "I’d", "I'll", "I’ll"])
# The speaker's own doings: "we won", "my sister", "I made".
FIRST_PERSON = re.compile(
    r"\b(?:i|i'm|i've|i'd|i'll|my|me|mine|we|we're|we've|our|ours|us)\b", re.I
)
# Encouragement and sign-offs: "Keep it up", "Don't give up on your dreams", "Catch ya later".
_ENCOURAGEMENT = re.compile(
    r"^(?:keep (?:it|up|going|at it|diving|pushing|rocking|doing)|don'?t (?:give up|stop|worry)|"
    r"never give up|go for it|you got this|catch (?:ya|you)|later|cheers|enjoy|"
    r"have (?:fun|a great)|life'?s good|same here|me too|no worries|of course|"
    r"definitely|totally|absolutely)\b",
    re.I,
)


@dataclass(slots=True, frozen=True)
class ChatTurn:
    """One message of a chat: who wrote it, the date it belongs to, what it says."""

    speaker: str | None
    date: str | None  # "25 May 2023"
    body: str


def _date_of(text: str) -> str | None:
    m = _DATE.search(text) or _DATE_US.search(text)
    return m[0] if m else None


def chat_turns(items: Sequence[Item], earlier: Sequence[Item] = ()) -> list[ChatTurn]:
    """Each item's speaker, date and text without them (the date carried forward from
    the last header seen, in ``items`` or in the ``earlier`` items before them)."""
    turns = []
    date: str | None = None
    for item in reversed(earlier):  # the session the first item belongs to
        header = _HEADER.match(item.text)
        if header and (date := _date_of(header["inner"])):
            break
    for item in items:
        body = item.text
        header = _HEADER.match(body)
        if header:
            date = _date_of(header["inner"]) or date
            body = body[header.end() :]
        speaker = _SPEAKER.match(body)
        name = speaker["name"] if speaker else None
        if speaker:
            body = body[speaker.end() :]
        turns.append(ChatTurn(name, date, body))
    return turns


def is_pleasantry(sentence: str, names: Collection[str] = ()) -> bool:
    """A short reaction to the other person: no fact in it. ``names``: the speakers'
    names; one said to the other person ("…, Mel!") names no thing."""
    words = sentence.split()
    if len(words) > _REACTION_WORDS or any(ch.isdigit() for ch in sentence):
        return False
    bare = _without_vocatives(sentence.strip(" \"'“”-–—…"), names)
    words = bare.split()
    if any(p.match(bare) for p in (_REACTION, _ENCOURAGEMENT, _CONNECTIVE)):
        return True
    named = any(w[:1].isupper() and w.rstrip(".,;:!?") not in _I for w in words[1:])
    if (_ASIDE.match(bare) or _CAPTION.match(bare) or _REMARK.match(bare)) and not named:
        return True
    # a short exclamation that names nothing ("That themed tree looks amazing!"), unless
    # the speakers say what they did or have ("We even won a trophy!")
    if FIRST_PERSON.search(bare):
        return False
    return bare.endswith("!") and not named


def _without_vocatives(sentence: str, names: Collection[str]) -> str:
    """``sentence`` without a speaker's name said at its start or end ("Mel" of
    "Melanie" too): "Wow, Maria, that's cool!" → "that's cool!"."""
    if not names:
        return sentence

    def said(match: re.Match[str]) -> bool:
        name = match["name"]
        return len(name) >= 3 and any(n.startswith(name) for n in names)

    end = _VOCATIVE_END.search(sentence)
    if end is not None and said(end):
        sentence = sentence[: end.start()] + sentence[end.end() :]
    start = _VOCATIVE_START.match(sentence)
    if start is not None and said(start):
        sentence = sentence[start.end() :]
    return sentence


def relative_to_date(text: str) -> str:
    """ "last Saturday" → "the Saturday before", "yesterday" → "the day before": read
    with the date the summary writes above the fact."""

    def resolve(m: re.Match[str]) -> str:
        if m["yesterday"]:
            return "the day before"
        if m["day"]:
            day = m["day"].lower().rstrip(".")
            name = _WEEKDAY_ABBR.get(day, day.capitalize())
            return f"the {name} before"
        return f"the {m['span'].lower()} before"

    return _RELATIVE.sub(resolve, text)


# --- tightening a fact: words that colour a sentence and hold no answer --------------
# Measured on LoCoMo's dev QA (762 answers, categories 1–4): none of these words occurs
# in an answer, while the conversations say them ~1,200 times ("really" 477,
# "definitely" 132). "super", "so much", "great", "like" do occur in answers: kept.
# ("just" stays before a number or an article, where it means "only": "just three
# people came", "just a hobby"; and in "just so")
_WORDS = (
    r"really|just(?!\s+(?:so|one|two|three|four|five|a|an|the|\d)\b)|actually|totally|"
    r"definitely|absolutely|literally|basically"
)
# lower case inside a sentence, capitalised only at its start: "Just Dance" is a title
_INTENSIFIER = re.compile(rf"(?:\b(?:{_WORDS})|^(?i:{_WORDS}))\b(?!\s+(?:not|no)\b)\s*")
# "not really", "not just X but Y", "don't actually": the word then changes the meaning.
_NEGATED = re.compile(r"\b(?:not|never|no|cannot|\w+n[’']t)\s*\Z", re.I)
# An interjection at the start of a clause ("Oh, ", "…, haha!") or a laugh anywhere.
_INTERJECTION = re.compile(
    r"(?:(?<=^)|(?<=[,;:–—-] )|(?<=[,;:–—-]))\s*(?:oh|wow|yeah|yep|yup|hey|woah|whoa|aw+|"
    r"ah|ooh|yay|nah|um+|uh+|hmm+)\b[,!.]*\s*|[,\s]*\b(?:ha(?:ha)+|he(?:he)+|lol|lmao)\b",
    re.I,
)
# A hedge that says nothing of what follows (", you know,", "To be honest, ", "I mean,
# "), or before an opinion about a thing, which its speaker's name says is theirs ("I
# think it's vital" → "It's vital"). Otherwise "I think" and "I guess" stay: "I think
# I'm pregnant!" is not "I'm pregnant!", nor "I think he'll propose" a plan.
_HEDGE = re.compile(
    r"(?:(?<=^)|(?<=[,;:] ))(?:(?:you know|i mean|to be honest),\s+|(?:i think|i guess)\s+"
    r"(?=(?:it(?:['’]s| is| was| would| will)|that(?:['’]s| is| was)|this is)\b))"
    r"|,\s*you know(?=[,.!?])",
    re.I,
)
# "so" as an intensifier of one last word after a verb of being or seeming ("I'm so
# proud!", "it was so fun."); "so loud that…", "so I can…", "so tired I fell asleep",
# "so much" and "so far" mean more and stay.
_SO = re.compile(
    r"(\b(?:is|was|are|were|am|be|been|feel|felt|feels|look|looks|looked|seem|seems|seemed|"
    r"sound|sounds|sounded)|['’](?:m|s|re))\s+(?:so|pretty|very)\s+(?!(?:much|many|far|long|often|well)\b)"
    r"(?=[\w'’-]+\s*(?:[,.!?]|\Z))",
    re.I,
)
_EMOJI = re.compile(
    "\\s*[\U0001f000-\U0001faff\u2600-\u27bf\u2b50\u2b55\u231a-\u23ff\ufe0f\u200d]+"
)


def tighten(sentence: str) -> str:
    """``sentence`` without the words that colour it and hold no fact: intensifiers
    ("really", "just", "totally"; kept after a negation: "not really" means less), an
    interjection at a clause's start ("Oh, ", "yeah, "), a laugh ("haha"), a hedge ("I
    think", ", you know,"), "so" or "pretty" after a verb of being ("I'm so proud" →
    "I'm proud"), emoji; never a word of a title ("The Very Hungry Caterpillar", "Just
    Dance") or a meaning ("Absolutely not.", "I think he'll propose"). "" when nothing
    is left."""
    text = sentence
    if not text.isascii():
        text = _EMOJI.sub("", text)
    text = _INTERJECTION.sub("", text)
    text = _HEDGE.sub("", text)
    text = _INTENSIFIER.sub(lambda m: m[0] if _NEGATED.search(text, 0, m.start()) else "", text)
    text = _SO.sub(r"\1 ", text)
    text = re.sub(r"\s+([,.!?;:])", r"\1", " ".join(text.split()))
    text = re.sub(r"^(?:[,;:.!?\s–—]|-(?!\d))+", "", text)  # "-20 degrees" keeps its sign
    text = re.sub(r",(?=[,.!?])", "", text)
    text = re.sub(r"[,;:\s–—-]+\Z", ".", text)
    if not any(ch.isalnum() for ch in text):
        return ""
    if text != sentence and text[0].islower() and not text[1:2].isupper():  # not "iPhone"
        return text[0].upper() + text[1:]
    return text
