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

The provider also counts what the transcript never shows: the system prompt and the
tool definitions (plus notices and reminders that accumulate with the conversation).
Each call measures it as its usage minus the corrected count of the transcript it
sent (``overhead_sample``). After a compaction no usage applies to the new context
until the provider reports again, and the overhead is estimated from those samples
(``estimate_overhead``: a low quantile of the latest, because the system prompt and
tools are in every request while what accumulated mostly leaves with the compacted
conversation).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .model import ApiCall, Item, Kind, Role
from .tokens.framing import COUNTER_PRIORS, UNANCHORED_PER_ITEM, response_reported

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
# A usage that grew by more than twice what the prior makes of the content added, plus
# this, is a jump nothing in the transcript explains (an MCP server connected, the
# instructions reloaded): the overhead changed, not the counting.
_JUMP_SLACK = 2_000


@dataclass(slots=True)
class Calibration:
    """A session's learned correction from local counts to provider tokens."""

    per_token: float = PRIOR_PER_TOKEN
    per_item: float = PRIOR_PER_ITEM
    samples: list[tuple[int, int, int]] = field(default_factory=list)
    prior: tuple[float, float] = (PRIOR_PER_TOKEN, PRIOR_PER_ITEM)
    # The prior is what the session this context was compacted from learned (a fork's,
    # ``carried_over``): its framing per item was measured, not assumed.
    carried: bool = False
    # Sums of the samples' products (ints: exact), kept as samples come and go, and the
    # list they are of (``samples`` may be replaced whole: then they are summed again).
    _sums: list[int] = field(default_factory=lambda: [0] * 5, repr=False, compare=False)
    _summed: list[tuple[int, int, int]] | None = field(default=None, repr=False, compare=False)
    _summed_len: int = field(default=0, repr=False, compare=False)

    @classmethod
    def for_counter(cls, exact_for_model: bool, counter: str | None = None) -> Calibration:
        """The starting correction: none for the model's own tokenizer, else the prior
        fitted for ``counter`` on Claude traffic (``COUNTER_PRIORS``), else Claude's."""
        if exact_for_model:
            prior = (EXACT_PER_TOKEN, EXACT_PER_ITEM)
        else:
            prior = COUNTER_PRIORS.get(counter or "", (PRIOR_PER_TOKEN, PRIOR_PER_ITEM))
        return cls(per_token=prior[0], per_item=prior[1], prior=prior)

    @classmethod
    def carried_over(cls, per_token: float, per_item: float) -> Calibration:
        """The correction the session a context was compacted from learned (``Carried``),
        as the prior this context starts from and learns away from."""
        prior = (per_token, per_item)
        return cls(per_token=per_token, per_item=per_item, prior=prior, carried=True)

    @property
    def framing(self) -> float:
        """Tokens of framing per item: the learned ``per_item`` once a usage taught
        something (here or in the session a fork came from), else at most a message's
        role markers (not the tool-heavy prior)."""
        if self.samples or self.carried:
            return self.per_item
        return min(self.per_item, UNANCHORED_PER_ITEM)

    def predict(self, local_tokens: int, items: int) -> int:
        """Provider tokens for content counted locally as ``local_tokens`` in ``items``."""
        return round(self.per_token * local_tokens + self.per_item * items)

    def learn(self, local_tokens: int, items: int, actual_tokens: int) -> None:
        """Add one observation: content counted locally grew the context by ``actual``."""
        if actual_tokens <= 0 or items <= 0:
            return  # the context shrank or was rewritten: nothing to learn about counting
        if actual_tokens > 2 * (self.prior[0] * local_tokens + self.prior[1] * items) + _JUMP_SLACK:
            return  # a jump of the overhead (see _JUMP_SLACK): nothing about counting
        sums = self._current_sums()
        row = (local_tokens, items, actual_tokens)
        self.samples.append(row)
        _add(sums, row, 1)
        for gone in self.samples[:-_WINDOW]:
            _add(sums, gone, -1)
        del self.samples[:-_WINDOW]
        self._summed_len = len(self.samples)
        self._fit()

    def _current_sums(self) -> list[int]:
        if self._summed is not self.samples or self._summed_len != len(self.samples):
            self._sums = [0] * 5
            for row in self.samples:
                _add(self._sums, row, 1)
            self._summed, self._summed_len = self.samples, len(self.samples)
        return self._sums

    def _fit(self) -> None:
        # Ridge fit, then once more without the rows whose residual is over four median
        # absolute deviations (a file-change notice the transcript never shows). Runs for
        # every usage of a session: running sums (the outliers' taken out for the second
        # fit), the outlier test in C where built (``_outliers``), no copies.
        rows = self.samples
        sums = self._current_sums()
        k, c = _ridge(sums, self.prior)
        outliers = _outliers(rows, k, c)
        if outliers is not None and len(outliers) < len(rows):
            trimmed = list(sums)
            for at in outliers:
                _add(trimmed, rows[at], -1)
            k, c = _ridge(trimmed, self.prior)
        self.per_token, self.per_item = k, c


def _outliers_py(rows: list[tuple[int, int, int]], k: float, c: float) -> list[int] | None:
    """The indexes of the rows whose residual under (``k``, ``c``) is over four median
    absolute deviations (plus one), or None when no residual is: one sort per median,
    no statistics module."""
    residuals = [d - k * lt - c * n for lt, n, d in rows]
    ordered = sorted(residuals)
    center = _median(ordered)
    limit = 4 * (_median(sorted([abs(r - center) for r in residuals])) + 1.0)
    if max(-ordered[0], ordered[-1]) <= limit:  # the largest |residual|
        return None
    return [at for at, r in enumerate(residuals) if abs(r) > limit]


try:  # the same test in C, where a compiler built it at install (setup.py)
    from ._fit import residual_outliers as _outliers
except ImportError:  # pragma: no cover - a pure-Python install
    _outliers = _outliers_py


def _bump(tokens_by: dict[str, int], items_by: dict[str, int], key: str, tokens: int) -> None:
    tokens_by[key] = tokens_by.get(key, 0) + tokens
    items_by[key] = items_by.get(key, 0) + 1


def _add(sums: list[int], row: tuple[int, int, int], sign: int) -> None:
    """Add (``sign`` 1) or take out (-1) one row's products: l², l·n, n², l·d, n·d."""
    lt, n, d = row
    sums[0] += sign * lt * lt
    sums[1] += sign * lt * n
    sums[2] += sign * n * n
    sums[3] += sign * lt * d
    sums[4] += sign * n * d


def _median(ordered: Sequence[float]) -> float:
    m = len(ordered)
    return (ordered[(m - 1) // 2] + ordered[m // 2]) / 2


@dataclass(slots=True)
class Anchor:
    """Where a session's count stands: the provider's latest figure and what came since.

    ``reported`` is the context the provider reported last, plus the size of the
    response that came with it (its reported output tokens and framing): only what
    came after it is estimated, as ``since_tokens`` local tokens in ``since_items``
    items. ``last_reported`` is what the provider itself said. ``overhead`` is what
    the provider counts beyond the items (system prompt, tool definitions), kept when
    a compaction or restore drops the last usage.

    A usage recorded live (``record_usage``) reports the response's ``output_tokens``
    before its items are added: ``reported`` holds them at once (the next request
    carries the response), and the assistant items added next, before any other
    (``output_open``), are that response: only their framing is estimated
    (``output_items``), as a transcript's response is. Should another item come first,
    the response was not added, and its tokens are taken out again.
    """

    reported: int | None = None
    last_reported: int | None = None
    since_tokens: int = 0
    since_items: int = 0
    overhead: int = 0
    output_tokens: int = 0
    output_items: int = 0
    output_open: bool = False

    def used_tokens(
        self, calibration: Calibration, local_total: int, items: int, framing: float
    ) -> int:
        """The context size now: the anchor plus the corrected count of what came since;
        without any usage, the overhead plus the corrected count of every item."""
        if self.reported is None:
            return self.overhead + round(calibration.per_token * local_total + framing * items)
        return self.reported + calibration.predict(self.since_tokens, self.items_since)

    @property
    def items_since(self) -> int:
        """The items added since the usage, the response's included (their framing)."""
        return self.since_items + self.output_items

    def added(self, item: Item) -> None:
        """``item`` came after the anchor: the reported response's, or estimated."""
        if self.output_open:
            if item.role is Role.ASSISTANT:
                self.output_items += 1
                return
            if not self.output_items and self.reported is not None:
                self.reported -= self.output_tokens  # the response was not added
            self.output_open = False
        self.since_tokens += item.tokens or 0
        self.since_items += 1

    def anchor_on(self, context_tokens: int, output_tokens: int) -> None:
        """A usage reported now: the context sent, and the response's output tokens,
        whose items come next (counted as reported, but for their framing)."""
        self.reported = context_tokens + output_tokens
        self.last_reported = context_tokens
        self.since_tokens = 0
        self.since_items = 0
        self.output_tokens = output_tokens
        self.output_items = 0
        self.output_open = output_tokens > 0

    def drop_usage(self, overhead: int) -> None:
        """A new context: no usage applies to it until the provider reports again."""
        self.reported = None
        self.last_reported = None
        self.since_tokens = 0
        self.since_items = 0
        self.output_tokens = 0
        self.output_items = 0
        self.output_open = False
        self.overhead = overhead

    def to_meta(self) -> dict[str, int | bool | None]:
        return {
            "reported_tokens": self.reported,
            "last_reported_tokens": self.last_reported,
            "since_tokens": self.since_tokens,
            "since_items": self.since_items,
            "overhead": self.overhead,
            "output_tokens": self.output_tokens,
            "output_items": self.output_items,
            "output_open": self.output_open,
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
            output_tokens=int(meta.get("output_tokens", 0) or 0),
            output_items=int(meta.get("output_items", 0) or 0),
            output_open=bool(meta.get("output_open", False)),
        )


# Kinds of item that are not exchanges: the system prompt, instructions and summaries
# are the context the exchanges happen in.
NOT_EXCHANGE_KINDS = frozenset({Kind.SYSTEM_PROMPT, Kind.INSTRUCTION, Kind.SUMMARY, Kind.REMINDER})
DIMENSIONS = ("component", "kind", "tool", "agent")
# Exchanges remembered for the live estimates (sizes of the last ten, gaps between the
# starts of the last eleven).
RECENT_EXCHANGES = 10


@dataclass(slots=True)
class Totals:
    """Running local counts of a context, kept as items come, so the status never
    recounts: the total, the split by component / kind / tool / agent, and the latest
    exchanges.

    An exchange is one round of the conversation: what was sent (a user message, tool
    results) and the response to it, i.e. what one request adds to the context. A new
    one starts at the first non-assistant item after a response; ``exchanges`` keeps
    the latest closed ones as (local tokens, items, start time), ``current`` the one
    under way."""

    local_total: int = 0
    by: dict[str, dict[str, int]] = field(default_factory=lambda: {d: {} for d in DIMENSIONS})
    # items per key of each dimension (each carries the provider's per-item framing)
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: {d: {} for d in DIMENSIONS})
    exchanges: deque[tuple[int, int, float]] = field(
        default_factory=lambda: deque(maxlen=RECENT_EXCHANGES + 1)
    )
    # [local tokens, items, start time, 1 once a response came]; items 0: none under way
    current: list[float] = field(default_factory=lambda: [0, 0, 0.0, 0])

    def add(self, item: Item, tokens: int) -> None:
        self.local_total += tokens
        by, counts = self.by, self.counts
        # each dimension written out: a loop over them was a tenth of loading 100k items
        component = item.component
        if component:
            _bump(by["component"], counts["component"], component.value, tokens)
        _bump(by["kind"], counts["kind"], item.kind.value, tokens)
        if item.tool:
            _bump(by["tool"], counts["tool"], item.tool, tokens)
        if item.agent:
            _bump(by["agent"], counts["agent"], item.agent, tokens)
        if item.role is Role.SYSTEM or item.kind in NOT_EXCHANGE_KINDS:
            return
        current = self.current
        response = item.role is Role.ASSISTANT
        if not response and current[3]:
            # something sent after a response: that exchange is over, a new one starts
            self.exchanges.append((int(current[0]), int(current[1]), current[2]))
            current[:] = [0, 0, 0.0, 0]
        if not current[1]:
            current[2] = item.created_at
        current[0] += tokens
        current[1] += 1
        if response:
            current[3] = 1

    def copy(self) -> Totals:
        return Totals(
            local_total=self.local_total,
            by={k: dict(v) for k, v in self.by.items()},
            counts={k: dict(v) for k, v in self.counts.items()},
            exchanges=deque(self.exchanges, maxlen=RECENT_EXCHANGES + 1),
            current=list(self.current),
        )

    def scaled(self, per_token: float, per_item: float = 0.0) -> dict[str, dict[str, int]]:
        """Each dimension's split in provider units (``per_token`` × local tokens +
        ``per_item`` × items), largest first, rounded so that a dimension covering
        every item adds up to ``round(per_token × local_total + per_item × items)``."""
        out = {}
        for dim, values in self.by.items():
            counts = self.counts[dim]
            exact = {k: per_token * v + per_item * counts.get(k, 0) for k, v in values.items()}
            out[dim] = _rounded_shares(exact)
        return out

    def recent_exchanges(self, per_token: float, per_item: float) -> list[int]:
        """The sizes of the latest closed exchanges (up to ten) in provider units."""
        return [
            round(per_token * tokens + per_item * items)
            for tokens, items, _ in list(self.exchanges)[-RECENT_EXCHANGES:]
        ]

    def exchange_gaps(self) -> list[float]:
        """Seconds between the starts of the latest exchanges (the one under way too)."""
        starts = [start for _, _, start in self.exchanges]
        if self.current[1]:
            starts.append(self.current[2])
        return [b - a for a, b in itertools.pairwise(starts[-(RECENT_EXCHANGES + 1) :])]


def _rounded_shares(exact: Mapping[str, float]) -> dict[str, int]:
    """Whole numbers adding up to the rounded total (largest remainders), largest first."""
    floors = {k: math.floor(v) for k, v in exact.items()}
    missing = round(sum(exact.values())) - sum(floors.values())
    for key in sorted(exact, key=lambda k: floors[k] - exact[k])[: max(0, missing)]:
        floors[key] += 1
    return dict(sorted(floors.items(), key=lambda kv: -kv[1]))


# What the provider counts beyond the transcript, as measured at each call: the latest
# this many samples are kept, and the overhead of a context without usage yet is their
# OVERHEAD_QUANTILE (a low one: the system prompt and tools are in every request).
OVERHEAD_SAMPLES = 100
OVERHEAD_QUANTILE = 0.1


def overhead_sample(reported: int, local_tokens: int, items: int, calibration: Calibration) -> int:
    """What a call's usage counted beyond its transcript: the reported context less the
    corrected count of the ``items`` it sent (``local_tokens`` locally)."""
    return reported - calibration.predict(local_tokens, items)


def estimate_overhead(samples: Sequence[int]) -> int | None:
    """The overhead of a context no usage has measured yet (after a compaction), from
    the samples of earlier calls: the low quantile of the latest ones, at least 0;
    None without any sample."""
    recent = sorted(samples[-OVERHEAD_SAMPLES:])
    if not recent:
        return None
    return max(0, recent[int(OVERHEAD_QUANTILE * (len(recent) - 1))])


def unmeasured_overhead(
    earlier: Sequence[int], shape: Callable[[], int] | None, carried: int | None
) -> int | None:
    """The provider's overhead (system prompt, tools) of a context no usage has measured
    yet, by the one rule every reader follows: as the session's earlier usages measured
    it (``estimate_overhead`` of ``earlier``, after a compaction); else the request
    shape the transcript records, counted (``shape``: Claude Code 2.x, before the first
    usage of all); else what the compact boundary carried (a fork's); else None."""
    if earlier:
        return estimate_overhead(earlier)
    if shape is not None:
        return shape()
    return carried or None


def _ridge(sums: Sequence[int], prior: tuple[float, float]) -> tuple[float, float]:
    """Least squares of d ≈ k·l + c·n from the rows' sums of products (``_add``), pulled
    towards the prior (2×2 normal equations). Framing is never negative: where the
    best fit says so (a context rewritten between usages: long reads replaced by short
    stubs), the tokens alone are fitted, framing 0; else hundreds of messages would
    take thousands of tokens off the figure."""
    s11, s12, s22, t1, t2 = sums
    a11 = _PRIOR_WEIGHT_TOKEN + s11
    a22 = _PRIOR_WEIGHT_ITEM + s22
    a12 = float(s12)
    b1 = _PRIOR_WEIGHT_TOKEN * prior[0] + t1
    b2 = _PRIOR_WEIGHT_ITEM * prior[1] + t2
    det = a11 * a22 - a12 * a12
    if det <= 0:
        return prior
    per_item = (a11 * b2 - a12 * b1) / det
    if per_item < 0:
        return b1 / a11, 0.0
    return (b1 * a22 - b2 * a12) / det, per_item


@dataclass(slots=True, frozen=True)
class HistoryPoint:
    """One API call of a session: what the provider reported, what we predicted."""

    call: int
    reported_tokens: int
    predicted_tokens: int
    local_added_tokens: int
    timestamp: str | None
    after_compaction: bool
    # What the provider counted beyond the transcript sent at this call
    # (``overhead_sample`` with the correction as learnt up to this call).
    overhead_tokens: int = 0

    @property
    def error(self) -> float:
        return (self.predicted_tokens - self.reported_tokens) / self.reported_tokens


def replay_history(
    calls: Sequence[ApiCall],
    items: Sequence[Item],
    count: Callable[[Item], int],
    calibration: Calibration | None = None,
    shape: Callable[[Calibration], int] | None = None,
) -> tuple[list[HistoryPoint], Calibration]:
    """Predict each call's context from what was known before it, then learn from it.

    For call *i* with anchor *j*: predicted = reported(j) + correction(local count of
    what was added since j). Without an anchor (first call, or first after a
    compaction) the prediction is the corrected count of the whole context sent (its
    ``framing`` per item) plus the provider's overhead as the live figure takes it
    then (``unmeasured_overhead``: the earlier calls' samples, else ``shape``, the
    system prompt and tools counted with the correction learnt so far).
    Each point also carries the call's ``overhead_tokens``: its usage less the corrected
    count of the whole transcript it sent.
    """
    calibration = calibration or Calibration()
    points: list[HistoryPoint] = []
    # the local count and items of the whole context each call sent
    sent: list[tuple[int, int]] = []
    for index, call in enumerate(calls):
        added = [items[i] for i in call.added_items]
        local = sum(count(item) for item in added)
        reported = call.usage.context_tokens
        if call.anchor_call is None:
            sent.append((local, len(added)))
            earlier = [p.overhead_tokens for p in points]
            counted = (lambda: shape(calibration)) if shape is not None else None
            overhead = unmeasured_overhead(earlier, counted, None) or 0
            framing = calibration.framing * len(added)
            predicted = round(calibration.per_token * local + framing) + overhead
        else:
            before = sent[call.anchor_call]
            sent.append((before[0] + local, before[1] + len(added)))
            anchor = calls[call.anchor_call]
            # The anchor's own response is known exactly: its reported output tokens
            # (unless they are a cut-off response's first figure: response_reported).
            out_n = call.anchor_output_items
            out_local = sum(count(item) for item in added[:out_n])
            if not response_reported(anchor.usage.output_tokens, out_local):
                out_n = 0
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
                overhead_tokens=overhead_sample(reported, *sent[-1], calibration),
            )
        )
    return points, calibration
