"""A compacted Claude Code session written beside the original, for ``claude --resume``.

ctxbudget cannot change the context of a Claude Code session that is running: Claude
Code holds it. What it can do is write a new session next to the original (the same
project directory under ``~/.claude/projects``): a compact boundary, ctxbudget's summary
and fact ledger as the compact summary, then the kept exchanges, chained afresh under a
new session id. ``claude --resume NEW_ID`` (from the project's directory) then continues
from the compacted context; the original stays as it was.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from ..model import Carried, Item
from ..sources.writing import write

__all__ = ["Fork", "check_forkable", "fork_session"]


@dataclass(slots=True, frozen=True)
class Fork:
    session_id: str
    path: Path
    cwd: str | None  # where to run ``claude --resume`` (the session's project directory)

    @property
    def resume_command(self) -> str:
        return f"claude --resume {self.session_id}"


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="replace") as f:
        yield from f


def check_forkable(original: Path) -> None:
    """Refuse, before anything is compacted, a source no session can be forked from:
    Claude Code resumes a ``.jsonl`` in its project directory, not a copy elsewhere
    (a ``.jsonl.gz``)."""
    if original.suffix != ".jsonl":
        raise SourceError(f"{original}: --fork needs a Claude Code transcript (.jsonl)")


def fork_session(
    original: Path,
    items: Sequence[Item],
    *,
    model: str | None = None,
    carried: Carried | None = None,
) -> Fork:
    """Write ``items`` (a compacted context) as a new session beside ``original``.
    ``carried``: what the original measured: what its provider counted beyond its
    transcript (system prompt, tools), which the new session sends too, and its
    correction; the boundary carries both, so every surface counts the new session as
    the original's plan did before the new session's first usage."""
    check_forkable(original)
    session_id = str(uuid.uuid4())
    target = original.with_name(f"{session_id}.jsonl")
    # the original's records supply cwd, version and branch (and the model)
    written = write(
        items,
        "same",
        "claude-code",
        target,
        model=model,
        session_id=session_id,
        records_hint=_lines(original),
        carried=carried,
    )
    with written.open(encoding="utf-8") as f:
        first = json.loads(f.readline())  # the compact boundary, with the session fields
    cwd = first.get("cwd")
    return Fork(session_id, written, cwd if isinstance(cwd, str) else None)
