"""How long a running session lasts: exchanges left, ETA, growth.

The analyst example's budget monitor ("Can continue for ~8 more exchanges", "ETA:
1.2 hours remaining"). An exchange is one round: what a request sends and the
response (``accounting.Totals`` measures them). ``exchanges_left`` divides the room
left by a robust average of the latest ten exchanges (the analyst example's
``remaining_tokens // avg_tokens_per_exchange`` with the average measured instead of
fixed at 500: a mean without the largest and smallest), never more than the room
divided by the smallest of them, and unknown (None) with fewer than two exchanges.
``eta`` multiplies exchanges by the median gap between the latest exchanges' starts;
unknown when no gap was measured, when pauses (gaps over ``IDLE_GAP_SECONDS``) are
half of them or more, or when it would be more than ``MAX_ETA_SECONDS`` (a day: no
basis for a forecast that far). ``live_estimate`` does both for the Status;
``forecast_remaining_growth`` extrapolates a session's per-call growth over a horizon
of calls.

No I/O: the Status and the benchmarks give the figures.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ..errors import ConfigurationError

# How many of the latest exchanges the live estimates average over.
DEFAULT_WINDOW = 10
# Fewer exchanges than this: no basis for an estimate (one exchange says nothing of the
# next).
MIN_EXCHANGES = 2
# A gap between two exchanges longer than this is a pause (the user away), not the pace
# of the work.
IDLE_GAP_SECONDS = 600.0
# An ETA further than this is no forecast: reported as unknown.
MAX_ETA_SECONDS = 86_400.0


def robust_average(values: Sequence[float], trim: float = 0.1) -> float | None:
    """Mean after dropping the ``trim`` share of values at each end (None if empty).

    With fewer than ``1 / trim`` values nothing is dropped.
    """
    if not values:
        return None
    if not 0 <= trim < 0.5:
        raise ConfigurationError("invalid trim: must be in [0, 0.5)")
    ordered = sorted(values)
    cut = int(len(ordered) * trim)
    kept = ordered[cut : len(ordered) - cut] if cut else ordered
    return statistics.fmean(kept)


def _recent_growth(recent_growth: Sequence[int], window: int | None) -> list[int]:
    # Shrinks and zeros (a compaction, a rewind) are not exchanges that fill the window.
    growth = [g for g in recent_growth if g > 0]
    if window is not None:
        growth = growth[-window:] if window > 0 else []
    return growth


def exchanges_left(
    remaining_tokens: int,
    recent_growth: Sequence[int],
    *,
    window: int | None = DEFAULT_WINDOW,
    trim: float = 0.1,
) -> int | None:
    """How many more exchanges fit: ``remaining // average growth per exchange``.

    The average is a trimmed mean of the last ``window`` growths (None: all), and the
    answer is never more than ``remaining // smallest growth``. Shrinks (a
    compaction, a rewind) are not exchanges that fill the window and are left out.
    0 when nothing remains; None with fewer than ``MIN_EXCHANGES`` growths (no basis
    for an estimate).
    """
    if remaining_tokens <= 0:
        return 0
    growth = _recent_growth(recent_growth, window)
    if len(growth) < MIN_EXCHANGES:
        return None
    average = robust_average(growth, trim)
    if average is None or average <= 0:
        return None
    return min(int(remaining_tokens // average), int(remaining_tokens // min(growth)))


def eta(
    exchanges_left: int | None,
    recent_seconds_per_exchange: Sequence[float],
    *,
    window: int | None = DEFAULT_WINDOW,
    idle_seconds: float = IDLE_GAP_SECONDS,
    max_seconds: float = MAX_ETA_SECONDS,
) -> float | None:
    """Seconds until the exchanges left are used: exchanges × median seconds per exchange.

    The median, because a pause (the user away) makes one interval hours long. None
    when the exchanges left are unknown, no interval was measured, pauses (intervals
    over ``idle_seconds``) are half of the intervals or more (the session is idle, not
    at work), or the answer is over ``max_seconds``; 0 when none is left.
    """
    if exchanges_left is None:
        return None
    if exchanges_left <= 0:
        return 0.0
    seconds = [s for s in recent_seconds_per_exchange if s > 0 and math.isfinite(s)]
    if window is not None:
        seconds = seconds[-window:] if window > 0 else []
    if not seconds:
        return None
    idle = sum(1 for s in seconds if s > idle_seconds)
    if 2 * idle >= len(seconds):
        return None
    out = exchanges_left * statistics.median(seconds)
    return out if out <= max_seconds else None


@dataclass(frozen=True, slots=True)
class LiveEstimate:
    """What a running session's latest exchanges say of the room left.

    ``tokens_per_exchange`` is the robust average the exchanges left divide by, and
    ``seconds_per_exchange`` the median gap the ETA multiplies by (None: unknown).
    """

    exchanges_left: int | None
    eta_seconds: float | None
    tokens_per_exchange: int | None
    seconds_per_exchange: float | None


# Gaps shorter than this are not a pace: items stamped together (a file loaded at once).
_MIN_GAP_SECONDS = 0.5


def live_estimate(
    remaining_tokens: int,
    recent_exchanges: Sequence[int],
    gaps: Sequence[float],
    *,
    window: int = DEFAULT_WINDOW,
) -> LiveEstimate:
    """Exchanges left and ETA from the latest ``recent_exchanges`` (sizes, provider
    tokens) and the ``gaps`` in seconds between their starts."""
    exchanges = exchanges_left(remaining_tokens, recent_exchanges, window=window)
    growth = _recent_growth(recent_exchanges, window)
    average = robust_average(growth) if len(growth) >= MIN_EXCHANGES else None
    timed = [g for g in gaps if g > _MIN_GAP_SECONDS and math.isfinite(g)][-window:]
    seconds = eta(exchanges, timed, window=window)
    return LiveEstimate(
        exchanges_left=exchanges,
        eta_seconds=seconds,
        tokens_per_exchange=None if average is None else round(average),
        seconds_per_exchange=statistics.median(timed) if timed else None,
    )


def intervals(timestamps: Sequence[float]) -> list[float]:
    """Seconds between consecutive timestamps."""
    return [b - a for a, b in itertools.pairwise(timestamps)]


def active_minutes(timestamps: Sequence[float], idle_cap_seconds: float = 300.0) -> float:
    """Minutes of work between the first and last timestamp, each gap capped at
    ``idle_cap_seconds`` (a pause longer than that is not work on the task)."""
    return sum(min(max(g, 0.0), idle_cap_seconds) for g in intervals(timestamps)) / 60.0


def growth_deltas(tokens: Sequence[int], resets: Collection[int] = ()) -> list[int]:
    """Call-to-call change of the context size, leaving out each call in ``resets``
    (the first call of a new context, after a compaction: its drop is not growth)."""
    return [tokens[i] - tokens[i - 1] for i in range(1, len(tokens)) if i not in resets]


def net_growth(tokens: Sequence[int], resets: Collection[int] = ()) -> int:
    """What a stretch of calls added to the context: the sum of ``growth_deltas``
    (``last − first`` when there is no reset in between)."""
    return sum(growth_deltas(tokens, resets))


def forecast_remaining_growth(
    calls: Sequence[tuple[float, int]],
    horizon_calls: int,
    *,
    resets: Collection[int] = (),
    window: int | None = None,
    trim: float = 0.1,
) -> int | None:
    """Tokens the next ``horizon_calls`` calls should add, from past calls.

    ``calls`` are (timestamp, context tokens) per call, oldest first; ``resets`` the
    indices of calls that start a new context (their drop is left out). The per-call
    growth of the last ``window`` deltas (None: all) is averaged like
    ``exchanges_left`` does (mean without the top and bottom ``trim`` share: one huge
    file read does not recur every call) and multiplied by the horizon. None with
    fewer than two calls.
    """
    if horizon_calls < 0:
        raise ConfigurationError("invalid horizon: must be >= 0")
    deltas = growth_deltas([t for _, t in calls], resets)
    if window is not None:
        deltas = deltas[-window:] if window > 0 else []
    average = robust_average(deltas, trim)
    if average is None:
        return None
    return max(0, round(average * horizon_calls))
