"""Task-need prediction: the tokens coming tasks need.

No I/O (the facade stores the calibration and runs the pre-emptive cleanup). A
``Task`` is described by the files it touches, the agents it starts and its
estimated minutes; the default prediction
constants score it (10 per file, 20 per agent, 2 per minute), class the score
(< 50 simple, < 150 moderate, else complex) and book a fixed amount per class and
component (15,000 / 55,000 / 110,000 tokens in all). ``Predictor`` starts from exactly
that and learns from what tasks really used: a multiplicative correction::

    tokens ≈ task_class_tokens(task) × e^w0 × (1 + files)^w1 × (1 + agents)^w2
                                     × (1 + minutes)^w3

with the prior w = 0: uncalibrated, it *is* the default constants' figure. Each
``observe`` adds one (task, actual tokens) pair; w is a ridge fit of
log(actual / class tokens) towards 0, the
prior on the overall factor worth ``prior_weight`` observations (4: one observation
moves a prediction a fifth to a quarter of the way in log, many move it to what the
tasks really use).
``fits`` turns a prediction and the room left into the figure to free (pre-emptive
cleanup).

A running session (exchanges left, ETA, growth): ``ctxbudget.budget.forecast``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError
from ..model import Component

LOW, MEDIUM, HIGH = "low", "medium", "high"
COMPLEXITIES = (LOW, MEDIUM, HIGH)
# The classes are also called simple / moderate / complex; both spellings are accepted.
_ALIASES = {"simple": LOW, "moderate": MEDIUM, "complex": HIGH}


# -- the default prediction constants ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Constants:
    """The default prediction constants: task complexity scoring and tokens per class.

    They price a task through its complexity class only: score weights per file,
    agent and minute, two score thresholds, and tokens per class and component.
    They give no tokens per file, per agent or per minute and no base, so
    those are 0 here (a file costs what its class costs) until calibration learns them.
    """

    # "score += len(task.files) * 10"
    score_per_file: float = 10.0
    # "score += len(task.agents) * 20"
    score_per_agent: float = 20.0
    # "score += task.estimated_minutes * 2"
    score_per_minute: float = 2.0
    # "if score < 50: return 'simple'"
    medium_from: float = 50.0
    # "elif score < 150: return 'moderate'  else: return 'complex'"
    high_from: float = 150.0
    # "if complexity == 'simple': working_memory += 10000; agent_context += 5000"
    # "elif 'moderate': working_memory += 30000; agent_context += 15000;
    #                   knowledge_base += 10000"
    # "elif 'complex': working_memory += 60000; agent_context += 30000;
    #                  knowledge_base += 20000"
    class_tokens: Mapping[str, Mapping[str, int]] = field(
        default_factory=lambda: {
            LOW: {Component.WORKING_MEMORY.value: 10_000, Component.AGENT_CONTEXT.value: 5_000},
            MEDIUM: {
                Component.WORKING_MEMORY.value: 30_000,
                Component.AGENT_CONTEXT.value: 15_000,
                Component.KNOWLEDGE_BASE.value: 10_000,
            },
            HIGH: {
                Component.WORKING_MEMORY.value: 60_000,
                Component.AGENT_CONTEXT.value: 30_000,
                Component.KNOWLEDGE_BASE.value: 20_000,
            },
        }
    )
    # 0 by default: a task costs its class's tokens, nothing per unit.
    base: float = 0.0
    per_file: float = 0.0
    per_agent: float = 0.0
    per_minute: float = 0.0

    def __post_init__(self) -> None:
        if set(self.class_tokens) != set(COMPLEXITIES):
            raise ConfigurationError(
                f"invalid prediction constants: classes must be {COMPLEXITIES}"
            )
        if not 0 < self.medium_from <= self.high_from:
            raise ConfigurationError(
                "invalid prediction constants: need 0 < medium_from <= high_from"
            )

    def class_total(self, complexity: str) -> int:
        return sum(self.class_tokens[complexity].values())

    @property
    def multipliers(self) -> dict[str, float]:
        """Each class's tokens relative to the low class (by default: 1, 3.67, 7.33)."""
        low = self.class_total(LOW) or 1
        return {c: self.class_total(c) / low for c in COMPLEXITIES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "score_per_file": self.score_per_file,
            "score_per_agent": self.score_per_agent,
            "score_per_minute": self.score_per_minute,
            "medium_from": self.medium_from,
            "high_from": self.high_from,
            "class_tokens": {c: dict(v) for c, v in self.class_tokens.items()},
            "base": self.base,
            "per_file": self.per_file,
            "per_agent": self.per_agent,
            "per_minute": self.per_minute,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Constants:
        fields = dict(data)
        if "class_tokens" in fields:
            fields["class_tokens"] = {
                str(c): {str(k): int(v) for k, v in comp.items()}
                for c, comp in fields["class_tokens"].items()
            }
        try:
            return cls(**fields)
        except TypeError as exc:
            raise ConfigurationError(f"invalid prediction constants: {exc}") from exc


DEFAULT_CONSTANTS = Constants()


# -- tasks ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Task:
    """A coming task: files it touches, agents it starts, minutes it should take.

    ``complexity`` (low / medium / high; simple / moderate / complex are also
    accepted) overrides the class the complexity score would give.
    """

    name: str
    files: int = 0
    agents: int = 0
    minutes: float = 0
    complexity: str | None = None

    def __post_init__(self) -> None:
        if self.files < 0 or self.agents < 0 or self.minutes < 0 or math.isnan(self.minutes):
            raise ConfigurationError(
                f"invalid task {self.name!r}: files, agents and minutes must be >= 0"
            )
        if self.complexity is not None:
            value = _ALIASES.get(self.complexity, self.complexity)
            if value not in COMPLEXITIES:
                raise ConfigurationError(
                    f"invalid task {self.name!r}: complexity {self.complexity!r} is not one of "
                    f"{', '.join(COMPLEXITIES)}"
                )
            object.__setattr__(self, "complexity", value)

    def score(self, constants: Constants = DEFAULT_CONSTANTS) -> float:
        """The complexity score: 10 per file + 20 per agent + 2 per minute."""
        return (
            constants.score_per_file * self.files
            + constants.score_per_agent * self.agents
            + constants.score_per_minute * self.minutes
        )

    def level(self, constants: Constants = DEFAULT_CONSTANTS) -> str:
        """The complexity class: the given one, else the class thresholds on the score."""
        if self.complexity is not None:
            return self.complexity
        score = self.score(constants)
        if score < constants.medium_from:
            return LOW
        if score < constants.high_from:
            return MEDIUM
        return HIGH

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "files": self.files,
            "agents": self.agents,
            "minutes": self.minutes,
            "complexity": self.complexity,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        return cls(
            name=str(data.get("name", "")),
            files=int(data.get("files", 0)),
            agents=int(data.get("agents", 0)),
            minutes=float(data.get("minutes", 0)),
            complexity=data.get("complexity"),
        )


def task_class_tokens(task: Task, constants: Constants = DEFAULT_CONSTANTS) -> int:
    """What the constants book for ``task`` (the sum over components of its class)."""
    return constants.class_total(task.level(constants))


# -- the calibrated predictor --------------------------------------------------------

# The correction's terms, in order: log of an overall factor, then the elasticity of
# tokens to (1 + files), (1 + agents) and (1 + minutes).
TERMS = ("factor", "files", "agents", "minutes")
# How far each term may plausibly be from 0 (no correction), a documented default (the
# default prediction constants give no such figure): the overall factor within about e
# (×2.7 or ÷2.7), each elasticity within 0.15 (a task with 10× the files costing about
# 40% more or less than its class already says). The elasticities are the stiffer: they refine the
# complexity classes, which already grow with files, agents and minutes, and an overall
# factor is what a few observations can tell.
PRIOR_SCALES = (1.0, 0.15, 0.15, 0.15)
# The prior on the overall factor counts as this many observations (each elasticity's,
# in units of its scale, as many): one observation of a task with no files, agents or
# minutes moves the log of its prediction 1 / (1 + 4) = 20% of the way to what it saw;
# one of a typical task (10 files, 2 agents, 30 minutes) about 26%.
DEFAULT_PRIOR_WEIGHT = 4.0
# Observations kept (the oldest are dropped): enough for a stable fit, bounded storage.
MAX_OBSERVATIONS = 200
# An observation under this many tokens counts as this many (the log of 0 is not a
# figure, and a task that used almost nothing must not dominate the fit).
MIN_OBSERVED_TOKENS = 1_000


@dataclass(frozen=True, slots=True)
class Observation:
    """One finished task and the tokens it really used."""

    task: Task
    actual_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.task.to_dict(), "actual_tokens": self.actual_tokens}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        return cls(task=Task.from_dict(data), actual_tokens=int(data["actual_tokens"]))


def _terms(task: Task) -> tuple[float, ...]:
    return (1.0, math.log1p(task.files), math.log1p(task.agents), math.log1p(task.minutes))


@dataclass(slots=True)
class Predictor:
    """Tokens for coming tasks: the default prediction constants, corrected by observed use.

    ``predict(task) = prior(task) × correction(task)``, where ``prior`` is the task's
    class total (plus the constants' base and per-unit tokens, 0 by default) and::

        correction = e^w0 × (1 + files)^w1 × (1 + agents)^w2 × (1 + minutes)^w3

    is fitted by ridge regression of log(actual / prior) towards w = 0, so errors count
    relatively (a task 2× over weighs the same whatever its size). With no observation
    the correction is 1: the prediction is the constants' alone.
    """

    constants: Constants = DEFAULT_CONSTANTS
    prior_weight: float = DEFAULT_PRIOR_WEIGHT
    max_observations: int = MAX_OBSERVATIONS
    observations: list[Observation] = field(default_factory=list)
    weights: tuple[float, ...] = field(default=(0.0, 0.0, 0.0, 0.0), init=False)

    def __post_init__(self) -> None:
        if not self.prior_weight > 0:
            raise ConfigurationError("invalid predictor: prior_weight must be > 0")
        if self.max_observations < 1:
            raise ConfigurationError("invalid predictor: max_observations must be >= 1")
        del self.observations[: -self.max_observations]
        self._fit()

    def prior(self, task: Task) -> float:
        """What the constants alone give: the task's class total, plus base and
        per-unit tokens (0 by default)."""
        c = self.constants
        return (
            task_class_tokens(task, c)
            + c.base
            + c.per_file * task.files
            + c.per_agent * task.agents
            + c.per_minute * task.minutes
        )

    def correction(self, task: Task) -> float:
        """The learned factor on ``prior(task)`` (1 before any observation)."""
        return math.exp(sum(w * t for w, t in zip(self.weights, _terms(task), strict=True)))

    def predict(self, task: Task) -> int:
        """Tokens ``task`` is expected to need."""
        return max(0, round(self.prior(task) * self.correction(task)))

    def predict_all(self, tasks: Iterable[Task]) -> int:
        return sum(self.predict(task) for task in tasks)

    def predict_components(self, task: Task) -> dict[str, int]:
        """The prediction split over components as its complexity class splits it."""
        shares = self.constants.class_tokens[task.level(self.constants)]
        total = sum(shares.values())
        predicted = self.predict(task)
        if not total:
            return {}
        out = {c: predicted * v // total for c, v in shares.items()}
        first = next(iter(out))
        out[first] += predicted - sum(out.values())  # rounding goes to the first component
        return out

    def predict_components_all(self, tasks: Iterable[Task]) -> dict[str, int]:
        """Task-need prediction: needs per component over all tasks."""
        out: dict[str, int] = {}
        for task in tasks:
            for component, tokens in self.predict_components(task).items():
                out[component] = out.get(component, 0) + tokens
        return out

    def observe(self, task: Task, actual_tokens: int) -> None:
        """Learn from a finished task: it used ``actual_tokens``."""
        if actual_tokens < 0:
            raise ConfigurationError(
                f"invalid observation for {task.name!r}: actual tokens must be >= 0"
            )
        self.observations.append(Observation(task, int(actual_tokens)))
        del self.observations[: -self.max_observations]
        self._fit()

    def reset(self) -> None:
        """Forget every observation: back to the constants."""
        self.observations.clear()
        self._fit()

    def _fit(self) -> None:
        """Ridge regression of r = log(actual / prior) on the terms, towards 0.

        In units of the prior scales (u_j = w_j / scale_j, x_j = scale_j · term_j):
        minimise Σ (r − x·u)² + prior_weight × ‖u‖². One observation moves the log of
        its own prediction h / (1 + h) of the way, h = ‖x‖² / prior_weight.
        """
        n = len(TERMS)
        lam = self.prior_weight
        a = [[lam if i == j else 0.0 for j in range(n)] for i in range(n)]
        b = [0.0] * n
        for obs in self.observations:
            prior = self.prior(obs.task)
            if prior <= 0:
                continue  # nothing to correct multiplicatively
            terms = _terms(obs.task)
            x = [PRIOR_SCALES[j] * terms[j] for j in range(n)]
            r = math.log(max(obs.actual_tokens, MIN_OBSERVED_TOKENS) / prior)
            for i in range(n):
                b[i] += x[i] * r
                for j in range(n):
                    a[i][j] += x[i] * x[j]
        u = _solve(a, b)
        self.weights = tuple(PRIOR_SCALES[j] * u[j] for j in range(n))

    def calibration(self) -> dict[str, float]:
        """The correction for reports: the overall ``factor`` (e^w0) and the exponent
        of (1 + files), (1 + agents), (1 + minutes)."""
        w0, *rest = self.weights
        return {"factor": math.exp(w0), **dict(zip(TERMS[1:], rest, strict=True))}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state: constants, prior weight and observations (the fit is
        recomputed on load, so it cannot drift from the observations)."""
        return {
            "constants": self.constants.to_dict(),
            "prior_weight": self.prior_weight,
            "max_observations": self.max_observations,
            "observations": [o.to_dict() for o in self.observations],
            "calibration": self.calibration(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Predictor:
        return cls(
            constants=Constants.from_dict(data.get("constants") or {}),
            prior_weight=float(data.get("prior_weight", DEFAULT_PRIOR_WEIGHT)),
            max_observations=int(data.get("max_observations", MAX_OBSERVATIONS)),
            observations=[Observation.from_dict(o) for o in data.get("observations", [])],
        )


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Solve a·x = b (small, symmetric positive definite) by Gaussian elimination."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (m[i][n] - sum(m[i][j] * x[j] for j in range(i + 1, n))) / m[i][i]
    return x


# -- does it fit? --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Advice:
    """Whether predicted needs fit the room left, and if not how much to free first."""

    fits: bool
    predicted: int
    remaining: int
    to_free: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "fits": self.fits,
            "predicted": self.predicted,
            "remaining": self.remaining,
            "to_free": self.to_free,
            "reason": self.reason,
        }


def fits(predicted: int, remaining: int, *, margin: float = 0.0) -> Advice:
    """The pre-emptive cleanup test: ``predicted_need > current_available``
    means ``predicted_need - current_available`` must be freed first.

    ``margin`` asks for headroom on top of the prediction (0.1: 10% more); by
    default there is none. ``remaining`` may be negative (already over budget): the overrun is
    added to what must be freed.
    """
    if predicted < 0:
        raise ConfigurationError("invalid prediction: predicted tokens must be >= 0")
    if margin < 0:
        raise ConfigurationError("invalid margin: must be >= 0")
    need = math.ceil(predicted * (1 + margin))
    if need <= remaining:
        return Advice(
            True,
            predicted,
            remaining,
            0,
            f"predicted {need:,} tokens fit in the {remaining:,} left",
        )
    to_free = need - remaining
    return Advice(
        False,
        predicted,
        remaining,
        to_free,
        f"predicted {need:,} tokens exceed the {remaining:,} left: free {to_free:,} first",
    )


def fits_components(
    predicted: Mapping[str, int], available: Mapping[str, int], *, margin: float = 0.0
) -> dict[str, Advice]:
    """``fits`` per component, as pre-emptive cleanup checks each one."""
    return {c: fits(need, available.get(c, 0), margin=margin) for c, need in predicted.items()}
