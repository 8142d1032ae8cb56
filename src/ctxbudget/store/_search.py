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

    def frequency(self, counts: Mapping[str, int]) -> int:
        """How often the term occurs in a document given as word counts."""
        if not self.prefix:
            return counts.get(self.text, 0)
        return sum(n for word, n in counts.items() if word.startswith(self.text))


def fold(text: str) -> str:
    """Lower case without diacritics, as ``unicode61`` compares words."""
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters and digits, folded."""
    return _WORD.findall(fold(text))


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


def bm25_scores(terms: Sequence[Term], documents: Sequence[Mapping[str, int]]) -> list[float]:
    """FTS5's BM25 of each document (as word counts) for terms OR-ed; 0 = no match."""
    total = len(documents)
    scores = [0.0] * total
    if not total or not terms:
        return scores
    lengths = [sum(counts.values()) for counts in documents]
    average = sum(lengths) / total or 1.0
    for term in terms:
        frequencies = [term.frequency(counts) for counts in documents]
        hits = sum(1 for f in frequencies if f)
        if not hits:
            continue
        idf = math.log((total - hits + 0.5) / (hits + 0.5))
        idf = idf if idf > 0 else 1e-6  # as FTS5 does for terms in most documents
        for index, f in enumerate(frequencies):
            if f:
                norm = _K1 * (1 - _B + _B * lengths[index] / average)
                scores[index] += idf * f * (_K1 + 1) / (f + norm)
    return scores


def rank(
    terms: Sequence[Term], documents: Sequence[tuple[K, Mapping[str, int]]], limit: int
) -> list[tuple[K, float]]:
    """The ``limit`` best matching keys, best first; ties keep the given order."""
    scores = bm25_scores(terms, [counts for _, counts in documents])
    found = [(key, score) for (key, _), score in zip(documents, scores, strict=True) if score]
    found.sort(key=lambda hit: -hit[1])  # stable: ties stay in the given order
    return found[: max(limit, 0)]


def search_texts(
    query: str, documents: Sequence[tuple[K, str]], limit: int
) -> list[tuple[K, float]]:
    """The archive search over texts no store holds (what a transcript's own
    compactions left behind): the same words, terms and BM25 as every backend; the
    ``limit`` best keys, best first, ties in the given order."""
    terms = query_terms(query)
    if not terms or limit <= 0:
        return []
    return rank(terms, [(key, word_counts(text)) for key, text in documents], limit)
