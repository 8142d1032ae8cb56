"""The Claude Code sessions on this machine: each transcript under the projects
directory (``$CLAUDE_CONFIG_DIR/projects``, else ``~/.claude/projects``), newest first,
with its figure.

Each transcript is read the way the hooks read it (``incremental.read_figure``): the
state is kept per transcript, so listing hundreds of sessions again reads only what
they appended since; the figure is the one ``ctxbudget tokens FILE`` and the status
line print.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ..level import shown_percent
from ..policy import window_for_model
from ..sources import claude_projects_dir
from .incremental import HookMemory, read_figure
from .windows import remembered_window

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["ClaudeCodeSession", "claude_code_sessions"]


@dataclass(slots=True, frozen=True)
class ClaudeCodeSession:
    """One transcript and its figure (``used_tokens`` None: nothing countable yet)."""

    id: str
    path: str
    project: str
    updated_at: float
    model: str | None
    used_tokens: int | None
    window: int

    @property
    def percent(self) -> float | None:
        if self.used_tokens is None or not self.window:
            return None
        return 100.0 * self.used_tokens / self.window

    def to_dict(self) -> dict[str, object]:
        percent = self.percent
        return {
            "kind": "claude-code",
            "id": self.id,
            "path": self.path,
            "project": self.project,
            "updated_at": self.updated_at,
            "model": self.model,
            "used_tokens": self.used_tokens,
            "max_tokens": self.window,
            "percent": shown_percent(percent) if percent is not None else None,
        }


def claude_code_sessions(
    limit: int = 20, projects: Path | None = None, cache_root: str | None = None
) -> list[ClaudeCodeSession]:
    """The newest ``limit`` session transcripts (sub-agents' own files left out)."""
    root = projects or claude_projects_dir()
    if not root.is_dir():
        return []
    found: list[tuple[float, Path]] = []
    for path in root.glob("*/*.jsonl"):
        if path.name.startswith("agent-"):
            continue
        try:
            found.append((path.stat().st_mtime, path))
        except OSError:
            continue  # gone meanwhile
    found.sort(key=lambda pair: pair[0], reverse=True)
    return [_session(path, mtime, cache_root) for mtime, path in found[:limit]]


def _session(path: Path, mtime: float, cache_root: str | None) -> ClaudeCodeSession:
    memory = HookMemory.load(str(path), cache_root)
    try:
        figure = read_figure(str(path), memory)
    except OSError:
        used, model = None, None
    else:
        used, model = figure.used_tokens, figure.model
        memory.save()
    return ClaudeCodeSession(
        id=path.stem,
        path=os.fspath(path),
        project=_working_directory(path) or path.parent.name,
        updated_at=mtime,
        model=model,
        used_tokens=used,
        # the window Claude Code reported for it (the status line's payload), as the
        # other surfaces take it, else the model's
        window=remembered_window(path.stem, cache_root) or window_for_model(model),
    )


#: How far into a transcript its working directory is looked for (its first records)
_CWD_LINES = 20


def _working_directory(path: Path) -> str | None:
    """The directory Claude Code ran in, as its first records say (``cwd``): the
    projects folder's name replaces every "/" and "." with "-", which cannot be undone."""
    try:
        with open(path, "rb") as f:
            for _, line in zip(range(_CWD_LINES), f, strict=False):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                cwd = record.get("cwd") if isinstance(record, dict) else None
                if isinstance(cwd, str) and cwd:
                    return cwd
    except OSError:
        return None
    return None
