"""The archive search rules every backend shares: words, query terms, BM25.

A query is user text ("When did Caroline go to the LGBTQ support group?"), never
query syntax. ``query_terms`` cuts it into words the way SQLite's ``unicode61``
tokenizer cuts the indexed text (letters and digits; case and diacritics folded),
drops stopwords, one-letter words and, when other words remain, month names and
years, and keeps at most ``MAX_TERMS`` distinct words. A word of letters whose light
stem (one of ``-ing -ed -es -s`` cut off) has 4 letters or more matches any word
starting with that stem (``groups`` → ``group*``); shorter words and words with digits
match exactly. The SQLite backend turns the terms into an FTS5 query; the memory
backend and SQLite without FTS5 score with ``bm25_scores``, the same formula and
constants as FTS5's ``bm25()``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..model import MONTHS

MAX_TERMS = 32
_WORD = re.compile(r"[^\W_]+")
_SUFFIXES = ("ing", "ed", "es", "s")
_MIN_STEM = 4
# FTS5's bm25() constants.
_K1 = 1.2
_B = 0.75
K = TypeVar("K")

_STOPWORDS = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during
    each few for from further had has have having he her here hers herself him himself
    his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some
    such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom
    whose why will with would you your yours yourself yourselves
"""
STOPWORDS = frozenset(_STOPWORDS.split())


@dataclass(frozen=True, slots=True)
class Term:
    """One query word; ``prefix``: it matches every word that starts with it."""

    text: str
    prefix: bool

    def matches(self, word: str) -> bool:
        """Whether ``word`` (folded) is this term, or starts with it."""
        return word.startswith(self.text) if self.prefix else word == self.text


def fold(text: str) -> str:
    """Lower case without diacritics, as ``unicode61`` compares words."""
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    # the combining marks among its distinct characters (most text has none: a file
    # read's "→" is no accent), removed at once
    marks = [c for c in _non_ascii(decomposed) if c > "\u02ff" and unicodedata.combining(c)]
    return decomposed.translate(dict.fromkeys(map(ord, marks))) if marks else decomposed


_ASCII = bytes(range(0x80))


def _non_ascii(text: str) -> set[str]:
    """The distinct characters of ``text`` beyond ASCII: its UTF-8 without the ASCII
    bytes (which no other character's bytes are), not a walk over every character."""
    rest = text.encode("utf-8", "surrogatepass").translate(None, _ASCII)
    return set(rest.decode("utf-8", "surrogatepass"))


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters and digits, folded."""
    return _WORD.findall(fold(text))


# Each byte as a word's ("a") or not (" "): ASCII as ``_WORD`` classes it, the bytes
# beyond as one class, word or not (``_word_count``).
_ASCII_CLASSES = bytes(ord("a") if _WORD.fullmatch(chr(b)) else ord(" ") for b in range(0x80))
_CLASSED = {word: _ASCII_CLASSES + (b"a" if word else b" ") * 0x80 for word in (False, True)}


def _word_count(folded: str) -> int:
    """``len(words(text))`` for ``folded = fold(text)``, without making the words:
    the runs of word bytes in its UTF-8, each byte classed as its character's class.
    A text whose characters beyond ASCII are of both classes is cut by the regex."""
    if folded.isascii():
        classed = folded.encode("ascii").translate(_CLASSED[False])
    else:
        kinds = {_WORD.fullmatch(c) is not None for c in _non_ascii(folded)}
        if len(kinds) > 1:
            return len(_WORD.findall(folded))
        classed = folded.encode("utf-8", "surrogatepass").translate(_CLASSED[True in kinds])
    return classed.count(b" a") + classed.startswith(b"a")


def word_counts(text: str) -> Counter[str]:
    return Counter(words(text))


def _term(word: str) -> Term:
    if not word.isalpha():
        return Term(word, prefix=False)
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            return Term(word[: -len(suffix)], prefix=True)
    return Term(word, prefix=len(word) >= _MIN_STEM)


def query_terms(query: str) -> list[Term]:
    """The terms of a free-text query; empty when no word is worth searching. Month
    names and years are left out when other words remain (``_is_date_word``)."""
    terms: dict[Term, None] = {}
    dates: dict[Term, None] = {}
    for word in words(query):
        if word in STOPWORDS or (len(word) == 1 and not word.isdigit()):
            continue
        (dates if _is_date_word(word) else terms).setdefault(_term(word))
        if len(terms) == MAX_TERMS:
            break
    return list(terms or dates)[:MAX_TERMS]


_MONTHS = frozenset(month.lower() for month in MONTHS)


def _is_date_word(word: str) -> bool:
    """A month or a year ("June", "2023"): in an archived conversation these name when
    something was said (its session's date header), not what: as search words they
    match the header of every session that month and crowd out the message that
    answers ("What did John's family attend in June 2023?")."""
    return word in _MONTHS or (len(word) == 4 and word.isdigit() and word[:2] in ("19", "20"))


def bm25_scores(
    terms: Sequence[Term],
    documents: Sequence[Mapping[str, int]],
    *,
    total: int | None = None,
    average: float | None = None,
) -> list[float]:
    """FTS5's BM25 of each document (as word counts) for terms OR-ed; 0 = no match.

    ``total`` and ``average`` (the number of documents searched and their average
    length in words) default to ``documents``'; given, ``documents`` may be the ones
    that can match alone (``search_texts``)."""
    total = len(documents) if total is None else total
    if not documents or not terms or not total:
        return [0.0] * len(documents)
    lengths = [sum(counts.values()) for counts in documents]
    return _bm25(_frequencies(terms, documents), lengths, total=total, average=average)


def _frequencies(terms: Sequence[Term], documents: Sequence[Mapping[str, int]]) -> list[list[int]]:
    """Each document's number of words matching each term (in ``terms`` order)."""
    # each distinct word's terms, once: a document's words are then read once
    matching: dict[str, list[int]] = {}
    frequencies: list[list[int]] = []
    for counts in documents:
        row = [0] * len(terms)
        for word, n in counts.items():
            found = matching.get(word)
            if found is None:
                found = matching[word] = [i for i, t in enumerate(terms) if t.matches(word)]
            for i in found:
                row[i] += n
        frequencies.append(row)
    return frequencies


def _bm25(
    frequencies: Sequence[Sequence[int]],
    lengths: Sequence[int],
    *,
    total: int,
    average: float | None,
) -> list[float]:
    """``bm25_scores`` of documents given as their terms' frequencies and their
    lengths in words."""
    scores = [0.0] * len(frequencies)
    if not frequencies or not total:
        return scores
    if average is None:
        average = sum(lengths) / total
    average = average or 1.0
    for i in range(len(frequencies[0])):  # each term
        hits = sum(1 for row in frequencies if row[i])
        if not hits:
            continue
        idf = math.log((total - hits + 0.5) / (hits + 0.5))
        idf = idf if idf > 0 else 1e-6  # as FTS5 does for terms in most documents
        for index, row in enumerate(frequencies):
            f = row[i]
            if f:
                norm = _K1 * (1 - _B + _B * lengths[index] / average)
                scores[index] += idf * f * (_K1 + 1) / (f + norm)
    return scores


def rank(
    terms: Sequence[Term],
    documents: Sequence[tuple[K, Mapping[str, int]]],
    limit: int,
    *,
    total: int | None = None,
    average: float | None = None,
) -> list[tuple[K, float]]:
    """The ``limit`` best matching keys, best first; ties keep the given order
    (``total``, ``average``: as for ``bm25_scores``)."""
    scores = bm25_scores(terms, [c for _, c in documents], total=total, average=average)
    return _best([key for key, _ in documents], scores, limit)


def _best(keys: Sequence[K], scores: Sequence[float], limit: int) -> list[tuple[K, float]]:
    """The ``limit`` keys of the best scores above 0, best first, ties in order."""
    found = [(key, score) for key, score in zip(keys, scores, strict=True) if score]
    found.sort(key=lambda hit: -hit[1])  # stable: ties stay in the given order
    return found[: max(limit, 0)]


def _occurrences(term: Term) -> re.Pattern[str]:
    """The words ``term`` matches, found in a folded text as they are, not cut out of
    it: its text where no letter or digit is just before (nor, unless it is a prefix,
    just after); its text is letters and digits (``words`` of the query)."""
    text = re.escape(term.text)
    after = "" if term.prefix else r"(?![^\W_])"
    # the text first, then what precedes it: the search runs from each copy of the text
    return re.compile(rf"{text}(?<![^\W_]{text}){after}")


def search_texts(
    query: str, documents: Sequence[tuple[K, str]], limit: int
) -> list[tuple[K, float]]:
    """The archive search over texts no store holds (what a transcript's own
    compactions left behind): the same words, terms and BM25 as every backend; the
    ``limit`` best keys, best first, ties in the given order.

    No text is cut into words: each term's words are found in it as they are
    (``_occurrences``) and its words counted (``_word_count``). A text that holds none
    of the terms as a substring cannot match: BM25's average length is taken over the
    texts that can and over at most ``LENGTH_SAMPLE`` of the others, evenly spread
    (all of them, in a short transcript)."""
    terms = query_terms(query)
    if not terms or limit <= 0 or not documents:
        return []
    needles = [term.text for term in terms]
    patterns = [_occurrences(term) for term in terms]
    keys: list[K] = []
    frequencies: list[list[int]] = []
    lengths: list[int] = []
    others: list[int] = []
    for index, (key, text) in enumerate(documents):
        folded = fold(text)
        if any(needle in folded for needle in needles):
            keys.append(key)
            frequencies.append([len(pattern.findall(folded)) for pattern in patterns])
            lengths.append(_word_count(folded))
        else:
            others.append(index)
    sample = others[:: max(1, math.ceil(len(others) / LENGTH_SAMPLE))]
    measured = sum(_word_count(fold(documents[i][1])) for i in sample) / max(1, len(sample))
    length = sum(lengths) + measured * len(others)
    total = len(documents)
    scores = _bm25(frequencies, lengths, total=total, average=length / total)
    return _best(keys, scores, limit)


#: At most this many texts that cannot match are measured for BM25's average length
LENGTH_SAMPLE = 2_000
