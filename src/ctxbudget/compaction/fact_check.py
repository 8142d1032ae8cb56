"""Whether facts survived: the presence rules, and searching one text for thousands
of short keys in time that does not grow with the text.

Requirements, dates, numbers and entities are present when their key occurs,
case-insensitively (an id not followed by more of an id); files when their path, or
their basename, occurs as written; todos, requests, decisions, questions, instructions
and errors when at least 60% of their distinct words of 4+ letters occur anywhere.
Pure functions over strings, as ``facts`` (which finds the facts) is.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Iterator, Sequence

from .types import Fact, FactKind, FactReport

__all__ = [
    "INDEX_FROM_FACTS",
    "WORD",
    "WORD_KINDS",
    "WORD_SHARE",
    "FactCheck",
    "check_facts",
    "fact_present",
    "text_words",
]

#: A word as the presence rules count them: 4+ letters.
WORD = re.compile(r"[^\W\d_]{4,}")
_ASCII_WORD = re.compile(r"[a-z]{4,}")
WORD_SHARE = 0.6  # the benchmark: ≥ 60% of the distinct words of 4+ letters
#: The kinds present by their words (the others by their key).
WORD_KINDS = frozenset(
    {
        FactKind.INSTRUCTION,
        FactKind.DECISION,
        FactKind.QUESTION,
        FactKind.TODO,
        FactKind.REQUEST,
        FactKind.ERROR,
    }
)


def text_words(text: str) -> set[str]:
    """The distinct words of 4+ letters of ``text``, case-folded: ``fact_present``'s ``words``."""
    if text.isascii():  # the same words, twice as fast
        return set(_ASCII_WORD.findall(text.lower()))
    return set(WORD.findall(text.casefold()))


class _Haystack:
    """One text searched for many short keys, with the answers of ``in`` and ``find``.

    Checking every fact of a long session by scanning the whole compacted text made
    the check cost facts × text. This index records where each run of word characters
    (letters, digits, underscore: ``worker_1`` is one run, as rare as the name) of the
    text starts. A key occurs at position q only if each of its runs occurs there too:
    a run bounded on both sides inside the key is a whole run of the text, one bounded
    on its left starts a run of the text, one bounded on its right ends one. So the
    positions of the key's rarest bounded run, shifted by its offset, hold every
    occurrence of the key; each is then confirmed with ``startswith``. A key with no
    bounded run (one word, matched anywhere) falls back to a plain search.
    """

    _RUN = re.compile(r"\w+")
    _MAX_CANDIDATES = 4096  # beyond this a plain search is as quick

    def __init__(self, text: str) -> None:
        self.text = text
        starts: dict[str, list[int]] = {}
        for match in self._RUN.finditer(text):
            starts.setdefault(match.group(), []).append(match.start())
        self._starts = starts
        self._prefixes = sorted(starts)
        self._suffixes = sorted(run[::-1] for run in starts)

    def _runs_from(self, ordered: list[str], stem: str) -> Iterator[str]:
        at = bisect.bisect_left(ordered, stem)
        while at < len(ordered) and ordered[at].startswith(stem):
            yield ordered[at]
            at += 1

    def _positions(self, key: str) -> Iterator[int] | None:
        """Every position where ``key`` may start (lazily: a search stops at the first
        hit), or None: search the whole text."""
        starts = self._starts
        best: list[tuple[str, int]] | None = None  # (run of the text, shift to the key)
        best_cost = self._MAX_CANDIDATES + 1
        for match in self._RUN.finditer(key):
            run, offset = match.group(), match.start()
            left, right = offset > 0, match.end() < len(key)
            if left and right:
                matches: Iterator[tuple[str, int]] = iter([(run, -offset)] if run in starts else [])
            elif left:  # the run starts a run of the text
                matches = ((r, -offset) for r in self._runs_from(self._prefixes, run))
            elif right:  # the run ends a run of the text (its offset is 0)
                matches = (
                    (r[::-1], len(r) - len(run)) for r in self._runs_from(self._suffixes, run[::-1])
                )
            else:
                continue
            chosen: list[tuple[str, int]] = []
            cost = 0
            for text_run, shift in matches:
                cost += len(starts[text_run])
                if cost >= best_cost:
                    break
                chosen.append((text_run, shift))
            if cost < best_cost:
                best, best_cost = chosen, cost
                if not cost:
                    break
        if best is None:
            return None
        return (p + shift for text_run, shift in best for p in starts[text_run])

    def __contains__(self, key: str) -> bool:
        positions = self._positions(key)
        if positions is None:
            return key in self.text
        return any(q >= 0 and self.text.startswith(key, q) for q in positions)

    def has_id(self, key: str) -> bool:
        positions = self._positions(key)
        if positions is None:
            return _has_id(self.text, key)
        text, end = self.text, len(key)
        for q in positions:
            if q >= 0 and text.startswith(key, q):
                after = text[q + end : q + end + 1]
                if not (after.isalnum() or after == "-"):
                    return True
        return False


_PIECE_END = re.compile(r"[\s,;()\[\]{}<>\"'`]+")


class _Text:
    """A text as the presence rules read it: as written, case-folded, its words.

    With ``indexed`` the searches go through a ``_Haystack`` (built on first use):
    the same answers, in time that does not grow with the text for most keys.
    """

    def __init__(self, text: str, words: set[str], *, indexed: bool = False) -> None:
        self.text = text
        self.folded = text.casefold()
        self.words = words
        self._indexed = indexed
        self._raw_index: _Haystack | None = None
        self._folded_index: _Haystack | None = None
        self._pieces: tuple[set[str], set[str]] | None = None

    def pieces(self) -> tuple[set[str], set[str]] | None:
        """With ``indexed``: the text's pieces between spaces and punctuation that no path
        holds, and the part of each after its last "/". A piece is in the text, so a
        path or basename among them is present: a set look-up spares most files the
        search (a summary lists thousands)."""
        if not self._indexed:
            return None
        if self._pieces is None:
            parts = set(_PIECE_END.split(self.text))
            self._pieces = parts, {part.rpartition("/")[2] for part in parts}
        return self._pieces

    def raw(self) -> _Haystack | str:
        if not self._indexed:
            return self.text
        if self._raw_index is None:
            self._raw_index = _Haystack(self.text)
        return self._raw_index

    def casefolded(self) -> _Haystack | str:
        if not self._indexed:
            return self.folded
        if self._folded_index is None:
            self._folded_index = _Haystack(self.folded)
        return self._folded_index


def _present(fact: Fact, text: _Text) -> bool:
    kind = fact.kind
    key = fact.key
    if kind in WORD_KINDS:
        wanted = set(WORD.findall(key.casefold()))
        if not wanted:
            return key.casefold() in text.casefolded()
        return len(wanted & text.words) >= WORD_SHARE * len(wanted) - 1e-9
    if kind == FactKind.FILE:
        name = key.rsplit("/", 1)[-1]
        # A directory's last segment ("tasks/") is too common a word to stand for it.
        by_name = bool(name) and not key.endswith("/") and "." in name
        pieces = text.pieces()
        if pieces is not None and (key in pieces[0] or (by_name and name in pieces[1])):
            return True  # a whole piece of the text: in it
        raw = text.raw()
        return key in raw or (by_name and name in raw)
    if kind == FactKind.REQUIREMENT:
        folded = text.casefolded()
        if isinstance(folded, _Haystack):
            return folded.has_id(key.casefold())
        return _has_id(folded, key.casefold())
    return key.casefold() in text.casefolded()


def _has_id(folded: str, key: str) -> bool:
    """``key`` not followed by more of an id: REQ-1 is not in "REQ-12", #6 not in "#69"."""
    at = folded.find(key)
    while at >= 0:
        after = folded[at + len(key) : at + len(key) + 1]
        if not (after.isalnum() or after == "-"):
            return True
        at = folded.find(key, at + 1)
    return False


def fact_present(fact: Fact, text: str, *, words: set[str] | None = None) -> bool:
    """Is ``fact`` still in ``text``?

    Requirements, dates, numbers and entities: the key, case-insensitively. Files: the
    path or its basename, as written. Todos, requests, decisions, questions and errors:
    at least 60% of the key's distinct words of 4+ letters (the issue's benchmark rule);
    ``words`` is ``text_words(text)``, precomputed when checking many facts.
    """
    if words is None:
        words = text_words(text) if fact.kind in WORD_KINDS else set()
    return _present(fact, _Text(text, words))


#: From this many facts on, ``check_facts`` indexes the text instead of scanning it
#: once per fact (the answers are the same either way).
INDEX_FROM_FACTS = 64


def check_facts(facts: Sequence[Fact], text: str) -> FactReport:
    """Which facts survived in ``text``: totals, per-kind (kept, total) and the missing."""
    return FactCheck(facts, text).report()


class FactCheck:
    """Facts checked against a text made of a fixed part and a part that changes (a
    compaction's summary, written again for each aim): the fixed part is searched once.

    ``report(extra)`` answers for the text ``fixed`` with ``extra`` put in at one place
    between two of its lines (or at an end): a key without a newline that occurs there
    occurs within one of the two, and the words of the whole are those of both. The
    same answers as ``check_facts`` on the whole text.
    """

    def __init__(
        self, facts: Sequence[Fact], fixed: str, whole: Collection[int] = frozenset()
    ) -> None:
        """``whole``: the items (``Fact.item``) the fixed part holds as they were: a fact
        found in one of them is in it without a search (a fact is in the text it was
        found in), the most of a check when a compaction keeps most of a long session."""
        self.facts = list(facts)
        self.fixed = fixed
        self._need_words = any(f.kind in WORD_KINDS for f in self.facts)
        self._words = text_words(fixed) if self._need_words else set()
        searched = [f for f in self.facts if f.item not in whole]
        text = _Text(fixed, self._words, indexed=len(searched) >= INDEX_FROM_FACTS)
        self._found = {id(f) for f in self.facts if f.item in whole}
        self._found.update(id(f) for f in searched if _present(f, text))
        self._pending = [f for f in self.facts if id(f) not in self._found]
        # the latest report, the ``extra`` it was for and the words of the whole
        self._latest: tuple[FactReport, str, set[str]] | None = None

    def report(self, extra: str = "", *, since: FactReport | None = None) -> FactReport:
        """The facts in the fixed part with ``extra`` put in. ``since``: a report of this
        check for a beginning of ``extra`` (text was added to it since): what it found
        is still there, only what it missed is looked for (in the added text alone,
        when ``since`` is the latest report and the addition starts a new line)."""
        found = self._found
        pending = self._pending
        searched, words = extra, self._words
        if since is not None:
            missed = {id(f) for f in since.missing}
            found = {id(f) for f in self.facts if id(f) not in missed}
            pending = since.missing
            latest = self._latest
            if latest is not None and latest[0] is since and extra.startswith(latest[1]):
                added = extra[len(latest[1]) :]
                if added.startswith("\n"):  # a key without a newline is in one or the other
                    searched, words = added, latest[2]
        if pending and extra:
            words = words | text_words(searched) if self._need_words else set()
            text = _Text(searched, words, indexed=len(pending) >= INDEX_FROM_FACTS)
            found = found | {
                id(f)
                for f in pending
                if (
                    _present(f, text)
                    if "\n" not in f.key
                    else fact_present(f, self.fixed + "\n" + extra)
                )
            }
        report = FactReport(total=len(self.facts))
        counts: dict[str, list[int]] = {}
        for fact in self.facts:
            tally = counts.setdefault(fact.kind, [0, 0])
            tally[1] += 1
            if id(fact) in found:
                tally[0] += 1
            else:
                report.missing.append(fact)
        report.kept = report.total - len(report.missing)
        report.by_kind = {kind: (kept, total) for kind, (kept, total) in counts.items()}
        self._latest = (report, extra, words) if pending and extra else None
        return report
