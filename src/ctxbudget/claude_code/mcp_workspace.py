"""Which session an MCP tool call means, and the session opened as every surface reads it.

The session is the call's ``session`` argument when given (a transcript path, a Claude
Code session id, or a stored session id), else the server's ``--session``, else
``$CLAUDE_CODE_SESSION_ID`` (Claude Code gives it to stdio MCP servers), else the
newest transcript of the project (``$CLAUDE_PROJECT_DIR`` or the working directory)
under ``~/.claude/projects``. A live transcript is opened with the stored session's
policy and budgets on top (as the hooks read it); a stored session as it is.

The server answers many calls on one transcript, which reading and counting takes
seconds at 80k items: the live session is kept between calls while the file (size,
modification time) and its stored row are as they were.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigurationError, SessionNotFoundError

if TYPE_CHECKING:
    from ..session import Session
    from ..store import StoredSession
    from ..tracker import Tracker

__all__ = ["PROJECT_ENV", "SESSION_ENV", "McpWorkspace", "project_slug"]

#: What Claude Code sets in a stdio MCP server's environment (2.1.154 and later).
SESSION_ENV = "CLAUDE_CODE_SESSION_ID"
PROJECT_ENV = "CLAUDE_PROJECT_DIR"


# -- which session --------------------------------------------------------------------


def project_slug(directory: str) -> str:
    """Claude Code's folder name under ``~/.claude/projects`` for a working directory."""
    return re.sub(r"[^A-Za-z0-9]", "-", directory)


@dataclass(slots=True)
class _Located:
    transcript: Path | None  # a live transcript, or None for a stored session
    session_id: str


@dataclass(slots=True)
class _Opened:
    """A live transcript's session and what it was read from: the file (path, size,
    modification time, taken before reading it) and its stored row (None: none)."""

    file: tuple[str, int, int]
    row: StoredSession | None
    session: Session


class McpWorkspace:
    """The tools' way into the facade: finds the session a call means and opens it.

    ``session``: the server's default (``--session``); ``environ`` and ``cwd`` stand
    for the process's (tests give their own).
    """

    def __init__(
        self,
        tracker: Tracker,
        *,
        session: str | None = None,
        environ: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.tracker = tracker
        self.default_session = session
        self.environ = dict(os.environ if environ is None else environ)
        self.cwd = cwd or self.environ.get(PROJECT_ENV) or os.getcwd()
        self._opened: _Opened | None = None  # the latest live transcript's session

    def _projects(self) -> Path:
        from ..sources import claude_projects_dir

        config = self.environ.get("CLAUDE_CONFIG_DIR")
        home = self.environ.get("HOME")
        if config:
            return Path(config) / "projects"
        if home:
            return Path(home) / ".claude" / "projects"
        return claude_projects_dir()

    def locate(self, session: str | None) -> _Located:
        name = session or self.default_session or self.environ.get(SESSION_ENV) or None
        if name is None:
            return self._newest_of_project()
        path = Path(name).expanduser()
        if path.is_file():
            return _Located(path, self._transcript_id(path))
        from ..sources import find_claude_session

        return _Located(find_claude_session(name, self._projects()), name)

    def _newest_of_project(self) -> _Located:
        from ..sources import find_latest_claude_session

        folder = self._projects() / project_slug(self.cwd)
        newest = find_latest_claude_session(folder, pattern="*.jsonl")
        if newest is None:
            raise ConfigurationError(
                f"no Claude Code session found for {self.cwd} under {self._projects()}: "
                'pass "session" (a transcript path or a session id), or start the server '
                "with --session"
            )
        return _Located(newest, newest.stem)

    @staticmethod
    def _transcript_id(path: Path) -> str:
        return path.stem

    def stored(self, session_id: str) -> StoredSession | None:
        try:
            return self.tracker.store.get_session(session_id)
        except SessionNotFoundError:
            return None

    def open(self, session: str | None) -> Session:
        """The session as every surface reads it now: a live transcript with the stored
        session's policy and budgets, or the stored session."""
        from ..policy import Policy
        from ..sources import load_source
        from .windows import with_remembered_window

        located = self.locate(session)
        if located.transcript is None:
            try:
                return self.tracker.open(located.session_id)
            except SessionNotFoundError as exc:
                raise ConfigurationError(
                    f"{located.session_id}: no such transcript or Claude Code session, and no "
                    f"stored session with that id in {self.tracker.store.url}"
                ) from exc
        path = located.transcript
        info = path.stat()  # before reading: a write meanwhile makes the next call read again
        file = (str(path), info.st_size, info.st_mtime_ns)
        opened = self._opened
        if (
            opened is not None
            and opened.file == file
            and self.stored(opened.session.id) == opened.row
        ):
            return opened.session
        self._opened = None
        transcript = with_remembered_window(load_source(path))
        live = self.tracker.load(transcript)
        stored = self.stored(live.id)
        if stored is not None:
            from .hook_session import follow_model

            # stored by SessionStart before the first answer, with the default window:
            # the model the transcript names and the window reported, as the hooks take
            follow_model(self.tracker, stored, live.policy.model, transcript.window)
            policy = Policy.from_mapping(stored.policy, origin=f"stored session {stored.id}")
            live = self.tracker.load(transcript, policy=policy)
            live.use_stored_settings(stored)
        # the row as it is now (follow_model may have written it)
        self._opened = _Opened(file, self.stored(live.id), live)
        return live

    def writable(self, live: Session) -> Session:
        """The stored session of ``live`` (created, as the hooks do, when new): where
        sprints and their budgets are kept."""
        if live.is_stored:
            return live
        return self.tracker.session(
            live.id, model=live.policy.model, window=live.policy.window, name=self.cwd
        )
