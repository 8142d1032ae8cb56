"""What the readers say about bad records: one line each, naming the record.

A reader that meets a record it cannot use (a line that is not JSON, a ``message``
that is a string, a usage count that is NaN) keeps going and notes it here, as
``<file>:<line>: <what>: <what was done>``; the lines end up in
``Transcript.problems``. This module owns the wording helpers and the cap on how many
lines are kept; it reads nothing and decides nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_PROBLEMS", "ProblemLog", "javascript_loads", "loads", "parse_line", "shown"]

# A file with thousands of bad records needs its first few named, not all of them.
MAX_PROBLEMS = 20


def shown(value: Any, limit: int = 40) -> str:
    """A short repr of a bad value for a message."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<deeply nested {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def loads(text: str | bytes) -> Any:
    """``json.loads`` that raises ``ValueError`` for nesting too deep to parse too."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def parse_line(
    line: str | bytes, loads: Callable[[str | bytes], Any] = loads
) -> tuple[Any, str | None]:
    """One JSON Lines record, and a note when the line's bytes were not UTF-8: those
    are replaced, and the record kept. Raises ``ValueError`` for a line that is no JSON."""
    try:
        return loads(line), None
    except ValueError:
        if not isinstance(line, bytes):
            raise
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            note = f"not UTF-8 (byte {bad.start} of the line): invalid bytes replaced"
            return loads(line.decode("utf-8", errors="replace")), note
        raise


def javascript_loads() -> Callable[[str | bytes], Any]:
    """``loads`` for JSON that JavaScript wrote (Claude Code's transcripts), in half the
    time: orjson's parser where it is installed (imported here, on the first read: the
    status line never pays for it), ``loads`` for what orjson refuses (NaN, the escape
    of half a surrogate pair, nesting past its limit), which takes it or words the error.

    For JavaScript's JSON only: orjson reads an integer past 64 bits as a float, and
    every number JavaScript writes is a float already (a double), so nothing is lost;
    a Python program's JSON may hold larger integers, exactly."""
    try:
        from orjson import loads as fast
    except ImportError:  # pragma: no cover - orjson is a dependency
        return loads

    def parse(text: str | bytes) -> Any:
        try:
            return fast(text)
        except ValueError:
            if isinstance(text, bytes):
                # as UTF-8 and nothing else (json would take surrogates written as
                # UTF-8, a byte order mark, UTF-16): UnicodeDecodeError is a ValueError
                text = text.decode("utf-8")
            return loads(text)

    return parse


class ProblemLog:
    """The problem lines of one file: the first ``MAX_PROBLEMS`` kept, the rest counted."""

    def __init__(self, name: str | None) -> None:
        self.name = name or "<input>"
        self.kept: list[str] = []
        self.total = 0

    def add(self, where: str | int | None, what: str) -> None:
        self.total += 1
        if len(self.kept) < MAX_PROBLEMS:
            place = self.name if where is None else f"{self.name}:{where}"
            self.kept.append(f"{place}: {what}".replace("\n", " "))

    def lines(self) -> list[str]:
        more = self.total - len(self.kept)
        return [*self.kept, f"{self.name}: {more} more bad record(s)"] if more else list(self.kept)
