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

import itertools
import statistics
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .model import ApiCall, Item, Kind

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


@dataclass(slots=True)
class Anchor:
    """Where a session's count stands: the provider's latest figure and what came since.

    ``reported`` is the context the provider reported last, plus the size of the
    response that came with it (its reported output tokens and framing): only what
    came after it is estimated, as ``since_tokens`` local tokens in ``since_items``
    items. ``last_reported`` is what the provider itself said. ``overhead`` is what
    the provider counts beyond the items (system prompt, tool definitions), kept when
    a compaction or restore drops the last usage.
    """

    reported: int | None = None
    last_reported: int | None = None
    since_tokens: int = 0
    since_items: int = 0
    overhead: int = 0

    def used_tokens(
        self, calibration: Calibration, local_total: int, items: int, framing: float
    ) -> int:
        """The context size now: the anchor plus the corrected count of what came since;
        without any usage, the overhead plus the corrected count of every item."""
        if self.reported is None:
            return self.overhead + round(calibration.per_token * local_total + framing * items)
        return self.reported + calibration.predict(self.since_tokens, self.since_items)

    def drop_usage(self, overhead: int) -> None:
        """A new context: no usage applies to it until the provider reports again."""
        self.reported = None
        self.last_reported = None
        self.since_tokens = 0
        self.since_items = 0
        self.overhead = overhead

    def to_meta(self) -> dict[str, int | None]:
        return {
            "reported_tokens": self.reported,
            "last_reported_tokens": self.last_reported,
            "since_tokens": self.since_tokens,
            "since_items": self.since_items,
            "overhead": self.overhead,
        }

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], overhead: int = 0) -> Anchor:
        reported = meta.get("reported_tokens")
        return cls(
            reported=reported,
            last_reported=meta.get("last_reported_tokens", reported),
            since_tokens=int(meta.get("since_tokens", 0) or 0),
            since_items=int(meta.get("since_items", 0) or 0),
            overhead=int(meta.get("overhead", overhead) or 0),
        )


# Kinds of item that make up the conversation (the exchanges, as opposed to the
# system prompt and instructions): their size per user turn is the exchange size.
CONVERSATION_KINDS = frozenset(
    {
        Kind.USER_TEXT,
        Kind.ASSISTANT_TEXT,
        Kind.TOOL_CALL,
        Kind.TOOL_RESULT,
        Kind.FILE_READ,
        Kind.SEARCH_RESULT,
        Kind.AGENT_REPORT,
        Kind.THINKING,
    }
)
DIMENSIONS = ("component", "kind", "tool", "agent")


@dataclass(slots=True)
class Totals:
    """Running local counts of a context, kept as items come, so the status never
    recounts: the total, the split by component / kind / tool / agent, the
    conversation's tokens, and the user's turns with the time of the last ten."""

    local_total: int = 0
    by: dict[str, dict[str, int]] = field(default_factory=lambda: {d: {} for d in DIMENSIONS})
    user_turns: int = 0
    user_times: deque[float] = field(default_factory=lambda: deque(maxlen=11))
    conversation_tokens: int = 0

    def add(self, item: Item, tokens: int) -> None:
        self.local_total += tokens
        for dimension, key in (
            ("component", item.component.value if item.component else None),
            ("kind", item.kind.value),
            ("tool", item.tool),
            ("agent", item.agent),
        ):
            if key:
                bucket = self.by[dimension]
                bucket[key] = bucket.get(key, 0) + tokens
        if item.kind in CONVERSATION_KINDS:
            self.conversation_tokens += tokens
        if item.kind is Kind.USER_TEXT:
            self.user_turns += 1
            self.user_times.append(item.created_at)

    def copy(self) -> Totals:
        return Totals(
            local_total=self.local_total,
            by={k: dict(v) for k, v in self.by.items()},
            user_turns=self.user_turns,
            user_times=deque(self.user_times, maxlen=11),
            conversation_tokens=self.conversation_tokens,
        )

    def scaled(self, per_token: float) -> dict[str, dict[str, int]]:
        """Each dimension's split in provider units, largest first."""
        return {
            dim: {
                key: round(v * per_token)
                for key, v in sorted(values.items(), key=lambda kv: -kv[1])
            }
            for dim, values in self.by.items()
        }

    def tokens_per_exchange(self, per_token: float) -> float | None:
        if not self.user_turns:
            return None
        return per_token * self.conversation_tokens / self.user_turns

    def seconds_per_exchange(self) -> float | None:
        """Median time between the user's last ten turns: the pace of the work."""
        gaps = sorted(b - a for a, b in itertools.pairwise(self.user_times) if b - a > 0.5)
        return gaps[len(gaps) // 2] if gaps else None


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
