"""The session's correction fit: its outlier test in C (``ctxbudget._fit``, built where
a compiler was) against the Python it speeds up."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget import accounting

_rows = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2_000_000),
        st.integers(min_value=1, max_value=400),
        st.integers(min_value=1, max_value=2_500_000),
    ),
    min_size=1,
    max_size=100,
)


@settings(max_examples=500, deadline=None)
@given(rows=_rows, k=st.floats(0.5, 1.5), c=st.floats(0.0, 60.0))
def test_the_c_outlier_test_answers_as_the_python(
    rows: list[tuple[int, int, int]], k: float, c: float
) -> None:
    """The correction's outlier test in C (built where a compiler was) gives the very
    indexes the Python gives: the same residuals, medians and limit."""
    fit = pytest.importorskip("ctxbudget._fit", reason="the C speed-up was not built here")
    assert fit.residual_outliers(rows, k, c) == accounting._outliers_py(rows, k, c)
    jumped = [*rows, (10, 1, 90_000_000)]  # and with one usage far off
    assert fit.residual_outliers(jumped, k, c) == accounting._outliers_py(jumped, k, c)


_tied_rows = st.lists(
    st.sampled_from([(1000, 1, 1200), (1000, 1, 1000), (50, 2, 90), (0, 1, 30), (9000, 3, 9500)]),
    min_size=1,
    max_size=100,
)


@settings(max_examples=300, deadline=None)
@given(rows=_tied_rows, k=st.sampled_from([1.0, 1.1]), c=st.sampled_from([0.0, 20.0]))
def test_the_c_outlier_test_agrees_where_residuals_tie(
    rows: list[tuple[int, int, int]], k: float, c: float
) -> None:
    """Many equal residuals (the same usage growth again and again): the medians the C
    selects without sorting are the sorted ones."""
    fit = pytest.importorskip("ctxbudget._fit", reason="the C speed-up was not built here")
    assert fit.residual_outliers(rows, k, c) == accounting._outliers_py(rows, k, c)


def test_the_correction_fits_with_the_c_outlier_test_where_built() -> None:
    fit = pytest.importorskip("ctxbudget._fit", reason="the C speed-up was not built here")
    assert accounting._outliers is fit.residual_outliers


def test_the_framing_per_item_is_never_negative() -> None:
    """Contexts rewritten between usages (long reads become short stubs) can make the
    best fit's framing negative: -31 tokens an item took 6,600 off a 212-message
    context. The tokens alone are fitted then, framing 0."""
    calibration = accounting.Calibration.for_counter(
        exact_for_model=False, counter="claude-estimate"
    )
    for _ in range(20):
        # many items, each adding less than their local count says
        calibration.learn(local_tokens=4_000, items=200, actual_tokens=1_000)
    assert calibration.per_item == 0.0
    assert 0 < calibration.per_token < 1
    assert calibration.predict(4_000, 200) > 0
