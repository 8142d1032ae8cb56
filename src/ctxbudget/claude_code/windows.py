"""The context window Claude Code reported for a session, kept for every surface.

The transcript does not record the window. Claude Code tells it to the status line
(``context_window.context_window_size``): the status line keeps it per session in
``<cache dir>/windows/<session id>.json`` (0600), and ``tokens``, ``budget``,
``compact``, the hooks, the MCP tools and ``/compact --dry-run`` read it, so a session
shows one window everywhere. Without it, the request's 1M-context beta (Claude Code
2.x ``api-request`` records, read into ``Transcript.window``), then the model table.
An explicit ``--window`` or policy file wins over all of them.
"""

from __future__ import annotations

import os
import re

from .cache import cache_root, load_json, save_private_json

TYPE_CHECKING = False
if TYPE_CHECKING:  # the status line imports this module: nothing heavy at run time
    from ..model import Transcript

__all__ = ["remember_window", "remembered_window", "window_file", "with_remembered_window"]

_SAFE = re.compile(r"[A-Za-z0-9_-]{1,100}")


def window_file(session_id: str, root: str | None = None) -> str:
    """Where the window of ``session_id`` is kept (a hashed name for odd ids)."""
    name = session_id
    if not _SAFE.fullmatch(session_id):
        import hashlib

        name = hashlib.blake2b(session_id.encode("utf-8", "replace"), digest_size=12).hexdigest()
    return os.path.join(root or cache_root(), "windows", f"{name}.json")


def remembered_window(session_id: str | None, root: str | None = None) -> int | None:
    """The window Claude Code last reported for ``session_id``, or None."""
    if not session_id:
        return None
    window = load_json(window_file(session_id, root)).get("window")
    if isinstance(window, int) and not isinstance(window, bool) and window > 0:
        return window
    return None


def remember_window(session_id: str | None, window: int | None, root: str | None = None) -> None:
    """Keep ``window`` for ``session_id`` (written only when it changed)."""
    if not session_id or not window or window <= 0:
        return
    if remembered_window(session_id, root) != window:
        save_private_json(window_file(session_id, root), {"window": window})


def with_remembered_window(transcript: Transcript, root: str | None = None) -> Transcript:
    """``transcript`` with the window Claude Code reported for its session, when known."""
    if transcript.format == "claude-code":
        transcript.window = remembered_window(transcript.session_id, root) or transcript.window
    return transcript
