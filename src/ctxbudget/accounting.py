"""Provider usage is the truth; local counting fills the gap since it.

The context size a provider reports with each response (input + cache creation +
cache read) is exact. Between two responses, ctxbudget estimates what was added
(the response itself, tool results, the next user message) with a local counter.
Local counters do not tokenize exactly like the provider (Claude's tokenizer is not
public) and the provider wraps every block in a few tokens of framing, so each
session learns a correction from its own successive usages::

    added_tokens ≈ per_token × local_count + per_item × item_count

fitted by ridge regression towards a prior (1.06, 30) over the latest samples, with
outliers (context the transcript never shows, such as file-change notices) trimmed.
This module holds that arithmetic and the replay of a transcript's history; it does
no I/O.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .model import ApiCall, Item

# Prior of the correction when the counter only approximates the model's tokenizer
# (Claude): Claude's tokenizer yields about 6% more tokens than o200k_base (and the
# estimator) on agent traffic, and each block costs about 30 tokens of framing. Both
# figures are a least-squares fit over the 12 Claude Code sessions of shared/data
# (1,162 calls); each session then learns its own.
PRIOR_PER_TOKEN = 1.06
PRIOR_PER_ITEM = 30.0
# When the counter is the model's own tokenizer (OpenAI models through tiktoken),
# tokens count one for one and a message costs 3 tokens of framing (OpenAI's
# cookbook, "How to count tokens with tiktoken").
EXACT_PER_TOKEN = 1.0
EXACT_PER_ITEM = 3.0
# How strongly the prior holds: as much as five samples of 1,000 local tokens in 1 item.
_PRIOR_WEIGHT_TOKEN = 5.0 * 1000**2
_PRIOR_WEIGHT_ITEM = 5.0
_WINDOW = 100


@dataclass(slots=True)
class Calibration:
    """A session's learned correction from local counts to provider tokens."""

    per_token: float = PRIOR_PER_TOKEN
    per_item: float = PRIOR_PER_ITEM
    samples: list[tuple[int, int, int]] = field(default_factory=list)
    prior: tuple[float, float] = (PRIOR_PER_TOKEN, PRIOR_PER_ITEM)

    @classmethod
    def for_counter(cls, exact_for_model: bool) -> Calibration:
        """The starting correction: none for the model's own tokenizer, else Claude's."""
        prior = (
            (EXACT_PER_TOKEN, EXACT_PER_ITEM)
            if exact_for_model
            else (PRIOR_PER_TOKEN, PRIOR_PER_ITEM)
        )
        return cls(per_token=prior[0], per_item=prior[1], prior=prior)

    def predict(self, local_tokens: int, items: int) -> int:
        """Provider tokens for content counted locally as ``local_tokens`` in ``items``."""
        return round(self.per_token * local_tokens + self.per_item * items)

    def learn(self, local_tokens: int, items: int, actual_tokens: int) -> None:
        """Add one observation: content counted locally grew the context by ``actual``."""
        if actual_tokens <= 0 or items <= 0:
            return  # the context shrank or was rewritten: nothing to learn about counting
        self.samples.append((local_tokens, items, actual_tokens))
        del self.samples[:-_WINDOW]
        self._fit()

    def _fit(self) -> None:
        rows = list(self.samples)
        for _ in range(2):
            k, c = _ridge(rows, self.prior)
            residuals = [d - k * lt - c * n for lt, n, d in rows]
            center = statistics.median(residuals)
            spread = statistics.median(abs(r - center) for r in residuals) + 1.0
            kept = [row for row, r in zip(rows, residuals, strict=True) if abs(r) <= 4 * spread]
            if len(kept) == len(rows) or not kept:
                break
            rows = kept
        self.per_token, self.per_item = k, c


def _ridge(rows: Sequence[tuple[int, int, int]], prior: tuple[float, float]) -> tuple[float, float]:
    """Least squares of d ≈ k·l + c·n, pulled towards the prior (2×2 normal equations)."""
    a11 = _PRIOR_WEIGHT_TOKEN
    a22 = _PRIOR_WEIGHT_ITEM
    a12 = 0.0
    b1 = _PRIOR_WEIGHT_TOKEN * prior[0]
    b2 = _PRIOR_WEIGHT_ITEM * prior[1]
    for lt, n, d in rows:
        a11 += lt * lt
        a12 += lt * n
        a22 += n * n
        b1 += lt * d
        b2 += n * d
    det = a11 * a22 - a12 * a12
    if det <= 0:
        return prior
    return (b1 * a22 - b2 * a12) / det, (a11 * b2 - a12 * b1) / det


@dataclass(slots=True, frozen=True)
class HistoryPoint:
    """One API call of a session: what the provider reported, what we predicted."""

    call: int
    reported_tokens: int
    predicted_tokens: int
    local_added_tokens: int
    timestamp: str | None
    after_compaction: bool

    @property
    def error(self) -> float:
        return (self.predicted_tokens - self.reported_tokens) / self.reported_tokens


def replay_history(
    calls: Sequence[ApiCall],
    items: Sequence[Item],
    count: Callable[[Item], int],
    calibration: Calibration | None = None,
) -> tuple[list[HistoryPoint], Calibration]:
    """Predict each call's context from what was known before it, then learn from it.

    For call *i* with anchor *j*: predicted = reported(j) + correction(local count of
    what was added since j). Without an anchor (first call, or first after a
    compaction) the prediction is the local count of the whole context sent.
    """
    calibration = calibration or Calibration()
    points = []
    for index, call in enumerate(calls):
        added = [items[i] for i in call.added_items]
        local = sum(count(item) for item in added)
        reported = call.usage.context_tokens
        if call.anchor_call is None:
            predicted = calibration.predict(local, len(added))
        else:
            anchor = calls[call.anchor_call]
            # The anchor's own response is known exactly: its reported output tokens.
            out_n = call.anchor_output_items if anchor.usage.output_tokens else 0
            rest = added[out_n:]
            rest_local = sum(count(item) for item in rest)
            known = anchor.usage.context_tokens + anchor.usage.output_tokens * (out_n > 0)
            predicted = (
                known
                + calibration.predict(rest_local, len(rest))
                + round(calibration.per_item * out_n)
            )
            calibration.learn(
                rest_local, len(rest), reported - known - round(calibration.per_item * out_n)
            )
        points.append(
            HistoryPoint(
                call=index,
                reported_tokens=reported,
                predicted_tokens=predicted,
                local_added_tokens=local,
                timestamp=call.timestamp,
                after_compaction=call.after_compaction,
            )
        )
    return points, calibration
