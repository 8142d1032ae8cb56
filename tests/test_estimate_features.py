"""The estimator's C speed-up (``ctxbudget.tokens._features``) against its Python.

The C module is optional (built where a compiler is, setup.py): where it was built it
must give the very counts the pure-Python reference gives, on any text, since the
coefficients were fitted on those.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.tokens import estimate

_features = pytest.importorskip(
    "ctxbudget.tokens._features",
    reason="the C speed-up was not built here (no compiler at install): Python counts",
)

# What the patterns are made of: both letter cases, digits, runs of spaces, tabs and
# newlines, punctuation, escapes, quotes of contractions, and non-ASCII characters.
_PIECES = [
    *"aAbZmsStTdDrReEvVlL", "0", "7", " ", "  ", "\t", "\t\t\t", "\n", "\n\n\n",
    ".", "..", ",", "{", "}", "\\", "\\n", "\\t", "'", "'s", "'re", "'LL", "'ve ",
    "é", "É", "中", "한", "😀", "→", "\r\n",
]  # fmt: skip


def _both(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    raw = text.encode("ascii", estimate._CLASS_ERRORS)
    cased = raw.translate(estimate._TABLE)
    return _features.ascii_counts(raw, cased), tuple(estimate._ascii_counts_py(raw, cased))


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=80).map("".join))
def test_c_counts_equal_the_python_counts_on_pattern_text(text: str) -> None:
    c, python = _both(text)
    assert c == python


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_c_counts_equal_the_python_counts_on_any_text(text: str) -> None:
    c, python = _both(text)
    assert c == python


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        "A" * 27 + "a" * 27,
        "0" * 10 + " 12 345 6789",
        "It's what we'd've said, they'll see: 'Sorry' isn't 'ST'.",
        "\\\\n\\t\\x" + "\t\tx\t\n\n\n\n.\n",
        "    4→\tfunc main() {\n     5→\t\treturn\n",
    ],
)
def test_c_counts_equal_the_python_counts_on_edge_cases(text: str) -> None:
    c, python = _both(text)
    assert c == python
    assert len(c) == estimate.FEATURES.index("tab_runs") + 1


def test_the_estimator_counts_with_the_c_counts_where_built() -> None:
    assert estimate._ascii_counts is _features.ascii_counts


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=6)), max_size=60).map("".join))
def test_features_equal_the_python_features_on_any_text(text: str) -> None:
    """Every feature, the non-ASCII classes counted in C (characters of every plane,
    lone surrogates included), as the pure-Python reference counts them."""
    assert estimate.features(text) == estimate._features_py(text)


def test_a_character_met_for_the_first_time_is_classified_then_counted() -> None:
    """The C counts from a table the Python fills as characters are met: a text of
    characters not seen before is counted as the reference counts it."""
    estimate._table.cache_clear()  # a new table: nothing met yet
    rare = "".join(chr(c) for c in (0x1F9EA, 0x2C65, 0xA9C1, 0x10400, 0xD800))
    assert not any(estimate._table()[ord(ch)] for ch in rare)
    assert estimate.features(rare + " x") == estimate._features_py(rare + " x")
    assert all(estimate._table()[ord(ch)] for ch in rare)
