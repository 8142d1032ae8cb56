"""The ``estimate`` counter: a calibrated pure-Python approximation of o200k_base.

This module owns the fallback counter used when no exact tokenizer fits a model: it
maps every character to a class (letter by case, digit, space, newline, punctuation,
CJK) with one ``str.translate``, counts a few dozen class patterns with ``str.count``
(words by what precedes them, long letter runs, digit groups, punctuation runs,
indentation, newlines, escapes, contractions, and non-ASCII characters by kind and
UTF-8 size), and returns a linear combination of those counts. The features follow
how o200k_base pre-splits text; their coefficients are fitted on a synthetic corpus by
``python tools/fit_estimator.py`` and stored in ``estimate_coefficients.json`` beside
this module.
"""

from __future__ import annotations

import codecs
import functools
import json
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from operator import mul

#: Feature names, in the order ``features`` returns them.
FEATURES: tuple[str, ...] = (
    "words_after_space",
    "words_after_punct",
    "words_after_newline",
    "words_after_digit",
    "camel_case_words",
    "starts_with_letter",
    "punct_absorbed",
    "upper_pairs",
    "letter_run_div4",
    "letter_run_div10",
    "letter_run_div13",
    "digit_groups",
    "space_digit",
    "punct_chars",
    "punct_pairs",
    "punct_triples",
    "space_punct",
    "indent_runs",
    "newline_pieces",
    "escapes",
    "backslashes",
    "contractions",
    "tabs",
    "tab_runs",
    "letters_2byte",
    "letters_3byte",
    "cjk",
    "hangul",
    "symbols_bmp",
    "symbols_astral",
)

_COEFFICIENTS_FILE = "estimate_coefficients.json"
_MAX_CACHED = 1 << 16  # distinct non-ASCII characters remembered per table
_CONTRACTION = re.compile(rb"'(?:[stmdSTMD]|re|ve|ll|RE|VE|LL)(?![A-Za-z])")
_VARIATION_SELECTORS = (0xFE0E, 0xFE0F)
_TAB_RUN = re.compile(b"\t+")  # a run of tabs is one token (up to 16) in both tokenizers


def _is_cjk(code: int) -> bool:
    """Han ideographs and kana: o200k_base letters, roughly a token a character."""
    return (
        0x3040 <= code <= 0x30FF  # hiragana, katakana
        or 0x3400 <= code <= 0x4DBF  # CJK extension A
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0x20000 <= code <= 0x3FFFF  # CJK extensions B and later
    )


def _is_hangul(code: int) -> bool:
    return 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F


def _is_letter(ch: str) -> bool:
    """Letters, marks and numbers: what o200k_base keeps inside a word or number."""
    category = unicodedata.category(ch)
    return category[0] in "LN" or (category[0] == "M" and ord(ch) not in _VARIATION_SELECTORS)


def _char_class(code: int) -> str:
    """The class of one character, as o200k_base's pre-tokenizer sees it.

    ``a`` lower-case letter, ``A`` upper-case letter, ``0`` digit, `` `` space or tab,
    newline, ``.`` anything else (punctuation, symbols, emoji), ``c`` CJK or hangul.
    """
    ch = chr(code)
    if ch in "\r\n":
        return "\n"
    if ch.isspace():
        return " "
    if _is_cjk(code) or _is_hangul(code):
        return "c"
    category = unicodedata.category(ch)
    if category in ("Lu", "Lt"):
        return "A"
    if category[0] == "N":
        return "0"
    return "a" if _is_letter(ch) else "."


def _non_ascii_class(code: int) -> str | None:
    """The class of a character by UTF-8 size and kind; ASCII is dropped (``None``)."""
    if code < 0x80:
        return None
    if _is_cjk(code):
        return "c"
    if _is_hangul(code):
        return "h"
    if _is_letter(chr(code)):
        return "l" if code < 0x800 else "m"
    return "s" if code < 0x10000 else "e"


class _ClassMap(dict[int, str | None]):
    """A ``str.translate`` table: ASCII filled in, other characters classified when met."""

    def __init__(self, classify: Callable[[int], str | None]) -> None:
        super().__init__((i, classify(i)) for i in range(128))
        self._classify = classify

    def __missing__(self, code: int) -> str | None:
        cls = self._classify(code)
        if len(self) < _MAX_CACHED:
            self[code] = cls
        return cls


_CLASSES = _ClassMap(_char_class)
_NON_ASCII_CLASSES = _ClassMap(_non_ascii_class)


# Classification on bytes: ``bytes.translate`` with a 256-byte table is a table lookup
# per byte, many times faster than ``str.translate`` with a mapping. ASCII characters
# are their own bytes; each other character is written as one placeholder byte of its
# class (``_CLASS_ERRORS``, an encoding error handler, sees only the non-ASCII runs);
# the table then maps every byte to its class. The counts are those of the str classes.
_CLASS_CHARS = "aA0. \nc"  # every class _char_class gives
_PLACEHOLDER = {cls: chr(0x80 + n) for n, cls in enumerate(_CLASS_CHARS)}
_TABLE = bytes(
    [ord(_CLASSES[i] or " ") for i in range(128)]
    + [
        ord(_CLASS_CHARS[i - 0x80]) if i - 0x80 < len(_CLASS_CHARS) else 0x20
        for i in range(128, 256)
    ]
)


class _PlaceholderMap(dict[int, str]):
    """A ``str.translate`` table: a non-ASCII character to its class's placeholder."""

    def __missing__(self, code: int) -> str:
        placeholder = _PLACEHOLDER[_CLASSES[code] or " "]
        if len(self) < _MAX_CACHED:
            self[code] = placeholder
        return placeholder


_PLACEHOLDERS = _PlaceholderMap()
_CLASS_ERRORS = "ctxbudget-estimate-classes"


def _placeholders(exc: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    run = exc.object[exc.start : exc.end]
    return run.translate(_PLACEHOLDERS).encode("latin-1"), exc.end


codecs.register_error(_CLASS_ERRORS, _placeholders)
_NON_ASCII = re.compile("[^\x00-\x7f]+")


def features(text: str) -> list[int]:
    """The feature counts of ``text``, in ``FEATURES`` order."""
    counts = list(_leading_features(text))
    counts += (0,) * (len(FEATURES) - len(counts))
    return counts


def _leading_features(text: str) -> Sequence[int]:
    """``features``, or of an ASCII text only the counts before its non-ASCII ones (all
    0): what ``EstimateCounter.count`` needs, without making the list."""
    if text.isascii():
        raw = text.encode("ascii")
        return _ascii_counts(raw, raw.translate(_TABLE))
    if _non_ascii_counts is None:
        return _features_py(text)
    done = _non_ascii_counts(text, _table())
    if done is None:  # characters not met before: classify them, then count
        _classify(text)
        done = _non_ascii_counts(text, _table())
        if done is None:  # pragma: no cover - every character met is classified
            return _features_py(text)
    raw = done[0]
    return [*_ascii_counts(raw, raw.translate(_TABLE)), *done[1:]]


def _features_py(text: str) -> list[int]:
    """``features`` in Python alone (the reference the C is tested against)."""
    raw = text.encode("ascii", _CLASS_ERRORS)
    counts = list(_ascii_counts_py(raw, raw.translate(_TABLE)))
    if text.isascii():
        counts += (0, 0, 0, 0, 0, 0)
    else:
        n = "".join(_NON_ASCII.findall(text)).translate(_NON_ASCII_CLASSES).count
        counts += (n("l"), n("m"), n("c"), n("h"), n("s"), n("e"))
    return counts


# Every character's classes for ``non_ascii_counts``, one byte each, filled in as
# characters are met: the low 3 bits are 1 + the index of its class in _CLASS_CHARS
# (its placeholder), the high bits 1 + the index of its non-ASCII class in
# _NON_ASCII_KINDS; 0 is not classified yet. Made at the first non-ASCII text (1.1 MB).
_NON_ASCII_KINDS = "lmchse"


@functools.cache
def _table() -> bytearray:
    return bytearray(0x110000)


def _classify(text: str) -> None:
    table = _table()
    for ch in set(text):
        code = ord(ch)
        if code >= 0x80 and not table[code]:
            kind = _NON_ASCII_CLASSES[code]
            assert kind is not None  # every non-ASCII character has one
            placeholder = _CLASS_CHARS.index(_CLASSES[code] or " ")
            table[code] = (placeholder + 1) | ((_NON_ASCII_KINDS.index(kind) + 1) << 3)


def _ascii_counts_py(raw: bytes, cased: bytes) -> tuple[int, ...]:
    """The counts up to ``tab_runs`` from the text as bytes (``raw``: each non-ASCII
    character one placeholder byte) and its classes (``cased``). ``_features`` (C, when
    built) counts the same in one pass."""
    s = cased.lower()  # the same classes with both letter cases as "a"
    c = s.count
    w_punct = c(b".a")
    tabs = raw.count(b"\t")
    return (
        c(b" a"),
        w_punct,
        c(b"\na"),
        c(b"0a"),
        cased.count(b"aA"),
        s[:1] == b"a",
        # one punctuation character glued to the word after it is one piece, not two
        w_punct - c(b"..a") - c(b" .a"),
        cased.count(b"AA"),
        cased.count(b"aaaa"),
        cased.count(b"aaaaaaaaaa"),
        cased.count(b"aaaaaaaaaaaaa"),
        _digit_groups(s),
        c(b" 0"),
        c(b"."),
        c(b".."),
        c(b"..."),
        c(b" ."),
        c(b"  a") + c(b"  .") + c(b"  0"),
        # runs of newlines (exact up to 6 in a row), less those punctuation absorbs
        c(b"\n") - c(b"\n\n") - c(b"\n\n\n") - c(b".\n"),
        raw.count(b"\\n") + raw.count(b"\\t"),
        raw.count(b"\\"),
        # on the bytes: a placeholder is no ASCII letter, as its character is none
        len(_CONTRACTION.findall(raw)),
        tabs,
        len(_TAB_RUN.findall(raw)) if tabs else 0,
    )


_NonAsciiCounts = Callable[[str, bytearray], tuple[bytes, int, int, int, int, int, int] | None]
_non_ascii_counts: _NonAsciiCounts | None
try:  # the same counts in C, where a compiler built them at install (setup.py)
    from ._features import ascii_counts as _ascii_counts
    from ._features import non_ascii_counts as _non_ascii_counts
except ImportError:  # pragma: no cover - a pure-Python install
    _ascii_counts = _ascii_counts_py
    _non_ascii_counts = None


def _digit_groups(s: bytes) -> int:
    """``len(re.findall(b"0{1,3}", s))``: o200k_base splits a run of L digits into
    ceil(L / 3) groups. Counted: the whole triples of each run, then the runs left
    (each of one or two digits once the triples are gone)."""
    if b"0" not in s:
        return 0
    rest = s.replace(b"000", b"")
    return (len(s) - len(rest)) // 3 + rest.count(b"0") - rest.count(b"00")


def load_coefficients(file: str = _COEFFICIENTS_FILE) -> dict[str, float]:
    """The packaged coefficients (fitted by ``tools/fit_estimator.py``), by feature name."""
    # beside this module (package data); importlib.resources would cost the status
    # line milliseconds of imports for the same file
    with open(os.path.join(os.path.dirname(__file__), file), encoding="utf-8") as f:
        data = json.load(f)
    coefficients: dict[str, float] = data["coefficients"]
    return coefficients


class EstimateCounter:
    """Approximates o200k_base token counts without a tokenizer (pure Python, fast).

    On real prose, code and JSON the mean absolute error per document is about 2-3%
    (``benchmarks/estimator.py``); ``chars / 4`` is off by about 12%.
    """

    name = "estimate"
    exact = False
    description = "estimate (calibrated linear model, ±5% of o200k_base)"
    # counting a text costs about what hashing it for a cache would (``CachedCounter``)
    cheap = True

    def __init__(
        self,
        coefficients: Mapping[str, float] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        if coefficients is None:
            coefficients = load_coefficients()
        if name is not None:
            self.name = name
        if description is not None:
            self.description = description
        missing = [f for f in FEATURES if f not in coefficients]
        if missing:
            raise ValueError(f"estimate coefficients lack {', '.join(missing)}")
        self._coefficients = [float(coefficients[f]) for f in FEATURES]

    def count(self, text: str) -> int:
        if not text:
            return 0
        # map stops at the shorter: the non-ASCII counts an ASCII text leaves out are 0
        estimate: float = sum(map(mul, self._coefficients, _leading_features(text)))
        return max(1, round(estimate))


#: The same features fitted to Claude's tokenizer (ctok's reconstruction) over a
#: synthetic corpus and real text: ``python tools/fit_estimator.py --target claude``.
CLAUDE_COEFFICIENTS_FILE = "estimate_claude_coefficients.json"


def claude_estimate() -> EstimateCounter:
    """The default counter for Claude models, ctok installed or not
    (``counters.counter_name_for_model`` says why)."""
    return EstimateCounter(
        load_coefficients(CLAUDE_COEFFICIENTS_FILE),
        name="claude-estimate",
        description="claude-estimate (linear model fitted to Claude's tokenizer via ctok, ±3%)",
    )
