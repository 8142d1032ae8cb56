"""Policy: the window and the thresholds a session is judged by.

A ``Policy`` is a validated, immutable value. It comes from defaults, a TOML file
(``Policy.from_toml``) and flags (``policy.replace(...)``), in that order of
precedence from weakest to strongest. Validation happens on every construction, so
a policy in hand is always usable: thresholds ordered within 0–100, window larger
than what it reserves.
"""

from __future__ import annotations

from .errors import ConfigurationError
from .level import Level
from .tokens.framing import COUNTER_NAMES

TYPE_CHECKING = False  # the status line imports this module: typing costs milliseconds
if TYPE_CHECKING:  # (and pathlib and tomllib are imported only where used)
    from pathlib import Path
    from typing import Any

# Context windows by model-name prefix, longest prefix first (providers' model pages).
_WINDOWS: tuple[tuple[str, int], ...] = (
    ("claude-sonnet-4-5[1m]", 1_000_000),
    # Claude Code 2.1.328 reports contextWindow 1,000,000 for each of its models,
    # claude-opus-5-5 (the default), claude-sonnet-5-5 and claude-haiku-5-5
    # (``claude -p --model M --output-format json``, modelUsage)
    ("claude-opus-5", 1_000_000),
    ("claude-sonnet-5", 1_000_000),
    ("claude-haiku-5", 1_000_000),
    ("claude", 200_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4-32k", 32_768),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 16_385),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
)
DEFAULT_WINDOW = 200_000
# No model has a window near this; a larger one is a typo (and would show 0% forever).
MAX_WINDOW = 100_000_000


def check_within_window(tokens: int, what: str) -> None:
    """One clear error when ``tokens`` (of ``what``: "tokens", "an agent budget") is
    more than any window holds: a typo, or a units mix-up."""
    if tokens > MAX_WINDOW:
        raise ConfigurationError(
            f"{what} must be at most {MAX_WINDOW:,}, more than any window (got {tokens:,})"
        )


# Model families whose window the table above knows (a name under "claude" that is none
# of these, like "claude-nonexistent-7", gets the claude window but a note says so).
KNOWN_FAMILIES: tuple[str, ...] = (
    "claude-opus",
    "claude-sonnet",
    "claude-haiku",
    "claude-3",
    "claude-2",
    "claude-instant",
    "gpt-5",
    "gpt-4.1",
    "gpt-4o",
    "gpt-4-turbo",
    "gpt-4",
    "gpt-3.5-turbo",
    "o1",
    "o3",
    "o4",
)


def window_for_model(model: str | None) -> int:
    m = model.lower() if isinstance(model, str) else ""  # not a name: Policy says so
    for prefix, window in _WINDOWS:
        if m.startswith(prefix):
            return window
    return DEFAULT_WINDOW


def window_assumption(model: str | None, how: str = "--window N") -> str | None:
    """One line saying which window an unknown ``model`` name gets, and why; ``None``
    for a known family (or no model). For shells to print on stderr (``how``: how the
    reader sets the window)."""
    if not model or not isinstance(model, str):
        return None
    m = model.lower()
    if any(m.startswith(family) for family in KNOWN_FAMILIES):
        return None
    window = window_for_model(model)
    prefix = next((p for p, _ in _WINDOWS if m.startswith(p)), None)
    why = f"the {prefix} default" if prefix else "the default for unknown models"
    return (
        f"unknown model {model!r}: assumed a {window:,}-token window ({why}); known "
        f"families: {', '.join(KNOWN_FAMILIES)}; set the window with {how}"
    )


#: The fields of a ``Policy``, in order, with their defaults.
POLICY_FIELDS: dict[str, Any] = {
    "window": DEFAULT_WINDOW,
    "reserved_output": 0,
    "safety_margin": 0,
    "warning_percent": 75.0,
    "critical_percent": 90.0,
    "blocked_percent": 95.0,
    "model": None,
    "counter": None,
}


class Policy:
    """How a session is judged. Percentages are of ``window``.

    ``reserved_output`` and ``safety_margin`` are kept free: they reduce
    ``remaining_tokens``, not the percentage (which stays "share of the window", the
    figure Claude Code and the providers show).

    An immutable value (equal by its fields, hashable), written out rather than as a
    dataclass: ``dataclasses`` imports ``inspect``, a quarter of the status line's
    first call.
    """

    __slots__ = tuple(POLICY_FIELDS)

    window: int
    reserved_output: int
    safety_margin: int
    warning_percent: float
    critical_percent: float
    blocked_percent: float
    model: str | None
    counter: str | None

    def __init__(
        self,
        window: int = DEFAULT_WINDOW,
        reserved_output: int = 0,
        safety_margin: int = 0,
        warning_percent: float = 75.0,
        critical_percent: float = 90.0,
        blocked_percent: float = 95.0,
        model: str | None = None,
        counter: str | None = None,
    ) -> None:
        values = (
            window,
            reserved_output,
            safety_margin,
            warning_percent,
            critical_percent,
            blocked_percent,
            model,
            counter,
        )
        for name, value in zip(POLICY_FIELDS, values, strict=True):
            object.__setattr__(self, name, value)
        self._validate()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: a Policy is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: a Policy is immutable")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in POLICY_FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Policy)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __reduce__(self) -> tuple[type[Policy], tuple[Any, ...]]:
        # copy, deepcopy and pickle build it again through __init__ (validated)
        return (Policy, self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in POLICY_FIELDS)
        return f"Policy({fields})"

    def _validate(self) -> None:
        problems = []
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window <= 0:
            problems.append(f"window must be a positive number of tokens (got {self.window!r})")
        elif self.window > MAX_WINDOW:
            problems.append(f"window must be at most {MAX_WINDOW:,} tokens (got {self.window:,})")
        for name in ("reserved_output", "safety_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problems.append(f"{name} must be 0 or more tokens (got {value!r})")
        if not problems and self.reserved_output + self.safety_margin >= self.window:
            problems.append(
                f"reserved_output + safety_margin ({self.reserved_output + self.safety_margin:,})"
                f" must be less than the window ({self.window:,})"
            )
        w, c, b = self.warning_percent, self.critical_percent, self.blocked_percent
        for name, value in (("warning", w), ("critical", c), ("blocked", b)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= 100
            ):
                problems.append(f"{name} threshold must be within 0–100% (got {value!r})")
        if self.model is not None and not isinstance(self.model, str):
            problems.append(f"model must be a model's name (got {self.model!r})")
        counter = self.counter
        if counter is not None and not (
            isinstance(counter, str) and (counter in COUNTER_NAMES or counter.startswith("hf:"))
        ):
            problems.append(
                f"unknown counter {counter!r}; choose one of: {', '.join(COUNTER_NAMES)}, "
                "hf:<path/to/tokenizer.json>"
            )
        if not problems and not w < c < b:
            problems.append(
                f"thresholds must be ordered warning < critical < blocked (got {w:g}% / "
                f"{c:g}% / {b:g}%)"
            )
        if problems:
            raise ConfigurationError("invalid policy: " + "; ".join(problems))

    @classmethod
    def for_model(cls, model: str | None, **overrides: Any) -> Policy:
        return cls(window=window_for_model(model), model=model).replace(**overrides)

    def replace(self, **changes: Any) -> Policy:
        """A copy with the given fields changed; ``None`` values are ignored."""
        unknown = sorted(set(changes) - set(POLICY_FIELDS))
        if unknown:
            raise ConfigurationError(
                f"unknown policy field(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(POLICY_FIELDS))}"
            )
        given = {k: v for k, v in changes.items() if v is not None}
        return Policy(**{**self.to_dict(), **given}) if given else self

    @classmethod
    def from_toml(cls, path: str | Path, base: Policy | None = None) -> Policy:
        """Load a policy file over ``base`` (default: the defaults)."""
        return (base or cls()).replace(**fields_from_toml(path))

    @classmethod
    def from_mapping(
        cls, data: dict[str, Any], base: Policy | None = None, origin: str = "policy"
    ) -> Policy:
        fields = fields_from_mapping(data, origin)
        try:
            return (base or cls()).replace(**fields)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{origin}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in POLICY_FIELDS}

    def level_for(self, percent: float) -> Level:
        if percent >= self.blocked_percent:
            return Level.BLOCKED
        if percent >= self.critical_percent:
            return Level.CRITICAL
        if percent >= self.warning_percent:
            return Level.WARNING
        return Level.NORMAL

    def threshold_tokens(self, level: Level) -> int:
        percent = {
            Level.WARNING: self.warning_percent,
            Level.CRITICAL: self.critical_percent,
            Level.BLOCKED: self.blocked_percent,
        }.get(level, 0.0)
        return int(self.window * percent / 100)


_THRESHOLD_KEYS = ("warning", "critical", "blocked")


def fields_from_mapping(data: Any, origin: str = "policy") -> dict[str, Any]:
    """Policy fields from a mapping: top-level keys, or a ``[policy]`` table.

    ``thresholds = {warning = 75, critical = 90, blocked = 95}`` is accepted as well as
    the flat ``warning_percent`` form. Unknown keys are refused, naming the known ones.
    """
    if not isinstance(data, dict):
        raise ConfigurationError(f"{origin}: expected a table of policy settings")
    flat = dict(data)
    thresholds = flat.pop("thresholds", None)
    if thresholds is not None:
        if not isinstance(thresholds, dict):
            raise ConfigurationError(f"{origin}: thresholds must be a table")
        unknown = sorted(set(thresholds) - set(_THRESHOLD_KEYS))
        if unknown:
            raise ConfigurationError(
                f"{origin}: unknown threshold(s) {', '.join(unknown)}; "
                f"known: {', '.join(_THRESHOLD_KEYS)}"
            )
        for level in _THRESHOLD_KEYS:
            if level in thresholds:
                flat[f"{level}_percent"] = thresholds[level]
    known = set(POLICY_FIELDS)
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ConfigurationError(
            f"{origin}: unknown policy setting(s) {', '.join(unknown)}; known: window, "
            "reserved_output, safety_margin, model, counter, [thresholds] warning / critical "
            "/ blocked"
        )
    return flat


def fields_from_toml(path: str | Path) -> dict[str, Any]:
    """The settings a policy file gives, validated for names (values: when applied)."""
    import tomllib
    from pathlib import Path

    p = Path(path).expanduser()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"policy file {p}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"policy file {p}: cannot read ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"policy file {p} is not valid TOML: {exc}") from exc
    fields = fields_from_mapping(data.get("policy", data), origin=f"policy file {p}")
    try:
        Policy().replace(**fields)  # validate values now, naming the file
    except ConfigurationError as exc:
        raise ConfigurationError(f"policy file {p}: {exc}") from exc
    return fields
